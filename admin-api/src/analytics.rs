//! The analytics API over ClickHouse: summary, time series, breakdowns, the request log (JSON
//! and streamed CSV) and the dashboard.
//!
//! Every query is parameterized: filter values are bound (`?`, escaped by the driver), and the
//! only identifiers that reach SQL come from fixed whitelists. Every query is bounded in time
//! range (at most [`MAX_RANGE_DAYS`]) and rows. Members see only their own requests: their
//! `user_id` is forced into the filter. Everything here runs on ClickHouse 18.16; a current
//! ClickHouse could use `toStartOfInterval` for arbitrary buckets and `LowCardinality` columns.

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::money::Nanos;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Caller;
use crate::authz::require_any_or_own;
use crate::error::ApiError;
use crate::permission::{Action, Kind};
use crate::state::AppState;

/// The widest range any analytics query may cover.
pub const MAX_RANGE_DAYS: i64 = 400;
/// The most rows a CSV export streams.
pub const MAX_EXPORT_ROWS: u64 = 1_000_000;

/// Filter parameters and the ClickHouse columns they match.
const FILTERS: &[(&str, &str)] = &[
    ("model", "model_alias"),
    ("provider", "provider_id"),
    ("provider_key", "provider_key_id"),
    ("token", "token_id"),
    ("user", "user_id"),
    ("team", "team_id"),
    ("outcome", "outcome"),
    ("error_kind", "error_kind"),
    ("client_protocol", "client_protocol"),
    // A request found by the trace id its caller (or a tracing backend) shows.
    ("trace_id", "trace_id"),
];

/// A validated filter: the time range plus column = value conditions.
#[derive(Debug, Clone)]
pub struct Filter {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub conditions: Vec<(&'static str, String)>,
}

fn parse_time(name: &str, value: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        ApiError::invalid(
            name,
            format!("{name} must be an RFC 3339 time, like 2026-11-26T00:00:00Z"),
        )
    })
}

fn unix(at: OffsetDateTime) -> u32 {
    u32::try_from(at.unix_timestamp().max(0)).unwrap_or(u32::MAX)
}

/// The first whole second at or after `at`. Rows keep whole seconds, and a row of second S
/// happened before an exclusive `to` of S.5: binding `to` truncated would drop it (a request
/// of the current second missing from "the last hour").
fn unix_ceil(at: OffsetDateTime) -> u32 {
    let seconds = unix(at);
    if at.nanosecond() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    }
}

impl Filter {
    /// Parses the common filters; `extra` names the other parameters the endpoint accepts.
    /// Members get their own `user_id` forced.
    ///
    /// # Errors
    /// On an unknown parameter, a bad time, a range that is inverted or too long, or a member
    /// asking for someone else's requests.
    pub fn parse(
        state: &AppState,
        caller: &Caller,
        params: &HashMap<String, String>,
        extra: &[&str],
    ) -> Result<Self, ApiError> {
        for name in params.keys() {
            let known = name == "from"
                || name == "to"
                || FILTERS.iter().any(|(param, _)| param == name)
                || extra.contains(&name.as_str());
            if !known {
                let mut accepted: Vec<&str> = vec!["from", "to"];
                accepted.extend(FILTERS.iter().map(|(param, _)| *param));
                accepted.extend(extra);
                return Err(ApiError::invalid(
                    name.clone(),
                    format!(
                        "unknown parameter {name:?}; accepted: {}",
                        accepted.join(", ")
                    ),
                ));
            }
        }
        let now = OffsetDateTime::now_utc();
        let to = params
            .get("to")
            .map(|value| parse_time("to", value))
            .transpose()?
            .unwrap_or(now);
        let from = params
            .get("from")
            .map(|value| parse_time("from", value))
            .transpose()?
            .unwrap_or(to - time::Duration::days(1));
        if from >= to {
            return Err(ApiError::invalid("from", "from must be before to"));
        }
        if to - from > time::Duration::days(MAX_RANGE_DAYS) {
            return Err(ApiError::invalid(
                "from",
                format!("the range may cover at most {MAX_RANGE_DAYS} days"),
            ));
        }
        let mut conditions = Vec::new();
        for (param, column) in FILTERS {
            if let Some(value) = params.get(*param) {
                if value.len() > 256 {
                    return Err(ApiError::invalid(*param, format!("{param} is too long")));
                }
                conditions.push((*column, value.clone()));
            }
        }
        let team_usage = params.get("team").is_some_and(|team| {
            state.authorizer.is_allowed(
                &caller.principal(),
                Action::Read,
                &crate::authz::Resource::kind(Kind::Usage).of_team(Some(team)),
            )
        });
        // A team admin asking for their team's usage sees every member's requests in it.
        if !team_usage && !require_any_or_own(state, caller, Action::Read, Kind::Usage)? {
            if params
                .get("user")
                .is_some_and(|user| *user != caller.user_id)
            {
                return Err(ApiError::forbidden(
                    "a member may read only their own usage",
                ));
            }
            conditions.retain(|(column, _)| *column != "user_id");
            conditions.push(("user_id", caller.user_id.clone()));
        }
        Ok(Self {
            from,
            to,
            conditions,
        })
    }

