//! Gemini wire to IR.

use serde_json::{Map, Value};

use super::wire;
use crate::translate::ir::{
    Block, DocumentSource, Effort, Extra, ImageSource, InstructionRole, Message, Reasoning,
    Request, Response, ResponseFormat, Role, SamplingParams, SystemBlock, Tool, ToolChoice,
};
use crate::translate::json::{parse_request, parse_upstream, unknown_fields};
use crate::translate::{Dialect, TranslateError};

/// Calls seen and not yet answered, oldest first, to pair `functionResponse`s that carry no id.
#[derive(Default)]
pub(super) struct OpenCalls(Vec<(String, String)>);

impl OpenCalls {
    fn answer(&mut self, name: &str, id: Option<&str>) -> Option<String> {
        let position = match id {
            Some(id) => self.0.iter().position(|(_, open)| open == id),
            None => self.0.iter().position(|(open, _)| open == name),
        }?;
        Some(self.0.remove(position).1)
    }
}

fn bad(field: String, message: &str) -> TranslateError {
    TranslateError::bad_request(field, message)
}

/// A member of `generationConfig` in either spelling.
fn member<'a>(config: &'a Map<String, Value>, camel: &str, snake: &str) -> Option<&'a Value> {
    config
        .get(camel)
        .or_else(|| config.get(snake))
        .filter(|value| !value.is_null())
}

pub fn request(body: &[u8]) -> Result<Request, TranslateError> {
    let wire: wire::GenerateContentRequest = parse_request(body)?;
    let mut extra = unknown_fields(body, wire::REQUEST_FIELDS)?;
    let system = wire
        .system_instruction
        .map(|content| {
            content
                .parts
                .into_iter()
                .filter_map(|part| part.text)
                .map(|text| SystemBlock {
                    role: InstructionRole::System,
                    text,
                    cache_control: None,
                })
                .collect()
        })
        .unwrap_or_default();
    let mut open = OpenCalls::default();
    let mut messages = Vec::with_capacity(wire.contents.len());
    for (position, content) in wire.contents.into_iter().enumerate() {
        let role = match content.role.as_deref() {
            None | Some("user" | "function" | "tool") => Role::User,
            Some("model") => Role::Assistant,
            Some(_) => {
                return Err(bad(
                    format!("contents[{position}].role"),
                    "must be `user` or `model`",
                ));
            }
        };
        let scope = format!("{position}");
        let content = blocks(content.parts, &scope, Some(&mut open));
        messages.push(Message { role, content });
    }
    let mut tools = Vec::new();
    for (position, tool) in wire.tools.unwrap_or_default().into_iter().enumerate() {
        for (name, value) in tool {
            if matches!(
                name.as_str(),
                "functionDeclarations" | "function_declarations"
            ) {
                let Value::Array(declarations) = value else {
                    return Err(bad(format!("tools[{position}].{name}"), "must be an array"));
                };
                for (index, declaration) in declarations.iter().enumerate() {
                    tools.push(function_tool(declaration).ok_or_else(|| {
                        bad(
                            format!("tools[{position}].{name}[{index}].name"),
                            "a function declaration needs a name",
                        )
                    })?);
                }
            } else {
                let mut raw = Map::new();
                raw.insert(name, value);
                tools.push(Tool::Unknown {
                    dialect: Dialect::Gemini,
                    raw: Value::Object(raw),
                });
            }
        }
    }
    let tool_config_raw = serde_json::from_slice::<Map<String, Value>>(body)
        .ok()
        .and_then(|members| {
            members
                .get("toolConfig")
                .or_else(|| members.get("tool_config"))
                .cloned()
        });
    let tool_choice = wire
        .tool_config
        .and_then(|config| config.function_calling_config)
        .and_then(|config| {
            let names = config.allowed_function_names.unwrap_or_default();
            let forced_one = names.len() == 1
                && config
                    .mode
                    .as_deref()
                    .is_some_and(|mode| mode.eq_ignore_ascii_case("ANY"));
            // A list of allowed functions other than one forced call has no place in the
            // representation: kept raw, so a dialect that cannot restrict calls reports it.
            if !names.is_empty()
                && !forced_one
                && let Some(raw) = &tool_config_raw
            {
                extra.insert("toolConfig".to_owned(), raw.clone());
            }
            match config
                .mode
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                Some("ANY") if names.len() == 1 => Some(ToolChoice::Named(names[0].clone())),
                Some("ANY") => Some(ToolChoice::Required),
                Some("NONE") => Some(ToolChoice::None),
                Some("AUTO" | "VALIDATED") => Some(ToolChoice::Auto),
                _ => None,
            }
        });
    let config = wire.generation_config.unwrap_or_default();
    for (name, value) in &config {
        if !wire::GENERATION_FIELDS.contains(&name.as_str()) {
            extra.insert(format!("generationConfig.{name}"), value.clone());
        }
    }
    let number = |camel: &str, snake: &str| member(&config, camel, snake).and_then(Value::as_f64);
    let count = |camel: &str, snake: &str| member(&config, camel, snake).and_then(Value::as_u64);
    let stop = match member(&config, "stopSequences", "stop_sequences") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let mime = member(&config, "responseMimeType", "response_mime_type").and_then(Value::as_str);
    let schema = member(&config, "responseJsonSchema", "response_json_schema")
        .cloned()
        .or_else(|| {
            member(&config, "responseSchema", "response_schema").map(openapi_to_json_schema)
        });
    let response_format = match (mime, schema) {
        (_, Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: "response".to_owned(),
            schema,
            strict: None,
            description: None,
        }),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        _ => None,
    };
    let reasoning = match member(&config, "thinkingConfig", "thinking_config") {
        Some(value) => {
            let thinking: wire::ThinkingConfig =
                serde_json::from_value(value.clone()).map_err(|error| {
                    bad("generationConfig.thinkingConfig".into(), &error.to_string())
                })?;
            reasoning(&thinking)
        }
        None => None,
    };
    Ok(Request {
        model: String::new(),
        system,
        messages,
        params: SamplingParams {
            max_tokens: count("maxOutputTokens", "max_output_tokens"),
            temperature: number("temperature", "temperature"),
            top_p: number("topP", "top_p"),
            top_k: count("topK", "top_k"),
            stop,
            seed: member(&config, "seed", "seed").and_then(Value::as_i64),
            user: None,
            metadata: None,
            response_format,
            prompt_cache_key: None,
            verbosity: None,
        },
        tools,
        tool_choice,
        parallel_tool_calls: None,
        reasoning,
        stream: false,
        include_usage: false,
        extra: Extra::new(Dialect::Gemini, extra),
    })
}

