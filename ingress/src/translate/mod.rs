//! Protocol translation between OpenAI Chat Completions, OpenAI Responses, Anthropic Messages and
//! Google Gemini, through one protocol-neutral representation ([`ir`]). No I/O, no clock, no randomness: ids and
//! timestamps come in through [`Context`], so a recorded upstream transcript fully determines
//! the bytes a client receives.
//!
//! Each dialect module has the same parts: `wire` (serde types of the public API), `decode`
//! (wire to IR), `encode` (IR to wire) and `stream` (a stateful decoder and encoder of stream
//! events). [`sse`] does the event-stream framing for all of them.
//!
//! The surface the ingress hot path calls:
//!
//! * [`decode_request`] — client body to [`ir::Request`]; a [`TranslateError`] renders as a 400 in
//!   the client's dialect with the offending field named ([`TranslateError::to_api_error`]).
//! * [`encode_request`] — IR to an upstream body for `upstream_model`, plus the [`ir::Warning`]s
//!   for everything the upstream dialect cannot express.
//! * [`decode_response`] / [`encode_response`] — a complete upstream answer to the client's dialect.
//! * [`StreamTranslator`] — raw upstream SSE bytes in, client SSE bytes out, usage and stop reason
//!   read on the way (also for same-dialect traffic, which passes through byte for byte).
//! * [`decode_upstream_error`] / [`encode_error`] / [`encode_stream_error`] — errors, before and
//!   after the first byte.
//! * [`count_tokens`] — an estimate for `/v1/messages/count_tokens` with a bundled tokenizer.
//!
//! Every client dialect can be served by an upstream of any of the four.

pub mod anthropic;
mod errors;
pub mod gemini;
pub mod ir;
mod json;
pub mod openai_chat;
pub mod openai_responses;
pub mod passthrough;
pub mod redact;
pub mod sse;
mod stream;
pub mod target;
mod tokens;

pub use errors::{decode_upstream_error, encode_error, encode_stream_error};
pub use stream::{StreamTranslator, decode_all as decode_stream};
pub use target::Target;
pub use tokens::count_tokens;

/// The four wire protocols the gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `POST /v1/chat/completions`
    OpenAiChat,
    /// `POST /v1/responses`
    OpenAiResponses,
    /// `POST /v1/messages`
    Anthropic,
    /// `POST /v1beta/models/{model}:generateContent` (and `:streamGenerateContent`)
    Gemini,
}

/// What the caller decides for a response: its id, its creation time (Unix seconds) and the
/// model name shown to the client (normally the alias the client asked for).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    pub response_id: String,
    pub created: u64,
    pub model: String,
    /// OpenAI Chat clients only: they asked for `stream_options.include_usage`.
    pub include_usage: bool,
    /// Request fields a Responses object repeats (`tools`, `tool_choice`,
    /// `parallel_tool_calls`), as the client sent them: see [`response_echo`].
    pub echo: serde_json::Map<String, serde_json::Value>,
}

/// What a Responses object echoes of its request: `tools`, `tool_choice` and
/// `parallel_tool_calls` as the client sent them, or OpenAI's defaults (`[]`, `"auto"`, `true`);
/// nothing for the other dialects.
#[must_use]
pub fn response_echo(client: Dialect, body: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let mut echo = serde_json::Map::new();
    if client != Dialect::OpenAiResponses {
        return echo;
    }
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    for (field, default) in [
        ("tools", serde_json::json!([])),
        ("tool_choice", serde_json::json!("auto")),
        ("parallel_tool_calls", serde_json::json!(true)),
    ] {
        let value = request
            .get(field)
            .filter(|value| !value.is_null())
            .cloned()
            .unwrap_or(default);
        echo.insert(field.to_owned(), value);
    }
    echo
}

/// An upstream request body and what could not be carried into it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EncodedRequest {
    pub body: Vec<u8>,
    pub warnings: Vec<ir::Warning>,
}

/// Why a translation failed, named for who is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The client sent something its own dialect does not allow.
    #[error("invalid request: {}{message}", if field.is_empty() { String::new() } else { format!("{field}: ") })]
    BadRequest { field: String, message: String },
    /// The upstream sent something its dialect does not allow.
    #[error("invalid upstream response: {0}")]
    BadUpstream(String),
    /// The operation is not available for this dialect.
    #[error("{0:?} is not supported as an upstream dialect for this operation")]
    UnsupportedUpstream(Dialect),
}

