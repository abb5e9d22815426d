//! Building and sending upstream requests: the URL, the headers (our credentials only, never
//! the client's), and the per-attempt timeouts.

use std::time::Duration;

use axum::http::HeaderMap;
use shared::config::Protocol;

use crate::routing::Candidate;
use crate::translate::Dialect;

/// The Anthropic API version sent when the client did not name one.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// Headers a provider's `extra_headers` may never set: credentials and hop-by-hop headers.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
];

/// The dialect an upstream provider speaks.
#[must_use]
pub fn dialect_of(protocol: Protocol) -> Dialect {
    match protocol {
        Protocol::OpenAi => Dialect::OpenAiChat,
        Protocol::OpenAiResponses => Dialect::OpenAiResponses,
        Protocol::Anthropic => Dialect::Anthropic,
        Protocol::Gemini => Dialect::Gemini,
    }
}

/// What an upstream endpoint is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Generate,
    /// Generation with a streamed answer: the same endpoint for every protocol but Gemini,
    /// which streams from its own (`:streamGenerateContent?alt=sse`).
    GenerateStream,
    CountTokens,
    Embeddings,
}

/// The upstream URL: the provider's base URL (which includes the version prefix, like
/// `https://api.openai.com/v1`, `https://api.anthropic.com/v1` or
/// `https://generativelanguage.googleapis.com/v1beta`) plus the operation's path (for Gemini,
/// the upstream model's).
#[must_use]
pub fn url(candidate: &Candidate, operation: Operation) -> String {
    let base = candidate.provider.provider.base_url.trim_end_matches('/');
    let path = match (candidate.provider.provider.protocol, operation) {
        (Protocol::Gemini, operation) => {
            let model = url::form_urlencoded::byte_serialize(candidate.upstream_model.as_bytes())
                .collect::<String>();
            let action = match operation {
                Operation::Generate => ":generateContent",
                Operation::GenerateStream => ":streamGenerateContent?alt=sse",
                Operation::CountTokens => ":countTokens",
                Operation::Embeddings => ":embedContent",
            };
            return format!("{base}/models/{model}{action}");
        }
        (
            Protocol::OpenAi,
            Operation::Generate | Operation::GenerateStream | Operation::CountTokens,
        ) => "/chat/completions",
        (Protocol::OpenAiResponses, Operation::Generate | Operation::GenerateStream) => {
            "/responses"
        }
        (Protocol::OpenAiResponses, Operation::CountTokens) => "/responses/input_tokens",
        (Protocol::Anthropic, Operation::Generate | Operation::GenerateStream) => "/messages",
        (Protocol::Anthropic, Operation::CountTokens) => "/messages/count_tokens",
        (_, Operation::Embeddings) => "/embeddings",
    };
    format!("{base}{path}")
}

/// Builds the request with our key and the provider's extra headers. Of the client's headers
/// only `anthropic-version` and `anthropic-beta` pass, and only to an Anthropic upstream.
///
/// # Errors
/// When the provider has no usable HTTP client (its base URL was refused).
pub fn build(
    candidate: &Candidate,
    operation: Operation,
    client_headers: &HeaderMap,
    body: Vec<u8>,
) -> Result<reqwest::RequestBuilder, String> {
    let client = candidate.provider.client.as_ref().map_err(Clone::clone)?;
    let secret = candidate
        .key
        .secret
        .as_ref()
        .ok_or("provider key cannot be decrypted")?;
    let mut request = client
        .post(url(candidate, operation))
        .header("content-type", "application/json");
    for (name, value) in &candidate.provider.provider.extra_headers {
        if !RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    request = match candidate.provider.provider.protocol {
        Protocol::OpenAi | Protocol::OpenAiResponses => request.bearer_auth(secret.expose()),
        Protocol::Gemini => request.header("x-goog-api-key", secret.expose()),
        Protocol::Anthropic => {
            let version = client_headers
                .get("anthropic-version")
                .and_then(|value| value.to_str().ok())
                .filter(|value| value.len() <= 32)
                .unwrap_or(DEFAULT_ANTHROPIC_VERSION);
            let mut request = request
                .header("x-api-key", secret.expose())
                .header("anthropic-version", version);
            if let Some(beta) = client_headers
                .get("anthropic-beta")
                .and_then(|value| value.to_str().ok())
            {
                request = request.header("anthropic-beta", beta);
            }
            request
        }
    };
    Ok(request.body(body))
}

/// Parses `Retry-After` (seconds form; the HTTP-date form is rare from LLM APIs and ignored).
#[must_use]
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<f64>().ok())
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map(Duration::from_secs_f64)
}
