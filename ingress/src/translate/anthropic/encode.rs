//! IR to Anthropic wire.

use serde_json::Value;

use super::{DEFAULT_MAX_TOKENS, MIN_THINKING_BUDGET, wire};
use crate::translate::ir::{
    Block, DocumentSource, ImageSource, Reasoning, Request, Response, ResponseFormat, Role, Tool,
    ToolChoice, Usage, Warning,
};
use crate::translate::json::{to_vec, type_tag};
use crate::translate::{Context, Dialect};

pub fn request(request: &Request, upstream_model: &str, warnings: &mut Vec<Warning>) -> Vec<u8> {
    let mut system: Vec<wire::TextBlockParam> = request
        .system
        .iter()
        .map(|block| wire::TextBlockParam {
            kind: wire::TextType::Text,
            text: block.text.clone(),
            cache_control: block.cache_control.clone(),
        })
        .collect();
    let mut messages = Vec::with_capacity(request.messages.len());
    for (position, message) in request.messages.iter().enumerate() {
        let role = match message.role {
            Role::User => wire::MessageRole::User,
            Role::Assistant => wire::MessageRole::Assistant,
            Role::System | Role::Developer => {
                warnings.push(Warning::new(
                    format!("messages[{position}]"),
                    "not every Anthropic model takes system messages inside the conversation; moved to `system`",
                ));
                for block in &message.content {
                    if let Block::Text {
                        text,
                        cache_control,
                    } = block
                    {
                        system.push(wire::TextBlockParam {
                            kind: wire::TextType::Text,
                            text: text.clone(),
                            cache_control: cache_control.clone(),
                        });
                    }
                }
                continue;
            }
        };
        let content = blocks(
            &message.content,
            &format!("messages[{position}].content"),
            warnings,
        );
        if content.is_empty() {
            warnings.push(Warning::new(
                format!("messages[{position}]"),
                "message with no content Anthropic can express was left out",
            ));
            continue;
        }
        messages.push(wire::MessageParam {
            role,
            content: wire::MessageContent::Blocks(content),
        });
    }
    let system = match system.len() {
        0 => None,
        1 if system[0].cache_control.is_none() => Some(wire::System::Text(system.remove(0).text)),
        _ => Some(wire::System::Blocks(system)),
    };

    let params = &request.params;
    let mut temperature = params.temperature;
    if temperature.is_some_and(|value| value > 1.0) {
        warnings.push(Warning::new(
            "temperature",
            "Anthropic accepts 0 to 1; clamped to 1",
        ));
        temperature = Some(1.0);
    }
    let mut top_p = params.top_p;
    let mut top_k = params.top_k;
    let mut stop_sequences = params.stop.clone();
    stop_sequences.retain(|sequence| !sequence.trim().is_empty());
    if params.seed.is_some() {
        warnings.push(Warning::new("seed", "Anthropic has no seed; dropped"));
    }
    if params
        .metadata
        .as_ref()
        .is_some_and(|metadata| !metadata.is_empty())
    {
        warnings.push(Warning::new(
            "metadata",
            "Anthropic metadata only has user_id; dropped",
        ));
    }
    match &params.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(_) => warnings.push(Warning::new(
            "response_format",
            "Anthropic Messages has no response_format; dropped",
        )),
    }

    let mut tools = Vec::new();
    for (position, tool) in request.tools.iter().enumerate() {
        match tool {
            Tool::Function {
                name,
                description,
                parameters,
                strict,
                cache_control,
            } => {
                if strict.is_some() {
                    warnings.push(Warning::new(format!("tools[{position}].strict"), "dropped"));
                }
                tools.push(wire::ToolParam::Custom(wire::CustomTool {
                    name: name.clone(),
                    description: description.clone(),
                    input_schema: if parameters.is_object() {
                        parameters.clone()
                    } else {
                        serde_json::json!({"type": "object", "properties": {}})
                    },
                    cache_control: cache_control.clone(),
                }));
            }
            Tool::Custom { name, .. } => {
                let (description, input_schema) = tool.freeform_as_function(position, warnings);
                tools.push(wire::ToolParam::Custom(wire::CustomTool {
                    name: name.clone(),
                    description: Some(description),
                    input_schema,
                    cache_control: None,
                }));
            }
            Tool::Unknown {
                dialect: Dialect::Anthropic,
                raw,
            } => {
                tools.push(wire::ToolParam::Unknown(raw.clone()));
            }
            Tool::Unknown { raw, .. } => warnings.push(Warning::new(
                format!("tools[{position}]"),
                format!(
                    "tool type `{}` has no Anthropic equivalent; dropped",
                    type_tag(raw)
                ),
            )),
        }
    }

    let mut thinking = None;
    let mut max_tokens = params.max_tokens;
    let budget = match request.reasoning {
        None | Some(Reasoning::Disabled) => None,
        Some(Reasoning::Effort(effort)) => Some(effort.budget_tokens()),
        Some(Reasoning::Budget(budget)) => Some(budget),
    };
    if matches!(request.reasoning, Some(Reasoning::Disabled)) {
        thinking = Some(wire::ThinkingParam::Disabled {});
    }
    let forced_tool = matches!(
        request.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Named(_))
    );
    if let Some(mut budget) = budget {
        if forced_tool && !tools.is_empty() {
            warnings.push(Warning::new(
                "reasoning",
                "Anthropic cannot think while a tool is forced; thinking disabled",
            ));
        } else if max_tokens.is_some_and(|max| max <= MIN_THINKING_BUDGET) {
            warnings.push(Warning::new(
                "reasoning",
                "max_tokens leaves no room for Anthropic's minimum thinking budget (1024); thinking disabled",
            ));
        } else {
            if budget < MIN_THINKING_BUDGET {
                warnings.push(Warning::new(
                    "reasoning",
                    "thinking budget raised to Anthropic's minimum of 1024",
                ));
                budget = MIN_THINKING_BUDGET;
            }
            match max_tokens {
                None => {
                    max_tokens = Some(if budget >= DEFAULT_MAX_TOKENS {
                        budget + DEFAULT_MAX_TOKENS
                    } else {
                        DEFAULT_MAX_TOKENS
                    });
                }
                Some(max) if budget >= max => {
                    let lowered = (max / 2).max(MIN_THINKING_BUDGET);
                    warnings.push(Warning::new(
                        "reasoning",
                        format!("thinking budget {budget} must stay below max_tokens {max}; lowered to {lowered}"),
                    ));
                    budget = lowered;
                }
                Some(_) => {}
            }
            thinking = Some(wire::ThinkingParam::Enabled {
                budget_tokens: budget,
            });
            // Extended thinking is incompatible with a temperature other than 1, with top_k, and
            // with top_p below 0.95.
            if temperature.is_some_and(|value| value != 1.0) {
                warnings.push(Warning::new(
                    "temperature",
                    "not allowed with thinking; dropped",
                ));
                temperature = None;
            }
            if top_k.is_some() {
                warnings.push(Warning::new("top_k", "not allowed with thinking; dropped"));
                top_k = None;
            }
            if top_p.is_some_and(|value| value < 0.95) {
                warnings.push(Warning::new(
                    "top_p",
                    "below 0.95 is not allowed with thinking; dropped",
                ));
                top_p = None;
            }
        }
    }

    let disable_parallel = request.parallel_tool_calls.map(|parallel| !parallel);
    let tool_choice =
        if tools.is_empty() {
            if request.tool_choice.is_some() && request.tool_choice != Some(ToolChoice::None) {
                warnings.push(Warning::new(
                    "tool_choice",
                    "no tools to choose from; dropped",
                ));
            }
            None
        } else {
            match &request.tool_choice {
                None => disable_parallel.filter(|disable| *disable).map(|_| {
                    wire::ToolChoiceParam::Auto {
                        disable_parallel_tool_use: Some(true),
                    }
                }),
                Some(ToolChoice::Auto) => Some(wire::ToolChoiceParam::Auto {
                    disable_parallel_tool_use: disable_parallel,
                }),
                Some(ToolChoice::Required) => Some(wire::ToolChoiceParam::Any {
                    disable_parallel_tool_use: disable_parallel,
                }),
                Some(ToolChoice::Named(name)) => Some(wire::ToolChoiceParam::Tool {
                    name: name.clone(),
                    disable_parallel_tool_use: disable_parallel,
                }),
                Some(ToolChoice::None) => Some(wire::ToolChoiceParam::None {}),
            }
        };

    let wire = wire::MessagesRequest {
        model: upstream_model.to_owned(),
        max_tokens: Some(max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
        system,
        messages,
        stop_sequences: (!stop_sequences.is_empty()).then_some(stop_sequences),
        temperature,
        top_p,
        top_k,
        metadata: params.user.clone().map(|user_id| wire::Metadata {
            user_id: Some(user_id),
        }),
        stream: request.stream.then_some(true),
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        thinking,
    };
    if params.verbosity.is_some() {
        warnings.push(Warning::new(
            "verbosity",
            "Anthropic has no verbosity; dropped",
        ));
    }
    if params.prompt_cache_key.is_some() && !has_cache_control(request) {
        let mut value = serde_json::to_value(&wire).unwrap_or(Value::Null);
        set_cache_breakpoints(&mut value);
        return with_extra(&value, request, warnings);
    }
    with_extra(&wire, request, warnings)
}

