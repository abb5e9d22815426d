//! AxonGate's load-testing kit: a mock of the upstream LLM providers and the pieces the load
//! driver shares with it.
//!
//! [`mock::MockUpstream`] speaks the public wire formats of OpenAI Chat Completions, OpenAI
//! Responses, OpenAI Embeddings and Anthropic Messages, plain and streamed, with deterministic
//! usage figures and failure knobs. Integration tests in other crates start it in-process; the
//! `mock-upstream` binary serves it for benchmarks and the local dev stack. [`sse`] decodes
//! server-sent events without assuming that a network chunk is one event. [`driver`] is the load
//! driver behind the `loadgen` binary (open and closed loop, HDR histograms, JSON and Markdown
//! reports), and `bench-setup` configures a gateway for it by publishing config events.
//!
//! This crate must never become the bottleneck of a benchmark: response bodies are built with
//! typed serializers into one buffer per request, recording can be switched off, and nothing on
//! the request path takes a lock that is held across an await. The mock and the driver never use
//! the gateway's own crates, so they cannot accidentally share a bug with the code they test; only
//! the `bench-setup` binary uses `shared` and `kit`, to publish config events as the admin API
//! would.

pub mod driver;
pub mod mock;
pub mod sse;
