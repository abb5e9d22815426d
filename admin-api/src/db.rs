//! Everything the admin API reads from or writes to Postgres. It reads the views the projector
//! folds (`config_entities`, `audit_log`, `provider_key_health`, `projection_offsets`) and owns
//! two tables of its own, `admin_sessions` and `admin_login_throttle`; it never writes a view.

use std::collections::HashMap;

use deadpool_postgres::Pool;
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::ApiError;

/// Serializes concurrent `migrate` calls of several admin-api processes.
const MIGRATION_LOCK: i64 = 0x6178_6731; // "axg1"

/// Creates the admin-only tables (idempotent), under an advisory lock so two processes
/// starting at once do not race on `CREATE TABLE`.
///
/// # Errors
/// On a database error.
pub async fn migrate(pool: &Pool) -> Result<(), ApiError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    transaction
        .batch_execute(include_str!("../migrations/001_sessions.sql"))
        .await?;
    transaction
        .batch_execute(include_str!("../migrations/002_login_throttle.sql"))
        .await?;
    transaction
        .batch_execute(include_str!("../migrations/003_oidc.sql"))
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// One row of `config_entities`: an entity's current state and its version.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: String,
    pub data: Value,
    /// The subject sequence of the entity's latest event: what an update must name.
    pub version: u64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub updated_by: Option<String>,
}

pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn stored(row: &tokio_postgres::Row) -> Stored {
    Stored {
        id: row.get("id"),
        data: row.get("data"),
        version: to_u64(row.get("subject_sequence")),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
        updated_by: row.get("updated_by"),
    }
}

const ENTITY_COLUMNS: &str = "id, data, subject_sequence, created_at, updated_at, updated_by";

/// One entity by id.
///
/// # Errors
/// On a database error.
pub async fn get(pool: &Pool, entity: &str, id: &str) -> Result<Option<Stored>, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!("SELECT {ENTITY_COLUMNS} FROM config_entities WHERE entity = $1 AND id = $2"),
            &[&entity, &id],
        )
        .await?;
    Ok(row.as_ref().map(stored))
}

/// The entity whose `field` (a top-level text field of its data) equals `value`.
///
/// # Errors
/// On a database error.
pub async fn find_by_field(
    pool: &Pool,
    entity: &str,
    field: &str,
    value: &str,
) -> Result<Option<Stored>, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            &format!(
                "SELECT {ENTITY_COLUMNS} FROM config_entities WHERE entity = $1 AND data->>$2 = $3 LIMIT 1"
            ),
            &[&entity, &field, &value],
        )
        .await?;
    Ok(row.as_ref().map(stored))
}

/// A list query: equality filters on top-level fields, a free-text search, a page.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub filters: Vec<(String, String)>,
    /// Case-insensitive substring of the id or the `name`, `alias`, `username` or `key` field.
    pub search: Option<String>,
    /// Only entities owned by this user or charged to one of these teams (for a caller who
    /// sees their own and their teams' entities): (owner field, owner, team field, teams).
    pub visible_to: Option<Visible>,
    pub limit: i64,
    pub offset: i64,
}

/// Who may see which entities of a list: the owner's own, and those charged to their teams.
#[derive(Debug, Clone)]
pub struct Visible {
    pub owner_field: &'static str,
    pub owner: String,
    pub team_field: &'static str,
    pub teams: Vec<String>,
}

