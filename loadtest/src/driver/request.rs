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
        Self::build(
            dialect,
            stream,
            model,
            api_key,
            host,
            settings,
            &Extras::default(),
        )
    }

    /// [`Self::new`] with a target's extra headers and, for an agent scenario, the agent body.
    pub fn build(
        dialect: Dialect,
        stream: bool,
        model: &str,
        api_key: &str,
        host: &str,
        settings: &Settings,
        extras: &Extras<'_>,
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
        for (name, text) in extras.headers.into_iter().flatten() {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| BadHeader("extra"))?;
            headers.push((name, value("extra", text)?));
        }
        let mut body = request_body(dialect, stream, model, settings);
        if extras.agent {
            agent_request(&mut body, dialect, settings.agent_prompt_bytes);
        }
        Ok(Self {
            dialect,
            stream,
            path,
            headers,
            body: Bytes::from(body.to_string()),
        })
    }
}

/// What a target or scenario adds to the plain request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras<'a> {
    pub headers: Option<&'a std::collections::BTreeMap<String, String>>,
    pub agent: bool,
}

/// The tools a coding agent declares (names and schemas shaped after Claude Code's).
fn agent_tools() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    let string = json!({"type": "string"});
    let object = |properties: serde_json::Value, required: &[&str]| json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false});
    vec![
        (
            "Bash",
            "Run a shell command in the workspace and return its output.",
            object(
                json!({"command": string, "timeout": {"type": "number"}, "description": string}),
                &["command"],
            ),
        ),
        (
            "Read",
            "Read a file from the local filesystem.",
            object(
                json!({"file_path": string, "offset": {"type": "integer"}, "limit": {"type": "integer"}}),
                &["file_path"],
            ),
        ),
        (
            "Edit",
            "Replace an exact string in a file.",
            object(
                json!({"file_path": string, "old_string": string, "new_string": string, "replace_all": {"type": "boolean"}}),
                &["file_path", "old_string", "new_string"],
            ),
        ),
        (
            "Write",
            "Write a file to the local filesystem.",
            object(
                json!({"file_path": string, "content": string}),
                &["file_path", "content"],
            ),
        ),
        (
            "Glob",
            "Find files by name pattern.",
            object(json!({"pattern": string, "path": string}), &["pattern"]),
        ),
        (
            "Grep",
            "Search file contents with a regular expression.",
            object(
                json!({"pattern": string, "path": string, "glob": string, "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"]}}),
                &["pattern"],
            ),
        ),
        (
            "WebFetch",
            "Fetch a URL and summarise it.",
            object(
                json!({"url": {"type": "string", "format": "uri"}, "prompt": string}),
                &["url", "prompt"],
            ),
        ),
        (
            "TodoWrite",
            "Update the task list.",
            object(
                json!({"todos": {"type": "array", "items": object(json!({"content": string, "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}}), &["content", "status"])}}),
                &["todos"],
            ),
        ),
    ]
}

/// Turns a small request into an agent's: `prompt_bytes` of instructions, earlier turns with a
/// tool call and its result, the eight tools, in the dialect's shapes.
fn agent_request(body: &mut serde_json::Value, dialect: Dialect, prompt_bytes: usize) {
    const LINE: &str = "You are a coding agent working in a repository; follow the user's instructions, read before you edit, keep changes small and run the tests. ";
    let instructions = LINE.repeat(prompt_bytes / LINE.len() + 1);
    let instructions = &instructions[..prompt_bytes.min(instructions.len())];
    let listing = "Cargo.toml\nsrc/main.rs\nsrc/lib.rs\ntests/integration.rs";
    let seen = "Four files; the test is in tests/integration.rs.";
    // The mock's directive: answer with this tool call (streamed when the request streams).
    let user = r#"Read the library first. MOCK_TOOL_CALL Read {"file_path":"src/lib.rs"}"#;
    match dialect {
        Dialect::Openai => {
            body["messages"] = json!([
                {"role": "system", "content": instructions},
                {"role": "user", "content": "List the files, then fix the failing test."},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls -R\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": listing},
                {"role": "assistant", "content": seen},
                {"role": "user", "content": user},
            ]);
            body["tools"] = agent_tools()
                .into_iter()
                .map(|(name, description, parameters)| json!({"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}))
                .collect();
        }
        Dialect::Anthropic => {
            body["system"] = json!([{"type": "text", "text": instructions, "cache_control": {"type": "ephemeral"}}]);
            body["messages"] = json!([
                {"role": "user", "content": "List the files, then fix the failing test."},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -R"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": listing}]},
                {"role": "assistant", "content": seen},
                {"role": "user", "content": user},
            ]);
            body["tools"] = agent_tools()
                .into_iter()
                .map(|(name, description, schema)| json!({"name": name, "description": description, "input_schema": schema}))
                .collect();
        }
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
    fn agent_requests_carry_the_prompt_the_turns_and_the_tools() {
        let settings = Settings::default();
        let headers = std::collections::BTreeMap::from([("x-extra".to_owned(), "1".to_owned())]);
        for dialect in [Dialect::Openai, Dialect::Anthropic] {
            let extras = Extras {
                headers: Some(&headers),
                agent: true,
            };
            let template =
                RequestTemplate::build(dialect, true, "m", "k", "h", &settings, &extras).unwrap();
            assert!(template.headers.iter().any(|(name, _)| name == "x-extra"));
            let body: serde_json::Value = serde_json::from_slice(&template.body).unwrap();
            assert_eq!(body["tools"].as_array().unwrap().len(), 8, "{dialect:?}");
            assert!(
                template.body.len() > settings.agent_prompt_bytes,
                "{dialect:?}"
            );
            assert_eq!(body["stream"], true);
            let last = body["messages"].as_array().unwrap().last().unwrap().clone();
            assert!(
                last["content"]
                    .as_str()
                    .unwrap()
                    .contains("MOCK_TOOL_CALL Read")
            );
        }
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
