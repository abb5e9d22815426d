//! The requests the driver sends, built once per run, and how a response is judged complete.

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use serde_json::json;

use super::plan::{Dialect, Settings};
use crate::sse::SseEvent;

/// Everything needed to send one kind of request many times without rebuilding it.
#[derive(Clone, Debug)]
pub struct RequestTemplate {
    pub dialect: Dialect,
    pub stream: bool,
    pub path: &'static str,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

/// Why a header could not be built (a key with a newline, say).
#[derive(Debug, thiserror::Error)]
#[error("invalid header value for {0}")]
pub struct BadHeader(&'static str);

impl RequestTemplate {
    pub fn new(
        dialect: Dialect,
        stream: bool,
        model: &str,
        api_key: &str,
        host: &str,
        settings: &Settings,
    ) -> Result<Self, BadHeader> {
        let value = |name: &'static str, text: &str| {
            HeaderValue::from_str(text).map_err(|_| BadHeader(name))
        };
        let mut headers = vec![
            (hyper::header::HOST, value("host", host)?),
            (
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ];
        let path = match dialect {
            Dialect::Openai => {
                headers.push((
                    hyper::header::AUTHORIZATION,
                    value("authorization", &format!("Bearer {api_key}"))?,
                ));
                "/v1/chat/completions"
            }
            Dialect::Anthropic => {
                headers.push((
                    HeaderName::from_static("x-api-key"),
                    value("x-api-key", api_key)?,
                ));
                headers.push((
                    HeaderName::from_static("anthropic-version"),
                    HeaderValue::from_static("2023-06-01"),
                ));
                "/v1/messages"
            }
        };
        let body = request_body(dialect, stream, model, settings);
        Ok(Self {
            dialect,
            stream,
            path,
            headers,
            body: Bytes::from(body.to_string()),
        })
    }
}

/// The JSON body of a small chat request in the dialect.
pub fn request_body(
    dialect: Dialect,
    stream: bool,
    model: &str,
    settings: &Settings,
) -> serde_json::Value {
    let messages = json!([{ "role": "user", "content": settings.prompt }]);
    match (dialect, stream) {
        (Dialect::Openai, false) => json!({ "model": model, "messages": messages }),
        (Dialect::Openai, true) => json!({
            "model": model,
            "messages": messages,
            "stream": true,
            "stream_options": { "include_usage": true },
        }),
        (Dialect::Anthropic, stream) => json!({
            "model": model,
            "max_tokens": settings.max_tokens,
            "messages": messages,
            "stream": stream,
        }),
    }
}

/// What one server-sent event means to the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The stream's last event: `data: [DONE]` (OpenAI) or `message_stop` (Anthropic).
    End,
    /// An error event in the dialect.
    Error,
    Other,
}

pub fn classify_event(dialect: Dialect, event: &SseEvent) -> EventKind {
    match dialect {
        Dialect::Openai if event.data == "[DONE]" => EventKind::End,
        Dialect::Openai if event.data.starts_with("{\"error\"") => EventKind::Error,
        Dialect::Anthropic if event.event.as_deref() == Some("message_stop") => EventKind::End,
        Dialect::Anthropic if event.event.as_deref() == Some("error") => EventKind::Error,
        _ => EventKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: name.map(str::to_owned),
            data: data.into(),
        }
    }

    #[test]
    fn bodies_follow_each_dialect() {
        let settings = Settings::default();
        let openai = request_body(Dialect::Openai, true, "m", &settings);
        assert_eq!(openai["stream"], true);
        assert_eq!(openai["stream_options"]["include_usage"], true);
        assert_eq!(openai["messages"][0]["role"], "user");
        let plain = request_body(Dialect::Openai, false, "m", &settings);
        assert!(plain.get("stream").is_none());
        let anthropic = request_body(Dialect::Anthropic, false, "m", &settings);
        assert_eq!(anthropic["max_tokens"], 256);
        assert_eq!(anthropic["stream"], false);
    }

    #[test]
    fn templates_carry_the_dialects_credentials() {
        let settings = Settings::default();
        let openai =
            RequestTemplate::new(Dialect::Openai, false, "m", "k1", "127.0.0.1:1", &settings)
                .unwrap();
        assert_eq!(openai.path, "/v1/chat/completions");
        assert!(
            openai
                .headers
                .iter()
                .any(|(name, value)| name == "authorization" && value == "Bearer k1")
        );
        let anthropic =
            RequestTemplate::new(Dialect::Anthropic, true, "m", "k2", "h", &settings).unwrap();
        assert_eq!(anthropic.path, "/v1/messages");
        assert!(
            anthropic
                .headers
                .iter()
                .any(|(name, value)| name == "x-api-key" && value == "k2")
        );
        assert!(
            RequestTemplate::new(Dialect::Openai, false, "m", "bad\nkey", "h", &settings).is_err()
        );
    }

    #[test]
    fn stream_ends_and_errors_are_recognised() {
        assert_eq!(
            classify_event(Dialect::Openai, &event(None, "[DONE]")),
            EventKind::End
        );
        assert_eq!(
            classify_event(Dialect::Openai, &event(None, "{\"error\":{}}")),
            EventKind::Error
        );
        assert_eq!(
            classify_event(Dialect::Openai, &event(None, "{\"choices\":[]}")),
            EventKind::Other
        );
        assert_eq!(
            classify_event(Dialect::Anthropic, &event(Some("message_stop"), "{}")),
            EventKind::End
        );
        assert_eq!(
            classify_event(Dialect::Anthropic, &event(Some("error"), "{}")),
            EventKind::Error
        );
        assert_eq!(
            classify_event(Dialect::Anthropic, &event(None, "[DONE]")),
            EventKind::Other
        );
    }
}