fn has_cache_control(request: &Request) -> bool {
    request
        .system
        .iter()
        .any(|block| block.cache_control.is_some())
        || request.tools.iter().any(|tool| {
            matches!(
                tool,
                Tool::Function {
                    cache_control: Some(_),
                    ..
                }
            )
        })
        || request.messages.iter().any(|message| {
            message
                .content
                .iter()
                .any(|block| block.cache_control().is_some())
        })
}

/// A client that asked for prompt caching (OpenAI's `prompt_cache_key`, which Codex always
/// sends) and placed no breakpoint of its own gets Anthropic's: on the last tool, the end of
/// the system prompt and the last block of the last turn (three of the four allowed), so each
/// turn of an agent's conversation reads the previous turn's prefix from the cache.
fn set_cache_breakpoints(value: &mut Value) {
    let ephemeral = || serde_json::json!({"type": "ephemeral"});
    if let Some(Value::Object(tool)) = value
        .get_mut("tools")
        .and_then(Value::as_array_mut)
        .and_then(|tools| tools.last_mut())
    {
        tool.insert("cache_control".into(), ephemeral());
    }
    if let Some(system) = value.get_mut("system") {
        if let Value::String(text) = system {
            *system =
                serde_json::json!([{"type": "text", "text": text, "cache_control": ephemeral()}]);
        } else if let Some(Value::Object(block)) =
            system.as_array_mut().and_then(|blocks| blocks.last_mut())
        {
            block.insert("cache_control".into(), ephemeral());
        }
    }
    if let Some(Value::Object(block)) = value
        .get_mut("messages")
        .and_then(Value::as_array_mut)
        .and_then(|messages| messages.last_mut())
        .and_then(|message| message.get_mut("content"))
        .and_then(Value::as_array_mut)
        .and_then(|blocks| blocks.last_mut())
        && !matches!(
            block.get("type").and_then(Value::as_str),
            Some("thinking" | "redacted_thinking")
        )
    {
        block.insert("cache_control".into(), ephemeral());
    }
}