    /// The WHERE clause (with `?` placeholders) — the partition key `date` first, so
    /// ClickHouse prunes parts outside the range.
    pub(crate) fn where_clause(&self) -> String {
        let mut clause = String::from(
            "date >= toDate(toDateTime(?)) AND date <= toDate(toDateTime(?)) \
             AND occurred_at >= toDateTime(?) AND occurred_at < toDateTime(?)",
        );
        for (column, _) in &self.conditions {
            clause.push_str(&format!(" AND {column} = ?"));
        }
        clause
    }

    /// Binds the values in the order of [`Filter::where_clause`].
    pub(crate) fn bind(&self, mut query: clickhouse::query::Query) -> clickhouse::query::Query {
        query = query
            .bind(unix(self.from))
            .bind(unix_ceil(self.to))
            .bind(unix(self.from))
            .bind(unix_ceil(self.to));
        for (_, value) in &self.conditions {
            query = query.bind(value.as_str());
        }
        query
    }
}

/// An integer parameter within `range`, `default` when absent.
fn bounded(
    params: &HashMap<String, String>,
    name: &str,
    range: std::ops::RangeInclusive<u32>,
    default: u32,
    message: &str,
) -> Result<u32, ApiError> {
    match params.get(name) {
        Some(value) => value
            .parse()
            .ok()
            .filter(|number| range.contains(number))
            .ok_or_else(|| ApiError::invalid(name, message)),
        None => Ok(default),
    }
}

pub(crate) fn unavailable(error: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable {
        code: "analytics_unavailable",
        message: format!("ClickHouse did not answer: {error}"),
    }
}

fn money(nanos: i64) -> String {
    Nanos(nanos).to_decimal()
}

