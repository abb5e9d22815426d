//! Declarative config: `admin-api apply -f axongate.yaml`, `POST /api/v1/apply`, and
//! `admin-api export` / `GET /api/v1/export`. The format is documented in `admin-api/README.md`.
//!
//! Applying compares each declared entity's full state with the view and publishes only the
//! events needed to reach the declared state, so applying the same file twice publishes nothing
//! the second time. With the CLI, secrets come from environment variables named in the file
//! (`secret_env`); over HTTP only from the request body (`secret`), since admin-api's own
//! environment holds the master keys and the token pepper and is no caller's to read. Secrets
//! are compared by decrypting (keys) or hashing (tokens), never written to the file.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kit::progress::Progress;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::Actor;
use shared::audit::{AuditEvent, TokenRevealed};
use shared::config::{
    ConfigEntity, ConfigEvent, Deleted, Model, Provider, ProviderKey, Team, UserToken,
};
use shared::secret::SecretString;
use shared::token::PlainToken;

use crate::auth::Caller;
use crate::authz::{Resource, require};
use crate::db::{self, Stored};
use crate::error::ApiError;
use crate::permission::{Action, Kind};
use crate::resources::models::{self, ModelInput};
use crate::resources::provider_keys::{self, KeyInput};
use crate::resources::providers::{self, ProviderInput};
use crate::resources::teams::{self, TeamInput};
use crate::resources::tokens::{self, TokenInput};
use crate::state::AppState;

/// The declarative document.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(default)]
    pub providers: Vec<ProviderInput>,
    /// Like a key's API input, with `secret_env` (the variable holding the secret) instead of
    /// `secret`.
    #[serde(default)]
    pub provider_keys: Vec<Value>,
    #[serde(default)]
    pub models: Vec<ModelInput>,
    /// Teams, with their members (by `user_id` or `username`; the users must exist), budget,
    /// allowed models and limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<TeamInput>,
    /// Like a token's API input, with an optional `secret_env` (a variable holding the token,
    /// `axg-…`); without it a new token gets a generated secret, shown once in the result.
    #[serde(default)]
    pub tokens: Vec<Value>,
    /// The limits by dimension (the `rate_limits` setting); absent: left as they are (or, with
    /// `prune`, removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<shared::config::RateLimits>,
    /// Also delete providers, keys, models, teams and tokens the document does not declare.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
}

/// What one apply did.
#[derive(Debug, Default, Serialize)]
pub struct ApplyReport {
    pub changes: Vec<Value>,
    /// Secrets of tokens created without `secret_env`: shown here once.
    pub revealed_tokens: Vec<Value>,
}

/// Parses a YAML (or JSON) document.
///
/// # Errors
/// 400 naming the place of the error.
pub fn parse_document(text: &str) -> Result<Document, ApiError> {
    serde_yaml::from_str(text).map_err(|error| ApiError::BadRequest {
        code: "invalid_document",
        message: format!("the document is not valid: {error}"),
        field: None,
    })
}

fn take_string(value: &mut Value, field: &str) -> Option<String> {
    value
        .as_object_mut()
        .and_then(|object| object.remove(field))
        .and_then(|value| value.as_str().map(str::to_owned))
}

fn required_id(entity: &str, id: Option<&String>) -> Result<String, ApiError> {
    match id {
        Some(id) if shared::ids::is_valid_entity_id(id) => Ok(id.clone()),
        _ => Err(ApiError::invalid(
            format!("{entity}.id"),
            format!("every declared {entity} needs a valid id"),
        )),
    }
}

/// Where an applied document's secrets may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretSource {
    /// `admin-api apply -f`: the operator's own shell, so `secret_env` names a variable there.
    Environment,
    /// `POST /api/v1/apply`: only `secret` in the body; `secret_env` is refused whatever it
    /// names, with the same answer whether or not such a variable exists.
    RequestBody,
}

/// The secret of a declared entry: `secret` inline (both sources) or `secret_env` (CLI only).
fn declared_secret(
    value: &mut Value,
    field_prefix: &str,
    source: SecretSource,
) -> Result<Option<String>, ApiError> {
    let inline = take_string(value, "secret");
    let variable = take_string(value, "secret_env");
    match (inline, variable, source) {
        (Some(_), Some(_), _) => Err(ApiError::invalid(
            format!("{field_prefix}.secret"),
            "give either secret or secret_env, not both",
        )),
        (Some(secret), None, _) => Ok(Some(secret)),
        (None, Some(_), SecretSource::RequestBody) => Err(ApiError::invalid(
            format!("{field_prefix}.secret_env"),
            "secret_env is read only by the CLI (admin-api apply -f); over HTTP, put the secret in the document as secret",
        )),
        (None, Some(variable), SecretSource::Environment) => {
            env_secret(&format!("{field_prefix}.secret_env"), &variable).map(Some)
        }
        (None, None, _) => Ok(None),
    }
}

