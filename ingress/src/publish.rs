//! Publishing request events without blocking responses, and with what a crash can lose bounded.
//!
//! A request waits at admission while the pipeline has no room (a 503 after
//! `event_slot_wait_ms`), and takes a [`Slot`] just before its answer is complete — before a
//! plain response is sent, before a stream's last bytes — waiting as long as the pipeline needs;
//! its event carries the slot until the event is durable: in the stream (acknowledged) or in the
//! local spool (fsync'd). So at most `max_unsettled_events` answered requests can be lost to a
//! SIGKILL or a power cut, whatever the load: past that the node answers no faster than it
//! records. A request still being answered holds no slot, so any number of long streams can be
//! open at once. One task sends events to JetStream as they come and
//! awaits each acknowledgement concurrently with the next sends (a continuous pipeline, not
//! batch by batch), with at most [`MAX_IN_FLIGHT`] messages unacknowledged. Group commit:
//! while that many are in flight, new events queue, and the next message carries all of them
//! (up to [`BATCH_MAX_EVENTS`] and the bus's `max_payload`) as one JSON array on
//! `axongate.requests.batch` (see `shared::envelope::batch_payload`) — so the stream, which
//! fsyncs every message, fsyncs once for many events. An event sent alone is one message with
//! `Nats-Msg-Id = event_id`; a batch's id is its first event's id and its size, so a batch
//! retried from the spool is dropped by the stream's duplicate window like a single event. At
//! low load every message holds one event and nothing waits. An event that cannot be acknowledged
//! (NATS unreachable, timeout) goes to the spool: length-prefixed records in segment files,
//! fsync'd. While the spool holds anything, new events queue behind it. A drain task
//! republishes the spool oldest-first when NATS answers again and deletes each segment once
//! every record in it is acknowledged; a crash mid-segment republishes some records, which the
//! stream's duplicate window drops.
//!
//! Poison and failing disks: an event larger than the bus accepts (the server's `max_payload`,
//! checked before publishing and again before each spooled record is replayed) can never be
//! published, so it goes to `dead-letters.jsonl` in the spool folder, is counted in
//! `ingress_events_dead_lettered_total`, and never holds up the events behind it, in this run
//! or after a restart. A spool write or fsync that fails marks the spool failing (the
//! refuse policy then answers 503 and `/ready` reports it); the batch is kept in memory and
//! written again every second until the disk takes it or NATS does.

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use shared::{Envelope, EventBody};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore, mpsc};

const ACK_TIMEOUT: Duration = Duration::from_secs(3);
/// Messages sent and not yet acknowledged, at most. Past this, events wait for an
/// acknowledgement and then go together in one message (group commit).
pub const MAX_IN_FLIGHT: usize = 4;
/// Events packed into one message at most.
pub const BATCH_MAX_EVENTS: usize = 512;
/// The bus's `max_payload` when the server has not told it (NATS's default).
const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;
const SEGMENT_MAX_BYTES: u64 = 16 << 20;
/// Room left for the subject and headers (`Nats-Msg-Id`) when comparing with `max_payload`.
const HEADER_ALLOWANCE: usize = 512;
/// The dead-letter file stops keeping payloads past this size (the count goes on).
const DEAD_LETTER_MAX_BYTES: u64 = 64 << 20;
/// Events kept in memory while the spool disk refuses writes; past this the oldest are lost.
const STUCK_MAX_RECORDS: usize = 100_000;
/// How often a batch the disk refused is written again.
const STUCK_RETRY: Duration = Duration::from_secs(1);

/// One message ready to publish: one event, or a batch of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outgoing {
    pub subject: String,
    pub msg_id: String,
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// How many events the message holds (records spooled by older builds hold one).
    #[serde(default = "one_event")]
    pub events: u64,
}

const fn one_event() -> u64 {
    1
}

