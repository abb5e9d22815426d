//! The HTTP surface: one table of endpoints (method, path, permission, summary) that the router
//! follows, the OpenAPI document is generated from, and the RBAC test walks.

use axum::Router;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use crate::resources::{models, provider_keys, providers, settings, tokens, users};
use crate::state::AppState;
use crate::{apply, audit, auth};

/// One endpoint of the admin API.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// The permission it checks, `(action, resource kind)`; `None` for the public ones.
    pub permission: Option<(&'static str, &'static str)>,
    /// Whether it takes a JSON body.
    pub body: bool,
}

const fn endpoint(
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    permission: Option<(&'static str, &'static str)>,
    body: bool,
) -> Endpoint {
    Endpoint {
        method,
        path,
        tag,
        summary,
        permission,
        body,
    }
}

const fn read(kind: &'static str) -> Option<(&'static str, &'static str)> {
    Some(("read", kind))
}

/// Every endpoint under `/api/v1`.
pub const ENDPOINTS: &[Endpoint] = &[
    endpoint(
        "POST",
        "/api/v1/auth/login",
        "auth",
        "Sign in with username and password; returns a session token",
        None,
        true,
    ),
    endpoint(
        "POST",
        "/api/v1/auth/logout",
        "auth",
        "Revoke the current session",
        Some(("delete", "session")),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/auth/me",
        "auth",
        "The signed-in user",
        read("session"),
        false,
    ),
    endpoint(
        "POST",
        "/api/v1/auth/password",
        "auth",
        "Change the own password (clears must_change_password)",
        Some(("update", "session")),
        true,
    ),
    endpoint(
        "GET",
        "/api/v1/providers",
        "providers",
        "List providers (filters: protocol, enabled, q)",
        read("provider"),
        false,
    ),
    endpoint(
        "POST",
        "/api/v1/providers",
        "providers",
        "Create a provider",
        Some(("create", "provider")),
        true,
    ),
    endpoint(
        "GET",
        "/api/v1/providers/{id}",
        "providers",
        "Get a provider",
        read("provider"),
        false,
    ),
    endpoint(
        "PATCH",
        "/api/v1/providers/{id}",
        "providers",
        "Update a provider (body names the version read)",
        Some(("update", "provider")),
        true,
    ),
    endpoint(
        "DELETE",
        "/api/v1/providers/{id}",
        "providers",
        "Delete a provider (?version=)",
        Some(("delete", "provider")),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/provider-keys",
        "provider-keys",
        "List provider keys, masked, with health (filters: provider_id, enabled)",
        read("provider_key"),
        false,
    ),
    endpoint(
        "POST",
        "/api/v1/provider-keys",
        "provider-keys",
        "Create a provider key (the secret is encrypted, never returned)",
        Some(("create", "provider_key")),
        true,
    ),
    endpoint(
        "GET",
        "/api/v1/provider-keys/{id}",
        "provider-keys",
        "Get a provider key, masked, with health",
        read("provider_key"),
        false,
    ),
    endpoint(
        "PATCH",
        "/api/v1/provider-keys/{id}",
        "provider-keys",
        "Update a provider key (optionally a new secret)",
        Some(("update", "provider_key")),
        true,
    ),
    endpoint(
        "DELETE",
        "/api/v1/provider-keys/{id}",
        "provider-keys",
        "Delete a provider key",
        Some(("delete", "provider_key")),
        false,
    ),
    endpoint(
        "POST",
        "/api/v1/provider-keys/{id}/test",
        "provider-keys",
        "Make a minimal real call upstream with the key and record its health",
        Some(("test", "provider_key")),
        true,
    ),
    endpoint(
        "GET",
        "/api/v1/models",
        "models",
        "List models (filters: alias, enabled, q)",
        read("model"),
        false,
    ),
    endpoint(
        "POST",
        "/api/v1/models",
        "models",
        "Create a model with routes and prices",
        Some(("create", "model")),
        true,
    ),
    endpoint(
        "GET",
        "/api/v1/models/{id}",
        "models",
        "Get a model",
        read("model"),
        false,
    ),
    endpoint(
        "PATCH",
        "/api/v1/models/{id}",
        "models",
        "Update a model",
        Some(("update", "model")),
        true,
    ),
    endpoint(
        "DELETE",
        "/api/v1/models/{id}",
        "models",
        "Delete a model",
        Some(("delete", "model")),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/tokens",
        "tokens",
        "List user tokens (members: their own)",
        read("token"),
        false,
    ),
    endpoint(
        "POST",
        "/api/v1/tokens",
        "tokens",
        "Create a user token; the secret is in this response only",
        Some(("create", "token")),
        true,
    ),
    endpoint(
        "GET",
        "/api/v1/tokens/{id}",
        "tokens",
        "Get a user token (never its secret)",
        read("token"),
        false,
    ),
    endpoint(
        "PATCH",
        "/api/v1/tokens/{id}",
        "tokens",
        "Update a user token",
        Some(("update", "token")),
        true,
    ),
    endpoint(
        "DELETE",
        "/api/v1/tokens/{id}",
        "tokens",
        "Delete a user token",
        Some(("delete", "token")),
        false,
    ),
    endpoint(
        "POST",
        "/api/v1/tokens/{id}/rotate",
        "tokens",
        "Replace the token's secret; the new one is in this response only",
        Some(("rotate", "token")),
        true,
    ),
    endpoint(
        "GET",
        "/api/v1/users",
        "users",
        "List users with their roles",
        read("user"),
        false,
    ),
    endpoint(
        "POST",
        "/api/v1/users",
        "users",
        "Create a user (must change the password at first login)",
        Some(("create", "user")),
        true,
    ),
    endpoint(
        "GET",
        "/api/v1/users/{id}",
        "users",
        "Get a user",
        read("user"),
        false,
    ),
    endpoint(
        "PATCH",
        "/api/v1/users/{id}",
        "users",
        "Update a user, its role, or reset its password",
        Some(("update", "user")),
        true,
    ),
    endpoint(
        "DELETE",
        "/api/v1/users/{id}",
        "users",
        "Delete a user and its role binding",
        Some(("delete", "user")),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/role-bindings",
        "users",
        "Every user's role",
        read("user"),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/settings",
        "settings",
        "List settings",
        read("setting"),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/settings/{id}",
        "settings",
        "Get a setting",
        read("setting"),
        false,
    ),
    endpoint(
        "PUT",
        "/api/v1/settings/{id}",
        "settings",
        "Create (no version) or update (with version) a setting",
        Some(("update", "setting")),
        true,
    ),
    endpoint(
        "DELETE",
        "/api/v1/settings/{id}",
        "settings",
        "Delete a setting",
        Some(("delete", "setting")),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/analytics/summary",
        "analytics",
        "Totals over a time range (members: their own)",
        read("usage"),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/analytics/timeseries",
        "analytics",
        "Requests, tokens, cost and latency per time bucket",
        read("usage"),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/analytics/breakdown",
        "analytics",
        "Totals per model, provider, key, token or user",
        read("usage"),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/analytics/requests",
        "analytics",
        "The request log, filtered and paginated",
        read("usage"),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/analytics/requests.csv",
        "analytics",
        "The request log as streamed CSV",
        read("usage"),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/dashboard",
        "analytics",
        "The dashboard's figures in one call",
        read("usage"),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/audit",
        "audit",
        "The audit log (filters: entity, entity_id, actor, type, from, to)",
        read("audit"),
        false,
    ),
    endpoint(
        "POST",
        "/api/v1/apply",
        "config",
        "Apply a declarative config document (YAML or JSON)",
        Some(("apply", "config")),
        true,
    ),
    endpoint(
        "GET",
        "/api/v1/export",
        "config",
        "Export the current config as a declarative document (no secrets)",
        read("config"),
        false,
    ),
    endpoint(
        "GET",
        "/api/v1/openapi.json",
        "meta",
        "This document",
        None,
        false,
    ),
];

