//! The hot path: authenticate, admit, route, translate, call upstream with retries and
//! fail-over, stream back, record the request event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::Rng as _;
use shared::Envelope;
use shared::config::{ClientProtocol, UserToken};
use shared::money::BillableTokens;
use shared::request::{Attempt, Cost, ErrorKind, Outcome, RequestEvent, RequestFinished, Usage};
use tokio::sync::{Semaphore, mpsc};

use crate::auth::{self, Authenticator};
use crate::bounds;
use crate::config::SpoolFullPolicy;
use crate::error::IngressError;
use crate::limits::Limiter;
use crate::publish::Publisher;
use crate::routing::{self, Breakers, Candidate};
use crate::state::ConfigStore;
use crate::translate::{self, Dialect, ir};
use crate::upstream::{self, Operation};

/// The most bytes one coalesced write to a streaming client carries.
const COALESCE_LIMIT: usize = 64 * 1024;

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
    pub publisher: Publisher,
    pub node_id: String,
    pub spool_full_policy: SpoolFullPolicy,
    pub max_body_bytes: usize,
    pub body_read_timeout: Duration,
    pub concurrency: Arc<Semaphore>,
    /// How long a request waits for an event slot before a 503.
    pub event_slot_wait: Duration,
    pub retry: RetrySettings,
}

/// Everything known about one request, for its event.
pub(crate) struct Call {
    dialect: Dialect,
    pub(crate) protocol: ClientProtocol,
    pub(crate) request_id: String,
    pub(crate) started: Instant,
    started_at: time::OffsetDateTime,
    token: Option<Arc<UserToken>>,
    pub(crate) model_alias: String,
    model: Option<Arc<shared::config::Model>>,
    stream: bool,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) chosen: Option<Candidate>,
    /// The decoded request, kept to estimate its input tokens only if the upstream never
    /// reports usage (tokenizing every prompt on the hot path would cost more than the rest).
    request: Option<Arc<ir::Request>>,
    /// What was not carried to the upstream, or changed for it (`field: why`).
    warnings: Vec<String>,
    /// The request's place among the events not yet durable, taken just before its answer is
    /// complete ([`Call::take_slot`]); its event carries it to the stream or the spool. A
    /// request refused or failed before that publishes without one.
    slot: Option<crate::publish::Slot>,
}

/// The client-side protocol of each dialect.
fn client_protocol(dialect: Dialect) -> ClientProtocol {
    match dialect {
        Dialect::OpenAiChat => ClientProtocol::OpenaiChat,
        Dialect::OpenAiResponses => ClientProtocol::OpenaiResponses,
        Dialect::Anthropic => ClientProtocol::Anthropic,
    }
}

/// The request id: the client's `x-request-id` if it is sane, else a new UUIDv7.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

impl Call {
    pub(crate) fn new(dialect: Dialect, headers: &HeaderMap) -> Self {
        Self {
            dialect,
            protocol: client_protocol(dialect),
            request_id: request_id(headers),
            started: Instant::now(),
            started_at: time::OffsetDateTime::now_utc(),
            token: None,
            model_alias: String::new(),
            model: None,
            stream: false,
            attempts: Vec::new(),
            chosen: None,
            request: None,
            warnings: Vec::new(),
            slot: None,
        }
    }

    pub(crate) fn usage_and_cost(
        &self,
        usage: &ir::Usage,
        observed: bool,
    ) -> (Usage, Option<Cost>) {
        let mut normalized = Usage {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            estimated: false,
        };
        if !observed
            || (usage.input_tokens == 0
                && usage.cache_read_tokens == 0
                && usage.cache_write_tokens == 0)
        {
            // The upstream never said: estimate the input with the bundled tokenizer.
            let estimate = self.request.as_deref().map_or(0, translate::count_tokens);
            if normalized.input_tokens == 0 && estimate > 0 {
                normalized.input_tokens = estimate;
                normalized.estimated = true;
            }
        }
        let cost = self
            .model
            .as_ref()
            .and_then(|model| model.price.as_ref())
            .map(|price| Cost {
                amount: price.cost(BillableTokens {
                    input: normalized.input_tokens,
                    output: normalized.output_tokens,
                    cache_read: normalized.cache_read_tokens,
                    cache_write: normalized.cache_write_tokens,
                }),
                currency: price.currency.clone(),
                price_version: price.version,
            });
        (normalized, cost)
    }

