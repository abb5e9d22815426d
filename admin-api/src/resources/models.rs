//! `/api/v1/models`: public model aliases, their routes and prices. Prices are given and shown
//! as decimal strings per million tokens (`"2.5"`), stored as integer nano-units.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::config::{
    ConfigEntity, ConfigEvent, Deleted, Model, ProviderKey, ResponseCache, RetryPolicy, Route,
    Routing, RoutingStrategy,
};
use shared::money::{Nanos, Price};

use super::crud::{self, ConfigResource, Ctx, Declare, ReadResource, Resource};
use super::{render, validate};
use crate::db::{self, Stored};
use crate::error::ApiError;
use crate::permission::Kind;
use crate::routes::Api;
use crate::state::AppState;

const ENTITY: &str = "model";

#[derive(Debug, Clone, Deserialize, Serialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct PriceInput {
    pub currency: String,
    #[ts(type = "string | number")]
    pub input_per_million: Value,
    #[ts(type = "string | number")]
    pub output_per_million: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(type = "string | number")]
    pub cache_read_per_million: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(type = "string | number")]
    pub cache_write_per_million: Option<Value>,
    /// Shown in responses; ignored in input (the API counts price versions itself).
    #[serde(default, skip_serializing)]
    pub version: Option<u32>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
#[ts(optional_fields)]
pub struct ModelInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub alias: String,
    #[serde(default = "super::providers::enabled_by_default")]
    #[ts(as = "Option<bool>", optional)]
    pub enabled: bool,
    #[serde(default)]
    #[ts(as = "Option<Vec<Route>>", optional)]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<PriceInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_cache: Option<ResponseCache>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
}

/// A stored price as input (decimal strings).
#[must_use]
pub fn price_input(price: &Price) -> PriceInput {
    PriceInput {
        currency: price.currency.clone(),
        input_per_million: json!(price.input_per_million.to_decimal()),
        output_per_million: json!(price.output_per_million.to_decimal()),
        cache_read_per_million: Some(json!(price.cache_read_per_million.to_decimal())),
        cache_write_per_million: Some(json!(price.cache_write_per_million.to_decimal())),
        version: Some(price.version),
    }
}

/// A stored model as input.
#[must_use]
pub fn model_input(model: &Model) -> ModelInput {
    ModelInput {
        id: Some(model.id.clone()),
        alias: model.alias.clone(),
        enabled: model.enabled,
        routes: model.routes.clone(),
        price: model.price.as_ref().map(price_input),
        context_window: model.context_window,
        retry: model.retry.clone(),
        response_cache: model.response_cache.clone(),
        routing: model.routing.clone(),
    }
}

fn parse_price(input: &PriceInput, previous: Option<&Price>) -> Result<Price, ApiError> {
    validate::currency("price.currency", &input.currency)?;
    let optional = |field: &str, value: &Option<Value>| match value {
        Some(value) => validate::money(field, value),
        None => Ok(Nanos(0)),
    };
    let mut price = Price {
        currency: input.currency.clone(),
        input_per_million: validate::money("price.input_per_million", &input.input_per_million)?,
        output_per_million: validate::money("price.output_per_million", &input.output_per_million)?,
        cache_read_per_million: optional(
            "price.cache_read_per_million",
            &input.cache_read_per_million,
        )?,
        cache_write_per_million: optional(
            "price.cache_write_per_million",
            &input.cache_write_per_million,
        )?,
        version: 1,
    };
    // A price version identifies the price a request was billed at: it moves only when the
    // price itself changes.
    if let Some(previous) = previous {
        price.version = previous.version;
        if (Price {
            version: previous.version,
            ..price.clone()
        }) != *previous
        {
            price.version = previous.version.saturating_add(1);
        }
    }
    Ok(price)
}

