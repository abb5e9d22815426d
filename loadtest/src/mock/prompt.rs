//! What the mock reads from a request body: prompt size, the cacheable prefix, and whether to
//! answer with a tool call.
//!
//! A test can script the tool call: a user message whose text holds
//! `MOCK_TOOL_CALL <tool-name> <arguments>` (see [`TOOL_CALL_MARKER`] and the README) is answered
//! with a call to that tool with exactly those arguments, and once a tool result follows, with the
//! text [`FINAL_ANSWER_MARKER`] followed by the tool's name and result.
//!
//! Token counts are deterministic so tests can predict them: a prompt's tokens are the UTF-8
//! bytes of its text-like strings divided by four, rounded up (at least 1). Text-like strings are
//! every string value inside the prompt fields except the values of `role`, `type`, `id`,
//! `cache_control`, `source`, `image_url`, `data`, and Gemini's `mimeType`, `fileUri` and
//! `thoughtSignature`, which are structure or binary payloads.
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
    /// A scripted text answer (the final turn of a [`TOOL_CALL_MARKER`] script), sent instead
    /// of generated words.
    pub reply: Option<String>,
}

/// A tool call the mock makes: the first offered tool (or the one `tool_choice` names), with
/// arguments generated from its JSON schema.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub name: String,
    /// JSON arguments, or for a freeform tool its raw input.
    pub arguments: String,
    /// A Responses `custom` (freeform) tool: answered with a `custom_tool_call` item.
    pub freeform: bool,
}

/// Starts a scripted tool call in a user message's text: `MOCK_TOOL_CALL <tool-name>
/// <arguments>`, the arguments running to the end of that text (trimmed). They are sent as
/// written: JSON arguments for a function tool, the raw input for a Responses custom tool; text
/// that is not a JSON object, for a function whose schema has exactly one string property (as the
/// gateway makes of a custom tool), becomes that property's value. The script applies only when
/// the request offers a tool of that name (otherwise the answer is generated text, not the
/// first tool).
pub const TOOL_CALL_MARKER: &str = "MOCK_TOOL_CALL";

/// Starts the text that answers the tool result of a scripted call:
/// `MOCK_FINAL_ANSWER after <tool-name>: <the result's text, whitespace collapsed>`.
pub const FINAL_ANSWER_MARKER: &str = "MOCK_FINAL_ANSWER";

/// Longest excerpt of a tool result that the final answer echoes, in characters.
const RESULT_ECHO_CHARS: usize = 400;

/// A `MOCK_TOOL_CALL` script read from a user message.
#[derive(Debug, PartialEq, Eq)]
struct Script {
    name: String,
    arguments: String,
}

/// Reads the script in `text`, if it holds one.
fn parse_script(text: &str) -> Option<Script> {
    let (_, rest) = text.split_once(TOOL_CALL_MARKER)?;
    let rest = rest.strip_prefix(char::is_whitespace)?.trim_start();
    let (name, arguments) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    (!name.is_empty()).then(|| Script {
        name: name.to_owned(),
        arguments: arguments.trim().to_owned(),
    })
}

/// What a script makes of this turn.
enum Scripted {
    Call(ToolCall),
    Reply(String),
    /// A script is present but asks for nothing now (its tool is not offered, or neither its
    /// message nor a tool result is last): generated text.
    Text,
}

impl Scripted {
    /// Sets the prompt's tool call or reply from the script, or by `unscripted` without one.
    fn apply(
        scripted: Option<Self>,
        unscripted: impl FnOnce() -> Option<ToolCall>,
    ) -> (Option<ToolCall>, Option<String>) {
        match scripted {
            None => (unscripted(), None),
            Some(Self::Call(call)) => (Some(call), None),
            Some(Self::Reply(reply)) => (None, Some(reply)),
            Some(Self::Text) => (None, None),
        }
    }
}

