//! `GET /api/v1/usage`: requests, tokens and cost from ClickHouse, grouped by day, model, token
//! or user. Operators and viewers see everyone's usage; a member sees their own only. The
//! queries use only what ClickHouse 18.16 has.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::money::Nanos;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::authz::require_any_or_own;
use crate::error::ApiError;
use crate::permission::{Action, Kind};
use crate::state::AppState;

#[derive(Debug, clickhouse::Row, Deserialize)]
struct UsageRow {
    group_key: String,
    currency: String,
    requests: u64,
    errors: u64,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    cost_nanos: i64,
}

fn seconds(name: &str, value: &str) -> Result<u32, ApiError> {
    let at = OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| ApiError::invalid(name, format!("{name} must be an RFC 3339 time")))?;
    u32::try_from(at.unix_timestamp())
        .map_err(|_| ApiError::invalid(name, format!("{name} is out of range")))
}

/// Filters: `from`, `to` (RFC 3339; default the last 30 days), `user_id`, `token_id`,
/// `model`; `group_by` one of `day` (default), `model`, `token`, `user`.
pub async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let mut user_filter = params.get("user_id").cloned();
    if !require_any_or_own(&state, &caller, Action::Read, Kind::Usage)? {
        // Someone who may read only their own usage gets exactly that.
        let own = caller.user_id.clone();
        if user_filter.as_ref().is_some_and(|user| *user != own) {
            return Err(ApiError::forbidden(
                "a member may read only their own usage",
            ));
        }
        user_filter = Some(own);
    }
    let mut conditions = vec!["1 = 1".to_owned()];
    let now = OffsetDateTime::now_utc();
    let from = match params.get("from") {
        Some(value) => seconds("from", value)?,
        None => u32::try_from((now - time::Duration::days(30)).unix_timestamp()).unwrap_or(0),
    };
    conditions.push("occurred_at >= toDateTime(?)".into());
    let mut to = None;
    if let Some(value) = params.get("to") {
        to = Some(seconds("to", value)?);
        conditions.push("occurred_at < toDateTime(?)".into());
    }
    let mut text_binds = Vec::new();
    for (param, column) in [("token_id", "token_id"), ("model", "model_alias")] {
        if let Some(value) = params.get(param) {
            conditions.push(format!("{column} = ?"));
            text_binds.push(value.clone());
        }
    }
    if let Some(user) = &user_filter {
        conditions.push("user_id = ?".into());
        text_binds.push(user.clone());
    }
    for name in params.keys() {
        if !["from", "to", "token_id", "model", "user_id", "group_by"].contains(&name.as_str()) {
            return Err(ApiError::invalid(
                name.clone(),
                format!(
                    "unknown parameter {name:?}; filters: from, to, user_id, token_id, model, group_by"
                ),
            ));
        }
    }
    let group_by = params.get("group_by").map_or("day", String::as_str);
    let group_expression = match group_by {
        "day" => "toString(date)",
        "model" => "model_alias",
        "token" => "token_id",
        "user" => "user_id",
        _ => {
            return Err(ApiError::invalid(
                "group_by",
                "group_by must be day, model, token or user",
            ));
        }
    };
    let sql = format!(
        "SELECT {group_expression} AS group_key, currency, count() AS requests, \
           countIf(outcome != 'success') AS errors, sum(input_tokens) AS input_tokens, \
           sum(output_tokens) AS output_tokens, sum(cache_read_tokens) AS cache_read_tokens, \
           sum(cache_write_tokens) AS cache_write_tokens, sum(cost_nanos) AS cost_nanos \
         FROM requests WHERE {} GROUP BY group_key, currency ORDER BY group_key, currency",
        conditions.join(" AND ")
    );
    let mut query = state.clickhouse.query(&sql).bind(from);
    if let Some(to) = to {
        query = query.bind(to);
    }
    for value in &text_binds {
        query = query.bind(value.as_str());
    }
    let rows = query
        .fetch_all::<UsageRow>()
        .await
        .map_err(|error| ApiError::Unavailable {
            code: "analytics_unavailable",
            message: format!("ClickHouse did not answer: {error}"),
        })?;
    let items: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            json!({
                "key": row.group_key, "currency": row.currency, "requests": row.requests,
                "errors": row.errors, "input_tokens": row.input_tokens, "output_tokens": row.output_tokens,
                "cache_read_tokens": row.cache_read_tokens, "cache_write_tokens": row.cache_write_tokens,
                "cost": Nanos(row.cost_nanos).to_decimal(),
            })
        })
        .collect();
    Ok(Json(json!({"group_by": group_by, "items": items})))
}
