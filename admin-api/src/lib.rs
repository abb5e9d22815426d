//! AxonGate admin API: the operators' API.
//!
//! Login, role-based access (an oso policy), commands that become config events on
//! `AXONGATE_CONFIG`, reads from the Postgres views and ClickHouse, audit and replay, and the
//! built UI. It must never write the config views itself (the projector does, from the events),
//! and never return a secret after the response that created it.

pub mod config;

use anyhow::Context as _;
use kit::health::Health;

pub use config::AdminConfig;

/// Connects to NATS, Postgres and ClickHouse, ensures the streams, and serves until stopped.
///
/// # Errors
/// When a dependency is unreachable at start or the port cannot be bound.
pub async fn serve(config: AdminConfig) -> anyhow::Result<()> {
    let metrics = kit::health::install_metrics();
    let pool = kit::pg::connect(&config.postgres_url, 16).await?;
    let settings = kit::nats::StreamSettings { replicas: config.stream_replicas, ..Default::default() };
    let (_client, jetstream) = kit::nats::connect_and_ensure(&config.nats_url, "axongate-admin-api", settings).await?;
    let clickhouse = clickhouse::Client::default()
        .with_url(&config.clickhouse_url)
        .with_database(&config.clickhouse_database);
    clickhouse
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
        .with_context(|| format!("ClickHouse at {} does not answer", config.clickhouse_url))?;
    let clickhouse_check: kit::health::Check = std::sync::Arc::new(move || -> kit::health::CheckFuture {
        let client = clickhouse.clone();
        Box::pin(async move {
            client.query("SELECT 1").fetch_one::<u8>().await.map(|_| ()).map_err(|error| error.to_string())
        })
    });
    let health = Health::new(metrics)
        .with_check("nats", kit::nats::ready_check(jetstream.clone()))
        .with_check("postgres", kit::pg::ready_check(pool.clone()))
        .with_check("clickhouse", clickhouse_check);
    let app = health.router::<()>();
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, "admin API listening");
    axum::serve(listener, app).with_graceful_shutdown(kit::shutdown_signal()).await?;
    Ok(())
}