fn reasoning(thinking: &wire::ThinkingConfig) -> Option<Reasoning> {
    if let Some(level) = &thinking.thinking_level {
        return Effort::parse(&level.to_ascii_lowercase()).map(Reasoning::Effort);
    }
    match thinking.thinking_budget {
        Some(0) => Some(Reasoning::Disabled),
        Some(budget) if budget > 0 => Some(Reasoning::Budget(budget.unsigned_abs())),
        // -1: the model decides.
        Some(_) => Some(Reasoning::Effort(Effort::Medium)),
        None if thinking.include_thoughts == Some(true) => Some(Reasoning::Effort(Effort::Medium)),
        None => None,
    }
}

fn function_tool(declaration: &Value) -> Option<Tool> {
    let text = |name: &str| declaration.get(name).and_then(Value::as_str);
    let name = text("name")?.to_owned();
    let given = |name: &str| declaration.get(name).filter(|value| !value.is_null());
    let parameters = given("parametersJsonSchema")
        .or_else(|| given("parameters_json_schema"))
        .cloned()
        .or_else(|| given("parameters").map(openapi_to_json_schema))
        .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
    Some(Tool::Function {
        name,
        description: text("description").map(str::to_owned),
        parameters,
        strict: None,
        cache_control: None,
    })
}