fn with_extra(
    wire: &impl serde::Serialize,
    request: &Request,
    warnings: &mut Vec<Warning>,
) -> Vec<u8> {
    if request.extra.is_empty() {
        return to_vec(wire);
    }
    if request.extra.dialect != Some(Dialect::Anthropic) {
        for key in request.extra.fields.keys() {
            warnings.push(Warning::new(
                key.clone(),
                "no Anthropic equivalent; dropped",
            ));
        }
        return to_vec(wire);
    }
    let mut value = serde_json::to_value(wire).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        for (key, field) in &request.extra.fields {
            object.entry(key.clone()).or_insert_with(|| field.clone());
        }
    }
    to_vec(&value)
}

/// An Anthropic `document` block: a PDF (base64 or URL) or a plain-text document.
fn document(
    source: &DocumentSource,
    title: Option<&str>,
    cache_control: Option<&Value>,
) -> Result<Value, &'static str> {
    use base64::Engine as _;
    let source = match source {
        DocumentSource::Base64 { media_type, data } if media_type == "application/pdf" => {
            serde_json::json!({"type": "base64", "media_type": media_type, "data": data})
        }
        DocumentSource::Base64 { media_type, data } if media_type.starts_with("text/plain") => {
            let text = base64::engine::general_purpose::STANDARD
                .decode(data)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or("a text/plain file that is not base64 UTF-8; dropped")?;
            serde_json::json!({"type": "text", "media_type": "text/plain", "data": text})
        }
        DocumentSource::Base64 { .. } => {
            return Err("Anthropic documents are PDFs or plain text; dropped");
        }
        DocumentSource::Text { data } => {
            serde_json::json!({"type": "text", "media_type": "text/plain", "data": data})
        }
        DocumentSource::Url { url } => serde_json::json!({"type": "url", "url": url}),
        DocumentSource::FileId { .. } => {
            return Err("an OpenAI file id names no file at Anthropic; dropped");
        }
    };
    let mut block = serde_json::json!({"type": "document", "source": source});
    if let Some(object) = block.as_object_mut() {
        if let Some(title) = title {
            object.insert("title".into(), title.into());
        }
        if let Some(cache_control) = cache_control {
            object.insert("cache_control".into(), cache_control.clone());
        }
    }
    Ok(block)
}

