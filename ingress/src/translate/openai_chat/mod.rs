//! OpenAI Chat Completions (`/v1/chat/completions`).

pub mod decode;
pub mod encode;
pub mod stream;
pub mod wire;

pub use stream::{StreamDecoder, StreamEncoder};

use super::ir::{ImageSource, StopReason, Usage, UsageUpdate};

/// OpenAI accepts at most four stop sequences.
pub const MAX_STOP_SEQUENCES: usize = 4;

pub fn stop_reason_from_wire(finish_reason: Option<&str>, saw_tool_calls: bool) -> StopReason {
    match finish_reason {
        // Several OpenAI-compatible servers say `stop` after tool calls; the calls are what
        // the client must act on.
        None | Some("stop") if saw_tool_calls => StopReason::ToolUse,
        None | Some("stop") => StopReason::EndTurn,
        Some("length") => StopReason::MaxTokens,
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("content_filter") => StopReason::ContentFilter,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

pub fn stop_reason_to_wire(stop_reason: &StopReason) -> &'static str {
    match stop_reason {
        StopReason::EndTurn
        | StopReason::StopSequence(_)
        | StopReason::Pause
        | StopReason::Other(_) => "stop",
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
    }
}

/// OpenAI's `prompt_tokens` includes cached tokens; ours does not.
pub fn usage_update(usage: &wire::ChatUsage) -> UsageUpdate {
    let cached = usage
        .prompt_tokens_details
        .as_ref()
        .and_then(|details| details.cached_tokens)
        .or(usage.prompt_cache_hit_tokens)
        .unwrap_or(0);
    UsageUpdate {
        input_tokens: Some(usage.prompt_tokens.saturating_sub(cached)),
        output_tokens: Some(usage.completion_tokens),
        cache_read_tokens: Some(cached),
        cache_write_tokens: Some(0),
        reasoning_tokens: usage
            .completion_tokens_details
            .as_ref()
            .and_then(|details| details.reasoning_tokens),
    }
}

pub fn usage_to_wire(usage: &Usage) -> wire::ChatUsage {
    let prompt_tokens = usage.prompt_tokens();
    wire::ChatUsage {
        prompt_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: prompt_tokens + usage.output_tokens,
        prompt_tokens_details: Some(wire::PromptTokensDetails {
            cached_tokens: Some(usage.cache_read_tokens),
        }),
        completion_tokens_details: Some(wire::CompletionTokensDetails {
            reasoning_tokens: Some(usage.reasoning_tokens.unwrap_or(0)),
        }),
        prompt_cache_hit_tokens: None,
    }
}

/// `data:image/png;base64,AAAA` to a base64 source; anything else is a URL.
pub fn image_from_url(url: &str) -> ImageSource {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((header, data)) = rest.split_once(',')
        && let Some(media_type) = header.strip_suffix(";base64")
    {
        return ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        };
    }
    ImageSource::Url {
        url: url.to_owned(),
    }
}

pub fn image_to_url(source: &ImageSource) -> String {
    match source {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url { url } => url.clone(),
    }
}
