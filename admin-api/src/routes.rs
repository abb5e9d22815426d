//! The HTTP surface, declared once. Every endpoint is registered through [`Api`] with its
//! method, path, permission, summary, body example and handler, in one place per resource (its
//! module's `declare`, see [`crate::resources::crud`]) or below for the rest; the router, the
//! OpenAPI document ([`openapi`]) and the RBAC matrix test ([`endpoints`]) all read those same
//! registrations, so none of them can list an endpoint the others lack.

use std::sync::LazyLock;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};
use serde_json::{Map, Value, json};

use crate::permission::{Action, Kind, Permission};
use crate::resources::{models, provider_keys, providers, settings, teams, tokens, users};
use crate::state::AppState;
use crate::{apply, audit, auth};

/// One endpoint of the admin API.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: String,
    pub tag: &'static str,
    pub summary: &'static str,
    /// The permission it checks; `None` for the public ones.
    pub permission: Option<Permission>,
    /// Whether it takes a JSON body.
    pub body: bool,
    /// An example body, built from the input types where there is one, so the example cannot
    /// drift from what the handler accepts.
    pub example: Option<fn() -> Value>,
    /// Whether success is `201 Created`.
    pub creates: bool,
    /// The config resource it serves, if any.
    pub resource: Option<&'static crate::resources::crud::Resource>,
}

/// The router and the endpoint table, built together.
pub struct Api {
    router: Router<AppState>,
    endpoints: Vec<Endpoint>,
}

/// An endpoint being declared: finished by [`Pending::to`], which names its handler.
#[must_use = "an endpoint is registered by `to(handler)`"]
pub struct Pending {
    api: Api,
    endpoint: Endpoint,
}

impl Api {
    fn new() -> Self {
        Self {
            router: Router::new(),
            endpoints: Vec::new(),
        }
    }

    /// Starts declaring `method path` under the OpenAPI tag `tag`.
    pub fn at(self, method: &'static str, path: impl Into<String>, tag: &'static str) -> Pending {
        Pending {
            api: self,
            endpoint: Endpoint {
                method,
                path: path.into(),
                tag,
                summary: "",
                permission: None,
                body: false,
                example: None,
                creates: false,
                resource: None,
            },
        }
    }
}

impl Pending {
    pub fn summary(mut self, summary: &'static str) -> Self {
        self.endpoint.summary = summary;
        self
    }

    /// The permission the handler checks.
    pub fn allow(mut self, action: Action, kind: Kind) -> Self {
        self.endpoint.permission = Some(Permission::new(action, kind));
        self
    }

    /// Takes a JSON body, with an example of it.
    pub fn body(mut self, example: Option<fn() -> Value>) -> Self {
        self.endpoint.body = true;
        self.endpoint.example = example;
        self
    }

    /// Serves a config resource.
    pub fn of(mut self, resource: &'static crate::resources::crud::Resource) -> Self {
        self.endpoint.resource = Some(resource);
        self
    }

    /// Answers `201 Created`.
    pub fn creates(mut self) -> Self {
        self.endpoint.creates = true;
        self
    }

    /// Registers the endpoint with its handler.
    ///
    /// # Panics
    /// On a method this API does not use (a programming error, caught by every test).
    pub fn to<H, T>(self, handler: H) -> Api
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let Self { mut api, endpoint } = self;
        let filter = match endpoint.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            other => panic!("unsupported method {other}"),
        };
        // Registrations of one path with different methods merge into one route.
        api.router = api.router.route(&endpoint.path, on(filter, handler));
        api.endpoints.push(endpoint);
        api
    }
}