/// Packs consecutive request events into batch messages of at most [`BATCH_MAX_EVENTS`]
/// events and `max_bytes` of payload; a group of one stays the event's own message, and events
/// of other streams are never packed. Order is kept.
fn pack(pending: Vec<Pending>, max_bytes: usize) -> Vec<Pending> {
    let mut packed = Vec::with_capacity(pending.len());
    let mut group: Vec<Pending> = Vec::new();
    let mut group_bytes = 2;
    let flush = |group: &mut Vec<Pending>, packed: &mut Vec<Pending>| match group.len() {
        0 => {}
        1 => packed.append(group),
        count => {
            let first = &group[0].record.msg_id;
            let msg_id = format!("{first}+{count}");
            let payload =
                shared::envelope::batch_payload(group.iter().map(|p| p.record.payload.as_slice()));
            let events = group.iter().map(|p| p.record.events).sum();
            let slots = group.iter_mut().flat_map(|p| p.slots.drain(..)).collect();
            group.clear();
            packed.push(Pending {
                record: Outgoing {
                    subject: shared::streams::REQUESTS_BATCH_SUBJECT.to_owned(),
                    msg_id,
                    payload,
                    events,
                },
                slots,
            });
        }
    };
    for item in pending {
        let packable = item.record.events == 1
            && item
                .record
                .subject
                .starts_with(shared::streams::REQUESTS_SUBJECT_PREFIX);
        if !packable {
            flush(&mut group, &mut packed);
            group_bytes = 2;
            packed.push(item);
            continue;
        }
        let size = item.record.payload.len() + 1;
        if !group.is_empty() && (group.len() >= BATCH_MAX_EVENTS || group_bytes + size > max_bytes)
        {
            flush(&mut group, &mut packed);
            group_bytes = 2;
        }
        group_bytes += size;
        group.push(item);
    }
    flush(&mut group, &mut packed);
    packed
}

mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// The on-disk spool.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    bytes: AtomicU64,
    /// The last write or fsync failed (a full or failing disk) and has not succeeded since.
    failing: AtomicBool,
    inner: Mutex<SpoolInner>,
    dead_letters: std::sync::Mutex<()>,
}

struct SpoolInner {
    closed: VecDeque<PathBuf>,
    current: Option<(PathBuf, std::fs::File, u64)>,
    next_index: u64,
}