/// The plain text of a message's content, a tool result or its output: a string, or the `text`
/// (or nested `content`/`output`) of the parts of an array.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().map(text_of).collect::<Vec<_>>().join("\n"),
        Value::Object(fields) => ["text", "content", "output"]
            .iter()
            .find_map(|key| fields.get(*key))
            .map(text_of)
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The text of a message's user-written parts (text, `input_text`), leaving out tool results.
fn user_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|part| {
                part.get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|kind| kind == "text" || kind == "input_text")
            })
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The final answer to a scripted call's tool result.
fn final_answer(script: &Script, result: &str) -> String {
    let collapsed = result.split_whitespace().collect::<Vec<_>>().join(" ");
    let excerpt: String = collapsed.chars().take(RESULT_ECHO_CHARS).collect();
    format!("{FINAL_ANSWER_MARKER} after {}: {excerpt}", script.name)
}

/// The arguments a script sends to a function tool with `schema`.
fn fit_arguments(arguments: &str, schema: Option<&Value>) -> String {
    if serde_json::from_str::<Map<String, Value>>(arguments).is_ok() {
        return arguments.to_owned();
    }
    let properties = schema
        .and_then(|schema| schema.get("properties"))
        .and_then(Value::as_object);
    match properties.map(|properties| properties.iter().collect::<Vec<_>>()) {
        Some(only) if only.len() == 1 && schema_type(only[0].1).as_deref() == Some("string") => {
            let mut wrapped = Map::new();
            wrapped.insert(only[0].0.clone(), Value::from(arguments));
            Value::Object(wrapped).to_string()
        }
        _ => arguments.to_owned(),
    }
}

/// Decides a scripted turn. `script` is the latest user message holding a script, with its
/// position; `last` is the position of the last item; `tool_result` is the last item's tool
/// result text when it is one; `offered` finds the script's tool among the request's tools.
fn decide(
    script: Option<(usize, Script)>,
    last: usize,
    tool_result: Option<String>,
    tools_allowed: bool,
    offered: impl FnOnce(&str, &str) -> Option<ToolCall>,
) -> Option<Scripted> {
    let (position, script) = script?;
    if let Some(result) = tool_result {
        return Some(Scripted::Reply(final_answer(&script, &result)));
    }
    if position != last || !tools_allowed {
        return Some(Scripted::Text);
    }
    Some(offered(&script.name, &script.arguments).map_or(Scripted::Text, Scripted::Call))
}

/// The last item that is not a system or developer message, with its position: instructions a
/// client places after the latest turn (Claude Code sends a `system` message last) do not hide
/// whose turn it is.
fn last_turn(items: &[Value]) -> Option<(usize, &Value)> {
    items.iter().enumerate().rev().find(|(_, item)| {
        !matches!(
            item.get("role").and_then(Value::as_str),
            Some("system" | "developer")
        )
    })
}

/// The latest of `items` that `is_user` accepts and whose user text (in `content_key`:
/// `content`, or Gemini's `parts`) holds a script.
fn find_script(
    items: &[Value],
    content_key: &str,
    is_user: impl Fn(&Value) -> bool,
) -> Option<(usize, Script)> {
    items.iter().enumerate().rev().find_map(|(position, item)| {
        if !is_user(item) {
            return None;
        }
        parse_script(&user_text(item.get(content_key))).map(|script| (position, script))
    })
}

const SKIPPED_KEYS: &[&str] = &[
    "role",
    "type",
    "id",
    "cache_control",
    "source",
    "image_url",
    "data",
    "mimeType",
    "fileUri",
    "thoughtSignature",
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

/// A field of a Gemini (protobuf JSON) object by its lowerCamelCase name, or by the proto's own
/// snake_case name, which Google's JSON parser accepts too (the `google-genai` Python SDK sends
/// `thinkingConfig`'s fields that way).
pub fn proto_field<'a>(object: &'a Value, camel_name: &str) -> Option<&'a Value> {
    field(object, camel_name).or_else(|| {
        let mut snake_name = String::with_capacity(camel_name.len() + 4);
        for character in camel_name.chars() {
            if character.is_ascii_uppercase() {
                snake_name.push('_');
            }
            snake_name.push(character.to_ascii_lowercase());
        }
        field(object, &snake_name)
    })
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
    let (tool_call, reply) = Scripted::apply(chat_script(body), || {
        if last_is_user && !tool_choice_is_none(body) {
            chat_tool(body)
        } else {
            None
        }
    });
    Prompt {
        input_tokens,
        prefix_tokens,
        prefix_hash,
        cache_requested: field(body, "prompt_cache_key").is_some() || input_tokens >= 1024,
        tool_call,
        max_output_tokens: u32_field(body, "max_completion_tokens")
            .or_else(|| u32_field(body, "max_tokens")),
        reply,
    }
}