/// Every endpoint under `/api/v1`, declared.
fn declare() -> Api {
    let api = Api::new()
        .at("POST", "/api/v1/auth/login", "auth")
        .summary("Sign in with username and password; returns a session token")
        .body(Some(|| json!({"username": "admin", "password": "…"})))
        .to(auth::login)
        .at("GET", "/api/v1/auth/oidc", "auth")
        .summary("Whether single sign-on (OpenID Connect) is on, and where it starts")
        .to(crate::oidc::info)
        .at("GET", "/api/v1/auth/oidc/login", "auth")
        .summary("Start single sign-on: redirects to the identity provider (authorization code with PKCE)")
        .to(crate::oidc::login)
        .at("GET", "/api/v1/auth/oidc/callback", "auth")
        .summary("Where the identity provider returns; redirects to /login#sso=<one-time code>")
        .to(crate::oidc::callback)
        .at("POST", "/api/v1/auth/oidc/session", "auth")
        .summary("Exchange a single sign-on's one-time code for a session (as /auth/login answers)")
        .body(Some(|| json!({"code": "…"})))
        .to(crate::oidc::session)
        .at("POST", "/api/v1/auth/logout", "auth")
        .summary("Revoke the current session")
        .allow(Action::Delete, Kind::Session)
        .to(auth::logout)
        .at("GET", "/api/v1/auth/me", "auth")
        .summary("The signed-in user")
        .allow(Action::Read, Kind::Session)
        .to(auth::me)
        .at("POST", "/api/v1/auth/password", "auth")
        .summary("Change the own password (clears must_change_password)")
        .allow(Action::Update, Kind::Session)
        .body(Some(
            || json!({"current_password": "…", "new_password": "…"}),
        ))
        .to(auth::change_password);
    let api = providers::declare(api);
    let api = provider_keys::declare(api);
    let api = models::declare(api);
    let api = tokens::declare(api);
    let api = teams::declare(api);
    let api = users::declare(api);
    let api = settings::declare(api);
    let api = analytics(
        api,
        "/api/v1/analytics/summary",
        "Totals over a time range (members: their own)",
        crate::analytics::summary,
    );
    let api = analytics(
        api,
        "/api/v1/analytics/timeseries",
        "Requests, tokens, cost and latency per time bucket",
        crate::analytics::timeseries,
    );
    let api = analytics(
        api,
        "/api/v1/analytics/breakdown",
        "Totals per model, provider, key, token or user",
        crate::analytics::breakdown,
    );
    let api = analytics(
        api,
        "/api/v1/analytics/requests",
        "The request log, filtered and paginated",
        crate::analytics::requests,
    );
    let api = analytics(
        api,
        "/api/v1/analytics/requests.csv",
        "The request log as streamed CSV",
        crate::analytics::requests_csv,
    );
    let api = analytics(
        api,
        "/api/v1/analytics/rerate",
        "What the filtered requests would have cost under a model's price version (version=) or given prices, next to what was charged, by model, token, user or day",
        crate::rerate::rerate,
    );
    let api = analytics(
        api,
        "/api/v1/analytics/rerate.csv",
        "The re-rating as CSV",
        crate::rerate::rerate_csv,
    );
    let api = analytics(
        api,
        "/api/v1/dashboard",
        "The dashboard's figures in one call",
        crate::analytics::dashboard,
    );
    let api = analytics(
        api,
        "/api/v1/usage",
        "Requests, tokens and cost grouped by day, model, token or user (members: their own)",
        crate::usage::usage,
    );
    api.at("GET", "/api/v1/audit", "audit")
        .summary("The audit log (filters: entity, entity_id, actor, type, from, to)")
        .allow(Action::Read, Kind::Audit)
        .to(audit::list)
        .at("GET", "/api/v1/audit/verify", "audit")
        .summary(
            "Walk the config and audit streams' tamper-evident chain; name the first broken link",
        )
        .allow(Action::Read, Kind::Audit)
        .to(crate::integrity::verify)
        .at("POST", "/api/v1/apply", "config")
        .summary("Apply a declarative config document (YAML or JSON)")
        .allow(Action::Apply, Kind::Config)
        .body(Some(
            || json!({"providers": [], "provider_keys": [], "models": [], "tokens": []}),
        ))
        .to(apply::apply_http)
        .at("GET", "/api/v1/models/{id}/prices", "models")
        .summary("Every price version the model has had, from the config stream")
        .allow(Action::Read, Kind::Model)
        .to(crate::rerate::prices)
        .at("POST", "/api/v1/adjustments", "billing")
        .summary("Apply a re-rating to past traffic: a spend.adjusted audit event per token and day (re-rated minus charged) that the spend view folds")
        .allow(Action::Create, Kind::Billing)
        .body(Some(|| {
            json!({"model": "gpt-4o", "version": 2, "from": "2026-11-01T00:00:00Z",
                   "to": "2026-12-01T00:00:00Z", "reason": "price version 1 was entered wrong"})
        }))
        .to(crate::rerate::adjust)
        .at("GET", "/api/v1/config/at", "config")
        .summary("The config in force at a config stream sequence (a request's config_seq), rebuilt from the stream, without secrets")
        .allow(Action::Read, Kind::Config)
        .to(crate::config_at::config_at)
        .at("GET", "/api/v1/export", "config")
        .summary("Export the current config as a declarative document (no secrets)")
        .allow(Action::Read, Kind::Config)
        .to(apply::export_http)
        .at("GET", "/api/v1/openapi.json", "meta")
        .summary("This document")
        .to(|| async { axum::Json(openapi()) })
}

/// A read of usage figures (members: their own).
fn analytics<H, T>(api: Api, path: &'static str, summary: &'static str, handler: H) -> Api
where
    H: Handler<T, AppState>,
    T: 'static,
{
    api.at("GET", path, "analytics")
        .summary(summary)
        .allow(Action::Read, Kind::Usage)
        .to(handler)
}

/// The endpoint table: what [`api_router`] serves.
#[must_use]
pub fn endpoints() -> &'static [Endpoint] {
    static ENDPOINTS: LazyLock<Vec<Endpoint>> = LazyLock::new(|| declare().endpoints);
    &ENDPOINTS
}

/// The router for every endpoint in [`endpoints`], and the API docs page.
pub fn api_router() -> Router<AppState> {
    declare().router.merge(crate::docs::router())
}

/// The OpenAPI 3.1 document, generated from [`endpoints`].
#[must_use]
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for endpoint in endpoints() {
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
            if let Some(example) = endpoint.example {
                media["example"] = example();
            }
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": media}});
            if let Some(resource) = endpoint.resource {
                // What the declaration says of the body's fields: never returned, or only
                // tightened by a caller without the permission on every owner.
                operation["x-secret-fields"] = json!(resource.secret_fields);
                operation["x-operator-only-fields"] = json!(resource.operator_only);
            }
        }
        match endpoint.permission {
            Some(Permission { action, kind }) => {
                operation["security"] = json!([{"session": []}]);
                operation["x-permission"] =
                    json!({"action": action.as_str(), "resource": kind.as_str()});
            }
            None => operation["security"] = json!([]),
        }
        let entry = paths
            .entry(endpoint.path.clone())
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
        _ if endpoint.creates => {
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
