//! OpenAI Chat wire to IR.

use serde_json::Value;

use super::wire;
use crate::translate::ir::{
    Block, Effort, Extra, InstructionRole, Message, Reasoning, Request, Response, ResponseFormat,
    Role, SamplingParams, StopReason, SystemBlock, Tool, ToolChoice, Usage,
};
use crate::translate::json::{parse_request, parse_upstream, unknown_fields};
use crate::translate::{Dialect, TranslateError};

fn text_blocks(content: wire::Content) -> Vec<Block> {
    match content {
        wire::Content::Text(text) => vec![Block::text(text)],
        wire::Content::Parts(parts) => parts.into_iter().map(part).collect(),
    }
}

fn part(part: wire::ContentPart) -> Block {
    match part {
        wire::ContentPart::Text { text } => Block::text(text),
        wire::ContentPart::Refusal { refusal } => Block::text(refusal),
        wire::ContentPart::ImageUrl { image_url } => Block::Image {
            source: super::image_from_url(&image_url.url),
            detail: image_url.detail,
            cache_control: None,
        },
        wire::ContentPart::Unknown(raw) => {
            let file = (crate::translate::json::type_tag(&raw) == "file")
                .then(|| raw.get("file"))
                .flatten();
            file.and_then(Block::document).unwrap_or(Block::Unknown {
                dialect: Dialect::OpenAiChat,
                raw,
            })
        }
    }
}