impl Spool {
    /// Opens the spool folder; segments left by a previous run are drained first.
    ///
    /// # Errors
    /// When the folder cannot be created or read.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                let index = name
                    .strip_prefix("segment-")?
                    .strip_suffix(".spool")?
                    .parse()
                    .ok()?;
                Some((index, entry.path()))
            })
            .collect();
        segments.sort();
        let bytes = segments
            .iter()
            .filter_map(|(_, path)| std::fs::metadata(path).ok())
            .map(|meta| meta.len())
            .sum();
        let next_index = segments.last().map_or(0, |(index, _)| index + 1);
        if !segments.is_empty() {
            tracing::warn!(
                segments = segments.len(),
                bytes,
                "event spool from a previous run will be replayed"
            );
        }
        metrics::gauge!("ingress_spool_bytes").set(bytes as f64);
        Ok(Self {
            dir: dir.to_owned(),
            max_bytes,
            bytes: AtomicU64::new(bytes),
            failing: AtomicBool::new(false),
            inner: Mutex::new(SpoolInner {
                closed: segments.into_iter().map(|(_, path)| path).collect(),
                current: None,
                next_index,
            }),
            dead_letters: std::sync::Mutex::new(()),
        })
    }

    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    #[must_use]
    pub fn is_full(&self) -> bool {
        self.bytes() >= self.max_bytes
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bytes() == 0
    }

    /// Whether the disk refused the last write (and nothing has been written since).
    #[must_use]
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Why this node refuses traffic under the refuse policy, if it does.
    #[must_use]
    pub fn refusal(&self) -> Option<&'static str> {
        if self.is_failing() {
            Some("the event spool's disk refuses writes")
        } else if self.is_full() {
            Some("the event spool is full")
        } else {
            None
        }
    }

    fn set_failing(&self, failing: bool) {
        if self.failing.swap(failing, Ordering::Relaxed) != failing {
            metrics::gauge!("ingress_spool_failing").set(if failing { 1.0 } else { 0.0 });
            if failing {
                tracing::error!(dir = %self.dir.display(), "event spool disk refuses writes");
            } else {
                tracing::info!(dir = %self.dir.display(), "event spool disk writable again");
            }
        }
    }

    /// Appends records and fsyncs. Returns how many did not fit (the spool was full). On a
    /// write or fsync error nothing of the batch counts as written: the segment is cut back to
    /// where the batch began (so no torn record sits in the middle of it) and the spool is
    /// marked failing until a later append succeeds.
    ///
    /// # Errors
    /// When the disk refuses the write.
    pub async fn append(&self, records: &[Outgoing]) -> std::io::Result<usize> {
        let mut inner = self.inner.lock().await;
        let start = inner
            .current
            .as_ref()
            .map(|(path, _, size)| (path.clone(), *size));
        let result = self.append_locked(&mut inner, records);
        match &result {
            Ok(_) => self.set_failing(false),
            Err(_) => {
                self.set_failing(true);
                // Undo the batch: the current segment back to its size before it, any segment
                // the batch opened removed.
                if let Some((path, _, _)) = inner.current.take() {
                    match &start {
                        Some((start_path, size)) if *start_path == path => {
                            let cut = std::fs::OpenOptions::new()
                                .write(true)
                                .open(&path)
                                .and_then(|file| file.set_len(*size));
                            if cut.is_err() {
                                // The torn tail is at the end of a closed segment, which
                                // the reader skips.
                                inner.closed.push_back(path);
                            } else if let Ok(file) =
                                std::fs::OpenOptions::new().append(true).open(&path)
                            {
                                inner.current = Some((path, file, *size));
                            } else {
                                inner.closed.push_back(path);
                            }
                        }
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
            }
        }
        result
    }

    fn append_locked(
        &self,
        inner: &mut SpoolInner,
        records: &[Outgoing],
    ) -> std::io::Result<usize> {
        let mut rejected = 0;
        let mut written = 0_u64;
        for record in records {
            if self.bytes() + written >= self.max_bytes {
                rejected += 1;
                continue;
            }
            let encoded = serde_json::to_vec(record).map_err(std::io::Error::other)?;
            if inner
                .current
                .as_ref()
                .is_none_or(|(_, _, size)| *size >= SEGMENT_MAX_BYTES)
            {
                if let Some((path, file, _)) = inner.current.take() {
                    file.sync_all()?;
                    inner.closed.push_back(path);
                }
                let path = self
                    .dir
                    .join(format!("segment-{:012}.spool", inner.next_index));
                inner.next_index += 1;
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                inner.current = Some((path, file, 0));
            }
            if let Some((_, file, size)) = inner.current.as_mut() {
                let length = u32::try_from(encoded.len()).map_err(std::io::Error::other)?;
                file.write_all(&length.to_le_bytes())?;
                file.write_all(&encoded)?;
                *size += 4 + u64::from(length);
                written += 4 + u64::from(length);
            }
        }
        if let Some((_, file, _)) = inner.current.as_ref() {
            file.sync_data()?;
        }
        self.bytes.fetch_add(written, Ordering::Relaxed);
        metrics::gauge!("ingress_spool_bytes").set(self.bytes() as f64);
        Ok(rejected)
    }

    /// Keeps an event that can never be published in `dead-letters.jsonl` (one JSON line with
    /// the reason; the payload too while the file is under its bound) and counts it.
    pub fn dead_letter(&self, record: &Outgoing, reason: &str) {
        metrics::counter!("ingress_events_dead_lettered_total").increment(record.events);
        tracing::error!(msg_id = %record.msg_id, subject = %record.subject, bytes = record.payload.len(), %reason, "event can never be published; dead-lettered");
        let _guard = self
            .dead_letters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let path = self.dir.join(DEAD_LETTER_FILE);
        let size = std::fs::metadata(&path).map_or(0, |meta| meta.len());
        let mut line = serde_json::json!({
            "at": time::OffsetDateTime::now_utc().unix_timestamp(),
            "reason": reason,
            "subject": record.subject,
            "msg_id": record.msg_id,
            "events": record.events,
            "payload_bytes": record.payload.len(),
        });
        if size + record.payload.len() as u64 * 2 < DEAD_LETTER_MAX_BYTES {
            line["payload_base64"] = serde_json::Value::String(base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                &record.payload,
            ));
        }
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                let mut bytes = serde_json::to_vec(&line).map_err(std::io::Error::other)?;
                bytes.push(b'\n');
                file.write_all(&bytes)?;
                file.sync_data()
            });
        if let Err(error) = written {
            tracing::error!(%error, "cannot write the dead-letter file; the event is only logged");
        }
    }

    /// The oldest segment to drain, closing the current one if it is the only one left.
    async fn oldest_segment(&self) -> std::io::Result<Option<PathBuf>> {
        let mut inner = self.inner.lock().await;
        if inner.closed.is_empty()
            && let Some((path, file, _)) = inner.current.take()
        {
            file.sync_all()?;
            inner.closed.push_back(path);
        }
        Ok(inner.closed.front().cloned())
    }

    async fn remove_segment(&self, path: &Path) -> std::io::Result<()> {
        let mut inner = self.inner.lock().await;
        let size = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
        std::fs::remove_file(path)?;
        inner.closed.retain(|closed| closed != path);
        self.bytes
            .fetch_sub(size.min(self.bytes()), Ordering::Relaxed);
        metrics::gauge!("ingress_spool_bytes").set(self.bytes() as f64);
        Ok(())
    }
}

