//! The Gemini API's URL shape: `POST /v1beta/models/{model}:{method}` (or `/v1/…`, where the
//! Gen AI SDKs call by default) names the model and the method in the path, the key comes in `x-goog-api-key` or a `key=` query parameter, and
//! `GET /v1beta/models` lists models in Gemini's shape. Generation goes through the same path
//! as every other dialect ([`proxy::generate`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth;
use crate::bounds;
use crate::error::IngressError;
use crate::proxy::{self, AppState, Named};
use crate::translate::Dialect;

/// The methods Gemini clients call on a model.
const METHODS: [&str; 3] = ["generateContent", "streamGenerateContent", "countTokens"];

/// `headers` with the `key=` query parameter (Gemini's other way to send the key) moved into
/// `x-goog-api-key`, so that authentication reads one place. The query is never logged; the
/// token is not kept anywhere else.
fn with_query_key(mut headers: HeaderMap, uri: &Uri) -> HeaderMap {
    let key = uri.query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "key")
            .map(|(_, value)| value.into_owned())
    });
    if let Some(key) = key
        && !headers.contains_key("x-goog-api-key")
        && let Ok(value) = HeaderValue::from_str(&key)
    {
        headers.insert("x-goog-api-key", value);
    }
    headers
}

/// Whether a request on a path several dialects share (`/v1/models…`) comes from a Gemini
/// client: it sends its key in `x-goog-api-key` or `key=`.
pub fn is_gemini_caller(headers: &HeaderMap, uri: &Uri) -> bool {
    headers.contains_key("x-goog-api-key")
        || uri.query().is_some_and(|query| {
            url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "key")
        })
}

fn query_has(uri: &Uri, name: &str, value: &str) -> bool {
    uri.query().is_some_and(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .any(|(key, found)| key == name && found == value)
    })
}

/// `POST /v1beta/models/{model}:{method}`.
pub async fn model_method(
    State(state): State<Arc<AppState>>,
    Path(target): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let headers = with_query_key(headers, &uri);
    let Some((model, method)) = target.rsplit_once(':') else {
        return IngressError::BadRequest {
            field: None,
            message: format!(
                "name a method after the model: `models/{{model}}:{{{}}}`",
                METHODS.join("|")
            ),
        }
        .render(Dialect::Gemini);
    };
    let model = model.strip_prefix("models/").unwrap_or(model).to_owned();
    match method {
        "generateContent" => {
            let named = Named {
                model,
                stream: false,
            };
            proxy::generate(state, Dialect::Gemini, headers, body, Some(named)).await
        }
        "streamGenerateContent" if query_has(&uri, "alt", "sse") => {
            let named = Named {
                model,
                stream: true,
            };
            proxy::generate(state, Dialect::Gemini, headers, body, Some(named)).await
        }
        "streamGenerateContent" => IngressError::NotSupported(
            "streamGenerateContent is served as server-sent events only: add `?alt=sse` (the Gen AI SDKs do)"
                .into(),
        )
        .render(Dialect::Gemini),
        "countTokens" => crate::endpoints::gemini_count_tokens(state, headers, body, model).await,
        other => IngressError::BadRequest {
            field: None,
            message: format!(
                "unknown method `{}`; this gateway serves {}",
                bounds::for_record(other),
                METHODS.join(", ")
            ),
        }
        .render(Dialect::Gemini),
    }
}

fn model_json(alias: &str) -> serde_json::Value {
    json!({
        "name": format!("models/{alias}"),
        "baseModelId": alias,
        "version": "axongate",
        "displayName": alias,
        "supportedGenerationMethods": METHODS,
    })
}

/// The aliases the caller's token may use, sorted.
fn usable_aliases(state: &AppState, headers: &HeaderMap) -> Result<Vec<String>, IngressError> {
    let snapshot = state.config.load();
    let token = state.auth.authenticate(headers, &snapshot)?;
    let mut aliases: Vec<String> = snapshot
        .models
        .values()
        .filter(|model| model.enabled && auth::model_allowed(&snapshot, &token, &model.alias))
        .map(|model| model.alias.clone())
        .collect();
    aliases.sort();
    Ok(aliases)
}

/// `GET /v1beta/models`: the models this token may use, in Gemini's list shape.
pub async fn models(State(state): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Response {
    let headers = with_query_key(headers, &uri);
    match usable_aliases(&state, &headers) {
        Ok(aliases) => {
            let models: Vec<_> = aliases.iter().map(|alias| model_json(alias)).collect();
            axum::Json(json!({ "models": models })).into_response()
        }
        Err(error) => error.render(Dialect::Gemini),
    }
}

/// `GET /v1beta/models/{model}` (and `/v1/models/{model}`): one model the token may use, in
/// Gemini's shape, or OpenAI's for a caller that is not a Gemini client.
pub async fn model(
    State(state): State<Arc<AppState>>,
    Path(target): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (dialect, shape): (Dialect, fn(&str) -> serde_json::Value) = if is_gemini_caller(
        &headers, &uri,
    ) || uri
        .path()
        .starts_with("/v1beta/")
    {
        (Dialect::Gemini, model_json)
    } else {
        (
            Dialect::OpenAiChat,
            |alias| json!({"id": alias, "object": "model", "created": 0, "owned_by": "axongate"}),
        )
    };
    let headers = with_query_key(headers, &uri);
    let alias = target.strip_prefix("models/").unwrap_or(&target);
    match usable_aliases(&state, &headers) {
        Ok(aliases) if aliases.iter().any(|usable| usable == alias) => {
            axum::Json(shape(alias)).into_response()
        }
        Ok(_) => IngressError::ModelNotFound(bounds::for_record(alias)).render(dialect),
        Err(error) => error.render(dialect),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_key_becomes_the_header_unless_one_is_sent() {
        let uri: Uri = "/v1beta/models/m:generateContent?alt=sse&key=axg-abc"
            .parse()
            .unwrap();
        let headers = with_query_key(HeaderMap::new(), &uri);
        assert_eq!(headers["x-goog-api-key"], "axg-abc");
        assert!(query_has(&uri, "alt", "sse"));
        let mut sent = HeaderMap::new();
        sent.insert("x-goog-api-key", HeaderValue::from_static("axg-def"));
        assert_eq!(with_query_key(sent, &uri)["x-goog-api-key"], "axg-def");
    }
}