/// Tool arguments: a JSON string that should hold an object. One that does not parse is kept
/// as the raw string.
pub fn arguments(raw: &str) -> Value {
    if raw.trim().is_empty() {
        return Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

pub fn request(body: &[u8]) -> Result<Request, TranslateError> {
    let wire: wire::ChatRequest = parse_request(body)?;
    let mut extra = unknown_fields(body, wire::REQUEST_FIELDS)?;
    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::with_capacity(wire.messages.len());
    for message in wire.messages {
        let (instruction_role, content) = match message {
            wire::ChatMessage::System { content, .. } => (InstructionRole::System, content),
            wire::ChatMessage::Developer { content, .. } => (InstructionRole::Developer, content),
            wire::ChatMessage::User { content, .. } => {
                messages.push(Message {
                    role: Role::User,
                    content: text_blocks(content),
                });
                continue;
            }
            wire::ChatMessage::Assistant {
                content,
                reasoning_content,
                refusal,
                tool_calls,
                ..
            } => {
                let mut blocks = Vec::new();
                if let Some(thinking) = reasoning_content.filter(|text| !text.is_empty()) {
                    blocks.push(Block::Thinking {
                        thinking,
                        signature: None,
                    });
                }
                if let Some(content) = content {
                    blocks.extend(text_blocks(content));
                }
                if let Some(refusal) = refusal.filter(|text| !text.is_empty()) {
                    blocks.push(Block::text(refusal));
                }
                for call in tool_calls.unwrap_or_default() {
                    blocks.push(Block::ToolUse {
                        id: call.id,
                        name: call.function.name,
                        input: arguments(&call.function.arguments),
                        cache_control: None,
                    });
                }
                messages.push(Message {
                    role: Role::Assistant,
                    content: blocks,
                });
                continue;
            }
            wire::ChatMessage::Tool {
                content,
                tool_call_id,
            } => {
                let result = Block::ToolResult {
                    tool_use_id: tool_call_id,
                    content: text_blocks(content),
                    is_error: false,
                    cache_control: None,
                };
                // Consecutive tool messages answer one assistant turn: one user turn of results.
                match messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last
                                .content
                                .iter()
                                .all(|block| matches!(block, Block::ToolResult { .. })) =>
                    {
                        last.content.push(result);
                    }
                    _ => messages.push(Message {
                        role: Role::User,
                        content: vec![result],
                    }),
                }
                continue;
            }
        };
        let blocks = text_blocks(content);
        if messages.is_empty() {
            for block in blocks {
                if let Block::Text { text, .. } = block {
                    system.push(SystemBlock {
                        role: instruction_role,
                        text,
                        cache_control: None,
                    });
                }
            }
        } else {
            let role = match instruction_role {
                InstructionRole::System => Role::System,
                InstructionRole::Developer => Role::Developer,
            };
            messages.push(Message {
                role,
                content: blocks,
            });
        }
    }

    let tools = wire
        .tools
        .unwrap_or_default()
        .into_iter()
        .map(|tool| match tool {
            wire::ChatTool::Function(tool) => Tool::Function {
                name: tool.function.name,
                description: tool.function.description,
                parameters: tool.function.parameters.unwrap_or(Value::Null),
                strict: tool.function.strict,
                cache_control: None,
            },
            wire::ChatTool::Unknown(raw) => Tool::Unknown {
                dialect: Dialect::OpenAiChat,
                raw,
            },
        })
        .collect();
    let tool_choice = match wire.tool_choice {
        None => None,
        Some(wire::ChatToolChoice::Mode(mode)) => Some(match mode.as_str() {
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
        Some(wire::ChatToolChoice::Named(named)) if named.kind == "function" => {
            Some(ToolChoice::Named(named.function.name))
        }
        Some(wire::ChatToolChoice::Named(named)) => {
            extra.insert(
                "tool_choice".to_owned(),
                serde_json::to_value(named).unwrap_or(Value::Null),
            );
            None
        }
        Some(wire::ChatToolChoice::Other(raw)) => {
            // Kept for an OpenAI Chat upstream, reported as dropped for any other.
            extra.insert("tool_choice".to_owned(), raw);
            None
        }
    };
    let reasoning = match wire.reasoning_effort {
        None => None,
        Some(effort) => Some(Reasoning::Effort(Effort::parse(&effort).ok_or_else(
            || {
                TranslateError::bad_request(
                    "reasoning_effort",
                    format!("unknown value `{effort}`; expected minimal, low, medium or high"),
                )
            },
        )?)),
    };
    let response_format = wire.response_format.map(|format| match format {
        wire::ResponseFormat::Text {} => ResponseFormat::Text,
        wire::ResponseFormat::JsonObject {} => ResponseFormat::JsonObject,
        wire::ResponseFormat::JsonSchema { json_schema } => ResponseFormat::JsonSchema {
            name: json_schema.name,
            schema: json_schema.schema.unwrap_or(Value::Null),
            strict: json_schema.strict,
            description: json_schema.description,
        },
    });
    let stream = wire.stream.unwrap_or(false);
    Ok(Request {
        model: wire.model,
        system,
        messages,
        params: SamplingParams {
            max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
            temperature: wire.temperature,
            top_p: wire.top_p,
            top_k: None,
            stop: match wire.stop {
                None => Vec::new(),
                Some(wire::Stop::One(stop)) => vec![stop],
                Some(wire::Stop::Many(stops)) => stops,
            },
            seed: wire.seed,
            user: wire.user,
            metadata: wire.metadata,
            response_format,
            prompt_cache_key: wire.prompt_cache_key,
            verbosity: wire.verbosity,
        },
        tools,
        tool_choice,
        parallel_tool_calls: wire.parallel_tool_calls,
        reasoning,
        stream,
        include_usage: stream
            && wire
                .stream_options
                .and_then(|options| options.include_usage)
                .unwrap_or(false),
        extra: Extra::new(Dialect::OpenAiChat, extra),
    })
}

pub fn usage(usage: Option<&wire::ChatUsage>) -> Usage {
    let mut total = Usage::default();
    if let Some(usage) = usage {
        total.apply(&super::usage_update(usage));
    }
    total
}

pub fn response(body: &[u8]) -> Result<Response, TranslateError> {
    let wire: wire::ChatCompletion = parse_upstream(body)?;
    let choice =
        wire.choices.into_iter().next().ok_or_else(|| {
            TranslateError::BadUpstream("the completion has no choices".to_owned())
        })?;
    let message = choice.message;
    let mut content = Vec::new();
    if let Some(thinking) = message
        .reasoning_content
        .or(message.reasoning)
        .filter(|text| !text.is_empty())
    {
        content.push(Block::Thinking {
            thinking,
            signature: None,
        });
    }
    if let Some(text) = message.content.filter(|text| !text.is_empty()) {
        content.push(Block::text(text));
    }
    let refused = message
        .refusal
        .as_ref()
        .is_some_and(|text| !text.is_empty());
    if let Some(refusal) = message.refusal.filter(|text| !text.is_empty()) {
        content.push(Block::text(refusal));
    }
    let tool_calls = message.tool_calls.unwrap_or_default();
    let saw_tool_calls = !tool_calls.is_empty();
    for call in tool_calls {
        content.push(Block::ToolUse {
            id: call.id,
            name: call.function.name,
            input: arguments(&call.function.arguments),
            cache_control: None,
        });
    }
    let mut stop_reason =
        super::stop_reason_from_wire(choice.finish_reason.as_deref(), saw_tool_calls);
    if refused && stop_reason == StopReason::EndTurn {
        stop_reason = StopReason::ContentFilter;
    }
    Ok(Response {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason,
        usage: usage(wire.usage.as_ref()),
    })
}