pub fn blocks(
    content: &[Block],
    field: &str,
    warnings: &mut Vec<Warning>,
) -> Vec<wire::ContentBlock> {
    let mut out = Vec::with_capacity(content.len());
    for (position, block) in content.iter().enumerate() {
        let here = || format!("{field}[{position}]");
        match block {
            Block::Text {
                text,
                cache_control,
            } => {
                // Anthropic rejects empty text blocks; an empty one carries nothing.
                if !text.is_empty() {
                    out.push(wire::ContentBlock::Text {
                        text: text.clone(),
                        cache_control: cache_control.clone(),
                    });
                }
            }
            Block::Image {
                source,
                detail,
                cache_control,
            } => {
                if detail.as_deref().is_some_and(|detail| detail != "auto") {
                    warnings.push(Warning::new(
                        format!("{}.detail", here()),
                        "no Anthropic equivalent; dropped",
                    ));
                }
                out.push(wire::ContentBlock::Image {
                    source: image_source(source),
                    cache_control: cache_control.clone(),
                });
            }
            Block::ToolUse {
                id,
                name,
                input,
                cache_control,
            } => {
                let input = if input.is_object() {
                    input.clone()
                } else {
                    warnings.push(Warning::new(
                        format!("{}.input", here()),
                        "tool arguments were not a JSON object; sent as an empty object",
                    ));
                    Value::Object(serde_json::Map::new())
                };
                out.push(wire::ContentBlock::ToolUse {
                    id: tool_id(id),
                    name: name.clone(),
                    input,
                    cache_control: cache_control.clone(),
                });
            }
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
                cache_control,
            } => {
                let inner = blocks(content, &format!("{}.content", here()), warnings);
                out.push(wire::ContentBlock::ToolResult {
                    tool_use_id: tool_id(tool_use_id),
                    content: (!inner.is_empty()).then_some(wire::ToolResultContent::Blocks(inner)),
                    is_error: is_error.then_some(true),
                    cache_control: cache_control.clone(),
                });
            }
            Block::Thinking {
                thinking,
                signature: Some(signature),
            } => {
                out.push(wire::ContentBlock::Thinking {
                    thinking: thinking.clone(),
                    signature: Some(signature.clone()),
                });
            }
            Block::Thinking {
                signature: None, ..
            } => warnings.push(Warning::new(
                here(),
                "thinking without an Anthropic signature cannot be sent back to Anthropic; dropped",
            )),
            Block::RedactedThinking { data } => {
                out.push(wire::ContentBlock::RedactedThinking { data: data.clone() });
            }
            Block::Document {
                source,
                title,
                cache_control,
                extra,
            } => match document(source, title.as_deref(), cache_control.as_ref()) {
                Ok(mut block) => {
                    if let Some(fields) = block.as_object_mut() {
                        for (name, value) in extra {
                            fields.entry(name.clone()).or_insert_with(|| value.clone());
                        }
                    }
                    out.push(wire::ContentBlock::Unknown(block));
                }
                Err(reason) => warnings.push(Warning::new(here(), reason)),
            },
            Block::Unknown {
                dialect: Dialect::Anthropic,
                raw,
            } => {
                out.push(wire::ContentBlock::Unknown(raw.clone()));
            }
            Block::Unknown { raw, .. } => warnings.push(Warning::new(
                here(),
                format!(
                    "content type `{}` has no Anthropic equivalent; dropped",
                    type_tag(raw)
                ),
            )),
        }
    }
    out
}

