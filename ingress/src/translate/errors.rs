//! Errors in each dialect: upstream error bodies in, client error bodies out.
//!
//! Statuses and types follow what the official SDKs map to their exception classes: Anthropic's
//! documented `error.type` per status, and OpenAI's `{"error":{"message","type","param","code"}}`
//! (the OpenAI SDKs choose the exception class by status alone).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Dialect;
use super::ir::{ApiError, ErrorClass};
use super::json::to_vec;
use super::redact::redact_secrets;
use super::sse::write_event;

/// How one class of error looks in each dialect.
struct Shape {
    class: ErrorClass,
    anthropic_status: u16,
    anthropic_type: &'static str,
    openai_status: u16,
    openai_type: &'static str,
    openai_code: Option<&'static str>,
    gemini_status: u16,
    /// Google's canonical error code name (`error.status`).
    gemini_name: &'static str,
}

/// The one table from error class to each dialect's status, type and code. Statuses and types
/// are what the official SDKs map to their exception classes: Anthropic's documented
/// `error.type` per status; OpenAI's SDKs choose the class by status alone; Gemini's
/// `error.status` is Google's canonical code for the HTTP status. An overloaded upstream is a
/// 503 for OpenAI and Gemini clients, which do not know 529. Where two classes share an
/// Anthropic type or a Gemini code, the first row is the one an upstream's reads as.
#[rustfmt::skip]
const SHAPES: [Shape; 11] = [
    // class, Anthropic status and type, OpenAI status, type and code, Gemini status and code
    shape(ErrorClass::InvalidRequest, (400, "invalid_request_error"), (400, "invalid_request_error", None), (400, "INVALID_ARGUMENT")),
    shape(ErrorClass::Authentication, (401, "authentication_error"), (401, "authentication_error", Some("invalid_api_key")), (401, "UNAUTHENTICATED")),
    shape(ErrorClass::Permission, (403, "permission_error"), (403, "permission_error", None), (403, "PERMISSION_DENIED")),
    shape(ErrorClass::NotFound, (404, "not_found_error"), (404, "not_found_error", None), (404, "NOT_FOUND")),
    shape(ErrorClass::RequestTooLarge, (413, "request_too_large"), (413, "invalid_request_error", Some("request_too_large")), (413, "INVALID_ARGUMENT")),
    shape(ErrorClass::MethodNotAllowed, (405, "invalid_request_error"), (405, "invalid_request_error", Some("method_not_allowed")), (405, "UNIMPLEMENTED")),
    shape(ErrorClass::RateLimit, (429, "rate_limit_error"), (429, "rate_limit_error", Some("rate_limit_exceeded")), (429, "RESOURCE_EXHAUSTED")),
    shape(ErrorClass::Api, (500, "api_error"), (500, "server_error", None), (500, "INTERNAL")),
    shape(ErrorClass::Overloaded, (529, "overloaded_error"), (503, "server_error", Some("overloaded")), (503, "UNAVAILABLE")),
    shape(ErrorClass::Unavailable, (503, "api_error"), (503, "server_error", Some("service_unavailable")), (503, "UNAVAILABLE")),
    shape(ErrorClass::Timeout, (504, "timeout_error"), (504, "server_error", Some("timeout")), (504, "DEADLINE_EXCEEDED")),
];

const fn shape(
    class: ErrorClass,
    (anthropic_status, anthropic_type): (u16, &'static str),
    (openai_status, openai_type, openai_code): (u16, &'static str, Option<&'static str>),
    (gemini_status, gemini_name): (u16, &'static str),
) -> Shape {
    Shape {
        class,
        anthropic_status,
        anthropic_type,
        openai_status,
        openai_type,
        openai_code,
        gemini_status,
        gemini_name,
    }
}

fn shape_of(class: ErrorClass) -> &'static Shape {
    SHAPES
        .iter()
        .find(|shape| shape.class == class)
        .unwrap_or(&SHAPES[7])
}

/// The class an upstream's HTTP status reads as: the row whose Anthropic status it is (the
/// Anthropic column has one status per class; a 405 is never an upstream's to send), a 408 as a
/// timeout, any other 4xx as an invalid request, anything else as an API error.
pub(super) fn class_of_status(status: u16) -> ErrorClass {
    if status == 408 {
        return ErrorClass::Timeout;
    }
    SHAPES
        .iter()
        .find(|shape| {
            shape.anthropic_status == status && shape.class != ErrorClass::MethodNotAllowed
        })
        .map_or(
            if (400..500).contains(&status) {
                ErrorClass::InvalidRequest
            } else {
                ErrorClass::Api
            },
            |shape| shape.class,
        )
}

pub fn anthropic_error_type(kind: ErrorClass) -> &'static str {
    shape_of(kind).anthropic_type
}

pub fn kind_from_anthropic_type(kind: &str, status: u16) -> ErrorClass {
    SHAPES
        .iter()
        .find(|shape| shape.anthropic_type == kind)
        .map_or_else(|| ErrorClass::from_status(status), |shape| shape.class)
}

