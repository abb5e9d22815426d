//! The endpoints that are not generation: model lists, token counting, embeddings.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shared::config::Protocol;

use shared::config::ClientProtocol;
use shared::request::Usage;

use crate::auth;
use crate::bounds;
use crate::error::IngressError;
use crate::proxy::{self, AppState, Call};
use crate::routing::{self, Candidate};
use crate::translate::{self, Dialect, ir};
use crate::upstream::{self, Operation};

fn dialect_for_models(headers: &HeaderMap) -> Dialect {
    if headers.contains_key("anthropic-version") {
        Dialect::Anthropic
    } else {
        Dialect::OpenAiChat
    }
}

/// `GET /v1/models`: the models this token may use, in OpenAI's list shape, Anthropic's when
/// the caller sends `anthropic-version`, or Gemini's when it sends a Gemini key (the Gen AI
/// SDKs call `/v1` by default).
pub async fn models(
    State(state): State<Arc<AppState>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    if crate::gemini::is_gemini_caller(&headers, &uri) {
        return crate::gemini::models(State(state), uri, headers).await;
    }
    let dialect = dialect_for_models(&headers);
    let snapshot = state.config.load();
    let token = match state.auth.authenticate(&headers, &snapshot) {
        Ok(token) => token,
        Err(error) => return error.render(dialect),
    };
    let mut aliases: Vec<&String> = snapshot
        .models
        .values()
        .filter(|model| model.enabled && auth::model_allowed(&snapshot, &token, &model.alias))
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
/// Metered like generation: the concurrency cap, the token's limits (one request, no tokens)
/// and one request event, without cost.
pub async fn count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let dialect = Dialect::Anthropic;
    let mut call = Call::new(dialect, &headers).with_operation(crate::otel::Operation::CountTokens);
    let (permit, token) = match proxy::admit_caller(&state, &mut call, &headers).await {
        Ok(admitted) => admitted,
        Err(error) => return call.fail(&state, &error),
    };
    let bytes = match proxy::read_body(body, state.max_body_bytes, state.body_read_timeout).await {
        Ok(bytes) => bytes,
        Err(error) => return call.fail(&state, &error),
    };
    // count_tokens bodies have no max_tokens; the decoder wants one, so supply a placeholder.
    let mut value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(error) => {
            let error = IngressError::BadRequest {
                field: None,
                message: format!("body is not JSON: {error}"),
            };
            return call.fail(&state, &error);
        }
    };
    if let Some(object) = value.as_object_mut() {
        object.entry("max_tokens").or_insert(json!(1));
    }
    let request =
        match translate::decode_request(dialect, &serde_json::to_vec(&value).unwrap_or_default()) {
            Ok(request) => request,
            Err(error) => return call.fail(&state, &error.into()),
        };
    let candidate = match counting_route(&state, &mut call, &token, &request, Protocol::Anthropic) {
        Ok(candidate) => candidate,
        Err(error) => return call.fail(&state, &error),
    };
    if let Some(candidate) = &candidate {
        let mut upstream_body = value.clone();
        upstream_body["model"] = json!(candidate.upstream_model);
        if let Some(object) = upstream_body.as_object_mut() {
            object.remove("max_tokens");
        }
        let upstream_body = serde_json::to_vec(&upstream_body).unwrap_or_default();
        if let Some(body) = upstream_count(&mut call, &headers, candidate, upstream_body).await {
            return finish_ok(&state, call, permit, body, Usage::default(), None, &[]).await;
        }
    }
    let estimate = json!({"input_tokens": translate::count_tokens(&request)});
    finish_estimated(&state, call, permit, &estimate).await
}

/// The checks a token count passes (the request's bounds, the model, the token's limits) and
/// the first route whose upstream speaks `protocol` and so can count for itself.
fn counting_route(
    state: &AppState,
    call: &mut Call,
    token: &shared::config::UserToken,
    request: &ir::Request,
    protocol: Protocol,
) -> Result<Option<Candidate>, IngressError> {
    bounds::check_request(request)?;
    let model = proxy::admit_model(state, call, token, &request.model)?;
    let snapshot = state.config.load();
    let router = routing::Router {
        stats: &state.route_stats,
        session: call.session.as_ref(),
        accepts: &|upstream| upstream == protocol,
    };
    let plan = routing::plan(
        &model,
        &snapshot,
        &state.breakers,
        false,
        &router,
        &mut rand::thread_rng(),
    );
    Ok(plan
        .candidates
        .into_iter()
        .find(|candidate| candidate.provider.provider.protocol == protocol))
}

