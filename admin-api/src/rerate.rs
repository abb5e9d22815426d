//! Re-rating and price history.
//!
//! - `GET /api/v1/models/{id}/prices`: every price version a model has had, when and by whom,
//!   read from the model's subject on `AXONGATE_CONFIG` (the views keep only the current one).
//! - `POST /api/v1/adjustments`: applies a re-rating to past traffic as an audited
//!   `spend.adjusted` event (per token and day: re-rated minus charged) that the spend view
//!   folds; the request events are never rewritten.
//! - `GET /api/v1/analytics/rerate` (and `rerate.csv`): what the filtered requests would have
//!   cost under a model's price version `version` or under given prices, next to what was
//!   charged, by model, token, user or day — computed in ClickHouse from the stored usage,
//!   each request rounded half-up to a nano-unit exactly as ingress rounds it
//!   (`shared::money::Price::cost`), so re-rating at the version that was charged gives back
//!   the charged amount to the nano.

use std::collections::HashMap;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::Envelope;
use shared::config::{ConfigEntity, ConfigEvent};
use shared::money::{Nanos, Price};
use shared::streams::{CONFIG_STREAM, CONFIG_SUBJECT_PREFIX, config_subject};
use time::format_description::well_known::Rfc3339;

use crate::analytics::Filter;
use crate::auth::Caller;
use crate::authz::{Resource, require};
use crate::error::ApiError;
use crate::permission::{Action, Kind};
use crate::state::AppState;

/// One price version of a model and where it began.
#[derive(Debug, Clone)]
pub struct PriceVersion {
    pub price: Price,
    pub alias: String,
    /// The config stream sequence and time of the event that set it, and who.
    pub since_seq: u64,
    pub since: String,
    pub by: Option<String>,
}

fn bus(error: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable {
        code: "bus_unavailable",
        message: format!("{CONFIG_STREAM}: {error}"),
    }
}

/// The price versions of every model whose subject matches `filter` (one model's subject, or
/// all of them), by model id, oldest first: one entry per version (an edit that kept the
/// price is not a new one).
///
/// # Errors
/// When the stream cannot be read.
pub async fn price_history(
    state: &AppState,
    filter: String,
) -> Result<HashMap<String, Vec<PriceVersion>>, ApiError> {
    let jetstream = state.bus.jetstream();
    let stream = jetstream.get_stream(CONFIG_STREAM).await.map_err(bus)?;
    let mut history: HashMap<String, Vec<PriceVersion>> = HashMap::new();
    let last = match stream.get_last_raw_message_by_subject(&filter).await {
        Ok(message) => message.sequence,
        Err(error)
            if error.kind()
                == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
        {
            return Ok(history);
        }
        Err(error) => return Err(bus(error)),
    };
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::All,
            filter_subject: filter,
            ..Default::default()
        })
        .await
        .map_err(bus)?;
    let mut messages = consumer.messages().await.map_err(bus)?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(bus)?;
        let info = message.info().map_err(bus)?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        if let Ok(envelope) = Envelope::<ConfigEvent>::from_bytes(&message.payload)
            && let ConfigEvent::ModelPut(model) = &envelope.body
            && let Some(price) = &model.price
        {
            let versions = history.entry(model.id.clone()).or_default();
            if versions
                .last()
                .is_none_or(|latest| latest.price.version != price.version)
            {
                versions.push(PriceVersion {
                    price: price.clone(),
                    alias: model.alias.clone(),
                    since_seq: sequence,
                    since: envelope.occurred_at.format(&Rfc3339).unwrap_or_default(),
                    by: envelope.actor.as_ref().map(|actor| actor.username.clone()),
                });
            }
        }
        if sequence >= last || pending == 0 {
            break;
        }
    }
    Ok(history)
}

fn price_json(price: &Price) -> Value {
    json!({
        "version": price.version,
        "currency": price.currency,
        "input_per_million": price.input_per_million.to_decimal(),
        "output_per_million": price.output_per_million.to_decimal(),
        "cache_read_per_million": price.cache_read_per_million.to_decimal(),
        "cache_write_per_million": price.cache_write_per_million.to_decimal(),
    })
}

