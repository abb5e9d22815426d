//! What the mock reads from a request body: prompt size, the cacheable prefix, and whether to
//! answer with a tool call.
//!
//! Token counts are deterministic so tests can predict them: a prompt's tokens are the UTF-8
//! bytes of its text-like strings divided by four, rounded up (at least 1). Text-like strings are
//! every string value inside the prompt fields except the values of `role`, `type`, `id`,
//! `cache_control`, `source`, `image_url` and `data`, which are structure or binary payloads.
//! The cacheable prefix is everything before the last message (plus system, instructions and
//! tools); see the README for when it counts as cached.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Map, Value};

/// The parts of a request the mock's answer depends on.
#[derive(Debug, Default)]
pub struct Prompt {
    /// All prompt tokens, cached or not.
    pub input_tokens: u32,
    /// Tokens of everything before the last message.
    pub prefix_tokens: u32,
    /// Identifies the prefix (with the model) for the mock's prompt cache.
    pub prefix_hash: u64,
    /// Whether the request asks for caching, by the dialect's rule.
    pub cache_requested: bool,
    /// The tool call to answer with, when the request offers tools and the user spoke last.
    pub tool_call: Option<ToolCall>,
    /// The request's output-token limit, if it set one.
    pub max_output_tokens: Option<u32>,
}

/// A tool call the mock makes: the first offered tool (or the one `tool_choice` names), with
/// arguments generated from its JSON schema.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub name: String,
    pub arguments: String,
}

const SKIPPED_KEYS: &[&str] = &[
    "role",
    "type",
    "id",
    "cache_control",
    "source",
    "image_url",
    "data",
];

/// Counts text bytes and hashes the text of one JSON value.
#[derive(Default)]
struct TextMeter {
    bytes: usize,
    hasher: DefaultHasher,
}

