//! Anthropic Messages (`/v1/messages`).

pub mod decode;
pub mod encode;
pub mod stream;
pub mod wire;

pub use stream::{StreamDecoder, StreamEncoder};

use super::ir::StopReason;

/// Default `max_tokens` when the client did not say (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;
/// Anthropic's smallest thinking budget.
pub const MIN_THINKING_BUDGET: u64 = 1024;

pub fn stop_reason_from_wire(
    stop_reason: Option<&str>,
    stop_sequence: Option<String>,
) -> StopReason {
    match stop_reason {
        None | Some("end_turn") => StopReason::EndTurn,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("tool_use") => StopReason::ToolUse,
        Some("stop_sequence") => StopReason::StopSequence(stop_sequence),
        Some("refusal") => StopReason::ContentFilter,
        Some("pause_turn") => StopReason::Pause,
        Some(other) => StopReason::Other(other.to_owned()),
    }
}

/// The wire stop reason and stop sequence.
pub fn stop_reason_to_wire(stop_reason: &StopReason) -> (&'static str, Option<String>) {
    match stop_reason {
        StopReason::EndTurn | StopReason::Other(_) => ("end_turn", None),
        StopReason::MaxTokens => ("max_tokens", None),
        StopReason::ToolUse => ("tool_use", None),
        StopReason::StopSequence(sequence) => ("stop_sequence", sequence.clone()),
        StopReason::ContentFilter => ("refusal", None),
        StopReason::Pause => ("pause_turn", None),
    }
}
