//! AxonGate ingress: the public API every application and agent calls.
//!
//! It authenticates AxonGate tokens from memory, applies limits and budgets, routes a model alias
//! to upstream providers and keys, translates between the OpenAI and Anthropic protocols through
//! one protocol-neutral representation, retries and fails over, streams the answer back, and
//! publishes one event per request. It must never write to Postgres or ClickHouse, never block a
//! response on the bus, never call an address the operator did not configure, and never log or
//! return a secret.

pub mod translate;
pub mod config;

use anyhow::Context as _;
use kit::health::Health;

pub use config::IngressConfig;

/// Connects to NATS, ensures the streams, and serves until stopped.
///
/// # Errors
/// When NATS is unreachable at start or the port cannot be bound.
pub async fn run(config: IngressConfig) -> anyhow::Result<()> {
    let metrics = kit::health::install_metrics();
    let settings = kit::nats::StreamSettings { replicas: config.stream_replicas, ..Default::default() };
    let (_client, jetstream) = kit::nats::connect_and_ensure(&config.nats_url, "axongate-ingress", settings).await?;
    let health = Health::new(metrics).with_check("nats", kit::nats::ready_check(jetstream.clone()));
    let app = health.router::<()>();
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, node = %config.node_id, "ingress listening");
    axum::serve(listener, app).with_graceful_shutdown(kit::shutdown_signal()).await?;
    Ok(())
}
