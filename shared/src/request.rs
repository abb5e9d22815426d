//! The request event: one per finished request, whatever its outcome.
//!
//! Events carry normalized model names, usage, status and timings, never request or response
//! bodies and never a secret. Published on `axongate.requests.<outcome>`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::config::{ClientProtocol, Protocol};
use crate::envelope::EventBody;
use crate::money::Nanos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Error,
    Cancelled,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Why a request or an attempt failed, named for who is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    BadRequest,
    Unauthorized,
    Forbidden,
    ModelNotFound,
    RateLimited,
    BudgetExceeded,
    PayloadTooLarge,
    NoRouteAvailable,
    UpstreamBadRequest,
    UpstreamAuth,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamOverloaded,
    UpstreamTimeout,
    UpstreamConnect,
    UpstreamStreamError,
    UpstreamInvalidResponse,
    ClientDisconnected,
    Overloaded,
    Internal,
    /// A kind written by a newer build; kept so old projectors do not refuse the event.
    #[serde(other)]
    Other,
}

impl ErrorKind {
    /// Whether this says something is wrong with the upstream provider or key (as opposed to
    /// the client's request or the gateway itself): what key health and circuits count.
    #[must_use]
    pub fn is_upstream_fault(self) -> bool {
        matches!(
            self,
            Self::UpstreamAuth
                | Self::UpstreamRateLimited
                | Self::UpstreamServerError
                | Self::UpstreamOverloaded
                | Self::UpstreamTimeout
                | Self::UpstreamConnect
                | Self::UpstreamStreamError
                | Self::UpstreamInvalidResponse
        )
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::ModelNotFound => "model_not_found",
            Self::RateLimited => "rate_limited",
            Self::BudgetExceeded => "budget_exceeded",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NoRouteAvailable => "no_route_available",
            Self::UpstreamBadRequest => "upstream_bad_request",
            Self::UpstreamAuth => "upstream_auth",
            Self::UpstreamRateLimited => "upstream_rate_limited",
            Self::UpstreamServerError => "upstream_server_error",
            Self::UpstreamOverloaded => "upstream_overloaded",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamConnect => "upstream_connect",
            Self::UpstreamStreamError => "upstream_stream_error",
            Self::UpstreamInvalidResponse => "upstream_invalid_response",
            Self::ClientDisconnected => "client_disconnected",
            Self::Overloaded => "overloaded",
            Self::Internal => "internal",
            Self::Other => "other",
        }
    }
}

/// Token usage, normalized: `input_tokens` excludes cache reads and writes (Anthropic's
/// convention; OpenAI's `prompt_tokens` includes `cached_tokens` and is split on decode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// True when any count came from the bundled tokenizer rather than the upstream.
    #[serde(default)]
    pub estimated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    pub amount: Nanos,
    pub currency: String,
    pub price_version: u32,
}

/// One try against one upstream route and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub provider_id: String,
    pub provider_key_id: String,
    pub upstream_model: String,
    /// The upstream HTTP status, if a response arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    pub latency_us: u64,
}

/// Everything a dashboard, a budget or an audit needs about one finished request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestFinished {
    pub request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The team the token is charged to, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub model_alias: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_key_id: Option<String>,
    pub client_protocol: ClientProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_protocol: Option<Protocol>,
    pub stream: bool,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    pub http_status: u16,
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Time from receiving the request to the first byte sent to the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_us: Option<u64>,
    /// Time from receiving the request to sending its last byte.
    pub latency_us: u64,
    /// Every upstream attempt in order; retries and fail-overs are the attempts after the first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// What the gateway could not carry to the upstream or changed for it (`field: why`): a
    /// parameter the route's model cannot take, a field the target protocol has no place for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The W3C trace id (32 lower-case hex digits) of the request: its own span's when ingress
    /// exports traces, else the one of the client's `traceparent`; absent when neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// The `AXONGATE_CONFIG` sequence the serving node had applied when it resolved the
    /// request's model (its routes, limits and prices): `GET /api/v1/config/at?seq=` shows that
    /// config. Absent in events from before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_seq: Option<u64>,
    /// Set when the answer came from the response cache: the request then has no upstream
    /// attempt, zero usage and zero cost, and this says what the cached answer had cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit: Option<CacheHit>,
    /// How the route and key were chosen, when the model has a routing strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingDecision>,
}

/// A routing strategy's decision for the request's first attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingDecision {
    pub strategy: crate::config::RoutingStrategy,
    /// Usable candidates (route and key pairs) in the first tier the decision ordered.
    pub candidates: u32,
    /// `cache_affinity`: where the session key came from (`header`, `prompt_cache_key`,
    /// `metadata.user_id`); absent when the request had none and was ordered by weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_source: Option<String>,
    /// `cache_affinity`: the session, as the first 16 hex digits of its SHA-256 (never the
    /// client's value itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// `least_in_flight`: the chosen candidate's requests in flight on this node when chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<u32>,
    /// `latency`: the chosen candidate's moving average time to first byte, microseconds
    /// (absent: not measured yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ewma_ttfb_us: Option<u64>,
    /// `latency`: the candidate was chosen to measure it (never measured, or the stalest
    /// measurement on a re-measuring turn), not for being the fastest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explored: bool,
}

/// What a response-cache hit saved: the usage and cost of the request whose answer it replays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheHit {
    /// The request whose answer was stored.
    pub source_request_id: String,
    /// Its usage: the tokens this request did not spend.
    pub saved: Usage,
    /// Its cost at the time, if the model had a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_cost: Option<Cost>,
}

/// Every event on `AXONGATE_REQUESTS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum RequestEvent {
    #[serde(rename = "request.finished")]
    Finished(RequestFinished),
}

impl EventBody for RequestEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Finished(_) => "request.finished",
        }
    }

    fn subject(&self) -> String {
        match self {
            Self::Finished(finished) => crate::streams::request_subject(finished.outcome),
        }
    }
}