fn ms(micros: f64) -> f64 {
    if micros.is_finite() {
        (micros / 10.0).round() / 100.0
    } else {
        0.0
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct SummaryRow {
    requests: u64,
    success: u64,
    error: u64,
    cancelled: u64,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    cost_nanos: i64,
    currency: String,
    latency: Vec<f64>,
    ttfb: Vec<f64>,
    cache_hits: u64,
    saved_input_tokens: u64,
    saved_output_tokens: u64,
    saved_cost_nanos: i64,
}

const SUMMARY_COLUMNS: &str = "count() AS requests, countIf(outcome = 'success') AS success, \
    countIf(outcome = 'error') AS error, countIf(outcome = 'cancelled') AS cancelled, \
    sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, \
    sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens, \
    sum(cost_nanos) AS cost_nanos, any(currency) AS currency, \
    quantiles(0.5, 0.95, 0.99)(latency_us) AS latency, \
    quantilesIf(0.5, 0.95, 0.99)(ttfb_us, has_ttfb = 1) AS ttfb, \
    countIf(cache_hit = 1) AS cache_hits, sum(saved_input_tokens) AS saved_input_tokens, \
    sum(saved_output_tokens) AS saved_output_tokens, sum(saved_cost_nanos) AS saved_cost_nanos";

fn summary_json(row: &SummaryRow) -> Value {
    let quantile = |values: &[f64], index: usize| values.get(index).copied().map_or(0.0, ms);
    #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
    let error_rate = if row.requests == 0 {
        0.0
    } else {
        row.error as f64 / row.requests as f64
    };
    let currency = if row.currency.is_empty() {
        "USD"
    } else {
        &row.currency
    };
    json!({
        "requests": row.requests, "success": row.success, "error": row.error, "cancelled": row.cancelled,
        "input_tokens": row.input_tokens, "output_tokens": row.output_tokens,
        "cache_read_tokens": row.cache_read_tokens, "cache_write_tokens": row.cache_write_tokens,
        "cost": {"amount": money(row.cost_nanos), "currency": currency},
        "error_rate": error_rate,
        "cache": {
            "hits": row.cache_hits, "saved_input_tokens": row.saved_input_tokens,
            "saved_output_tokens": row.saved_output_tokens,
            "saved_cost": {"amount": money(row.saved_cost_nanos), "currency": currency},
        },
        "latency_ms": {"p50": quantile(&row.latency, 0), "p95": quantile(&row.latency, 1), "p99": quantile(&row.latency, 2)},
        "ttfb_ms": {"p50": quantile(&row.ttfb, 0), "p95": quantile(&row.ttfb, 1), "p99": quantile(&row.ttfb, 2)},
    })
}

/// `GET /api/v1/analytics/summary`
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = Filter::parse(&state, &caller, &params, &[])?;
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM requests WHERE {}",
        filter.where_clause()
    );
    let row = filter
        .bind(state.clickhouse.query(&sql))
        .fetch_one::<SummaryRow>()
        .await
        .map_err(unavailable)?;
    Ok(Json(summary_json(&row)))
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct PointRow {
    bucket: u32,
    requests: u64,
    success: u64,
    error: u64,
    cancelled: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_nanos: i64,
    latency_p95: f64,
    cache_hits: u64,
}

/// `GET /api/v1/analytics/timeseries?bucket=minute|hour|day`
pub async fn timeseries(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = Filter::parse(&state, &caller, &params, &["bucket"])?;
    let bucket = params.get("bucket").map_or("hour", String::as_str);
    let (function, seconds) = match bucket {
        "minute" => ("toStartOfMinute", 60),
        "hour" => ("toStartOfHour", 3_600),
        "day" => ("toStartOfDay", 86_400),
        _ => {
            return Err(ApiError::invalid(
                "bucket",
                "bucket must be minute, hour or day",
            ));
        }
    };
    let points = (filter.to - filter.from).whole_seconds() / seconds;
    if points > 5_000 {
        return Err(ApiError::invalid(
            "bucket",
            format!("{points} {bucket} buckets is too many; use a larger bucket"),
        ));
    }
    let sql = format!(
        "SELECT toUInt32({function}(occurred_at)) AS bucket, count() AS requests, \
           countIf(outcome = 'success') AS success, countIf(outcome = 'error') AS error, \
           countIf(outcome = 'cancelled') AS cancelled, sum(input_tokens) AS input_tokens, \
           sum(output_tokens) AS output_tokens, sum(cost_nanos) AS cost_nanos, \
           quantile(0.95)(latency_us) AS latency_p95, countIf(cache_hit = 1) AS cache_hits \
         FROM requests WHERE {} GROUP BY bucket ORDER BY bucket",
        filter.where_clause()
    );
    let rows = filter
        .bind(state.clickhouse.query(&sql))
        .fetch_all::<PointRow>()
        .await
        .map_err(unavailable)?;
    let points: Vec<Value> = rows
        .iter()
        .map(|row| {
            let at = OffsetDateTime::from_unix_timestamp(i64::from(row.bucket)).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            json!({
                "t": at.format(&Rfc3339).unwrap_or_default(), "requests": row.requests, "success": row.success,
                "error": row.error, "cancelled": row.cancelled, "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens, "cost": money(row.cost_nanos), "latency_p95_ms": ms(row.latency_p95),
                "cache_hits": row.cache_hits,
            })
        })
        .collect();
    Ok(Json(json!({"bucket": bucket, "points": points})))
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct BreakdownRow {
    key: String,
    requests: u64,
    errors: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_nanos: i64,
    latency_p95: f64,
    cache_hits: u64,
}

/// `GET /api/v1/analytics/breakdown?by=…&top=N`
pub async fn breakdown(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = Filter::parse(&state, &caller, &params, &["by", "top"])?;
    let by = params.get("by").map_or("model", String::as_str);
    let column = match by {
        "model" => "model_alias",
        "provider" => "provider_id",
        "provider_key" => "provider_key_id",
        "token" => "token_id",
        "user" => "user_id",
        "team" => "team_id",
        "client_protocol" => "client_protocol",
        "outcome" => "outcome",
        "error_kind" => "error_kind",
        _ => {
            return Err(ApiError::invalid(
                "by",
                "by must be model, provider, provider_key, token, user, team, client_protocol, outcome or error_kind",
            ));
        }
    };
    let top = bounded(&params, "top", 1..=100, 10, "top must be 1 to 100")?;
    let sql = format!(
        "SELECT {column} AS key, count() AS requests, countIf(outcome = 'error') AS errors, \
           sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, \
           sum(cost_nanos) AS cost_nanos, quantile(0.95)(latency_us) AS latency_p95, \
           countIf(cache_hit = 1) AS cache_hits \
         FROM requests WHERE {} GROUP BY key ORDER BY requests DESC, key LIMIT {top}",
        filter.where_clause()
    );
    let rows = filter
        .bind(state.clickhouse.query(&sql))
        .fetch_all::<BreakdownRow>()
        .await
        .map_err(unavailable)?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            json!({
                "key": row.key, "requests": row.requests, "errors": row.errors, "input_tokens": row.input_tokens,
                "output_tokens": row.output_tokens, "cost": money(row.cost_nanos), "latency_p95_ms": ms(row.latency_p95),
                "cache_hits": row.cache_hits,
            })
        })
        .collect();
    Ok(Json(json!({"by": by, "rows": rows})))
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct LogRow {
    occurred_at: u32,
    request_id: String,
    token_id: String,
    user_id: String,
    model_alias: String,
    provider_id: String,
    upstream_model: String,
    provider_key_id: String,
    client_protocol: String,
    stream: u8,
    outcome: String,
    error_kind: String,
    http_status: u16,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    cost_nanos: i64,
    currency: String,
    latency_us: u64,
    has_ttfb: u8,
    ttfb_us: u64,
    attempts: u16,
    trace_id: String,
    price_version: u32,
    config_seq: u64,
    cache_hit: u8,
    saved_input_tokens: u64,
    saved_output_tokens: u64,
    saved_cost_nanos: i64,
    routing_strategy: String,
    routing_session: String,
    team_id: String,
}

const LOG_COLUMNS: &str = "toUInt32(occurred_at) AS occurred_at, request_id, token_id, user_id, model_alias, \
    provider_id, upstream_model, provider_key_id, client_protocol, stream, outcome, error_kind, http_status, \
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos, currency, latency_us, \
    has_ttfb, ttfb_us, attempts, trace_id, price_version, config_seq, cache_hit, saved_input_tokens, \
    saved_output_tokens, saved_cost_nanos, routing_strategy, routing_session, team_id";

fn log_time(row: &LogRow) -> String {
    OffsetDateTime::from_unix_timestamp(i64::from(row.occurred_at))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

#[expect(clippy::cast_precision_loss, reason = "milliseconds for display")]
fn log_json(row: &LogRow) -> Value {
    json!({
        "occurred_at": log_time(row), "request_id": row.request_id, "token_id": row.token_id, "user_id": row.user_id,
        "model_alias": row.model_alias, "provider_id": row.provider_id, "upstream_model": row.upstream_model,
        "provider_key_id": row.provider_key_id, "client_protocol": row.client_protocol, "stream": row.stream == 1,
        "outcome": row.outcome, "error_kind": row.error_kind, "http_status": row.http_status,
        "input_tokens": row.input_tokens, "output_tokens": row.output_tokens,
        "cache_read_tokens": row.cache_read_tokens, "cache_write_tokens": row.cache_write_tokens,
        "cost": money(row.cost_nanos), "currency": row.currency, "latency_ms": ms(row.latency_us as f64),
        "ttfb_ms": if row.has_ttfb == 1 { json!(ms(row.ttfb_us as f64)) } else { Value::Null },
        "attempts": row.attempts,
        "trace_id": if row.trace_id.is_empty() { Value::Null } else { json!(row.trace_id) },
        "price_version": if row.price_version == 0 { Value::Null } else { json!(row.price_version) },
        "config_seq": if row.config_seq == 0 { Value::Null } else { json!(row.config_seq) },
        "cache_hit": row.cache_hit == 1,
        "saved": if row.cache_hit == 1 {
            json!({"input_tokens": row.saved_input_tokens, "output_tokens": row.saved_output_tokens, "cost": money(row.saved_cost_nanos)})
        } else {
            Value::Null
        },
        "routing_strategy": if row.routing_strategy.is_empty() { Value::Null } else { json!(row.routing_strategy) },
        "routing_session": if row.routing_session.is_empty() { Value::Null } else { json!(row.routing_session) },
        "team_id": if row.team_id.is_empty() { Value::Null } else { json!(row.team_id) },
    })
}

/// `GET /api/v1/analytics/requests?limit=&offset=` — newest first, no bodies.
pub async fn requests(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = Filter::parse(&state, &caller, &params, &["limit", "offset"])?;
    let limit = bounded(&params, "limit", 1..=1_000, 50, "limit must be 1 to 1000")?;
    let offset = bounded(
        &params,
        "offset",
        0..=100_000,
        0,
        "offset must be 0 to 100000; narrow the filter for older rows",
    )?;
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM requests WHERE {} ORDER BY occurred_at DESC, request_id LIMIT {limit} OFFSET {offset}",
        filter.where_clause()
    );
    let rows = filter
        .bind(state.clickhouse.query(&sql))
        .fetch_all::<LogRow>()
        .await
        .map_err(unavailable)?;
    let count_sql = format!(
        "SELECT count() FROM requests WHERE {}",
        filter.where_clause()
    );
    let total = filter
        .bind(state.clickhouse.query(&count_sql))
        .fetch_one::<u64>()
        .await
        .map_err(unavailable)?;
    Ok(Json(
        json!({"rows": rows.iter().map(log_json).collect::<Vec<_>>(), "total": total}),
    ))
}

pub(crate) fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

const CSV_HEADER: &str = "occurred_at,request_id,token_id,user_id,model_alias,provider_id,upstream_model,provider_key_id,\
client_protocol,stream,outcome,error_kind,http_status,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,\
cost,currency,latency_ms,ttfb_ms,attempts,trace_id,price_version,config_seq,cache_hit,saved_input_tokens,\
saved_output_tokens,saved_cost,routing_strategy,routing_session,team_id\n";

#[expect(clippy::cast_precision_loss, reason = "milliseconds for display")]
fn csv_line(row: &LogRow) -> String {
    let fields = [
        log_time(row),
        csv_field(&row.request_id),
        csv_field(&row.token_id),
        csv_field(&row.user_id),
        csv_field(&row.model_alias),
        csv_field(&row.provider_id),
        csv_field(&row.upstream_model),
        csv_field(&row.provider_key_id),
        row.client_protocol.clone(),
        (row.stream == 1).to_string(),
        row.outcome.clone(),
        row.error_kind.clone(),
        row.http_status.to_string(),
        row.input_tokens.to_string(),
        row.output_tokens.to_string(),
        row.cache_read_tokens.to_string(),
        row.cache_write_tokens.to_string(),
        money(row.cost_nanos),
        csv_field(&row.currency),
        ms(row.latency_us as f64).to_string(),
        if row.has_ttfb == 1 {
            ms(row.ttfb_us as f64).to_string()
        } else {
            String::new()
        },
        row.attempts.to_string(),
        csv_field(&row.trace_id),
        if row.price_version == 0 {
            String::new()
        } else {
            row.price_version.to_string()
        },
        if row.config_seq == 0 {
            String::new()
        } else {
            row.config_seq.to_string()
        },
        (row.cache_hit == 1).to_string(),
        row.saved_input_tokens.to_string(),
        row.saved_output_tokens.to_string(),
        money(row.saved_cost_nanos),
        row.routing_strategy.clone(),
        row.routing_session.clone(),
        csv_field(&row.team_id),
    ];
    let mut line = fields.join(",");
    line.push('\n');
    line
}

/// `GET /api/v1/analytics/requests.csv` — the filtered request log as CSV, streamed row by row
/// from ClickHouse (at most [`MAX_EXPORT_ROWS`]).
pub async fn requests_csv(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let filter = Filter::parse(&state, &caller, &params, &[])?;
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM requests WHERE {} ORDER BY occurred_at DESC, request_id LIMIT {MAX_EXPORT_ROWS}",
        filter.where_clause()
    );
    let mut cursor = filter
        .bind(state.clickhouse.query(&sql))
        .fetch::<LogRow>()
        .map_err(unavailable)?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(64);
    tokio::spawn(async move {
        if sender.send(Ok(CSV_HEADER.to_owned())).await.is_err() {
            return;
        }
        let mut chunk = String::with_capacity(64 * 1024);
        loop {
            match cursor.next().await {
                Ok(Some(row)) => {
                    chunk.push_str(&csv_line(&row));
                    if chunk.len() >= 60 * 1024
                        && sender.send(Ok(std::mem::take(&mut chunk))).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "CSV export broke off");
                    let _ = sender
                        .send(Err(std::io::Error::other(error.to_string())))
                        .await;
                    return;
                }
            }
        }
        if !chunk.is_empty() {
            let _ = sender.send(Ok(chunk)).await;
        }
    });
    let body = Body::from_stream(futures::stream::poll_fn(move |context| {
        receiver.poll_recv(context)
    }));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"axongate-requests.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/v1/dashboard`: today's figures and the config at a glance.