/// The file, in the spool folder, that keeps events which can never be published.
pub const DEAD_LETTER_FILE: &str = "dead-letters.jsonl";

/// Why a record can never be published, if it cannot: larger than the server accepts.
fn poison_reason(client: &async_nats::Client, record: &Outgoing) -> Option<String> {
    let max_payload = client.max_payload();
    let size = record.payload.len() + record.subject.len() + record.msg_id.len() + HEADER_ALLOWANCE;
    (max_payload > 0 && size > max_payload).then(|| {
        format!(
            "{} bytes is more than the bus's max_payload of {max_payload}",
            record.payload.len()
        )
    })
}

/// Reads every record of a segment file.
fn read_segment(path: &Path) -> std::io::Result<Vec<Outgoing>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    let mut records = Vec::new();
    let mut offset = 0;
    while offset + 4 <= bytes.len() {
        let mut length = [0_u8; 4];
        length.copy_from_slice(&bytes[offset..offset + 4]);
        let length = u32::from_le_bytes(length) as usize;
        offset += 4;
        if offset + length > bytes.len() {
            tracing::error!(path = %path.display(), "truncated record at the end of a spool segment (crash mid-write); ignored");
            break;
        }
        match serde_json::from_slice(&bytes[offset..offset + length]) {
            Ok(record) => records.push(record),
            Err(error) => tracing::error!(%error, "unreadable spool record skipped"),
        }
        offset += length;
    }
    Ok(records)
}

/// A place among the events not yet durable. A request takes one before anything else (waiting
/// while the pipeline is behind) and its event carries it until the stream acknowledges the
/// event or the spool has fsync'd it: what a crash can lose is bounded by the number of slots.
pub struct Slot(#[expect(dead_code, reason = "held for its drop")] OwnedSemaphorePermit);

/// One message and the slots of its events, on its way to the stream or the spool.
struct Pending {
    record: Outgoing,
    slots: Vec<Slot>,
}

/// The handle handlers use.
#[derive(Clone)]
pub struct Publisher {
    sender: mpsc::UnboundedSender<Pending>,
    spool: Arc<Spool>,
    slots: Arc<Semaphore>,
}

impl Publisher {
    /// Starts the publish and drain tasks, with at most `max_unsettled` events accepted and not
    /// yet durable. The returned handle completes after shutdown (every handle dropped) once
    /// every queued event is published or spooled.
    #[must_use]
    pub fn start(
        client: async_nats::Client,
        jetstream: jetstream::Context,
        spool: Arc<Spool>,
        max_unsettled: usize,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let publish_task = tokio::spawn(publish_loop(
            client.clone(),
            jetstream.clone(),
            spool.clone(),
            receiver,
        ));
        tokio::spawn(drain_loop(client, jetstream, spool.clone()));
        let slots = Arc::new(Semaphore::new(max_unsettled.max(1)));
        (
            Self {
                sender,
                spool,
                slots,
            },
            publish_task,
        )
    }

    #[must_use]
    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Waits up to `wait` while the pipeline has no room for one more event (backpressure at
    /// admission: the node takes no more work than it can record). Takes nothing.
    ///
    /// # Errors
    /// When no slot freed within `wait`: the stream and the spool are both behind.
    pub async fn wait_for_room(&self, wait: Duration) -> Result<(), Backlogged> {
        match tokio::time::timeout(wait, self.slot()).await {
            Ok(Some(_slot)) => Ok(()),
            _ => Err(Backlogged),
        }
    }

    /// Takes a slot for an answer about to be complete, waiting as long as the pipeline needs
    /// (slots are always released: by an acknowledgement, an fsync, or the spool refusing).
    pub async fn slot(&self) -> Option<Slot> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(Slot(permit));
        }
        metrics::counter!("ingress_event_slot_waits_total").increment(1);
        self.slots.clone().acquire_owned().await.ok().map(Slot)
    }

    /// Queues an event, with the slot its request took (none for a request refused before it
    /// could take one). Never waits.
    pub fn publish<B: EventBody>(&self, envelope: &Envelope<B>, slot: Option<Slot>) {
        let payload = match envelope.to_bytes() {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "event could not be serialized");
                metrics::counter!("ingress_events_lost_total", "reason" => "serialize")
                    .increment(1);
                return;
            }
        };
        let record = Outgoing {
            subject: envelope.subject(),
            msg_id: envelope.event_id.to_string(),
            payload,
            events: 1,
        };
        let slots = slot.into_iter().collect();
        if self.sender.send(Pending { record, slots }).is_err() {
            tracing::error!("event publisher has stopped; event lost");
            metrics::counter!("ingress_events_lost_total", "reason" => "stopped").increment(1);
        }
    }
}

