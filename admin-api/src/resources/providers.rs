//! `/api/v1/providers`: upstream providers (name, protocol, base URL, extra headers, timeouts).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::config::{
    ConfigEntity, ConfigEvent, Deleted, Protocol, Provider, ProviderKey, Timeouts,
};

use super::crud::{self, ConfigResource, Ctx, Declare, ReadResource, Resource};
use super::validate;
use crate::db::{self, Stored};
use crate::error::ApiError;
use crate::permission::Kind;
use crate::routes::Api;
use crate::state::AppState;

/// What a client sends to create or update a provider (and what `apply` files hold).
#[derive(Debug, Clone, Deserialize, Serialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct ProviderInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub protocol: Protocol,
    pub base_url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[ts(as = "Option<BTreeMap<String, String>>", optional)]
    pub extra_headers: BTreeMap<String, String>,
    #[serde(default)]
    #[ts(as = "Option<Timeouts>", optional)]
    pub timeouts: Timeouts,
    #[serde(default = "enabled_by_default")]
    #[ts(as = "Option<bool>", optional)]
    pub enabled: bool,
    #[serde(default)]
    #[ts(as = "Option<bool>", optional)]
    pub allow_private_network: bool,
    /// Only in an update that moves the provider (its `base_url` or `allow_private_network`)
    /// by a caller who may not change where keys are sent: every key's secret, by key id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[ts(as = "Option<BTreeMap<String, String>>", optional)]
    pub key_secrets: BTreeMap<String, String>,
}

pub(crate) fn enabled_by_default() -> bool {
    true
}

/// Validates an input into the provider's full state.
///
/// # Errors
/// 400 naming the first invalid field.
pub fn build(input: ProviderInput, id: String) -> Result<Provider, ApiError> {
    if !input.key_secrets.is_empty() {
        return Err(ApiError::invalid(
            "key_secrets",
            "key_secrets belongs in an update that moves a provider with keys",
        ));
    }
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

/// Providers, declared.
pub struct Providers;

impl ReadResource for Providers {
    const RESOURCE: Resource = Resource {
        kind: Kind::Provider,
        entity: ConfigEntity::Provider,
        path: "/api/v1/providers",
        tag: "providers",
        filters: &["protocol", "enabled"],
        owner_field: None,
        team_field: None,
        secret_fields: &[],
        operator_only: &[],
        example,
    };
}

impl ConfigResource for Providers {
    type Input = ProviderInput;
    type Entity = Provider;

    fn requested_id(input: &ProviderInput) -> Option<String> {
        input.id.clone()
    }

    fn as_input(current: &Provider) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(current)?)
    }

    async fn build(
        ctx: &Ctx<'_>,
        mut input: ProviderInput,
        id: String,
        current: Option<Provider>,
    ) -> Result<Provider, ApiError> {
        let Some(current) = current else {
            return build(input, id);
        };
        let reentered = std::mem::take(&mut input.key_secrets);
        let provider = build(input, id.clone())?;
        if (provider.base_url != current.base_url
            || provider.allow_private_network != current.allow_private_network)
            && !super::provider_keys::may_redirect_keys(ctx.state, ctx.caller)
        {
            check_reentered_secrets(ctx.state, &id, &reentered).await?;
        }
        Ok(provider)
    }

    fn put(entity: Provider) -> ConfigEvent {
        ConfigEvent::ProviderPut(entity)
    }

    fn deleted(id: String) -> ConfigEvent {
        ConfigEvent::ProviderDeleted(Deleted { id })
    }

    async fn before_delete(state: &AppState, stored: &Stored) -> Result<(), ApiError> {
        let id = &stored.id;
        let keys = db::find_by_field(
            &state.pool,
            ConfigEntity::ProviderKey.as_str(),
            "provider_id",
            id,
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
        let models = db::models_using(&state.pool, Some(id), None).await?;
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
        Ok(())
    }
}

fn example() -> Value {
    serde_json::to_value(ProviderInput {
        id: Some("openai".into()),
        name: "OpenAI".into(),
        protocol: Protocol::OpenAi,
        base_url: "https://api.openai.com/v1".into(),
        extra_headers: BTreeMap::default(),
        timeouts: Timeouts::default(),
        enabled: true,
        allow_private_network: false,
        key_secrets: BTreeMap::default(),
    })
    .unwrap_or_default()
}

/// The endpoints of providers.
pub fn declare(api: Api) -> Api {
    Declare::new(api, &Providers::RESOURCE)
        .list(
            "List providers (filters: protocol, enabled, q)",
            crud::list::<Providers>,
        )
        .create("Create a provider", crud::create::<Providers>)
        .get("Get a provider", crud::get::<Providers>)
        .update(
            "Update a provider (body names the version read; moving it without the admin role needs every key's secret in key_secrets)",
            crud::update::<Providers>,
        )
        .delete("Delete a provider (?version=)", crud::delete::<Providers>)
        .done()
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
