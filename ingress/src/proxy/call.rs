//! The record of one request: everything its event will say, and how it is finished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::response::Response;
use shared::Envelope;
use shared::config::{ClientProtocol, UserToken};
use shared::money::BillableTokens;
use shared::request::{Attempt, Cost, ErrorKind, Outcome, RequestEvent, RequestFinished, Usage};

use crate::bounds;
use crate::error::IngressError;
use crate::routing::Candidate;
use crate::translate::{self, Dialect, ir};

use super::{AppState, set_request_id};

/// Everything known about one request, for its event.
pub(crate) struct Call {
    pub(crate) dialect: Dialect,
    pub(crate) protocol: ClientProtocol,
    pub(crate) request_id: String,
    pub(crate) started: Instant,
    pub(crate) started_at: time::OffsetDateTime,
    pub(crate) token: Option<Arc<UserToken>>,
    pub(crate) model_alias: String,
    pub(crate) model: Option<Arc<shared::config::Model>>,
    pub(crate) stream: bool,
    pub(crate) attempts: Vec<Attempt>,
    pub(crate) chosen: Option<Candidate>,
    /// The decoded request, kept to estimate its input tokens only if the upstream never
    /// reports usage (tokenizing every prompt on the hot path would cost more than the rest).
    pub(crate) request: Option<Arc<ir::Request>>,
    /// What was not carried to the upstream, or changed for it (`field: why`).
    pub(crate) warnings: Vec<String>,
    /// The request's place among the events not yet durable, taken just before its answer is
    /// complete ([`Call::take_slot`]); its event carries it to the stream or the spool. A
    /// request refused or failed before that publishes without one.
    pub(crate) slot: Option<crate::publish::Slot>,
    /// The client's trace context and, when tracing is on, the request span.
    pub(crate) trace: crate::otel::RequestTrace,
    /// The config sequence of the snapshot the request was admitted (and its model resolved)
    /// under.
    pub(crate) config_seq: Option<u64>,
    /// Set when the response cache answered.
    pub(crate) cache_hit: Option<shared::request::CacheHit>,
    /// The request's session, for a model routed by cache affinity.
    pub(crate) session: Option<crate::routing::Session>,
    /// The routing strategy's decision, for the event.
    pub(crate) routing: Option<shared::request::RoutingDecision>,
    /// The answering route and key's in-flight count, held until the request ends.
    pub(crate) in_flight: Option<crate::routing::InFlight>,
    /// The client's address (the connection's, or a trusted proxy's header's).
    pub(crate) client_ip: Option<std::net::IpAddr>,
    /// The counting keys of the limits by dimension the request was admitted under.
    pub(crate) limit_subjects: Vec<crate::limits::Subject>,
}

/// The client-side protocol of each dialect.
fn client_protocol(dialect: Dialect) -> ClientProtocol {
    match dialect {
        Dialect::OpenAiChat => ClientProtocol::OpenaiChat,
        Dialect::OpenAiResponses => ClientProtocol::OpenaiResponses,
        Dialect::Anthropic => ClientProtocol::Anthropic,
        Dialect::Gemini => ClientProtocol::Gemini,
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
            trace: crate::otel::RequestTrace::from_headers(headers),
            config_seq: None,
            cache_hit: None,
            session: None,
            routing: None,
            in_flight: None,
            client_ip: None,
            limit_subjects: Vec::new(),
        }
    }

    /// A call of another GenAI operation than chat (names its span).
    pub(crate) fn with_operation(mut self, operation: crate::otel::Operation) -> Self {
        self.trace.set_operation(operation);
        self
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
    pub(crate) fn finish(self, state: &AppState, end: Finish) {
        let Finish {
            outcome,
            error_kind,
            http_status,
            usage,
            cost,
            ttfb,
        } = end;
        let latency = self.started.elapsed();
        if let Some(token) = &self.token {
            let tokens = usage.input_tokens
                + usage.output_tokens
                + usage.cache_read_tokens
                + usage.cache_write_tokens;
            let cost_nanos = cost.as_ref().map_or(0, |cost| cost.amount.0);
            let now = time::OffsetDateTime::now_utc();
            state.limiter.record(token, tokens, cost_nanos, now);
            state
                .limiter
                .record_subjects(&self.limit_subjects, tokens, cost_nanos, now);
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
        let trace_id = self.trace.trace_id();
        let mut trace = self.trace;
        trace.finish(&crate::otel::RequestEnd {
            request_id: &self.request_id,
            model_alias: &self.model_alias,
            token_id: self.token.as_ref().map(|token| token.id.as_str()),
            provider: self.chosen.as_ref().map(|candidate| {
                (
                    candidate.provider.provider.id.as_str(),
                    candidate.provider.provider.protocol,
                )
            }),
            upstream_model: self
                .chosen
                .as_ref()
                .map(|candidate| candidate.upstream_model.as_str()),
            http_status,
            outcome: outcome.as_str(),
            error_kind: error_kind.map(ErrorKind::as_str),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
        });
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
            trace_id,
            config_seq: self.config_seq,
            cache_hit: self.cache_hit,
            routing: self.routing,
            team_id: self.token.as_ref().and_then(|token| token.team_id.clone()),
        };
        let envelope = Envelope::by_node(RequestEvent::Finished(finished), state.node_id.clone());
        state.publisher.publish(&envelope, self.slot);
    }

    /// Fails the request before any upstream byte: renders the error and records it.
    pub(crate) fn fail(self, state: &AppState, error: &IngressError) -> Response {
        // The kind only: a decode error's message can echo what the client sent.
        tracing::debug!(request_id = %self.request_id, kind = error.kind().as_str(), "request failed");
        let mut response = error.render(self.dialect);
        set_request_id(&mut response, &self.request_id);
        let http_status = response.status().as_u16();
        self.finish(
            state,
            Finish {
                outcome: Outcome::Error,
                error_kind: Some(error.kind()),
                http_status,
                usage: Usage::default(),
                cost: None,
                ttfb: None,
            },
        );
        response
    }
}

/// How a request ended: the fields of its event that the path answering it knows.
pub(crate) struct Finish {
    pub(crate) outcome: Outcome,
    pub(crate) error_kind: Option<ErrorKind>,
    pub(crate) http_status: u16,
    pub(crate) usage: Usage,
    pub(crate) cost: Option<Cost>,
    pub(crate) ttfb: Option<Duration>,
}

impl Finish {
    /// A 200 answer with its usage and cost, first byte after `ttfb`.
    pub(crate) fn success(usage: Usage, cost: Option<Cost>, ttfb: Duration) -> Self {
        Self {
            outcome: Outcome::Success,
            error_kind: None,
            http_status: 200,
            usage,
            cost,
            ttfb: Some(ttfb),
        }
    }
}

/// The error for an upstream answer that broke off while being read (plain or streamed).
pub(crate) fn broke_off(error: reqwest::Error) -> ir::ApiError {
    ir::ApiError::new(
        ir::ErrorClass::Api,
        format!("the upstream response broke off: {}", error.without_url()),
    )
}
