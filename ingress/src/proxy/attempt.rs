//! The attempt loop: the routes and keys of a model tried in order, with the model's retry and
//! breaker policy, a refused parameter dropped and retried, and the upstream's error when
//! nothing answers.

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use rand::Rng as _;
use shared::request::{Attempt, ErrorKind};

use crate::error::IngressError;
use crate::routing::{self, Candidate};
use crate::translate::{self, Dialect, ir};
use crate::upstream::{self, Operation};

use super::{AppState, Call};

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

/// An upstream error, who is at fault, and the status it counts as for the retry policy: a
/// credential refused under another status (Gemini answers a bad key with 400
/// `API_KEY_INVALID`) counts as the 401 it means, so the next key is tried.
fn upstream_error(upstream: Dialect, status: u16, body: &[u8]) -> (ir::ApiError, ErrorKind, u16) {
    let error = translate::decode_upstream_error(upstream, status, body);
    let status = match (error.kind, status) {
        (ir::ErrorClass::Authentication, 400) => 401,
        _ => status,
    };
    let kind = match status {
        401 | 403 => ErrorKind::UpstreamAuth,
        429 => ErrorKind::UpstreamRateLimited,
        529 => ErrorKind::UpstreamOverloaded,
        408 | 504 => ErrorKind::UpstreamTimeout,
        500..=599 => ErrorKind::UpstreamServerError,
        _ => ErrorKind::UpstreamBadRequest,
    };
    (error, kind, status)
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
    propagation: Option<crate::otel::Propagation>,
) -> (AttemptResult, Option<u16>) {
    let timeouts = candidate.provider.provider.timeouts;
    let upstream = upstream::dialect_of(candidate.provider.provider.protocol);
    let request = match upstream::build(candidate, operation, headers, body) {
        Ok(request) => match propagation {
            Some(propagation) => propagation.apply(request),
            None => request,
        },
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
    let (mut api_error, kind, counted_status) = upstream_error(upstream, status, &body);
    api_error.retry_after = retry_after.map(|after| after.as_secs().max(1));
    let error = IngressError::Upstream {
        error: api_error,
        kind,
    };
    if policy.retries(counted_status) {
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
    let session = call.session.clone();
    let plan = |include_open: bool| {
        let snapshot = state.config.load();
        let router = routing::Router {
            stats: &state.route_stats,
            session: session.as_ref(),
            accepts: &accepts,
        };
        routing::plan(
            &model,
            &snapshot,
            &state.breakers,
            include_open,
            &router,
            &mut rand::thread_rng(),
        )
    };
    let routing::Plan {
        mut candidates,
        decision,
    } = plan(false);
    call.routing = decision;
    // Every key is cooling down: by default they are tried anyway (benching helps only when
    // there is somewhere else to go); a model whose policy benches them gets the last upstream
    // error at once, with the cooldown left as Retry-After.
    let forced = candidates.is_empty();
    if forced {
        let forced_plan = plan(true);
        candidates = forced_plan.candidates;
        call.routing = forced_plan.decision;
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
        let in_flight = state.route_stats.start(candidate);
        let (span, propagation) = call.trace.attempt(&state.tracing, candidate, tried);
        let (result, status) =
            attempt(candidate, operation, headers, body, &policy, propagation).await;
        span.end(&crate::otel::AttemptEnd {
            http_status: status,
            outcome: match &result {
                AttemptResult::Ok(_) => "success",
                AttemptResult::Retryable { .. } => "retryable_error",
                AttemptResult::Final(_) => "error",
            },
            error_kind: match &result {
                AttemptResult::Ok(_) => None,
                AttemptResult::Retryable { error, .. } | AttemptResult::Final(error) => {
                    Some(error.kind().as_str())
                }
            },
        });
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
                state.route_stats.observe_ttfb(candidate, started.elapsed());
                call.in_flight = Some(in_flight);
                call.attempts.push(record);
                call.chosen = Some(candidate.clone());
                return Ok((response, candidate.clone()));
            }
            AttemptResult::Final(error) => {
                // The client's fault: the key is fine (and answered this fast).
                state
                    .breakers
                    .record(&candidate.key.key.id, None, &policy.breaker);
                state.route_stats.observe_ttfb(candidate, started.elapsed());
                drop(in_flight);
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
                // Measured as slow as its first-byte timeout, and no longer in flight while
                // the next attempt waits.
                state.route_stats.observe_failure(
                    candidate,
                    Duration::from_millis(u64::from(
                        candidate.provider.provider.timeouts.first_byte_ms,
                    ))
                    .max(started.elapsed()),
                );
                drop(in_flight);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_refused_under_another_status_counts_as_the_401_it_means() {
        // What Gemini answers for a bad API key.
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#;
        let (error, kind, counted) = upstream_error(Dialect::Gemini, 400, body);
        assert_eq!(error.kind, ir::ErrorClass::Authentication);
        assert_eq!((kind, counted), (ErrorKind::UpstreamAuth, 401));
        // A plain bad request stays the client's.
        let body = br#"{"error":{"code":400,"message":"contents is not specified","status":"INVALID_ARGUMENT"}}"#;
        let (_, kind, counted) = upstream_error(Dialect::Gemini, 400, body);
        assert_eq!((kind, counted), (ErrorKind::UpstreamBadRequest, 400));
    }
}
