//! Limits across nodes, events through a NATS outage, the spool-full policy, hardening.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kit::testing::wait_until;
use serde_json::{Value, json};
use shared::config::Protocol;
use shared::request::RequestEvent;
use support::{Gateway, http};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rpm_holds_across_two_nodes_within_ten_percent() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let limit = 60_u32;
    let token = gateway
        .add_token("tok-1", |token| token.rpm = Some(limit))
        .await;
    let nodes = [gateway.start_node("a").await, gateway.start_node("b").await];
    let client = http();
    // A steady 60 requests per second for 2 seconds, alternating nodes: twice the limit.
    let mut ticker = tokio::time::interval(Duration::from_millis(1000 / 60));
    let mut handles = Vec::new();
    for index in 0..120 {
        ticker.tick().await;
        let url = format!("{}/v1/chat/completions", nodes[index % 2].base);
        let (client, token) = (client.clone(), token.clone());
        handles.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .json(&chat("gpt-via-mock"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|value| value.to_str().unwrap().to_owned());
            let body: Value = response.json().await.unwrap();
            (status, retry_after, body)
        }));
    }
    let mut admitted = 0;
    let mut limited = 0;
    for handle in handles {
        let (status, retry_after, body) = handle.await.unwrap();
        match status {
            200 => admitted += 1,
            429 => {
                limited += 1;
                assert!(retry_after.is_some(), "429 carries Retry-After");
                assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    eprintln!("limit {limit}/min across two nodes: {admitted} admitted, {limited} limited");
    let tolerance = f64::from(limit) * 0.1;
    assert!(
        (f64::from(admitted) - f64::from(limit)).abs() <= tolerance,
        "admitted {admitted}, limit {limit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_survive_a_thirty_second_nats_outage_exactly_once() {
    let mut gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let client = http();
    let mut request_ids = HashSet::new();
    let mut send = async |index: usize| {
        let request_id = format!("outage-{index}");
        let response = client
            .post(format!("{}/v1/chat/completions", node.base))
            .bearer_auth(&token)
            .header("x-request-id", &request_id)
            .json(&chat("gpt-via-mock"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "ingress keeps serving while NATS is down"
        );
        assert_eq!(response.headers()["x-request-id"], request_id.as_str());
        request_ids.insert(request_id);
    };
    for index in 0..20 {
        send(index).await;
    }
    gateway.nats.stop();
    let outage = Instant::now();
    let mut index = 20;
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    while outage.elapsed() < Duration::from_secs(30) {
        ticker.tick().await;
        send(index).await;
        index += 1;
    }
    gateway.nats.restart().await;
    for extra in 0..20 {
        send(index + extra).await;
    }
    let expected = request_ids.len();
    eprintln!("{expected} requests sent, {} during the outage", index - 20);
    let jetstream =
        async_nats::jetstream::new(async_nats::connect(&gateway.nats.url).await.unwrap());
    let events = wait_until(
        kit::testing::liveness(),
        "every event to reach the stream",
        || async {
            let events: Vec<shared::Envelope<RequestEvent>> =
                support::read_all(&jetstream, shared::streams::REQUESTS_STREAM).await;
            (events.len() >= expected).then_some(events)
        },
    )
    .await;
    let ids: HashSet<String> = events
        .iter()
        .map(|event| match &event.body {
            RequestEvent::Finished(f) => f.request_id.clone(),
        })
        .collect();
    let event_ids: HashSet<uuid::Uuid> = events.iter().map(|event| event.event_id).collect();
    assert_eq!(events.len(), expected, "no event twice");
    assert_eq!(event_ids.len(), expected);
    assert_eq!(ids, request_ids, "every request counted");
    let spool_empty = wait_until(kit::testing::liveness(), "spool drained", || async {
        let files = std::fs::read_dir(&node.spool_dir)
            .map(|entries| entries.count())
            .unwrap_or(0);
        (files == 0).then_some(true)
    })
    .await;
    assert!(spool_empty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_bodies_get_413_in_the_callers_dialect() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let huge = "x".repeat(33 << 20);
    let response = http()
        .post(format!("{}/v1/messages", node.base))
        .header("x-api-key", &token)
        .json(&json!({"model": "gpt-via-mock", "max_tokens": 10, "messages": [{"role": "user", "content": huge}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "request_too_large", "{body}");
    assert!(gateway.mock.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budget_stops_a_token_and_survives_a_restart() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    // One request costs a few hundred thousand nanos at these prices; the budget is smaller.
    let token = gateway
        .add_token("tok-1", |token| {
            token.budget = Some(shared::config::Budget {
                amount: shared::money::Nanos(1_000),
                currency: "USD".into(),
                period: shared::config::BudgetPeriod::Monthly,
            });
        })
        .await;
    let mut node = gateway.start_node("a").await;
    let client = http();
    let send = async |base: &str| {
        client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&token)
            .json(&chat("gpt-via-mock"))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(send(&node.base).await.status(), 200);
    let response = send(&node.base).await;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
    // The spend is folded into Postgres; a restarted node starts from it.
    let pg = gateway.postgres_url.clone();
    wait_until(kit::testing::liveness(), "spend in the view", || {
        let pg = pg.clone();
        async move {
            let (client, connection) = tokio_postgres::connect(&pg, tokio_postgres::NoTls)
                .await
                .ok()?;
            tokio::spawn(connection);
            let row = client
                .query_opt(
                    "SELECT cost_nanos FROM token_spend_daily WHERE token_id = 'tok-1'",
                    &[],
                )
                .await
                .ok()??;
            (row.get::<_, i64>(0) > 1_000).then_some(())
        }
    })
    .await;
    node.process.kill();
    let node = gateway.start_node("a2").await;
    assert_eq!(
        send(&node.base).await.status(),
        429,
        "the budget holds across a restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retry_after_is_honoured_and_an_open_circuit_skips_the_key() {
    let gateway = Gateway::start().await;
    gateway.add_provider("flaky", Protocol::OpenAi).await;
    gateway.add_provider("broken", Protocol::OpenAi).await;
    gateway.add_provider("healthy", Protocol::Anthropic).await;
    gateway
        .add_model(
            "patient",
            vec![("flaky", "mock-fail-first-1-429-retry-after-1", 0)],
        )
        .await;
    gateway
        .add_model(
            "breaker",
            vec![("broken", "mock-fail-500", 0), ("healthy", "claude-ok", 1)],
        )
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let client = http();

    let started = Instant::now();
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("patient"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After: {:?}",
        started.elapsed()
    );

    // Five consecutive failures open the broken key's circuit; after that it is not tried.
    for _ in 0..8 {
        let response = client
            .post(format!("{}/v1/chat/completions", node.base))
            .bearer_auth(&token)
            .json(&chat("breaker"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "fail-over keeps answering");
    }
    let broken_calls = gateway
        .mock
        .requests()
        .iter()
        .filter(|request| request.model() == Some("mock-fail-500"))
        .count();
    assert_eq!(broken_calls, 5, "the circuit opened after five failures");
    let metrics = client
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ingress_circuit_state{key=\"broken-key\"} 1"),
        "circuit state is a metric"
    );
}