impl TextMeter {
    fn add(&mut self, value: &Value) {
        match value {
            Value::String(text) => {
                self.bytes += text.len();
                text.hash(&mut self.hasher);
            }
            Value::Array(items) => items.iter().for_each(|item| self.add(item)),
            Value::Object(fields) => {
                for (key, field) in fields {
                    if !SKIPPED_KEYS.contains(&key.as_str()) {
                        self.add(field);
                    }
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn tokens(&self) -> u32 {
        u32::try_from(self.bytes.div_ceil(4)).unwrap_or(u32::MAX)
    }
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.get(name).filter(|value| !value.is_null())
}

fn u32_field(body: &Value, name: &str) -> Option<u32> {
    field(body, name)
        .and_then(Value::as_u64)
        .map(|value| u32::try_from(value).unwrap_or(u32::MAX))
}

/// Measures a prompt made of `prefix_fields`, then all but the last item of `items`, then that
/// last item.
fn measure(
    model: &str,
    prefix_fields: &[Option<&Value>],
    items: Option<&Value>,
) -> (u32, u32, u64) {
    let mut meter = TextMeter::default();
    model.hash(&mut meter.hasher);
    for value in prefix_fields.iter().flatten() {
        meter.add(value);
    }
    let last = match items {
        Some(Value::Array(items)) => {
            if let Some((last, earlier)) = items.split_last() {
                earlier.iter().for_each(|item| meter.add(item));
                Some(last)
            } else {
                None
            }
        }
        Some(Value::String(_)) => items,
        _ => None,
    };
    let prefix_tokens = meter.tokens();
    let prefix_hash = meter.hasher.finish();
    if let Some(last) = last {
        meter.add(last);
    }
    (meter.tokens().max(1), prefix_tokens, prefix_hash)
}

fn contains_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(fields) => {
            fields.contains_key(key) || fields.values().any(|field| contains_key(field, key))
        }
        Value::Array(items) => items.iter().any(|item| contains_key(item, key)),
        _ => false,
    }
}

/// OpenAI Chat Completions. Caching applies when `prompt_cache_key` is set or the prompt has at
/// least 1,024 tokens, as OpenAI caches automatically from that size.
pub fn openai_chat(body: &Value, model: &str) -> Prompt {
    let messages = field(body, "messages");
    let tools = field(body, "tools");
    let (input_tokens, prefix_tokens, prefix_hash) = measure(model, &[tools], messages);
    let last_is_user = last_item(messages)
        .and_then(|message| message.get("role"))
        .and_then(Value::as_str)
        == Some("user");
    let tool_call = if last_is_user && !tool_choice_is_none(body) {
        chat_tool(body)
    } else {
        None
    };
    Prompt {
        input_tokens,
        prefix_tokens,
        prefix_hash,
        cache_requested: field(body, "prompt_cache_key").is_some() || input_tokens >= 1024,
        tool_call,
        max_output_tokens: u32_field(body, "max_completion_tokens")
            .or_else(|| u32_field(body, "max_tokens")),
    }
}

/// OpenAI Responses. Same caching rule as Chat Completions.
pub fn openai_responses(body: &Value, model: &str) -> Prompt {
    let input = field(body, "input");
    let (input_tokens, prefix_tokens, prefix_hash) = measure(
        model,
        &[field(body, "instructions"), field(body, "tools")],
        input,
    );
    let user_spoke_last = match input {
        Some(Value::String(_)) => true,
        Some(Value::Array(items)) => items.last().is_some_and(|item| {
            item.get("role").and_then(Value::as_str) == Some("user")
                && item
                    .get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|kind| kind == "message")
        }),
        _ => false,
    };
    let tool_call = if user_spoke_last && !tool_choice_is_none(body) {
        responses_tool(body)
    } else {
        None
    };
    Prompt {
        input_tokens,
        prefix_tokens,
        prefix_hash,
        cache_requested: field(body, "prompt_cache_key").is_some() || input_tokens >= 1024,
        tool_call,
        max_output_tokens: u32_field(body, "max_output_tokens"),
    }
}

/// Anthropic Messages. Caching applies when any `cache_control` marker is present.
pub fn anthropic(body: &Value, model: &str) -> Prompt {
    let messages = field(body, "messages");
    let tools = field(body, "tools");
    let system = field(body, "system");
    let (input_tokens, prefix_tokens, prefix_hash) = measure(model, &[tools, system], messages);
    let cache_requested = [tools, system, messages]
        .into_iter()
        .flatten()
        .any(|value| contains_key(value, "cache_control"));
    let user_spoke_last = last_item(messages).is_some_and(|message| {
        message.get("role").and_then(Value::as_str) == Some("user")
            && !is_only_tool_results(message.get("content"))
    });
    let tool_choice_none = body
        .get("tool_choice")
        .and_then(|choice| choice.get("type"))
        .and_then(Value::as_str)
        == Some("none");
    let tool_call = if user_spoke_last && !tool_choice_none {
        anthropic_tool(body)
    } else {
        None
    };
    Prompt {
        input_tokens,
        prefix_tokens,
        prefix_hash,
        cache_requested,
        tool_call,
        max_output_tokens: u32_field(body, "max_tokens"),
    }
}

fn last_item(items: Option<&Value>) -> Option<&Value> {
    items
        .and_then(Value::as_array)
        .and_then(|items| items.last())
}

fn is_only_tool_results(content: Option<&Value>) -> bool {
    match content {
        Some(Value::Array(blocks)) => {
            !blocks.is_empty()
                && blocks
                    .iter()
                    .all(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"))
        }
        _ => false,
    }
}

fn tool_choice_is_none(body: &Value) -> bool {
    body.get("tool_choice").and_then(Value::as_str) == Some("none")
}

fn chat_tool(body: &Value) -> Option<ToolCall> {
    let tools = field(body, "tools")?.as_array()?;
    let wanted = body
        .get("tool_choice")
        .and_then(|choice| choice.get("function"))
        .and_then(|function| function.get("name"))
        .and_then(Value::as_str);
    let function = tools
        .iter()
        .filter_map(|tool| tool.get("function"))
        .find(|function| {
            wanted.is_none() || function.get("name").and_then(Value::as_str) == wanted
        })?;
    make_call(function.get("name")?.as_str()?, function.get("parameters"))
}

fn responses_tool(body: &Value) -> Option<ToolCall> {
    let tools = field(body, "tools")?.as_array()?;
    let wanted = body
        .get("tool_choice")
        .and_then(|choice| choice.get("name"))
        .and_then(Value::as_str);
    let tool = tools.iter().find(|tool| {
        tool.get("type").and_then(Value::as_str) == Some("function")
            && (wanted.is_none() || tool.get("name").and_then(Value::as_str) == wanted)
    })?;
    make_call(tool.get("name")?.as_str()?, tool.get("parameters"))
}

fn anthropic_tool(body: &Value) -> Option<ToolCall> {
    let tools = field(body, "tools")?.as_array()?;
    let wanted = body
        .get("tool_choice")
        .filter(|choice| choice.get("type").and_then(Value::as_str) == Some("tool"))
        .and_then(|choice| choice.get("name"))
        .and_then(Value::as_str);
    let tool = tools.iter().find(|tool| {
        tool.get("input_schema").is_some()
            && (wanted.is_none() || tool.get("name").and_then(Value::as_str) == wanted)
    })?;
    make_call(tool.get("name")?.as_str()?, tool.get("input_schema"))
}

fn make_call(name: &str, schema: Option<&Value>) -> Option<ToolCall> {
    let arguments = serde_json::to_string(&arguments_for(schema)).ok()?;
    Some(ToolCall {
        name: name.to_owned(),
        arguments,
    })
}

/// Arguments that satisfy a simple JSON schema: every declared property gets the first `enum`
/// value, or a fixed value of its type.
fn arguments_for(schema: Option<&Value>) -> Value {
    let mut arguments = Map::new();
    if let Some(properties) = schema
        .and_then(|schema| schema.get("properties"))
        .and_then(Value::as_object)
    {
        for (name, property) in properties {
            arguments.insert(name.clone(), example_value(property));
        }
    }
    Value::Object(arguments)
}

fn example_value(property: &Value) -> Value {
    if let Some(first) = property
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return first.clone();
    }
    match property.get("type").and_then(Value::as_str) {
        Some("integer") => Value::from(1),
        Some("number") => Value::from(1.5),
        Some("boolean") => Value::Bool(true),
        Some("array") => Value::Array(Vec::new()),
        Some("object") => arguments_for(Some(property)),
        Some("null") => Value::Null,
        _ => Value::from("mock"),
    }
}

/// Embedding inputs: the number of inputs and the tokens they hold (token arrays count one per
/// element, strings by the byte rule).
pub fn embedding_inputs(input: Option<&Value>) -> Vec<(u32, u64)> {
    fn one(value: &Value) -> (u32, u64) {
        match value {
            Value::Array(tokens) => (
                u32::try_from(tokens.len()).unwrap_or(u32::MAX),
                hash_of(value),
            ),
            other => {
                let mut meter = TextMeter::default();
                meter.add(other);
                (meter.tokens().max(1), meter.hasher.finish())
            }
        }
    }
    match input {
        Some(Value::Array(items))
            if items.iter().all(|item| item.is_string() || item.is_array()) =>
        {
            items.iter().map(one).collect()
        }
        Some(value) => vec![one(value)],
        None => Vec::new(),
    }
}

fn hash_of(value: &Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tokens_are_text_bytes_over_four() {
        let body = json!({"messages": [
            {"role": "system", "content": "12345678"},
            {"role": "user", "content": [{"type": "text", "text": "1234"}]}
        ]});
        let prompt = openai_chat(&body, "m");
        assert_eq!(prompt.input_tokens, 3);
        assert_eq!(prompt.prefix_tokens, 2);
        assert!(!prompt.cache_requested);
        assert!(prompt.tool_call.is_none());
    }

    #[test]
    fn prefix_hash_ignores_the_last_message() {
        let first = json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]});
        let second = json!({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "c"}]});
        assert_eq!(
            openai_chat(&first, "m").prefix_hash,
            openai_chat(&second, "m").prefix_hash
        );
        assert_ne!(
            openai_chat(&first, "m").prefix_hash,
            openai_chat(&first, "n").prefix_hash
        );
    }

    #[test]
    fn tool_arguments_follow_the_schema() {
        let body = json!({
            "messages": [{"role": "user", "content": "weather?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}, "days": {"type": "integer"}}
            }}}]
        });
        let call = openai_chat(&body, "m").tool_call.expect("a tool call");
        assert_eq!(call.name, "get_weather");
        let arguments: Value = serde_json::from_str(&call.arguments).expect("JSON arguments");
        assert_eq!(
            arguments,
            json!({"city": "mock", "unit": "celsius", "days": 1})
        );
    }

    #[test]
    fn anthropic_tool_results_get_a_text_answer() {
        let body = json!({
            "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}],
            "tools": [{"name": "lookup", "input_schema": {"type": "object"}}],
            "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}]
        });
        let prompt = anthropic(&body, "m");
        assert!(prompt.tool_call.is_none());
        assert!(prompt.cache_requested);
    }
}
