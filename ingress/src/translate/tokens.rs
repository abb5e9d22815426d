//! Token counting for `/v1/messages/count_tokens` when the upstream cannot count.
//!
//! This is an estimate. It uses OpenAI's `o200k_base` BPE, which the `tiktoken-rs` crate bundles
//! (nothing is downloaded at run time). Claude's tokenizer is not public, so counts for Claude
//! models differ by some percent. Every message adds a small framing overhead, every image a
//! fixed estimate (Anthropic's ~1,600 tokens for a large image; the pixels are not decoded),
//! and tools count their name, description and JSON schema.

use super::ir::{Block, DocumentSource, Request, Tool};

/// Tokens added per message for role and framing, as OpenAI's cookbook counts them.
const MESSAGE_OVERHEAD: u64 = 3;
/// Estimate for one image of unknown size.
const IMAGE_TOKENS: u64 = 1600;

fn text_tokens(text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len() as u64
}

fn block_tokens(block: &Block) -> u64 {
    match block {
        Block::Text { text, .. } => text_tokens(text),
        Block::Image { .. } => IMAGE_TOKENS,
        Block::ToolUse { name, input, .. } => text_tokens(name) + text_tokens(&input.to_string()),
        Block::ToolResult { content, .. } => {
            content.iter().map(block_tokens).sum::<u64>() + MESSAGE_OVERHEAD
        }
        Block::Thinking { thinking, .. } => text_tokens(thinking),
        Block::RedactedThinking { .. } => 0,
        Block::Document { source, .. } => match source {
            DocumentSource::Text { data } => text_tokens(data),
            // A rough upper bound: about one token per four bytes of the file's base64.
            DocumentSource::Base64 { data, .. } => data.len() as u64 / 4,
            DocumentSource::Url { .. } | DocumentSource::FileId { .. } => IMAGE_TOKENS,
        },
        Block::Unknown { raw, .. } => text_tokens(&raw.to_string()),
    }
}

/// Estimated input tokens of a request.
pub fn count_tokens(request: &Request) -> u64 {
    let system: u64 = request
        .system
        .iter()
        .map(|block| text_tokens(&block.text))
        .sum();
    let messages: u64 = request
        .messages
        .iter()
        .map(|message| MESSAGE_OVERHEAD + message.content.iter().map(block_tokens).sum::<u64>())
        .sum();
    let tools: u64 = request
        .tools
        .iter()
        .map(|tool| match tool {
            Tool::Function {
                name,
                description,
                parameters,
                ..
            } => {
                text_tokens(name)
                    + description.as_deref().map(text_tokens).unwrap_or(0)
                    + text_tokens(&parameters.to_string())
            }
            Tool::Custom {
                name,
                description,
                format,
            } => {
                text_tokens(name)
                    + description.as_deref().map(text_tokens).unwrap_or(0)
                    + format
                        .as_ref()
                        .map_or(0, |format| text_tokens(&format.to_string()))
            }
            Tool::Unknown { raw, .. } => text_tokens(&raw.to_string()),
        })
        .sum();
    system
        + messages
        + tools
        + if request.system.is_empty() {
            0
        } else {
            MESSAGE_OVERHEAD
        }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::translate::ir::{Message, Role};

    #[test]
    fn counts_known_text() {
        let request = Request {
            messages: vec![Message {
                role: Role::User,
                content: vec![Block::text("Hello, world!")],
            }],
            ..Request::default()
        };
        // "Hello, world!" is 4 tokens in o200k_base.
        assert_eq!(count_tokens(&request), 4 + MESSAGE_OVERHEAD);
    }
}
