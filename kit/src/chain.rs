//! Publishing to a chained stream, and reading one back to verify it ([`shared::chain`]).
//!
//! [`ChainedStream::publish`] stores an event only if the stream's last sequence is still the
//! one whose link the event names as its predecessor (`Nats-Expected-Last-Sequence`), so two
//! publishers — two admin-api processes, or `apply` beside a running one — can never fork the
//! chain: the one that loses re-reads the head and links again. One process publishes one
//! event at a time per stream (config and audit writes are rare; a login is an argon2 check).

use std::collections::HashMap;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull},
    context::PublishErrorKind,
    message::PublishMessage,
    stream::LastRawMessageErrorKind,
};
use bytes::Bytes;
use futures::StreamExt;
use shared::audit::{AuditEvent, ChainCheckpoint};
use shared::chain::{
    ChainKey, ChainReport, Checkpoint, LINK_HEADER, PREV_HEADER, StoredLink, Verifier, next_prev,
};
use shared::streams::{AUDIT_STREAM, AUDIT_SUBJECT_PREFIX};
use shared::{Envelope, EventBody};

/// How often a publish may find that another publisher moved the stream before giving up.
const MAX_RELINKS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The event's subject is no longer at the sequence the caller expected (its optimistic
    /// concurrency check): nothing was stored.
    #[error("the subject moved on")]
    SubjectMoved,
    #[error("{0}")]
    Bus(String),
}

/// The stream's last sequence and what the next event must name as its predecessor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: u64,
    pub prev: String,
    /// The last event's own link (`None`: empty stream, or its last event is unchained).
    pub link: Option<String>,
    /// The last event's subject (empty for an empty stream).
    pub subject: String,
    /// The sequence of the event `link` and `subject` are of: `seq`, unless the newest
    /// message was deleted.
    pub link_seq: u64,
}

/// One chained stream as a publisher sees it.
pub struct ChainedStream {
    jetstream: jetstream::Context,
    stream: &'static str,
    key: ChainKey,
    head: tokio::sync::Mutex<Option<Head>>,
}

impl ChainedStream {
    #[must_use]
    pub fn new(jetstream: jetstream::Context, stream: &'static str, key: ChainKey) -> Self {
        Self {
            jetstream,
            stream,
            key,
            head: tokio::sync::Mutex::new(None),
        }
    }

    #[must_use]
    pub fn stream(&self) -> &'static str {
        self.stream
    }

    /// Reads the stream's head from the server.
    ///
    /// # Errors
    /// When the stream cannot be asked.
    pub async fn read_head(&self) -> Result<Head, ChainError> {
        read_head(&self.jetstream, self.stream).await
    }

    /// Publishes `body` on `subject`, linked to the stream's last event. With
    /// `expected_subject_seq`, stored only if the subject is still at that sequence.
    /// Returns the stream sequence.
    ///
    /// # Errors
    /// [`ChainError::SubjectMoved`] when the subject check failed; [`ChainError::Bus`] when the
    /// bus did not store it.
    pub async fn publish(
        &self,
        subject: String,
        message_id: &str,
        expected_subject_seq: Option<u64>,
        body: Bytes,
    ) -> Result<u64, ChainError> {
        let mut cached = self.head.lock().await;
        for _ in 0..MAX_RELINKS {
            let head = match cached.as_ref() {
                Some(head) => head.clone(),
                None => {
                    let head = self.read_head().await?;
                    *cached = Some(head.clone());
                    head
                }
            };
            let link = self.key.link(&head.prev, &subject, &body);
            let mut message = PublishMessage::build()
                .message_id(message_id)
                .expected_last_sequence(head.seq)
                .header(PREV_HEADER, head.prev.as_str())
                .header(LINK_HEADER, link.as_str())
                .payload(body.clone());
            if let Some(expected) = expected_subject_seq {
                message = message.expected_last_subject_sequence(expected);
            }
            let result = match self.jetstream.send_publish(subject.clone(), message).await {
                Ok(ack) => ack.await,
                Err(error) => Err(error),
            };
            match result {
                Ok(ack) => {
                    // A duplicate was stored earlier, under a head we no longer know.
                    *cached = (!ack.duplicate).then(|| Head {
                        seq: ack.sequence,
                        prev: link.clone(),
                        link: Some(link),
                        subject: subject.clone(),
                        link_seq: ack.sequence,
                    });
                    return Ok(ack.sequence);
                }
                Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                    let fresh = self.read_head().await?;
                    let moved = fresh.seq != head.seq;
                    *cached = Some(fresh);
                    if !moved {
                        // The stream is where we thought: the subject check refused it.
                        return Err(ChainError::SubjectMoved);
                    }
                }
                Err(error) => {
                    *cached = None;
                    return Err(ChainError::Bus(error.to_string()));
                }
            }
        }
        Err(ChainError::Bus(format!(
            "{}: other publishers kept moving the stream; try again",
            self.stream
        )))
    }

    /// Publishes an event (its envelope's bytes, subject and id) on this stream.
    ///
    /// # Errors
    /// As [`Self::publish`].
    pub async fn publish_envelope<B: EventBody + serde::Serialize>(
        &self,
        envelope: &Envelope<B>,
        expected_subject_seq: Option<u64>,
    ) -> Result<u64, ChainError> {
        let body = envelope
            .to_bytes()
            .map_err(|error| ChainError::Bus(error.to_string()))?;
        self.publish(
            envelope.subject(),
            &envelope.event_id.to_string(),
            expected_subject_seq,
            body.into(),
        )
        .await
    }
}