/// Validates an input into the model's full state.
///
/// # Errors
/// 400 naming the first invalid field; 409 when the alias is taken.
pub async fn build(
    state: &AppState,
    input: ModelInput,
    id: String,
    existing: Option<&Model>,
) -> Result<Model, ApiError> {
    validate::alias("alias", &input.alias)?;
    if let Some(other) = db::find_by_field(&state.pool, ENTITY, "alias", &input.alias).await?
        && other.id != id
    {
        return Err(ApiError::Conflict {
            code: "alias_taken",
            message: format!("model {} already has the alias {:?}", other.id, input.alias),
            field: Some("alias".into()),
            current_version: None,
        });
    }
    for (index, route) in input.routes.iter().enumerate() {
        let field = |name: &str| format!("routes[{index}].{name}");
        validate::id(&field("provider_id"), &route.provider_id)?;
        if db::get(
            &state.pool,
            ConfigEntity::Provider.as_str(),
            &route.provider_id,
        )
        .await?
        .is_none()
        {
            return Err(ApiError::invalid(
                field("provider_id"),
                "no provider has this id",
            ));
        }
        if route.upstream_model.trim().is_empty() || route.upstream_model.len() > 200 {
            return Err(ApiError::invalid(
                field("upstream_model"),
                "upstream_model must have 1 to 200 characters",
            ));
        }
        if route.weight > 1_000_000 {
            return Err(ApiError::invalid(
                field("weight"),
                "weight must be 0 to 1000000",
            ));
        }
        if route.priority > 1_000 {
            return Err(ApiError::invalid(
                field("priority"),
                "priority must be 0 to 1000",
            ));
        }
        for key_id in &route.key_ids {
            let key = db::get(&state.pool, ConfigEntity::ProviderKey.as_str(), key_id).await?;
            let belongs = key
                .and_then(|key| serde_json::from_value::<ProviderKey>(key.data).ok())
                .is_some_and(|key| key.provider_id == route.provider_id);
            if !belongs {
                return Err(ApiError::invalid(
                    field("key_ids"),
                    format!("{key_id:?} is not a key of the route's provider"),
                ));
            }
        }
    }
    if input.context_window == Some(0) {
        return Err(ApiError::invalid(
            "context_window",
            "context_window must be positive",
        ));
    }
    if let Some(retry) = &input.retry {
        validate_retry(retry)?;
    }
    if let Some(cache) = &input.response_cache
        && !(1..=MAX_CACHE_TTL_SECS).contains(&cache.ttl_secs)
    {
        return Err(ApiError::invalid(
            "response_cache.ttl_secs",
            format!("ttl_secs is 1 to {MAX_CACHE_TTL_SECS} seconds (30 days)"),
        ));
    }
    if let Some(routing) = &input.routing {
        validate_routing(routing)?;
    }
    let price = match &input.price {
        Some(price) => Some(parse_price(
            price,
            existing.and_then(|model| model.price.as_ref()),
        )?),
        None => None,
    };
    Ok(Model {
        id,
        alias: input.alias,
        enabled: input.enabled,
        routes: input.routes,
        price,
        context_window: input.context_window,
        retry: input.retry.filter(|retry| *retry != RetryPolicy::default()),
        response_cache: input.response_cache,
        // The default strategy needs no record.
        routing: input
            .routing
            .filter(|routing| *routing != Routing::default()),
    })
}

/// A session header is a lowercase-able HTTP header name a client can send, only for cache
/// affinity, and not one of the headers the gateway reads itself.
fn validate_routing(routing: &Routing) -> Result<(), ApiError> {
    let Some(header) = &routing.session_header else {
        return Ok(());
    };
    if routing.strategy != RoutingStrategy::CacheAffinity {
        return Err(ApiError::invalid(
            "routing.session_header",
            "a session header is only read by the cache_affinity strategy",
        ));
    }
    let valid = !header.is_empty()
        && header.len() <= 64
        && axum::http::HeaderName::from_bytes(header.as_bytes()).is_ok();
    if !valid {
        return Err(ApiError::invalid(
            "routing.session_header",
            "session_header must be an HTTP header name of at most 64 characters",
        ));
    }
    let lower = header.to_ascii_lowercase();
    if [
        "authorization",
        "x-api-key",
        "x-goog-api-key",
        "cookie",
        "proxy-authorization",
    ]
    .contains(&lower.as_str())
    {
        return Err(ApiError::invalid(
            "routing.session_header",
            "a credential header cannot name the session",
        ));
    }
    Ok(())
}

/// The longest a model may keep cached answers (ingress also caps it by its own setting).
const MAX_CACHE_TTL_SECS: u32 = 30 * 24 * 3600;