/// `GET /api/v1/models/{id}/prices`.
pub async fn prices(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Read,
        &Resource::kind(Kind::Model),
    )?;
    crate::resources::validate::id("id", &id)?;
    let mut history = price_history(&state, config_subject(ConfigEntity::Model, &id)).await?;
    let versions = history.remove(&id).unwrap_or_default();
    let items: Vec<Value> = versions
        .iter()
        .map(|version| {
            let mut value = price_json(&version.price);
            value["since_seq"] = json!(version.since_seq);
            value["since"] = json!(version.since);
            value["by"] = json!(version.by);
            value["alias"] = json!(version.alias);
            value
        })
        .collect();
    Ok(Json(json!({"model_id": id, "versions": items})))
}

/// The price to re-rate at: a model's version, or prices given in the query.
fn target_price(
    params: &HashMap<String, String>,
    history: &HashMap<String, Vec<PriceVersion>>,
) -> Result<Price, ApiError> {
    if let Some(version) = params.get("version") {
        let version: u32 = version
            .parse()
            .map_err(|_| ApiError::invalid("version", "version must be a whole number"))?;
        let alias = params.get("model").ok_or_else(|| {
            ApiError::invalid(
                "model",
                "re-rating at a price version needs the model (its alias) it is a version of",
            )
        })?;
        return history
            .values()
            .flatten()
            .filter(|entry| entry.alias == *alias)
            .find(|entry| entry.price.version == version)
            .map(|entry| entry.price.clone())
            .ok_or_else(|| {
                ApiError::invalid(
                    "version",
                    format!("model {alias} never had price version {version}"),
                )
            });
    }
    let amount = |name: &str, required: bool| -> Result<Nanos, ApiError> {
        match params.get(name) {
            Some(text) => Nanos::parse_decimal(text)
                .ok()
                .filter(|nanos| nanos.0 >= 0)
                .ok_or_else(|| {
                    ApiError::invalid(name, format!("{name} must be a decimal such as 2.5"))
                }),
            None if required => Err(ApiError::invalid(
                name,
                "give version=N, or the prices: input_per_million and output_per_million (cache prices optional)",
            )),
            None => Ok(Nanos(0)),
        }
    };
    Ok(Price {
        currency: params
            .get("currency")
            .cloned()
            .unwrap_or_else(|| "USD".into()),
        input_per_million: amount("input_per_million", true)?,
        output_per_million: amount("output_per_million", true)?,
        cache_read_per_million: amount("cache_read_per_million", false)?,
        cache_write_per_million: amount("cache_write_per_million", false)?,
        version: 0,
    })
}

const PARAMS: &[&str] = &[
    "by",
    "version",
    "input_per_million",
    "output_per_million",
    "cache_read_per_million",
    "cache_write_per_million",
    "currency",
];

#[derive(Debug, clickhouse::Row, Deserialize)]
struct RerateRow {
    key: String,
    requests: u64,
    total_input: u64,
    total_output: u64,
    total_cache_read: u64,
    total_cache_write: u64,
    charged_nanos: i64,
    rerated_nanos: i64,
    currencies: Vec<String>,
}

/// The re-rated cost of each row's request, per request as `Price::cost` rounds (nanos per
/// million tokens, half up), summed: its four `?` take [`bind_price`]'s values.
const RERATED: &str = "sum(intDiv(toInt64(input_tokens) * toInt64(?) + toInt64(output_tokens) * toInt64(?) \
    + toInt64(cache_read_tokens) * toInt64(?) + toInt64(cache_write_tokens) * toInt64(?) \
    + 500000, 1000000)) AS rerated_nanos";

/// Binds the four per-million prices of [`RERATED`], in its order.
fn bind_price(query: clickhouse::query::Query, price: &Price) -> clickhouse::query::Query {
    query
        .bind(price.input_per_million.0)
        .bind(price.output_per_million.0)
        .bind(price.cache_read_per_million.0)
        .bind(price.cache_write_per_million.0)
}

