//! Spend alerts: when the spend of a budget in its period — a token's, a team's (its tokens'
//! together) or a user's (their tokens' together) — reaches a threshold of the `spend_alerts`
//! setting, a `spend.threshold_crossed` audit event is recorded once, and a webhook (when set)
//! receives it, signed and retried, each attempt audited.
//!
//! [`scan_loop`] compares every budget's period spend (the projector's `token_spend_daily`,
//! adjustments included) with the budget every interval. An alert already
//! in the audit log, or published by this process, is not sent again; two admin-api processes
//! scanning at once publish through the chained audit stream one after the other, and the
//! second finds the first's event when it re-reads the log (the message id also dedups within
//! the stream's window). [`deliver_loop`] is a durable JetStream consumer shared by every
//! admin-api process (each alert goes to one of them): a POST with
//! `x-axongate-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` under
//! `alert_webhook_secret`; a non-2xx answer or a transport error is audited as `failed` and
//! retried after 2, 4, 8, 16 s …, up to [`MAX_ATTEMPTS`] (then `gave_up`).

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use shared::audit::{AlertWebhookAttempt, AuditEvent, SpendThresholdCrossed};
use shared::config::{Budget, SPEND_ALERTS_SETTING, Setting, SpendAlerts, Team, User, UserToken};
use shared::money::Nanos;
use shared::{Envelope, EventBody};
use time::OffsetDateTime;

use crate::bus::Bus;
use crate::db;
use crate::error::ApiError;
use crate::state::AppState;

/// Webhook attempts per alert at most.
pub const MAX_ATTEMPTS: u32 = 6;
const CONSUMER: &str = "admin-api-alert-webhooks";
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The `spend_alerts` setting, if set and well-formed.
async fn settings(state: &AppState) -> Result<Option<SpendAlerts>, ApiError> {
    let Some(stored) = db::get(&state.pool, "setting", SPEND_ALERTS_SETTING).await? else {
        return Ok(None);
    };
    let setting: Setting = serde_json::from_value(stored.data)?;
    Ok(serde_json::from_value(setting.value).ok())
}

/// Checks a `spend_alerts` value: thresholds 1 to 1000 percent (at most 10), an http(s) webhook
/// URL without credentials.
///
/// # Errors
/// 400 naming the field.
pub fn check_settings(value: &Value) -> Result<(), ApiError> {
    let alerts: SpendAlerts = serde_json::from_value(value.clone()).map_err(|_| {
        ApiError::invalid(
            "value",
            "spend_alerts holds thresholds (percentages), and optionally webhook_url and allow_private_network",
        )
    })?;
    if alerts.thresholds.is_empty()
        || alerts.thresholds.len() > 10
        || alerts
            .thresholds
            .iter()
            .any(|pct| !(1..=1000).contains(pct))
    {
        return Err(ApiError::invalid(
            "value.thresholds",
            "thresholds are 1 to 10 percentages of the budget, each 1 to 1000",
        ));
    }
    if let Some(url) = &alerts.webhook_url {
        crate::resources::validate::base_url("value.webhook_url", url)?;
    }
    Ok(())
}

/// The alerts already recorded: (budget key, period start, threshold), the key a token's id,
/// `team:<id>` or `user:<id>`.
async fn recorded(state: &AppState) -> Result<HashSet<(String, String, u32)>, ApiError> {
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT CASE after->>'budget_of' WHEN 'team' THEN 'team:' || (after->>'team_id') \
                    WHEN 'user' THEN 'user:' || (after->>'owner_user_id') ELSE after->>'token_id' END, \
                    coalesce(after->>'period_start', ''), (after->>'threshold_pct')::int \
             FROM audit_log WHERE event_type = 'spend.threshold_crossed'",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let token: Option<String> = row.get(0);
            let pct: Option<i32> = row.get(2);
            Some((token?, row.get(1), u32::try_from(pct?).ok()?))
        })
        .collect())
}

/// The spend of these tokens together since `start` (all of it when `None`), in nano-units.
async fn spend_since(
    state: &AppState,
    token_ids: &[String],
    start: Option<time::Date>,
) -> Result<i64, ApiError> {
    let client = state.pool.get().await?;
    let start = start.unwrap_or(time::Date::MIN);
    let row = client
        .query_one(
            "SELECT coalesce(sum(cost_nanos), 0)::bigint FROM token_spend_daily \
             WHERE token_id = ANY($1) AND day >= $2",
            &[&token_ids, &start],
        )
        .await?;
    Ok(row.get(0))
}

/// A budget to watch: its key, whose it is (for the event) and the tokens that spend it.
struct Watched {
    key: String,
    budget: Budget,
    token_ids: Vec<String>,
    token_id: String,
    owner_user_id: String,
    budget_of: Option<&'static str>,
    team_id: Option<String>,
}

