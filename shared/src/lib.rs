//! The contract between AxonGate processes.
//!
//! Everything that crosses a process boundary is defined here: the event envelope and every
//! payload, the stream and subject names, ids, money and prices, user-token hashing and
//! provider-key encryption. Ingress, projector and admin-api depend on this crate and never on
//! one another, so this is the one place where the shape of an event is decided.
//!
//! This crate must stay light and pure: no HTTP framework, no database or bus driver, no async
//! runtime. It builds in seconds and its tests need no services. It must never log or render a
//! secret: the secret-bearing types here redact themselves in `Debug`.

pub mod audit;
pub mod chain;
pub mod config;
pub mod envelope;
pub mod glob;
pub mod ids;
pub mod money;
pub mod net;
pub mod request;
pub mod secret;
pub mod streams;
pub mod token;

pub use envelope::{Actor, DecodeError, Envelope, EventBody};
