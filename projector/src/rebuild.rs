//! `projector rebuild <view>` and `projector replay`: reading a stream from a point, with
//! progress output, through an ephemeral consumer that acknowledges nothing.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, consumer::AckPolicy, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt as _;
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
/// calling `on_batch` with each batch.
///
/// # Errors
/// When the stream is missing or a fetch fails.
pub async fn read_stream<F, Fut>(
    jetstream: &jetstream::Context,
    stream_name: &str,
    from: From,
    to: Option<u64>,
    mut on_batch: F,
) -> anyhow::Result<u64>
where
    F: FnMut(Vec<Received>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut stream = jetstream
        .get_stream(stream_name)
        .await
        .with_context(|| format!("stream {stream_name}"))?;
    let last = stream.info().await?.state.last_sequence;
    let end = to.map_or(last, |to| to.min(last));
    let deliver_policy = match from {
        From::Sequence(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
        From::Time(start_time) => DeliverPolicy::ByStartTime { start_time },
    };
    let mut read = 0_u64;
    if end == 0 {
        return Ok(0);
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
        read += received.len() as u64;
        on_batch(received).await?;
        if done {
            break;
        }
    }
    Ok(read)
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
    let count = read_stream(jetstream, stream, from, to, |batch| async move {
        let mut out = std::io::stdout().lock();
        for message in batch {
            let event: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_else(
                |_| serde_json::json!({"undecodable": String::from_utf8_lossy(&message.payload)}),
            );
            writeln!(
                out,
                "{}",
                serde_json::json!({"sequence": message.sequence, "event": event})
            )?;
        }
        Ok(())
    })
    .await?;
    eprintln!("replayed {count} events from {stream}");
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
    let total = read_stream(jetstream, CONFIG_STREAM, From::Sequence(1), None, |batch| {
        batches.push(batch);
        async { Ok(()) }
    })
    .await?;
    eprintln!("rebuild config: read {total} events from {CONFIG_STREAM}");
    let mut pending = batches.into_iter();
    let mut done = 0_u64;
    let outcome = stores
        .pg
        .rebuild_config(|| {
            let next = pending.next();
            if let Some(batch) = &next {
                done += batch.len() as u64;
                eprintln!("rebuild config: applying {done}/{total}");
            }
            let items = next.map(|batch| decode_items::<ConfigEvent>(&batch));
            async move { Ok(items) }
        })
        .await?;
    eprintln!(
        "rebuild config: done, {} applied, {} skipped (duplicate event ids), {} dead-lettered",
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
    let total = read_stream(
        jetstream,
        REQUESTS_STREAM,
        From::Sequence(1),
        None,
        |batch| {
            let rows = request_rows(&batch);
            let ch = &stores.ch;
            written += rows.len() as u64;
            let progress = written;
            async move {
                ch.insert_requests(&rows).await?;
                eprintln!("rebuild analytics: {progress} rows written");
                Ok(())
            }
        },
    )
    .await?;
    eprintln!("rebuild analytics: done, {total} events read, {written} rows written");
    Ok(())
}