/// No event slot freed in time: the stream and the spool are both behind.
#[derive(Debug)]
pub struct Backlogged;

/// Why a publish did not succeed.
enum PublishFailure {
    /// It never will (the message is larger than the server accepts).
    Poison(String),
    /// It may later (no connection, no acknowledgement in time).
    Retry(String),
}

fn publish_error(error: &jetstream::context::PublishError) -> PublishFailure {
    match error.kind() {
        jetstream::context::PublishErrorKind::MaxPayloadExceeded => {
            PublishFailure::Poison(error.to_string())
        }
        _ => PublishFailure::Retry(error.to_string()),
    }
}

fn message(record: &Outgoing) -> PublishMessage {
    PublishMessage::build()
        .message_id(&record.msg_id)
        .payload(Bytes::from(record.payload.clone()))
}

async fn publish_one(
    jetstream: &jetstream::Context,
    record: &Outgoing,
) -> Result<(), PublishFailure> {
    let ack = tokio::time::timeout(ACK_TIMEOUT, async {
        let pending = jetstream
            .send_publish(record.subject.clone(), message(record))
            .await
            .map_err(|error| publish_error(&error))?;
        pending
            .await
            .map_err(|error| PublishFailure::Retry(error.to_string()))
    })
    .await
    .map_err(|_| PublishFailure::Retry("no acknowledgement in time".to_owned()))??;
    let _ = ack;
    Ok(())
}

type Acknowledgement = futures::future::BoxFuture<'static, (Pending, Result<(), PublishFailure>)>;

/// Sends one event and returns the wait for its acknowledgement, or why it could not be sent.
async fn send_one(
    jetstream: &jetstream::Context,
    pending: Pending,
) -> Result<Acknowledgement, (Pending, PublishFailure)> {
    let sent = tokio::time::timeout(
        ACK_TIMEOUT,
        jetstream.send_publish(pending.record.subject.clone(), message(&pending.record)),
    )
    .await;
    match sent {
        Ok(Ok(ack)) => Ok(Box::pin(async move {
            let result = match tokio::time::timeout(ACK_TIMEOUT, ack).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(error)) => Err(PublishFailure::Retry(error.to_string())),
                Err(_) => Err(PublishFailure::Retry(
                    "no acknowledgement in time".to_owned(),
                )),
            };
            (pending, result)
        })),
        Ok(Err(error)) => Err((pending, publish_error(&error))),
        Err(_) => Err((
            pending,
            PublishFailure::Retry("the connection did not take the message in time".to_owned()),
        )),
    }
}