fn chat_script(body: &Value) -> Option<Scripted> {
    let messages = field(body, "messages")?.as_array()?;
    let role = |message: &Value| {
        message
            .get("role")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let script = find_script(messages, "content", |message| {
        role(message).as_deref() == Some("user")
    });
    let (last_position, last) = last_turn(messages)?;
    let tool_result = (role(last).as_deref() == Some("tool"))
        .then(|| last.get("content").map(text_of).unwrap_or_default());
    decide(
        script,
        last_position,
        tool_result,
        !tool_choice_is_none(body),
        |name, arguments| {
            let function = field(body, "tools")?
                .as_array()?
                .iter()
                .filter_map(|tool| tool.get("function"))
                .find(|function| function.get("name").and_then(Value::as_str) == Some(name))?;
            Some(ToolCall {
                name: name.to_owned(),
                arguments: fit_arguments(arguments, function.get("parameters")),
                freeform: false,
            })
        },
    )
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
    let (tool_call, reply) = Scripted::apply(responses_script(body), || {
        if user_spoke_last && !tool_choice_is_none(body) {
            responses_tool(body)
        } else {
            None
        }
    });
    Prompt {
        input_tokens,
        prefix_tokens,
        prefix_hash,
        cache_requested: field(body, "prompt_cache_key").is_some() || input_tokens >= 1024,
        tool_call,
        max_output_tokens: u32_field(body, "max_output_tokens"),
        reply,
    }
}

fn responses_script(body: &Value) -> Option<Scripted> {
    let single;
    let items = match field(body, "input")? {
        Value::String(text) => {
            single = [serde_json::json!({"role": "user", "content": text})];
            &single[..]
        }
        Value::Array(items) => items,
        _ => return None,
    };
    let script = find_script(items, "content", |item| {
        item.get("role").and_then(Value::as_str) == Some("user")
            && item
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(|kind| kind == "message")
    });
    let (last_position, last) = last_turn(items)?;
    let tool_result = last
        .get("type")
        .and_then(Value::as_str)
        .filter(|kind| matches!(*kind, "function_call_output" | "custom_tool_call_output"))
        .map(|_| last.get("output").map(text_of).unwrap_or_default());
    decide(
        script,
        last_position,
        tool_result,
        !tool_choice_is_none(body),
        |name, arguments| {
            let tool = field(body, "tools")?
                .as_array()?
                .iter()
                .find(|tool| tool.get("name").and_then(Value::as_str) == Some(name))?;
            let freeform = tool.get("type").and_then(Value::as_str) == Some("custom");
            Some(ToolCall {
                name: name.to_owned(),
                arguments: if freeform {
                    arguments.to_owned()
                } else {
                    fit_arguments(arguments, tool.get("parameters"))
                },
                freeform,
            })
        },
    )
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
    let (tool_call, reply) = Scripted::apply(anthropic_script(body, !tool_choice_none), || {
        if user_spoke_last && !tool_choice_none {
            anthropic_tool(body)
        } else {
            None
        }
    });
    Prompt {
        input_tokens,
        prefix_tokens,
        prefix_hash,
        cache_requested,
        tool_call,
        max_output_tokens: u32_field(body, "max_tokens"),
        reply,
    }
}

fn anthropic_script(body: &Value, tools_allowed: bool) -> Option<Scripted> {
    let messages = field(body, "messages")?.as_array()?;
    let script = find_script(messages, "content", |message| {
        message.get("role").and_then(Value::as_str) == Some("user")
    });
    let (last_position, last) = last_turn(messages)?;
    let results: Vec<&Value> = last
        .get("content")
        .and_then(Value::as_array)
        .map(|blocks| {
            blocks
                .iter()
                .filter(|block| block.get("type").and_then(Value::as_str) == Some("tool_result"))
                .collect()
        })
        .unwrap_or_default();
    let tool_result = (!results.is_empty()).then(|| {
        results
            .iter()
            .map(|block| block.get("content").map(text_of).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    });
    decide(
        script,
        last_position,
        tool_result,
        tools_allowed,
        |name, arguments| {
            let tool = field(body, "tools")?
                .as_array()?
                .iter()
                .find(|tool| tool.get("name").and_then(Value::as_str) == Some(name))?;
            Some(ToolCall {
                name: name.to_owned(),
                arguments: fit_arguments(arguments, tool.get("input_schema")),
                freeform: false,
            })
        },
    )
}

/// Gemini `generateContent`; `model` comes from the URL path. Caching applies when the request
/// names a `cachedContent` or the prompt has at least 1,024 tokens, as Gemini 2.5 caches
/// implicitly from that size.
pub fn gemini(body: &Value, model: &str) -> Prompt {
    let contents = field(body, "contents");
    let (input_tokens, prefix_tokens, prefix_hash) = measure(
        model,
        &[proto_field(body, "systemInstruction"), field(body, "tools")],
        contents,
    );
    let user_spoke_last = last_item(contents).is_some_and(|content| {
        is_gemini_user(content) && gemini_function_responses(content).is_empty()
    });
    let mode = gemini_calling_mode(body);
    let tools_allowed = mode.as_deref() != Some("NONE");
    let (tool_call, reply) = Scripted::apply(gemini_script(body, tools_allowed), || {
        if user_spoke_last && tools_allowed {
            gemini_tool(body, mode.as_deref())
        } else {
            None
        }
    });
    Prompt {
        input_tokens,
        prefix_tokens,
        prefix_hash,
        cache_requested: proto_field(body, "cachedContent").is_some() || input_tokens >= 1024,
        tool_call,
        max_output_tokens: proto_field(body, "generationConfig")
            .and_then(|config| proto_field(config, "maxOutputTokens"))
            .and_then(Value::as_u64)
            .map(|value| u32::try_from(value).unwrap_or(u32::MAX)),
        reply,
    }
}

/// A Gemini content written by the user: role `user`, or no role (single-turn requests may omit
/// it). Function results arrive in `user` contents too (older clients use role `function`).
fn is_gemini_user(content: &Value) -> bool {
    matches!(
        content.get("role").and_then(Value::as_str),
        None | Some("user" | "function")
    )
}

/// The `functionResponse` parts of a Gemini content.
fn gemini_function_responses(content: &Value) -> Vec<&Value> {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .filter_map(|part| proto_field(part, "functionResponse"))
                .collect()
        })
        .unwrap_or_default()
}

