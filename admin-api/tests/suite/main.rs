//! admin-api's integration tests against real services, as one test binary (one link of the
//! crate and its dependencies instead of one per file): each module is one area, and `common`
//! is the harness they share.

mod common;

mod alerts;
mod analytics;
mod apply;
mod auth;
mod config_at;
mod hostile;
mod integrity;
mod rbac;
mod ready;
mod rerate;
mod resources;
mod secrets;
mod sso;
mod teams;
mod usage;
