//! Spend alerts: a budgeted token crossing the `spend_alerts` thresholds records each crossing
//! once as an audit event, and a webhook receives it signed, tried again after a failure, every
//! attempt audited.

#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test fails loudly and reads top to bottom"
)]

use std::sync::{Arc, Mutex};

use crate::common;

use async_nats::jetstream::message::PublishMessage;
use axum::http::{HeaderMap, StatusCode};
use common::Harness;
use hmac::{Hmac, Mac};
use kit::testing::{liveness, wait_until};
use serde_json::{Value, json};
use sha2::Sha256;
use shared::config::ClientProtocol;
use shared::money::Nanos;
use shared::request::{Cost, Outcome, RequestEvent, RequestFinished, Usage};
use shared::{Envelope, EventBody as _};

const SECRET: &str = "alert-webhook-secret-of-thirty-two-chars";

/// One request of `token_id` costing `nanos`.
fn spend(token_id: &str, nanos: i64) -> Envelope<RequestEvent> {
    Envelope::by_node(
        RequestEvent::Finished(RequestFinished {
            request_id: shared::ids::new_entity_id(),
            token_id: Some(token_id.to_owned()),
            user_id: Some("admin".into()),
            team_id: None,
            model_alias: "gpt".into(),
            provider_id: Some("p".into()),
            upstream_model: Some("gpt".into()),
            provider_key_id: Some("k".into()),
            client_protocol: ClientProtocol::OpenaiChat,
            upstream_protocol: None,
            stream: false,
            outcome: Outcome::Success,
            error_kind: None,
            http_status: 200,
            usage: Usage {
                input_tokens: 100,
                output_tokens: 10,
                ..Usage::default()
            },
            cost: Some(Cost {
                amount: Nanos(nanos),
                currency: "USD".into(),
                price_version: 1,
            }),
            started_at: time::OffsetDateTime::now_utc(),
            ttfb_us: None,
            latency_us: 1_000,
            attempts: vec![],
            warnings: vec![],
            trace_id: None,
            config_seq: None,
            cache_hit: None,
            routing: None,
        }),
        "ingress-test",
    )
}

async fn publish(harness: &Harness, event: &Envelope<RequestEvent>) {
    let message = PublishMessage::build()
        .message_id(event.event_id.to_string())
        .payload(event.to_bytes().unwrap().into());
    harness
        .jetstream()
        .await
        .send_publish(event.body.subject(), message)
        .await
        .unwrap()
        .await
        .unwrap();
}

/// The audit rows of one type, oldest first.
async fn audited(harness: &Harness, admin: &str, kind: &str) -> Vec<Value> {
    let (status, body) = harness
        .get(&format!("/api/v1/audit?type={kind}&limit=100"), admin)
        .await;
    assert_eq!(status, 200, "{body}");
    let mut items = body["items"].as_array().cloned().unwrap_or_default();
    items.reverse();
    items
}

#[derive(Default)]
struct Received {
    calls: Vec<(HeaderMap, Vec<u8>)>,
}