/// The text of a `functionResponse.response`: its `output`, `result`, `content` or `text` (the
/// names SDKs and gateways wrap a result in), else its only field, else its JSON.
fn gemini_result_text(function_response: &Value) -> String {
    let Some(response) = function_response.get("response") else {
        return String::new();
    };
    let Value::Object(fields) = response else {
        return text_of(response);
    };
    let wrapped = ["output", "result", "content", "text"]
        .iter()
        .find_map(|key| fields.get(*key))
        .or_else(|| {
            (fields.len() == 1)
                .then(|| fields.values().next())
                .flatten()
        });
    match wrapped {
        Some(Value::String(text)) => text.clone(),
        Some(value @ (Value::Array(_) | Value::Object(_))) if !text_of(value).is_empty() => {
            text_of(value)
        }
        Some(value) => value.to_string(),
        None => response.to_string(),
    }
}

/// `toolConfig.functionCallingConfig.mode` (`AUTO`, `ANY`, `NONE`, `VALIDATED`), upper-cased.
fn gemini_calling_mode(body: &Value) -> Option<String> {
    proto_field(body, "toolConfig")
        .and_then(|config| proto_field(config, "functionCallingConfig"))
        .and_then(|config| config.get("mode"))
        .and_then(Value::as_str)
        .map(str::to_ascii_uppercase)
}