/// The router for every endpoint in [`ENDPOINTS`].
pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/me", get(auth::me))
        .route("/api/v1/auth/password", post(auth::change_password))
        .route(
            "/api/v1/providers",
            get(providers::list).post(providers::create),
        )
        .route(
            "/api/v1/providers/{id}",
            get(providers::get)
                .patch(providers::update)
                .delete(providers::delete),
        )
        .route(
            "/api/v1/provider-keys",
            get(provider_keys::list).post(provider_keys::create),
        )
        .route(
            "/api/v1/provider-keys/{id}",
            get(provider_keys::get)
                .patch(provider_keys::update)
                .delete(provider_keys::delete),
        )
        .route("/api/v1/provider-keys/{id}/test", post(provider_keys::test))
        .route("/api/v1/models", get(models::list).post(models::create))
        .route(
            "/api/v1/models/{id}",
            get(models::get)
                .patch(models::update)
                .delete(models::delete),
        )
        .route("/api/v1/tokens", get(tokens::list).post(tokens::create))
        .route(
            "/api/v1/tokens/{id}",
            get(tokens::get)
                .patch(tokens::update)
                .delete(tokens::delete),
        )
        .route("/api/v1/tokens/{id}/rotate", post(tokens::rotate))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route(
            "/api/v1/users/{id}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/api/v1/role-bindings", get(users::list_role_bindings))
        .route("/api/v1/settings", get(settings::list))
        .route(
            "/api/v1/settings/{id}",
            get(settings::get)
                .put(settings::put)
                .delete(settings::delete),
        )
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/usage", get(crate::usage::usage))
        .route("/api/v1/analytics/summary", get(crate::analytics::summary))
        .route(
            "/api/v1/analytics/timeseries",
            get(crate::analytics::timeseries),
        )
        .route(
            "/api/v1/analytics/breakdown",
            get(crate::analytics::breakdown),
        )
        .route(
            "/api/v1/analytics/requests",
            get(crate::analytics::requests),
        )
        .route(
            "/api/v1/analytics/requests.csv",
            get(crate::analytics::requests_csv),
        )
        .route("/api/v1/dashboard", get(crate::analytics::dashboard))
        .route("/api/v1/apply", post(apply::apply_http))
        .route("/api/v1/export", get(apply::export_http))
        .route(
            "/api/v1/openapi.json",
            get(|| async { axum::Json(openapi()) }),
        )
        .merge(crate::docs::router())
}