    /// Takes the request's event slot (if it has none yet), just before its answer is complete:
    /// waits while the pipeline is behind, so an answered request is always counted among the
    /// events not yet durable.
    pub(crate) async fn take_slot(&mut self, state: &AppState) {
        if self.slot.is_none() {
            self.slot = state.publisher.slot().await;
        }
    }

    /// Publishes the request event and records usage against the token's limits.
    #[expect(
        clippy::too_many_arguments,
        reason = "each argument is one field of the event"
    )]
    pub(crate) fn finish(
        self,
        state: &AppState,
        outcome: Outcome,
        error_kind: Option<ErrorKind>,
        http_status: u16,
        usage: Usage,
        cost: Option<Cost>,
        ttfb: Option<Duration>,
    ) {
        let latency = self.started.elapsed();
        if let Some(token) = &self.token {
            let tokens = usage.input_tokens
                + usage.output_tokens
                + usage.cache_read_tokens
                + usage.cache_write_tokens;
            state.limiter.record(
                token,
                tokens,
                cost.as_ref().map_or(0, |cost| cost.amount.0),
                time::OffsetDateTime::now_utc(),
            );
        }
        let provider_id = self
            .chosen
            .as_ref()
            .map(|candidate| candidate.provider.provider.id.clone());
        // Labels come from configuration only: a name no model has is "unknown".
        let model_label = self.model.as_ref().map_or_else(
            || bounds::UNKNOWN_LABEL.to_owned(),
            |model| model.alias.clone(),
        );
        metrics::counter!(
            "ingress_requests_total",
            "model" => model_label,
            "provider" => provider_id.clone().unwrap_or_default(),
            "outcome" => outcome.as_str()
        )
        .increment(1);
        metrics::histogram!("ingress_request_latency_seconds").record(latency.as_secs_f64());
        if let Some(ttfb) = ttfb {
            metrics::histogram!("ingress_time_to_first_byte_seconds").record(ttfb.as_secs_f64());
        }
        metrics::histogram!("ingress_attempts").record(self.attempts.len() as f64);
        let upstream_time: u64 = self.attempts.iter().map(|attempt| attempt.latency_us).sum();
        let added =
            (u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)).saturating_sub(upstream_time);
        metrics::histogram!("ingress_added_latency_seconds").record(added as f64 / 1e6);
        let finished = RequestFinished {
            request_id: self.request_id,
            token_id: self.token.as_ref().map(|token| token.id.clone()),
            user_id: self.token.as_ref().map(|token| token.owner_user_id.clone()),
            model_alias: self.model_alias,
            provider_id,
            upstream_model: self
                .chosen
                .as_ref()
                .map(|candidate| candidate.upstream_model.clone()),
            provider_key_id: self
                .chosen
                .as_ref()
                .map(|candidate| candidate.key.key.id.clone()),
            client_protocol: self.protocol,
            upstream_protocol: self
                .chosen
                .as_ref()
                .map(|candidate| candidate.provider.provider.protocol),
            stream: self.stream,
            outcome,
            error_kind,
            http_status,
            usage,
            cost,
            started_at: self.started_at,
            ttfb_us: ttfb.map(|ttfb| u64::try_from(ttfb.as_micros()).unwrap_or(u64::MAX)),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            attempts: self.attempts,
            warnings: self.warnings,
        };
        let envelope = Envelope::by_node(RequestEvent::Finished(finished), state.node_id.clone());
        state.publisher.publish(&envelope, self.slot);
    }

    /// Fails the request before any upstream byte: renders the error and records it.
    pub(crate) fn fail(self, state: &AppState, error: &IngressError) -> Response {
        let mut response = error.render(self.dialect);
        set_request_id(&mut response, &self.request_id);
        let status = response.status().as_u16();
        let (usage, cost) = (Usage::default(), None);
        self.finish(
            state,
            Outcome::Error,
            Some(error.kind()),
            status,
            usage,
            cost,
            None,
        );
        response
    }
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
    generate(state, Dialect::OpenAiChat, headers, body).await
}

