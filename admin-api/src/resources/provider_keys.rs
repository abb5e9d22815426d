//! `/api/v1/provider-keys`: upstream API keys. The secret is encrypted with the master key
//! (bound to the key id and its provider as associated data) before it enters an event and is
//! never returned: responses show `last_four` and the key's health.
//!
//! Where a key is sent is policy: moving a key to another provider needs its secret entered
//! again, unless the caller may change key destinations (`update` on `key_destination`,
//! admins), in which case admin-api re-seals the stored secret for the new provider.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::audit::{AuditEvent, ProviderKeyTested};
use shared::config::{ConfigEntity, ConfigEvent, Deleted, Model, Protocol, Provider, ProviderKey};
use shared::secret::{KeyBinding, SecretString};

use super::crud::{self, ConfigResource, Ctx, Declare, ReadResource, Resource};
use super::{load, render, validate};
use crate::auth::Caller;
use crate::authz::require_kind;
use crate::db::{self, Stored};
use crate::error::ApiError;
use crate::extract::{Body, parse};
use crate::permission::{Action, Kind};
use crate::read_your_writes::Projection;
use crate::routes::Api;
use crate::state::AppState;

const ENTITY: &str = "provider_key";

/// What a client sends to create or update a key. `secret` is required at creation and
/// optional in an update (a new secret replaces the old one).
#[derive(Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct KeyInput {
    #[serde(default)]
    pub id: Option<String>,
    pub provider_id: String,
    pub name: String,
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "super::providers::enabled_by_default")]
    #[ts(as = "Option<bool>", optional)]
    pub enabled: bool,
}

/// A key as `apply` files declare it: the secret comes from an environment variable.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredKey {
    pub id: String,
    pub provider_id: String,
    pub name: String,
    /// The environment variable holding the secret.
    pub secret_env: String,
    #[serde(default = "super::providers::enabled_by_default")]
    pub enabled: bool,
}

/// Whether the caller may change where a provider's keys are sent without entering them again.
#[must_use]
pub fn may_redirect_keys(state: &AppState, caller: &Caller) -> bool {
    state.authorizer.is_allowed(
        &caller.principal(),
        Action::Update,
        &crate::authz::Resource::kind(Kind::KeyDestination),
    )
}

/// Validates an input into the key's full state, encrypting a new secret. A key moved to
/// another provider without a new secret is re-sealed for it only when `may_redirect`.
///
/// # Errors
/// 400 naming the first invalid field; 403 `secret_required` for a move without the secret.
pub async fn build(
    state: &AppState,
    input: KeyInput,
    id: String,
    existing: Option<&ProviderKey>,
    may_redirect: bool,
) -> Result<ProviderKey, ApiError> {
    validate::name("name", &input.name)?;
    validate::id("provider_id", &input.provider_id)?;
    if db::get(
        &state.pool,
        ConfigEntity::Provider.as_str(),
        &input.provider_id,
    )
    .await?
    .is_none()
    {
        return Err(ApiError::invalid("provider_id", "no provider has this id"));
    }
    let binding = KeyBinding {
        key_id: &id,
        provider_id: &input.provider_id,
    };
    let (secret, last_four) = match (input.secret, existing) {
        (Some(secret), _) => {
            let secret = SecretString::new(secret);
            if secret.expose().trim().is_empty() || secret.expose().len() > 4096 {
                return Err(ApiError::invalid(
                    "secret",
                    "secret must have 1 to 4096 characters",
                ));
            }
            let sealed = state
                .master_keys
                .encrypt(&secret, binding)
                .map_err(ApiError::internal)?;
            (sealed, secret.last_four())
        }
        (None, Some(existing)) if existing.provider_id == input.provider_id => {
            (existing.secret.clone(), existing.last_four.clone())
        }
        (None, Some(existing)) => {
            if !may_redirect {
                return Err(ApiError::Forbidden {
                    code: "secret_required",
                    message: "moving a key to another provider sends it somewhere else: enter its secret again (or ask an admin)".into(),
                });
            }
            let secret = state
                .master_keys
                .decrypt(&existing.secret, existing.binding())
                .map_err(|error| ApiError::BadRequest {
                    code: "undecryptable_key",
                    message: format!("the stored secret cannot be re-sealed for the new provider ({error}); enter it again"),
                    field: Some("secret".into()),
                })?;
            let sealed = state
                .master_keys
                .encrypt(&secret, binding)
                .map_err(ApiError::internal)?;
            (sealed, existing.last_four.clone())
        }
        (None, None) => return Err(ApiError::invalid("secret", "a new key needs its secret")),
    };
    Ok(ProviderKey {
        id,
        provider_id: input.provider_id,
        name: input.name.trim().to_owned(),
        secret,
        last_four,
        enabled: input.enabled,
    })
}

