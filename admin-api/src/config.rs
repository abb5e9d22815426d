//! The admin API's config: `admin-api.toml` and/or `AXONGATE_*` environment variables.

use kit::config::{ServiceConfig, require_url};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub nats_url: String,
    pub postgres_url: String,
    pub clickhouse_url: String,
    #[serde(default = "default_clickhouse_database")]
    pub clickhouse_database: String,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_node_id")]
    pub node_id: String,
    /// JetStream replicas per stream (1 single server, 3 cluster).
    #[serde(default = "default_replicas")]
    pub stream_replicas: usize,
    /// Where the built UI lives (`ui/dist`); served at `/` when present.
    #[serde(default = "default_ui_dir")]
    pub ui_dir: String,
}

fn default_clickhouse_database() -> String {
    "axongate".into()
}
fn default_listen() -> String {
    "127.0.0.1:8081".into()
}
fn default_node_id() -> String {
    "admin-api".into()
}
fn default_replicas() -> usize {
    1
}
fn default_ui_dir() -> String {
    "ui/dist".into()
}

impl ServiceConfig for AdminConfig {
    const FIELDS: &'static [&'static str] = &[
        "nats_url",
        "postgres_url",
        "clickhouse_url",
        "clickhouse_database",
        "listen",
        "node_id",
        "stream_replicas",
        "ui_dir",
    ];

    fn validate(&self) -> Result<(), String> {
        require_url("nats_url", &self.nats_url, &["nats", "tls"])?;
        require_url("postgres_url", &self.postgres_url, &["postgres", "postgresql"])?;
        require_url("clickhouse_url", &self.clickhouse_url, &["http", "https"])?;
        if !(1..=5).contains(&self.stream_replicas) {
            return Err(format!("stream_replicas must be 1 to 5, got {}", self.stream_replicas));
        }
        Ok(())
    }
}