/// Gemini's `parameters` and `responseSchema` are OpenAPI schemas whose `type` may be written
/// in capitals (`OBJECT`, as the SDKs send it); JSON Schema wants it in lower case.
pub fn openapi_to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(members) => {
            let converted = Value::Object(
                members
                    .iter()
                    .map(|(name, value)| {
                        let value = match (name.as_str(), value) {
                            ("type", Value::String(kind)) => {
                                Value::String(kind.to_ascii_lowercase())
                            }
                            ("properties" | "$defs" | "definitions", Value::Object(properties)) => {
                                Value::Object(
                                    properties
                                        .iter()
                                        .map(|(key, inner)| {
                                            (key.clone(), openapi_to_json_schema(inner))
                                        })
                                        .collect(),
                                )
                            }
                            (_, inner) => openapi_to_json_schema(inner),
                        };
                        (name.clone(), value)
                    })
                    .collect(),
            );
            nullable_as_type(converted)
        }
        Value::Array(items) => Value::Array(items.iter().map(openapi_to_json_schema).collect()),
        other => other.clone(),
    }
}

/// OpenAPI's `nullable: true` (Gemini's `Schema.nullable`) is no JSON Schema keyword: JSON
/// Schema says the same with `"null"` among the types.
fn nullable_as_type(mut schema: Value) -> Value {
    let Value::Object(members) = &mut schema else {
        return schema;
    };
    match members.get("nullable") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => {
            members.remove("nullable");
            return schema;
        }
        _ => return schema,
    }
    let kind = match members.get("type") {
        Some(Value::String(kind)) => Some(kind.clone()),
        _ => None,
    };
    // Without a single type (an `anyOf`…) there is nothing to add `null` to; the keyword stays.
    if let Some(kind) = kind {
        members.remove("nullable");
        members.insert("type".into(), serde_json::json!([kind, "null"]));
    }
    schema
}