/// Asks `candidate` to count a prompt (its protocol's count endpoint), recording the attempt;
/// the answer when it succeeded within the first-byte timeout.
async fn upstream_count(
    call: &mut Call,
    headers: &HeaderMap,
    candidate: &Candidate,
    body: Vec<u8>,
) -> Option<Vec<u8>> {
    let request = upstream::build(candidate, Operation::CountTokens, headers, body).ok()?;
    let timeout = Duration::from_millis(u64::from(
        candidate.provider.provider.timeouts.first_byte_ms,
    ));
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(timeout, request.send()).await;
    let status = match &answer {
        Ok(Ok(response)) => Some(response.status().as_u16()),
        _ => None,
    };
    call.attempts.push(shared::request::Attempt {
        provider_id: candidate.provider.provider.id.clone(),
        provider_key_id: candidate.key.key.id.clone(),
        upstream_model: candidate.upstream_model.clone(),
        status,
        error_kind: None,
        latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
    });
    if let Ok(Ok(response)) = answer
        && response.status().is_success()
        && let Ok(Ok(body)) = tokio::time::timeout(timeout, response.bytes()).await
    {
        call.chosen = Some(candidate.clone());
        return Some(body.to_vec());
    }
    None
}

/// Gemini's `:countTokens`: asks a Gemini upstream when the model has one; otherwise estimates
/// with the bundled tokenizer (`x-axongate-estimated`). The body is `{"contents": […]}` or
/// `{"generateContentRequest": {…}}`. Metered like [`count_tokens`].
pub async fn gemini_count_tokens(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    alias: String,
) -> Response {
    let dialect = Dialect::Gemini;
    let mut call = Call::new(dialect, &headers).with_operation(crate::otel::Operation::CountTokens);
    let (permit, token) = match proxy::admit_caller(&state, &mut call, &headers).await {
        Ok(admitted) => admitted,
        Err(error) => return call.fail(&state, &error),
    };
    let bytes = match proxy::read_body(body, state.max_body_bytes, state.body_read_timeout).await {
        Ok(bytes) => bytes,
        Err(error) => return call.fail(&state, &error),
    };
    let inner = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|value| value.get("generateContentRequest").cloned())
        .map(|inner| serde_json::to_vec(&inner).unwrap_or_default());
    let mut request = match translate::decode_request(dialect, inner.as_deref().unwrap_or(&bytes)) {
        Ok(request) => request,
        Err(error) => {
            let api_error = error.to_api_error();
            let error = IngressError::BadRequest {
                field: api_error.param,
                message: error.to_string(),
            };
            return call.fail(&state, &error);
        }
    };
    request.model = alias;
    let candidate = match counting_route(&state, &mut call, &token, &request, Protocol::Gemini) {
        Ok(candidate) => candidate,
        Err(error) => return call.fail(&state, &error),
    };
    if let Some(candidate) = &candidate
        && let Some(body) = upstream_count(&mut call, &headers, candidate, bytes.to_vec()).await
    {
        return finish_ok(&state, call, permit, body, Usage::default(), None, &[]).await;
    }
    let estimate = json!({"totalTokens": translate::count_tokens(&request)});
    finish_estimated(&state, call, permit, &estimate).await
}

/// Answers a token count the bundled tokenizer estimated, saying so in `x-axongate-estimated`.
async fn finish_estimated(
    state: &AppState,
    call: Call,
    permit: tokio::sync::OwnedSemaphorePermit,
    estimate: &serde_json::Value,
) -> Response {
    let body = serde_json::to_vec(estimate).unwrap_or_default();
    finish_ok(
        state,
        call,
        permit,
        body,
        Usage::default(),
        None,
        &[("x-axongate-estimated", "true")],
    )
    .await
}

