//! The writers: the only code in the projector that talks to Postgres or ClickHouse.

pub mod ch;
pub mod pg;

use crate::config::ProjectorConfig;

/// Both stores, connected.
pub struct Stores {
    pub pg: pg::PgStore,
    pub ch: ch::ChStore,
}

impl Stores {
    /// Connects to Postgres and ClickHouse, failing with a clear message if either is down.
    ///
    /// # Errors
    /// When a store does not answer.
    pub async fn connect(config: &ProjectorConfig) -> anyhow::Result<Self> {
        let pg = pg::PgStore::connect(&config.postgres_url).await?;
        let ch = ch::ChStore::connect(&config.clickhouse_url, &config.clickhouse_database).await?;
        Ok(Self { pg, ch })
    }

    /// Applies the Postgres (refinery) and ClickHouse migrations.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.pg.migrate().await?;
        self.ch.migrate().await?;
        Ok(())
    }
}
