//! The projector's config: `projector.toml` and/or `AXONGATE_*` environment variables.

use std::time::Duration;

use kit::config::{ServiceConfig, require_url};
use kit::nats::StreamSettings;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectorConfig {
    pub nats_url: String,
    pub postgres_url: String,
    pub clickhouse_url: String,
    #[serde(default = "default_clickhouse_database")]
    pub clickhouse_database: String,
    /// Address of the `/health`, `/ready`, `/metrics` server.
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_node_id")]
    pub node_id: String,
    /// JetStream replicas per stream (1 single server, 3 cluster).
    #[serde(default = "default_replicas")]
    pub stream_replicas: usize,
    /// How many days request events stay in the stream (ClickHouse keeps the history).
    #[serde(default = "default_requests_max_age_days")]
    pub requests_max_age_days: u64,
    /// Request rows are written to ClickHouse in batches of at most this many…
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// …or after this long, whichever comes first.
    #[serde(default = "default_batch_max_wait_ms")]
    pub batch_max_wait_ms: u64,
}

fn default_clickhouse_database() -> String {
    "axongate".into()
}
fn default_listen() -> String {
    "127.0.0.1:8082".into()
}
fn default_node_id() -> String {
    "projector".into()
}
fn default_replicas() -> usize {
    1
}
fn default_requests_max_age_days() -> u64 {
    30
}
fn default_batch_size() -> usize {
    5_000
}
fn default_batch_max_wait_ms() -> u64 {
    500
}

impl ServiceConfig for ProjectorConfig {
    const FIELDS: &'static [&'static str] = &[
        "nats_url",
        "postgres_url",
        "clickhouse_url",
        "clickhouse_database",
        "listen",
        "node_id",
        "stream_replicas",
        "requests_max_age_days",
        "batch_size",
        "batch_max_wait_ms",
    ];

    fn validate(&self) -> Result<(), String> {
        require_url("nats_url", &self.nats_url, &["nats", "tls"])?;
        require_url(
            "postgres_url",
            &self.postgres_url,
            &["postgres", "postgresql"],
        )?;
        require_url("clickhouse_url", &self.clickhouse_url, &["http", "https"])?;
        if !(1..=5).contains(&self.stream_replicas) {
            return Err(format!(
                "stream_replicas must be 1 to 5, got {}",
                self.stream_replicas
            ));
        }
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err(format!(
                "batch_size must be 1 to 100000, got {}",
                self.batch_size
            ));
        }
        if !self
            .clickhouse_database
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err("clickhouse_database may contain only letters, digits and _".into());
        }
        Ok(())
    }
}

impl ProjectorConfig {
    #[must_use]
    pub fn stream_settings(&self) -> StreamSettings {
        StreamSettings {
            replicas: self.stream_replicas,
            requests_max_age: Duration::from_secs(self.requests_max_age_days * 24 * 3600),
            ..StreamSettings::default()
        }
    }
}
