//! `/api/v1/settings`: free-form JSON settings by key. `PUT /settings/{key}` creates (no
//! `version`) or updates (with the `version` read).
//!
//! `member_token_defaults` is checked against its shape and written with the `token_defaults`
//! permission (admins and operators) rather than `setting` (admins only).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use shared::config::{ConfigEvent, Deleted, Setting};

use super::token_limits::{MEMBER_TOKEN_DEFAULTS, TokenDefaults};
use super::{commit, delete_version, list_query, load, page_json, read_back, render};
use crate::auth::Caller;
use crate::authz::require_kind;
use crate::authz::{Resource, require};
use crate::db;
use crate::error::ApiError;
use crate::extract::{Body, parse};
use crate::state::AppState;

const ENTITY: &str = "setting";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingInput {
    value: Value,
    #[serde(default)]
    version: Option<u64>,
}

/// The kind whose permission guards writing `key`.
fn permission_kind(key: &str) -> &'static str {
    if key == MEMBER_TOKEN_DEFAULTS {
        "token_defaults"
    } else {
        ENTITY
    }
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    require_kind(&state, &caller, "read", ENTITY)?;
    let query = list_query(params, &[])?;
    let (rows, total) = db::list(&state.pool, ENTITY, &query).await?;
    Ok(Json(page_json(
        rows.iter().map(render).collect(),
        total,
        &query,
    )))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_kind(&state, &caller, "read", ENTITY)?;
    Ok(Json(render(&load(&state, ENTITY, &key).await?)))
}

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let action = if body.get("version").is_some() {
        "update"
    } else {
        "create"
    };
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        action,
        &Resource::kind(permission_kind(&key)),
    )?;
    let input: SettingInput = parse(body)?;
    if key == MEMBER_TOKEN_DEFAULTS {
        TokenDefaults::parse(input.value.clone()).map_err(|error| match error {
            ApiError::BadRequest { message, field, .. } => ApiError::BadRequest {
                code: "invalid_field",
                message,
                field: Some(format!("value.{}", field.unwrap_or_default())),
            },
            other => other,
        })?;
    }
    if !shared::ids::is_valid_entity_id(&key) {
        return Err(ApiError::invalid(
            "key",
            "a key has 1 to 128 characters among letters, digits, - and _",
        ));
    }
    if serde_json::to_vec(&input.value)?.len() > 64 * 1024 {
        return Err(ApiError::invalid(
            "value",
            "a setting holds at most 64 KiB of JSON",
        ));
    }
    let event = ConfigEvent::SettingPut(Setting {
        key: key.clone(),
        value: input.value,
    });
    let sequence = commit(&state, event, &caller.actor(), input.version.unwrap_or(0)).await?;
    let status = if input.version.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(render(&read_back(&state, ENTITY, &key, sequence).await?)),
    ))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    require_kind(&state, &caller, "delete", permission_kind(&key))?;
    let stored = load(&state, ENTITY, &key).await?;
    let version = delete_version(&params, &stored)?;
    commit(
        &state,
        ConfigEvent::SettingDeleted(Deleted { id: key }),
        &caller.actor(),
        version,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
