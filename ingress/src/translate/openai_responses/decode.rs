//! OpenAI Responses wire to IR.

use serde_json::Value;

use super::wire;
use crate::translate::ir::{
    Block, Effort, Extra, InstructionRole, Message, Reasoning, Request, Response, ResponseFormat,
    Role, SamplingParams, StopReason, SystemBlock, Tool, ToolChoice, Usage,
};
use crate::translate::json::{parse_request, parse_upstream, unknown_fields};
use crate::translate::openai_chat;
use crate::translate::{Dialect, TranslateError};

fn part(part: wire::ContentPart) -> Block {
    match part {
        wire::ContentPart::InputText { text } | wire::ContentPart::OutputText { text, .. } => {
            Block::text(text)
        }
        wire::ContentPart::Refusal { refusal } => Block::text(refusal),
        wire::ContentPart::InputImage {
            image_url: Some(url),
            detail,
        } => Block::Image {
            source: openai_chat::image_from_url(&url),
            detail,
            cache_control: None,
        },
        wire::ContentPart::InputImage {
            image_url: None,
            detail,
        } => Block::Unknown {
            dialect: Dialect::OpenAiResponses,
            raw: serde_json::json!({"type": "input_image", "detail": detail}),
        },
        wire::ContentPart::Unknown(raw) => {
            let document = (crate::translate::json::type_tag(&raw) == "input_file")
                .then(|| Block::document(&raw))
                .flatten();
            document.unwrap_or(Block::Unknown {
                dialect: Dialect::OpenAiResponses,
                raw,
            })
        }
    }
}

fn message_blocks(content: wire::MessageContent) -> Vec<Block> {
    match content {
        wire::MessageContent::Text(text) => vec![Block::text(text)],
        wire::MessageContent::Parts(parts) => parts.into_iter().map(part).collect(),
    }
}

/// Appends to the last message when it has this role (a Responses turn is several items).
fn push_to(messages: &mut Vec<Message>, role: Role, block: Block, only_results: bool) {
    if let Some(last) = messages.last_mut() {
        let fits = last.role == role
            && (!only_results
                || last
                    .content
                    .iter()
                    .all(|block| matches!(block, Block::ToolResult { .. })));
        if fits {
            last.content.push(block);
            return;
        }
    }
    messages.push(Message {
        role,
        content: vec![block],
    });
}

pub fn request(body: &[u8]) -> Result<Request, TranslateError> {
    let wire: wire::ResponsesRequest = parse_request(body)?;
    let mut extra = unknown_fields(body, wire::REQUEST_FIELDS)?;
    let mut system = Vec::new();
    if let Some(instructions) = wire.instructions {
        system.push(SystemBlock {
            role: InstructionRole::System,
            text: instructions,
            cache_control: None,
        });
    }
    let mut messages: Vec<Message> = Vec::new();
    let items = match wire.input {
        None => Vec::new(),
        Some(wire::Input::Text(text)) => {
            vec![wire::InputItem::Message(wire::MessageItem {
                kind: None,
                role: "user".to_owned(),
                content: wire::MessageContent::Text(text),
            })]
        }
        Some(wire::Input::Items(items)) => items,
    };
    for (position, item) in items.into_iter().enumerate() {
        match item {
            wire::InputItem::Message(message) => {
                let blocks = message_blocks(message.content);
                let role = match message.role.as_str() {
                    "user" => Role::User,
                    "assistant" => Role::Assistant,
                    "system" => Role::System,
                    "developer" => Role::Developer,
                    other => {
                        return Err(TranslateError::bad_request(
                            format!("input[{position}].role"),
                            format!("unknown role `{other}`"),
                        ));
                    }
                };
                match role {
                    Role::System | Role::Developer if messages.is_empty() => {
                        let role = if role == Role::System {
                            InstructionRole::System
                        } else {
                            InstructionRole::Developer
                        };
                        for block in blocks {
                            if let Block::Text { text, .. } = block {
                                system.push(SystemBlock {
                                    role,
                                    text,
                                    cache_control: None,
                                });
                            }
                        }
                    }
                    Role::Assistant => {
                        for block in blocks {
                            push_to(&mut messages, Role::Assistant, block, false);
                        }
                    }
                    _ => messages.push(Message {
                        role,
                        content: blocks,
                    }),
                }
            }
            wire::InputItem::FunctionCall(call) => push_to(
                &mut messages,
                Role::Assistant,
                Block::ToolUse {
                    id: call.call_id,
                    name: call.name,
                    input: openai_chat::decode::arguments(&call.arguments),
                    cache_control: None,
                },
                false,
            ),
            wire::InputItem::CustomToolCall(call) => push_to(
                &mut messages,
                Role::Assistant,
                Block::ToolUse {
                    id: call.call_id,
                    name: call.name,
                    input: serde_json::json!({ crate::translate::ir::FREEFORM_ARGUMENT: call.input }),
                    cache_control: None,
                },
                false,
            ),
            wire::InputItem::FunctionCallOutput(output)
            | wire::InputItem::CustomToolCallOutput(output) => {
                let content = match output.output {
                    wire::FunctionOutput::Text(text) => vec![Block::text(text)],
                    wire::FunctionOutput::Parts(parts) => parts.into_iter().map(part).collect(),
                };
                push_to(
                    &mut messages,
                    Role::User,
                    Block::ToolResult {
                        tool_use_id: output.call_id,
                        content,
                        is_error: false,
                        cache_control: None,
                    },
                    true,
                );
            }
            wire::InputItem::Reasoning(reasoning) => {
                let thinking = reasoning
                    .summary
                    .into_iter()
                    .map(|part| part.text)
                    .collect::<Vec<_>>()
                    .join("\n\n");
                push_to(
                    &mut messages,
                    Role::Assistant,
                    Block::Thinking {
                        thinking,
                        signature: reasoning.encrypted_content,
                    },
                    false,
                );
            }
            wire::InputItem::Unknown(raw) => push_to(
                &mut messages,
                Role::User,
                Block::Unknown {
                    dialect: Dialect::OpenAiResponses,
                    raw,
                },
                false,
            ),
        }
    }

    let mut tools = Vec::new();
    for tool in wire.tools.unwrap_or_default() {
        push_tool(&mut tools, tool);
    }
    let tool_choice = match wire.tool_choice {
        None => None,
        Some(wire::ResponsesToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(TranslateError::bad_request(
                    "tool_choice",
                    format!("unknown value `{other}`; expected auto, none, required or a function"),
                ));
            }
        }),
        Some(wire::ResponsesToolChoice::Named(named))
            if named.kind == "function" || named.kind == "custom" =>
        {
            Some(ToolChoice::Named(named.name))
        }
        Some(wire::ResponsesToolChoice::Named(named)) => {
            extra.insert(
                "tool_choice".to_owned(),
                serde_json::to_value(named).unwrap_or(Value::Null),
            );
            None
        }
        Some(wire::ResponsesToolChoice::Other(raw)) => {
            extra.insert("tool_choice".to_owned(), raw);
            None
        }
    };
    let reasoning = match wire.reasoning.and_then(|reasoning| reasoning.effort) {
        None => None,
        Some(effort) => Some(Reasoning::Effort(Effort::parse(&effort).ok_or_else(
            || TranslateError::bad_request("reasoning.effort", format!("unknown value `{effort}`")),
        )?)),
    };
    let (format, verbosity) = wire
        .text
        .map(|text| (text.format, text.verbosity))
        .unwrap_or_default();
    let response_format = format.map(|format| match format {
        wire::TextFormat::Text {} => ResponseFormat::Text,
        wire::TextFormat::JsonObject {} => ResponseFormat::JsonObject,
        wire::TextFormat::JsonSchema {
            name,
            schema,
            description,
            strict,
        } => ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
            description,
        },
    });
    let stream = wire.stream.unwrap_or(false);
    Ok(Request {
        model: wire.model,
        system,
        messages,
        params: SamplingParams {
            max_tokens: wire.max_output_tokens,
            temperature: wire.temperature,
            top_p: wire.top_p,
            top_k: None,
            stop: Vec::new(),
            seed: None,
            user: wire.user,
            metadata: wire.metadata,
            response_format,
            prompt_cache_key: wire.prompt_cache_key,
            verbosity,
        },
        tools,
        tool_choice,
        parallel_tool_calls: wire.parallel_tool_calls,
        reasoning,
        stream,
        include_usage: stream,
        extra: Extra::new(Dialect::OpenAiResponses, extra),
    })
}