pub async fn responses(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate(state, Dialect::OpenAiResponses, headers, body).await
}

pub async fn messages(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generate(state, Dialect::Anthropic, headers, body).await
}

/// What every metered endpoint checks first: capacity (the permit is held until the response
/// is built or the stream ends), the spool-full policy, a slot for the request's event (waiting
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
    let token = state.auth.authenticate(headers, &state.config.load())?;
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
    let model = auth::usable_model(&state.config.load(), token, alias)?;
    call.model = Some(model.clone());
    state
        .limiter
        .admit(token, time::OffsetDateTime::now_utc())?;
    Ok(model)
}

/// Common checks before routing: capacity, spool, auth, body, model access, limits.
async fn admit(
    state: &AppState,
    call: &mut Call,
    headers: &HeaderMap,
    body: Body,
) -> Result<(ir::Request, Bytes, tokio::sync::OwnedSemaphorePermit), IngressError> {
    let (permit, token) = admit_caller(state, call, headers).await?;
    let bytes = read_body(body, state.max_body_bytes, state.body_read_timeout).await?;
    let request = translate::decode_request(call.dialect, &bytes).map_err(|error| {
        let api_error = error.to_api_error();
        IngressError::BadRequest {
            field: api_error.param,
            message: error.to_string(),
        }
    })?;
    call.stream = request.stream;
    bounds::check_request(&request).inspect_err(|_| {
        call.model_alias = bounds::for_record(&request.model);
    })?;
    admit_model(state, call, &token, &request.model)?;
    Ok((request, bytes, permit))
}

/// What one attempt ended in.
enum AttemptResult {
    /// A 2xx response (headers received).
    Ok(reqwest::Response),
    /// Worth trying another key or route.
    Retryable {
        error: IngressError,
        retry_after: Option<Duration>,
    },
    /// The client's fault or final: stop.
    Final(IngressError),
}

fn upstream_error(upstream: Dialect, status: u16, body: &[u8]) -> (ir::ApiError, ErrorKind) {
    let error = translate::decode_upstream_error(upstream, status, body);
    let kind = match status {
        401 | 403 => ErrorKind::UpstreamAuth,
        429 => ErrorKind::UpstreamRateLimited,
        529 => ErrorKind::UpstreamOverloaded,
        408 | 504 => ErrorKind::UpstreamTimeout,
        500..=599 => ErrorKind::UpstreamServerError,
        _ => ErrorKind::UpstreamBadRequest,
    };
    (error, kind)
}

/// The retry and breaker policy of one request: the model's over the ingress defaults.
pub(crate) struct Policy {
    max_attempts: usize,
    /// Statuses tried again; `None`: the default set.
    retry_on: Option<Vec<u16>>,
    breaker: routing::BreakerSettings,
    bench_when_all_open: bool,
}

impl Policy {
    pub(crate) fn of(state: &AppState, model: &shared::config::Model) -> Self {
        let defaults = state.breakers.settings();
        let policy = model.retry.clone().unwrap_or_default();
        Self {
            max_attempts: policy
                .max_attempts
                .map_or(state.retry.max_attempts, |attempts| {
                    attempts.max(1) as usize
                }),
            retry_on: policy.retry_on,
            breaker: routing::BreakerSettings {
                consecutive_failures: policy
                    .breaker_failures
                    .unwrap_or(defaults.consecutive_failures),
                cooldown: policy
                    .breaker_cooldown_secs
                    .map_or(defaults.cooldown, |secs| {
                        Duration::from_secs(u64::from(secs))
                    }),
                ..defaults
            },
            bench_when_all_open: policy.bench_when_all_open.unwrap_or(false),
        }
    }