/// The publish task. Events are sent as they come, each message's acknowledgement awaited
/// concurrently with the sending of the next (a continuous pipeline of at most
/// [`MAX_IN_FLIGHT`] messages), so an event is in the stream about one round trip and one fsync
/// of the server after its response; when the pipeline is full, the events that queue meanwhile
/// go in one message (group commit). A message not acknowledged goes to the spool; while the
/// spool holds anything, or the connection is down, new events go behind it.
async fn publish_loop(
    client: async_nats::Client,
    jetstream: jetstream::Context,
    spool: Arc<Spool>,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(BATCH_MAX_EVENTS);
    let mut in_flight: FuturesUnordered<Acknowledgement> = FuturesUnordered::new();
    // Events the spool's disk refused, oldest first; written (or published) before any newer.
    // They hold no slot: under the refuse policy the node refuses traffic while the disk does,
    // under the serve policy their loss is accepted (and bounded).
    let mut stuck: Vec<Outgoing> = Vec::new();
    let mut open = true;
    loop {
        if !open && in_flight.is_empty() {
            if !stuck.is_empty() {
                // Shutdown: one last try for what the disk refused.
                spool_records(&spool, &mut stuck).await;
            }
            break;
        }
        let mut to_spool: Vec<Pending> = Vec::new();
        tokio::select! {
            biased;
            Some(settled) = in_flight.next(), if !in_flight.is_empty() => {
                settle(&spool, settled, &mut to_spool);
                // Whatever else is already settled, in one go (one fsync for all failures).
                while let Some(Some(settled)) = in_flight.next().now_or_never() {
                    settle(&spool, settled, &mut to_spool);
                }
            }
            received = receiver.recv_many(&mut batch, BATCH_MAX_EVENTS),
                if open && in_flight.len() < MAX_IN_FLIGHT =>
            {
                if received == 0 {
                    open = false;
                    continue;
                }
                batch.retain(|pending| match poison_reason(&client, &pending.record) {
                    Some(reason) => {
                        spool.dead_letter(&pending.record, &reason);
                        false
                    }
                    None => true,
                });
                // While the connection is down, events go to disk at once rather than waiting
                // out an acknowledgement timeout in memory; behind a backlog, they keep order.
                let connected =
                    client.connection_state() == async_nats::connection::State::Connected;
                let max_payload = match client.max_payload() {
                    0 => DEFAULT_MAX_PAYLOAD,
                    known => known,
                };
                let messages = pack(std::mem::take(&mut batch), max_payload.saturating_sub(HEADER_ALLOWANCE + 64));
                if spool.is_empty() && stuck.is_empty() && connected {
                    for pending in messages {
                        match send_one(&jetstream, pending).await {
                            Ok(acknowledgement) => in_flight.push(acknowledgement),
                            Err((pending, PublishFailure::Poison(reason))) => {
                                spool.dead_letter(&pending.record, &reason);
                            }
                            Err((pending, PublishFailure::Retry(error))) => {
                                tracing::warn!(%error, "event not sent; spooling");
                                to_spool.push(pending);
                            }
                        }
                    }
                } else {
                    to_spool.extend(messages);
                }
            }
            () = tokio::time::sleep(STUCK_RETRY), if !stuck.is_empty() => {}
        }
        if !to_spool.is_empty() || !stuck.is_empty() {
            let mut records: Vec<Outgoing> = std::mem::take(&mut stuck);
            // The slots are released once the spool has the records (or has refused them).
            let mut slots = Vec::with_capacity(to_spool.len());
            for pending in to_spool {
                records.push(pending.record);
                slots.push(pending.slots);
            }
            if spool.is_empty()
                && client.connection_state() == async_nats::connection::State::Connected
                && spool.is_failing()
            {
                // The disk refuses; NATS may take what is stuck.
                records = publish_stuck(&jetstream, &spool, records).await;
            }
            if !records.is_empty() {
                spool_records(&spool, &mut records).await;
            }
            drop(slots);
            stuck = records;
        }
    }
}

/// The outcome of one acknowledgement: counted, dead-lettered, or queued for the spool.
fn settle(
    spool: &Spool,
    (pending, result): (Pending, Result<(), PublishFailure>),
    to_spool: &mut Vec<Pending>,
) {
    match result {
        Ok(()) => count_published(&pending.record),
        Err(PublishFailure::Poison(reason)) => spool.dead_letter(&pending.record, &reason),
        Err(PublishFailure::Retry(error)) => {
            tracing::warn!(%error, "event not acknowledged; spooling");
            to_spool.push(pending);
        }
    }
}

fn count_published(record: &Outgoing) {
    metrics::counter!("ingress_events_published_total").increment(record.events);
    metrics::counter!("ingress_event_messages_published_total").increment(1);
}