pub async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let midnight = now.replace_time(time::Time::MIDNIGHT);
    let mut params = HashMap::new();
    params.insert(
        "from".to_owned(),
        midnight.format(&Rfc3339).unwrap_or_default(),
    );
    params.insert(
        "to".to_owned(),
        (now + time::Duration::seconds(1))
            .format(&Rfc3339)
            .unwrap_or_default(),
    );
    let today = Filter::parse(&state, &caller, &params, &[])?;
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM requests WHERE {}",
        today.where_clause()
    );
    let row = today
        .bind(state.clickhouse.query(&sql))
        .fetch_one::<SummaryRow>()
        .await
        .map_err(unavailable)?;
    let last_minute = Filter {
        from: now - time::Duration::minutes(1),
        ..today.clone()
    };
    let count_sql = format!(
        "SELECT count() FROM requests WHERE {}",
        last_minute.where_clause()
    );
    let requests_last_minute = last_minute
        .bind(state.clickhouse.query(&count_sql))
        .fetch_one::<u64>()
        .await
        .map_err(unavailable)?;
    let client = state.pool.get().await.map_err(ApiError::internal)?;
    let counts = client
        .query_one(
            "SELECT \
               (SELECT count(*) FROM config_entities WHERE entity = 'provider' AND (data->>'enabled')::boolean), \
               (SELECT count(*) FROM config_entities WHERE entity = 'model' AND (data->>'enabled')::boolean), \
               (SELECT count(*) FROM config_entities WHERE entity = 'provider_key' AND (data->>'enabled')::boolean), \
               (SELECT count(*) FROM config_entities k WHERE k.entity = 'provider_key' AND (k.data->>'enabled')::boolean \
                  AND NOT EXISTS (SELECT 1 FROM provider_key_health h WHERE h.provider_key_id = k.id \
                                  AND h.last_error_at IS NOT NULL \
                                  AND (h.last_success_at IS NULL OR h.last_error_at > h.last_success_at)))",
            &[],
        )
        .await
        .map_err(ApiError::internal)?;
    let summary = summary_json(&row);
    Ok(Json(json!({
        "active_providers": counts.get::<_, i64>(0),
        "enabled_models": counts.get::<_, i64>(1),
        "total_keys": counts.get::<_, i64>(2),
        "healthy_keys": counts.get::<_, i64>(3),
        "requests_today": row.requests,
        "spend_today": summary["cost"],
        "requests_last_minute": requests_last_minute,
        "error_rate_today": summary["error_rate"],
        "latency_p95_ms_today": summary["latency_ms"]["p95"],
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn milliseconds_round_to_two_places() {
        assert!((ms(1_234_567.0) - 1234.57).abs() < 1e-9);
        assert!(ms(f64::NAN).abs() < f64::EPSILON);
    }
}