/// A page of entities (ordered by id) and the total matching count.
///
/// # Errors
/// On a database error.
pub async fn list(
    pool: &Pool,
    entity: &str,
    query: &ListQuery,
) -> Result<(Vec<Stored>, i64), ApiError> {
    let client = pool.get().await?;
    let mut conditions = vec!["entity = $1".to_owned()];
    let mut params: Vec<String> = vec![entity.to_owned()];
    for (field, value) in &query.filters {
        params.push(field.clone());
        let field_index = params.len();
        params.push(value.clone());
        conditions.push(format!("data->>${field_index} = ${}", params.len()));
    }
    if let Some(visible) = &query.visible_to {
        let mut alternatives = Vec::new();
        for (field, value) in std::iter::once((visible.owner_field, &visible.owner))
            .chain(visible.teams.iter().map(|team| (visible.team_field, team)))
        {
            params.push(field.to_owned());
            let field_index = params.len();
            params.push(value.clone());
            alternatives.push(format!("data->>${field_index} = ${}", params.len()));
        }
        conditions.push(format!("({})", alternatives.join(" OR ")));
    }
    if let Some(search) = query.search.as_ref().filter(|search| !search.is_empty()) {
        let escaped = search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        params.push(format!("%{escaped}%"));
        let index = params.len();
        conditions.push(format!(
            "(id ILIKE ${index} OR data->>'name' ILIKE ${index} OR data->>'alias' ILIKE ${index} \
             OR data->>'username' ILIKE ${index} OR data->>'key' ILIKE ${index})"
        ));
    }
    let where_clause = conditions.join(" AND ");
    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|param| param as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    let total: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM config_entities WHERE {where_clause}"),
            &refs,
        )
        .await?
        .get(0);
    let rows = client
        .query(
            &format!(
                "SELECT {ENTITY_COLUMNS} FROM config_entities WHERE {where_clause} \
                 ORDER BY id LIMIT {} OFFSET {}",
                query.limit.max(0),
                query.offset.max(0)
            ),
            &refs,
        )
        .await?;
    Ok((rows.iter().map(stored).collect(), total))
}

/// Every entity of a kind (for export and apply).
///
/// # Errors
/// On a database error.
pub async fn all(pool: &Pool, entity: &str) -> Result<Vec<Stored>, ApiError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            &format!("SELECT {ENTITY_COLUMNS} FROM config_entities WHERE entity = $1 ORDER BY id"),
            &[&entity],
        )
        .await?;
    Ok(rows.iter().map(stored).collect())
}

/// Models whose routes use a provider (or, with `key_id`, one of its keys).
///
/// # Errors
/// On a database error.
pub async fn models_using(
    pool: &Pool,
    provider_id: Option<&str>,
    key_id: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id FROM config_entities WHERE entity = 'model' AND EXISTS ( \
               SELECT 1 FROM jsonb_array_elements(data->'routes') AS route \
               WHERE ($1::text IS NOT NULL AND route->>'provider_id' = $1) \
                  OR ($2::text IS NOT NULL AND route->'key_ids' ? $2)) ORDER BY id",
            &[&provider_id, &key_id],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Whether any user exists in the view. `None` when the view is not there yet (the projector
/// has not applied its migrations).
pub async fn any_user(pool: &Pool) -> Option<bool> {
    let client = pool.get().await.ok()?;
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM config_entities WHERE entity = 'user')",
            &[],
        )
        .await
        .ok()?;
    Some(row.get(0))
}

/// The health of provider keys, by key id.
///
/// # Errors
/// On a database error.
pub async fn key_health(pool: &Pool, ids: &[String]) -> Result<HashMap<String, Value>, ApiError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT provider_key_id, last_success_at, last_error_at, last_error, last_status, \
               last_latency_ms, updated_at FROM provider_key_health WHERE provider_key_id = ANY($1)",
            &[&ids],
        )
        .await?;
    let mut health = HashMap::new();
    for row in rows {
        let time = |column: &str| {
            row.get::<_, Option<OffsetDateTime>>(column).and_then(|at| {
                at.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
        };
        health.insert(
            row.get::<_, String>(0),
            serde_json::json!({
                "last_success_at": time("last_success_at"),
                "last_error_at": time("last_error_at"),
                "last_error": row.get::<_, Option<String>>("last_error"),
                "last_status": row.get::<_, Option<i32>>("last_status"),
                "last_latency_ms": row.get::<_, Option<i64>>("last_latency_ms"),
                "updated_at": time("updated_at"),
            }),
        );
    }
    Ok(health)
}

// ---- sessions -------------------------------------------------------------------------------

/// A live session: who, and until when.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user_id: String,
    pub expires_at: OffsetDateTime,
}