/// Publishes records the disk refused, 256 at a time; returns those NATS did not take.
async fn publish_stuck(
    jetstream: &jetstream::Context,
    spool: &Spool,
    records: Vec<Outgoing>,
) -> Vec<Outgoing> {
    let mut left = Vec::new();
    let mut records = records.into_iter().peekable();
    while records.peek().is_some() {
        let chunk: Vec<Outgoing> = records.by_ref().take(256).collect();
        let results =
            futures::future::join_all(chunk.iter().map(|record| publish_one(jetstream, record)))
                .await;
        for (record, result) in chunk.into_iter().zip(results) {
            match result {
                Ok(()) => count_published(&record),
                Err(PublishFailure::Poison(reason)) => spool.dead_letter(&record, &reason),
                Err(PublishFailure::Retry(_)) => left.push(record),
            }
        }
        if !left.is_empty() {
            break;
        }
    }
    left.extend(records);
    if left.is_empty() {
        // Whatever the disk refused went to NATS instead.
        spool.set_failing(false);
    }
    left
}

/// Appends records to the spool; leaves in `records` those the disk refused (to be written
/// again), bounded by [`STUCK_MAX_RECORDS`].
async fn spool_records(spool: &Spool, records: &mut Vec<Outgoing>) {
    let events = |records: &[Outgoing]| records.iter().map(|record| record.events).sum::<u64>();
    match spool.append(records).await {
        Ok(0) => {
            metrics::counter!("ingress_events_spooled_total").increment(events(records));
            records.clear();
        }
        Ok(rejected) => {
            // The spool takes records in order until it is full: the rejected are the last.
            let kept = records.len() - rejected;
            metrics::counter!("ingress_events_spooled_total").increment(events(&records[..kept]));
            metrics::counter!("ingress_events_lost_total", "reason" => "spool_full")
                .increment(events(&records[kept..]));
            tracing::error!(rejected, "event spool is full: events lost");
            records.clear();
        }
        Err(error) => {
            tracing::error!(%error, count = records.len(), "event spool write failed; keeping the events in memory and writing them again");
            if records.len() > STUCK_MAX_RECORDS {
                let lost = records.len() - STUCK_MAX_RECORDS;
                let lost_events = events(&records[..lost]);
                records.drain(..lost);
                metrics::counter!("ingress_events_lost_total", "reason" => "spool_io")
                    .increment(lost_events);
            }
        }
    }
}

