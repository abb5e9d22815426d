//! Starts the mock in-process and checks every wire format, every failure knob and the request
//! record through a real HTTP client.

// Helpers outside `#[test]` functions are not covered by clippy.toml's test exemption; in a test
// crate a failed unwrap is the assertion we want.
#![expect(clippy::unwrap_used, reason = "test helpers panic to fail the test")]

mod anthropic;
mod common;
mod embeddings_models;
mod failures;
mod gemini;
mod openai_chat;
mod openai_responses;
mod recording;
mod scripted;
