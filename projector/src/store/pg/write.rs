//! The Postgres writes a fold's effects become, and dead letters. Each statement applies one
//! effect; the merges in the upserts (sums of spend, the latest times and error of a key) are
//! the only logic here, kept in SQL so that two projections writing one row never lose an
//! update.

use deadpool_postgres::Transaction;
use shared::Envelope;

use crate::fold::{AuditRow, Effect, KeyHealth, SpendDelta};

pub(super) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Carries out a fold's effects, in order.
pub(super) async fn write_all(
    transaction: &Transaction<'_>,
    effects: &[Effect],
) -> Result<(), tokio_postgres::Error> {
    for effect in effects {
        write(transaction, effect).await?;
    }
    Ok(())
}

async fn write(
    transaction: &Transaction<'_>,
    effect: &Effect,
) -> Result<(), tokio_postgres::Error> {
    match effect {
        Effect::PutEntity {
            entity,
            id,
            data,
            subject_sequence,
            at,
            by,
        } => {
            transaction
                .execute(
                    "INSERT INTO config_entities (entity, id, data, subject_sequence, created_at, updated_at, updated_by) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6) \
                     ON CONFLICT (entity, id) DO UPDATE SET data = EXCLUDED.data, \
                       subject_sequence = EXCLUDED.subject_sequence, updated_at = EXCLUDED.updated_at, \
                       updated_by = EXCLUDED.updated_by",
                    &[&entity.as_str(), id, data, &to_i64(*subject_sequence), at, by],
                )
                .await?;
        }
        Effect::DeleteEntity { entity, id } => {
            transaction
                .execute(
                    "DELETE FROM config_entities WHERE entity = $1 AND id = $2",
                    &[&entity.as_str(), id],
                )
                .await?;
        }
        Effect::Audit(row) => insert_audit(transaction, row).await?,
        Effect::KeyCheck(check) => record_key_health(transaction, &KeyHealth::from(check)).await?,
        Effect::KeyHealth(health) => record_key_health(transaction, health).await?,
        Effect::Spend(delta) => add_spend(transaction, delta).await?,
    }
    Ok(())
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

/// Merges one or more observations (in order) into the key's health: the latest success and
/// error times, the last error seen, and the status and latency of the last observation.
async fn record_key_health(
    transaction: &Transaction<'_>,
    health: &KeyHealth,
) -> Result<(), tokio_postgres::Error> {
    let status = health.last_status.map(i32::from);
    transaction
        .execute(
            "INSERT INTO provider_key_health (provider_key_id, provider_id, last_success_at, last_error_at, \
               last_error, last_status, last_latency_ms, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (provider_key_id) DO UPDATE SET \
               last_success_at = GREATEST(EXCLUDED.last_success_at, provider_key_health.last_success_at), \
               last_error_at = GREATEST(EXCLUDED.last_error_at, provider_key_health.last_error_at), \
               last_error = COALESCE(EXCLUDED.last_error, provider_key_health.last_error), \
               last_status = EXCLUDED.last_status, last_latency_ms = EXCLUDED.last_latency_ms, \
               updated_at = EXCLUDED.updated_at",
            &[
                &health.provider_key_id,
                &health.provider_id,
                &health.last_success_at,
                &health.last_error_at,
                &health.last_error,
                &status,
                &to_i64(health.last_latency_ms),
                &health.updated_at,
            ],
        )
        .await?;
    Ok(())
}

/// Adds one or more requests to their token's day.
async fn add_spend(
    transaction: &Transaction<'_>,
    delta: &SpendDelta,
) -> Result<(), tokio_postgres::Error> {
    transaction
        .execute(
            "INSERT INTO token_spend_daily (token_id, day, currency, requests, errors, input_tokens, output_tokens, \
               cache_read_tokens, cache_write_tokens, cost_nanos, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (token_id, day) DO UPDATE SET \
               currency = CASE WHEN EXCLUDED.currency = '' THEN token_spend_daily.currency ELSE EXCLUDED.currency END, \
               requests = token_spend_daily.requests + EXCLUDED.requests, errors = token_spend_daily.errors + EXCLUDED.errors, \
               input_tokens = token_spend_daily.input_tokens + EXCLUDED.input_tokens, \
               output_tokens = token_spend_daily.output_tokens + EXCLUDED.output_tokens, \
               cache_read_tokens = token_spend_daily.cache_read_tokens + EXCLUDED.cache_read_tokens, \
               cache_write_tokens = token_spend_daily.cache_write_tokens + EXCLUDED.cache_write_tokens, \
               cost_nanos = token_spend_daily.cost_nanos + EXCLUDED.cost_nanos, \
               last_used_at = GREATEST(token_spend_daily.last_used_at, EXCLUDED.last_used_at)",
            &[
                &delta.token_id,
                &delta.day,
                &delta.currency,
                &to_i64(delta.requests),
                &to_i64(delta.errors),
                &to_i64(delta.input_tokens),
                &to_i64(delta.output_tokens),
                &to_i64(delta.cache_read_tokens),
                &to_i64(delta.cache_write_tokens),
                &delta.cost_nanos,
                &delta.last_used_at,
            ],
        )
        .await?;
    Ok(())
}

/// Keeps an event the fold or the views refused, as it was decoded.
pub(super) async fn dead_letter_event<B: shared::EventBody>(
    transaction: &Transaction<'_>,
    stream: &str,
    sequence: u64,
    reason: &str,
    envelope: &Envelope<B>,
) -> Result<(), tokio_postgres::Error> {
    let payload = envelope.to_bytes().unwrap_or_default();
    dead_letter(transaction, stream, sequence, reason, &payload).await
}

pub(super) async fn dead_letter(
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
