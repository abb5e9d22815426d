//! `/api/v1/settings`: free-form JSON settings by key. `PUT /settings/{key}` creates (no
//! `version`) or updates (with the `version` read).
//!
//! `member_token_defaults` is checked against its shape and written with the `token_defaults`
//! permission (admins and operators) rather than `setting` (admins only); `rate_limits` (the
//! limits by dimension ingress enforces) likewise, with the `rate_limits` permission.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use shared::config::{ConfigEvent, Deleted, RATE_LIMITS_SETTING, Rate, RateLimits, Setting};

use super::crud::{self, Declare, ReadResource, Resource};
use super::token_limits::{MEMBER_TOKEN_DEFAULTS, TokenDefaults};
use super::{commit, delete_version, load, read_back, render};
use crate::auth::Caller;
use crate::authz::{self, require, require_kind};
use crate::error::ApiError;
use crate::extract::{Body, parse};
use crate::permission::{Action, Kind};
use crate::routes::Api;
use crate::state::AppState;

const ENTITY: &str = "setting";

/// Settings, declared. A setting's id is its key; its body is any JSON value.
pub struct Settings;

impl ReadResource for Settings {
    const RESOURCE: Resource = Resource {
        kind: Kind::Setting,
        entity: shared::config::ConfigEntity::Setting,
        path: "/api/v1/settings",
        tag: "settings",
        filters: &[],
        owner_field: None,
        team_field: None,
        secret_fields: &[],
        operator_only: &[],
        example: || serde_json::json!({"value": {"any": "JSON"}, "version": 42}),
    };
}

/// The endpoints of settings.
pub fn declare(api: Api) -> Api {
    Declare::new(api, &Settings::RESOURCE)
        .list("List settings", crud::list::<Settings>)
        .get("Get a setting", crud::get::<Settings>)
        .put(
            "Create (no version) or update (with version) a setting",
            put,
        )
        .delete("Delete a setting", delete)
        .done()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingInput {
    value: Value,
    #[serde(default)]
    version: Option<u64>,
}

/// The kind whose permission guards writing `key`.
fn permission_kind(key: &str) -> Kind {
    if key == MEMBER_TOKEN_DEFAULTS {
        Kind::TokenDefaults
    } else if key == RATE_LIMITS_SETTING {
        Kind::RateLimits
    } else {
        Kind::Setting
    }
}

pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let action = if body.get("version").is_some() {
        Action::Update
    } else {
        Action::Create
    };
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        action,
        &authz::Resource::kind(permission_kind(&key)),
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
    if key == RATE_LIMITS_SETTING {
        check_rate_limits(&input.value)?;
    }
    if key == shared::config::SPEND_ALERTS_SETTING {
        crate::alerts::check_settings(&input.value)?;
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

/// The shape of `rate_limits`: known fields only, user ids and model aliases that could exist,
/// and every limit at least 1 (an absent limit is none).
pub(crate) fn check_rate_limits(value: &Value) -> Result<(), ApiError> {
    let limits: RateLimits = serde_json::from_value(value.clone())
        .map_err(|_| {
            ApiError::invalid(
                "value",
                "rate_limits holds per_user, users, models and per_address, each limit an object of rpm and tpm counts",
            )
        })?;
    let check = |field: String, rate: &Rate| -> Result<(), ApiError> {
        if rate.rpm == Some(0) || rate.tpm == Some(0) {
            return Err(ApiError::invalid(
                field,
                "a limit is at least 1 per minute; leave it out for none",
            ));
        }
        Ok(())
    };
    if let Some(rate) = &limits.per_user {
        check("value.per_user".into(), rate)?;
    }
    if let Some(rate) = &limits.per_address {
        check("value.per_address".into(), rate)?;
    }
    for (user_id, rate) in &limits.users {
        if !shared::ids::is_valid_entity_id(user_id) {
            return Err(ApiError::invalid(
                "value.users",
                "a key of users is not a user id (1 to 128 letters, digits, - and _)",
            ));
        }
        check(format!("value.users.{user_id}"), rate)?;
    }
    for (alias, rate) in &limits.models {
        super::validate::alias("value.models", alias)?;
        check(format!("value.models.{alias}"), rate)?;
    }
    Ok(())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    require_kind(&state, &caller, Action::Delete, permission_kind(&key))?;
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
