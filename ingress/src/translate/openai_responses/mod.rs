//! OpenAI Responses (`/v1/responses`).

pub mod decode;
pub mod encode;
pub mod stream;
pub mod wire;

pub use stream::{StreamDecoder, StreamEncoder};

use super::ir::{Usage, UsageUpdate};

/// Responses counts cached tokens inside `input_tokens`, as Chat does inside `prompt_tokens`.
pub fn usage_update(usage: &wire::ResponsesUsage) -> UsageUpdate {
    let cached = usage.input_tokens_details.cached_tokens.unwrap_or(0);
    UsageUpdate {
        input_tokens: Some(usage.input_tokens.saturating_sub(cached)),
        output_tokens: Some(usage.output_tokens),
        cache_read_tokens: Some(cached),
        cache_write_tokens: Some(0),
        reasoning_tokens: usage.output_tokens_details.reasoning_tokens,
    }
}

pub fn usage_to_wire(usage: &Usage) -> wire::ResponsesUsage {
    let input_tokens = usage.prompt_tokens();
    wire::ResponsesUsage {
        input_tokens,
        input_tokens_details: wire::TokenDetails {
            cached_tokens: Some(usage.cache_read_tokens),
            reasoning_tokens: None,
        },
        output_tokens: usage.output_tokens,
        output_tokens_details: wire::TokenDetails {
            cached_tokens: None,
            reasoning_tokens: Some(usage.reasoning_tokens.unwrap_or(0)),
        },
        total_tokens: input_tokens + usage.output_tokens,
    }
}
