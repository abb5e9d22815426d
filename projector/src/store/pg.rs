//! Postgres writer: config views, audit view, dead letters, projection offsets.
//!
//! Every batch is one transaction that first locks the projection's offset row, skips events at
//! or below it, applies the rest and moves the offset, so a crash at any point neither loses nor
//! doubles a change, and a concurrent rebuild cannot interleave with the live projection.

use anyhow::Context as _;
use deadpool_postgres::{Pool, Transaction};
use serde_json::Value;
use shared::Envelope;
use shared::audit::AuditEvent;
use shared::config::ConfigEvent;
use shared::request::RequestEvent;
use shared::streams::{AUDIT_STREAM, CONFIG_STREAM, REQUESTS_STREAM};

use crate::fold::{self, AuditRow, ConfigChange};

mod embedded {
    refinery::embed_migrations!("../migrations/postgres");
}

/// The offset-row name of each Postgres projection.
pub const CONFIG_PROJECTION: &str = "config";
pub const AUDIT_PROJECTION: &str = "audit";
pub const SPEND_PROJECTION: &str = "spend";

/// One message of a batch: decoded, or poison (kept as a dead letter).
#[derive(Debug)]
pub enum Item<B> {
    Event {
        sequence: u64,
        envelope: Box<Envelope<B>>,
    },
    Poison {
        sequence: u64,
        reason: String,
        payload: Vec<u8>,
    },
}

impl<B> Item<B> {
    #[must_use]
    pub fn sequence(&self) -> u64 {
        match self {
            Self::Event { sequence, .. } | Self::Poison { sequence, .. } => *sequence,
        }
    }
}

/// What a batch did, for metrics and progress output.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub applied: u64,
    pub skipped: u64,
    pub dead_lettered: u64,
}

pub struct PgStore {
    pub pool: Pool,
    url: String,
}

