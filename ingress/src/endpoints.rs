//! The endpoints that are not generation: model lists, token counting, embeddings.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shared::config::Protocol;

use crate::auth;
use crate::error::IngressError;
use crate::proxy::AppState;
use crate::routing;
use crate::translate::{self, Dialect};
use crate::upstream::{self, Operation};

fn dialect_for_models(headers: &HeaderMap) -> Dialect {
    if headers.contains_key("anthropic-version") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAiChat
    }
}

/// `GET /v1/models`: the models this token may use, in OpenAI's list shape, or Anthropic's
/// when the caller sends `anthropic-version`.
pub async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let dialect = dialect_for_models(&headers);
    let snapshot = state.config.load();
    let token = match state.auth.authenticate(&headers, &snapshot) {
        Ok(token) => token,
        Err(error) => return error.render(dialect),
    };
    let mut aliases: Vec<&String> = snapshot
        .models
        .values()
        .filter(|model| model.enabled && auth::model_allowed(&token, &model.alias))
        .map(|model| &model.alias)
        .collect();
    aliases.sort();
    let body = if dialect == Dialect::Anthropic {
        let data: Vec<_> = aliases
            .iter()
            .map(|alias| json!({"type": "model", "id": alias, "display_name": alias, "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        json!({"data": data, "has_more": false, "first_id": aliases.first(), "last_id": aliases.last()})
    } else {
        let data: Vec<_> =
            aliases.iter().map(|alias| json!({"id": alias, "object": "model", "created": 0, "owned_by": "axongate"})).collect();
        json!({"object": "list", "data": data})
    };
    axum::Json(body).into_response()
}

/// `POST /v1/messages/count_tokens`: asks an Anthropic upstream when the model has one;
/// otherwise estimates with the bundled tokenizer and says so in `x-axongate-estimated`.
pub async fn count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = Dialect::Anthropic;
    let snapshot = state.config.load();
    let token = match state.auth.authenticate(&headers, &snapshot) {
        Ok(token) => token,
        Err(error) => return error.render(dialect),
    };
    let bytes =
        match crate::proxy::read_body(body, state.max_body_bytes, state.body_read_timeout).await {
            Ok(bytes) => bytes,
            Err(error) => return error.render(dialect),
        };
    // count_tokens bodies have no max_tokens; the decoder wants one, so supply a placeholder.
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(error) => {
            return IngressError::BadRequest {
                field: None,
                message: format!("body is not JSON: {error}"),
            }
            .render(dialect);
        }
    };
    if let Some(object) = value.as_object_mut() {
        object.entry("max_tokens").or_insert(json!(1));
    }
    let request =
        match translate::decode_request(dialect, &serde_json::to_vec(&value).unwrap_or_default()) {
            Ok(request) => request,
            Err(error) => {
                let api_error = error.to_api_error();
                return IngressError::BadRequest {
                    field: api_error.param,
                    message: error.to_string(),
                }
                .render(dialect);
            }
        };
    let model = match auth::usable_model(&snapshot, &token, &request.model) {
        Ok(model) => model,
        Err(error) => return error.render(dialect),
    };
    let candidates = routing::plan(&model, &snapshot, &state.breakers, &mut rand::thread_rng());
    if let Some(candidate) = candidates
        .iter()
        .find(|candidate| candidate.provider.provider.protocol == Protocol::Anthropic)
    {
        let mut upstream_body = value.clone();
        upstream_body["model"] = json!(candidate.upstream_model);
        if let Some(object) = upstream_body.as_object_mut() {
            object.remove("max_tokens");
        }
        if let Ok(request) = upstream::build(
            candidate,
            Operation::CountTokens,
            &headers,
            serde_json::to_vec(&upstream_body).unwrap_or_default(),
        ) {
            let timeout = Duration::from_millis(u64::from(
                candidate.provider.provider.timeouts.first_byte_ms,
            ));
            if let Ok(Ok(response)) = tokio::time::timeout(timeout, request.send()).await
                && response.status().is_success()
                && let Ok(Ok(body)) = tokio::time::timeout(timeout, response.bytes()).await
            {
                return (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response();
            }
        }
    }
    let estimate = translate::count_tokens(&request);
    (
        StatusCode::OK,
        [("x-axongate-estimated", "true")],
        axum::Json(json!({"input_tokens": estimate})),
    )
        .into_response()
}

/// `POST /v1/embeddings`: OpenAI-protocol upstreams only.
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = Dialect::OpenAiChat;
    let snapshot = state.config.load();
    let token = match state.auth.authenticate(&headers, &snapshot) {
        Ok(token) => token,
        Err(error) => return error.render(dialect),
    };
    let bytes =
        match crate::proxy::read_body(body, state.max_body_bytes, state.body_read_timeout).await {
            Ok(bytes) => bytes,
            Err(error) => return error.render(dialect),
        };
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        _ => {
            return IngressError::BadRequest {
                field: None,
                message: "body must be a JSON object".into(),
            }
            .render(dialect);
        }
    };
    let Some(alias) = value
        .get("model")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
    else {
        return IngressError::BadRequest {
            field: Some("model".into()),
            message: "model is required".into(),
        }
        .render(dialect);
    };
    let model = match auth::usable_model(&snapshot, &token, &alias) {
        Ok(model) => model,
        Err(error) => return error.render(dialect),
    };
    if let Err(error) = state.limiter.admit(&token, time::OffsetDateTime::now_utc()) {
        return error.render(dialect);
    }
    let candidates = routing::plan(&model, &snapshot, &state.breakers, &mut rand::thread_rng());
    let Some(candidate) = candidates
        .iter()
        .find(|candidate| candidate.provider.provider.protocol == Protocol::OpenAi)
    else {
        return IngressError::NotSupported(format!(
            "the model `{}` has no OpenAI-protocol upstream; embeddings need one",
            model.alias
        ))
        .render(dialect);
    };
    value["model"] = json!(candidate.upstream_model);
    let request = match upstream::build(
        candidate,
        Operation::Embeddings,
        &headers,
        serde_json::to_vec(&value).unwrap_or_default(),
    ) {
        Ok(request) => request,
        Err(reason) => return IngressError::Internal(reason).render(dialect),
    };
    let timeout = Duration::from_millis(u64::from(candidate.provider.provider.timeouts.total_ms));
    match tokio::time::timeout(timeout, request.send()).await {
        Ok(Ok(response)) => {
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            if (200..300).contains(&status) {
                let tokens = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|value| {
                        value
                            .pointer("/usage/prompt_tokens")
                            .and_then(serde_json::Value::as_u64)
                    })
                    .unwrap_or(0);
                state
                    .limiter
                    .record(&token, tokens, 0, time::OffsetDateTime::now_utc());
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            } else {
                let error = translate::decode_upstream_error(Dialect::OpenAiChat, status, &body);
                crate::error::render_api_error(dialect, &error)
            }
        }
        _ => {
            let error = translate::ir::ApiError::new(
                translate::ir::ErrorKind::Unavailable,
                "the upstream did not answer",
            );
            crate::error::render_api_error(dialect, &error)
        }
    }
}
