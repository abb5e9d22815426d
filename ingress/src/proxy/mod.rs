//! The hot path: authenticate, admit, route, translate, call upstream with retries and
//! fail-over, stream back, record the request event.
//!
//! `call` is the record of one request (what its event will say), `attempt` the attempt loop
//! over routes and keys with its retry policy, `plain` and `stream` the two ways an answer goes
//! back to the client.

mod attempt;
mod cached;
mod call;
mod plain;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use shared::config::UserToken;
use tokio::sync::Semaphore;

use crate::auth::{self, Authenticator};
use crate::bounds;
use crate::config::SpoolFullPolicy;
use crate::error::IngressError;
use crate::limits::Limiter;
use crate::publish::Publisher;
use crate::routing::{Breakers, Candidate};
use crate::state::ConfigStore;
use crate::translate::{self, Dialect, ir};
use crate::upstream::{self, Operation};

pub(crate) use attempt::call_upstream;
pub(crate) use call::{Call, Finish};

/// Retry and back-off settings.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    pub max_attempts: usize,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for; the next route is tried at once.
    pub max_retry_after: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(10),
        }
    }
}

pub struct AppState {
    pub config: Arc<ConfigStore>,
    pub auth: Arc<Authenticator>,
    pub limiter: Arc<Limiter>,
    pub breakers: Arc<Breakers>,
    /// Requests in flight and time to first byte per route and key, for the routing strategies.
    pub route_stats: Arc<crate::routing::RouteStats>,
    /// How the client's address is found (the per-address limits).
    pub client_address: crate::limits::ClientAddress,
    pub publisher: Publisher,
    pub node_id: String,
    pub spool_full_policy: SpoolFullPolicy,
    pub max_body_bytes: usize,
    pub body_read_timeout: Duration,
    pub concurrency: Arc<Semaphore>,
    /// How long a new request waits for room in the event pipeline before a 503.
    pub event_slot_wait: Duration,
    pub retry: RetrySettings,
    /// OpenTelemetry traces (off unless `otel_endpoint` is set).
    pub tracing: crate::otel::Tracing,
    /// The response cache shared by the deployment's nodes.
    pub cache: Arc<crate::cache::ResponseCache>,
}

pub(crate) fn set_request_id(response: &mut Response, request_id: &str) {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
}

/// Reads the body up to the limit and within the body timeout (a slow-body client cannot hold
/// a slot forever).
pub async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Bytes, IngressError> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(IngressError::PayloadTooLarge(limit)),
        Err(_) => Err(IngressError::BadRequest {
            field: None,
            message: format!(
                "the request body was not received within {}s",
                timeout.as_secs()
            ),
        }),
    }
}

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate(state, Dialect::OpenAiChat, headers, body, None).await
}

pub async fn responses(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate(state, Dialect::OpenAiResponses, headers, body, None).await
}

pub async fn messages(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate(state, Dialect::Anthropic, headers, body, None).await
}

/// What every metered endpoint checks first: capacity (the permit is held until the response
/// is built or the stream ends), the spool-full policy, room for the request's event (waiting
/// while the event pipeline is behind), and the caller's token.
///
/// # Errors
/// 503 when the node is at capacity, refuses traffic or cannot record the request's event in
/// time, 401 for a bad token.
pub(crate) async fn admit_caller(
    state: &AppState,
    call: &mut Call,
    headers: &HeaderMap,
) -> Result<(tokio::sync::OwnedSemaphorePermit, Arc<UserToken>), IngressError> {
    call.trace
        .start(&state.tracing, std::time::SystemTime::from(call.started_at));
    call.client_ip = state.client_address.resolve(crate::server::peer(), headers);
    let permit = state.concurrency.clone().try_acquire_owned().map_err(|_| {
        IngressError::Overloaded("too many requests in flight on this node; retry shortly".into())
    })?;
    if state.spool_full_policy == SpoolFullPolicy::Refuse
        && let Some(reason) = state.publisher.spool().refusal()
    {
        metrics::counter!("ingress_refused_spool_full_total").increment(1);
        return Err(IngressError::Overloaded(format!(
            "usage recording is unavailable ({reason}); refusing rather than serving unbilled"
        )));
    }
    state
        .publisher
        .wait_for_room(state.event_slot_wait)
        .await
        .map_err(|_| {
            metrics::counter!("ingress_refused_event_backlog_total").increment(1);
            IngressError::Overloaded("usage recording is behind on this node; retry shortly".into())
        })?;
    let snapshot = state.config.load();
    call.config_seq = Some(snapshot.sequence);
    let token = state.auth.authenticate(headers, &snapshot)?;
    call.token = Some(token.clone());
    Ok((permit, token))
}

/// The model a metered request names, checked: bounded, enabled, allowed for the token, and
/// within the token's limits (which counts the request).
///
/// # Errors
/// 400 for a name out of bounds, 404/403 from [`auth::usable_model`], 429 from the limiter.
pub(crate) fn admit_model(
    state: &AppState,
    call: &mut Call,
    token: &UserToken,
    alias: &str,
) -> Result<Arc<shared::config::Model>, IngressError> {
    call.model_alias = bounds::for_record(alias);
    bounds::check_model(alias)?;
    let snapshot = state.config.load();
    call.config_seq = Some(snapshot.sequence);
    let model = auth::usable_model(&snapshot, token, alias)?;
    call.model = Some(model.clone());
    let owner = crate::limits::Owner {
        user_id: &token.owner_user_id,
        user_budget: snapshot
            .user(&token.owner_user_id)
            .and_then(|user| user.budget.as_ref()),
        team: token
            .team_id
            .as_ref()
            .and_then(|team_id| snapshot.teams.get(team_id))
            .map(AsRef::as_ref),
    };
    let subjects =
        crate::limits::subjects(&snapshot.rate_limits, owner, &model.alias, call.client_ip);
    state
        .limiter
        .admit_with(token, &subjects, time::OffsetDateTime::now_utc())?;
    call.limit_subjects = subjects;
    Ok(model)
}