impl PgStore {
    /// # Errors
    /// When Postgres does not answer.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let pool = kit::pg::connect(url, 8).await?;
        Ok(Self {
            pool,
            url: url.to_owned(),
        })
    }

    /// Applies the refinery migrations in `migrations/postgres`.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let (mut client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .context("connecting to Postgres for migrations")?;
        let connection = tokio::spawn(connection);
        let report = embedded::migrations::runner()
            .run_async(&mut client)
            .await
            .context("applying Postgres migrations")?;
        for migration in report.applied_migrations() {
            tracing::info!(migration = %migration, "applied Postgres migration");
        }
        drop(client);
        let _ = connection.await;
        Ok(())
    }

    /// The last sequence a projection applied.
    ///
    /// # Errors
    /// On a database error.
    pub async fn offset(&self, projection: &str) -> anyhow::Result<u64> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT last_sequence FROM projection_offsets WHERE projection = $1",
                &[&projection],
            )
            .await?;
        Ok(row.map_or(0, |row| u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)))
    }

    /// Folds a batch of config events into the views and the audit view in one transaction.
    ///
    /// # Errors
    /// On a database error; nothing of the batch is then applied.
    pub async fn apply_config_batch(
        &self,
        items: &[Item<ConfigEvent>],
    ) -> anyhow::Result<BatchOutcome> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let last = lock_offset(&transaction, CONFIG_PROJECTION, CONFIG_STREAM).await?;
        let outcome = apply_config_items(&transaction, items, last).await?;
        transaction.commit().await?;
        Ok(outcome)
    }

    /// Folds a batch of audit events into the audit view in one transaction.
    ///
    /// # Errors
    /// On a database error; nothing of the batch is then applied.
    pub async fn apply_audit_batch(
        &self,
        items: &[Item<AuditEvent>],
    ) -> anyhow::Result<BatchOutcome> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let last = lock_offset(&transaction, AUDIT_PROJECTION, AUDIT_STREAM).await?;
        let mut outcome = BatchOutcome::default();
        let mut highest = last;
        for item in items {
            let sequence = item.sequence();
            if sequence <= last {
                outcome.skipped += 1;
                continue;
            }
            highest = highest.max(sequence);
            match item {
                Item::Poison {
                    reason, payload, ..
                } => {
                    dead_letter(&transaction, AUDIT_STREAM, sequence, reason, payload).await?;
                    outcome.dead_lettered += 1;
                }
                Item::Event { envelope, .. } => {
                    let after = serde_json::to_value(&envelope.body)?
                        .get("payload")
                        .cloned()
                        .map(|mut value| {
                            fold::redact(&mut value);
                            value
                        });
                    let row = AuditRow {
                        stream: AUDIT_STREAM,
                        sequence,
                        event_id: envelope.event_id,
                        occurred_at: envelope.occurred_at,
                        event_type: shared::EventBody::event_type(&envelope.body).to_owned(),
                        actor_id: envelope.actor.as_ref().map(|actor| actor.user_id.clone()),
                        actor_name: envelope.actor.as_ref().map(|actor| actor.username.clone()),
                        entity: None,
                        entity_id: None,
                        before: None,
                        after,
                    };
                    insert_audit(&transaction, &row).await?;
                    if let AuditEvent::ProviderKeyTested(tested) = &envelope.body {
                        record_key_test(&transaction, tested, envelope.occurred_at).await?;
                    }
                    outcome.applied += 1;
                }
            }
        }
        set_offset(&transaction, AUDIT_PROJECTION, highest).await?;
        transaction.commit().await?;
        Ok(outcome)
    }

    /// Folds request events into per-token daily spend in one transaction with the offset.
    /// Undecodable events are skipped here (the ClickHouse projection counts them).
    ///
    /// # Errors
    /// On a database error; nothing of the batch is then applied.
    pub async fn apply_spend_batch(
        &self,
        items: &[Item<RequestEvent>],
    ) -> anyhow::Result<BatchOutcome> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let last = lock_offset(&transaction, SPEND_PROJECTION, REQUESTS_STREAM).await?;
        let mut outcome = BatchOutcome::default();
        let mut highest = last;
        for item in items {
            let sequence = item.sequence();
            if sequence <= last {
                outcome.skipped += 1;
                continue;
            }
            highest = highest.max(sequence);
            let Item::Event { envelope, .. } = item else {
                continue;
            };
            let RequestEvent::Finished(finished) = &envelope.body;
            // Key health from real traffic: each attempt's outcome, latest first wins.
            for attempt in &finished.attempts {
                // A request the upstream refused as invalid still shows the key works.
                let ok = !attempt
                    .error_kind
                    .is_some_and(shared::request::ErrorKind::is_upstream_fault);
                let tested = shared::audit::ProviderKeyTested {
                    provider_key_id: attempt.provider_key_id.clone(),
                    provider_id: attempt.provider_id.clone(),
                    ok,
                    status: attempt.status,
                    latency_ms: attempt.latency_us / 1_000,
                    error: attempt
                        .error_kind
                        .filter(|kind| kind.is_upstream_fault())
                        .map(|kind| kind.as_str().to_owned()),
                };
                record_key_test(&transaction, &tested, envelope.occurred_at).await?;
            }
            let Some(token_id) = &finished.token_id else {
                continue;
            };
            let usage = &finished.usage;
            let as_i64 = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
            let (cost, currency) = finished.cost.as_ref().map_or((0, String::new()), |cost| {
                (cost.amount.0, cost.currency.clone())
            });
            let error = i64::from(finished.outcome == shared::request::Outcome::Error);
            transaction
                .execute(
                    "INSERT INTO token_spend_daily (token_id, day, currency, requests, errors, input_tokens, output_tokens, \
                       cache_read_tokens, cache_write_tokens, cost_nanos, last_used_at) \
                     VALUES ($1, $2, $3, 1, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (token_id, day) DO UPDATE SET \
                       currency = CASE WHEN EXCLUDED.currency = '' THEN token_spend_daily.currency ELSE EXCLUDED.currency END, \
                       requests = token_spend_daily.requests + 1, errors = token_spend_daily.errors + EXCLUDED.errors, \
                       input_tokens = token_spend_daily.input_tokens + EXCLUDED.input_tokens, \
                       output_tokens = token_spend_daily.output_tokens + EXCLUDED.output_tokens, \
                       cache_read_tokens = token_spend_daily.cache_read_tokens + EXCLUDED.cache_read_tokens, \
                       cache_write_tokens = token_spend_daily.cache_write_tokens + EXCLUDED.cache_write_tokens, \
                       cost_nanos = token_spend_daily.cost_nanos + EXCLUDED.cost_nanos, \
                       last_used_at = GREATEST(token_spend_daily.last_used_at, EXCLUDED.last_used_at)",
                    &[
                        token_id,
                        &envelope.occurred_at.date(),
                        &currency,
                        &error,
                        &as_i64(usage.input_tokens),
                        &as_i64(usage.output_tokens),
                        &as_i64(usage.cache_read_tokens),
                        &as_i64(usage.cache_write_tokens),
                        &cost,
                        &envelope.occurred_at,
                    ],
                )
                .await?;
            outcome.applied += 1;
        }
        if highest > last {
            set_offset(&transaction, SPEND_PROJECTION, highest).await?;
        }
        transaction.commit().await?;
        Ok(outcome)
    }

    /// Rebuilds the config views from scratch: in one transaction, empties them and applies
    /// every batch `next_batch` yields, then moves the offset. The live projection waits on the
    /// offset lock meanwhile and afterwards skips what the rebuild applied.
    ///
    /// # Errors
    /// On a database error or when `next_batch` fails; the old views then stay as they were.
    pub async fn rebuild_config<F, Fut>(&self, mut next_batch: F) -> anyhow::Result<BatchOutcome>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<Option<Vec<Item<ConfigEvent>>>>>,
    {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        lock_offset(&transaction, CONFIG_PROJECTION, CONFIG_STREAM).await?;
        transaction
            .batch_execute(
                "DELETE FROM config_entities; DELETE FROM applied_config_events; \
                 DELETE FROM audit_log WHERE stream = 'AXONGATE_CONFIG'; \
                 DELETE FROM dead_letters WHERE stream = 'AXONGATE_CONFIG';",
            )
            .await?;
        let mut total = BatchOutcome::default();
        while let Some(items) = next_batch().await? {
            let outcome = apply_config_items(&transaction, &items, 0).await?;
            total.applied += outcome.applied;
            total.skipped += outcome.skipped;
            total.dead_lettered += outcome.dead_lettered;
        }
        transaction.commit().await?;
        Ok(total)
    }
}

