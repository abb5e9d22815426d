//! Limits across nodes, events through a NATS outage, the spool-full policy, hardening.

use crate::support;

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

/// The request ids of every request event in the stream, and how many events there are.
async fn recorded_request_ids(gateway: &Gateway) -> (HashSet<String>, usize) {
    let events: Vec<shared::Envelope<RequestEvent>> =
        support::read_all(&gateway.jetstream, shared::streams::REQUESTS_STREAM).await;
    let ids = events
        .iter()
        .map(|event| match &event.body {
            RequestEvent::Finished(finished) => finished.request_id.clone(),
        })
        .collect();
    (ids, events.len())
}

/// Whether the node's spool folder holds no segment.
fn spool_drained(node: &support::Node) -> bool {
    std::fs::read_dir(&node.spool_dir).map_or(true, |entries| {
        entries
            .filter_map(Result::ok)
            .all(|entry| !entry.file_name().to_string_lossy().ends_with(".spool"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigkill_under_closed_loop_load_loses_at_most_the_unsettled_events() {
    const UNSETTLED: usize = 64;
    const WORKERS: usize = 32;
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let unsettled = UNSETTLED.to_string();
    let env = [("AXONGATE_MAX_UNSETTLED_EVENTS", unsettled.as_str())];
    let mut node = gateway.start_node_with("a", &env, None).await;
    let answered = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = http();
    let workers: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let (client, token, url) = (
                client.clone(),
                token.clone(),
                format!("{}/v1/chat/completions", node.base),
            );
            let (answered, stop) = (answered.clone(), stop.clone());
            tokio::spawn(async move {
                let mut index = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let request_id = format!("kill-{worker}-{index}");
                    index += 1;
                    let Ok(response) = client
                        .post(&url)
                        .bearer_auth(&token)
                        .header("x-request-id", &request_id)
                        .json(&chat("gpt-via-mock"))
                        .send()
                        .await
                    else {
                        break; // the node is gone
                    };
                    let status = response.status();
                    // Answered means the whole response reached the client.
                    if response.bytes().await.is_ok() && status == 200 {
                        answered.lock().unwrap().insert(request_id);
                    }
                }
            })
        })
        .collect();
    let count = || answered.lock().unwrap().len();
    wait_until(
        kit::testing::liveness(),
        "1,000 answered requests",
        || async { (count() >= 1_000).then_some(()) },
    )
    .await;
    // The stream stalls (a server stuck on its disk): nothing is acknowledged while the node
    // keeps answering. Events must not pile up in memory meanwhile.
    gateway.nats.pause();
    let at_pause = count();
    wait_until(
        kit::testing::liveness(),
        "300 more answered requests while the stream is stalled",
        || async { (count() >= at_pause + 300).then_some(()) },
    )
    .await;
    node.process.kill(); // SIGKILL, mid-load, the stream still stalled
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker.await.unwrap();
    }
    gateway.nats.resume();
    let answered = answered.lock().unwrap().clone();
    // The same node again, on the same spool: it replays what it had fsync'd.
    let node = gateway.start_node_with("a", &env, None).await;
    wait_until(
        kit::testing::liveness(),
        "the spool to be replayed",
        || async { spool_drained(&node).then_some(()) },
    )
    .await;
    let (recorded, events) = recorded_request_ids(&gateway).await;
    let lost: Vec<&String> = answered.difference(&recorded).collect();
    let messages = gateway
        .jetstream
        .get_stream(shared::streams::REQUESTS_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages;
    eprintln!(
        "SIGKILL under a closed loop of {WORKERS}, the stream stalled from answer {at_pause}: {} answered, {} recorded, {} lost (bound {UNSETTLED}), {events} events in {messages} messages (group commit)",
        answered.len(),
        recorded.len(),
        lost.len()
    );
    assert!(
        lost.len() <= UNSETTLED,
        "{} answered requests never recorded, more than the {UNSETTLED} unsettled events allowed: {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(events, recorded.len(), "no request recorded twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_stream_slows_then_refuses_requests_and_loses_none() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let env = [
        ("AXONGATE_MAX_UNSETTLED_EVENTS", "2"),
        ("AXONGATE_EVENT_SLOT_WAIT_MS", "200"),
    ];
    let node = gateway.start_node_with("a", &env, None).await;
    let client = http();
    let send = |request_id: String| {
        let (client, token, url) = (
            client.clone(),
            token.clone(),
            format!("{}/v1/messages", node.base),
        );
        async move {
            let response = client
                .post(url)
                .header("x-api-key", token)
                .header("x-request-id", &request_id)
                .json(&json!({"model": "gpt-via-mock", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (request_id, status, body)
        }
    };
    assert_eq!(send("before".into()).await.1, 200);
    // The first event acknowledged, so its slot is free again before the stream stalls.
    wait_until(
        kit::testing::liveness(),
        "the first event acknowledged",
        || async {
            let metrics = client
                .get(format!("{}/metrics", node.base))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            metrics
                .lines()
                .any(|line| line == "ingress_events_published_total 1")
                .then_some(())
        },
    )
    .await;
    // NATS stops answering but keeps its connections: acknowledgements do not come. Two
    // answers take the two slots (their events wait for an acknowledgement)…
    gateway.nats.pause();
    let mut answered: HashSet<String> = HashSet::from(["before".to_owned()]);
    for request_id in ["stalled-a", "stalled-b"] {
        let (request_id, status, body) = send(request_id.into()).await;
        assert_eq!(status, 200, "{body}");
        answered.insert(request_id);
    }
    // …so requests arriving now find no room and are refused after 200 ms.
    let results =
        futures::future::join_all((0..8).map(|index| send(format!("stalled-{index}")))).await;
    let mut refused = 0;
    for (request_id, status, body) in results {
        match status {
            200 => {
                answered.insert(request_id);
            }
            503 => {
                refused += 1;
                assert_eq!(body["type"], "error", "{body}");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("usage recording is behind"),
                    "{body}"
                );
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    eprintln!(
        "8 requests while the stream was stalled and both event slots taken: {} answered, {refused} refused",
        answered.len() - 3
    );
    assert!(
        refused > 0,
        "with both slots taken and no acknowledgement, some requests wait past 200 ms"
    );
    // The stalled events go to the spool after the acknowledgement timeout, and traffic
    // flows again (behind the spool) while the stream is still stalled.
    let after = wait_until(
        kit::testing::liveness(),
        "a request answered while the stream is stalled",
        || async {
            let (request_id, status, _) = send(format!("later-{}", uuid::Uuid::now_v7())).await;
            (status == 200).then_some(request_id)
        },
    )
    .await;
    answered.insert(after);
    gateway.nats.resume();
    let recorded = wait_until(
        kit::testing::liveness(),
        "every answered request in the stream",
        || async {
            let (recorded, _) = recorded_request_ids(&gateway).await;
            answered.is_subset(&recorded).then_some(recorded)
        },
    )
    .await;
    assert!(answered.is_subset(&recorded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_every_key_fails_the_client_gets_the_upstreams_error_per_the_models_policy() {
    let gateway = Gateway::start().await;
    for provider in ["solo", "benched", "picky"] {
        gateway.add_provider(provider, Protocol::Anthropic).await;
    }
    // One route whose upstream is overloaded for its first 7 requests.
    gateway
        .add_model("solo", vec![("solo", "mock-fail-first-7-529", 0)])
        .await;
    // A policy that benches the key after one failure, for ten minutes, with no retry.
    let mut benched = support::model("benched", vec![("benched", "mock-fail-first-100-529", 0)]);
    benched.retry = Some(shared::config::RetryPolicy {
        max_attempts: Some(1),
        breaker_failures: Some(1),
        breaker_cooldown_secs: Some(600),
        bench_when_all_open: Some(true),
        ..Default::default()
    });
    gateway
        .publish_config(shared::config::ConfigEvent::ModelPut(benched))
        .await;
    // A policy that retries only 500s: a 429 is the answer at once.
    let mut picky = support::model("picky", vec![("picky", "mock-fail-first-1-429", 0)]);
    picky.retry = Some(shared::config::RetryPolicy {
        retry_on: Some(vec![500]),
        ..Default::default()
    });
    gateway
        .publish_config(shared::config::ConfigEvent::ModelPut(picky))
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let client = http();
    let send = async |model: &str| {
        let response = client
            .post(format!("{}/v1/messages", node.base))
            .header("x-api-key", &token)
            .json(&json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap().parse::<u64>().unwrap());
        let body: Value = response.json().await.unwrap();
        (status, retry_after, body)
    };
    let calls = |model: &str| {
        gateway
            .mock
            .requests()
            .iter()
            .filter(|request| request.model() == Some(model))
            .count()
    };

    // The one key fails 7 times (its circuit opens after 5): every failed request carries the
    // upstream's own error, and once the upstream recovers the model answers at once — it is
    // not benched for the cooldown, since there is no other route to go to.
    let mut statuses = Vec::new();
    loop {
        let (status, _, body) = send("solo").await;
        statuses.push(status);
        if status == 200 {
            break;
        }
        assert_eq!(status, 529, "the upstream's status: {body}");
        assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Overloaded (injected by the mock upstream"),
            "{body}"
        );
        assert!(statuses.len() < 10, "the model answers again: {statuses:?}");
    }
    assert_eq!(
        calls("mock-fail-first-7-529"),
        8,
        "7 failures, then the answer"
    );
    eprintln!("one route, upstream overloaded 7 times: statuses {statuses:?}");

    // Benched by its policy: the second request does not reach the upstream and gets the last
    // upstream error with the cooldown left as Retry-After.
    let (status, _, body) = send("benched").await;
    assert_eq!(status, 529, "{body}");
    let (status, retry_after, body) = send("benched").await;
    assert_eq!(status, 529, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Overloaded (injected by the mock upstream"),
        "the last upstream error, not 'no upstream': {body}"
    );
    let retry_after = retry_after.expect("Retry-After while benched");
    assert!(
        (500..=600).contains(&retry_after),
        "the cooldown left: {retry_after}"
    );
    assert_eq!(
        calls("mock-fail-first-100-529"),
        1,
        "one attempt, then benched"
    );

    // Only 500s are retried for this model: the 429 is the answer, after one attempt.
    let (status, _, body) = send("picky").await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(calls("mock-fail-first-1-429"), 1, "not retried");
    assert_eq!(send("picky").await.0, 200);
}

/// Event slots bound answered requests whose events are not yet durable, not requests in
/// progress: many more long streams than slots can be open at once, and other requests are
/// still served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_open_streams_than_event_slots_do_not_block_requests() {
    const SLOTS: usize = 4;
    const STREAMS: usize = 12;
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    // Streams that send two chunks and then stall: open for as long as the client stays.
    gateway
        .add_model("stalling", vec![("openai-mock", "mock-stall-after-2", 0)])
        .await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let slots = SLOTS.to_string();
    let env = [
        ("AXONGATE_MAX_UNSETTLED_EVENTS", slots.as_str()),
        ("AXONGATE_EVENT_SLOT_WAIT_MS", "200"),
    ];
    let node = gateway.start_node_with("a", &env, None).await;
    let client = http();
    let url = format!("{}/v1/chat/completions", node.base);
    let mut open = Vec::new();
    for index in 0..STREAMS {
        let mut response = client
            .post(&url)
            .bearer_auth(&token)
            .header("x-request-id", format!("open-{index}"))
            .json(&json!({"model": "stalling", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            200,
            "stream {index} of {STREAMS} with {SLOTS} slots"
        );
        // The first bytes arrived: the stream is open, and stays open (the upstream stalls).
        let first = response.chunk().await.unwrap().expect("a first chunk");
        assert!(!first.is_empty());
        open.push(response);
    }
    // With every stream still open, a plain request is answered.
    let response = client
        .post(&url)
        .bearer_auth(&token)
        .header("x-request-id", "plain")
        .json(&chat("gpt-via-mock"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    // The clients leave; every request is recorded once (the streams as cancelled).
    drop(open);
    let events = wait_until(
        kit::testing::liveness(),
        "every request's event in the stream",
        || async {
            let events: Vec<shared::Envelope<RequestEvent>> =
                support::read_all(&gateway.jetstream, shared::streams::REQUESTS_STREAM).await;
            (events.len() > STREAMS).then_some(events)
        },
    )
    .await;
    let mut ids: Vec<String> = events
        .iter()
        .map(|event| match &event.body {
            RequestEvent::Finished(finished) => finished.request_id.clone(),
        })
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (0..STREAMS).map(|index| format!("open-{index}")).collect();
    expected.push("plain".to_owned());
    expected.sort();
    assert_eq!(ids, expected, "each request recorded once");
}