/// The OpenAPI 3.1 document, generated from [`ENDPOINTS`].
#[must_use]
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for endpoint in ENDPOINTS {
        let mut operation = json!({
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "operationId": operation_id(endpoint),
            "responses": responses(endpoint),
        });
        let parameters: Vec<Value> = endpoint
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = json!(parameters);
        }
        if endpoint.body {
            let mut media = json!({"schema": {"type": "object"}});
            if let Some(example) = request_example(endpoint) {
                media["example"] = example;
            }
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": media}});
        }
        match endpoint.permission {
            Some((action, kind)) => {
                operation["security"] = json!([{"session": []}]);
                operation["x-permission"] = json!({"action": action, "resource": kind});
            }
            None => operation["security"] = json!([]),
        }
        let entry = paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[endpoint.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "AxonGate admin API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Config commands become events on AXONGATE_CONFIG; every update names the version it read; responses come after the projector applied the change."},
        "paths": paths,
        "components": {
            "securitySchemes": {"session": {"type": "http", "scheme": "bearer", "description": "The token from POST /api/v1/auth/login"}},
            "schemas": {"Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "field": {"type": ["string", "null"]}, "current_version": {"type": "integer"}}}}
            }}
        }
    })
}

fn operation_id(endpoint: &Endpoint) -> String {
    let path: Vec<&str> = endpoint
        .path
        .trim_start_matches("/api/v1/")
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "by_id"
            } else {
                segment
            }
        })
        .collect();
    format!(
        "{}_{}",
        endpoint.method.to_ascii_lowercase(),
        path.join("_").replace('-', "_")
    )
}

