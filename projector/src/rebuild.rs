//! `projector rebuild <view>` and `projector replay`: reading a stream from a point through an
//! ephemeral consumer that acknowledges nothing. A rebuild draws its progress on stderr when
//! that is a terminal (`kit::progress`) and otherwise prints only its summary lines.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, consumer::AckPolicy, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt as _;
use kit::progress::{Finished, Progress};
use shared::config::ConfigEvent;
use shared::streams::{CONFIG_STREAM, REQUESTS_STREAM};
use time::OffsetDateTime;

use crate::consumer::{Received, decode_items, request_rows};
use crate::store::Stores;

/// Where a replay starts.
#[derive(Debug, Clone, Copy)]
pub enum From {
    Sequence(u64),
    Time(OffsetDateTime),
}

impl std::str::FromStr for From {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if let Ok(sequence) = text.parse::<u64>() {
            return Ok(Self::Sequence(sequence.max(1)));
        }
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .map(Self::Time)
            .map_err(|_| format!("{text:?} is neither a sequence number nor an RFC 3339 time"))
    }
}

/// Reads `stream` from `from` up to `to` (or the last message present when the read starts),
/// calling `on_batch` with each batch, and returns how many messages it read. With a
/// `progress_label`, the read is drawn as progress on a terminal (see `kit::progress`).
///
/// # Errors
/// When the stream is missing or a fetch fails.
pub async fn read_stream<F, Fut>(
    jetstream: &jetstream::Context,
    stream_name: &str,
    from: From,
    to: Option<u64>,
    progress_label: Option<&str>,
    mut on_batch: F,
) -> anyhow::Result<Finished>
where
    F: FnMut(Vec<Received>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut stream = jetstream
        .get_stream(stream_name)
        .await
        .with_context(|| format!("stream {stream_name}"))?;
    let state = stream.info().await?.state.clone();
    let end = to.map_or(state.last_sequence, |to| to.min(state.last_sequence));
    // What there is to read, for the progress line: exact from a sequence (unless messages in
    // the range were deleted), the stream's message count from a time.
    let expected = match from {
        From::Sequence(start) => (end + 1).saturating_sub(start.max(state.first_sequence)),
        From::Time(_) => state.messages,
    };
    let label = progress_label.unwrap_or(stream_name);
    let mut progress = match progress_label {
        Some(_) => Progress::on_stderr(label, "events", expected),
        None => Progress::hidden(label, "events", expected),
    };
    let deliver_policy = match from {
        From::Sequence(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        From::Time(start_time) => DeliverPolicy::ByStartTime { start_time },
    };
    if end == 0 {
        return Ok(progress.finish());
    }
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await?;
    loop {
        let batch: Vec<_> = consumer
            .fetch()
            .max_messages(1_000)
            .expires(Duration::from_secs(1))
            .messages()
            .await?
            .collect()
            .await;
        if batch.is_empty() {
            break;
        }
        let mut received = Vec::with_capacity(batch.len());
        let mut done = false;
        for message in batch {
            let message = message.map_err(|error| anyhow::anyhow!("{error}"))?;
            let sequence = message
                .info()
                .map_err(|error| anyhow::anyhow!("{error}"))?
                .stream_sequence;
            if sequence > end {
                done = true;
                break;
            }
            received.push(Received {
                sequence,
                payload: message.payload.clone(),
            });
            done = sequence == end;
        }
        let count = received.len() as u64;
        on_batch(received).await?;
        progress.add(count);
        if done {
            break;
        }
    }
    Ok(progress.finish())
}

/// Prints events as JSON lines on stdout.
///
/// # Errors
/// As [`read_stream`].
pub async fn replay(
    jetstream: &jetstream::Context,
    stream: &str,
    from: From,
    to: Option<u64>,
) -> anyhow::Result<()> {
    let read = read_stream(jetstream, stream, from, to, None, |batch| async move {
        let mut out = std::io::stdout().lock();
        for message in batch {
            let event: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_else(
                |_| serde_json::json!({"undecodable": String::from_utf8_lossy(&message.payload)}),
            );
            // A batch message (ingress's group commit) is one line per event, each with the
            // message's sequence and its place in the batch.
            if let serde_json::Value::Array(events) = event {
                for (index, event) in events.into_iter().enumerate() {
                    writeln!(
                        out,
                        "{}",
                        serde_json::json!({"sequence": message.sequence, "index": index, "event": event})
                    )?;
                }
            } else {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"sequence": message.sequence, "event": event})
                )?;
            }
        }
        Ok(())
    })
    .await?;
    eprintln!(
        "replayed {} messages from {stream} (a batch message is one line per event)",
        read.done
    );
    Ok(())
}

/// Rebuilds a view from its stream: `config` (Postgres config views and their audit rows) or
/// `analytics` (the ClickHouse requests table).
///
/// # Errors
/// On an unknown view or any read or write failure.
pub async fn rebuild(
    jetstream: &jetstream::Context,
    stores: &Stores,
    view: &str,
) -> anyhow::Result<()> {
    match view {
        "config" => rebuild_config(jetstream, stores).await,
        "analytics" => rebuild_analytics(jetstream, stores).await,
        other => bail!("unknown view {other:?}; views are: config, analytics"),
    }
}

async fn rebuild_config(jetstream: &jetstream::Context, stores: &Stores) -> anyhow::Result<()> {
    // Read the whole stream first (config streams are small), then apply it in one transaction.
    let mut batches = Vec::new();
    let read = read_stream(
        jetstream,
        CONFIG_STREAM,
        From::Sequence(1),
        None,
        Some("rebuild config: reading"),
        |batch| {
            batches.push(batch);
            async { Ok(()) }
        },
    )
    .await?;
    eprintln!(
        "rebuild config: read {} events from {CONFIG_STREAM}",
        read.done
    );
    let mut applying = Progress::on_stderr("rebuild config: applying", "events", read.done);
    let mut pending = batches.into_iter();
    // Handed to the store, which asks for the next batch once it has applied this one.
    let mut handed_out = 0_u64;
    let outcome = stores
        .pg
        .rebuild_config(|| {
            applying.advance_to(handed_out);
            let next = pending.next();
            if let Some(batch) = &next {
                handed_out += batch.len() as u64;
            }
            let items = next.map(|batch| decode_items::<ConfigEvent>(&batch));
            async move { Ok(items) }
        })
        .await?;
    let applied = applying.finish();
    eprintln!(
        "rebuild config: done, {} applied, {} skipped (duplicate event ids), {} dead-lettered (applying {applied})",
        outcome.applied, outcome.skipped, outcome.dead_lettered
    );
    Ok(())
}

async fn rebuild_analytics(jetstream: &jetstream::Context, stores: &Stores) -> anyhow::Result<()> {
    eprintln!(
        "rebuild analytics: stop the running projector first, or rows it writes meanwhile may be doubled until ClickHouse merges them"
    );
    stores.ch.truncate_requests().await?;
    let mut written = 0_u64;
    let read = read_stream(
        jetstream,
        REQUESTS_STREAM,
        From::Sequence(1),
        None,
        Some("rebuild analytics: reading"),
        |batch| {
            let rows = request_rows(&batch);
            let ch = &stores.ch;
            written += rows.len() as u64;
            async move {
                ch.insert_requests(&rows).await?;
                Ok(())
            }
        },
    )
    .await?;
    eprintln!(
        "rebuild analytics: done, {} messages read, {written} rows written ({read})",
        read.done
    );
    Ok(())
}
