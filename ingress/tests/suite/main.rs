//! Ingress's integration tests against real services, as one test binary (one link of the
//! crate and its dependencies instead of one per file): each module is one area, and `support`
//! is the harness they share. The data-driven translation cases, which need no service, are
//! their own binary (`tests/translate_cases.rs`).

mod support;

mod agent_clis;
mod compose_file;
mod dimension_limits;
mod gateway;
mod gemini;
mod hardening;
mod hostile;
mod nats_auth;
mod otel;
mod resilience;
mod response_cache;
mod routing_strategies;
mod scale_out;
mod sdk_clients;