/// A function result as blocks: what `output` (or `result`) holds when that is all there is,
/// an `error` as an error result, any other object as its JSON (FunctionResponse reference).
fn function_result(response: &Value) -> (Vec<Block>, bool) {
    if let Value::Object(members) = response
        && members.len() == 1
        && let Some((name, value)) = members.iter().next()
    {
        // The documented keys wrap the output (or the error), whatever its JSON type.
        let text = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        match name.as_str() {
            "output" | "result" | "content" => return (vec![Block::text(text)], false),
            "error" => return (vec![Block::text(text)], true),
            _ => {}
        }
    }
    let text = match response {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    (vec![Block::text(text)], false)
}

/// An inline or file part: images are images, PDFs and text files documents; audio, video
/// and the rest have no counterpart in the representation and are kept as Gemini's part.
fn media(mime_type: &str, source: ImageSource) -> Block {
    if mime_type.starts_with("image/") {
        return Block::Image {
            source,
            detail: None,
            cache_control: None,
        };
    }
    let document = mime_type == "application/pdf" || mime_type.starts_with("text/");
    if !document {
        let raw = match source {
            ImageSource::Base64 { media_type, data } => {
                serde_json::json!({"inlineData": {"mimeType": media_type, "data": data}})
            }
            ImageSource::Url { url } if mime_type.is_empty() => {
                serde_json::json!({"fileData": {"fileUri": url}})
            }
            ImageSource::Url { url } => {
                serde_json::json!({"fileData": {"mimeType": mime_type, "fileUri": url}})
            }
        };
        return Block::Unknown {
            dialect: Dialect::Gemini,
            raw,
        };
    }
    let source = match source {
        ImageSource::Base64 { media_type, data } => DocumentSource::Base64 { media_type, data },
        ImageSource::Url { url } => DocumentSource::Url { url },
    };
    Block::Document {
        source,
        title: None,
        cache_control: None,
        extra: Map::new(),
    }
}

/// The parts of one content as blocks (see the module docs for thought signatures and ids).
/// `scope` names the content for generated call ids; `open` pairs a request's calls with
/// their results (an answer has no results).
pub(super) fn blocks(
    parts: Vec<wire::Part>,
    scope: &str,
    mut open: Option<&mut OpenCalls>,
) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::with_capacity(parts.len());
    // Generated ids number the calls (and unmatched results) of the content, not its parts,
    // as the stream decoder does: a plain answer and its stream give a call the same id.
    let mut calls = 0;
    let mut results = 0;
    for part in parts {
        let signature = part
            .thought_signature
            .filter(|signature| !signature.is_empty());
        if part.thought == Some(true) {
            let text = part.text.unwrap_or_default();
            // A signature sent after the thought text it closes (as a stream ends a thought).
            if text.is_empty()
                && signature.is_some()
                && let Some(Block::Thinking {
                    thinking,
                    signature: last @ None,
                }) = out.last_mut()
                && !thinking.is_empty()
            {
                *last = signature;
                continue;
            }
            out.push(Block::Thinking {
                thinking: text,
                signature,
            });
            continue;
        }
        if signature.is_some() {
            out.push(Block::Thinking {
                thinking: String::new(),
                signature,
            });
        }
        if let Some(call) = part.function_call {
            let id = call
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| super::generated_id(scope, calls));
            calls += 1;
            if let Some(open) = open.as_deref_mut() {
                open.0.push((call.name.clone(), id.clone()));
            }
            out.push(Block::ToolUse {
                id,
                name: call.name,
                input: call.args.unwrap_or_else(|| Value::Object(Map::new())),
                cache_control: None,
            });
        } else if let Some(result) = part.function_response {
            let tool_use_id = open
                .as_deref_mut()
                .and_then(|open| open.answer(&result.name, result.id.as_deref()))
                .or(result.id)
                .unwrap_or_else(|| super::generated_id(&format!("{scope}r"), results));
            results += 1;
            let (mut content, is_error) = function_result(&result.response);
            for inner in result.parts.unwrap_or_default() {
                if let Some(blob) = inner.inline_data {
                    content.push(media(
                        &blob.mime_type.clone(),
                        ImageSource::Base64 {
                            media_type: blob.mime_type,
                            data: blob.data,
                        },
                    ));
                }
            }
            out.push(Block::ToolResult {
                tool_use_id,
                content,
                is_error,
                cache_control: None,
            });
        } else if let Some(blob) = part.inline_data {
            out.push(media(
                &blob.mime_type.clone(),
                ImageSource::Base64 {
                    media_type: blob.mime_type,
                    data: blob.data,
                },
            ));
        } else if let Some(file) = part.file_data {
            let mime_type = file.mime_type.unwrap_or_default();
            out.push(media(&mime_type, ImageSource::Url { url: file.file_uri }));
        } else if let Some(text) = part.text {
            // The empty text that only carried a signature is no text.
            if !(text.is_empty() && matches!(out.last(), Some(Block::Thinking { .. }))) {
                out.push(Block::text(text));
            }
        } else if !part.other.is_empty() {
            out.push(Block::Unknown {
                dialect: Dialect::Gemini,
                raw: Value::Object(part.other),
            });
        }
    }
    out
}

pub fn response(body: &[u8]) -> Result<Response, TranslateError> {
    let wire: wire::GenerateContentResponse = parse_upstream(body)?;
    let id = wire.response_id.clone().unwrap_or_default();
    let candidate = wire
        .candidates
        .into_iter()
        .find(|candidate| candidate.index == 0);
    let blocked = wire
        .prompt_feedback
        .as_ref()
        .and_then(|feedback| feedback.get("blockReason"))
        .is_some();
    let (content, finish_reason) = match candidate {
        Some(candidate) => (
            candidate
                .content
                .map(|content| blocks(content.parts, &id, None))
                .unwrap_or_default(),
            candidate.finish_reason,
        ),
        None => (Vec::new(), None),
    };
    let saw_call = content
        .iter()
        .any(|block| matches!(block, Block::ToolUse { .. }));
    let stop_reason = if blocked && content.is_empty() {
        crate::translate::ir::StopReason::ContentFilter
    } else {
        super::stop_reason_from_wire(finish_reason.as_deref(), saw_call)
    };
    Ok(Response {
        id,
        model: wire.model_version.unwrap_or_default(),
        content,
        stop_reason,
        usage: wire
            .usage_metadata
            .as_ref()
            .map(super::usage)
            .unwrap_or_default(),
    })
}