fn env_secret(field: &str, variable: &str) -> Result<String, ApiError> {
    std::env::var(variable)
        .ok()
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("the environment variable {variable} is not set"),
            )
        })
}

struct Applier<'a> {
    state: &'a AppState,
    actor: &'a Actor,
    report: ApplyReport,
}

impl Applier<'_> {
    /// Publishes `event` unless the view already holds exactly `desired`.
    async fn converge<T: PartialEq + serde::de::DeserializeOwned>(
        &mut self,
        entity: ConfigEntity,
        id: &str,
        current: Option<&Stored>,
        desired: &T,
        event: ConfigEvent,
    ) -> Result<(), ApiError> {
        let current_state =
            current.and_then(|stored| serde_json::from_value::<T>(stored.data.clone()).ok());
        if current_state.as_ref() == Some(desired) {
            return Ok(());
        }
        let expected = match current {
            Some(stored) => stored.version,
            None => {
                self.state
                    .bus
                    .current_version(&shared::streams::config_subject(entity, id))
                    .await?
            }
        };
        crate::resources::commit(self.state, event, self.actor, expected).await?;
        let action = if current.is_some() {
            "updated"
        } else {
            "created"
        };
        self.report
            .changes
            .push(json!({"entity": entity.as_str(), "id": id, "action": action}));
        Ok(())
    }

    async fn prune(&mut self, entity: ConfigEntity, keep: &[String]) -> Result<(), ApiError> {
        for stored in db::all(&self.state.pool, entity.as_str()).await? {
            if keep.contains(&stored.id) {
                continue;
            }
            let deleted = Deleted {
                id: stored.id.clone(),
            };
            let event = match entity {
                ConfigEntity::Provider => ConfigEvent::ProviderDeleted(deleted),
                ConfigEntity::ProviderKey => ConfigEvent::ProviderKeyDeleted(deleted),
                ConfigEntity::Model => ConfigEvent::ModelDeleted(deleted),
                ConfigEntity::Token => ConfigEvent::TokenDeleted(deleted),
                ConfigEntity::Team => ConfigEvent::TeamDeleted(deleted),
                _ => continue,
            };
            crate::resources::commit(self.state, event, self.actor, stored.version).await?;
            self.report
                .changes
                .push(json!({"entity": entity.as_str(), "id": stored.id, "action": "deleted"}));
        }
        Ok(())
    }
}