/// Every budget: each token's, each team's (the tokens charged to it) and each user's (the
/// tokens they own).
async fn watched(state: &AppState) -> Result<Vec<Watched>, ApiError> {
    let tokens: Vec<UserToken> = db::all(&state.pool, "token")
        .await?
        .into_iter()
        .filter_map(|stored| serde_json::from_value(stored.data).ok())
        .collect();
    let mut watched = Vec::new();
    for token in &tokens {
        if let Some(budget) = &token.budget {
            watched.push(Watched {
                key: token.id.clone(),
                budget: budget.clone(),
                token_ids: vec![token.id.clone()],
                token_id: token.id.clone(),
                owner_user_id: token.owner_user_id.clone(),
                budget_of: None,
                team_id: token.team_id.clone(),
            });
        }
    }
    for stored in db::all(&state.pool, "team").await? {
        let Ok(team) = serde_json::from_value::<Team>(stored.data) else {
            continue;
        };
        if let Some(budget) = team.budget {
            watched.push(Watched {
                key: format!("team:{}", team.id),
                budget,
                token_ids: tokens
                    .iter()
                    .filter(|token| token.team_id.as_deref() == Some(team.id.as_str()))
                    .map(|token| token.id.clone())
                    .collect(),
                token_id: String::new(),
                owner_user_id: String::new(),
                budget_of: Some("team"),
                team_id: Some(team.id),
            });
        }
    }
    for stored in db::all(&state.pool, "user").await? {
        let Ok(user) = serde_json::from_value::<User>(stored.data) else {
            continue;
        };
        if let Some(budget) = user.budget {
            watched.push(Watched {
                key: format!("user:{}", user.id),
                budget,
                token_ids: tokens
                    .iter()
                    .filter(|token| token.owner_user_id == user.id)
                    .map(|token| token.id.clone())
                    .collect(),
                token_id: String::new(),
                owner_user_id: user.id,
                budget_of: Some("user"),
                team_id: None,
            });
        }
    }
    Ok(watched)
}

/// One scan: the alerts published.
///
/// # Errors
/// When Postgres or the audit stream does not answer.
pub async fn scan_once(
    state: &AppState,
    sent: &mut HashSet<(String, String, u32)>,
) -> Result<usize, ApiError> {
    let Some(alerts) = settings(state).await? else {
        return Ok(0);
    };
    let already = recorded(state).await?;
    let now = OffsetDateTime::now_utc();
    let mut published = 0;
    let mut thresholds = alerts.thresholds.clone();
    thresholds.sort_unstable();
    thresholds.dedup();
    for watch in watched(state).await? {
        let budget = &watch.budget;
        if budget.amount.0 <= 0 || watch.token_ids.is_empty() {
            continue;
        }
        let start = budget.period.start(now);
        let start_text = start.map(|day| day.to_string()).unwrap_or_default();
        let spent = spend_since(state, &watch.token_ids, start).await?;
        for &pct in &thresholds {
            let line = i128::from(budget.amount.0) * i128::from(pct) / 100;
            if i128::from(spent) < line {
                break;
            }
            let key = (watch.key.clone(), start_text.clone(), pct);
            if already.contains(&key) || sent.contains(&key) {
                continue;
            }
            let event = AuditEvent::SpendThresholdCrossed(SpendThresholdCrossed {
                token_id: watch.token_id.clone(),
                owner_user_id: watch.owner_user_id.clone(),
                budget_of: watch.budget_of.map(str::to_owned),
                team_id: watch.team_id.clone(),
                period: budget.period,
                period_start: start.map(|day| day.to_string()),
                threshold_pct: pct,
                spent: Nanos(spent),
                budget: budget.amount,
                currency: budget.currency.clone(),
            });
            state.bus.publish_audit(event, None, &state.node_id).await?;
            tracing::info!(budget = %watch.key, threshold_pct = pct, period = budget.period.as_str(), "spend alert");
            metrics::counter!("admin_api_spend_alerts_total").increment(1);
            sent.insert(key);
            published += 1;
        }
    }
    Ok(published)
}

/// Scans every `interval` until the process ends.
pub async fn scan_loop(state: AppState, interval: Duration) {
    let mut sent = HashSet::new();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = scan_once(&state, &mut sent).await {
            tracing::warn!(%error, "spend alerts not checked; trying again at the next interval");
        }
    }
}

