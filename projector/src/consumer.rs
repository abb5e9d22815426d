//! The live projections: one durable pull consumer per stream, fetching batches, writing them
//! with retry, and acknowledging only after the write is durable.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer::AckPolicy, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt as _;
use shared::audit::AuditEvent;
use shared::config::ConfigEvent;
use shared::request::RequestEvent;
use shared::streams::{AUDIT_STREAM, CONFIG_STREAM, REQUESTS_STREAM};
use shared::{Envelope, EventBody};

use crate::config::ProjectorConfig;
use crate::fold::RequestRow;
use crate::store::Stores;
use crate::store::pg::{self, Item};

/// Durable consumer names. Renaming one would replay its stream (harmlessly) from the start.
pub const CONFIG_CONSUMER: &str = "projector-config";
pub const AUDIT_CONSUMER: &str = "projector-audit";
pub const REQUESTS_CONSUMER: &str = "projector-requests";
pub const SPEND_CONSUMER: &str = "projector-spend";

/// One live projection: the stream and durable consumer it reads, how far its store got, and
/// how its store writes a batch. `run_projection` does the rest (fetching, contiguity, retry,
/// acknowledgement) the same way for each.
pub trait Projection {
    /// The projection's name in logs and metrics.
    const NAME: &'static str;
    const STREAM: &'static str;
    const CONSUMER: &'static str;

    /// How many messages one fetch asks for.
    fn batch_size(&self) -> usize;

    /// The last stream sequence the store applied.
    fn resume(&self) -> impl Future<Output = anyhow::Result<u64>> + Send;

    /// Writes a batch durably; returns how many events it applied.
    fn write(&self, messages: &[Received]) -> impl Future<Output = anyhow::Result<u64>> + Send;
}

/// `AXONGATE_CONFIG` into the Postgres config views and their audit rows.
pub struct ConfigProjection(pub Arc<Stores>);

impl Projection for ConfigProjection {
    const NAME: &'static str = "config";
    const STREAM: &'static str = CONFIG_STREAM;
    const CONSUMER: &'static str = CONFIG_CONSUMER;

    fn batch_size(&self) -> usize {
        256
    }

    async fn resume(&self) -> anyhow::Result<u64> {
        self.0.pg.offset(pg::CONFIG_PROJECTION).await
    }

    async fn write(&self, messages: &[Received]) -> anyhow::Result<u64> {
        let items = decode_items::<ConfigEvent>(messages);
        Ok(self.0.pg.apply_config_batch(&items).await?.applied)
    }
}

/// `AXONGATE_AUDIT` into the Postgres audit view (and key health from key tests).
pub struct AuditProjection(pub Arc<Stores>);

impl Projection for AuditProjection {
    const NAME: &'static str = "audit";
    const STREAM: &'static str = AUDIT_STREAM;
    const CONSUMER: &'static str = AUDIT_CONSUMER;

    fn batch_size(&self) -> usize {
        256
    }

    async fn resume(&self) -> anyhow::Result<u64> {
        self.0.pg.offset(pg::AUDIT_PROJECTION).await
    }

    async fn write(&self, messages: &[Received]) -> anyhow::Result<u64> {
        let items = decode_items::<AuditEvent>(messages);
        Ok(self.0.pg.apply_audit_batch(&items).await?.applied)
    }
}

/// `AXONGATE_REQUESTS` into Postgres spend per token and day (and key health from attempts).
pub struct SpendProjection {
    pub stores: Arc<Stores>,
    pub batch_size: usize,
}

impl Projection for SpendProjection {
    const NAME: &'static str = "spend";
    const STREAM: &'static str = REQUESTS_STREAM;
    const CONSUMER: &'static str = SPEND_CONSUMER;

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    async fn resume(&self) -> anyhow::Result<u64> {
        self.stores.pg.offset(pg::SPEND_PROJECTION).await
    }

    async fn write(&self, messages: &[Received]) -> anyhow::Result<u64> {
        let items = decode_items::<RequestEvent>(messages);
        Ok(self.stores.pg.apply_spend_batch(&items).await?.applied)
    }
}

/// `AXONGATE_REQUESTS` into ClickHouse request rows.
pub struct RequestsProjection {
    pub stores: Arc<Stores>,
    pub batch_size: usize,
}

impl Projection for RequestsProjection {
    const NAME: &'static str = "requests";
    const STREAM: &'static str = REQUESTS_STREAM;
    const CONSUMER: &'static str = REQUESTS_CONSUMER;

    fn batch_size(&self) -> usize {
        self.batch_size
    }