/// Renders keys with their health.
async fn render_with_health(state: &AppState, rows: &[Stored]) -> Result<Vec<Value>, ApiError> {
    let ids: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
    let health = db::key_health(&state.pool, &ids).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let mut value = render(row);
            value["health"] = health.get(&row.id).cloned().unwrap_or(Value::Null);
            value
        })
        .collect())
}

/// Provider keys, declared.
pub struct ProviderKeys;

impl ReadResource for ProviderKeys {
    const RESOURCE: Resource = Resource {
        kind: Kind::ProviderKey,
        entity: ConfigEntity::ProviderKey,
        path: "/api/v1/provider-keys",
        tag: "provider-keys",
        filters: &["provider_id", "enabled"],
        owner_field: None,
        team_field: None,
        secret_fields: &["secret"],
        operator_only: &[],
        example: || json!({"id": "openai-main", "provider_id": "openai", "name": "main", "secret": "sk-…", "enabled": true}),
    };

    async fn render(state: &AppState, rows: &[Stored]) -> Result<Vec<Value>, ApiError> {
        render_with_health(state, rows).await
    }
}

impl ConfigResource for ProviderKeys {
    type Input = KeyInput;
    type Entity = ProviderKey;

    fn requested_id(input: &KeyInput) -> Option<String> {
        input.id.clone()
    }

    fn as_input(current: &ProviderKey) -> Result<Value, ApiError> {
        Ok(
            json!({"id": current.id, "provider_id": current.provider_id, "name": current.name, "enabled": current.enabled}),
        )
    }

    async fn build(
        ctx: &Ctx<'_>,
        input: KeyInput,
        id: String,
        current: Option<ProviderKey>,
    ) -> Result<ProviderKey, ApiError> {
        let may_redirect = current.is_some() && may_redirect_keys(ctx.state, ctx.caller);
        build(ctx.state, input, id, current.as_ref(), may_redirect).await
    }

    fn put(entity: ProviderKey) -> ConfigEvent {
        ConfigEvent::ProviderKeyPut(entity)
    }

    fn deleted(id: String) -> ConfigEvent {
        ConfigEvent::ProviderKeyDeleted(Deleted { id })
    }

    async fn before_delete(state: &AppState, stored: &Stored) -> Result<(), ApiError> {
        let models = db::models_using(&state.pool, None, Some(&stored.id)).await?;
        if !models.is_empty() {
            return Err(ApiError::Conflict {
                code: "in_use",
                message: format!(
                    "models {models:?} name this key in a route; change them first (or disable the key)"
                ),
                field: None,
                current_version: Some(stored.version),
            });
        }
        Ok(())
    }
}

/// The endpoints of provider keys.
pub fn declare(api: Api) -> Api {
    Declare::new(api, &ProviderKeys::RESOURCE)
        .list(
            "List provider keys, masked, with health (filters: provider_id, enabled)",
            crud::list::<ProviderKeys>,
        )
        .create(
            "Create a provider key (the secret is encrypted, never returned)",
            crud::create::<ProviderKeys>,
        )
        .get(
            "Get a provider key, masked, with health",
            crud::get::<ProviderKeys>,
        )
        .update(
            "Update a provider key (optionally a new secret)",
            crud::update::<ProviderKeys>,
        )
        .delete("Delete a provider key", crud::delete::<ProviderKeys>)
        .action(
            "test",
            Action::Test,
            "Make a minimal real call upstream with the key and record its health",
            || json!({"model": "claude-3-5-haiku-latest"}),
            test,
        )
        .done()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    /// For Anthropic providers: the model of the 1-token call (default: the first route of a
    /// model served by this provider).
    #[serde(default)]
    model: Option<String>,
}

/// What a test call found, in words that never include the key.
struct Outcome {
    ok: bool,
    status: Option<u16>,
    latency_ms: u64,
    error: Option<String>,
}

