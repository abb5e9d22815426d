//! Loading the config at start and following it live.
//!
//! At start ingress reads the Postgres config views together with the stream sequence they
//! reflect (one consistent snapshot), then follows `AXONGATE_CONFIG` from the next sequence with
//! an ordered consumer, applying each event in memory within milliseconds of its publication.
//! If Postgres is unreachable at start, it replays the config stream from the beginning instead
//! (the stream keeps every config event forever), so Postgres is never required to serve.

use std::sync::Arc;

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use futures::StreamExt as _;
use shared::Envelope;
use shared::config::ConfigEvent;
use shared::streams::CONFIG_STREAM;

use crate::auth::Authenticator;
use crate::state::{ConfigStore, Secrets, Snapshot};

/// Reads the views and the sequence they reflect.
///
/// # Errors
/// When Postgres does not answer or a row does not decode.
pub async fn load_from_postgres(postgres_url: &str, secrets: &Secrets) -> anyhow::Result<Snapshot> {
    let (mut client, connection) =
        tokio_postgres::connect(postgres_url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let sequence: i64 = transaction
        .query_opt(
            "SELECT last_sequence FROM projection_offsets WHERE projection = 'config'",
            &[],
        )
        .await?
        .map_or(0, |row| row.get(0));
    let entities: Vec<&str> = Snapshot::view_entities().to_vec();
    let rows = transaction
        .query(
            "SELECT entity, data FROM config_entities WHERE entity = ANY($1) ORDER BY subject_sequence",
            &[&entities],
        )
        .await?;
    let mut snapshot = Snapshot::default();
    for row in rows {
        let entity: String = row.get(0);
        let data: serde_json::Value = row.get(1);
        if let Err(error) = snapshot.apply_view_row(&entity, data, secrets) {
            tracing::error!(%entity, %error, "config view row does not decode; skipped");
        }
    }
    snapshot.sequence = u64::try_from(sequence).unwrap_or(0);
    transaction.commit().await?;
    drop(client);
    let _ = connection.await;
    Ok(snapshot)
}

/// Follows the config stream from `snapshot.sequence + 1` forever, applying each event to the
/// store and invalidating the auth cache. Returns only if the stream cannot be read at all.
///
/// # Errors
/// When the consumer cannot be created.
pub async fn follow(
    jetstream: jetstream::Context,
    store: Arc<ConfigStore>,
    secrets: Arc<Secrets>,
    authenticator: Arc<Authenticator>,
) -> anyhow::Result<()> {
    let start_sequence = store.load().sequence + 1;
    let stream = jetstream.get_stream(CONFIG_STREAM).await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    tracing::info!(start_sequence, "following the config stream");
    while let Some(message) = messages.next().await {
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                // The ordered consumer recreates itself after gaps and reconnects.
                tracing::warn!(%error, "config stream interrupted; resuming");
                continue;
            }
        };
        let Ok(info) = message.info() else { continue };
        let sequence = info.stream_sequence;
        if sequence <= store.load().sequence {
            continue;
        }
        match Envelope::<ConfigEvent>::from_bytes(&message.payload) {
            Ok(envelope) => {
                let invalidation = store.apply(&envelope.body, sequence, &secrets);
                authenticator.invalidate(&invalidation.token_hashes);
            }
            Err(error) => {
                tracing::error!(sequence, %error, "undecodable config event skipped");
                metrics::counter!("ingress_config_events_undecodable_total").increment(1);
            }
        }
    }
    anyhow::bail!("config stream ended")
}

/// Replays the whole config stream into a fresh snapshot (used when Postgres is unreachable
/// at start).
///
/// # Errors
/// When the stream cannot be read.
pub async fn load_from_stream(
    jetstream: &jetstream::Context,
    secrets: &Secrets,
) -> anyhow::Result<Snapshot> {
    let mut stream = jetstream.get_stream(CONFIG_STREAM).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut snapshot = Snapshot::default();
    if last == 0 {
        return Ok(snapshot);
    }
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let sequence = message
            .info()
            .map_err(|error| anyhow::anyhow!("{error}"))?
            .stream_sequence;
        if let Ok(envelope) = Envelope::<ConfigEvent>::from_bytes(&message.payload) {
            snapshot.apply(&envelope.body, sequence, secrets);
        }
        if sequence >= last {
            break;
        }
    }
    Ok(snapshot)
}

/// Seeds the limiter with the spend already recorded this period for every token that has a
/// budget, from the projector's `token_spend_daily` view. Spend after this comes from this
/// node's own requests and the other nodes' usage reports.
///
/// # Errors
/// When Postgres does not answer.
pub async fn load_spend_baseline(
    postgres_url: &str,
    snapshot: &Snapshot,
    limiter: &crate::limits::Limiter,
) -> anyhow::Result<usize> {
    let budgeted: Vec<(&str, shared::config::BudgetPeriod)> = snapshot
        .tokens
        .values()
        .filter_map(|token| {
            token
                .budget
                .as_ref()
                .map(|budget| (token.id.as_str(), budget.period))
        })
        .collect();
    if budgeted.is_empty() {
        return Ok(0);
    }
    let (client, connection) = tokio_postgres::connect(postgres_url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let ids: Vec<&str> = budgeted.iter().map(|(id, _)| *id).collect();
    let rows = client
        .query(
            "SELECT token_id, day, cost_nanos FROM token_spend_daily WHERE token_id = ANY($1)",
            &[&ids],
        )
        .await?;
    let now = time::OffsetDateTime::now_utc();
    let mut totals: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for row in &rows {
        let token_id: String = row.get(0);
        let day: time::Date = row.get(1);
        let cost: i64 = row.get(2);
        if let Some((id, period)) = budgeted.iter().find(|(id, _)| *id == token_id) {
            let at = day.midnight().assume_utc();
            if crate::limits::period_key(*period, at) == crate::limits::period_key(*period, now) {
                *totals.entry(id).or_default() += cost;
            }
        }
    }
    for (id, period) in &budgeted {
        let spent = totals.get(id).copied().unwrap_or(0);
        limiter.set_baseline(id, crate::limits::period_key(*period, now), spent);
    }
    drop(client);
    let _ = connection.await;
    Ok(budgeted.len())
}