async fn lock_offset(
    transaction: &Transaction<'_>,
    projection: &str,
    stream: &str,
) -> anyhow::Result<u64> {
    transaction
        .execute(
            "INSERT INTO projection_offsets (projection, stream) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&projection, &stream],
        )
        .await?;
    let row = transaction
        .query_one(
            "SELECT last_sequence FROM projection_offsets WHERE projection = $1 FOR UPDATE",
            &[&projection],
        )
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

async fn record_key_test(
    transaction: &Transaction<'_>,
    tested: &shared::audit::ProviderKeyTested,
    at: time::OffsetDateTime,
) -> Result<(), tokio_postgres::Error> {
    let status = tested.status.map(i32::from);
    let latency = i64::try_from(tested.latency_ms).unwrap_or(i64::MAX);
    transaction
        .execute(
            "INSERT INTO provider_key_health (provider_key_id, provider_id, last_success_at, last_error_at, \
               last_error, last_status, last_latency_ms, updated_at) \
             VALUES ($1, $2, CASE WHEN $3::boolean THEN $4::timestamptz END, \
                     CASE WHEN $3::boolean THEN NULL ELSE $4::timestamptz END, $5, $6, $7, $4::timestamptz) \
             ON CONFLICT (provider_key_id) DO UPDATE SET \
               last_success_at = GREATEST(EXCLUDED.last_success_at, provider_key_health.last_success_at), \
               last_error_at = GREATEST(EXCLUDED.last_error_at, provider_key_health.last_error_at), \
               last_error = COALESCE(EXCLUDED.last_error, provider_key_health.last_error), \
               last_status = EXCLUDED.last_status, last_latency_ms = EXCLUDED.last_latency_ms, \
               updated_at = EXCLUDED.updated_at",
            &[&tested.provider_key_id, &tested.provider_id, &tested.ok, &at, &tested.error, &status, &latency],
        )
        .await?;
    Ok(())
}

async fn set_offset(
    transaction: &Transaction<'_>,
    projection: &str,
    sequence: u64,
) -> anyhow::Result<()> {
    transaction
        .execute(
            "UPDATE projection_offsets SET last_sequence = GREATEST(last_sequence, $2), updated_at = now() \
             WHERE projection = $1",
            &[&projection, &to_i64(sequence)],
        )
        .await?;
    // Delivered on commit only: a listener that hears `config:42` can read sequence 42's effect.
    transaction
        .execute(
            "SELECT pg_notify('axongate_projection', $1)",
            &[&format!("{projection}:{sequence}")],
        )
        .await?;
    Ok(())
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

async fn apply_config_items(
    transaction: &Transaction<'_>,
    items: &[Item<ConfigEvent>],
    last: u64,
) -> anyhow::Result<BatchOutcome> {
    let mut outcome = BatchOutcome::default();
    let mut highest = last;
    for item in items {
        let sequence = item.sequence();
        if sequence <= last {
            outcome.skipped += 1;
            continue;
        }
        highest = highest.max(sequence);
        match item {
            Item::Poison {
                reason, payload, ..
            } => {
                dead_letter(transaction, CONFIG_STREAM, sequence, reason, payload).await?;
                outcome.dead_lettered += 1;
            }
            Item::Event { envelope, .. } => {
                // A savepoint per event: an event the views cannot hold (say, a second model
                // with an alias already taken) becomes a dead letter instead of blocking the
                // stream forever.
                let savepoint = savepoint(transaction).await?;
                match apply_config_event(transaction, envelope, sequence).await {
                    Ok(true) => {
                        release(transaction, savepoint).await?;
                        outcome.applied += 1;
                    }
                    Ok(false) => {
                        release(transaction, savepoint).await?;
                        outcome.skipped += 1;
                    }
                    Err(error) if is_constraint_violation(&error) => {
                        rollback_to(transaction, savepoint).await?;
                        let reason = format!("violates a view constraint: {error}");
                        tracing::error!(sequence, %reason, "config event dead-lettered");
                        let payload = envelope.to_bytes().unwrap_or_default();
                        dead_letter(transaction, CONFIG_STREAM, sequence, &reason, &payload)
                            .await?;
                        outcome.dead_lettered += 1;
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
    }
    if highest > last {
        set_offset(transaction, CONFIG_PROJECTION, highest).await?;
    }
    Ok(outcome)
}

/// Proof that the `config_event` savepoint is open; savepoints here never nest.
struct Savepoint;

async fn savepoint(transaction: &Transaction<'_>) -> Result<Savepoint, tokio_postgres::Error> {
    transaction.batch_execute("SAVEPOINT config_event").await?;
    Ok(Savepoint)
}

async fn release(
    transaction: &Transaction<'_>,
    _savepoint: Savepoint,
) -> Result<(), tokio_postgres::Error> {
    transaction
        .batch_execute("RELEASE SAVEPOINT config_event")
        .await
}

async fn rollback_to(
    transaction: &Transaction<'_>,
    _savepoint: Savepoint,
) -> Result<(), tokio_postgres::Error> {
    transaction
        .batch_execute("ROLLBACK TO SAVEPOINT config_event")
        .await
}

fn is_constraint_violation(error: &tokio_postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| code.code().starts_with("23"))
}

/// Applies one event; `Ok(false)` when the same event id was already applied.
async fn apply_config_event(
    transaction: &Transaction<'_>,
    envelope: &Envelope<ConfigEvent>,
    sequence: u64,
) -> Result<bool, tokio_postgres::Error> {
    let inserted = transaction
        .execute(
            "INSERT INTO applied_config_events (event_id, sequence) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&envelope.event_id, &to_i64(sequence)],
        )
        .await?;
    if inserted == 0 {
        return Ok(false);
    }
    let change = fold::config_change(&envelope.body).unwrap_or(ConfigChange::Delete {
        entity: envelope.body.entity(),
        id: envelope.body.entity_id().to_owned(),
    });
    let entity = envelope.body.entity().as_str();
    let id = envelope.body.entity_id();
    let before: Option<Value> = transaction
        .query_opt(
            "SELECT data FROM config_entities WHERE entity = $1 AND id = $2",
            &[&entity, &id],
        )
        .await?
        .map(|row| row.get(0));
    let actor = envelope.actor.as_ref().map(|actor| actor.username.clone());
    match &change {
        ConfigChange::Upsert { data, .. } => {
            transaction
                .execute(
                    "INSERT INTO config_entities (entity, id, data, subject_sequence, created_at, updated_at, updated_by) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6) \
                     ON CONFLICT (entity, id) DO UPDATE SET data = EXCLUDED.data, \
                       subject_sequence = EXCLUDED.subject_sequence, updated_at = EXCLUDED.updated_at, \
                       updated_by = EXCLUDED.updated_by",
                    &[&entity, &id, data, &to_i64(sequence), &envelope.occurred_at, &actor],
                )
                .await?;
        }
        ConfigChange::Delete { .. } => {
            transaction
                .execute(
                    "DELETE FROM config_entities WHERE entity = $1 AND id = $2",
                    &[&entity, &id],
                )
                .await?;
        }
    }
    let row = fold::config_audit_row(envelope, sequence, before, &change);
    insert_audit(transaction, &row).await?;
    Ok(true)
}

async fn insert_audit(
    transaction: &Transaction<'_>,
    row: &AuditRow,
) -> Result<(), tokio_postgres::Error> {
    transaction
        .execute(
            "INSERT INTO audit_log (stream, sequence, event_id, occurred_at, event_type, actor_id, actor_name, \
               entity, entity_id, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
            &[
                &row.stream,
                &to_i64(row.sequence),
                &row.event_id,
                &row.occurred_at,
                &row.event_type,
                &row.actor_id,
                &row.actor_name,
                &row.entity,
                &row.entity_id,
                &row.before,
                &row.after,
            ],
        )
        .await?;
    Ok(())
}

async fn dead_letter(
    transaction: &Transaction<'_>,
    stream: &str,
    sequence: u64,
    reason: &str,
    payload: &[u8],
) -> Result<(), tokio_postgres::Error> {
    metrics::counter!("projector_dead_letters_total", "stream" => stream.to_owned()).increment(1);
    transaction
        .execute(
            "INSERT INTO dead_letters (stream, sequence, reason, payload) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
            &[&stream, &to_i64(sequence), &reason, &payload],
        )
        .await?;
    Ok(())
}