/// The model and the streaming choice of a dialect that names them in the URL (Gemini).
pub(crate) struct Named {
    pub(crate) model: String,
    pub(crate) stream: bool,
}

/// Common checks before routing: capacity, spool, auth, body, model access, limits.
async fn admit(
    state: &AppState,
    call: &mut Call,
    headers: &HeaderMap,
    body: Body,
    named: Option<Named>,
) -> Result<(ir::Request, Bytes, tokio::sync::OwnedSemaphorePermit), IngressError> {
    let (permit, token) = admit_caller(state, call, headers).await?;
    let bytes = read_body(body, state.max_body_bytes, state.body_read_timeout).await?;
    let mut request = translate::decode_request(call.dialect, &bytes)?;
    if let Some(named) = named {
        request.model = named.model;
        request.stream = named.stream;
        request.include_usage = named.stream;
    }
    call.stream = request.stream;
    bounds::check_request(&request).inspect_err(|_| {
        call.model_alias = bounds::for_record(&request.model);
    })?;
    admit_model(state, call, &token, &request.model)?;
    Ok((request, bytes, permit))
}

pub(crate) async fn generate(
    state: Arc<AppState>,
    dialect: Dialect,
    headers: HeaderMap,
    body: Body,
    named: Option<Named>,
) -> Response {
    let mut call = Call::new(dialect, &headers);
    let (request, client_body, permit) = match admit(&state, &mut call, &headers, body, named).await
    {
        Ok(admitted) => admitted,
        Err(error) => return call.fail(&state, &error),
    };
    let plan = match (&call.model, &call.token) {
        (Some(model), Some(token)) => {
            state
                .cache
                .plan(model, token, dialect, &request, &client_body, &headers)
        }
        _ => None,
    };
    if let Some(plan) = &plan
        && let Some(entry) = state.cache.lookup(plan).await
        && entry.meta.stream == request.stream
    {
        return cached::respond(state, call, entry, permit).await;
    }
    let fill = plan.as_ref().and_then(crate::cache::Plan::fill);
    call.session = call
        .model
        .as_ref()
        .and_then(|model| model.routing.as_ref())
        .filter(|routing| routing.strategy == shared::config::RoutingStrategy::CacheAffinity)
        .and_then(|routing| crate::routing::Session::of(routing, &headers, dialect, &request));
    let request = Arc::new(request);
    call.request = Some(request.clone());
    let context = translate::Context {
        response_id: response_id(dialect, &call.request_id),
        created: u64::try_from(call.started_at.unix_timestamp()).unwrap_or(0),
        model: request.model.clone(),
        include_usage: request.include_usage,
        echo: translate::response_echo(dialect, &client_body),
    };
    // The warnings of the body sent last (each attempt encodes for its own route).
    let warnings = std::sync::Mutex::new(Vec::new());
    let encode = |candidate: &Candidate| {
        let upstream = upstream::dialect_of(candidate.provider.provider.protocol);
        let target =
            translate::Target::new(upstream, &candidate.upstream_model, &candidate.capabilities);
        let encoded =
            translate::upstream_request(dialect, upstream, &client_body, &request, &target)?;
        if let Ok(mut last) = warnings.lock() {
            *last = encoded
                .warnings
                .iter()
                .map(|warning| format!("{}: {}", warning.field, warning.message))
                .collect();
        }
        Ok(encoded.body)
    };
    let operation = if request.stream {
        Operation::GenerateStream
    } else {
        Operation::Generate
    };
    let upstream_call =
        call_upstream(&state, &mut call, &headers, operation, |_| true, encode).await;
    // The encoder's warnings, then what the attempts added (a refused parameter).
    let mut encoded_warnings = warnings.into_inner().unwrap_or_default();
    encoded_warnings.append(&mut call.warnings);
    call.warnings = encoded_warnings;
    let (response, candidate) = match upstream_call {
        Ok(ok) => ok,
        Err(error) => return call.fail(&state, &error),
    };
    let upstream = upstream::dialect_of(candidate.provider.provider.protocol);
    let mut response = if request.stream {
        stream::respond(
            state, call, response, upstream, context, candidate, permit, fill,
        )
        .await
    } else {
        plain::respond(
            state, call, response, upstream, dialect, context, candidate, permit, fill,
        )
        .await
    };
    if plan.is_some() {
        response
            .headers_mut()
            .insert(cached::CACHE_HEADER, HeaderValue::from_static("miss"));
    }
    response
}

fn response_id(dialect: Dialect, request_id: &str) -> String {
    let simple: String = request_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect();
    match dialect {
        Dialect::OpenAiChat => format!("chatcmpl-{simple}"),
        Dialect::OpenAiResponses => format!("resp_{simple}"),
        Dialect::Anthropic => format!("msg_{simple}"),
        Dialect::Gemini => simple,
    }
}
