//! Error bodies exactly as each provider sends them.
//!
//! OpenAI: `{"error": {"message", "type", "param", "code"}}`.
//! Anthropic: `{"type": "error", "error": {"type", "message"}, "request_id"}` with the error
//! type fixed by the status (`invalid_request_error` 400, `authentication_error` 401,
//! `permission_error` 403, `not_found_error` 404, `request_too_large` 413, `rate_limit_error` 429,
//! `api_error` 500, `timeout_error` 504, `overloaded_error` 529).
//! Gemini: `{"error": {"code", "message", "status", "details"?}}`, Google's `google.rpc` error
//! with `code` the HTTP status and `status` its canonical name (`INVALID_ARGUMENT` 400,
//! `UNAUTHENTICATED` 401, `PERMISSION_DENIED` 403, `NOT_FOUND` 404, `RESOURCE_EXHAUSTED` 429,
//! `INTERNAL` 500, `UNAVAILABLE` 503, `DEADLINE_EXCEEDED` 504); no request-id header.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// The wire format a route speaks, which decides the error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Gemini,
}

#[derive(Serialize)]
struct OpenAiErrorBody<'a> {
    error: OpenAiError<'a>,
}

#[derive(Serialize)]
struct OpenAiError<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

#[derive(Serialize)]
struct AnthropicErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: AnthropicError<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct AnthropicError<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct GeminiErrorBody<'a> {
    error: GeminiError<'a>,
}

#[derive(Serialize)]
struct GeminiError<'a> {
    code: u16,
    message: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "<[Value]>::is_empty")]
    details: &'a [Value],
}

impl Dialect {
    /// The response header that carries the request id; Gemini sends none (its bodies carry a
    /// `responseId`).
    pub fn request_id_header(self) -> Option<&'static str> {
        match self {
            Self::OpenAi => Some("x-request-id"),
            Self::Anthropic => Some("request-id"),
            Self::Gemini => None,
        }
    }
}

/// An error to render in a dialect. `message` and `code` default to what the provider says for
/// the status.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub message: Option<String>,
    pub openai_code: Option<&'static str>,
    pub param: Option<String>,
    pub retry_after_seconds: Option<u64>,
    /// Gemini's `details` (`google.rpc.ErrorInfo`, `BadRequest`, …); other dialects have none.
    pub gemini_details: Vec<Value>,
}

impl ApiError {
    pub fn new(status: u16) -> Self {
        Self {
            status,
            message: None,
            openai_code: None,
            param: None,
            retry_after_seconds: None,
            gemini_details: Vec::new(),
        }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.openai_code = Some(code);
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn with_gemini_detail(mut self, detail: Value) -> Self {
        self.gemini_details.push(detail);
        self
    }

    pub fn render(&self, dialect: Dialect, request_id: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match dialect {
            Dialect::OpenAi => {
                let (kind, default_code, default_message) = openai_defaults(self.status);
                serde_json::to_vec(&OpenAiErrorBody {
                    error: OpenAiError {
                        message: self.message.as_deref().unwrap_or(default_message),
                        kind,
                        param: self.param.as_deref(),
                        code: self.openai_code.or(default_code),
                    },
                })
            }
            Dialect::Anthropic => {
                let (kind, default_message) = anthropic_defaults(self.status);
                serde_json::to_vec(&AnthropicErrorBody {
                    kind: "error",
                    error: AnthropicError {
                        kind,
                        message: self.message.as_deref().unwrap_or(default_message),
                    },
                    request_id,
                })
            }
            Dialect::Gemini => {
                let (status_name, default_message) = gemini_defaults(self.status);
                serde_json::to_vec(&GeminiErrorBody {
                    error: GeminiError {
                        code: self.status,
                        message: self.message.as_deref().unwrap_or(default_message),
                        status: status_name,
                        details: &self.gemini_details,
                    },
                })
            }
        }
        .unwrap_or_default();
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response();
        if let Some(name) = dialect.request_id_header()
            && let Ok(value) = HeaderValue::from_str(request_id)
        {
            response.headers_mut().insert(name, value);
        }
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn openai_defaults(status: u16) -> (&'static str, Option<&'static str>, &'static str) {
    match status {
        400 => (
            "invalid_request_error",
            None,
            "The request is invalid (injected by the mock upstream).",
        ),
        401 => (
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        ),
        403 => (
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
            "Country, region, or territory not supported.",
        ),
        404 => (
            "invalid_request_error",
            Some("model_not_found"),
            "The model does not exist or you do not have access to it.",
        ),
        413 => (
            "invalid_request_error",
            Some("request_too_large"),
            "Request too large.",
        ),
        429 => (
            "requests",
            Some("rate_limit_exceeded"),
            "Rate limit reached for requests. Please try again later.",
        ),
        503 => (
            "server_error",
            None,
            "The engine is currently overloaded, please try again later.",
        ),
        500..=599 => (
            "server_error",
            None,
            "The server had an error while processing your request. Sorry about that!",
        ),
        _ => (
            "invalid_request_error",
            None,
            "The request could not be processed.",
        ),
    }
}

fn anthropic_defaults(status: u16) -> (&'static str, &'static str) {
    match status {
        401 => ("authentication_error", "invalid x-api-key"),
        402 => (
            "billing_error",
            "Your credit balance is too low to access the Anthropic API.",
        ),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization.",
        ),
        504 => ("timeout_error", "Request timed out."),
        529 => ("overloaded_error", "Overloaded"),
        500..=599 => ("api_error", "Internal server error"),
        _ => (
            "invalid_request_error",
            "The request is invalid (injected by the mock upstream).",
        ),
    }
}

/// The canonical `google.rpc.Code` name for an HTTP status, and Gemini's message for it.
fn gemini_defaults(status: u16) -> (&'static str, &'static str) {
    match status {
        400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401 => (
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        ),
        403 => ("PERMISSION_DENIED", "The caller does not have permission"),
        404 => ("NOT_FOUND", "Requested entity was not found."),
        409 => ("ABORTED", "The operation was aborted."),
        429 => (
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        499 => ("CANCELLED", "The operation was cancelled."),
        501 => (
            "UNIMPLEMENTED",
            "Operation is not implemented, or supported, or enabled.",
        ),
        503 | 529 => (
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
        504 => (
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
        ),
        500..=599 => (
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        ),
        _ => ("FAILED_PRECONDITION", "Precondition check failed."),
    }
}