fn responses(endpoint: &Endpoint) -> Value {
    let error = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let success = match endpoint.method {
        "DELETE" => json!({"204": {"description": "deleted"}}),
        "POST"
            if !endpoint.path.contains('{')
                && endpoint.tag != "auth"
                && endpoint.tag != "config" =>
        {
            json!({"201": {"description": "created", "content": {"application/json": {"schema": {"type": "object"}}}}})
        }
        _ => {
            json!({"200": {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}})
        }
    };
    let mut all = success;
    for code in ["400", "401", "403", "404", "409", "503"] {
        all[code] = error.clone();
    }
    all
}

/// An example body, built from the input types themselves where there is one, so the example
/// cannot drift from what the handlers accept.
fn request_example(endpoint: &Endpoint) -> Option<Value> {
    use shared::config::{Protocol, Route, Timeouts};

    use crate::resources::{
        models::ModelInput, models::PriceInput, providers::ProviderInput, tokens::TokenInput,
    };
    if endpoint.method == "PATCH" {
        // An update names the version it read and only the fields it changes.
        return Some(json!({"version": 42, "enabled": false}));
    }
    let example = match endpoint.path.trim_start_matches("/api/v1/") {
        "auth/login" => json!({"username": "admin", "password": "…"}),
        "auth/password" => json!({"current_password": "…", "new_password": "…"}),
        "providers" | "providers/{id}" => serde_json::to_value(ProviderInput {
            id: Some("openai".into()),
            name: "OpenAI".into(),
            protocol: Protocol::OpenAi,
            base_url: "https://api.openai.com/v1".into(),
            extra_headers: Default::default(),
            timeouts: Timeouts::default(),
            enabled: true,
            allow_private_network: false,
        })
        .ok()?,
        "provider-keys" | "provider-keys/{id}" => {
            json!({"id": "openai-main", "provider_id": "openai", "name": "main", "secret": "sk-…", "enabled": true})
        }
        "provider-keys/{id}/test" => json!({"model": "claude-3-5-haiku-latest"}),
        "models" | "models/{id}" => serde_json::to_value(ModelInput {
            id: Some("gpt-4-1".into()),
            alias: "gpt-4.1".into(),
            enabled: true,
            routes: vec![Route {
                provider_id: "openai".into(),
                upstream_model: "gpt-4.1-2025-04-14".into(),
                key_ids: vec![],
                priority: 0,
                weight: 1,
                capabilities: Default::default(),
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
            retry: Some(shared::config::RetryPolicy {
                max_attempts: Some(3),
                breaker_cooldown_secs: Some(10),
                ..Default::default()
            }),
        })
        .ok()?,
        "tokens" | "tokens/{id}" => serde_json::to_value(TokenInput {
            id: None,
            name: "CI pipeline".into(),
            owner_user_id: None,
            allowed_models: vec!["gpt-*".into()],
            rpm: Some(120),
            tpm: None,
            budget: None,
            expires_at: Some("2027-01-01T00:00:00Z".into()),
            enabled: true,
        })
        .ok()?,
        "tokens/{id}/rotate" => json!({"version": 42}),
        "users" | "users/{id}" => {
            json!({"username": "olga", "password": "…", "role": "operator", "display_name": "Olga"})
        }
        "settings/{id}" => json!({"value": {"any": "JSON"}, "version": 42}),
        "apply" => json!({"providers": [], "provider_keys": [], "models": [], "tokens": []}),
        _ => return None,
    };
    Some(example)
}
