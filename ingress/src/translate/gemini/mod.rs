//! Google Gemini (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`).
//!
//! The model and whether to stream are named by the URL, not the body: a decoded request has
//! an empty `model` and `stream: false` until the endpoint sets them.
//!
//! Function calls carry Gemini's `id` when it has one; a call without one gets a stable id
//! ([`generated_id`]: the content's position in a request, or the response id of an answer,
//! and the call's number among its calls, so an answer and its stream agree), and a
//! `functionResponse` without one answers the earliest open call of its name. Generated ids
//! are never sent to a Gemini upstream.
//!
//! Thought signatures: a thought part's signature is the signature of that [`Block::Thinking`];
//! a signature on any other part (Gemini puts it on the first function call of a step) becomes
//! a thinking block with no text just before that part, and goes back onto the part that
//! follows it when encoded for Gemini again — so a round trip through any client that keeps
//! thinking blocks (Anthropic's, Responses' reasoning items) gives Gemini its signatures back
//! where it put them.
//!
//! [`Block::Thinking`]: crate::translate::ir::Block::Thinking

pub mod decode;
pub mod encode;
pub mod stream;
pub mod wire;

pub use stream::{StreamDecoder, StreamEncoder};

use super::ir::{StopReason, Usage, UsageUpdate};

/// Gemini takes at most five stop sequences.
pub const MAX_STOP_SEQUENCES: usize = 5;

/// The prefix of the function-call ids this gateway makes up for calls Gemini sent without one.
pub const GENERATED_ID_PREFIX: &str = "gcall_";

/// The signature Google documents for function calls whose history came from another model:
/// Gemini 3 refuses a step's first function call without a signature otherwise.
pub const FOREIGN_CALL_SIGNATURE: &str = "skip_thought_signature_validator";

/// A stable id for a function call Gemini sent without one: `scope` names the request position
/// or the response, `index` the call within it.
pub fn generated_id(scope: &str, index: usize) -> String {
    let scope: String = scope
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(48)
        .collect();
    format!("{GENERATED_ID_PREFIX}{scope}_{index}")
}

/// Whether an id was made up here (and so means nothing to Gemini).
pub fn is_generated_id(id: &str) -> bool {
    id.starts_with(GENERATED_ID_PREFIX)
}

/// Gemini's finish reasons: safety, recitation and the block lists are content filters;
/// `STOP` after a function call is a tool use.
pub fn stop_reason_from_wire(finish_reason: Option<&str>, saw_function_call: bool) -> StopReason {
    match finish_reason {
        None | Some("STOP" | "FINISH_REASON_UNSPECIFIED") if saw_function_call => {
            StopReason::ToolUse
        }
        None | Some("STOP" | "FINISH_REASON_UNSPECIFIED") => StopReason::EndTurn,
        Some("MAX_TOKENS") => StopReason::MaxTokens,
        Some(
            "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION",
        ) => StopReason::ContentFilter,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

/// The nearest Gemini finish reason (a function call ends with `STOP`, as Gemini's do).
pub fn stop_reason_to_wire(stop_reason: &StopReason) -> &'static str {
    match stop_reason {
        StopReason::EndTurn
        | StopReason::ToolUse
        | StopReason::StopSequence(_)
        | StopReason::Pause => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        StopReason::Other(_) => "OTHER",
    }
}

/// Gemini's prompt count includes cached tokens (ours does not) and its candidates count
/// excludes thoughts (ours includes reasoning in the output).
pub fn usage_update(usage: &wire::UsageMetadata) -> UsageUpdate {
    let cached = usage.cached_content_token_count.unwrap_or(0);
    let thoughts = usage.thoughts_token_count;
    UsageUpdate {
        input_tokens: usage
            .prompt_token_count
            .map(|prompt| prompt.saturating_sub(cached)),
        output_tokens: usage
            .candidates_token_count
            .or(thoughts.map(|_| 0))
            .map(|candidates| candidates + thoughts.unwrap_or(0)),
        cache_read_tokens: usage.prompt_token_count.map(|_| cached),
        cache_write_tokens: usage.prompt_token_count.map(|_| 0),
        reasoning_tokens: thoughts,
    }
}

pub fn usage(usage: &wire::UsageMetadata) -> Usage {
    let mut total = Usage::default();
    total.apply(&usage_update(usage));
    total
}

pub fn usage_to_wire(usage: &Usage) -> wire::UsageMetadata {
    let thoughts = usage.reasoning_tokens;
    let candidates = usage.output_tokens.saturating_sub(thoughts.unwrap_or(0));
    let prompt = usage.prompt_tokens();
    wire::UsageMetadata {
        prompt_token_count: Some(prompt),
        candidates_token_count: Some(candidates),
        total_token_count: Some(prompt + usage.output_tokens),
        cached_content_token_count: Some(usage.cache_read_tokens).filter(|&tokens| tokens > 0),
        thoughts_token_count: thoughts,
        tool_use_prompt_token_count: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_counts_cached_and_thought_tokens_once() {
        let wire = wire::UsageMetadata {
            prompt_token_count: Some(100),
            candidates_token_count: Some(20),
            total_token_count: Some(150),
            cached_content_token_count: Some(60),
            thoughts_token_count: Some(30),
            tool_use_prompt_token_count: None,
        };
        let usage = usage(&wire);
        assert_eq!(usage.input_tokens, 40);
        assert_eq!(usage.cache_read_tokens, 60);
        assert_eq!(usage.output_tokens, 50);
        assert_eq!(usage.reasoning_tokens, Some(30));
        let back = usage_to_wire(&usage);
        assert_eq!(back.prompt_token_count, Some(100));
        assert_eq!(back.candidates_token_count, Some(20));
        assert_eq!(back.thoughts_token_count, Some(30));
        assert_eq!(back.total_token_count, Some(150));
    }

    #[test]
    fn generated_ids_are_recognised_and_tame() {
        let id = generated_id("resp/1 2", 3);
        assert_eq!(id, "gcall_resp12_3");
        assert!(is_generated_id(&id));
        assert!(!is_generated_id("call_abc"));
    }
}
