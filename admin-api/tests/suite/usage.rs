//! Usage from ClickHouse (request events folded by the projector): everyone's for operators,
//! one's own for members.

use crate::common;

use async_nats::jetstream::message::PublishMessage;
use common::Harness;
use kit::testing::wait_until;
use serde_json::Value;
use shared::config::ClientProtocol;
use shared::money::Nanos;
use shared::request::{Cost, Outcome, RequestEvent, RequestFinished, Usage};
use shared::{Envelope, EventBody as _};

fn request(user_id: &str, model: &str, outcome: Outcome, cost: i64) -> Envelope<RequestEvent> {
    Envelope::by_node(
        RequestEvent::Finished(RequestFinished {
            request_id: shared::ids::new_entity_id(),
            token_id: Some(format!("tok-{user_id}")),
            user_id: Some(user_id.to_owned()),
            team_id: None,
            model_alias: model.to_owned(),
            provider_id: Some("p".into()),
            upstream_model: Some(model.to_owned()),
            provider_key_id: Some("k".into()),
            client_protocol: ClientProtocol::OpenaiChat,
            upstream_protocol: None,
            stream: false,
            outcome,
            error_kind: None,
            http_status: if outcome == Outcome::Success {
                200
            } else {
                502
            },
            usage: Usage {
                input_tokens: 100,
                output_tokens: 10,
                ..Usage::default()
            },
            cost: Some(Cost {
                amount: Nanos(cost),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_all_usage_and_members_their_own() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (member_id, member) = harness.user_session(&admin, "mila", "member").await;
    let (_, operator) = harness.user_session(&admin, "omar", "operator").await;
    let jetstream = harness.jetstream().await;
    for event in [
        request("admin", "gpt", Outcome::Success, 1_500_000_000),
        request("admin", "claude", Outcome::Error, 0),
        request(&member_id, "gpt", Outcome::Success, 250_000_000),
    ] {
        let message = PublishMessage::build()
            .message_id(event.event_id.to_string())
            .payload(event.to_bytes().unwrap().into());
        jetstream
            .send_publish(event.body.subject(), message)
            .await
            .unwrap()
            .await
            .unwrap();
    }

    let all = wait_until(
        kit::testing::liveness(),
        "three requests in ClickHouse",
        || {
            let (harness, operator) = (&harness, operator.clone());
            async move {
                let (status, body) = harness.get("/api/v1/usage?group_by=user", &operator).await;
                assert_eq!(status, 200, "{body}");
                let requests: u64 = body["items"]
                    .as_array()?
                    .iter()
                    .map(|item| item["requests"].as_u64().unwrap_or(0))
                    .sum();
                (requests == 3).then_some(body)
            }
        },
    )
    .await;
    let admin_row = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["key"] == "admin")
        .cloned()
        .unwrap();
    assert_eq!(admin_row["requests"], 2);
    assert_eq!(admin_row["errors"], 1);
    assert_eq!(admin_row["cost"], "1.5");
    assert_eq!(admin_row["input_tokens"], 200);

    let (status, by_model) = harness
        .get("/api/v1/usage?group_by=model&model=gpt", &admin)
        .await;
    assert_eq!(status, 200, "{by_model}");
    assert_eq!(by_model["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_model["items"][0]["cost"], "1.75");

    let (status, own) = harness.get("/api/v1/usage?group_by=user", &member).await;
    assert_eq!(status, 200, "{own}");
    let keys: Vec<&Value> = own["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| &item["key"])
        .collect();
    assert_eq!(
        keys,
        [&Value::String(member_id.clone())],
        "a member sees only their own usage"
    );
    let (status, _) = harness.get("/api/v1/usage?user_id=admin", &member).await;
    assert_eq!(status, 403);
    let (status, body) = harness.get("/api/v1/usage?group_by=colour", &admin).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "group_by");
    let (status, body) = harness
        .get(
            "/api/v1/usage?from=2000-01-01T00:00:00Z&to=2000-02-01T00:00:00Z",
            &admin,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["items"], serde_json::json!([]));
}
