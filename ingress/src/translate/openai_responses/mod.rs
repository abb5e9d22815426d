//! OpenAI Responses (`/v1/responses`).

pub mod decode;
pub mod encode;
pub mod stream;
pub mod wire;

pub use stream::{StreamDecoder, StreamEncoder};

use serde_json::{Map, Value};

use super::ir::{Usage, UsageUpdate};

/// Whether the client declared `name` a freeform (`custom`) tool, at the top level or inside a
/// `namespace` (read from the request's tools, which the response echoes): its calls go back as
/// `custom_tool_call` items with the raw text.
pub(crate) fn is_freeform(echo: &Map<String, Value>, name: &str) -> bool {
    fn find(tools: &[Value], name: &str) -> bool {
        tools
            .iter()
            .any(|tool| match tool.get("type").and_then(Value::as_str) {
                Some("custom") => tool.get("name").and_then(Value::as_str) == Some(name),
                Some("namespace") => tool
                    .get("tools")
                    .and_then(Value::as_array)
                    .is_some_and(|inner| find(inner, name)),
                _ => false,
            })
    }
    echo.get("tools")
        .and_then(Value::as_array)
        .is_some_and(|tools| find(tools, name))
}

/// The namespace whose tools include the function `name`, if the client declared it inside one:
/// the Responses API names it in the call (`"namespace"` on a `function_call` item), since the
/// request's tools were expanded for the upstream with their names unchanged.
pub(crate) fn namespace_of(echo: &Map<String, Value>, name: &str) -> Option<String> {
    echo.get("tools")?.as_array()?.iter().find_map(|tool| {
        (tool.get("type").and_then(Value::as_str) == Some("namespace")
            && tool
                .get("tools")
                .and_then(Value::as_array)?
                .iter()
                .any(|inner| inner.get("name").and_then(Value::as_str) == Some(name)))
        .then(|| tool.get("name").and_then(Value::as_str).map(str::to_owned))
        .flatten()
    })
}

/// Responses counts cached tokens inside `input_tokens`, as Chat does inside `prompt_tokens`.
pub fn usage_update(usage: &wire::ResponsesUsage) -> UsageUpdate {
    let cached = usage.input_tokens_details.cached_tokens.unwrap_or(0);
    UsageUpdate {
        input_tokens: Some(usage.input_tokens.saturating_sub(cached)),
        output_tokens: Some(usage.output_tokens),
        cache_read_tokens: Some(cached),
        cache_write_tokens: Some(0),
        reasoning_tokens: usage.output_tokens_details.reasoning_tokens,
    }
}

pub fn usage_to_wire(usage: &Usage) -> wire::ResponsesUsage {
    let input_tokens = usage.prompt_tokens();
    wire::ResponsesUsage {
        input_tokens,
        input_tokens_details: wire::TokenDetails {
            cached_tokens: Some(usage.cache_read_tokens),
            reasoning_tokens: None,
        },
        output_tokens: usage.output_tokens,
        output_tokens_details: wire::TokenDetails {
            cached_tokens: None,
            reasoning_tokens: Some(usage.reasoning_tokens.unwrap_or(0)),
        },
        total_tokens: input_tokens + usage.output_tokens,
    }
}
