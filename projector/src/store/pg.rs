//! Postgres writer: config views, audit view, key health, spend, dead letters, projection
//! offsets. It decides nothing: each event's [`Decision`] comes from `fold`, and this module
//! writes its effects or its dead letter.
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

use crate::fold::{self, Decision, Effect};

mod write;

use write::{dead_letter, dead_letter_event, to_i64, write_all};

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
        self.apply_config_batch_with(items, fold::config::decide)
            .await
    }

    async fn apply_config_batch_with(
        &self,
        items: &[Item<ConfigEvent>],
        decide: DecideConfig,
    ) -> anyhow::Result<BatchOutcome> {
        let mut client = self.pool.get().await?;
        let transaction = client.transaction().await?;
        let last = lock_offset(&transaction, CONFIG_PROJECTION, CONFIG_STREAM).await?;
        let outcome = apply_config_items(&transaction, items, last, decide).await?;
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
                Item::Event { envelope, .. } => match fold::audit::decide(envelope, sequence) {
                    Decision::Apply(effects) => {
                        write_all(&transaction, &effects).await?;
                        outcome.applied += 1;
                    }
                    Decision::DeadLetter { reason } => {
                        dead_letter_event(&transaction, AUDIT_STREAM, sequence, &reason, envelope)
                            .await?;
                        outcome.dead_lettered += 1;
                    }
                },
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
        let mut effects = Vec::new();
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
            let event_effects = fold::spend::effects(envelope);
            // Counted as applied when it added to a token's spend.
            if event_effects
                .iter()
                .any(|effect| matches!(effect, Effect::Spend(_)))
            {
                outcome.applied += 1;
            }
            effects.extend(event_effects);
        }
        // One write per key and per token and day for the whole batch.
        write_all(&transaction, &fold::spend::merged(effects)).await?;
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
            let outcome = apply_config_items(&transaction, &items, 0, fold::config::decide).await?;
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

/// How a config event is decided: `fold::config::decide`, except in the tests of this module.
type DecideConfig = fn(&Envelope<ConfigEvent>, u64, Option<Value>) -> Decision;

async fn apply_config_items(
    transaction: &Transaction<'_>,
    items: &[Item<ConfigEvent>],
    last: u64,
    decide: DecideConfig,
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
                // with an alias already taken) or the fold refuses becomes a dead letter, with
                // nothing of it written, instead of blocking the stream forever.
                let savepoint = savepoint(transaction).await?;
                let reason = match apply_config_event(transaction, envelope, sequence, decide).await
                {
                    Ok(ConfigApplied::Applied) => {
                        release(transaction, savepoint).await?;
                        outcome.applied += 1;
                        continue;
                    }
                    Ok(ConfigApplied::Duplicate) => {
                        release(transaction, savepoint).await?;
                        outcome.skipped += 1;
                        continue;
                    }
                    Ok(ConfigApplied::DeadLetter(reason)) => reason,
                    Err(error) if is_constraint_violation(&error) => {
                        format!("violates a view constraint: {error}")
                    }
                    Err(error) => return Err(error.into()),
                };
                rollback_to(transaction, savepoint).await?;
                tracing::error!(sequence, %reason, "config event dead-lettered");
                dead_letter_event(transaction, CONFIG_STREAM, sequence, &reason, envelope).await?;
                outcome.dead_lettered += 1;
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

/// What became of one config event.
enum ConfigApplied {
    Applied,
    /// The same event id was applied before (a publish retried under a new sequence).
    Duplicate,
    /// The fold refused it; the caller rolls back what was written for it.
    DeadLetter(String),
}

async fn apply_config_event(
    transaction: &Transaction<'_>,
    envelope: &Envelope<ConfigEvent>,
    sequence: u64,
    decide: DecideConfig,
) -> Result<ConfigApplied, tokio_postgres::Error> {
    let inserted = transaction
        .execute(
            "INSERT INTO applied_config_events (event_id, sequence) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&envelope.event_id, &to_i64(sequence)],
        )
        .await?;
    if inserted == 0 {
        return Ok(ConfigApplied::Duplicate);
    }
    let before: Option<Value> = transaction
        .query_opt(
            "SELECT data FROM config_entities WHERE entity = $1 AND id = $2",
            &[&envelope.body.entity().as_str(), &envelope.body.entity_id()],
        )
        .await?
        .map(|row| row.get(0));
    match decide(envelope, sequence, before) {
        Decision::Apply(effects) => {
            write_all(transaction, &effects).await?;
            Ok(ConfigApplied::Applied)
        }
        Decision::DeadLetter { reason } => Ok(ConfigApplied::DeadLetter(reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::testing::setting_put;
    use serde_json::json;

    /// An unserialisable change, decided by the real fold, reaches the dead letters through the
    /// same savepoint as a constraint violation: nothing of it is written, and the entity keeps
    /// the state it had (it used to be deleted).
    #[tokio::test]
    async fn an_unserialisable_change_is_a_dead_letter_and_the_entity_stays() {
        let store = PgStore::connect(&kit::testing::fresh_postgres_database().await)
            .await
            .expect("postgres");
        store.migrate().await.expect("migrate");
        let event = |sequence, envelope| Item::Event {
            sequence,
            envelope: Box::new(envelope),
        };
        let first = store
            .apply_config_batch(&[event(1, setting_put("motd", json!("hi")))])
            .await
            .expect("apply");
        assert_eq!(first.applied, 1);

        let unserialisable: DecideConfig = |envelope, sequence, before| {
            let error =
                <serde_json::Error as serde::ser::Error>::custom("a map key is not a string");
            fold::config::decide_change(envelope, sequence, before, Err(error))
        };
        let second = store
            .apply_config_batch_with(
                &[event(2, setting_put("motd", json!("bye")))],
                unserialisable,
            )
            .await
            .expect("apply");
        assert_eq!(
            second,
            BatchOutcome {
                applied: 0,
                skipped: 0,
                dead_lettered: 1
            }
        );

        let client = store.pool.get().await.expect("client");
        let entity: Value = client
            .query_one(
                "SELECT data FROM config_entities WHERE entity = 'setting' AND id = 'motd'",
                &[],
            )
            .await
            .expect("the entity is still there")
            .get(0);
        assert_eq!(entity, json!({"key": "motd", "value": "hi"}));
        let dead: Vec<(String, i64, String)> = client
            .query("SELECT stream, sequence, reason FROM dead_letters", &[])
            .await
            .expect("dead letters")
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
        assert_eq!(
            dead,
            [(
                CONFIG_STREAM.to_owned(),
                2,
                "cannot be represented as JSON: a map key is not a string".to_owned()
            )]
        );
        let count = |sql: &'static str| {
            let client = &client;
            async move {
                client
                    .query_one(sql, &[])
                    .await
                    .expect(sql)
                    .get::<_, i64>(0)
            }
        };
        assert_eq!(count("SELECT count(*) FROM audit_log").await, 1);
        assert_eq!(count("SELECT count(*) FROM applied_config_events").await, 1);
        assert_eq!(store.offset(CONFIG_PROJECTION).await.expect("offset"), 2);
    }
}
