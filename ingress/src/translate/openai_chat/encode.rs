//! IR to OpenAI Chat wire.

use serde_json::Value;

use super::{MAX_STOP_SEQUENCES, wire};
use crate::translate::ir::{
    Block, DocumentSource, Effort, InstructionRole, Reasoning, Request, Response, ResponseFormat,
    Role, Tool, ToolChoice, Warning,
};
use crate::translate::json::{to_vec, type_tag};
use crate::translate::{Context, Dialect};

fn warn_cache_control(
    cache_control: Option<&Value>,
    field: impl FnOnce() -> String,
    warnings: &mut Vec<Warning>,
) {
    if cache_control.is_some() {
        warnings.push(Warning::new(
            field(),
            "OpenAI has no cache_control; dropped",
        ));
    }
}

/// Arguments as OpenAI wants them: a JSON string.
pub fn arguments(input: &Value) -> String {
    match input {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

/// Text and image blocks as message content: a plain string when it is one text.
fn content(blocks: &[Block], field: &str, warnings: &mut Vec<Warning>) -> Option<wire::Content> {
    let mut parts = Vec::with_capacity(blocks.len());
    for (position, block) in blocks.iter().enumerate() {
        let here = || format!("{field}[{position}]");
        if matches!(
            block,
            Block::Text { .. } | Block::Image { .. } | Block::Document { .. }
        ) {
            warn_cache_control(
                block.cache_control(),
                || format!("{}.cache_control", here()),
                warnings,
            );
        }
        match block {
            Block::Text { text, .. } => {
                parts.push(wire::ContentPart::Text { text: text.clone() });
            }
            Block::Image { source, detail, .. } => {
                parts.push(wire::ContentPart::ImageUrl {
                    image_url: wire::ImageUrl {
                        url: super::image_to_url(source),
                        detail: detail.clone(),
                    },
                });
            }
            Block::Document {
                source,
                title,
                extra,
                ..
            } => {
                crate::translate::openai_responses::encode::warn_document_extra(
                    extra, here, warnings,
                );
                if let DocumentSource::Text { data } = source {
                    parts.push(wire::ContentPart::Text {
                        text: crate::translate::openai_responses::encode::titled(
                            title.as_deref(),
                            data,
                        ),
                    });
                } else if let Some(file) = source.to_openai_file(title.as_deref(), false) {
                    parts.push(wire::ContentPart::Unknown(
                        serde_json::json!({"type": "file", "file": file}),
                    ));
                } else {
                    warnings.push(Warning::new(
                        here(),
                        "OpenAI Chat takes a file by its content or id, not by URL; dropped",
                    ));
                }
            }
            Block::Unknown {
                dialect: Dialect::OpenAiChat,
                raw,
            } => {
                parts.push(wire::ContentPart::Unknown(raw.clone()));
            }
            Block::Unknown { raw, .. } => warnings.push(Warning::new(
                here(),
                format!(
                    "content type `{}` has no OpenAI Chat equivalent; dropped",
                    type_tag(raw)
                ),
            )),
            Block::RedactedThinking { .. } => {
                warnings.push(Warning::new(
                    here(),
                    "redacted thinking has no OpenAI equivalent; dropped",
                ));
            }
            Block::Thinking { .. } | Block::ToolUse { .. } | Block::ToolResult { .. } => {
                warnings.push(Warning::new(here(), "not allowed in this message; dropped"));
            }
        }
    }
    match parts.as_slice() {
        [] => None,
        [wire::ContentPart::Text { text }] => Some(wire::Content::Text(text.clone())),
        _ => Some(wire::Content::Parts(parts)),
    }
}

pub fn request(request: &Request, upstream_model: &str, warnings: &mut Vec<Warning>) -> Vec<u8> {
    let mut messages = Vec::with_capacity(request.messages.len() + request.system.len());
    // Adjacent instructions of one role become one message (Codex sends its developer
    // instructions as several parts; many OpenAI-compatible servers refuse a second system
    // message).
    let mut merged: Vec<(InstructionRole, String)> = Vec::new();
    for (position, block) in request.system.iter().enumerate() {
        warn_cache_control(
            block.cache_control.as_ref(),
            || format!("system[{position}].cache_control"),
            warnings,
        );
        match merged.last_mut() {
            Some((role, text)) if *role == block.role => {
                text.push_str("\n\n");
                text.push_str(&block.text);
            }
            _ => merged.push((block.role, block.text.clone())),
        }
    }
    for (role, text) in merged {
        let content = wire::Content::Text(text);
        messages.push(match role {
            InstructionRole::System => wire::ChatMessage::System {
                content,
                name: None,
            },
            InstructionRole::Developer => wire::ChatMessage::Developer {
                content,
                name: None,
            },
        });
    }
    for (position, message) in request.messages.iter().enumerate() {
        let field = format!("messages[{position}].content");
        match message.role {
            Role::System | Role::Developer => {
                let content = content(&message.content, &field, warnings)
                    .unwrap_or_else(|| wire::Content::Text(String::new()));
                messages.push(if message.role == Role::System {
                    wire::ChatMessage::System {
                        content,
                        name: None,
                    }
                } else {
                    wire::ChatMessage::Developer {
                        content,
                        name: None,
                    }
                });
            }
            Role::User => {
                let mut rest = Vec::new();
                // Images a tool returned: OpenAI tool messages carry text only, so they follow
                // the tool messages in a user message, each labelled with its call.
                let mut carried = Vec::new();
                for (index, block) in message.content.iter().enumerate() {
                    let Block::ToolResult {
                        tool_use_id,
                        content: result,
                        is_error,
                        cache_control,
                    } = block
                    else {
                        rest.push(block.clone());
                        continue;
                    };
                    let here = format!("{field}[{index}]");
                    warn_cache_control(
                        cache_control.as_ref(),
                        || format!("{here}.cache_control"),
                        warnings,
                    );
                    if *is_error {
                        warnings.push(Warning::new(
                            format!("{here}.is_error"),
                            "OpenAI tool messages cannot flag an error; the flag was dropped",
                        ));
                    }
                    let mut labelled = false;
                    let texts: Vec<Block> = result
                        .iter()
                        .filter(|inner| {
                            if matches!(inner, Block::Image { .. }) {
                                if !labelled {
                                    labelled = true;
                                    carried.push(Block::Text {
                                        text: format!("The image returned by tool call {tool_use_id}:"),
                                        cache_control: None,
                                    });
                                }
                                carried.push((*inner).clone());
                                return false;
                            }
                            let keep = matches!(inner, Block::Text { .. });
                            if !keep {
                                warnings.push(Warning::new(
                                    format!("{here}.content"),
                                    "OpenAI tool messages carry text and images only; other content dropped",
                                ));
                            }
                            keep
                        })
                        .cloned()
                        .collect();
                    let content = content(&texts, &format!("{here}.content"), warnings)
                        .unwrap_or_else(|| wire::Content::Text(String::new()));
                    messages.push(wire::ChatMessage::Tool {
                        content,
                        tool_call_id: tool_use_id.clone(),
                    });
                }
                if !carried.is_empty() {
                    carried.append(&mut rest);
                    rest = carried;
                }
                if let Some(content) = content(&rest, &field, warnings) {
                    messages.push(wire::ChatMessage::User {
                        content,
                        name: None,
                    });
                } else if rest.is_empty()
                    && !message
                        .content
                        .iter()
                        .any(|block| matches!(block, Block::ToolResult { .. }))
                {
                    messages.push(wire::ChatMessage::User {
                        content: wire::Content::Text(String::new()),
                        name: None,
                    });
                }
            }
            Role::Assistant => {
                let mut reasoning = Vec::new();
                let mut texts = Vec::new();
                let mut tool_calls = Vec::new();
                for (index, block) in message.content.iter().enumerate() {
                    match block {
                        Block::Thinking {
                            thinking,
                            signature,
                        } => {
                            reasoning.push(thinking.as_str());
                            if signature.is_some() {
                                warnings.push(Warning::new(
                                    format!("{field}[{index}].signature"),
                                    "thinking signatures have no OpenAI equivalent; dropped",
                                ));
                            }
                        }
                        Block::ToolUse {
                            id,
                            name,
                            input,
                            cache_control,
                        } => {
                            warn_cache_control(
                                cache_control.as_ref(),
                                || format!("{field}[{index}].cache_control"),
                                warnings,
                            );
                            tool_calls.push(wire::ToolCall {
                                id: id.clone(),
                                kind: "function".to_owned(),
                                function: wire::FunctionCall {
                                    name: name.clone(),
                                    arguments: arguments(input),
                                },
                            });
                        }
                        other => texts.push(other.clone()),
                    }
                }
                messages.push(wire::ChatMessage::Assistant {
                    content: content(&texts, &field, warnings),
                    reasoning_content: (!reasoning.is_empty()).then(|| reasoning.concat()),
                    refusal: None,
                    tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
                    name: None,
                });
            }
        }
    }

    let params = &request.params;
    let mut stop = params.stop.clone();
    if stop.len() > MAX_STOP_SEQUENCES {
        warnings.push(Warning::new(
            "stop",
            "OpenAI accepts at most 4 stop sequences; the rest were dropped",
        ));
        stop.truncate(MAX_STOP_SEQUENCES);
    }
    if params.top_k.is_some() {
        warnings.push(Warning::new("top_k", "OpenAI has no top_k; dropped"));
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
                warn_cache_control(
                    cache_control.as_ref(),
                    || format!("tools[{position}].cache_control"),
                    warnings,
                );
                tools.push(wire::ChatTool::Function(wire::FunctionTool {
                    kind: "function".to_owned(),
                    function: wire::FunctionDefinition {
                        name: name.clone(),
                        description: description.clone(),
                        parameters: (!parameters.is_null()).then(|| parameters.clone()),
                        strict: *strict,
                    },
                }));
            }
            Tool::Custom { name, .. } => {
                let (description, parameters) = tool.freeform_as_function(position, warnings);
                tools.push(wire::ChatTool::Function(wire::FunctionTool {
                    kind: "function".to_owned(),
                    function: wire::FunctionDefinition {
                        name: name.clone(),
                        description: Some(description),
                        parameters: Some(parameters),
                        strict: None,
                    },
                }));
            }
            Tool::Unknown {
                dialect: Dialect::OpenAiChat,
                raw,
            } => tools.push(wire::ChatTool::Unknown(raw.clone())),
            Tool::Unknown { raw, .. } => warnings.push(Warning::new(
                format!("tools[{position}]"),
                format!(
                    "tool type `{}` has no OpenAI Chat equivalent; dropped",
                    type_tag(raw)
                ),
            )),
        }
    }
    let tool_choice = request.tool_choice.as_ref().map(|choice| match choice {
        ToolChoice::Auto => wire::ChatToolChoice::Mode("auto".to_owned()),
        ToolChoice::None => wire::ChatToolChoice::Mode("none".to_owned()),
        ToolChoice::Required => wire::ChatToolChoice::Mode("required".to_owned()),
        ToolChoice::Named(name) => wire::ChatToolChoice::Named(wire::NamedToolChoice {
            kind: "function".to_owned(),
            function: wire::NamedFunction { name: name.clone() },
        }),
    });
    // OpenAI rejects parallel_tool_calls without tools.
    let parallel_tool_calls = if tools.is_empty() {
        None
    } else {
        request.parallel_tool_calls
    };
    let reasoning_effort = match request.reasoning {
        None | Some(Reasoning::Disabled) => None,
        Some(Reasoning::Effort(effort)) => Some(effort),
        Some(Reasoning::Budget(budget)) => Some(Effort::from_budget(budget)),
    };
    let response_format = params.response_format.as_ref().map(|format| match format {
        ResponseFormat::Text => wire::ResponseFormat::Text {},
        ResponseFormat::JsonObject => wire::ResponseFormat::JsonObject {},
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        } => wire::ResponseFormat::JsonSchema {
            json_schema: wire::JsonSchemaFormat {
                name: name.clone(),
                description: description.clone(),
                schema: (!schema.is_null()).then(|| schema.clone()),
                strict: *strict,
            },
        },
    });

    let wire = wire::ChatRequest {
        model: upstream_model.to_owned(),
        messages,
        max_tokens: None,
        max_completion_tokens: params.max_tokens,
        temperature: params.temperature,
        top_p: params.top_p,
        stop: (!stop.is_empty()).then_some(wire::Stop::Many(stop)),
        seed: params.seed,
        user: crate::translate::ir::openai_user(params.user.as_deref(), "user", warnings),
        metadata: params.metadata.clone(),
        response_format,
        tools: (!tools.is_empty()).then_some(tools),
        tool_choice,
        parallel_tool_calls,
        reasoning_effort: reasoning_effort.map(|effort| effort.as_str().to_owned()),
        stream: request.stream.then_some(true),
        // Always ask for usage: the gateway bills from it whatever the client wants to see.
        stream_options: request.stream.then_some(wire::StreamOptions {
            include_usage: Some(true),
        }),
        prompt_cache_key: params.prompt_cache_key.clone(),
        verbosity: params.verbosity.clone(),
    };
    if request.extra.is_empty() {
        return to_vec(&wire);
    }
    if request.extra.dialect != Some(Dialect::OpenAiChat) {
        for key in request.extra.fields.keys() {
            warnings.push(Warning::new(
                key.clone(),
                "no OpenAI Chat equivalent; dropped",
            ));
        }
        return to_vec(&wire);
    }
    let mut value = serde_json::to_value(&wire).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        for (key, field) in &request.extra.fields {
            object.entry(key.clone()).or_insert_with(|| field.clone());
        }
    }
    to_vec(&value)
}