/// Every function declaration of a Gemini request, in order.
fn gemini_declarations(body: &Value) -> Vec<&Value> {
    field(body, "tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|tool| proto_field(tool, "functionDeclarations"))
                .filter_map(Value::as_array)
                .flatten()
                .collect()
        })
        .unwrap_or_default()
}

/// A declaration's parameter schema: the OpenAPI-style `parameters` or `parametersJsonSchema`.
fn gemini_parameters(declaration: &Value) -> Option<&Value> {
    field(declaration, "parameters").or_else(|| proto_field(declaration, "parametersJsonSchema"))
}

fn gemini_script(body: &Value, tools_allowed: bool) -> Option<Scripted> {
    let contents = field(body, "contents")?.as_array()?;
    let script = find_script(contents, "parts", is_gemini_user);
    let (last_position, last) = last_turn(contents)?;
    let results = gemini_function_responses(last);
    let tool_result = (!results.is_empty()).then(|| {
        results
            .iter()
            .map(|response| gemini_result_text(response))
            .collect::<Vec<_>>()
            .join("\n")
    });
    decide(
        script,
        last_position,
        tool_result,
        tools_allowed,
        |name, arguments| {
            let declaration = gemini_declarations(body).into_iter().find(|declaration| {
                declaration.get("name").and_then(Value::as_str) == Some(name)
            })?;
            Some(ToolCall {
                name: name.to_owned(),
                arguments: fit_arguments(arguments, gemini_parameters(declaration)),
                freeform: false,
            })
        },
    )
}

/// The first declared function, or with mode `ANY` and `allowedFunctionNames` the first allowed.
fn gemini_tool(body: &Value, mode: Option<&str>) -> Option<ToolCall> {
    let allowed: Vec<&str> = proto_field(body, "toolConfig")
        .and_then(|config| proto_field(config, "functionCallingConfig"))
        .and_then(|config| proto_field(config, "allowedFunctionNames"))
        .and_then(Value::as_array)
        .filter(|_| mode == Some("ANY"))
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let declaration = gemini_declarations(body).into_iter().find(|declaration| {
        allowed.is_empty()
            || declaration
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| allowed.contains(&name))
    })?;
    make_call(
        declaration.get("name")?.as_str()?,
        gemini_parameters(declaration),
    )
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
        freeform: false,
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

/// A schema's `type`, lower-cased: Gemini's OpenAPI-style schemas spell it `STRING`, `OBJECT`.
fn schema_type(schema: &Value) -> Option<String> {
    schema
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
}