/// Brings the config to the document's state with as few events as needed. From the CLI
/// (`SecretSource::Environment`, the one caller with an operator's terminal), the entries
/// done of those declared are drawn on stderr when it is a terminal, with a summary line at
/// the end; piped, and over HTTP, nothing is printed.
///
/// # Errors
/// 400 on an invalid entry (nothing after it is applied; what came before stays applied).
pub async fn apply(
    state: &AppState,
    actor: &Actor,
    document: Document,
    secrets: SecretSource,
) -> Result<ApplyReport, ApiError> {
    let mut applier = Applier {
        state,
        actor,
        report: ApplyReport::default(),
    };
    let pool = &state.pool;
    let declared = [
        document.providers.len(),
        document.provider_keys.len(),
        document.models.len(),
        document.teams.len(),
        document.tokens.len(),
    ]
    .iter()
    .sum::<usize>() as u64;
    let mut progress = match secrets {
        SecretSource::Environment => Progress::on_stderr("admin-api apply:", "entries", declared),
        SecretSource::RequestBody => Progress::hidden("admin-api apply:", "entries", declared),
    };

    let mut provider_ids = Vec::new();
    for input in document.providers {
        let id = required_id("provider", input.id.as_ref())?;
        let desired = providers::build(input, id.clone())?;
        let current = db::get(pool, "provider", &id).await?;
        applier
            .converge::<Provider>(
                ConfigEntity::Provider,
                &id,
                current.as_ref(),
                &desired,
                ConfigEvent::ProviderPut(desired.clone()),
            )
            .await?;
        provider_ids.push(id);
        progress.add(1);
    }

    let mut key_ids = Vec::new();
    for mut value in document.provider_keys {
        let secret = declared_secret(&mut value, "provider_keys", secrets)?;
        let mut input: KeyInput = crate::extract::parse(value)?;
        let id = required_id("provider_key", input.id.as_ref())?;
        let current = db::get(pool, "provider_key", &id).await?;
        let existing: Option<ProviderKey> = current
            .as_ref()
            .and_then(|stored| serde_json::from_value(stored.data.clone()).ok());
        let Some(secret) = secret.or_else(|| {
            // A key already stored may be declared without its secret: it keeps the one it has.
            existing.as_ref().and_then(|key| {
                state
                    .master_keys
                    .decrypt(&key.secret, key.binding())
                    .ok()
                    .map(|secret| secret.expose().to_owned())
            })
        }) else {
            return Err(ApiError::invalid(
                "provider_keys.secret",
                "every new declared key needs its secret (secret, or secret_env with the CLI)",
            ));
        };
        // Keep the stored ciphertext when it already holds this secret, so nothing changes.
        let unchanged_secret = existing.as_ref().is_some_and(|key| {
            state
                .master_keys
                .decrypt(&key.secret, key.binding())
                .is_ok_and(|stored| stored == SecretString::new(secret.clone()))
        });
        input.secret = if unchanged_secret { None } else { Some(secret) };
        let desired =
            provider_keys::build(state, input, id.clone(), existing.as_ref(), true).await?;
        applier
            .converge::<ProviderKey>(
                ConfigEntity::ProviderKey,
                &id,
                current.as_ref(),
                &desired,
                ConfigEvent::ProviderKeyPut(desired.clone()),
            )
            .await?;
        key_ids.push(id);
        progress.add(1);
    }

    let mut model_ids = Vec::new();
    for input in document.models {
        let id = required_id("model", input.id.as_ref())?;
        let current = db::get(pool, "model", &id).await?;
        let existing: Option<Model> = current
            .as_ref()
            .and_then(|stored| serde_json::from_value(stored.data.clone()).ok());
        let desired = models::build(state, input, id.clone(), existing.as_ref()).await?;
        applier
            .converge::<Model>(
                ConfigEntity::Model,
                &id,
                current.as_ref(),
                &desired,
                ConfigEvent::ModelPut(desired.clone()),
            )
            .await?;
        model_ids.push(id);
        progress.add(1);
    }

    let mut team_ids = Vec::new();
    for input in document.teams {
        let id = required_id("team", input.id.as_ref())?;
        let current = db::get(pool, "team", &id).await?;
        let desired = teams::build(state, input, id.clone()).await?;
        applier
            .converge::<Team>(
                ConfigEntity::Team,
                &id,
                current.as_ref(),
                &desired,
                ConfigEvent::TeamPut(desired.clone()),
            )
            .await?;
        team_ids.push(id);
        progress.add(1);
    }

    let mut token_ids = Vec::new();
    for mut value in document.tokens {
        let presented = declared_secret(&mut value, "tokens", secrets)?;
        let input: TokenInput = crate::extract::parse(value)?;
        let id = required_id("token", input.id.as_ref())?;
        let owner = input.owner_user_id.clone().ok_or_else(|| {
            ApiError::invalid(
                "tokens.owner_user_id",
                "every declared token names its owner_user_id",
            )
        })?;
        let current = db::get(pool, "token", &id).await?;
        let existing: Option<UserToken> = current
            .as_ref()
            .and_then(|stored| serde_json::from_value(stored.data.clone()).ok());
        let mut generated = None;
        let (hash, last_four) = match (&presented, &existing) {
            (Some(presented), _) => {
                let token = PlainToken::from_presented(presented);
                if !token.looks_valid() {
                    return Err(ApiError::invalid(
                        "tokens.secret",
                        "a declared token secret must be an axg- token",
                    ));
                }
                (state.token_hasher.hash(&token), token.last_four())
            }
            (None, Some(existing)) => (existing.hash.clone(), existing.last_four.clone()),
            (None, None) => {
                let token = PlainToken::generate();
                let pair = (state.token_hasher.hash(&token), token.last_four());
                generated = Some(token);
                pair
            }
        };
        let desired = tokens::build(state, input, id.clone(), owner, hash, last_four).await?;
        applier
            .converge::<UserToken>(
                ConfigEntity::Token,
                &id,
                current.as_ref(),
                &desired,
                ConfigEvent::TokenPut(desired.clone()),
            )
            .await?;
        if let Some(token) = generated {
            let event = AuditEvent::TokenRevealed(TokenRevealed {
                token_id: id.clone(),
                moment: "created".into(),
            });
            state
                .bus
                .publish_audit(event, Some(actor), &state.node_id)
                .await?;
            applier
                .report
                .revealed_tokens
                .push(json!({"id": id, "secret": token.expose()}));
        }
        token_ids.push(id);
        progress.add(1);
    }

    let limits_key = shared::config::RATE_LIMITS_SETTING;
    let current = db::get(pool, "setting", limits_key).await?;
    if let Some(limits) = &document.rate_limits {
        let value = serde_json::to_value(limits)?;
        crate::resources::settings::check_rate_limits(&value)?;
        let desired = shared::config::Setting {
            key: limits_key.into(),
            value,
        };
        applier
            .converge::<shared::config::Setting>(
                ConfigEntity::Setting,
                limits_key,
                current.as_ref(),
                &desired,
                ConfigEvent::SettingPut(desired.clone()),
            )
            .await?;
    } else if document.prune
        && let Some(stored) = current
    {
        let event = ConfigEvent::SettingDeleted(Deleted {
            id: limits_key.into(),
        });
        crate::resources::commit(state, event, actor, stored.version).await?;
        applier.report.changes.push(
            json!({"entity": ConfigEntity::Setting.as_str(), "id": limits_key, "action": "deleted"}),
        );
    }

    if document.prune {
        // Dependents first, so nothing is left pointing at a deleted provider.
        applier.prune(ConfigEntity::Token, &token_ids).await?;
        applier.prune(ConfigEntity::Team, &team_ids).await?;
        applier.prune(ConfigEntity::Model, &model_ids).await?;
        applier.prune(ConfigEntity::ProviderKey, &key_ids).await?;
        applier.prune(ConfigEntity::Provider, &provider_ids).await?;
    }
    if progress.is_drawn() {
        eprintln!("admin-api apply: {}", progress.finish());
    }
    Ok(applier.report)
}

