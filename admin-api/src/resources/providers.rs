//! `/api/v1/providers`: upstream providers (name, protocol, base URL, extra headers, timeouts).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::config::{
    ConfigEntity, ConfigEvent, Deleted, Protocol, Provider, ProviderKey, Timeouts,
};

use super::{
    commit, delete_version, list_query, load, merge, new_id, page_json, read_back, render,
    take_version, validate,
};
use crate::auth::Caller;
use crate::authz::require_kind;
use crate::db;
use crate::error::ApiError;
use crate::extract::{Body, parse};
use crate::state::AppState;

const ENTITY: &str = "provider";

/// What a client sends to create or update a provider (and what `apply` files hold).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub protocol: Protocol,
    pub base_url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default)]
    pub allow_private_network: bool,
}

pub(crate) fn enabled_by_default() -> bool {
    true
}

/// Validates an input into the provider's full state.
///
/// # Errors
/// 400 naming the first invalid field.
pub fn build(input: ProviderInput, id: String) -> Result<Provider, ApiError> {
    validate::name("name", &input.name)?;
    validate::base_url("base_url", &input.base_url)?;
    validate::extra_headers(&input.extra_headers)?;
    let timeouts = input.timeouts;
    for (field, value) in [
        ("timeouts.connect_ms", timeouts.connect_ms),
        ("timeouts.first_byte_ms", timeouts.first_byte_ms),
        ("timeouts.idle_ms", timeouts.idle_ms),
        ("timeouts.total_ms", timeouts.total_ms),
    ] {
        if value == 0 || value > 3_600_000 {
            return Err(ApiError::invalid(
                field,
                format!("{field} must be 1 to 3600000"),
            ));
        }
    }
    Ok(Provider {
        id,
        name: input.name.trim().to_owned(),
        protocol: input.protocol,
        base_url: input.base_url.trim_end_matches('/').to_owned(),
        extra_headers: input.extra_headers,
        timeouts,
        enabled: input.enabled,
        allow_private_network: input.allow_private_network,
    })
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    require_kind(&state, &caller, "read", ENTITY)?;
    let query = list_query(params, &["protocol", "enabled"])?;
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
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_kind(&state, &caller, "read", ENTITY)?;
    Ok(Json(render(&load(&state, ENTITY, &id).await?)))
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_kind(&state, &caller, "create", ENTITY)?;
    let input: ProviderInput = parse(body)?;
    let id = new_id(input.id.clone())?;
    let provider = build(input, id.clone())?;
    let sequence = commit(
        &state,
        ConfigEvent::ProviderPut(provider),
        &caller.actor(),
        0,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(render(&read_back(&state, ENTITY, &id, sequence).await?)),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(mut body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    require_kind(&state, &caller, "update", ENTITY)?;
    let version = take_version(&mut body)?;
    super::check_body_id(&mut body, &id, "id")?;
    let reentered = take_key_secrets(&mut body)?;
    let stored = load(&state, ENTITY, &id).await?;
    let current: Provider = serde_json::from_value(stored.data.clone())?;
    let input: ProviderInput = parse(merge(stored.data, body))?;
    let provider = build(input, id.clone())?;
    if (provider.base_url != current.base_url
        || provider.allow_private_network != current.allow_private_network)
        && !super::provider_keys::may_redirect_keys(&state, &caller)
    {
        check_reentered_secrets(&state, &id, &reentered).await?;
    }
    let sequence = commit(
        &state,
        ConfigEvent::ProviderPut(provider),
        &caller.actor(),
        version,
    )
    .await?;
    Ok(Json(render(
        &read_back(&state, ENTITY, &id, sequence).await?,
    )))
}

/// Takes `key_secrets` (`{"<key id>": "<secret>"}`) out of an update body.
fn take_key_secrets(body: &mut Value) -> Result<BTreeMap<String, String>, ApiError> {
    match body
        .as_object_mut()
        .and_then(|object| object.remove("key_secrets"))
    {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(value) => serde_json::from_value(value).map_err(|_| {
            ApiError::invalid(
                "key_secrets",
                "key_secrets maps each key id of the provider to its secret",
            )
        }),
    }
}

/// Moving a provider (its base URL or private-network flag) moves where its keys are sent. A
/// caller who may not change key destinations must show they already know every key's secret,
/// so the move can exfiltrate nothing they did not have.
async fn check_reentered_secrets(
    state: &AppState,
    provider_id: &str,
    reentered: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let keys = db::all(&state.pool, ConfigEntity::ProviderKey.as_str()).await?;
    for stored in keys {
        let Ok(key) = serde_json::from_value::<ProviderKey>(stored.data) else {
            continue;
        };
        if key.provider_id != provider_id {
            continue;
        }
        let known = reentered.get(&key.id).is_some_and(|given| {
            state
                .master_keys
                .decrypt(&key.secret, key.binding())
                .is_ok_and(|secret| {
                    subtle::ConstantTimeEq::ct_eq(secret.expose().as_bytes(), given.as_bytes())
                        .into()
                })
        });
        if !known {
            return Err(ApiError::Forbidden {
                code: "secret_required",
                message: format!(
                    "changing where provider {provider_id:?} sends its keys needs the admin role, or every key's secret entered again in key_secrets (missing or wrong: {:?})",
                    key.id
                ),
            });
        }
    }
    Ok(())
}

pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    require_kind(&state, &caller, "delete", ENTITY)?;
    let stored = load(&state, ENTITY, &id).await?;
    let version = delete_version(&params, &stored)?;
    let keys = db::find_by_field(
        &state.pool,
        ConfigEntity::ProviderKey.as_str(),
        "provider_id",
        &id,
    )
    .await?;
    if keys.is_some() {
        return Err(ApiError::Conflict {
            code: "in_use",
            message: "the provider still has keys; delete them first (or disable the provider)"
                .into(),
            field: None,
            current_version: Some(stored.version),
        });
    }
    let models = db::models_using(&state.pool, Some(&id), None).await?;
    if !models.is_empty() {
        return Err(ApiError::Conflict {
            code: "in_use",
            message: format!(
                "models {models:?} route to this provider; change them first (or disable the provider)"
            ),
            field: None,
            current_version: Some(stored.version),
        });
    }
    commit(
        &state,
        ConfigEvent::ProviderDeleted(Deleted { id }),
        &caller.actor(),
        version,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