/// The re-rating of the filtered requests, grouped by `by`.
async fn rerate_rows(
    state: &AppState,
    caller: &Caller,
    params: &HashMap<String, String>,
) -> Result<(String, Price, Vec<RerateRow>), ApiError> {
    let filter = Filter::parse(state, caller, params, PARAMS)?;
    let by = params.get("by").map_or("model", String::as_str);
    let key = match by {
        "model" => "model_alias",
        "token" => "token_id",
        "user" => "user_id",
        "day" => "toString(date)",
        _ => {
            return Err(ApiError::invalid(
                "by",
                "by must be model, token, user or day",
            ));
        }
    };
    let history = if params.contains_key("version") {
        let every_model = format!("{CONFIG_SUBJECT_PREFIX}.{}.>", ConfigEntity::Model.as_str());
        price_history(state, every_model).await?
    } else {
        HashMap::new()
    };
    let price = target_price(params, &history)?;
    // Aliases differ from the columns: ClickHouse would read a column name inside the second
    // sum as the alias of the first. The same arithmetic as `Price::cost`, per request: exact in Int64 for any count below
    // 10^9 tokens at any price below 9,000 units per million.
    let sql = format!(
        "SELECT {key} AS key, count() AS requests, sum(input_tokens) AS total_input, \
           sum(output_tokens) AS total_output, sum(cache_read_tokens) AS total_cache_read, \
           sum(cache_write_tokens) AS total_cache_write, sum(cost_nanos) AS charged_nanos, \
           {RERATED}, \
           arraySort(groupUniqArray(currency)) AS currencies \
         FROM requests WHERE {} GROUP BY key ORDER BY key",
        filter.where_clause()
    );
    let query = bind_price(state.clickhouse.query(&sql), &price);
    let rows = filter
        .bind(query)
        .fetch_all::<RerateRow>()
        .await
        .map_err(crate::analytics::unavailable)?;
    Ok((by.to_owned(), price, rows))
}

fn charged_currency(row: &RerateRow) -> String {
    row.currencies
        .iter()
        .filter(|currency| !currency.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("+")
}

/// `GET /api/v1/analytics/rerate`.
pub async fn rerate(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (by, price, rows) = rerate_rows(&state, &caller, &params).await?;
    let mut total = (0i64, 0i64, 0u64);
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            total.0 += row.charged_nanos;
            total.1 += row.rerated_nanos;
            total.2 += row.requests;
            json!({
                "key": row.key, "requests": row.requests,
                "input_tokens": row.total_input, "output_tokens": row.total_output,
                "cache_read_tokens": row.total_cache_read, "cache_write_tokens": row.total_cache_write,
                "charged": Nanos(row.charged_nanos).to_decimal(), "charged_currency": charged_currency(row),
                "rerated": Nanos(row.rerated_nanos).to_decimal(),
                "difference": Nanos(row.rerated_nanos - row.charged_nanos).to_decimal(),
            })
        })
        .collect();
    Ok(Json(json!({
        "by": by,
        "price": price_json(&price),
        "rows": rows,
        "total": {
            "requests": total.2,
            "charged": Nanos(total.0).to_decimal(),
            "rerated": Nanos(total.1).to_decimal(),
            "difference": Nanos(total.1 - total.0).to_decimal(),
        },
    })))
}

/// `GET /api/v1/analytics/rerate.csv`: the same rows as CSV.
pub async fn rerate_csv(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (by, price, rows) = rerate_rows(&state, &caller, &params).await?;
    let mut csv = format!(
        "{by},requests,input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,charged,charged_currency,rerated,rerated_currency,difference\n"
    );
    for row in &rows {
        let fields = [
            crate::analytics::csv_field(&row.key),
            row.requests.to_string(),
            row.total_input.to_string(),
            row.total_output.to_string(),
            row.total_cache_read.to_string(),
            row.total_cache_write.to_string(),
            Nanos(row.charged_nanos).to_decimal(),
            crate::analytics::csv_field(&charged_currency(row)),
            Nanos(row.rerated_nanos).to_decimal(),
            crate::analytics::csv_field(&price.currency),
            Nanos(row.rerated_nanos - row.charged_nanos).to_decimal(),
        ];
        csv.push_str(&fields.join(","));
        csv.push('\n');
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"axongate-rerate.csv\"",
            ),
        ],
        Body::from(csv),
    )
        .into_response())
}

