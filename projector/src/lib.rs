//! AxonGate projector: folds the event streams into the read models.
//!
//! `AXONGATE_CONFIG` becomes the Postgres config views and the audit view; `AXONGATE_AUDIT`
//! joins the audit view; `AXONGATE_REQUESTS` becomes ClickHouse request rows. Each projection is
//! a pure fold (`fold`) and a writer (`store`) that records the last applied stream sequence
//! together with the change, so redelivery is harmless and a rebuild is a replay from the start.
//!
//! The projector must never lose or double an event: it acknowledges a message only after its
//! effect is durably written, and it never publishes config events itself.

pub mod config;
pub mod consumer;
pub mod fold;
pub mod rebuild;
pub mod store;

use std::sync::Arc;

use anyhow::Context as _;
use kit::health::Health;

pub use config::ProjectorConfig;

/// Connects to everything, applies migrations, serves `/health`, `/ready`, `/metrics`, and runs
/// the three projections until the process is stopped.
///
/// # Errors
/// When a dependency is unreachable at start or a migration fails.
pub async fn run(config: ProjectorConfig) -> anyhow::Result<()> {
    let metrics = kit::health::install_metrics();
    let stores = store::Stores::connect(&config).await?;
    stores.migrate().await?;
    let (_client, jetstream) = kit::nats::connect_and_ensure(
        &config.nats_url,
        "axongate-projector",
        config.stream_settings(),
    )
    .await?;

    let health = Health::new(metrics)
        .with_check("nats", kit::nats::ready_check(jetstream.clone()))
        .with_check("postgres", kit::pg::ready_check(stores.pg.pool.clone()))
        .with_check("clickhouse", stores.ch.ready_check());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, "projector serving /health, /ready, /metrics");
    let server = axum::serve(listener, health.router::<()>());

    let stores = Arc::new(stores);
    let projections = consumer::run_all(jetstream, stores, config.clone());
    tokio::select! {
        result = server => result.context("health server stopped")?,
        result = projections => result?,
        _ = kit::shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}