/// The current config as a document, without secrets: keys get a `secret_env` placeholder
/// named after their id.
///
/// # Errors
/// On a database error.
pub async fn export(pool: &deadpool_postgres::Pool) -> Result<Document, ApiError> {
    let mut document = Document::default();
    for stored in db::all(pool, "provider").await? {
        let provider: Provider = serde_json::from_value(stored.data)?;
        document.providers.push(ProviderInput {
            id: Some(provider.id),
            name: provider.name,
            protocol: provider.protocol,
            base_url: provider.base_url,
            extra_headers: provider.extra_headers,
            timeouts: provider.timeouts,
            enabled: provider.enabled,
            allow_private_network: provider.allow_private_network,
            key_secrets: BTreeMap::new(),
        });
    }
    for stored in db::all(pool, "provider_key").await? {
        let key: ProviderKey = serde_json::from_value(stored.data)?;
        let variable = format!(
            "AXONGATE_KEY_{}",
            key.id.to_ascii_uppercase().replace('-', "_")
        );
        document.provider_keys.push(json!({
            "id": key.id, "provider_id": key.provider_id, "name": key.name,
            "secret_env": variable, "enabled": key.enabled,
        }));
    }
    for stored in db::all(pool, "model").await? {
        let model: Model = serde_json::from_value(stored.data)?;
        document.models.push(models::model_input(&model));
    }
    for stored in db::all(pool, "team").await? {
        let team: Team = serde_json::from_value(stored.data)?;
        document.teams.push(teams::team_input(&team));
    }
    for stored in db::all(pool, "token").await? {
        let token: UserToken = serde_json::from_value(stored.data)?;
        document
            .tokens
            .push(serde_json::to_value(tokens::token_input(&token))?);
    }
    if let Some(stored) = db::get(pool, "setting", shared::config::RATE_LIMITS_SETTING).await? {
        let setting: shared::config::Setting = serde_json::from_value(stored.data)?;
        document.rate_limits = serde_json::from_value(setting.value).ok();
    }
    Ok(document)
}

/// The document as YAML.
///
/// # Errors
/// Only if serialization fails (it should not).
pub fn to_yaml(document: &Document) -> Result<String, ApiError> {
    serde_yaml::to_string(document).map_err(ApiError::internal)
}

/// `POST /api/v1/apply`: the body is the YAML (or JSON) document.
pub async fn apply_http(
    State(state): State<AppState>,
    caller: Caller,
    crate::extract::RawBody(body): crate::extract::RawBody,
) -> Result<Json<Value>, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Apply,
        &Resource::kind(Kind::Config),
    )?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::invalid("body", "the document must be UTF-8"))?;
    let document = if text.trim().is_empty() {
        Document::default()
    } else {
        parse_document(text)?
    };
    let report = apply(&state, &caller.actor(), document, SecretSource::RequestBody).await?;
    Ok(Json(serde_json::to_value(report)?))
}

/// `GET /api/v1/export` (`?format=json` for JSON; YAML by default).
pub async fn export_http(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Read,
        &Resource::kind(Kind::Config),
    )?;
    let document = export(&state.pool).await?;
    if params.get("format").map(String::as_str) == Some("json") {
        return Ok(Json(serde_json::to_value(&document)?).into_response());
    }
    Ok((
        [(header::CONTENT_TYPE, "application/yaml")],
        to_yaml(&document)?,
    )
        .into_response())
}