/// The most token-days one adjustment may correct (one event must stay well under the bus's
/// message size); a longer one is refused with a hint to split it.
pub const MAX_ADJUSTMENT_ENTRIES: usize = 2_000;

/// `POST /api/v1/adjustments`: `{model, version | input_per_million…, from, to, reason}`;
/// `from` and `to` are UTC midnights.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentInput {
    pub reason: String,
    pub from: String,
    pub to: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub version: Option<u32>,
    #[serde(default)]
    pub input_per_million: Option<String>,
    #[serde(default)]
    pub output_per_million: Option<String>,
    #[serde(default)]
    pub cache_read_per_million: Option<String>,
    #[serde(default)]
    pub cache_write_per_million: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct AdjustmentRow {
    token_id: String,
    day: String,
    currency: String,
    charged_nanos: i64,
    rerated_nanos: i64,
}

/// `POST /api/v1/adjustments`.
pub async fn adjust(
    State(state): State<AppState>,
    caller: Caller,
    crate::extract::Body(body): crate::extract::Body<Value>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiError> {
    // The permission first: a caller who may not adjust learns nothing from the body's checks.
    require(
        state.authorizer.as_ref(),
        &caller.principal(),
        Action::Create,
        &Resource::kind(Kind::Billing),
    )?;
    let input: AdjustmentInput = serde_json::from_value(body)
        .map_err(|error| crate::error::rejection(format!("the body does not fit: {error}")))?;
    let reason = input.reason.trim().to_owned();
    if reason.is_empty() || reason.len() > 500 {
        return Err(ApiError::invalid(
            "reason",
            "reason is required: up to 500 characters saying what was wrong",
        ));
    }
    // A correction is of one model's price, over whole UTC days: so every earlier correction
    // of the same model and day covered the same requests, and is accounted for below.
    let Some(model) = input.model.clone().filter(|model| !model.is_empty()) else {
        return Err(ApiError::invalid(
            "model",
            "an adjustment corrects one model's price: name the model (its alias)",
        ));
    };
    for (field, value) in [("from", &input.from), ("to", &input.to)] {
        let midnight = time::OffsetDateTime::parse(value, &Rfc3339)
            .ok()
            .is_some_and(|at| at.to_offset(time::UtcOffset::UTC).time() == time::Time::MIDNIGHT);
        if !midnight {
            return Err(ApiError::invalid(
                field,
                format!("{field} must be a UTC midnight (whole days), like 2026-11-01T00:00:00Z"),
            ));
        }
    }
    let mut params: HashMap<String, String> = HashMap::new();
    params.insert("from".into(), input.from.clone());
    params.insert("to".into(), input.to.clone());
    let optional = [
        ("model", Some(model.clone())),
        ("version", input.version.map(|version| version.to_string())),
        ("input_per_million", input.input_per_million.clone()),
        ("output_per_million", input.output_per_million.clone()),
        (
            "cache_read_per_million",
            input.cache_read_per_million.clone(),
        ),
        (
            "cache_write_per_million",
            input.cache_write_per_million.clone(),
        ),
        ("currency", input.currency.clone()),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            params.insert(name.into(), value);
        }
    }
    let filter = Filter::parse(&state, &caller, &params, PARAMS)?;
    let history = if params.contains_key("version") {
        let every_model = format!("{CONFIG_SUBJECT_PREFIX}.{}.>", ConfigEntity::Model.as_str());
        price_history(&state, every_model).await?
    } else {
        HashMap::new()
    };
    let price = target_price(&params, &history)?;
    // One adjustment at a time, across admin-api processes, from reading what earlier ones
    // corrected until this one is in the views: so the same correction applied twice (or two
    // at once) corrects once.
    let mut client = state.pool.get().await?;
    let transaction = client.transaction().await?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('axongate.spend_adjustment'))",
            &[],
        )
        .await?;
    let day = |at: time::OffsetDateTime| at.date().to_string();
    let mut corrected: HashMap<(String, String), i64> = HashMap::new();
    for row in transaction
        .query(
            "SELECT entry->>'token_id', entry->>'day', (entry->>'amount')::bigint \
             FROM audit_log, jsonb_array_elements(after->'entries') AS entry \
             WHERE event_type = 'spend.adjusted' AND after->>'model_alias' = $1 \
               AND entry->>'day' >= $2 AND entry->>'day' < $3",
            &[&model, &day(filter.from), &day(filter.to)],
        )
        .await?
    {
        let key: (Option<String>, Option<String>) = (row.get(0), row.get(1));
        if let (Some(token), Some(on)) = key {
            *corrected.entry((token, on)).or_default() += row.get::<_, Option<i64>>(2).unwrap_or(0);
        }
    }
    let sql = format!(
        "SELECT token_id, toString(date) AS day, currency, sum(cost_nanos) AS charged_nanos, \
           {RERATED} \
         FROM requests WHERE {} AND token_id != '' GROUP BY token_id, day, currency \
         ORDER BY token_id, day",
        filter.where_clause()
    );
    let query = bind_price(state.clickhouse.query(&sql), &price);
    let rows = filter
        .bind(query)
        .fetch_all::<AdjustmentRow>()
        .await
        .map_err(crate::analytics::unavailable)?;
    let mut entries = Vec::new();
    for row in rows {
        if !row.currency.is_empty() && row.currency != price.currency {
            return Err(ApiError::invalid(
                "currency",
                format!(
                    "token {} was charged in {} on {}; an adjustment in {} cannot correct it",
                    row.token_id, row.currency, row.day, price.currency
                ),
            ));
        }
        let already = corrected
            .get(&(row.token_id.clone(), row.day.clone()))
            .copied()
            .unwrap_or(0);
        let amount = row.rerated_nanos - row.charged_nanos - already;
        if amount != 0 {
            entries.push(shared::audit::SpendAdjustmentEntry {
                token_id: row.token_id,
                day: row.day,
                currency: price.currency.clone(),
                amount: Nanos(amount),
            });
        }
    }
    if entries.is_empty() {
        return Err(ApiError::BadRequest {
            code: "nothing_to_adjust",
            message: "at these prices the period's requests cost exactly what was charged (with the adjustments already made)".into(),
            field: None,
        });
    }
    if entries.len() > MAX_ADJUSTMENT_ENTRIES {
        return Err(ApiError::invalid(
            "from",
            format!(
                "the correction touches {} token-days, more than {MAX_ADJUSTMENT_ENTRIES} in one adjustment; split the period",
                entries.len()
            ),
        ));
    }
    let total: i64 = entries.iter().map(|entry| entry.amount.0).sum();
    let adjustment_id = uuid::Uuid::now_v7().to_string();
    let count = entries.len();
    let event = shared::audit::AuditEvent::SpendAdjusted(shared::audit::SpendAdjusted {
        adjustment_id: adjustment_id.clone(),
        reason,
        model_alias: Some(model),
        from: input.from,
        to: input.to,
        price: price.clone(),
        entries,
    });
    let sequence = state
        .bus
        .publish_audit(event, Some(&caller.actor()), &state.node_id)
        .await?;
    state
        .projections
        .wait_for(
            crate::read_your_writes::Projection::Audit,
            sequence,
            state.read_your_writes_timeout,
        )
        .await?;
    transaction.commit().await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(json!({
            "adjustment_id": adjustment_id,
            "sequence": sequence,
            "price": price_json(&price),
            "entries": count,
            "total": Nanos(total).to_decimal(),
            "currency": price.currency,
        })),
    ))
}