    /// Whether an upstream error status is tried again on the next key or route.
    fn retries(&self, status: u16) -> bool {
        match &self.retry_on {
            Some(statuses) => statuses.contains(&status),
            None => matches!(status, 401 | 403 | 408 | 409 | 429 | 500..=599),
        }
    }
}

/// Sends one attempt and classifies its answer.
async fn attempt(
    candidate: &Candidate,
    operation: Operation,
    headers: &HeaderMap,
    body: Vec<u8>,
    policy: &Policy,
) -> (AttemptResult, Option<u16>) {
    let timeouts = candidate.provider.provider.timeouts;
    let upstream = upstream::dialect_of(candidate.provider.provider.protocol);
    let request = match upstream::build(candidate, operation, headers, body) {
        Ok(request) => request,
        Err(reason) => {
            return (
                AttemptResult::Retryable {
                    error: IngressError::Internal(reason),
                    retry_after: None,
                },
                None,
            );
        }
    };
    let first_byte = Duration::from_millis(u64::from(timeouts.first_byte_ms));
    let response = match tokio::time::timeout(first_byte, request.send()).await {
        Err(_) => {
            let error = ir::ApiError::new(
                ir::ErrorClass::Timeout,
                "the upstream did not answer in time",
            );
            return (
                AttemptResult::Retryable {
                    error: IngressError::Upstream {
                        error,
                        kind: ErrorKind::UpstreamTimeout,
                    },
                    retry_after: None,
                },
                None,
            );
        }
        Ok(Err(error)) => {
            let kind = if error.is_connect() {
                ErrorKind::UpstreamConnect
            } else {
                ErrorKind::UpstreamStreamError
            };
            // reqwest errors carry the URL, never our key (credentials are headers).
            let message = format!(
                "could not reach the upstream provider: {}",
                error.without_url()
            );
            let api_error = ir::ApiError::new(ir::ErrorClass::Unavailable, message);
            return (
                AttemptResult::Retryable {
                    error: IngressError::Upstream {
                        error: api_error,
                        kind,
                    },
                    retry_after: None,
                },
                None,
            );
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status().as_u16();
    if response.status().is_success() {
        return (AttemptResult::Ok(response), Some(status));
    }
    let retry_after = upstream::retry_after(response.headers());
    let body = tokio::time::timeout(first_byte, response.bytes())
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let (mut api_error, kind) = upstream_error(upstream, status, &body);
    api_error.retry_after = retry_after.map(|after| after.as_secs().max(1));
    let error = IngressError::Upstream {
        error: api_error,
        kind,
    };
    if policy.retries(status) {
        (
            AttemptResult::Retryable { error, retry_after },
            Some(status),
        )
    } else {
        (AttemptResult::Final(error), Some(status))
    }
}

/// Runs the attempt loop over the routes (only those speaking `protocol`, when given);
/// returns the successful response and its candidate.
pub(crate) async fn call_upstream(
    state: &AppState,
    call: &mut Call,
    headers: &HeaderMap,
    operation: Operation,
    accepts: impl Fn(shared::config::Protocol) -> bool,
    encode: impl Fn(&Candidate) -> Result<Vec<u8>, IngressError>,
) -> Result<(reqwest::Response, Candidate), IngressError> {
    let model = call
        .model
        .clone()
        .ok_or_else(|| IngressError::Internal("no model".into()))?;
    let policy = Policy::of(state, &model);
    let plan = |include_open: bool| {
        let snapshot = state.config.load();
        let mut candidates = routing::plan(
            &model,
            &snapshot,
            &state.breakers,
            include_open,
            &mut rand::thread_rng(),
        );
        candidates.retain(|candidate| accepts(candidate.provider.provider.protocol));
        candidates
    };
    let mut candidates = plan(false);
    // Every key is cooling down: by default they are tried anyway (benching helps only when
    // there is somewhere else to go); a model whose policy benches them gets the last upstream
    // error at once, with the cooldown left as Retry-After.
    let forced = candidates.is_empty();
    if forced {
        candidates = plan(true);
        if candidates.is_empty() {
            return Err(IngressError::NoRoute(call.model_alias.clone()));
        }
        if policy.bench_when_all_open {
            return Err(last_upstream_error(state, call, &candidates));
        }
    }
    let mut last_error = None;
    let mut backoff = state.retry.base_backoff;
    let mut tried = 0;
    let mut index = 0;
    // A top-level field an upstream refused as unsupported: left out of every later attempt.
    let mut refused: Option<String> = None;
    while tried < policy.max_attempts && index < candidates.len() * 2 {
        let candidate = &candidates[index % candidates.len()];
        index += 1;
        if !state.breakers.try_acquire(&candidate.key.key.id) && !forced {
            continue;
        }
        tried += 1;
        let mut body = encode(candidate)?;
        if let Some(field) = &refused {
            body = translate::passthrough::without_member(&body, field).unwrap_or(body);
        }
        let started = Instant::now();
        let (result, status) = attempt(candidate, operation, headers, body, &policy).await;
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        let mut record = Attempt {
            provider_id: candidate.provider.provider.id.clone(),
            provider_key_id: candidate.key.key.id.clone(),
            upstream_model: candidate.upstream_model.clone(),
            status,
            error_kind: None,
            latency_us,
        };
        match result {
            AttemptResult::Ok(response) => {
                state
                    .breakers
                    .record(&candidate.key.key.id, None, &policy.breaker);
                call.attempts.push(record);
                call.chosen = Some(candidate.clone());
                return Ok((response, candidate.clone()));
            }
            AttemptResult::Final(error) => {
                // The client's fault: the key is fine.
                state
                    .breakers
                    .record(&candidate.key.key.id, None, &policy.breaker);
                record.error_kind = Some(error.kind());
                call.attempts.push(record);
                call.chosen = Some(candidate.clone());
                // A parameter the route's model does not take (a capability the route did not
                // declare): sent once more without it, to the same upstream, and said so.
                if refused.is_none()
                    && let Some(field) = refused_parameter(&error)
                    && translate::passthrough::without_member(&encode(candidate)?, &field).is_some()
                {
                    call.warnings.push(format!(
                        "{field}: {} refused it as unsupported (400); sent again without it",
                        candidate.upstream_model
                    ));
                    metrics::counter!("ingress_unsupported_parameter_retries_total", "provider" => candidate.provider.provider.id.clone()).increment(1);
                    refused = Some(field);
                    tried -= 1;
                    index -= 1;
                    continue;
                }
                return Err(error);
            }
            AttemptResult::Retryable { error, retry_after } => {
                state
                    .breakers
                    .record(&candidate.key.key.id, Some(&error), &policy.breaker);
                record.error_kind = Some(error.kind());
                call.attempts.push(record);
                call.chosen = Some(candidate.clone());
                metrics::counter!("ingress_upstream_retries_total", "provider" => candidate.provider.provider.id.clone()).increment(1);
                tracing::warn!(request_id = %call.request_id, provider = %candidate.provider.provider.id,
                    key = %candidate.key.key.id, status = ?status, error = %error, "upstream attempt failed");
                last_error = Some(error);
                if tried < policy.max_attempts {
                    let jitter = rand::thread_rng().gen_range(0.5..1.0);
                    let mut wait = backoff.mul_f64(jitter);
                    if let Some(after) = retry_after
                        && after <= state.retry.max_retry_after
                    {
                        wait = wait.max(after);
                    }
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(state.retry.max_backoff);
                }
            }
        }
    }
    // Every attempt failed (the last upstream error is the answer), or none could be made (the
    // keys' probes were taken by other requests): the keys' last error, else "no upstream".
    Err(last_error.unwrap_or_else(|| last_upstream_error(state, call, &candidates)))
}

/// Top-level request fields a refusal never removes: without them there is no request.
const NEVER_DROPPED: [&str; 7] = [
    "model",
    "messages",
    "input",
    "system",
    "instructions",
    "tools",
    "stream",
];

/// The top-level field an upstream's 400 names as a parameter it does not support, on positive
/// evidence only: OpenAI's `unsupported_parameter` code or its "Unsupported parameter: 'x'"
/// message (`reasoning.effort` names `reasoning`), or a validator's "x: Extra inputs are not
/// permitted" (Anthropic, pydantic-based OpenAI-compatible servers). An unsupported *value*, or
/// any other 400, is the client's to see.
fn refused_parameter(error: &IngressError) -> Option<String> {
    let IngressError::Upstream { error, .. } = error else {
        return None;
    };
    if error.kind != translate::ir::ErrorClass::InvalidRequest {
        return None;
    }
    let quoted = || {
        let rest = error.message.strip_prefix("Unsupported parameter: '")?;
        Some(rest[..rest.find('\'')?].to_owned())
    };
    let named = if error.code.as_deref() == Some("unsupported_parameter")
        || error.message.starts_with("Unsupported parameter: '")
    {
        error.param.clone().or_else(quoted)
    } else {
        error
            .message
            .split_once(": Extra inputs are not permitted")
            .map(|(field, _)| field.trim().to_owned())
    }?;
    let field = named.split(['.', '[']).next().unwrap_or_default();
    let plain = !field.is_empty()
        && field.len() <= 64
        && field
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    (plain && !NEVER_DROPPED.contains(&field)).then(|| field.to_owned())
}

/// What a client gets when no candidate can be tried now: the most recent upstream error of
/// the candidates' keys, with the cooldown left as `Retry-After`, or "no upstream" if none
/// has failed yet.
fn last_upstream_error(state: &AppState, call: &Call, candidates: &[Candidate]) -> IngressError {
    let keys = candidates
        .iter()
        .map(|candidate| candidate.key.key.id.as_str());
    match state.breakers.last_error(keys) {
        Some((IngressError::Upstream { mut error, kind }, left)) => {
            if let Some(left) = left {
                let secs = left.as_secs().max(1);
                error.retry_after = Some(error.retry_after.map_or(secs, |after| after.max(secs)));
            }
            IngressError::Upstream { error, kind }
        }
        Some((other, _)) => other,
        None => IngressError::NoRoute(call.model_alias.clone()),
    }
}

async fn generate(
    state: Arc<AppState>,
    dialect: Dialect,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut call = Call::new(dialect, &headers);
    let (request, client_body, permit) = match admit(&state, &mut call, &headers, body).await {
        Ok(admitted) => admitted,
        Err(error) => return call.fail(&state, &error),
    };
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
            translate::upstream_request(dialect, upstream, &client_body, &request, &target)
                .map_err(|error| {
                    let api_error = error.to_api_error();
                    IngressError::BadRequest {
                        field: api_error.param,
                        message: error.to_string(),
                    }
                })?;
        if let Ok(mut last) = warnings.lock() {
            *last = encoded
                .warnings
                .iter()
                .map(|warning| format!("{}: {}", warning.field, warning.message))
                .collect();
        }
        Ok(encoded.body)
    };
    let upstream_call = call_upstream(
        &state,
        &mut call,
        &headers,
        Operation::Generate,
        |_| true,
        encode,
    )
    .await;
    // The encoder's warnings, then what the attempts added (a refused parameter).
    let mut encoded_warnings = warnings.into_inner().unwrap_or_default();
    encoded_warnings.append(&mut call.warnings);
    call.warnings = encoded_warnings;
    let (response, candidate) = match upstream_call {
        Ok(ok) => ok,
        Err(error) => return call.fail(&state, &error),
    };
    let upstream = upstream::dialect_of(candidate.provider.provider.protocol);
    if request.stream {
        stream_response(state, call, response, upstream, context, candidate, permit).await
    } else {
        let total = Duration::from_millis(u64::from(candidate.provider.provider.timeouts.total_ms));
        let body = match tokio::time::timeout(
            total.saturating_sub(call.started.elapsed()),
            response.bytes(),
        )
        .await
        {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => {
                let api_error = ir::ApiError::new(
                    ir::ErrorClass::Api,
                    format!("upstream response broke off: {}", error.without_url()),
                );
                return call.fail(
                    &state,
                    &IngressError::Upstream {
                        error: api_error,
                        kind: ErrorKind::UpstreamStreamError,
                    },
                );
            }
            Err(_) => {
                let api_error = ir::ApiError::new(
                    ir::ErrorClass::Timeout,
                    "the upstream response took longer than the total timeout",
                );
                return call.fail(
                    &state,
                    &IngressError::Upstream {
                        error: api_error,
                        kind: ErrorKind::UpstreamTimeout,
                    },
                );
            }
        };
        let decoded = match translate::decode_response(upstream, &body) {
            Ok(decoded) => decoded,
            Err(error) => {
                let api_error = ir::ApiError::new(ir::ErrorClass::Api, error.to_string());
                return call.fail(
                    &state,
                    &IngressError::Upstream {
                        error: api_error,
                        kind: ErrorKind::UpstreamInvalidResponse,
                    },
                );
            }
        };
        let out = if upstream == dialect {
            translate::passthrough::response(&body, &context.model)
        } else {
            translate::encode_response(dialect, &decoded, &context)
        };
        let (usage, cost) = call.usage_and_cost(&decoded.usage, true);
        let ttfb = call.started.elapsed();
        let request_id = call.request_id.clone();
        call.take_slot(&state).await;
        call.finish(&state, Outcome::Success, None, 200, usage, cost, Some(ttfb));
        drop(permit);
        let mut response = (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            out,
        )
            .into_response();
        set_request_id(&mut response, &request_id);
        response
    }
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
    }
}

