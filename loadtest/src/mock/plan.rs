//! What an answer will contain, decided once so that the plain and streamed forms of every
//! dialect report the same text and the same usage.

use super::errors::Dialect;
use super::prompt::{Prompt, ToolCall};
use super::server::Exchange;
use super::text;

/// The content and usage of one successful answer.
#[derive(Debug)]
pub struct Plan<'a> {
    /// Words of generated text (0 when answering with a tool call).
    pub text_tokens: u32,
    /// Content deltas in a stream.
    pub chunks: u32,
    /// The request's output limit cut the text short.
    pub truncated: bool,
    pub tool_call: Option<&'a ToolCall>,
    /// A scripted text, sent instead of the generated words.
    pub reply: Option<&'a str>,
    pub usage: Usage,
}

/// Usage in neutral terms; each dialect maps it to its own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens, including cached ones.
    pub input_tokens: u32,
    pub cache_read_tokens: u32,
    pub cache_write_tokens: u32,
    pub output_tokens: u32,
}

impl Usage {
    /// Anthropic's `input_tokens`, which excludes cache reads and writes.
    pub fn uncached_input_tokens(&self) -> u32 {
        self.input_tokens
            .saturating_sub(self.cache_read_tokens)
            .saturating_sub(self.cache_write_tokens)
    }

    pub fn total_tokens(&self) -> u32 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

pub fn plan<'a>(exchange: &Exchange<'_>, prompt: &'a Prompt, dialect: Dialect) -> Plan<'a> {
    let behavior = exchange.behavior;
    let (cache_read_tokens, cache_write_tokens) = exchange.shared.cache_usage(prompt, dialect);
    let (text_tokens, output_tokens, truncated) = match &prompt.tool_call {
        Some(call) => {
            let tokens = u32::try_from(call.arguments.len().div_ceil(4))
                .unwrap_or(u32::MAX)
                .max(1);
            (0, tokens, false)
        }
        None if prompt.reply.is_some() => {
            let bytes = prompt.reply.as_ref().map_or(0, String::len);
            let tokens = u32::try_from(bytes.div_ceil(4)).unwrap_or(u32::MAX).max(1);
            (0, tokens, false)
        }
        None => {
            let wanted = behavior.output_token_count();
            match prompt.max_output_tokens {
                Some(limit) if limit < wanted => (limit, limit, true),
                _ => (wanted, wanted, false),
            }
        }
    };
    Plan {
        text_tokens,
        chunks: behavior.chunks.max(1),
        truncated,
        tool_call: prompt.tool_call.as_ref(),
        reply: prompt.reply.as_deref(),
        usage: Usage {
            input_tokens: prompt.input_tokens,
            cache_read_tokens,
            cache_write_tokens,
            output_tokens,
        },
    }
}

impl Plan<'_> {
    /// The whole text: the scripted reply, or the generated words.
    pub fn text(&self) -> &str {
        self.reply
            .unwrap_or_else(|| text::words(0, self.text_tokens))
    }

    /// The text of each content delta.
    pub fn text_chunks(&self) -> impl Iterator<Item = &str> {
        let scripted = self
            .reply
            .map(|reply| text::split_fragments(reply, self.chunks));
        let generated = self.reply.is_none().then(|| {
            text::chunk_ranges(self.text_tokens, self.chunks)
                .map(|(start, end)| text::words(start, end))
        });
        scripted
            .into_iter()
            .flatten()
            .chain(generated.into_iter().flatten())
    }

    /// The tool-call argument fragments of each delta.
    pub fn argument_chunks(&self) -> Vec<&str> {
        self.tool_call
            .map(|call| text::split_fragments(&call.arguments, self.chunks))
            .unwrap_or_default()
    }
}
