//! Anthropic wire to IR.

use super::wire;
use crate::translate::ir::{
    Block, Extra, ImageSource, InstructionRole, Message, Reasoning, Request, Response, Role,
    SamplingParams, SystemBlock, Tool, ToolChoice, Usage,
};
use crate::translate::json::{parse_request, parse_upstream, raw_fields, unknown_fields};
use crate::translate::{Dialect, TranslateError};

pub fn request(body: &[u8]) -> Result<Request, TranslateError> {
    let wire: wire::MessagesRequest = parse_request(body)?;
    let mut extra = unknown_fields(body, wire::REQUEST_FIELDS)?;
    // Settings of a kind this gateway does not know yet are forwarded as they came to an
    // Anthropic upstream (and reported as dropped for any other).
    if matches!(wire.tool_choice, Some(wire::ToolChoiceParam::Other)) {
        extra.extend(raw_fields(body, &["tool_choice"])?);
    }
    if matches!(wire.thinking, Some(wire::ThinkingParam::Other)) {
        extra.extend(raw_fields(body, &["thinking"])?);
    }
    let system = match wire.system {
        None => Vec::new(),
        Some(wire::System::Text(text)) => {
            vec![SystemBlock {
                role: InstructionRole::System,
                text,
                cache_control: None,
            }]
        }
        Some(wire::System::Blocks(blocks)) => blocks
            .into_iter()
            .map(|block| SystemBlock {
                role: InstructionRole::System,
                text: block.text,
                cache_control: block.cache_control,
            })
            .collect(),
    };
    let messages = wire
        .messages
        .into_iter()
        .map(|message| Message {
            role: match message.role {
                wire::MessageRole::User => Role::User,
                wire::MessageRole::Assistant => Role::Assistant,
                wire::MessageRole::System => Role::System,
            },
            content: content(message.content),
        })
        .collect();
    let tools = wire
        .tools
        .unwrap_or_default()
        .into_iter()
        .map(|tool| match tool {
            wire::ToolParam::Custom(tool) => Tool::Function {
                name: tool.name,
                description: tool.description,
                parameters: tool.input_schema,
                strict: None,
                cache_control: tool.cache_control,
            },
            wire::ToolParam::Unknown(raw) => Tool::Unknown {
                dialect: Dialect::Anthropic,
                raw,
            },
        })
        .collect();
    let (tool_choice, disable_parallel) = match wire.tool_choice {
        None => (None, None),
        Some(wire::ToolChoiceParam::Auto {
            disable_parallel_tool_use,
        }) => (Some(ToolChoice::Auto), disable_parallel_tool_use),
        Some(wire::ToolChoiceParam::Any {
            disable_parallel_tool_use,
        }) => (Some(ToolChoice::Required), disable_parallel_tool_use),
        Some(wire::ToolChoiceParam::Tool {
            name,
            disable_parallel_tool_use,
        }) => (Some(ToolChoice::Named(name)), disable_parallel_tool_use),
        Some(wire::ToolChoiceParam::None {}) => (Some(ToolChoice::None), None),
        Some(wire::ToolChoiceParam::Other) => (None, None),
    };
    let reasoning = match wire.thinking {
        None => None,
        Some(wire::ThinkingParam::Enabled { budget_tokens }) => {
            Some(Reasoning::Budget(budget_tokens))
        }
        Some(wire::ThinkingParam::Disabled {}) => Some(Reasoning::Disabled),
        Some(wire::ThinkingParam::Other) => None,
    };
    let stream = wire.stream.unwrap_or(false);
    Ok(Request {
        model: wire.model,
        system,
        messages,
        params: SamplingParams {
            max_tokens: wire.max_tokens,
            temperature: wire.temperature,
            top_p: wire.top_p,
            top_k: wire.top_k,
            stop: wire.stop_sequences.unwrap_or_default(),
            seed: None,
            user: wire.metadata.and_then(|metadata| metadata.user_id),
            metadata: None,
            response_format: None,
            prompt_cache_key: None,
            verbosity: None,
        },
        tools,
        tool_choice,
        parallel_tool_calls: disable_parallel.map(|disable| !disable),
        reasoning,
        stream,
        include_usage: stream,
        extra: Extra::new(Dialect::Anthropic, extra),
    })
}