impl TranslateError {
    pub fn bad_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadRequest {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ir::ErrorClass {
        match self {
            Self::BadRequest { .. } => ir::ErrorClass::InvalidRequest,
            Self::BadUpstream(_) | Self::UnsupportedUpstream(_) => ir::ErrorClass::Api,
        }
    }

    /// The error as shown to a client; render it with [`encode_error`].
    pub fn to_api_error(&self) -> ir::ApiError {
        let mut error = ir::ApiError::new(self.kind(), self.to_string());
        if let Self::BadRequest { field, .. } = self
            && !field.is_empty()
        {
            error.param = Some(field.clone());
        }
        error
    }
}

/// Decodes a client request body.
pub fn decode_request(client: Dialect, body: &[u8]) -> Result<ir::Request, TranslateError> {
    match client {
        Dialect::OpenAiChat => openai_chat::decode::request(body),
        Dialect::OpenAiResponses => openai_responses::decode::request(body),
        Dialect::Anthropic => anthropic::decode::request(body),
        Dialect::Gemini => gemini::decode::request(body),
    }
}

/// Encodes a request for an upstream of another dialect, for `target`'s model and only with
/// what that model accepts (see [`target`]).
pub fn encode_request(
    upstream: Dialect,
    request: &ir::Request,
    target: &Target<'_>,
) -> Result<EncodedRequest, TranslateError> {
    let mut warnings = Vec::new();
    let request = target.adapt(upstream, request, &mut warnings);
    let model = target.model;
    let body = match upstream {
        Dialect::OpenAiChat => openai_chat::encode::request(&request, model, &mut warnings),
        Dialect::OpenAiResponses => {
            openai_responses::encode::request(&request, model, &mut warnings)
        }
        Dialect::Anthropic => anthropic::encode::request(&request, model, &mut warnings),
        Dialect::Gemini => gemini::encode::request(&request, target, &mut warnings),
    };
    Ok(EncodedRequest { body, warnings })
}

/// The upstream body for a client request: the client's own bytes, rewritten in place, when
/// both speak the same dialect ([`passthrough`]); otherwise translated through the IR.
pub fn upstream_request(
    client: Dialect,
    upstream: Dialect,
    client_body: &[u8],
    request: &ir::Request,
    target: &Target<'_>,
) -> Result<EncodedRequest, TranslateError> {
    if client == upstream {
        let mut warnings = Vec::new();
        let body = passthrough::request(client, client_body, target, &mut warnings)?;
        Ok(EncodedRequest { body, warnings })
    } else {
        encode_request(upstream, request, target)
    }
}

/// Decodes a complete (non-streamed) upstream answer.
pub fn decode_response(upstream: Dialect, body: &[u8]) -> Result<ir::Response, TranslateError> {
    match upstream {
        Dialect::OpenAiChat => openai_chat::decode::response(body),
        Dialect::Anthropic => anthropic::decode::response(body),
        Dialect::OpenAiResponses => openai_responses::decode::response(body),
        Dialect::Gemini => gemini::decode::response(body),
    }
}

/// Encodes a complete answer for the client.
pub fn encode_response(client: Dialect, response: &ir::Response, context: &Context) -> Vec<u8> {
    match client {
        Dialect::OpenAiChat => openai_chat::encode::response(response, context),
        Dialect::OpenAiResponses => openai_responses::encode::response(response, context),
        Dialect::Anthropic => anthropic::encode::response(response, context),
        Dialect::Gemini => gemini::encode::response(response, context),
    }
}

#[cfg(test)]
mod echo_tests {
    use super::{Dialect, response_echo};
    use serde_json::json;

    #[test]
    fn a_responses_object_echoes_what_was_sent_or_the_defaults() {
        let sent = br#"{"model":"m","input":"hi","tools":[{"type":"function","name":"f"}],"parallel_tool_calls":false}"#;
        let echo = response_echo(Dialect::OpenAiResponses, sent);
        assert_eq!(echo["tools"], json!([{"type": "function", "name": "f"}]));
        assert_eq!(echo["tool_choice"], json!("auto"), "OpenAI's default");
        assert_eq!(echo["parallel_tool_calls"], json!(false));
        let bare = response_echo(Dialect::OpenAiResponses, br#"{"model":"m","input":"hi"}"#);
        assert_eq!(bare["tools"], json!([]));
        assert_eq!(bare["parallel_tool_calls"], json!(true));
        assert!(response_echo(Dialect::Anthropic, sent).is_empty());
    }
}
