//! ClickHouse writer: the migration runner and request rows.
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
use shared::Envelope;
use shared::request::{RequestEvent, RequestFinished};
use time::OffsetDateTime;

use kit::health::{Check, CheckFuture};

/// The ClickHouse migrations, in order. Each file may hold several statements separated by a
/// line that is just `;`… in practice one statement per file keeps 18.16 happy.
const MIGRATIONS: &[(u32, &str, &str)] = &[(
    1,
    "requests",
    include_str!("../../../migrations/clickhouse/001_requests.sql"),
)];

pub struct ChStore {
    client: Client,
    database: String,
    high_water_mark: AtomicU64,
}

/// One row of the `requests` table.
#[derive(Debug, Clone, Row, Serialize)]
pub struct RequestRow {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: uuid::Uuid,
    pub stream_seq: u64,
    #[serde(with = "clickhouse::serde::time::date")]
    pub date: time::Date,
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub occurred_at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::time::datetime")]
    pub started_at: OffsetDateTime,
    pub node: String,
    pub request_id: String,
    pub token_id: String,
    pub user_id: String,
    pub model_alias: String,
    pub provider_id: String,
    pub upstream_model: String,
    pub provider_key_id: String,
    pub client_protocol: String,
    pub upstream_protocol: String,
    pub stream: u8,
    pub outcome: String,
    pub error_kind: String,
    pub http_status: u16,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub usage_estimated: u8,
    pub cost_nanos: i64,
    pub currency: String,
    pub price_version: u32,
    pub has_ttfb: u8,
    pub ttfb_us: u64,
    pub latency_us: u64,
    pub attempts: u16,
}

impl RequestRow {
    /// Maps a request event to its row.
    #[must_use]
    pub fn from_event(sequence: u64, envelope: &Envelope<RequestEvent>) -> Self {
        let RequestEvent::Finished(finished) = &envelope.body;
        let RequestFinished { usage, cost, .. } = finished;
        Self {
            event_id: envelope.event_id,
            stream_seq: sequence,
            date: envelope.occurred_at.date(),
            occurred_at: envelope.occurred_at,
            started_at: finished.started_at,
            node: envelope.node.clone().unwrap_or_default(),
            request_id: finished.request_id.clone(),
            token_id: finished.token_id.clone().unwrap_or_default(),
            user_id: finished.user_id.clone().unwrap_or_default(),
            model_alias: finished.model_alias.clone(),
            provider_id: finished.provider_id.clone().unwrap_or_default(),
            upstream_model: finished.upstream_model.clone().unwrap_or_default(),
            provider_key_id: finished.provider_key_id.clone().unwrap_or_default(),
            client_protocol: finished.client_protocol.as_str().to_owned(),
            upstream_protocol: finished
                .upstream_protocol
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            stream: u8::from(finished.stream),
            outcome: finished.outcome.as_str().to_owned(),
            error_kind: finished
                .error_kind
                .map(|kind| kind.as_str().to_owned())
                .unwrap_or_default(),
            http_status: finished.http_status,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
            usage_estimated: u8::from(usage.estimated),
            cost_nanos: cost.as_ref().map_or(0, |cost| cost.amount.0),
            currency: cost
                .as_ref()
                .map(|cost| cost.currency.clone())
                .unwrap_or_default(),
            price_version: cost.as_ref().map_or(0, |cost| cost.price_version),
            has_ttfb: u8::from(finished.ttfb_us.is_some()),
            ttfb_us: finished.ttfb_us.unwrap_or(0),
            latency_us: finished.latency_us,
            attempts: u16::try_from(finished.attempts.len()).unwrap_or(u16::MAX),
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
            insert.write(*row).await?;
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