/// The signature header's value for `body` at `timestamp`.
#[must_use]
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A few words on a failed call: its status, or the kind of transport error (never a body).
fn failure_of(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

/// Delivers alerts to the webhook until the process ends (reconnecting after errors).
pub async fn deliver_loop(state: AppState, secret: Option<String>) {
    loop {
        if let Err(error) = deliver(&state, secret.as_deref()).await {
            tracing::warn!(%error, "spend alert webhook consumer stopped; starting again");
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn consumer(bus: &Bus) -> anyhow::Result<jetstream::consumer::Consumer<pull::Config>> {
    let stream = bus
        .jetstream()
        .get_stream(shared::streams::AUDIT_STREAM)
        .await?;
    let subject = format!(
        "{}.spend_threshold_crossed",
        shared::streams::AUDIT_SUBJECT_PREFIX
    );
    Ok(stream
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.into()),
                filter_subject: subject,
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: WEBHOOK_TIMEOUT * 3,
                max_deliver: i64::from(MAX_ATTEMPTS),
                ..Default::default()
            },
        )
        .await?)
}

async fn deliver(state: &AppState, secret: Option<&str>) -> anyhow::Result<()> {
    let consumer = consumer(&state.bus).await?;
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|error| anyhow::anyhow!(error))?;
        let attempt = message
            .info()
            .map(|info| u32::try_from(info.delivered).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let envelope = match Envelope::<AuditEvent>::from_bytes(&message.payload) {
            Ok(envelope) => envelope,
            Err(_) => {
                let _ = message.ack_with(AckKind::Term).await;
                continue;
            }
        };
        let outcome = attempt_once(state, secret, &envelope).await;
        let (kind, http_status, error) = match &outcome {
            Attempted::Skipped => {
                message
                    .ack()
                    .await
                    .map_err(|error| anyhow::anyhow!(error))?;
                continue;
            }
            Attempted::Delivered(status) => ("delivered", Some(*status), None),
            Attempted::Failed { status, error } if attempt >= MAX_ATTEMPTS => {
                ("gave_up", *status, Some(error.clone()))
            }
            Attempted::Failed { status, error } => ("failed", *status, Some(error.clone())),
        };
        let record = AuditEvent::AlertWebhookAttempt(AlertWebhookAttempt {
            alert_event_id: envelope.event_id.to_string(),
            attempt,
            outcome: kind.into(),
            http_status,
            error,
        });
        if let Err(error) = state.bus.publish_audit(record, None, &state.node_id).await {
            tracing::warn!(%error, "webhook attempt not audited");
        }
        match kind {
            "failed" => {
                let delay = Duration::from_secs(2_u64.saturating_pow(attempt.min(10)));
                let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            }
            "gave_up" => {
                let _ = message.ack_with(AckKind::Term).await;
            }
            _ => {
                message
                    .ack()
                    .await
                    .map_err(|error| anyhow::anyhow!(error))?;
            }
        }
    }
    Ok(())
}

enum Attempted {
    /// No webhook is set: the audit event is the alert.
    Skipped,
    Delivered(u16),
    Failed {
        status: Option<u16>,
        error: String,
    },
}

async fn attempt_once(
    state: &AppState,
    secret: Option<&str>,
    envelope: &Envelope<AuditEvent>,
) -> Attempted {
    let alerts = match settings(state).await {
        Ok(Some(alerts)) => alerts,
        Ok(None) => return Attempted::Skipped,
        Err(_) => {
            return Attempted::Failed {
                status: None,
                error: "the settings could not be read".into(),
            };
        }
    };
    let Some(url) = alerts.webhook_url else {
        return Attempted::Skipped;
    };
    let Some(secret) = secret else {
        return Attempted::Failed {
            status: None,
            error: "alert_webhook_secret is not configured: alerts are only sent signed".into(),
        };
    };
    let client = match crate::egress::guarded_client_for(
        &url,
        alerts.allow_private_network,
        WEBHOOK_TIMEOUT,
    )
    .await
    {
        Ok(client) => client,
        Err(error) => {
            return Attempted::Failed {
                status: None,
                error: error.to_string(),
            };
        }
    };
    let body = serde_json::json!({
        "event_id": envelope.event_id,
        "type": envelope.body.event_type(),
        "occurred_at": envelope.occurred_at,
        "alert": match &envelope.body {
            AuditEvent::SpendThresholdCrossed(alert) => serde_json::to_value(alert).unwrap_or_default(),
            _ => Value::Null,
        },
    });
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let response = client
        .post(url)
        .timeout(WEBHOOK_TIMEOUT)
        .header("content-type", "application/json")
        .header("x-axongate-event-id", envelope.event_id.to_string())
        .header(
            "x-axongate-signature",
            signature(secret.as_bytes(), timestamp, &body),
        )
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) if response.status().is_success() => {
            Attempted::Delivered(response.status().as_u16())
        }
        Ok(response) => Attempted::Failed {
            status: Some(response.status().as_u16()),
            error: format!("the webhook answered {}", response.status().as_u16()),
        },
        Err(error) => Attempted::Failed {
            status: None,
            error: failure_of(&error),
        },
    }
}