/// The stream and its current info.
async fn open(
    jetstream: &jetstream::Context,
    name: &str,
) -> Result<(jetstream::stream::Stream, jetstream::stream::Info), ChainError> {
    let bus = |error: String| ChainError::Bus(format!("{name}: {error}"));
    let mut stream = jetstream
        .get_stream(name)
        .await
        .map_err(|error| bus(error.to_string()))?;
    let info = stream
        .info()
        .await
        .map_err(|error| bus(error.to_string()))?
        .clone();
    Ok((stream, info))
}

async fn read_head(jetstream: &jetstream::Context, name: &str) -> Result<Head, ChainError> {
    let bus = |error: String| ChainError::Bus(format!("{name}: {error}"));
    let (stream, info) = open(jetstream, name).await?;
    let seq = info.state.last_sequence;
    if info.state.messages == 0 {
        return Ok(Head {
            seq,
            prev: next_prev(None),
            link: None,
            subject: String::new(),
            link_seq: seq,
        });
    }
    // The last sequence may have been deleted: then the newest message still there.
    let last = match stream.get_raw_message(seq).await {
        Ok(message) => message,
        Err(_) => {
            let subjects = info.config.subjects.first().cloned().unwrap_or_default();
            match stream.get_last_raw_message_by_subject(&subjects).await {
                Ok(message) => message,
                Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {
                    return Ok(Head {
                        seq,
                        prev: next_prev(None),
                        link: None,
                        subject: String::new(),
                        link_seq: seq,
                    });
                }
                Err(error) => return Err(bus(error.to_string())),
            }
        }
    };
    let prev_header = last.headers.get(PREV_HEADER).map(|value| value.as_str());
    let link_header = last.headers.get(LINK_HEADER).map(|value| value.as_str());
    let stored = StoredLink {
        subject: last.subject.as_str(),
        body: &last.payload,
        prev: prev_header,
        link: link_header,
    };
    Ok(Head {
        seq,
        prev: next_prev(Some(stored)),
        link: link_header.map(str::to_owned),
        subject: last.subject.to_string(),
        link_seq: last.sequence,
    })
}

/// The subject of checkpoint events.
#[must_use]
pub fn checkpoint_subject() -> String {
    format!("{AUDIT_SUBJECT_PREFIX}.chain_checkpoint")
}

/// Every checkpoint on the audit stream, by the stream it names.
///
/// # Errors
/// When the audit stream cannot be read.
pub async fn checkpoints(
    jetstream: &jetstream::Context,
) -> Result<HashMap<String, Vec<Checkpoint>>, ChainError> {
    let bus = |error: String| ChainError::Bus(format!("{AUDIT_STREAM}: {error}"));
    let subject = checkpoint_subject();
    let stream = jetstream
        .get_stream(AUDIT_STREAM)
        .await
        .map_err(|error| bus(error.to_string()))?;
    let last = match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(message) => message.sequence,
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => {
            return Ok(HashMap::new());
        }
        Err(error) => return Err(bus(error.to_string())),
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            filter_subject: subject,
            ..Default::default()
        })
        .await
        .map_err(|error| bus(error.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| bus(error.to_string()))?;
    let mut found: HashMap<String, Vec<Checkpoint>> = HashMap::new();
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| bus(error.to_string()))?;
        let info = message.info().map_err(|error| bus(error.to_string()))?;
        let sequence = info.stream_sequence;
        let pending = info.pending;
        if let Ok(envelope) = Envelope::<AuditEvent>::from_bytes(&message.payload)
            && let AuditEvent::ChainCheckpoint(ChainCheckpoint { stream, seq, link }) =
                envelope.body
        {
            found
                .entry(stream)
                .or_default()
                .push(Checkpoint { seq, link });
        }
        if sequence >= last || pending == 0 {
            break;
        }
    }
    Ok(found)
}

/// Walks the whole of stream `name` and checks every link and the given checkpoints.
/// `progress(read, last)` is called every few thousand events.
///
/// # Errors
/// When the stream cannot be read.
pub async fn verify(
    jetstream: &jetstream::Context,
    name: &str,
    key: &ChainKey,
    checkpoints: Vec<Checkpoint>,
    mut progress: impl FnMut(u64, u64),
) -> Result<ChainReport, ChainError> {
    let bus = |error: String| ChainError::Bus(format!("{name}: {error}"));
    let (stream, info) = open(jetstream, name).await?;
    let last = info.state.last_sequence;
    let mut verifier = Verifier::new(key, name, checkpoints);
    if info.state.messages == 0 {
        return Ok(verifier.finish());
    }
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|error| bus(error.to_string()))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| bus(error.to_string()))?;
    let mut read = 0u64;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| bus(error.to_string()))?;
        let info = message.info().map_err(|error| bus(error.to_string()))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str())
        };
        verifier.push(
            sequence,
            StoredLink {
                subject: message.subject.as_str(),
                body: &message.payload,
                prev: header(PREV_HEADER),
                link: header(LINK_HEADER),
            },
        );
        read += 1;
        if read.is_multiple_of(5000) {
            progress(read, last);
        }
        if sequence >= last || pending == 0 {
            break;
        }
    }
    progress(read, last);
    Ok(verifier.finish())
}