/// Stores a new session by the hash of its token.
///
/// # Errors
/// On a database error.
pub async fn insert_session(
    pool: &Pool,
    token_hash: &str,
    user_id: &str,
    expires_at: OffsetDateTime,
    client_ip: Option<&str>,
) -> Result<(), ApiError> {
    let client = pool.get().await?;
    // Expired sessions are kept a week for forensics, then dropped as new ones come in.
    client
        .execute(
            "DELETE FROM admin_sessions WHERE expires_at < now() - interval '7 days'",
            &[],
        )
        .await?;
    client
        .execute(
            "INSERT INTO admin_sessions (token_hash, user_id, expires_at, client_ip) VALUES ($1, $2, $3, $4)",
            &[&token_hash, &user_id, &expires_at, &client_ip],
        )
        .await?;
    Ok(())
}

/// The session with this token hash, when it is neither expired nor revoked.
///
/// # Errors
/// On a database error.
pub async fn live_session(pool: &Pool, token_hash: &str) -> Result<Option<SessionRow>, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT user_id, expires_at FROM admin_sessions \
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()",
            &[&token_hash],
        )
        .await?;
    Ok(row.map(|row| SessionRow {
        user_id: row.get(0),
        expires_at: row.get(1),
    }))
}

/// Revokes one session.
///
/// # Errors
/// On a database error.
pub async fn revoke_session(pool: &Pool, token_hash: &str) -> Result<(), ApiError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE admin_sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL",
            &[&token_hash],
        )
        .await?;
    Ok(())
}

/// Revokes every session of a user except `keep` (after a password change or a disable).
///
/// # Errors
/// On a database error.
pub async fn revoke_user_sessions(
    pool: &Pool,
    user_id: &str,
    keep: Option<&str>,
) -> Result<(), ApiError> {
    let client = pool.get().await?;
    client
        .execute(
            "UPDATE admin_sessions SET revoked_at = now() \
             WHERE user_id = $1 AND revoked_at IS NULL AND token_hash IS DISTINCT FROM $2",
            &[&user_id, &keep],
        )
        .await?;
    Ok(())
}

// ---- audit ----------------------------------------------------------------------------------

/// Filters of `GET /audit`.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    pub actor: Option<String>,
    pub event_type: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub limit: i64,
    pub offset: i64,
}

/// A page of the audit view, newest first, and the total matching count.
///
/// # Errors
/// On a database error.
pub async fn audit(pool: &Pool, query: &AuditQuery) -> Result<(Vec<Value>, i64), ApiError> {
    let client = pool.get().await?;
    let sql_filter = "($1::text IS NULL OR entity = $1) AND ($2::text IS NULL OR entity_id = $2) \
        AND ($3::text IS NULL OR actor_name = $3 OR actor_id = $3) \
        AND ($4::text IS NULL OR event_type = $4) \
        AND ($5::timestamptz IS NULL OR occurred_at >= $5) AND ($6::timestamptz IS NULL OR occurred_at < $6)";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
        &query.entity,
        &query.entity_id,
        &query.actor,
        &query.event_type,
        &query.from,
        &query.to,
    ];
    let total: i64 = client
        .query_one(
            &format!("SELECT count(*) FROM audit_log WHERE {sql_filter}"),
            &params,
        )
        .await?
        .get(0);
    let rows = client
        .query(
            &format!(
                "SELECT stream, sequence, event_id, occurred_at, event_type, actor_id, actor_name, \
                   entity, entity_id, before, after FROM audit_log WHERE {sql_filter} \
                 ORDER BY occurred_at DESC, sequence DESC LIMIT {} OFFSET {}",
                query.limit.max(0),
                query.offset.max(0)
            ),
            &params,
        )
        .await?;
    let items = rows
        .iter()
        .map(|row| {
            let occurred_at: OffsetDateTime = row.get("occurred_at");
            serde_json::json!({
                "stream": row.get::<_, String>("stream"),
                "sequence": row.get::<_, i64>("sequence"),
                "event_id": row.get::<_, uuid::Uuid>("event_id").to_string(),
                "occurred_at": occurred_at.format(&time::format_description::well_known::Rfc3339).ok(),
                "type": row.get::<_, String>("event_type"),
                "actor_id": row.get::<_, Option<String>>("actor_id"),
                "actor": row.get::<_, Option<String>>("actor_name"),
                "entity": row.get::<_, Option<String>>("entity"),
                "entity_id": row.get::<_, Option<String>>("entity_id"),
                "before": row.get::<_, Option<Value>>("before"),
                "after": row.get::<_, Option<Value>>("after"),
            })
        })
        .collect();
    Ok((items, total))
}