fn content(content: wire::MessageContent) -> Vec<Block> {
    match content {
        wire::MessageContent::Text(text) => vec![Block::text(text)],
        wire::MessageContent::Blocks(blocks) => blocks.into_iter().map(block).collect(),
    }
}

pub fn block(block: wire::ContentBlock) -> Block {
    match block {
        wire::ContentBlock::Text {
            text,
            cache_control,
        } => Block::Text {
            text,
            cache_control,
        },
        wire::ContentBlock::Image {
            source,
            cache_control,
        } => Block::Image {
            source: match source {
                wire::ImageSource::Base64 { media_type, data } => {
                    ImageSource::Base64 { media_type, data }
                }
                wire::ImageSource::Url { url } => ImageSource::Url { url },
            },
            detail: None,
            cache_control,
        },
        wire::ContentBlock::ToolUse {
            id,
            name,
            input,
            cache_control,
        } => Block::ToolUse {
            id,
            name,
            input,
            cache_control,
        },
        wire::ContentBlock::ToolResult {
            tool_use_id,
            content,
            is_error,
            cache_control,
        } => Block::ToolResult {
            tool_use_id,
            content: match content {
                None => Vec::new(),
                Some(wire::ToolResultContent::Text(text)) => vec![Block::text(text)],
                Some(wire::ToolResultContent::Blocks(blocks)) => {
                    blocks.into_iter().map(self::block).collect()
                }
            },
            is_error: is_error.unwrap_or(false),
            cache_control,
        },
        wire::ContentBlock::Thinking {
            thinking,
            signature,
        } => Block::Thinking {
            thinking,
            // An empty signature is what a translated answer carries; it is no signature.
            signature: signature.filter(|signature| !signature.is_empty()),
        },
        wire::ContentBlock::RedactedThinking { data } => Block::RedactedThinking { data },
        wire::ContentBlock::Unknown(raw) => match document(&raw) {
            Some(document) => document,
            None => Block::Unknown {
                dialect: Dialect::Anthropic,
                raw,
            },
        },
    }
}

/// A `document` block with a base64, URL or plain-text source (the others — a content list, a
/// Files API id — stay as they came).
fn document(raw: &serde_json::Value) -> Option<Block> {
    use crate::translate::ir::DocumentSource;
    if crate::translate::json::type_tag(raw) != "document" {
        return None;
    }
    let source = raw.get("source")?;
    let text = |name: &str| {
        source
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let source = match crate::translate::json::type_tag(source) {
        "base64" => DocumentSource::Base64 {
            media_type: text("media_type")?,
            data: text("data")?,
        },
        "text" => DocumentSource::Text {
            data: text("data")?,
        },
        "url" => DocumentSource::Url { url: text("url")? },
        _ => return None,
    };
    Some(Block::Document {
        source,
        title: raw
            .get("title")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned),
        cache_control: raw.get("cache_control").cloned(),
        extra: raw
            .as_object()
            .map(|fields| {
                fields
                    .iter()
                    .filter(|(name, _)| {
                        !matches!(name.as_str(), "type" | "source" | "title" | "cache_control")
                    })
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub fn usage(usage: &wire::WireUsage) -> Usage {
    Usage {
        input_tokens: usage.input_tokens.unwrap_or(0),
        output_tokens: usage.output_tokens.unwrap_or(0),
        cache_read_tokens: usage.cache_read_input_tokens.unwrap_or(0),
        cache_write_tokens: usage.cache_creation_input_tokens.unwrap_or(0),
        reasoning_tokens: None,
    }
}

pub fn response(body: &[u8]) -> Result<Response, TranslateError> {
    let wire: wire::MessageResponse = parse_upstream(body)?;
    Ok(Response {
        id: wire.id,
        model: wire.model,
        content: wire.content.into_iter().map(block).collect(),
        stop_reason: super::stop_reason_from_wire(wire.stop_reason.as_deref(), wire.stop_sequence),
        usage: usage(&wire.usage),
    })
}