fn anthropic_status(kind: ErrorClass) -> u16 {
    shape_of(kind).anthropic_status
}

/// OpenAI status, `type` and default `code`.
fn openai_shape(kind: ErrorClass) -> (u16, &'static str, Option<&'static str>) {
    let shape = shape_of(kind);
    (shape.openai_status, shape.openai_type, shape.openai_code)
}

/// The class a Gemini `error.status` names (the status decides when the code is unknown).
pub fn kind_from_gemini_status(name: &str, status: u16) -> ErrorClass {
    SHAPES
        .iter()
        .find(|shape| shape.gemini_name == name && shape.gemini_status == status)
        .or_else(|| SHAPES.iter().find(|shape| shape.gemini_name == name))
        .map_or_else(|| ErrorClass::from_status(status), |shape| shape.class)
}

/// The inner object of a Gemini error body: `{"code", "message", "status"}`.
pub fn gemini_error_value(error: &ApiError) -> Value {
    let shape = shape_of(error.kind);
    serde_json::json!({
        "code": shape.gemini_status,
        "message": error.message,
        "status": shape.gemini_name,
    })
}

#[derive(Deserialize)]
struct GeminiErrorBody {
    message: String,
    #[serde(default)]
    status: String,
    /// `google.rpc` detail objects; an `ErrorInfo` names the precise reason.
    #[serde(default)]
    details: Vec<Value>,
}

impl GeminiErrorBody {
    /// Google answers a bad API key with 400 `INVALID_ARGUMENT` and an `ErrorInfo` whose
    /// reason is `API_KEY_INVALID`: the key's fault, not the request's.
    fn class(&self, status: u16) -> ErrorClass {
        let bad_key = self
            .details
            .iter()
            .any(|detail| detail.get("reason").and_then(Value::as_str) == Some("API_KEY_INVALID"));
        if bad_key {
            ErrorClass::Authentication
        } else {
            kind_from_gemini_status(&self.status, status)
        }
    }
}

#[derive(Deserialize)]
struct GeminiError {
    error: GeminiErrorBody,
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
    let by_status = ErrorClass::from_status(status);
    let mut error = match upstream {
        Dialect::Anthropic => match serde_json::from_slice::<AnthropicError>(body) {
            Ok(parsed) => ApiError::new(
                kind_from_anthropic_type(&parsed.error.kind, status),
                parsed.error.message,
            ),
            Err(_) => fallback(status, body),
        },
        Dialect::Gemini => match serde_json::from_slice::<GeminiError>(body) {
            Ok(parsed) => ApiError::new(parsed.error.class(status), parsed.error.message),
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
    ApiError::new(ErrorClass::from_status(status), message)
}

/// Renders an error as the client's dialect expects it: HTTP status and JSON body.
pub fn encode_error(client: Dialect, error: &ApiError) -> (u16, Vec<u8>) {
    match client {
        Dialect::Anthropic => (anthropic_status(error.kind), anthropic_body(error)),
        Dialect::Gemini => (
            shape_of(error.kind).gemini_status,
            to_vec(&serde_json::json!({"error": gemini_error_value(error)})),
        ),
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
        Dialect::Gemini => super::gemini::stream::error_event(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_outside_the_table_fall_back_by_range() {
        for (status, class) in [
            (408, ErrorClass::Timeout),
            (405, ErrorClass::InvalidRequest),
            (409, ErrorClass::InvalidRequest),
            (422, ErrorClass::InvalidRequest),
            (502, ErrorClass::Api),
            (599, ErrorClass::Api),
            (302, ErrorClass::Api),
        ] {
            assert_eq!(ErrorClass::from_status(status), class, "{status}");
        }
    }

    #[test]
    fn the_table_has_one_row_per_class_and_reads_back_what_it_writes() {
        for shape in &SHAPES {
            assert_eq!(
                SHAPES
                    .iter()
                    .filter(|other| other.class == shape.class)
                    .count(),
                1,
                "{:?}",
                shape.class
            );
            // An upstream's status reads as its class (a 405 is never an upstream's to send).
            if shape.class != ErrorClass::MethodNotAllowed {
                assert_eq!(ErrorClass::from_status(shape.anthropic_status), shape.class);
            }
            // An Anthropic type reads as the first class that writes it.
            let first = SHAPES
                .iter()
                .find(|other| other.anthropic_type == shape.anthropic_type)
                .map(|other| other.class);
            assert_eq!(
                Some(kind_from_anthropic_type(shape.anthropic_type, 0)),
                first
            );
            // A Gemini code with its status reads as the first class that writes both.
            let first = SHAPES
                .iter()
                .find(|other| {
                    other.gemini_name == shape.gemini_name
                        && other.gemini_status == shape.gemini_status
                })
                .map(|other| other.class);
            assert_eq!(
                Some(kind_from_gemini_status(
                    shape.gemini_name,
                    shape.gemini_status
                )),
                first
            );
        }
    }
}