/// A client tool in the IR: a namespace's tools are expanded in place (their names unchanged).
fn push_tool(tools: &mut Vec<Tool>, tool: wire::ResponsesTool) {
    match tool {
        wire::ResponsesTool::Function(tool) => tools.push(Tool::Function {
            name: tool.name,
            description: tool.description,
            parameters: tool.parameters.unwrap_or(Value::Null),
            strict: tool.strict,
            cache_control: None,
        }),
        wire::ResponsesTool::Custom(tool) => tools.push(Tool::Custom {
            name: tool.name,
            description: tool.description,
            format: tool.format,
        }),
        wire::ResponsesTool::Namespace(namespace) => {
            for tool in namespace.tools {
                push_tool(tools, tool);
            }
        }
        wire::ResponsesTool::Unknown(raw) => tools.push(Tool::Unknown {
            dialect: Dialect::OpenAiResponses,
            raw,
        }),
    }
}

pub fn stop_reason(
    status: &str,
    incomplete_reason: Option<&str>,
    saw_tool_calls: bool,
) -> StopReason {
    match (status, incomplete_reason) {
        ("incomplete", Some("max_output_tokens")) => StopReason::MaxTokens,
        ("incomplete", Some("content_filter")) => StopReason::ContentFilter,
        _ if saw_tool_calls => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

pub fn response(body: &[u8]) -> Result<Response, TranslateError> {
    let wire: wire::ResponseObject = parse_upstream(body)?;
    let mut content = Vec::new();
    let mut saw_tool_calls = false;
    for item in wire.output {
        match item {
            wire::OutputItem::Message(message) => {
                content.extend(message.content.into_iter().map(part))
            }
            wire::OutputItem::FunctionCall(call) => {
                saw_tool_calls = true;
                content.push(Block::ToolUse {
                    id: call.call_id,
                    name: call.name,
                    input: openai_chat::decode::arguments(&call.arguments),
                    cache_control: None,
                });
            }
            wire::OutputItem::Reasoning(reasoning) => content.push(Block::Thinking {
                thinking: reasoning
                    .summary
                    .into_iter()
                    .map(|part| part.text)
                    .collect::<Vec<_>>()
                    .join("\n\n"),
                signature: reasoning.encrypted_content,
            }),
            wire::OutputItem::Unknown(raw) => content.push(Block::Unknown {
                dialect: Dialect::OpenAiResponses,
                raw,
            }),
        }
    }
    let mut usage = Usage::default();
    if let Some(wire_usage) = &wire.usage {
        usage.apply(&super::usage_update(wire_usage));
    }
    Ok(Response {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason: stop_reason(
            &wire.status,
            wire.incomplete_details
                .as_ref()
                .and_then(|details| details.reason.as_deref()),
            saw_tool_calls,
        ),
        usage,
    })
}