/// The bounds of a retry policy: a few attempts, real HTTP error statuses, a cooldown under
/// an hour.
fn validate_retry(retry: &RetryPolicy) -> Result<(), ApiError> {
    if let Some(attempts) = retry.max_attempts
        && !(1..=10).contains(&attempts)
    {
        return Err(ApiError::invalid(
            "retry.max_attempts",
            "max_attempts must be 1 to 10",
        ));
    }
    if let Some(statuses) = &retry.retry_on {
        if statuses.len() > 50 {
            return Err(ApiError::invalid(
                "retry.retry_on",
                "retry_on lists at most 50 statuses",
            ));
        }
        if let Some(status) = statuses
            .iter()
            .find(|status| !(400..=599).contains(*status))
        {
            return Err(ApiError::invalid(
                "retry.retry_on",
                format!("{status} is not an HTTP error status (400 to 599)"),
            ));
        }
    }
    if let Some(failures) = retry.breaker_failures
        && !(1..=1_000).contains(&failures)
    {
        return Err(ApiError::invalid(
            "retry.breaker_failures",
            "breaker_failures must be 1 to 1000",
        ));
    }
    if let Some(cooldown) = retry.breaker_cooldown_secs
        && cooldown > 3_600
    {
        return Err(ApiError::invalid(
            "retry.breaker_cooldown_secs",
            "breaker_cooldown_secs must be 0 to 3600",
        ));
    }
    Ok(())
}

/// A model as the API shows it: prices as decimal strings.
#[must_use]
pub fn render_model(stored: &Stored) -> Value {
    let mut value = render(stored);
    if let Ok(model) = serde_json::from_value::<Model>(stored.data.clone())
        && let Some(price) = &model.price
    {
        let mut price_json = serde_json::to_value(price_input(price)).unwrap_or(Value::Null);
        price_json["version"] = json!(price.version);
        value["price"] = price_json;
    }
    value
}

/// Models, declared.
pub struct Models;

impl ReadResource for Models {
    const RESOURCE: Resource = Resource {
        kind: Kind::Model,
        entity: ConfigEntity::Model,
        path: "/api/v1/models",
        tag: "models",
        filters: &["alias", "enabled"],
        owner_field: None,
        team_field: None,
        secret_fields: &[],
        operator_only: &[],
        example,
    };

    async fn render(_state: &AppState, rows: &[Stored]) -> Result<Vec<Value>, ApiError> {
        Ok(rows.iter().map(render_model).collect())
    }
}

impl ConfigResource for Models {
    type Input = ModelInput;
    type Entity = Model;

    fn requested_id(input: &ModelInput) -> Option<String> {
        input.id.clone()
    }

    fn as_input(current: &Model) -> Result<Value, ApiError> {
        Ok(serde_json::to_value(model_input(current))?)
    }

    async fn build(
        ctx: &Ctx<'_>,
        input: ModelInput,
        id: String,
        current: Option<Model>,
    ) -> Result<Model, ApiError> {
        build(ctx.state, input, id, current.as_ref()).await
    }

    fn put(entity: Model) -> ConfigEvent {
        ConfigEvent::ModelPut(entity)
    }

    fn deleted(id: String) -> ConfigEvent {
        ConfigEvent::ModelDeleted(Deleted { id })
    }
}

fn example() -> Value {
    serde_json::to_value(ModelInput {
        id: Some("gpt-4-1".into()),
        alias: "gpt-4.1".into(),
        enabled: true,
        routes: vec![Route {
            provider_id: "openai".into(),
            upstream_model: "gpt-4.1-2025-04-14".into(),
            key_ids: vec![],
            priority: 0,
            weight: 1,
            capabilities: shared::config::Capabilities::default(),
        }],
        price: Some(PriceInput {
            currency: "USD".into(),
            input_per_million: json!("2"),
            output_per_million: json!("8"),
            cache_read_per_million: Some(json!("0.5")),
            cache_write_per_million: None,
            version: None,
        }),
        context_window: Some(1_047_576),
        retry: Some(RetryPolicy {
            max_attempts: Some(3),
            breaker_cooldown_secs: Some(10),
            ..RetryPolicy::default()
        }),
        response_cache: Some(ResponseCache {
            ttl_secs: 3600,
            ..ResponseCache::default()
        }),
        routing: Some(Routing {
            strategy: RoutingStrategy::CacheAffinity,
            session_header: Some("x-session-id".into()),
        }),
    })
    .unwrap_or_default()
}

/// The endpoints of models.
pub fn declare(api: Api) -> Api {
    Declare::new(api, &Models::RESOURCE)
        .list(
            "List models (filters: alias, enabled, q)",
            crud::list::<Models>,
        )
        .create(
            "Create a model with routes and prices",
            crud::create::<Models>,
        )
        .get("Get a model", crud::get::<Models>)
        .update("Update a model", crud::update::<Models>)
        .delete("Delete a model", crud::delete::<Models>)
        .done()
}