/// Records a successful metered request and answers it with a JSON body.
async fn finish_ok(
    state: &AppState,
    mut call: Call,
    permit: tokio::sync::OwnedSemaphorePermit,
    body: Vec<u8>,
    usage: Usage,
    cost: Option<shared::request::Cost>,
    extra_headers: &[(&'static str, &'static str)],
) -> Response {
    let ttfb = call.started.elapsed();
    let request_id = call.request_id.clone();
    call.take_slot(state).await;
    call.finish(state, proxy::Finish::success(usage, cost, ttfb));
    drop(permit);
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    for (name, value) in extra_headers {
        response
            .headers_mut()
            .insert(*name, axum::http::HeaderValue::from_static(value));
    }
    proxy::set_request_id(&mut response, &request_id);
    response
}

/// `POST /v1/embeddings`: OpenAI-protocol upstreams only, with retries and fail-over across
/// them. Metered like generation: the concurrency cap, the token's limits, and one request
/// event with the input tokens and their cost at the model's input price.
pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut call =
        Call::new(Dialect::OpenAiChat, &headers).with_operation(crate::otel::Operation::Embeddings);
    call.protocol = ClientProtocol::OpenaiEmbeddings;
    let (permit, token) = match proxy::admit_caller(&state, &mut call, &headers).await {
        Ok(admitted) => admitted,
        Err(error) => return call.fail(&state, &error),
    };
    let bytes = match proxy::read_body(body, state.max_body_bytes, state.body_read_timeout).await {
        Ok(bytes) => bytes,
        Err(error) => return call.fail(&state, &error),
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        _ => {
            let error = IngressError::BadRequest {
                field: None,
                message: "body must be a JSON object".into(),
            };
            return call.fail(&state, &error);
        }
    };
    let Some(alias) = value
        .get("model")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
    else {
        let error = IngressError::BadRequest {
            field: Some("model".into()),
            message: "model is required".into(),
        };
        return call.fail(&state, &error);
    };
    if let Some(user) = value.get("user").and_then(serde_json::Value::as_str)
        && user.len() > bounds::MAX_IDENTIFIER_BYTES
    {
        call.model_alias = bounds::for_record(&alias);
        let error = IngressError::BadRequest {
            field: Some("user".into()),
            message: format!("`user` is at most {} bytes", bounds::MAX_IDENTIFIER_BYTES),
        };
        return call.fail(&state, &error);
    }
    let model = match proxy::admit_model(&state, &mut call, &token, &alias) {
        Ok(model) => model,
        Err(error) => return call.fail(&state, &error),
    };
    let has_openai_route = {
        let snapshot = state.config.load();
        model.routes.iter().any(|route| {
            snapshot
                .providers
                .get(&route.provider_id)
                .is_some_and(|provider| provider.provider.protocol.is_openai())
        })
    };
    if !has_openai_route {
        let error = IngressError::NotSupported(format!(
            "the model `{}` has no OpenAI-protocol upstream; embeddings need one",
            model.alias
        ));
        return call.fail(&state, &error);
    }
    let encode = |candidate: &Candidate| {
        let mut upstream_body = value.clone();
        upstream_body["model"] = json!(candidate.upstream_model);
        Ok(serde_json::to_vec(&upstream_body).unwrap_or_default())
    };
    let (response, candidate) = match proxy::call_upstream(
        &state,
        &mut call,
        &headers,
        Operation::Embeddings,
        Protocol::is_openai,
        encode,
    )
    .await
    {
        Ok(answered) => answered,
        Err(error) => return call.fail(&state, &error),
    };
    let total = Duration::from_millis(u64::from(candidate.provider.provider.timeouts.total_ms));
    let body = match tokio::time::timeout(
        total.saturating_sub(call.started.elapsed()),
        response.bytes(),
    )
    .await
    {
        Ok(Ok(body)) => body,
        _ => {
            let error = ir::ApiError::new(
                ir::ErrorClass::Api,
                "the upstream response broke off or took longer than the total timeout",
            );
            let error = IngressError::Upstream {
                error,
                kind: shared::request::ErrorKind::UpstreamStreamError,
            };
            return call.fail(&state, &error);
        }
    };
    let input_tokens = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| {
            value
                .pointer("/usage/prompt_tokens")
                .and_then(serde_json::Value::as_u64)
        })
        .unwrap_or(0);
    let observed = ir::Usage {
        input_tokens,
        ..ir::Usage::default()
    };
    let (usage, cost) = call.usage_and_cost(&observed, true);
    finish_ok(&state, call, permit, body.to_vec(), usage, cost, &[]).await
}