/// A webhook receiver that answers 500 to the first call and 200 after.
async fn receiver() -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let shared = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let shared = shared.clone();
            async move {
                let mut received = shared.lock().unwrap();
                received.calls.push((headers, body.to_vec()));
                if received.calls.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn verify(headers: &HeaderMap, body: &[u8]) {
    let header = headers["x-axongate-signature"].to_str().unwrap();
    let (t, v1) = header.split_once(',').unwrap();
    let timestamp = t.strip_prefix("t=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    assert_eq!(
        v1.strip_prefix("v1=").unwrap(),
        hex::encode(mac.finalize().into_bytes()),
        "the signature is HMAC-SHA256 of t.body under the configured secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossings_are_recorded_once_and_sent_signed_with_retries() {
    let harness = Harness::start_with(|config| {
        config.alert_check_interval_secs = 1;
        config.alert_webhook_secret = Some(SECRET.into());
    })
    .await;
    let admin = harness.admin().await;
    let (url, received) = receiver().await;

    // Only an admin sets where alerts go; the value is checked.
    let (_, operator) = harness.user_session(&admin, "opal", "operator").await;
    let alerts =
        json!({"thresholds": [50, 80, 100], "webhook_url": url, "allow_private_network": true});
    let (status, _) = harness
        .put(
            "/api/v1/settings/spend_alerts",
            &operator,
            json!({"value": alerts}),
        )
        .await;
    assert_eq!(status, 403, "an operator may not point alerts somewhere");
    for (bad, field) in [
        (json!({"thresholds": [0]}), "value.thresholds"),
        (json!({"thresholds": []}), "value.thresholds"),
        (
            json!({"thresholds": [50], "webhook_url": "ftp://x"}),
            "value.webhook_url",
        ),
        (json!({"thresholds": [50], "hook": "x"}), "value"),
    ] {
        let (status, body) = harness
            .put(
                "/api/v1/settings/spend_alerts",
                &admin,
                json!({"value": bad}),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let (status, body) = harness
        .put(
            "/api/v1/settings/spend_alerts",
            &admin,
            json!({"value": alerts}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // A token with a 1 USD daily budget spends 0.6: the 50% threshold is crossed.
    let (status, token) = harness
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "budgeted", "budget": {"amount": "1", "currency": "USD", "period": "daily"}}),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    let token_id = token["id"].as_str().unwrap().to_owned();
    publish(&harness, &spend(&token_id, 600_000_000)).await;
    let first = wait_until(liveness(), "the 50% alert", || async {
        let rows = audited(&harness, &admin, "spend.threshold_crossed").await;
        (!rows.is_empty()).then_some(rows)
    })
    .await;
    assert_eq!(first.len(), 1, "{first:?}");
    let alert = &first[0]["after"];
    assert_eq!(alert["token_id"], token_id.as_str());
    assert_eq!(alert["threshold_pct"], 50);
    assert_eq!(alert["period"], "daily");
    assert_eq!(alert["spent"], 600_000_000);

    // The webhook failed once (500), then received it: both attempts are in the audit log.
    let attempts = wait_until(liveness(), "the webhook to be delivered", || async {
        let rows = audited(&harness, &admin, "alert.webhook_attempt").await;
        rows.iter()
            .any(|row| row["after"]["outcome"] == "delivered")
            .then_some(rows)
    })
    .await;
    let outcomes: Vec<(Value, Value, Value)> = attempts
        .iter()
        .map(|row| {
            (
                row["after"]["attempt"].clone(),
                row["after"]["outcome"].clone(),
                row["after"]["http_status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (json!(1), json!("failed"), json!(500)),
            (json!(2), json!("delivered"), json!(204))
        ]
    );
    {
        let received = received.lock().unwrap();
        assert_eq!(received.calls.len(), 2);
        let (headers, body) = &received.calls[1];
        verify(headers, body);
        let sent: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(sent["type"], "spend.threshold_crossed");
        assert_eq!(sent["alert"]["threshold_pct"], 50);
        assert_eq!(
            sent["event_id"], first[0]["event_id"],
            "{sent} / {}",
            first[0]
        );
    }
    // The retry waited 2 s, longer than a scan (1 s): later scans did not record it again.
    assert_eq!(
        audited(&harness, &admin, "spend.threshold_crossed")
            .await
            .len(),
        1
    );

    // Another 0.3 (90%): the 80% threshold only, once, however many scans run.
    publish(&harness, &spend(&token_id, 300_000_000)).await;
    let both = wait_until(liveness(), "the 80% alert", || async {
        let rows = audited(&harness, &admin, "spend.threshold_crossed").await;
        (rows.len() >= 2).then_some(rows)
    })
    .await;
    assert_eq!(both[1]["after"]["threshold_pct"], 80);
    wait_until(liveness(), "the 80% alert at the webhook", || async {
        (received.lock().unwrap().calls.len() >= 3).then_some(())
    })
    .await;
    let thresholds: Vec<Value> = audited(&harness, &admin, "spend.threshold_crossed")
        .await
        .iter()
        .map(|row| row["after"]["threshold_pct"].clone())
        .collect();
    assert_eq!(thresholds, [json!(50), json!(80)]);
    let (headers, body) = received.lock().unwrap().calls[2].clone();
    verify(&headers, &body);

    // A team's budget is spent by its tokens together: a token without a budget of its own,
    // charged to a team with 1 USD a month, spends 0.6 — the team's 50% alert.
    let (status, team) = harness
        .post(
            "/api/v1/teams",
            &admin,
            json!({"id": "eng", "name": "Engineering", "members": [{"user_id": "admin"}],
                   "budget": {"amount": "1", "currency": "USD", "period": "monthly"}}),
        )
        .await;
    assert_eq!(status, 201, "{team}");
    let (status, charged) = harness
        .post(
            "/api/v1/tokens",
            &admin,
            json!({"name": "team token", "team_id": "eng"}),
        )
        .await;
    assert_eq!(status, 201, "{charged}");
    publish(
        &harness,
        &spend(charged["id"].as_str().unwrap(), 600_000_000),
    )
    .await;
    let team_alert = wait_until(liveness(), "the team's 50% alert", || async {
        audited(&harness, &admin, "spend.threshold_crossed")
            .await
            .into_iter()
            .find(|row| row["after"]["budget_of"] == "team")
    })
    .await;
    assert_eq!(team_alert["after"]["team_id"], "eng");
    assert_eq!(team_alert["after"]["threshold_pct"], 50);
    assert_eq!(team_alert["after"]["period"], "monthly");
    assert_eq!(
        audited(&harness, &admin, "spend.threshold_crossed")
            .await
            .len(),
        3,
        "the token without a budget has no alert of its own"
    );

    // The audit chain still verifies with the alerts in it.
    let (status, verified) = harness.get("/api/v1/audit/verify", &admin).await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["ok"], true, "{verified}");
}
