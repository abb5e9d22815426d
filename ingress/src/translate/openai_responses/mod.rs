//! OpenAI Responses (`/v1/responses`).

pub mod decode;
pub mod encode;
pub mod stream;
pub mod wire;

pub use stream::{StreamDecoder, StreamEncoder};

use serde_json::{Map, Value};

use super::ir::{Usage, UsageUpdate};

/// The tool the client declared as `name` (read from the request's tools, which the response
/// echoes), at the top level or inside a `namespace`, with that namespace's name. Namespaced
/// tools reach the upstream expanded, their names unchanged, so a call is matched back here.
fn declared_tool<'a>(
    echo: &'a Map<String, Value>,
    name: &str,
) -> Option<(Option<&'a str>, &'a Value)> {
    fn find<'a>(
        tools: &'a [Value],
        namespace: Option<&'a str>,
        name: &str,
    ) -> Option<(Option<&'a str>, &'a Value)> {
        tools.iter().find_map(|tool| {
            if tool.get("type").and_then(Value::as_str) == Some("namespace") {
                let inner = tool.get("tools")?.as_array()?;
                find(inner, tool.get("name").and_then(Value::as_str), name)
            } else {
                (tool.get("name").and_then(Value::as_str) == Some(name))
                    .then_some((namespace, tool))
            }
        })
    }
    find(echo.get("tools")?.as_array()?, None, name)
}

/// Whether the client declared `name` a freeform (`custom`) tool: its calls go back as
/// `custom_tool_call` items with the raw text.
pub(crate) fn is_freeform(echo: &Map<String, Value>, name: &str) -> bool {
    declared_tool(echo, name)
        .is_some_and(|(_, tool)| tool.get("type").and_then(Value::as_str) == Some("custom"))
}

/// The namespace the client declared the tool `name` in, if any: the Responses API names it in
/// the call (`"namespace"` on a `function_call` item).
pub(crate) fn namespace_of(echo: &Map<String, Value>, name: &str) -> Option<String> {
    declared_tool(echo, name).and_then(|(namespace, _)| namespace.map(str::to_owned))
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
