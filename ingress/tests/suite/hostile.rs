//! What a hostile or careless client, user or neighbour on the bus can do to ingress (issue 13):
//! each test fails on a gateway without the guard it names.

#![expect(clippy::expect_used, reason = "the helpers of a test fail it loudly")]

use crate::support;

use kit::testing::{liveness, wait_until};
use serde_json::{Value, json};
use shared::config::Protocol;
use support::{Gateway, Node, http};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

fn anthropic(model: &str) -> Value {
    json!({"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hello"}]})
}

/// The status and JSON body of a chat completion with `token`.
async fn chat_status(node: &Node, token: &str, model: &str) -> (u16, Value) {
    let response = http()
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(token)
        .json(&chat(model))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The status and JSON body of an Anthropic message with `token`.
async fn messages_status(node: &Node, token: &str, model: &str) -> (u16, Value) {
    let response = http()
        .post(format!("{}/v1/messages", node.base))
        .header("x-api-key", token)
        .json(&anthropic(model))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until every node answers `token` with `status`.
async fn wait_all(nodes: &[&Node], token: &str, status: u16, what: &str) {
    for node in nodes {
        wait_until(liveness(), what, || async {
            (chat_status(node, token, "gpt").await.0 == status).then_some(())
        })
        .await;
    }
}

async fn gateway_with_model() -> Gateway {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    gateway
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disabled_or_deleted_users_tokens_are_refused_everywhere_and_after_restart() {
    let gateway = gateway_with_model().await;
    gateway.put_user("alice", true).await;
    let token = gateway
        .add_token("alice-token", |token| token.owner_user_id = "alice".into())
        .await;
    let other = gateway.add_token("bob-token", |_| {}).await;
    let (a, b) = (gateway.start_node("a").await, gateway.start_node("b").await);
    wait_all(&[&a, &b], &token, 200, "alice's token to work").await;

    // Disabled: refused on both nodes, in each caller's dialect; other users are unaffected.
    gateway.put_user("alice", false).await;
    wait_all(
        &[&a, &b],
        &token,
        401,
        "a disabled user's token to be refused",
    )
    .await;
    let (_, body) = chat_status(&b, &token, "gpt").await;
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    let (status, body) = messages_status(&a, &token, "gpt").await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error", "Anthropic shape: {body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    assert_eq!(chat_status(&a, &other, "gpt").await.0, 200);

    // Enabled again, then deleted.
    gateway.put_user("alice", true).await;
    wait_all(&[&a, &b], &token, 200, "a re-enabled user's token to work").await;
    let deleted_at = gateway.delete_user("alice").await;
    wait_all(
        &[&a, &b],
        &token,
        401,
        "a deleted user's token to be refused",
    )
    .await;

    // A node starting now, from the Postgres views (which drop the deleted user's row) or from
    // the stream, refuses it from its first request.
    gateway.wait_projected(deleted_at).await;
    let from_views = gateway.start_node("c").await;
    assert_eq!(chat_status(&from_views, &token, "gpt").await.0, 401);
    assert_eq!(chat_status(&from_views, &other, "gpt").await.0, 200);
    let from_stream = gateway.start_node_without_postgres("d", &[]).await;
    assert_eq!(chat_status(&from_stream, &token, "gpt").await.0, 401);
    assert_eq!(chat_status(&from_stream, &other, "gpt").await.0, 200);
}

async fn metrics_text(node: &Node) -> String {
    http()
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text")
}

async fn ready_status(node: &Node) -> u16 {
    http()
        .get(format!("{}/ready", node.base))
        .send()
        .await
        .map_or(0, |response| response.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_enormous_model_name_is_refused_unechoed_and_wedges_nothing() {
    let gateway = gateway_with_model().await;
    let token = gateway.add_token("tok", |_| {}).await;
    let node = gateway.start_node("a").await;
    let enormous = "m".repeat(1 << 20);

    let (status, body) = chat_status(&node, &token, &enormous).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["param"], "model", "{body}");
    assert!(body.to_string().len() < 2_000, "the name is not echoed");
    let (status, body) = messages_status(&node, &token, &enormous).await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "error", "Anthropic shape: {body}");
    assert!(body.to_string().len() < 2_000, "the name is not echoed");
    // A name that is merely unknown is still a 404, and labels no metric series.
    let unknown = format!("no-such-model-{}", "x".repeat(200));
    assert_eq!(chat_status(&node, &token, &unknown).await.0, 404);

    // Later requests are recorded: nothing queues behind the refused ones.
    let response = http()
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .header("x-request-id", "after-the-enormous-one")
        .json(&chat("gpt"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let events = wait_until(liveness(), "the later request's event", || async {
        let events = gateway.request_events().await;
        let later = events.iter().any(|event| {
            let shared::request::RequestEvent::Finished(finished) = &event.body;
            finished.request_id == "after-the-enormous-one"
        });
        (later && events.len() >= 4).then_some(events)
    })
    .await;
    for event in &events {
        let shared::request::RequestEvent::Finished(finished) = &event.body;
        assert!(
            finished.model_alias.len() <= 256,
            "a recorded model name is bounded ({} bytes)",
            finished.model_alias.len()
        );
    }
    assert_eq!(events.len(), 4, "one event per request");

    let metrics = metrics_text(&node).await;
    let series: Vec<&str> = metrics
        .lines()
        .filter(|line| line.starts_with("ingress_requests_total"))
        .collect();
    assert!(
        series
            .iter()
            .any(|line| line.contains(r#"model="unknown""#)),
        "{series:?}"
    );
    assert!(
        series
            .iter()
            .all(|line| line.contains(r#"model="unknown""#) || line.contains(r#"model="gpt""#)),
        "only configured names label series: {series:?}"
    );
}

/// One spool record as the spool writes it: a little-endian length, then the JSON record.
fn spool_record(subject: &str, msg_id: &str, payload: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let json = serde_json::to_vec(&json!({
        "subject": subject,
        "msg_id": msg_id,
        "payload": base64::engine::general_purpose::STANDARD.encode(payload),
    }))
    .expect("record");
    let mut bytes = u32::try_from(json.len())
        .expect("length")
        .to_le_bytes()
        .to_vec();
    bytes.extend_from_slice(&json);
    bytes
}

fn finished_event(request_id: &str) -> shared::Envelope<shared::request::RequestEvent> {
    let finished = shared::request::RequestFinished {
        request_id: request_id.into(),
        token_id: None,
        user_id: None,
        model_alias: "gpt".into(),
        provider_id: None,
        upstream_model: None,
        provider_key_id: None,
        client_protocol: shared::config::ClientProtocol::OpenaiChat,
        upstream_protocol: None,
        stream: false,
        outcome: shared::request::Outcome::Error,
        error_kind: Some(shared::request::ErrorKind::BadRequest),
        http_status: 400,
        usage: shared::request::Usage::default(),
        cost: None,
        started_at: time::OffsetDateTime::now_utc(),
        ttfb_us: None,
        latency_us: 1,
        attempts: vec![],
        warnings: vec![],
        trace_id: None,
        config_seq: None,
        cache_hit: None,
        routing: None,
        team_id: None,
    };
    shared::Envelope::by_node(
        shared::request::RequestEvent::Finished(finished),
        "an-earlier-run".to_owned(),
    )
}

fn segments(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_name().to_string_lossy().starts_with("segment-"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_poison_event_in_the_spool_is_dead_lettered_once_and_blocks_nothing() {
    let gateway = Gateway::start().await;
    // An earlier run left a spool whose first record is larger than the bus accepts (1 MB by
    // default), followed by an ordinary event.
    let dir = gateway.spool_root.join("a");
    std::fs::create_dir_all(&dir).expect("spool dir");
    let good = finished_event("the-event-behind-the-poison");
    let mut segment = spool_record(
        "axongate.requests.error",
        "poison-event-id",
        &vec![b'x'; 2 << 20],
    );
    segment.extend(spool_record(
        &good.subject(),
        &good.event_id.to_string(),
        &good.to_bytes().expect("encode"),
    ));
    std::fs::write(dir.join("segment-000000000000.spool"), segment).expect("segment");

    let node = gateway.start_node("a").await;
    wait_until(
        liveness(),
        "the event behind the poison to be published",
        || async {
            gateway
                .request_events()
                .await
                .iter()
                .any(|event| event.event_id == good.event_id)
                .then_some(())
        },
    )
    .await;
    wait_until(liveness(), "the drained segment to be removed", || async {
        (segments(&dir) == 0).then_some(())
    })
    .await;
    let dead_letters =
        std::fs::read_to_string(dir.join("dead-letters.jsonl")).expect("dead letters");
    assert_eq!(dead_letters.lines().count(), 1, "{dead_letters:.300}");
    let line: Value =
        serde_json::from_str(dead_letters.lines().next().unwrap_or("")).expect("json");
    assert_eq!(line["msg_id"], "poison-event-id");
    assert!(
        line["reason"]
            .as_str()
            .unwrap_or("")
            .contains("max_payload"),
        "{}",
        line["reason"]
    );
    assert!(
        metrics_text(&node)
            .await
            .contains("ingress_events_dead_lettered_total")
    );

    // A restart replays nothing: the poison is not in the spool any more.
    drop(node);
    let node = gateway.start_node("a").await;
    assert_eq!(ready_status(&node).await, 200);
    assert_eq!(segments(&dir), 0);
    let dead_letters =
        std::fs::read_to_string(dir.join("dead-letters.jsonl")).expect("dead letters");
    assert_eq!(dead_letters.lines().count(), 1);
}

/// A tiny tmpfs mounted for the test's lifetime (the test runs as root here; elsewhere it says
/// why it cannot run and passes vacuously).
struct TinyDisk(std::path::PathBuf);

impl TinyDisk {
    fn mount(path: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).ok()?;
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .ok()?;
        status.success().then(|| Self(path.to_owned()))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_spool_disk_refuses_requests_instead_of_losing_their_events() {
    let mut gateway = gateway_with_model().await;
    let token = gateway.add_token("tok", |_| {}).await;
    let Some(_disk) = TinyDisk::mount(&gateway.spool_root.join("a"), "64k") else {
        eprintln!("SKIPPED: mounting a tmpfs needs root; the full-disk policy is untested here");
        return;
    };
    let node = gateway.start_node("a").await;
    assert_eq!(ready_status(&node).await, 200);

    // NATS away: events go to the spool, whose disk fills up long before spool_max_bytes.
    gateway.nats.stop();
    let client = http();
    let served = std::sync::Mutex::new(Vec::new());
    let mut attempt = 0;
    let refused = wait_until(liveness(), "a refusal once the disk is full", || {
        attempt += 1;
        let request_id = format!("full-disk-{attempt}");
        let (client, base, token) = (client.clone(), node.base.clone(), token.clone());
        let served = &served;
        async move {
            let response = client
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(&token)
                .header("x-request-id", &request_id)
                .json(&chat("gpt"))
                .send()
                .await
                .ok()?;
            match response.status().as_u16() {
                200 => {
                    served.lock().expect("lock").push(request_id);
                    None
                }
                503 => Some(response.json::<Value>().await.ok()?),
                other => panic!("unexpected status {other}"),
            }
        }
    })
    .await;
    let served = served.into_inner().expect("lock");
    assert!(!served.is_empty(), "the disk took some events first");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("spool"),
        "{refused}"
    );
    let (status, body) = messages_status(&node, &token, "gpt").await;
    assert_eq!(status, 503);
    assert_eq!(body["type"], "error", "Anthropic shape: {body}");
    assert_eq!(
        ready_status(&node).await,
        503,
        "/ready says the node refuses traffic"
    );

    // NATS back: the spool drains, the disk has room again, the node serves, and every
    // request that was answered 200 has its event.
    gateway.nats.restart().await;
    wait_until(liveness(), "the node to serve again", || async {
        (ready_status(&node).await == 200 && chat_status(&node, &token, "gpt").await.0 == 200)
            .then_some(())
    })
    .await;
    wait_until(liveness(), "every served request's event", || async {
        let events = gateway.request_events().await;
        let recorded: std::collections::HashSet<String> = events
            .iter()
            .map(|event| {
                let shared::request::RequestEvent::Finished(finished) = &event.body;
                finished.request_id.clone()
            })
            .collect();
        served.iter().all(|id| recorded.contains(id)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_methods_and_two_different_tokens_get_the_callers_error_shape() {
    let gateway = gateway_with_model().await;
    let token = gateway.add_token("tok", |_| {}).await;
    let other = gateway.add_token("other", |_| {}).await;
    let node = gateway.start_node("a").await;
    let client = http();

    for (path, anthropic_shape) in [
        ("/v1/chat/completions", false),
        ("/v1/embeddings", false),
        ("/v1/messages", true),
        ("/v1/messages/count_tokens", true),
    ] {
        let response = client
            .get(format!("{}{path}", node.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some("POST")
        );
        let body: Value = response.json().await.expect("a JSON error body");
        if anthropic_shape {
            assert_eq!(body["type"], "error", "{path}: {body}");
            assert_eq!(
                body["error"]["type"], "invalid_request_error",
                "{path}: {body}"
            );
        } else {
            assert_eq!(
                body["error"]["type"], "invalid_request_error",
                "{path}: {body}"
            );
            assert!(
                body["error"]["message"].as_str().is_some(),
                "{path}: {body}"
            );
        }
    }
    let response = client
        .delete(format!("{}/v1/models", node.base))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 405);
    assert!(response.json::<Value>().await.expect("JSON")["error"]["message"].is_string());

    // Two valid tokens at once: which one to bill is not for the gateway to guess.
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let body = if path == "/v1/messages" {
            anthropic("gpt")
        } else {
            chat("gpt")
        };
        let response = client
            .post(format!("{}{path}", node.base))
            .bearer_auth(&token)
            .header("x-api-key", &other)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401, "{path}");
        let body: Value = response.json().await.expect("JSON");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("different"),
            "{body}"
        );
    }
    // The same token in both headers is fine.
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .header("x-api-key", &token)
        .json(&chat("gpt"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

fn finished_by_request_id(
    events: &[shared::Envelope<shared::request::RequestEvent>],
    request_id: &str,
) -> Option<shared::request::RequestFinished> {
    events.iter().find_map(|event| {
        let shared::request::RequestEvent::Finished(finished) = &event.body;
        (finished.request_id == request_id).then(|| finished.clone())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embeddings_and_token_counts_are_metered_and_limited() {
    let gateway = gateway_with_model().await;
    gateway
        .add_provider("anthropic-mock", Protocol::Anthropic)
        .await;
    gateway
        .add_model("embed", vec![("openai-mock", "text-embedding-mock", 0)])
        .await;
    gateway
        .add_model("claude", vec![("anthropic-mock", "claude-mock", 0)])
        .await;
    let token = gateway.add_token("tok", |_| {}).await;
    let limited = gateway
        .add_token("limited", |token| token.rpm = Some(2))
        .await;
    let node = gateway.start_node("a").await;
    let client = http();
    let embed = |token: &str, request_id: &str| {
        client
            .post(format!("{}/v1/embeddings", node.base))
            .bearer_auth(token)
            .header("x-request-id", request_id)
            .json(&json!({"model": "embed", "input": ["the quick brown fox", "jumps over"]}))
            .send()
    };
    let count = |token: &str, request_id: &str| {
        client
            .post(format!("{}/v1/messages/count_tokens", node.base))
            .header("x-api-key", token)
            .header("x-request-id", request_id)
            .json(&json!({"model": "claude", "messages": [{"role": "user", "content": "hello there"}]}))
            .send()
    };

    assert_eq!(embed(&token, "embed-1").await.expect("embed").status(), 200);
    let counted = count(&token, "count-1").await.expect("count");
    assert_eq!(counted.status(), 200);
    assert!(counted.json::<Value>().await.expect("JSON")["input_tokens"].as_u64() > Some(0));

    let (embedded, counted) = wait_until(liveness(), "both requests' events", || async {
        let events = gateway.request_events().await;
        Some((
            finished_by_request_id(&events, "embed-1")?,
            finished_by_request_id(&events, "count-1")?,
        ))
    })
    .await;
    assert_eq!(
        embedded.client_protocol,
        shared::config::ClientProtocol::OpenaiEmbeddings
    );
    assert_eq!(embedded.token_id.as_deref(), Some("tok"));
    assert!(embedded.usage.input_tokens > 0, "{:?}", embedded.usage);
    let cost = embedded
        .cost
        .expect("embeddings are priced by their input tokens");
    assert!(cost.amount.0 > 0, "{cost:?}");
    assert_eq!(embedded.attempts.len(), 1);
    assert_eq!(counted.model_alias, "claude");
    assert_eq!(counted.outcome, shared::request::Outcome::Success);
    assert!(counted.cost.is_none_or(|cost| cost.amount.0 == 0));

    // Both count against the token's requests per minute.
    assert_eq!(
        embed(&limited, "limited-1").await.expect("embed").status(),
        200
    );
    assert_eq!(
        count(&limited, "limited-2").await.expect("count").status(),
        200
    );
    let refused = embed(&limited, "limited-3").await.expect("embed");
    assert_eq!(refused.status(), 429);
    assert!(refused.json::<Value>().await.expect("JSON")["error"]["message"].is_string());
    let refused = count(&limited, "limited-4").await.expect("count");
    assert_eq!(refused.status(), 429);
    assert_eq!(
        refused.json::<Value>().await.expect("JSON")["type"],
        "error"
    );
    wait_until(liveness(), "the refusals' events", || async {
        let events = gateway.request_events().await;
        let refused = finished_by_request_id(&events, "limited-4")?;
        (refused.error_kind == Some(shared::request::ErrorKind::RateLimited)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spent_budget_stays_spent_across_a_restart_without_postgres() {
    let gateway = gateway_with_model().await;
    let token = gateway
        .add_token("budgeted", |token| {
            token.budget = Some(shared::config::Budget {
                amount: shared::money::Nanos(1),
                currency: "USD".into(),
                period: shared::config::BudgetPeriod::Daily,
            });
        })
        .await;
    let node = gateway.start_node_without_postgres("a", &[]).await;
    assert_eq!(chat_status(&node, &token, "gpt").await.0, 200);
    let (status, body) = chat_status(&node, &token, "gpt").await;
    assert_eq!(status, 429, "the budget is spent: {body}");
    assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
    wait_until(liveness(), "the priced event in the stream", || async {
        gateway
            .request_events()
            .await
            .iter()
            .any(|event| {
                let shared::request::RequestEvent::Finished(finished) = &event.body;
                finished.cost.as_ref().is_some_and(|cost| cost.amount.0 > 0)
            })
            .then_some(())
    })
    .await;

    // Restarted while Postgres is unreachable: the spend comes back from the request stream.
    drop(node);
    let node = gateway.start_node_without_postgres("a", &[]).await;
    let (status, body) = chat_status(&node, &token, "gpt").await;
    assert_eq!(status, 429, "still refused after the restart: {body}");
    let other = gateway.add_token("unbudgeted", |_| {}).await;
    wait_until(liveness(), "an unbudgeted token to be served", || async {
        (chat_status(&node, &other, "gpt").await.0 == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_audited_spend_adjustment_reaches_the_budgets_of_running_nodes() {
    let gateway = gateway_with_model().await;
    let token = gateway
        .add_token("adjusted", |token| {
            token.budget = Some(shared::config::Budget {
                amount: shared::money::Nanos(1_000_000_000),
                currency: "USD".into(),
                period: shared::config::BudgetPeriod::Daily,
            });
        })
        .await;
    let nodes = [gateway.start_node("a").await, gateway.start_node("b").await];
    for node in &nodes {
        assert_eq!(chat_status(node, &token, "gpt").await.0, 200);
    }
    let adjust = |amount: i64, id: &str| {
        let today = time::OffsetDateTime::now_utc().date();
        shared::Envelope::by_actor(
            shared::audit::AuditEvent::SpendAdjusted(shared::audit::SpendAdjusted {
                adjustment_id: id.into(),
                reason: "the price of gpt was wrong".into(),
                model_alias: Some("gpt".into()),
                from: format!("{today}T00:00:00Z"),
                to: format!("{}T00:00:00Z", today.next_day().expect("tomorrow")),
                price: shared::money::Price {
                    currency: "USD".into(),
                    input_per_million: shared::money::Nanos(1),
                    output_per_million: shared::money::Nanos(1),
                    cache_read_per_million: shared::money::Nanos(0),
                    cache_write_per_million: shared::money::Nanos(0),
                    version: 8,
                },
                entries: vec![shared::audit::SpendAdjustmentEntry {
                    token_id: "adjusted".into(),
                    day: today.to_string(),
                    currency: "USD".into(),
                    amount: shared::money::Nanos(amount),
                }],
            }),
            shared::Actor::system(),
        )
    };
    // A correction that puts the token over its budget: every running node refuses it.
    support::publish(&gateway.jetstream, &adjust(2_000_000_000, "adj-1")).await;
    for node in &nodes {
        let body = wait_until(liveness(), "the adjustment to reach the node", || async {
            let (status, body) = chat_status(node, &token, "gpt").await;
            (status == 429).then_some(body)
        })
        .await;
        assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
    }
    // A refund gives it back.
    support::publish(&gateway.jetstream, &adjust(-3_000_000_000, "adj-2")).await;
    for node in &nodes {
        wait_until(liveness(), "the refund to reach the node", || async {
            (chat_status(node, &token, "gpt").await.0 == 200).then_some(())
        })
        .await;
    }
}

/// Waits until the server closes `socket` (end of stream or reset), reading whatever it sends.
async fn closed_by_server(mut socket: tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buffer = [0_u8; 4096];
    let read_until_closed = async {
        loop {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(liveness(), read_until_closed)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_and_silent_connections_are_closed_and_capped() {
    use tokio::io::AsyncWriteExt as _;
    let gateway = gateway_with_model().await;
    let node = gateway
        .start_node_with("a", &[("AXONGATE_IDLE_TIMEOUT_SECS", "2")], None)
        .await;
    let address = ("127.0.0.1", node.port);

    // 200 sockets that never send a byte, and one keep-alive connection left idle after a
    // request: ingress closes every one of them.
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(
            tokio::net::TcpStream::connect(address)
                .await
                .expect("connect"),
        );
    }
    let mut keep_alive = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    keep_alive
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let closed = futures::future::join_all(
        silent
            .into_iter()
            .chain(std::iter::once(keep_alive))
            .map(closed_by_server),
    )
    .await;
    let open = closed.iter().filter(|closed| !**closed).count();
    assert_eq!(open, 0, "{open} of 201 idle connections still open");
    eprintln!("201 idle connections closed within {:?}", started.elapsed());
    assert!(
        metrics_text(&node)
            .await
            .contains(r#"ingress_connections_closed_total{reason="idle"}"#)
    );

    // Past the connection cap a new connection is closed at once, while the held ones stay.
    let capped = gateway
        .start_node_with("b", &[("AXONGATE_MAX_CONNECTIONS", "5")], None)
        .await;
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(
            tokio::net::TcpStream::connect(("127.0.0.1", capped.port))
                .await
                .expect("connect"),
        );
    }
    let extra = tokio::net::TcpStream::connect(("127.0.0.1", capped.port))
        .await
        .expect("the kernel accepts; ingress closes");
    assert!(
        closed_by_server(extra).await,
        "the sixth connection is closed"
    );
    // A held one still works.
    let mut first = held.remove(0);
    first
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut first, &mut answer)
        .await
        .expect("read");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

async fn config_last_sequence(gateway: &Gateway) -> u64 {
    gateway
        .jetstream
        .get_stream(shared::streams::CONFIG_STREAM)
        .await
        .expect("config stream")
        .info()
        .await
        .expect("info")
        .state
        .last_sequence
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_config_messages_and_negative_usage_reports_change_nothing() {
    let gateway = gateway_with_model().await;
    let budgeted = gateway
        .add_token("budgeted", |token| {
            token.budget = Some(shared::config::Budget {
                amount: shared::money::Nanos(1),
                currency: "USD".into(),
                period: shared::config::BudgetPeriod::Daily,
            });
        })
        .await;
    let marker = gateway
        .add_token("marker", |token| token.rpm = Some(1))
        .await;
    let node = gateway.start_node("a").await;
    let bus = async_nats::connect(&gateway.nats.url).await.expect("nats");

    // A forged token on the live config subject, with the next sequence and with an absurd
    // one: neither is in the stream, so neither is applied, and later real events still are.
    let forged_plain = shared::token::PlainToken::generate();
    let forged = shared::config::UserToken {
        id: "forged".into(),
        name: "forged".into(),
        owner_user_id: "mallory".into(),
        hash: gateway.hash(forged_plain.expose()),
        last_four: forged_plain.last_four(),
        allowed_models: vec![],
        rpm: None,
        tpm: None,
        budget: None,
        expires_at: None,
        enabled: true,
        team_id: None,
    };
    let envelope = shared::Envelope::by_actor(
        shared::config::ConfigEvent::TokenPut(forged),
        shared::Actor::system(),
    );
    let next = config_last_sequence(&gateway).await + 1;
    for sequence in [next, 1_000_000] {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Sequence", sequence.to_string().as_str());
        bus.publish_with_headers(
            format!("{}.token.forged", shared::streams::CONFIG_LIVE_PREFIX),
            headers,
            envelope.to_bytes().expect("encode").into(),
        )
        .await
        .expect("publish");
    }
    bus.flush().await.expect("flush");
    let real = gateway.add_token("real", |_| {}).await;
    wait_until(
        liveness(),
        "the real token after the forged messages",
        || async { (chat_status(&node, &real, "gpt").await.0 == 200).then_some(()) },
    )
    .await;
    assert_eq!(
        chat_status(&node, forged_plain.expose(), "gpt").await.0,
        401,
        "a forged config message is not applied"
    );

    // Spend the budget, then a "node" reports negative spend for it: still refused.
    assert_eq!(chat_status(&node, &budgeted, "gpt").await.0, 200);
    assert_eq!(chat_status(&node, &budgeted, "gpt").await.0, 429);
    let second = time::OffsetDateTime::now_utc().unix_timestamp();
    let report = |token_id: &str, requests: u64, spend_nanos: i64| {
        json!({"node": "rogue", "entries": [{
            "token_id": token_id, "second": second, "requests": requests, "tokens": 0,
            "spend_nanos": spend_nanos
        }]})
    };
    bus.publish(
        "axongate.limits.usage",
        serde_json::to_vec(&report("budgeted", 0, -1_000_000_000_000))
            .expect("json")
            .into(),
    )
    .await
    .expect("publish");
    // A plausible report after it, on the same subject, shows when both have been merged.
    bus.publish(
        "axongate.limits.usage",
        serde_json::to_vec(&report("marker", 1, 0))
            .expect("json")
            .into(),
    )
    .await
    .expect("publish");
    bus.flush().await.expect("flush");
    wait_until(liveness(), "the marker report to be merged", || async {
        (chat_status(&node, &marker, "gpt").await.0 == 429).then_some(())
    })
    .await;
    let (status, body) = chat_status(&node, &budgeted, "gpt").await;
    assert_eq!(
        status, 429,
        "negative spend does not reset a budget: {body}"
    );
    assert!(
        metrics_text(&node)
            .await
            .contains("ingress_limit_reports_refused_total")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_environment_proxy_never_carries_upstream_calls_past_the_address_guard() {
    // A proxy resolves the upstream's host itself, so honouring HTTP(S)_PROXY would skip the
    // check that a provider only reaches public addresses. This "proxy" counts connections.
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("addr"));
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = proxy.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    let gateway = gateway_with_model().await;
    let token = gateway.add_token("tok", |_| {}).await;
    let env: Vec<(&str, &str)> = [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ]
    .into_iter()
    .map(|name| (name, proxy_url.as_str()))
    .chain([("NO_PROXY", ""), ("no_proxy", "")])
    .collect();
    let node = gateway.start_node_with("proxied", &env, None).await;
    let (status, body) = chat_status(&node, &token, "gpt").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "ingress sent an upstream call through the environment's proxy"
    );
}
