//! ClickHouse writer: the migration runner and request rows (decided by `fold::requests`).
//!
//! The schema and every statement here run on ClickHouse 18.16 and on current releases.
//! Rows are idempotent by stream sequence: at start the writer reads `max(stream_seq)` and
//! skips anything at or below it, so a batch redelivered after a crash between insert and ack
//! is not counted twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use clickhouse::{Client, Row};
use serde::Serialize;
use time::OffsetDateTime;

use kit::health::{Check, CheckFuture};

use crate::fold::RequestRow;

/// The ClickHouse migrations, in order. Each file may hold several statements separated by a
/// line that is just `;`… in practice one statement per file keeps 18.16 happy.
const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "requests",
        include_str!("../../../migrations/clickhouse/001_requests.sql"),
    ),
    (
        2,
        "requests_trace_id",
        include_str!("../../../migrations/clickhouse/002_requests_trace_id.sql"),
    ),
    (
        3,
        "requests_config_seq",
        include_str!("../../../migrations/clickhouse/003_requests_config_seq.sql"),
    ),
    (
        4,
        "requests_cache_hit",
        include_str!("../../../migrations/clickhouse/004_requests_cache_hit.sql"),
    ),
    (
        5,
        "requests_routing",
        include_str!("../../../migrations/clickhouse/005_requests_routing.sql"),
    ),
    (
        6,
        "requests_team",
        include_str!("../../../migrations/clickhouse/006_requests_team.sql"),
    ),
];

pub struct ChStore {
    client: Client,
    database: String,
    high_water_mark: AtomicU64,
}

/// A [`RequestRow`] as the `requests` table's RowBinary columns: the ClickHouse encoding of
/// each value, nothing else.
#[derive(Row, Serialize)]
struct RequestColumns<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    event_id: uuid::Uuid,
    stream_seq: u64,
    #[serde(with = "clickhouse::serde::time::date")]
    date: time::Date,
    #[serde(with = "clickhouse::serde::time::datetime")]
    occurred_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime")]
    started_at: OffsetDateTime,
    node: &'a str,
    request_id: &'a str,
    token_id: &'a str,
    user_id: &'a str,
    model_alias: &'a str,
    provider_id: &'a str,
    upstream_model: &'a str,
    provider_key_id: &'a str,
    client_protocol: &'a str,
    upstream_protocol: &'a str,
    stream: u8,
    outcome: &'a str,
    error_kind: &'a str,
    http_status: u16,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    usage_estimated: u8,
    cost_nanos: i64,
    currency: &'a str,
    price_version: u32,
    has_ttfb: u8,
    ttfb_us: u64,
    latency_us: u64,
    attempts: u16,
    trace_id: &'a str,
    config_seq: u64,
    cache_hit: u8,
    saved_input_tokens: u64,
    saved_output_tokens: u64,
    saved_cost_nanos: i64,
    routing_strategy: &'a str,
    routing_session: &'a str,
    team_id: &'a str,
}

impl<'a> From<&'a RequestRow> for RequestColumns<'a> {
    fn from(row: &'a RequestRow) -> Self {
        Self {
            event_id: row.event_id,
            stream_seq: row.stream_seq,
            date: row.date,
            occurred_at: row.occurred_at,
            started_at: row.started_at,
            node: &row.node,
            request_id: &row.request_id,
            token_id: &row.token_id,
            user_id: &row.user_id,
            model_alias: &row.model_alias,
            provider_id: &row.provider_id,
            upstream_model: &row.upstream_model,
            provider_key_id: &row.provider_key_id,
            client_protocol: &row.client_protocol,
            upstream_protocol: &row.upstream_protocol,
            stream: row.stream,
            outcome: &row.outcome,
            error_kind: &row.error_kind,
            http_status: row.http_status,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cache_read_tokens: row.cache_read_tokens,
            cache_write_tokens: row.cache_write_tokens,
            usage_estimated: row.usage_estimated,
            cost_nanos: row.cost_nanos,
            currency: &row.currency,
            price_version: row.price_version,
            has_ttfb: row.has_ttfb,
            ttfb_us: row.ttfb_us,
            latency_us: row.latency_us,
            attempts: row.attempts,
            trace_id: &row.trace_id,
            config_seq: row.config_seq,
            cache_hit: row.cache_hit,
            saved_input_tokens: row.saved_input_tokens,
            saved_output_tokens: row.saved_output_tokens,
            saved_cost_nanos: row.saved_cost_nanos,
            routing_strategy: &row.routing_strategy,
            routing_session: &row.routing_session,
            team_id: &row.team_id,
        }
    }
}