/// Streams the answer: the first translated bytes are produced before the response starts
/// (so a failure up to there can still be reported as a plain error), then a task pumps the
/// rest, ending with the dialect's error event on failure and recording cancellation when the
/// client goes away.
async fn stream_response(
    state: Arc<AppState>,
    call: Call,
    upstream_response: reqwest::Response,
    upstream: Dialect,
    context: translate::Context,
    candidate: Candidate,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Response {
    let (sender, mut receiver) = mpsc::channel::<Bytes>(32);
    let request_id = call.request_id.clone();
    let translator = translate::StreamTranslator::new(upstream, call.dialect, context);
    let timeouts = candidate.provider.provider.timeouts;
    tokio::spawn(pump(
        state,
        call,
        upstream_response,
        translator,
        sender,
        timeouts,
        permit,
    ));
    let body = Body::from_stream(futures::stream::poll_fn(move |context| {
        receiver
            .poll_recv(context)
            .map(|item| item.map(Ok::<Bytes, std::convert::Infallible>))
    }));
    let mut response = (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response();
    set_request_id(&mut response, &request_id);
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn pump(
    state: Arc<AppState>,
    mut call: Call,
    mut upstream_response: reqwest::Response,
    mut translator: translate::StreamTranslator,
    sender: mpsc::Sender<Bytes>,
    timeouts: shared::config::Timeouts,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let idle = Duration::from_millis(u64::from(timeouts.idle_ms));
    let deadline = tokio::time::Instant::from_std(call.started)
        + Duration::from_millis(u64::from(timeouts.total_ms));
    let mut ttfb = None;
    let mut failure: Option<(ErrorKind, ir::ApiError)> = None;
    let mut cancelled = false;
    loop {
        let next = tokio::select! {
            () = sender.closed() => { cancelled = true; break; }
            next = tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + idle), upstream_response.chunk()) => next,
        };
        let mut ended = false;
        let out = match next {
            Err(_) => {
                let error = ir::ApiError::new(
                    ir::ErrorClass::Timeout,
                    "the upstream stream stalled past its timeout",
                );
                failure = Some((ErrorKind::UpstreamTimeout, error.clone()));
                translator.fail(&error)
            }
            Ok(Err(error)) => {
                let api_error = ir::ApiError::new(
                    ir::ErrorClass::Api,
                    format!("the upstream stream broke off: {}", error.without_url()),
                );
                failure = Some((ErrorKind::UpstreamStreamError, api_error.clone()));
                translator.fail(&api_error)
            }
            Ok(Ok(None)) => {
                ended = true;
                translator.finish()
            }
            Ok(Ok(Some(chunk))) => {
                // Coalesce: translate every chunk that is already here into one write, so a
                // burst of upstream events costs one syscall, not one per event.
                let mut out = Vec::new();
                let mut next_chunk = Some(chunk);
                while let Some(chunk) = next_chunk.take() {
                    match translator.push(&chunk) {
                        Ok(translated) => out.extend_from_slice(&translated),
                        Err(error) => {
                            let api_error = error.to_api_error();
                            failure = Some((ErrorKind::UpstreamInvalidResponse, api_error.clone()));
                            out.extend_from_slice(&translator.fail(&api_error));
                            break;
                        }
                    }
                    if out.len() >= COALESCE_LIMIT {
                        break;
                    }
                    match futures::FutureExt::now_or_never(upstream_response.chunk()) {
                        Some(Ok(Some(more))) => next_chunk = Some(more),
                        Some(Ok(None)) => {
                            ended = true;
                            out.extend_from_slice(&translator.finish());
                        }
                        Some(Err(error)) => {
                            let api_error = ir::ApiError::new(
                                ir::ErrorClass::Api,
                                format!("the upstream stream broke off: {}", error.without_url()),
                            );
                            failure = Some((ErrorKind::UpstreamStreamError, api_error.clone()));
                            out.extend_from_slice(&translator.fail(&api_error));
                        }
                        None => {}
                    }
                }
                out
            }
        };
        if !out.is_empty() {
            if ttfb.is_none() {
                ttfb = Some(call.started.elapsed());
            }
            if ended || failure.is_some() {
                // The last bytes complete the answer: its event takes its place first.
                call.take_slot(&state).await;
            }
            if sender.send(Bytes::from(out)).await.is_err() {
                cancelled = true;
                break;
            }
        }
        if ended || failure.is_some() {
            break;
        }
    }
    if failure.is_none() && !cancelled && translator.failed() {
        failure = Some((
            ErrorKind::UpstreamStreamError,
            ir::ApiError::new(ir::ErrorClass::Api, "the upstream stream ended early"),
        ));
    }
    // Dropping the upstream response here cancels the upstream call promptly.
    drop(upstream_response);
    call.take_slot(&state).await;
    let observed = translator.usage();
    let (mut usage, cost) = call.usage_and_cost(&observed, observed != ir::Usage::default());
    let (outcome, error_kind) = if cancelled {
        if usage.output_tokens == 0 && translator.saw_first_content() {
            // Output was streamed but the upstream never counted it before the client left.
            usage.estimated = true;
        }
        (Outcome::Cancelled, Some(ErrorKind::ClientDisconnected))
    } else if let Some((kind, _)) = &failure {
        (Outcome::Error, Some(*kind))
    } else {
        (Outcome::Success, None)
    };
    call.finish(&state, outcome, error_kind, 200, usage, cost, ttfb);
    drop(permit);
}