    async fn resume(&self) -> anyhow::Result<u64> {
        self.stores.ch.load_high_water_mark().await?;
        Ok(self.stores.ch.high_water_mark())
    }

    async fn write(&self, messages: &[Received]) -> anyhow::Result<u64> {
        let rows = request_rows(messages);
        Ok(self.stores.ch.insert_requests(&rows).await? as u64)
    }
}

/// Runs the four projections until one fails for good.
///
/// # Errors
/// When a consumer cannot be created (the stream is missing, say).
pub async fn run_all(
    jetstream: jetstream::Context,
    stores: Arc<Stores>,
    config: ProjectorConfig,
) -> anyhow::Result<()> {
    let wait = Duration::from_millis(config.batch_max_wait_ms);
    let config_projection = ConfigProjection(stores.clone());
    let audit_projection = AuditProjection(stores.clone());
    let spend_projection = SpendProjection {
        stores: stores.clone(),
        batch_size: config.batch_size,
    };
    let requests_projection = RequestsProjection {
        stores,
        batch_size: config.batch_size,
    };
    tokio::try_join!(
        run_projection(&config_projection, &jetstream, wait),
        run_projection(&audit_projection, &jetstream, wait),
        run_projection(&requests_projection, &jetstream, wait),
        run_projection(&spend_projection, &jetstream, wait),
    )?;
    Ok(())
}

/// A received message reduced to what the folds need.
#[derive(Debug, Clone)]
pub struct Received {
    pub sequence: u64,
    pub payload: bytes::Bytes,
}

/// Decodes messages into batch items, every event of a batch message with the message's
/// sequence; undecodable ones become poison items.
#[must_use]
pub fn decode_items<B: EventBody>(messages: &[Received]) -> Vec<Item<B>> {
    messages
        .iter()
        .flat_map(|message| {
            Envelope::<B>::all_from_bytes(&message.payload)
                .into_iter()
                .map(|decoded| match decoded {
                    Ok(envelope) => Item::Event { sequence: message.sequence, envelope: Box::new(envelope) },
                    Err(error) => {
                        tracing::error!(sequence = message.sequence, %error, "undecodable event, dead-lettering");
                        Item::Poison { sequence: message.sequence, reason: error.to_string(), payload: message.payload.to_vec() }
                    }
                })
        })
        .collect()
}

/// Maps request events (every event of a batch message) to rows; undecodable ones are counted
/// and skipped (the stream keeps them, and `projector replay` shows them).
#[must_use]
pub fn request_rows(messages: &[Received]) -> Vec<RequestRow> {
    messages
        .iter()
        .flat_map(|message| {
            Envelope::<RequestEvent>::all_from_bytes(&message.payload)
                .into_iter()
                .filter_map(|decoded| match decoded {
                    Ok(envelope) => Some(RequestRow::from_event(message.sequence, &envelope)),
                    Err(error) => {
                        metrics::counter!("projector_dead_letters_total", "stream" => REQUESTS_STREAM).increment(1);
                        tracing::error!(sequence = message.sequence, %error, "undecodable request event skipped");
                        None
                    }
                })
        })
        .collect()
}

/// (Re)creates the durable consumer so that it delivers from `after + 1`, the first sequence
/// the store has not applied. Starting from the store's own record, rather than from whatever
/// the old consumer had outstanding, means a message delivered to a crashed instance and never
/// acknowledged cannot be overtaken by later ones (which the writers' skip rule would otherwise
/// turn into a loss). One projector instance runs at a time.
async fn durable_consumer(
    jetstream: &jetstream::Context,
    stream_name: &str,
    durable: &str,
    after: u64,
) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
    let stream = jetstream
        .get_stream(stream_name)
        .await
        .with_context(|| format!("stream {stream_name}"))?;
    // Not found is fine: first start, or deleted by an operator.
    let _ = stream.delete_consumer(durable).await;
    let deliver_policy = if after == 0 {
        DeliverPolicy::All
    } else {
        DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        }
    };
    stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_owned()),
            deliver_policy,
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 100_000,
            ..Default::default()
        })
        .await
        .with_context(|| format!("consumer {durable} on {stream_name}"))
}

/// The first sequence still in the stream (older ones expired by retention).
async fn first_sequence(jetstream: &jetstream::Context, stream_name: &str) -> Option<u64> {
    let mut stream = jetstream.get_stream(stream_name).await.ok()?;
    stream
        .info()
        .await
        .ok()
        .map(|info| info.state.first_sequence)
}