impl ChStore {
    /// Connects, creating the database if needed.
    ///
    /// # Errors
    /// When ClickHouse does not answer.
    pub async fn connect(url: &str, database: &str) -> anyhow::Result<Self> {
        let server = Client::default().with_url(url);
        server
            .query(&format!("CREATE DATABASE IF NOT EXISTS {database}"))
            .execute()
            .await
            .with_context(|| format!("ClickHouse at {url} does not answer"))?;
        Ok(Self {
            client: server.with_database(database),
            database: database.to_owned(),
            high_water_mark: AtomicU64::new(0),
        })
    }

    /// A client on the AxonGate database, for the rebuild command.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Applies the migrations not yet recorded in `schema_migrations`, then loads the
    /// high-water mark.
    ///
    /// # Errors
    /// When a statement fails.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.client
            .query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, applied_at DateTime) \
                 ENGINE = MergeTree ORDER BY version",
            )
            .execute()
            .await
            .context("creating ClickHouse schema_migrations")?;
        let applied: Vec<u32> = self
            .client
            .query("SELECT version FROM schema_migrations")
            .fetch_all()
            .await
            .context("reading ClickHouse schema_migrations")?;
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            self.client
                .query(sql)
                .execute()
                .await
                .with_context(|| format!("ClickHouse migration {version} ({name})"))?;
            self.client
                .query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, now())")
                .bind(*version)
                .bind(*name)
                .execute()
                .await?;
            tracing::info!(version, name, database = %self.database, "applied ClickHouse migration");
        }
        self.load_high_water_mark().await
    }

    /// Reads `max(stream_seq)` from the table.
    ///
    /// # Errors
    /// When ClickHouse does not answer.
    pub async fn load_high_water_mark(&self) -> anyhow::Result<()> {
        let highest: u64 = self
            .client
            .query("SELECT max(stream_seq) FROM requests")
            .fetch_one()
            .await?;
        self.high_water_mark.store(highest, Ordering::SeqCst);
        Ok(())
    }

    #[must_use]
    pub fn high_water_mark(&self) -> u64 {
        self.high_water_mark.load(Ordering::SeqCst)
    }

    /// Inserts the rows above the high-water mark as one block and advances the mark.
    /// Returns how many rows were written.
    ///
    /// # Errors
    /// When ClickHouse refuses or does not answer; the mark then stays where it was.
    pub async fn insert_requests(&self, rows: &[RequestRow]) -> anyhow::Result<usize> {
        let mark = self.high_water_mark();
        let fresh: Vec<&RequestRow> = rows.iter().filter(|row| row.stream_seq > mark).collect();
        if fresh.is_empty() {
            return Ok(0);
        }
        let mut insert = self.client.insert("requests")?;
        for row in &fresh {
            insert.write(&RequestColumns::from(*row)).await?;
        }
        insert.end().await?;
        let highest = fresh.iter().map(|row| row.stream_seq).max().unwrap_or(mark);
        self.high_water_mark.fetch_max(highest, Ordering::SeqCst);
        Ok(fresh.len())
    }

    /// Empties the requests table for a rebuild.
    ///
    /// # Errors
    /// When ClickHouse refuses.
    pub async fn truncate_requests(&self) -> anyhow::Result<()> {
        // 18.16 has TRUNCATE TABLE for MergeTree tables.
        self.client
            .query("TRUNCATE TABLE requests")
            .execute()
            .await?;
        self.high_water_mark.store(0, Ordering::SeqCst);
        Ok(())
    }

    /// A `/ready` check that runs `SELECT 1`.
    #[must_use]
    pub fn ready_check(&self) -> Check {
        let client = self.client.clone();
        Arc::new(move || -> CheckFuture {
            let client = client.clone();
            Box::pin(async move {
                client
                    .query("SELECT 1")
                    .fetch_one::<u8>()
                    .await
                    .map(|_| ())
                    .map_err(|error| error.to_string())
            })
        })
    }
}