/// Converts a page size and offset from a query to bounded values.
#[must_use]
pub fn page(limit: Option<i64>, offset: Option<i64>) -> (i64, i64) {
    (
        limit.unwrap_or(50).clamp(1, 500),
        offset.unwrap_or(0).max(0),
    )
}

#[must_use]
pub fn sequence_param(value: u64) -> i64 {
    to_i64(value)
}

/// Last use, and today's requests and spend, of each token, from the projector's
/// `token_spend_daily` view.
///
/// # Errors
/// When Postgres does not answer.
pub async fn token_usage(pool: &Pool, ids: &[String]) -> Result<HashMap<String, Value>, ApiError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT token_id, max(last_used_at), \
               coalesce(sum(requests) FILTER (WHERE day = current_date), 0)::bigint, \
               coalesce(sum(cost_nanos) FILTER (WHERE day = current_date), 0)::bigint, \
               coalesce(max(currency) FILTER (WHERE currency <> ''), '') \
             FROM token_spend_daily WHERE token_id = ANY($1) GROUP BY token_id",
            &[&ids],
        )
        .await?;
    let mut usage = HashMap::new();
    for row in rows {
        let last_used = row.get::<_, Option<OffsetDateTime>>(1).and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        });
        let currency: String = row.get(4);
        usage.insert(
            row.get::<_, String>(0),
            serde_json::json!({
                "last_used_at": last_used,
                "requests_today": row.get::<_, i64>(2),
                "spend_today": {
                    "amount": shared::money::Nanos(row.get::<_, i64>(3)).to_decimal(),
                    "currency": if currency.is_empty() { "USD".to_owned() } else { currency },
                },
            }),
        );
    }
    Ok(usage)
}

/// Sign-ins under way at most (started in the last ten minutes, not yet back).
pub const MAX_PENDING_OIDC_LOGINS: i64 = 10_000;

/// Keeps a sign-in started at the identity provider (and drops those older than ten minutes).
///
/// # Errors
/// 503 `sso_busy` past [`MAX_PENDING_OIDC_LOGINS`]; when Postgres does not answer.
pub async fn insert_oidc_login(
    pool: &Pool,
    state_hash: &str,
    code_verifier: &str,
    nonce: &str,
) -> Result<(), ApiError> {
    let client = pool.get().await?;
    client
        .execute(
            "DELETE FROM admin_oidc_logins WHERE created_at < now() - interval '10 minutes'",
            &[],
        )
        .await?;
    // Anyone may start a sign-in: a flood of them is bounded rather than kept.
    let pending: i64 = client
        .query_one("SELECT count(*) FROM admin_oidc_logins", &[])
        .await?
        .get(0);
    if pending >= MAX_PENDING_OIDC_LOGINS {
        return Err(ApiError::Unavailable {
            code: "sso_busy",
            message: "too many sign-ins are under way; try again in a few minutes".into(),
        });
    }
    client
        .execute(
            "INSERT INTO admin_oidc_logins (state_hash, code_verifier, nonce) VALUES ($1, $2, $3)",
            &[&state_hash, &code_verifier, &nonce],
        )
        .await?;
    Ok(())
}