async fn drain_loop(client: async_nats::Client, jetstream: jetstream::Context, spool: Arc<Spool>) {
    let mut backoff = Duration::from_millis(200);
    // Records of the segment being drained already dead-lettered, so a retried segment does not
    // dead-letter them again.
    let mut dead_lettered: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        if spool.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let segment = match spool.oldest_segment().await {
            Ok(Some(segment)) => segment,
            Ok(None) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(error) => {
                tracing::error!(%error, "cannot read the event spool");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let records = match tokio::task::spawn_blocking({
            let segment = segment.clone();
            move || read_segment(&segment)
        })
        .await
        {
            Ok(Ok(records)) => records,
            other => {
                tracing::error!(segment = %segment.display(), result = ?other.map(|r| r.map(|v| v.len())), "cannot read spool segment");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut all_ok = true;
        let publishable: Vec<&Outgoing> = records
            .iter()
            .filter(|record| {
                if dead_lettered.contains(&record.msg_id) {
                    return false;
                }
                match poison_reason(&client, record) {
                    Some(reason) => {
                        spool.dead_letter(record, &reason);
                        dead_lettered.insert(record.msg_id.clone());
                        false
                    }
                    None => true,
                }
            })
            .collect();
        for chunk in publishable.chunks(256) {
            let results = futures::future::join_all(
                chunk.iter().map(|record| publish_one(&jetstream, record)),
            )
            .await;
            let mut published = 0;
            for (record, result) in chunk.iter().zip(results) {
                match result {
                    Ok(()) => {
                        published += record.events;
                        metrics::counter!("ingress_event_messages_published_total").increment(1);
                    }
                    Err(PublishFailure::Poison(reason)) => {
                        spool.dead_letter(record, &reason);
                        dead_lettered.insert(record.msg_id.clone());
                    }
                    Err(PublishFailure::Retry(_)) => all_ok = false,
                }
            }
            metrics::counter!("ingress_events_published_total").increment(published);
            if !all_ok {
                break;
            }
        }
        if all_ok {
            if let Err(error) = spool.remove_segment(&segment).await {
                tracing::error!(%error, "cannot remove a drained spool segment");
            } else {
                tracing::info!(segment = %segment.display(), records = records.len(), "spool segment replayed");
                dead_lettered.clear();
            }
            backoff = Duration::from_millis(200);
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(subject: &str, id: usize, bytes: usize) -> Pending {
        let payload = format!(r#"{{"id":{id},"pad":"{}"}}"#, "x".repeat(bytes));
        Pending {
            record: Outgoing {
                subject: subject.to_owned(),
                msg_id: format!("e{id}"),
                payload: payload.into_bytes(),
                events: 1,
            },
            slots: Vec::new(),
        }
    }

    /// The ids of the events each message holds, in order.
    fn contents(messages: &[Pending]) -> Vec<Vec<u64>> {
        messages
            .iter()
            .map(|message| {
                let value: serde_json::Value =
                    serde_json::from_slice(&message.record.payload).unwrap();
                let events = match value {
                    serde_json::Value::Array(events) => events,
                    single => vec![single],
                };
                assert_eq!(events.len() as u64, message.record.events);
                events
                    .iter()
                    .map(|event| event["id"].as_u64().unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn packing_keeps_order_and_respects_the_bounds() {
        let request = "axongate.requests.success";
        // One event alone stays its own message, on its own subject and id.
        let single = pack(vec![pending(request, 1, 10)], 1 << 20);
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].record.subject, request);
        assert_eq!(single[0].record.msg_id, "e1");
        // Many become one batch message with a stable id, in order.
        let many = pack((0..5).map(|id| pending(request, id, 10)).collect(), 1 << 20);
        assert_eq!(contents(&many), vec![vec![0, 1, 2, 3, 4]]);
        assert_eq!(
            many[0].record.subject,
            shared::streams::REQUESTS_BATCH_SUBJECT
        );
        assert_eq!(many[0].record.msg_id, "e0+5");
        assert!(shared::envelope::is_batch(&many[0].record.payload));
        // The byte bound splits (each event here is about 130 bytes).
        let split = pack((0..5).map(|id| pending(request, id, 100)).collect(), 300);
        assert_eq!(contents(&split), vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert!(
            split
                .iter()
                .all(|message| message.record.payload.len() <= 300)
        );
        // The count bound splits too.
        let counted = pack(
            (0..BATCH_MAX_EVENTS + 1)
                .map(|id| pending(request, id, 1))
                .collect(),
            usize::MAX,
        );
        assert_eq!(counted.len(), 2);
        assert_eq!(counted[0].record.events as usize, BATCH_MAX_EVENTS);
        // Other streams' events are never packed and keep their place.
        let mixed = pack(
            vec![
                pending(request, 1, 1),
                pending(request, 2, 1),
                pending("axongate.audit.x", 3, 1),
                pending(request, 4, 1),
            ],
            1 << 20,
        );
        assert_eq!(contents(&mixed), vec![vec![1, 2], vec![3], vec![4]]);
        assert_eq!(mixed[1].record.subject, "axongate.audit.x");
    }

    #[tokio::test]
    async fn spool_round_trip_and_bound() {
        let dir = std::env::temp_dir().join(format!("axg-spool-{}", uuid::Uuid::now_v7()));
        let spool = Spool::open(&dir, 300).unwrap();
        let record = |index: u32| Outgoing {
            subject: "s".into(),
            msg_id: index.to_string(),
            payload: vec![1, 2, 3],
            events: 1,
        };
        assert_eq!(spool.append(&[record(1), record(2)]).await.unwrap(), 0);
        assert!(!spool.is_empty());
        // Reopening finds the records (a restart).
        drop(spool);
        let spool = Spool::open(&dir, 300).unwrap();
        let segment = spool.oldest_segment().await.unwrap().unwrap();
        let records = read_segment(&segment).unwrap();
        assert_eq!(
            records
                .iter()
                .map(|r| r.msg_id.as_str())
                .collect::<Vec<_>>(),
            ["1", "2"]
        );
        // The bound: further records are rejected once full.
        let rejected = spool
            .append(&(3..10).map(record).collect::<Vec<_>>())
            .await
            .unwrap();
        assert!(rejected > 0 && spool.is_full());
        spool.remove_segment(&segment).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
