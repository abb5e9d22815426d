//! `GET /api/v1/audit`: the audit view (config changes with redacted before/after, logins,
//! token reveals, key tests), newest first, with filters and pagination.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::authz::{Resource, require};
use crate::db::{self, AuditQuery};
use crate::error::ApiError;
use crate::permission::{Action, Kind};
use crate::state::AppState;

fn time_param(name: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .map_err(|_| ApiError::invalid(name, format!("{name} must be an RFC 3339 time")))
}

/// Filters: `entity`, `entity_id`, `actor` (username or user id), `type` (event type),
/// `from`, `to` (RFC 3339, `to` exclusive), `limit`, `offset`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Read,
        &Resource::kind(Kind::Audit),
    )?;
    let mut query = AuditQuery::default();
    let mut limit = None;
    let mut offset = None;
    for (name, value) in params {
        match name.as_str() {
            "entity" => query.entity = Some(value),
            "entity_id" => query.entity_id = Some(value),
            "actor" => query.actor = Some(value),
            "type" => query.event_type = Some(value),
            "from" => query.from = Some(time_param("from", &value)?),
            "to" => query.to = Some(time_param("to", &value)?),
            "limit" => {
                limit = Some(
                    value
                        .parse()
                        .map_err(|_| ApiError::invalid("limit", "limit must be a number"))?,
                )
            }
            "offset" => {
                offset = Some(
                    value
                        .parse()
                        .map_err(|_| ApiError::invalid("offset", "offset must be a number"))?,
                )
            }
            _ => {
                return Err(ApiError::invalid(
                    name.clone(),
                    format!(
                        "unknown parameter {name:?}; filters: entity, entity_id, actor, type, from, to, limit, offset"
                    ),
                ));
            }
        }
    }
    (query.limit, query.offset) = db::page(limit, offset);
    let (items, total) = db::audit(&state.pool, &query).await?;
    Ok(Json(
        json!({"items": items, "total": total, "limit": query.limit, "offset": query.offset}),
    ))
}