/// Takes (once) the sign-in a callback's `state` names, if it is less than ten minutes old:
/// its PKCE verifier and nonce.
///
/// # Errors
/// When Postgres does not answer.
pub async fn take_oidc_login(
    pool: &Pool,
    state_hash: &str,
) -> Result<Option<(String, String)>, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "DELETE FROM admin_oidc_logins WHERE state_hash = $1 \
             RETURNING code_verifier, nonce, created_at > now() - interval '10 minutes'",
            &[&state_hash],
        )
        .await?;
    Ok(row
        .filter(|row| row.get::<_, bool>(2))
        .map(|row| (row.get(0), row.get(1))))
}

/// Keeps the one-time code of a finished sign-in (and drops those older than two minutes).
///
/// # Errors
/// When Postgres does not answer.
pub async fn insert_sso_code(pool: &Pool, code_hash: &str, user_id: &str) -> Result<(), ApiError> {
    let client = pool.get().await?;
    client
        .execute(
            "DELETE FROM admin_sso_codes WHERE created_at < now() - interval '2 minutes'",
            &[],
        )
        .await?;
    client
        .execute(
            "INSERT INTO admin_sso_codes (code_hash, user_id) VALUES ($1, $2)",
            &[&code_hash, &user_id],
        )
        .await?;
    Ok(())
}

/// Takes (once) the user a one-time sign-in code names, if it is less than two minutes old.
///
/// # Errors
/// When Postgres does not answer.
pub async fn take_sso_code(pool: &Pool, code_hash: &str) -> Result<Option<String>, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "DELETE FROM admin_sso_codes WHERE code_hash = $1 \
             RETURNING user_id, created_at > now() - interval '2 minutes'",
            &[&code_hash],
        )
        .await?;
    Ok(row
        .filter(|row| row.get::<_, bool>(1))
        .map(|row| row.get(0)))
}

/// The teams `user_id` belongs to: (id, name, role), by id.
///
/// # Errors
/// When Postgres does not answer.
pub async fn teams_of(
    pool: &Pool,
    user_id: &str,
) -> Result<Vec<(String, String, shared::config::TeamRole)>, ApiError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, data FROM config_entities WHERE entity = 'team' \
               AND data->'members' @> jsonb_build_array(jsonb_build_object('user_id', $1::text)) \
             ORDER BY id",
            &[&user_id],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let team: shared::config::Team = serde_json::from_value(row.get(1)).ok()?;
            let role = team.role_of(user_id)?;
            Some((team.id, team.name, role))
        })
        .collect())
}

/// The usernames of these users (those that exist), by id, in one query.
///
/// # Errors
/// When Postgres does not answer.
pub async fn usernames(pool: &Pool, ids: &[String]) -> Result<HashMap<String, String>, ApiError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, coalesce(data->>'username', '') FROM config_entities \
             WHERE entity = 'user' AND id = ANY($1)",
            &[&ids],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// How many tokens are charged to a team.
///
/// # Errors
/// When Postgres does not answer.
pub async fn tokens_charged_to(pool: &Pool, team_id: &str) -> Result<i64, ApiError> {
    let client = pool.get().await?;
    Ok(client
        .query_one(
            "SELECT count(*) FROM config_entities WHERE entity = 'token' AND data->>'team_id' = $1",
            &[&team_id],
        )
        .await?
        .get(0))
}

/// Each team's spend (the sum of the tokens charged to it) since its start day (`None`: all
/// time): team id → (currency, nano-units).
///
/// # Errors
/// When Postgres does not answer.
pub async fn team_spend(
    pool: &Pool,
    teams: &[(String, Option<time::Date>)],
) -> Result<HashMap<String, (String, i64)>, ApiError> {
    if teams.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<&str> = teams.iter().map(|(id, _)| id.as_str()).collect();
    let earliest = teams
        .iter()
        .map(|(_, start)| *start)
        .min()
        .flatten()
        .unwrap_or(time::Date::MIN);
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT t.data->>'team_id', s.day, coalesce(max(s.currency) FILTER (WHERE s.currency <> ''), ''), \
               sum(s.cost_nanos)::bigint \
             FROM token_spend_daily s JOIN config_entities t ON t.entity = 'token' AND t.id = s.token_id \
             WHERE t.data->>'team_id' = ANY($1) AND s.day >= $2 GROUP BY 1, 2",
            &[&ids, &earliest],
        )
        .await?;
    let mut spend: HashMap<String, (String, i64)> = HashMap::new();
    for row in rows {
        let team: String = row.get(0);
        let day: time::Date = row.get(1);
        let start = teams
            .iter()
            .find(|(id, _)| *id == team)
            .and_then(|(_, start)| *start);
        if start.is_some_and(|start| day < start) {
            continue;
        }
        let currency: String = row.get(2);
        let entry = spend.entry(team).or_default();
        if !currency.is_empty() {
            entry.0 = currency;
        }
        entry.1 = entry.1.saturating_add(row.get::<_, i64>(3));
    }
    Ok(spend)
}

