//! Errors in each dialect: upstream error bodies in, client error bodies out.
//!
//! Statuses and types follow what the official SDKs map to their exception classes: Anthropic's
//! documented `error.type` per status, and OpenAI's `{"error":{"message","type","param","code"}}`
//! (the OpenAI SDKs choose the exception class by status alone).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Dialect;
use super::ir::{ApiError, ErrorKind};
use super::json::to_vec;
use super::redact::redact_secrets;
use super::sse::write_event;

pub fn anthropic_error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::MethodNotAllowed => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RequestTooLarge => "request_too_large",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Api | ErrorKind::Unavailable => "api_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Timeout => "timeout_error",
    }
}

pub fn kind_from_anthropic_type(kind: &str, status: u16) -> ErrorKind {
    match kind {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" => ErrorKind::Permission,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::RequestTooLarge,
        "rate_limit_error" => ErrorKind::RateLimit,
        "overloaded_error" => ErrorKind::Overloaded,
        "timeout_error" => ErrorKind::Timeout,
        "api_error" => ErrorKind::Api,
        _ => ErrorKind::from_status(status),
    }
}

fn anthropic_status(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::InvalidRequest => 400,
        ErrorKind::Authentication => 401,
        ErrorKind::Permission => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::RequestTooLarge => 413,
        ErrorKind::MethodNotAllowed => 405,
        ErrorKind::RateLimit => 429,
        ErrorKind::Api => 500,
        ErrorKind::Unavailable => 503,
        ErrorKind::Timeout => 504,
        ErrorKind::Overloaded => 529,
    }
}

/// OpenAI status, `type` and default `code`. An overloaded upstream is a 503 for OpenAI clients,
/// which do not know 529.
fn openai_shape(kind: ErrorKind) -> (u16, &'static str, Option<&'static str>) {
    match kind {
        ErrorKind::InvalidRequest => (400, "invalid_request_error", None),
        ErrorKind::Authentication => (401, "authentication_error", Some("invalid_api_key")),
        ErrorKind::Permission => (403, "permission_error", None),
        ErrorKind::NotFound => (404, "not_found_error", None),
        ErrorKind::RequestTooLarge => (413, "invalid_request_error", Some("request_too_large")),
        ErrorKind::MethodNotAllowed => (405, "invalid_request_error", Some("method_not_allowed")),
        ErrorKind::RateLimit => (429, "rate_limit_error", Some("rate_limit_exceeded")),
        ErrorKind::Api => (500, "server_error", None),
        ErrorKind::Overloaded => (503, "server_error", Some("overloaded")),
        ErrorKind::Unavailable => (503, "server_error", Some("service_unavailable")),
        ErrorKind::Timeout => (504, "server_error", Some("timeout")),
    }
}

#[derive(Serialize, Deserialize)]
struct OpenAiErrorBody {
    message: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    param: Option<String>,
    code: Option<Value>,
}

#[derive(Serialize, Deserialize)]
struct OpenAiError {
    error: OpenAiErrorBody,
}

#[derive(Serialize, Deserialize)]
struct AnthropicErrorBody {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

#[derive(Serialize, Deserialize)]
struct AnthropicError {
    #[serde(rename = "type")]
    kind: String,
    error: AnthropicErrorBody,
}

/// Reads an upstream error response. Unreadable bodies keep a short, generic message.
pub fn decode_upstream_error(upstream: Dialect, status: u16, body: &[u8]) -> ApiError {
    let by_status = ErrorKind::from_status(status);
    let mut error = match upstream {
        Dialect::Anthropic => match serde_json::from_slice::<AnthropicError>(body) {
            Ok(parsed) => ApiError::new(
                kind_from_anthropic_type(&parsed.error.kind, status),
                parsed.error.message,
            ),
            Err(_) => fallback(status, body),
        },
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            match serde_json::from_slice::<OpenAiError>(body) {
                Ok(parsed) => {
                    let mut error = ApiError::new(by_status, parsed.error.message);
                    error.param = parsed.error.param;
                    error.code = parsed.error.code.map(|code| match code {
                        Value::String(code) => code,
                        other => other.to_string(),
                    });
                    error
                }
                Err(_) => fallback(status, body),
            }
        }
    };
    // A status that says more than the body wins for the well-known statuses.
    if matches!(status, 401 | 403 | 404 | 413 | 429 | 529) {
        error.kind = by_status;
    }
    // Upstream messages may echo a (masked) key: nothing credential-shaped reaches a client,
    // an event or a log.
    error.message = redact_secrets(&error.message);
    error.param = error.param.as_deref().map(redact_secrets);
    error.code = error.code.as_deref().map(redact_secrets);
    error
}

fn fallback(status: u16, body: &[u8]) -> ApiError {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() || text.len() > 500 || text.starts_with('<') {
        format!("upstream returned HTTP {status}")
    } else {
        format!("upstream returned HTTP {status}: {text}")
    };
    ApiError::new(ErrorKind::from_status(status), message)
}

/// Renders an error as the client's dialect expects it: HTTP status and JSON body.
pub fn encode_error(client: Dialect, error: &ApiError) -> (u16, Vec<u8>) {
    match client {
        Dialect::Anthropic => (anthropic_status(error.kind), anthropic_body(error)),
        Dialect::OpenAiChat | Dialect::OpenAiResponses => {
            let (status, _, _) = openai_shape(error.kind);
            (status, openai_body(error))
        }
    }
}

fn anthropic_body(error: &ApiError) -> Vec<u8> {
    to_vec(&AnthropicError {
        kind: "error".to_owned(),
        error: AnthropicErrorBody {
            kind: anthropic_error_type(error.kind).to_owned(),
            message: error.message.clone(),
        },
    })
}

pub fn openai_error_value(error: &ApiError) -> OpenAiErrorValue {
    let (_, kind, code) = openai_shape(error.kind);
    OpenAiErrorValue {
        message: error.message.clone(),
        kind,
        param: error.param.clone(),
        code: error.code.clone().or(code.map(str::to_owned)),
    }
}

/// The inner object of an OpenAI error body.
#[derive(Debug, Serialize)]
pub struct OpenAiErrorValue {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<String>,
}

fn openai_body(error: &ApiError) -> Vec<u8> {
    #[derive(Serialize)]
    struct Body {
        error: OpenAiErrorValue,
    }
    to_vec(&Body {
        error: openai_error_value(error),
    })
}

/// The error event that ends a stream whose first byte already reached the client. Prefer
/// [`super::StreamTranslator::fail`], which knows the Responses sequence numbers.
pub fn encode_stream_error(client: Dialect, error: &ApiError) -> Vec<u8> {
    match client {
        Dialect::Anthropic => super::anthropic::stream::error_event(error),
        Dialect::OpenAiChat => {
            let mut out = Vec::new();
            let body = openai_body(error);
            write_event(
                &mut out,
                None,
                std::str::from_utf8(&body).unwrap_or_default(),
            );
            out
        }
        Dialect::OpenAiResponses => super::openai_responses::stream::error_events(error, "", 0),
    }
}
