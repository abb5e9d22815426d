//! AxonGate ingress: the public API every application and agent calls.
//!
//! It authenticates AxonGate tokens from memory, applies limits and budgets, routes a model alias
//! to upstream providers and keys, translates between the OpenAI and Anthropic protocols through
//! one protocol-neutral representation, retries and fails over, streams the answer back, and
//! publishes one event per request. It must never write to Postgres or ClickHouse, never block a
//! response on the bus, never call an address the operator did not configure, and never log or
//! return a secret.

pub mod translate;