fn example_value(property: &Value) -> Value {
    if let Some(first) = property
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|values| values.first())
    {
        return first.clone();
    }
    match schema_type(property).as_deref() {
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

    #[test]
    fn scripts_parse_from_the_marker_to_the_end() {
        assert_eq!(
            parse_script("please\nMOCK_TOOL_CALL Write {\"file_path\": \"/a\"}\n"),
            Some(Script {
                name: "Write".to_owned(),
                arguments: "{\"file_path\": \"/a\"}".to_owned(),
            })
        );
        let patch = "MOCK_TOOL_CALL apply_patch\n*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n";
        assert_eq!(
            parse_script(patch).map(|script| script.arguments),
            Some("*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch".to_owned())
        );
        assert_eq!(
            parse_script("MOCK_TOOL_CALL lonely").map(|script| script.arguments),
            Some(String::new())
        );
        assert_eq!(parse_script("MOCK_TOOL_CALL"), None);
        assert_eq!(parse_script("MOCK_TOOL_CALLS x {}"), None);
        assert_eq!(parse_script("no script here"), None);
    }

    fn chat_tools() -> Value {
        json!([
            {"type": "function", "function": {"name": "first", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}},
            {"type": "function", "function": {"name": "write", "parameters": {"type": "object", "properties": {"path": {"type": "string"}, "text": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "apply_patch", "parameters": {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}}}
        ])
    }

    #[test]
    fn chat_scripts_call_the_named_tool_then_answer_the_result() {
        let script = "MOCK_TOOL_CALL write {\"path\":\"a.txt\",\"text\":\"hi\"}";
        let body = json!({"tools": chat_tools(), "messages": [
            {"role": "system", "content": "be useful"},
            {"role": "user", "content": [{"type": "text", "text": script}]}
        ]});
        let call = openai_chat(&body, "m")
            .tool_call
            .expect("the scripted call");
        assert_eq!(call.name, "write");
        assert_eq!(call.arguments, "{\"path\":\"a.txt\",\"text\":\"hi\"}");
        assert!(!call.freeform);

        let after = json!({"tools": chat_tools(), "messages": [
            {"role": "user", "content": script},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "write", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "File   written:\n a.txt"}
        ]});
        let prompt = openai_chat(&after, "m");
        assert!(prompt.tool_call.is_none());
        assert_eq!(
            prompt.reply.as_deref(),
            Some("MOCK_FINAL_ANSWER after write: File written: a.txt")
        );
    }

    #[test]
    fn raw_text_fills_a_single_string_parameter() {
        let body = json!({"tools": chat_tools(), "messages": [
            {"role": "user", "content": "MOCK_TOOL_CALL apply_patch *** Begin Patch\n*** End Patch"}
        ]});
        let call = openai_chat(&body, "m")
            .tool_call
            .expect("the scripted call");
        assert_eq!(call.name, "apply_patch");
        let arguments: Value = serde_json::from_str(&call.arguments).expect("JSON arguments");
        assert_eq!(
            arguments,
            json!({"input": "*** Begin Patch\n*** End Patch"})
        );
    }

    #[test]
    fn a_script_naming_a_tool_not_offered_gets_text() {
        let body = json!({"tools": chat_tools(), "messages": [
            {"role": "user", "content": "MOCK_TOOL_CALL missing {}"}
        ]});
        let prompt = openai_chat(&body, "m");
        assert!(prompt.tool_call.is_none());
        assert!(prompt.reply.is_none());
        let unscripted =
            json!({"tools": chat_tools(), "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(
            openai_chat(&unscripted, "m")
                .tool_call
                .map(|call| call.name),
            Some("first".to_owned())
        );
    }

    #[test]
    fn responses_scripts_call_custom_tools_with_raw_input() {
        let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch";
        let tools = json!([
            {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}},
            {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "start: x"}}
        ]);
        let body = json!({"tools": tools, "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "<environment_context/>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("MOCK_TOOL_CALL apply_patch\n{patch}\n")}]}
        ]});
        let call = openai_responses(&body, "m")
            .tool_call
            .expect("the scripted call");
        assert!(call.freeform);
        assert_eq!(call.name, "apply_patch");
        assert_eq!(call.arguments, patch);

        let mut after = body.clone();
        let input = after["input"].as_array_mut().expect("input items");
        input.push(json!({"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": patch}));
        input.push(json!({"type": "custom_tool_call_output", "call_id": "c1", "output": "Success. Updated the following files:\nA a.txt\n"}));
        let prompt = openai_responses(&after, "m");
        assert!(prompt.tool_call.is_none());
        assert_eq!(
            prompt.reply.as_deref(),
            Some(
                "MOCK_FINAL_ANSWER after apply_patch: Success. Updated the following files: A a.txt"
            )
        );
    }

    #[test]
    fn anthropic_scripts_answer_tool_results_next_to_text() {
        let tools = json!([
            {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
            {"name": "Write", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}}}}
        ]);
        let script = "MOCK_TOOL_CALL Write {\"file_path\":\"/w/a.txt\",\"content\":\"hi\\n\"}";
        let body = json!({"tools": tools, "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>context</system-reminder>"},
                {"type": "text", "text": script}
            ]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment"}]}
        ]});
        let call = anthropic(&body, "m").tool_call.expect("the scripted call");
        assert_eq!(call.name, "Write");
        assert_eq!(
            serde_json::from_str::<Value>(&call.arguments).expect("JSON"),
            json!({"file_path": "/w/a.txt", "content": "hi\n"})
        );

        let after = json!({"tools": tools, "messages": [
            {"role": "user", "content": script},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Write", "input": {}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "File created"}]},
                {"type": "text", "text": "<system-reminder>more</system-reminder>"}
            ]}
        ]});
        let prompt = anthropic(&after, "m");
        assert!(prompt.tool_call.is_none());
        assert_eq!(
            prompt.reply.as_deref(),
            Some("MOCK_FINAL_ANSWER after Write: File created")
        );
    }

    fn gemini_tools() -> Value {
        json!([{"functionDeclarations": [
            {"name": "first", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}}},
            {"name": "write", "parametersJsonSchema": {"type": "object", "properties": {"path": {"type": "string"}}}},
            {"name": "apply_patch", "parameters": {"type": "OBJECT", "properties": {"input": {"type": "STRING"}}}}
        ]}])
    }

    #[test]
    fn gemini_reads_parts_system_instruction_and_declarations() {
        let body = json!({
            "systemInstruction": {"parts": [{"text": "12345678"}]},
            "contents": [{"role": "user", "parts": [{"text": "1234"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]}],
            "generationConfig": {"maxOutputTokens": 5}
        });
        let prompt = gemini(&body, "m");
        assert_eq!(prompt.input_tokens, 3);
        assert_eq!(prompt.prefix_tokens, 2);
        assert_eq!(prompt.max_output_tokens, Some(5));
        assert!(prompt.tool_call.is_none());

        let with_tools =
            json!({"tools": gemini_tools(), "contents": [{"parts": [{"text": "hi"}]}]});
        let call = gemini(&with_tools, "m").tool_call.expect("a call");
        assert_eq!(call.name, "first");
        assert_eq!(call.arguments, "{\"a\":1}");
        let mut none = with_tools.clone();
        none["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
        assert!(gemini(&none, "m").tool_call.is_none());
        let mut any = with_tools;
        any["toolConfig"] =
            json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["write"]}});
        assert_eq!(
            gemini(&any, "m").tool_call.map(|call| call.name),
            Some("write".to_owned())
        );
    }

    #[test]
    fn gemini_scripts_call_then_answer_the_function_response() {
        let script = "MOCK_TOOL_CALL apply_patch *** Begin Patch\n*** End Patch";
        let body = json!({"tools": gemini_tools(), "contents": [
            {"role": "user", "parts": [{"text": "context"}, {"text": script}]}
        ]});
        let call = gemini(&body, "m").tool_call.expect("the scripted call");
        assert_eq!(call.name, "apply_patch");
        assert_eq!(
            serde_json::from_str::<Value>(&call.arguments).expect("JSON"),
            json!({"input": "*** Begin Patch\n*** End Patch"})
        );

        let after = json!({"tools": gemini_tools(), "contents": [
            {"role": "user", "parts": [{"text": script}]},
            {"role": "model", "parts": [{"functionCall": {"name": "apply_patch", "args": {}}, "thoughtSignature": "c2ln"}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "apply_patch", "response": {"output": "Done:\n  A a.txt"}}}]}
        ]});
        let prompt = gemini(&after, "m");
        assert!(prompt.tool_call.is_none());
        assert_eq!(
            prompt.reply.as_deref(),
            Some("MOCK_FINAL_ANSWER after apply_patch: Done: A a.txt")
        );
        assert_eq!(gemini_result_text(&json!({"response": {"files": 2}})), "2");
        assert_eq!(
            gemini_result_text(&json!({"response": {"a": 1, "b": 2}})),
            "{\"a\":1,\"b\":2}"
        );
    }
}