/// One throttle counter: failures so far and seconds since the last one.
#[derive(Debug, Clone)]
pub struct ThrottleRow {
    pub key: String,
    pub failures: u32,
    pub seconds_since_last: f64,
}

/// The throttle counters of `keys`, counting only failures within `reset_after_secs`.
///
/// # Errors
/// On a database error.
pub async fn throttle_rows(
    pool: &Pool,
    keys: &[String],
    reset_after_secs: f64,
) -> Result<Vec<ThrottleRow>, ApiError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT key, failures, EXTRACT(EPOCH FROM now() - last_failure)::float8 \
             FROM admin_login_throttle WHERE key = ANY($1) \
             AND last_failure > now() - make_interval(secs => $2)",
            &[&keys, &reset_after_secs],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ThrottleRow {
            key: row.get(0),
            failures: u32::try_from(row.get::<_, i32>(1)).unwrap_or(0),
            seconds_since_last: row.get(2),
        })
        .collect())
}

/// Counts a throttled attempt on `key`; returns how many are now unreported there.
///
/// # Errors
/// On a database error.
pub async fn throttle_suppress(pool: &Pool, key: &str) -> Result<i64, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "UPDATE admin_login_throttle SET suppressed = suppressed + 1 WHERE key = $1 RETURNING suppressed",
            &[&key],
        )
        .await?;
    Ok(row.map_or(0, |row| row.get(0)))
}

/// Records a failure on every key (a counter older than `reset_after_secs` starts again) and
/// returns the throttled attempts they held unreported, which the caller now reports.
///
/// # Errors
/// On a database error.
pub async fn throttle_fail(
    pool: &Pool,
    keys: &[String],
    reset_after_secs: f64,
) -> Result<i64, ApiError> {
    let mut client = pool.get().await?;
    let transaction = client.transaction().await?;
    let unreported: i64 = transaction
        .query_one(
            "SELECT coalesce(sum(suppressed), 0)::bigint FROM admin_login_throttle WHERE key = ANY($1)",
            &[&keys],
        )
        .await?
        .get(0);
    transaction
        .execute(
            "INSERT INTO admin_login_throttle AS t (key, failures, last_failure) \
             SELECT key, 1, now() FROM unnest($1::text[]) AS key \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN t.last_failure < now() - make_interval(secs => $2) THEN 1 \
                               ELSE LEAST(t.failures, 1000000) + 1 END, \
               last_failure = now(), suppressed = 0",
            &[&keys, &reset_after_secs],
        )
        .await?;
    // Counters nobody has touched for a day are gone; a bounded table needs no other sweep.
    transaction
        .execute(
            "DELETE FROM admin_login_throttle WHERE last_failure < now() - interval '1 day'",
            &[],
        )
        .await?;
    transaction.commit().await?;
    Ok(unreported)
}

/// Forgets the counter of `key` after a success; returns its unreported throttled attempts.
///
/// # Errors
/// On a database error.
pub async fn throttle_clear(pool: &Pool, key: &str) -> Result<i64, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "DELETE FROM admin_login_throttle WHERE key = $1 RETURNING suppressed",
            &[&key],
        )
        .await?;
    Ok(row.map_or(0, |row| row.get(0)))
}