/// Fetch, check contiguity, write (retrying with backoff until it succeeds), ack the batch's
/// last message; starting where the projection's store stopped.
async fn run_projection<P: Projection>(
    projection: &P,
    jetstream: &jetstream::Context,
    wait: Duration,
) -> anyhow::Result<()> {
    let (name, stream_name, durable) = (P::NAME, P::STREAM, P::CONSUMER);
    let batch_size = projection.batch_size();
    let mut applied = projection.resume().await?;
    let mut consumer = durable_consumer(jetstream, stream_name, durable, applied).await?;
    let mut backoff = Duration::from_millis(100);
    loop {
        let batch = match consumer
            .fetch()
            .max_messages(batch_size)
            .expires(wait)
            .messages()
            .await
        {
            Ok(batch) => batch,
            Err(error) => {
                tracing::warn!(projection = name, %error, "fetch failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let messages: Vec<_> = batch.collect().await;
        let mut received = Vec::with_capacity(messages.len());
        let mut last_message = None;
        let mut errors = 0_u32;
        for message in messages {
            match message {
                Ok(message) => {
                    let sequence = message.info().map(|info| info.stream_sequence).unwrap_or(0);
                    received.push(Received {
                        sequence,
                        payload: message.payload.clone(),
                    });
                    last_message = Some(message);
                }
                Err(error) => {
                    errors += 1;
                    if errors == 1 {
                        tracing::warn!(projection = name, %error, "message error in batch");
                    }
                }
            }
        }
        let Some(last_message) = last_message else {
            if errors > 0 {
                // Every message of the batch failed: the consumer may have been deleted or the
                // server is restarting. Back off, then recreate the consumer from the store.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                match durable_consumer(jetstream, stream_name, durable, applied).await {
                    Ok(fresh) => consumer = fresh,
                    Err(error) => tracing::warn!(
                        projection = name,
                        error = format!("{error:#}"),
                        "consumer unavailable"
                    ),
                }
                continue;
            }
            update_lag(name, &consumer).await;
            continue;
        };
        // Contiguity: the batch must continue exactly where the store stopped. A gap means
        // something was delivered elsewhere and not acknowledged; never write past it.
        received.retain(|message| message.sequence > applied);
        if let Some(first) = received.first().map(|message| message.sequence)
            && first != applied + 1
        {
            let oldest_kept = first_sequence(jetstream, stream_name).await.unwrap_or(0);
            if oldest_kept > applied + 1 && first <= oldest_kept {
                tracing::error!(
                    projection = name,
                    from = applied + 1,
                    to = oldest_kept - 1,
                    "events expired from the stream before they were projected"
                );
                metrics::counter!("projector_events_expired_unprojected_total", "projection" => name)
                    .increment(oldest_kept - 1 - applied);
            } else {
                tracing::warn!(
                    projection = name,
                    expected = applied + 1,
                    got = first,
                    "gap in delivery; restarting the consumer from the store"
                );
                consumer = durable_consumer(jetstream, stream_name, durable, applied).await?;
                continue;
            }
        }
        if !received.is_empty() {
            let highest = received.last().map_or(applied, |message| message.sequence);
            // Never ack before the write is durable: retry the write until it succeeds. While a
            // store is down the batch waits here, and the stream keeps everything behind it.
            let mut write_backoff = Duration::from_millis(100);
            loop {
                match projection.write(&received).await {
                    Ok(written) => {
                        metrics::counter!("projector_events_applied_total", "projection" => name)
                            .increment(written);
                        break;
                    }
                    Err(error) => {
                        metrics::counter!("projector_write_errors_total", "projection" => name)
                            .increment(1);
                        tracing::error!(
                            projection = name,
                            error = format!("{error:#}"),
                            "write failed, retrying"
                        );
                        tokio::time::sleep(write_backoff).await;
                        write_backoff = (write_backoff * 2).min(Duration::from_secs(5));
                        // Keep the messages ours while we retry.
                        let _ = last_message.ack_with(jetstream::AckKind::Progress).await;
                    }
                }
            }
            applied = highest;
        }
        if let Err(error) = last_message.double_ack().await {
            // The write is durable and idempotent, so a lost ack only means a harmless redelivery.
            tracing::warn!(projection = name, %error, "ack failed; batch will be redelivered and skipped");
        }
        backoff = Duration::from_millis(100);
        update_lag(name, &consumer).await;
    }
}

async fn update_lag(name: &'static str, consumer: &jetstream::consumer::Consumer<pull::Config>) {
    let mut consumer = consumer.clone();
    if let Ok(info) = consumer.info().await {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a lag gauge does not need 53+ bits"
        )]
        metrics::gauge!("projector_lag_messages", "projection" => name)
            .set(info.num_pending as f64);
    }
}