/// Anthropic accepts tool ids matching `^[a-zA-Z0-9_-]+$`; some OpenAI-compatible servers
/// produce others (`functions.get_weather:0`). The same mapping applies to a call and to its
/// result, so they still match.
fn tool_id(id: &str) -> String {
    if !id.is_empty()
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    {
        return id.to_owned();
    }
    let cleaned: String = id
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || character == '_' || character == '-' {
                character
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "toolu_empty".to_owned()
    } else {
        cleaned
    }
}

fn image_source(source: &ImageSource) -> wire::ImageSource {
    match source {
        ImageSource::Base64 { media_type, data } => wire::ImageSource::Base64 {
            media_type: media_type.clone(),
            data: data.clone(),
        },
        ImageSource::Url { url } => wire::ImageSource::Url { url: url.clone() },
    }
}

pub fn usage(usage: &Usage) -> wire::WireUsage {
    wire::WireUsage {
        input_tokens: Some(usage.input_tokens),
        output_tokens: Some(usage.output_tokens),
        cache_creation_input_tokens: Some(usage.cache_write_tokens),
        cache_read_input_tokens: Some(usage.cache_read_tokens),
    }
}

/// Response blocks for a client: thinking always carries a signature field, as Anthropic's do.
fn response_blocks(content: &[Block]) -> Vec<wire::ContentBlock> {
    content
        .iter()
        .filter_map(|block| {
            Some(match block {
                Block::Text { text, .. } => wire::ContentBlock::Text {
                    text: text.clone(),
                    cache_control: None,
                },
                Block::ToolUse {
                    id, name, input, ..
                } => wire::ContentBlock::ToolUse {
                    id: id.clone(),
                    name: name.clone(),
                    input: input.clone(),
                    cache_control: None,
                },
                Block::Thinking {
                    thinking,
                    signature,
                } => wire::ContentBlock::Thinking {
                    thinking: thinking.clone(),
                    signature: Some(signature.clone().unwrap_or_default()),
                },
                Block::RedactedThinking { data } => {
                    wire::ContentBlock::RedactedThinking { data: data.clone() }
                }
                Block::Image { source, .. } => wire::ContentBlock::Image {
                    source: image_source(source),
                    cache_control: None,
                },
                Block::Unknown {
                    dialect: Dialect::Anthropic,
                    raw,
                } => wire::ContentBlock::Unknown(raw.clone()),
                Block::ToolResult { .. } | Block::Document { .. } | Block::Unknown { .. } => {
                    return None;
                }
            })
        })
        .collect()
}

pub fn response(response: &Response, context: &Context) -> Vec<u8> {
    let (stop_reason, stop_sequence) = super::stop_reason_to_wire(&response.stop_reason);
    to_vec(&wire::MessageResponse {
        id: context.response_id.clone(),
        kind: "message".to_owned(),
        role: "assistant".to_owned(),
        model: context.model.clone(),
        content: response_blocks(&response.content),
        stop_reason: Some(stop_reason.to_owned()),
        stop_sequence,
        usage: usage(&response.usage),
    })
}