/// `POST /api/v1/provider-keys/{id}/test`: a minimal real call upstream with this key; the
/// result is published as a `provider_key.tested` audit event, which the projector folds
/// into the key's health.
pub async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<Value>, ApiError> {
    require_kind(&state, &caller, Action::Test, Kind::ProviderKey)?;
    let request: TestRequest = parse(body)?;
    let stored = load(&state, ENTITY, &id).await?;
    let key: ProviderKey = serde_json::from_value(stored.data.clone())?;
    let provider: Provider =
        serde_json::from_value(load(&state, "provider", &key.provider_id).await?.data)?;
    // The address guard first: nothing is decrypted for a destination that is refused.
    let http = crate::egress::guarded_client(&provider).await?;
    let secret = state
        .master_keys
        .decrypt(&key.secret, key.binding())
        .map_err(|error| ApiError::BadRequest {
            code: "undecryptable_key",
            message: format!(
                "the key cannot be decrypted with the configured master keys: {error}"
            ),
            field: None,
        })?;
    let model = match request.model {
        Some(model) => model,
        None => first_upstream_model(&state, &provider.id).await?,
    };
    let outcome = call_upstream(&http, &provider, &secret, &model).await;
    let event = AuditEvent::ProviderKeyTested(ProviderKeyTested {
        provider_key_id: key.id.clone(),
        provider_id: provider.id.clone(),
        ok: outcome.ok,
        status: outcome.status,
        latency_ms: outcome.latency_ms,
        error: outcome.error.clone(),
    });
    let sequence = state
        .bus
        .publish_audit(event, Some(&caller.actor()), &state.node_id)
        .await?;
    // The call was made and its result is known: answer with it even when the projector has
    // not folded it into the key's health in time (`health_recorded: false`).
    let health_recorded = match state
        .projections
        .wait_for(Projection::Audit, sequence, state.read_your_writes_timeout)
        .await
    {
        Ok(()) => true,
        Err(ApiError::Unavailable { .. }) => {
            tracing::warn!(provider_key_id = %id, sequence, "key test result not yet folded into provider_key_health");
            false
        }
        Err(error) => return Err(error),
    };
    let key_json =
        crud::render_one::<ProviderKeys>(&state, load(&state, ENTITY, &id).await?).await?;
    Ok(Json(json!({
        "health_recorded": health_recorded,
        "ok": outcome.ok,
        "status": outcome.status,
        "latency_ms": outcome.latency_ms,
        "error": outcome.error,
        "key": key_json,
    })))
}

async fn first_upstream_model(state: &AppState, provider_id: &str) -> Result<String, ApiError> {
    for stored in db::all(&state.pool, ConfigEntity::Model.as_str()).await? {
        if let Ok(model) = serde_json::from_value::<Model>(stored.data)
            && let Some(route) = model
                .routes
                .iter()
                .find(|route| route.provider_id == provider_id)
        {
            return Ok(route.upstream_model.clone());
        }
    }
    Ok("claude-3-5-haiku-latest".into())
}

async fn call_upstream(
    http: &reqwest::Client,
    provider: &Provider,
    secret: &SecretString,
    model: &str,
) -> Outcome {
    let base = provider.base_url.trim_end_matches('/');
    let total =
        Duration::from_millis(u64::from(provider.timeouts.total_ms)).min(Duration::from_secs(30));
    let mut request = match provider.protocol {
        Protocol::OpenAi | Protocol::OpenAiResponses => http.get(format!("{base}/models")).bearer_auth(secret.expose()),
        // Listing models costs nothing and needs a valid key.
        Protocol::Gemini => http.get(format!("{base}/models")).header("x-goog-api-key", secret.expose()),
        Protocol::Anthropic => http
            .post(format!("{base}/messages"))
            .header("x-api-key", secret.expose())
            .header("anthropic-version", "2023-06-01")
            .json(&json!({"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]})),
    };
    for (name, value) in &provider.extra_headers {
        request = request.header(name, value);
    }
    let started = Instant::now();
    let result = request.timeout(total).send().await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let scrub = |text: String| text.replace(secret.expose(), "[redacted]");
    match result {
        Ok(response) if response.status().is_success() => Outcome {
            ok: true,
            status: Some(response.status().as_u16()),
            latency_ms,
            error: None,
        },
        Ok(response) => {
            let status = response.status();
            Outcome {
                ok: false,
                status: Some(status.as_u16()),
                latency_ms,
                // The upstream body is not kept: some providers echo part of the key.
                error: Some(scrub(format!("upstream answered {status}"))),
            }
        }
        Err(error) => Outcome {
            ok: false,
            status: None,
            latency_ms,
            error: Some(scrub(if error.is_timeout() {
                "upstream did not answer in time".to_owned()
            } else if error.is_connect() {
                "could not connect to the upstream".to_owned()
            } else {
                format!("request failed: {}", error.without_url())
            })),
        },
    }
}