pub fn response(response: &Response, context: &Context) -> Vec<u8> {
    let mut text = String::new();
    let mut has_text = false;
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for block in &response.content {
        match block {
            Block::Text { text: piece, .. } => {
                text.push_str(piece);
                has_text = true;
            }
            Block::Thinking { thinking, .. } => reasoning.push_str(thinking),
            Block::ToolUse {
                id, name, input, ..
            } => tool_calls.push(wire::ToolCall {
                id: id.clone(),
                kind: "function".to_owned(),
                function: wire::FunctionCall {
                    name: name.clone(),
                    arguments: arguments(input),
                },
            }),
            _ => {}
        }
    }
    to_vec(&wire::ChatCompletion {
        id: context.response_id.clone(),
        object: "chat.completion".to_owned(),
        created: context.created,
        model: context.model.clone(),
        choices: vec![wire::Choice {
            index: 0,
            message: wire::ResponseMessage {
                role: "assistant".to_owned(),
                content: has_text.then_some(text),
                refusal: None,
                reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
                reasoning: None,
                tool_calls: (!tool_calls.is_empty()).then_some(tool_calls),
            },
            finish_reason: Some(super::stop_reason_to_wire(&response.stop_reason).to_owned()),
            logprobs: None,
        }],
        usage: Some(super::usage_to_wire(&response.usage)),
    })
}
