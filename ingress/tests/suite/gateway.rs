//! Ingress end to end: real ingress processes, real NATS and Postgres, the mock upstream.

use crate::support;

use std::time::Instant;

use kit::testing::wait_until;
use serde_json::{Value, json};
use shared::config::Protocol;
use shared::request::{ErrorKind, Outcome};
use support::{Gateway, finished_events, http, sse_events};

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "Say hello to the gateway"}]})
}

fn anthropic(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 256, "stream": stream, "messages": [{"role": "user", "content": "Say hello to the gateway"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn translates_both_ways_plain_and_streaming_and_records_events() {
    let gateway = Gateway::start().await;
    gateway
        .add_provider("anthropic-mock", Protocol::Anthropic)
        .await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model(
            "claude-via-mock",
            vec![("anthropic-mock", "claude-mock-1", 0)],
        )
        .await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let config_seq = gateway
        .jetstream
        .get_stream(shared::streams::CONFIG_STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .last_sequence;
    let node = gateway.start_node("a").await;
    let client = http();

    // OpenAI client → Anthropic upstream, plain.
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .header("authorization-extra", "ignored")
        .json(&chat("claude-via-mock", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "claude-via-mock");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
    assert!(
        body["usage"]["prompt_tokens"]
            .as_u64()
            .is_some_and(|tokens| tokens > 0)
    );
    let seen = gateway.mock.requests();
    let upstream = seen.last().unwrap();
    assert_eq!(upstream.path, "/v1/messages");
    assert_eq!(
        upstream.header("x-api-key"),
        Some(support::PROVIDER_SECRET_ANTHROPIC)
    );
    assert!(
        upstream.header("authorization").is_none(),
        "the client's token is never forwarded"
    );
    assert!(
        upstream.header("authorization-extra").is_none(),
        "client headers are not forwarded"
    );
    assert_eq!(upstream.model(), Some("claude-mock-1"));

    // OpenAI client → Anthropic upstream, streaming: chunks, a finish_reason, [DONE].
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("claude-via-mock", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["object"] == "chat.completion.chunk")
    );
    assert!(
        chunks
            .iter()
            .any(|chunk| chunk["choices"][0]["finish_reason"] == "stop")
    );

    // Anthropic client (x-api-key) → OpenAI upstream, plain and streaming.
    let response = client
        .post(format!("{}/v1/messages", node.base))
        .header("x-api-key", &token)
        .header("anthropic-version", "2023-06-01")
        .json(&anthropic("gpt-via-mock", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["stop_reason"], "end_turn");
    let upstream = gateway.mock.requests().last().cloned().unwrap();
    assert_eq!(upstream.path, "/v1/chat/completions");
    assert_eq!(
        upstream.header("authorization"),
        Some(format!("Bearer {}", support::PROVIDER_SECRET_OPENAI).as_str())
    );

    let response = client
        .post(format!("{}/v1/messages", node.base))
        .header("x-api-key", &token)
        .header("anthropic-version", "2023-06-01")
        .json(&anthropic("gpt-via-mock", true))
        .send()
        .await
        .unwrap();
    let events = sse_events(&response.text().await.unwrap());
    let names: Vec<&str> = events
        .iter()
        .filter_map(|(event, _)| event.as_deref())
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(
        names.contains(&"content_block_start")
            && names.contains(&"content_block_stop")
            && names.contains(&"message_delta")
    );
    let upstream = gateway.mock.requests().last().cloned().unwrap();
    assert_eq!(
        upstream.body["stream_options"]["include_usage"], true,
        "stream usage is asked for"
    );

    // One event per request, with usage, cost and the price version.
    let events = finished_events(&gateway, 4).await;
    assert_eq!(events.len(), 4);
    for event in &events {
        assert_eq!(event.outcome, Outcome::Success);
        assert_eq!(event.token_id.as_deref(), Some("tok-1"));
        assert!(
            event.usage.input_tokens > 0 && event.usage.output_tokens > 0,
            "{event:?}"
        );
        assert!(
            !event.usage.estimated,
            "usage came from the upstream: {event:?}"
        );
        let cost = event.cost.as_ref().unwrap();
        assert_eq!(cost.price_version, 7);
        // The config the node served it under: all of it, the token being the last event.
        assert_eq!(event.config_seq, Some(config_seq), "{event:?}");
        let expected = event.usage.input_tokens * 3_000
            + event.usage.output_tokens * 15_000
            + event.usage.cache_read_tokens * 300
            + event.usage.cache_write_tokens * 3_750;
        assert_eq!(
            cost.amount.0,
            i64::try_from(expected).unwrap(),
            "cost is exact"
        );
        assert_eq!(event.attempts.len(), 1);
        assert!(event.ttfb_us.is_some());
    }
    assert!(events[1].stream && events[3].stream);
    // No secret in any event.
    let raw = serde_json::to_string(&gateway.request_events().await).unwrap();
    assert!(
        !raw.contains(support::PROVIDER_SECRET_OPENAI)
            && !raw.contains(support::PROVIDER_SECRET_ANTHROPIC)
    );
    assert!(!raw.contains(&token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_come_in_the_callers_dialect() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    gateway
        .add_model("secret-model", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway
        .add_token("tok-1", |token| token.allowed_models = vec!["gpt-*".into()])
        .await;
    let node = gateway.start_node("a").await;
    let client = http();

    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .json(&chat("gpt-via-mock", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");

    let response = client
        .post(format!("{}/v1/messages", node.base))
        .header(
            "x-api-key",
            "axg-notarealtokenxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        )
        .json(&anthropic("gpt-via-mock", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("nope", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");

    let response = client
        .post(format!("{}/v1/messages", node.base))
        .bearer_auth(&token)
        .json(&anthropic("secret-model", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "permission_error");

    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    // /v1/models lists only what the token may use, in either shape.
    let body: Value = client
        .get(format!("{}/v1/models", node.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-via-mock"]);
    assert_eq!(body["object"], "list");
    let body: Value = client
        .get(format!("{}/v1/models", node.base))
        .header("x-api-key", &token)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"][0]["type"], "model");
    assert_eq!(body["has_more"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fails_over_on_server_errors_but_never_retries_client_errors() {
    let gateway = Gateway::start().await;
    gateway.add_provider("primary", Protocol::OpenAi).await;
    gateway.add_provider("backup", Protocol::Anthropic).await;
    gateway
        .add_model(
            "resilient",
            vec![
                ("primary", "mock-fail-503", 0),
                ("backup", "claude-mock-ok", 1),
            ],
        )
        .await;
    gateway
        .add_model(
            "bad-input",
            vec![("primary", "mock-400", 0), ("backup", "claude-mock-ok", 1)],
        )
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let client = http();

    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("resilient", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let models: Vec<String> = gateway
        .mock
        .requests()
        .iter()
        .filter_map(|request| request.model().map(str::to_owned))
        .collect();
    assert_eq!(models, ["mock-fail-503", "claude-mock-ok"]);

    gateway.mock.clear();
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("bad-input", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        gateway.mock.requests().len(),
        1,
        "a client error is not retried"
    );

    let events = finished_events(&gateway, 2).await;
    assert_eq!(events[0].attempts.len(), 2);
    assert_eq!(events[0].attempts[0].status, Some(503));
    assert_eq!(
        events[0].attempts[0].error_kind,
        Some(ErrorKind::UpstreamServerError)
    );
    assert_eq!(events[0].provider_id.as_deref(), Some("backup"));
    assert_eq!(events[1].outcome, Outcome::Error);
    assert_eq!(events[1].http_status, 400);
    assert_eq!(events[1].attempts.len(), 1);

    // Key health follows real traffic: the projector folds each attempt.
    let (pg, _connection) = tokio_postgres::connect(&gateway.postgres_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(_connection);
    let health = wait_until(kit::testing::liveness(), "key health", || async {
        let rows = pg
            .query("SELECT provider_key_id, last_error, last_success_at IS NOT NULL FROM provider_key_health ORDER BY 1", &[])
            .await
            .ok()?;
        (rows.len() == 2).then(|| rows.iter().map(|row| (row.get::<_, String>(0), row.get::<_, Option<String>>(1), row.get::<_, bool>(2))).collect::<Vec<_>>())
    })
    .await;
    assert_eq!(health[0], ("backup-key".to_owned(), None, true));
    assert_eq!(health[1].0, "primary-key");
    assert_eq!(health[1].1.as_deref(), Some("upstream_server_error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocation_reaches_every_node_and_is_undone_in_order() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt-via-mock", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let nodes = [gateway.start_node("a").await, gateway.start_node("b").await];
    let client = http();
    for node in &nodes {
        let response = client
            .post(format!("{}/v1/chat/completions", node.base))
            .bearer_auth(&token)
            .json(&chat("gpt-via-mock", false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let mut revoked = shared::config::UserToken {
        id: "tok-1".into(),
        name: "tok-1".into(),
        owner_user_id: "user-1".into(),
        hash: gateway.hash(&token),
        last_four: token[token.len() - 4..].into(),
        allowed_models: vec![],
        rpm: None,
        tpm: None,
        budget: None,
        expires_at: None,
        enabled: false,
        team_id: None,
    };
    // The figure is taken from JetStream's acknowledgement of the change (how long the
    // acknowledgement took is printed separately); it is reported, not asserted.
    let attempted = Instant::now();
    gateway.token_put(revoked.clone()).await;
    let acknowledged_after = attempted.elapsed();
    let published = Instant::now();
    for node in &nodes {
        wait_until(
            kit::testing::liveness(),
            "revocation to reach the node",
            || async {
                let response = client
                    .get(format!("{}/v1/models", node.base))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .ok()?;
                (response.status() == 401).then_some(())
            },
        )
        .await;
    }
    let elapsed = published.elapsed();
    eprintln!(
        "revocation acknowledged after {acknowledged_after:?}, refused by both nodes {elapsed:?} after that"
    );
    // And back.
    revoked.enabled = true;
    gateway.token_put(revoked).await;
    for node in &nodes {
        wait_until(kit::testing::liveness(), "re-enable", || async {
            let response = client
                .get(format!("{}/v1/models", node.base))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?;
            (response.status() == 200).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_disconnect_mid_stream_is_recorded_as_cancelled() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model(
            "slow",
            vec![("openai-mock", "mock-chunks-3000-chunk-delay-20", 0)],
        )
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let mut response = http()
        .post(format!("{}/v1/messages", node.base))
        .header("x-api-key", &token)
        .json(&anthropic("slow", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Read a little, then hang up.
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(response);
    let events = finished_events(&gateway, 1).await;
    assert_eq!(events[0].outcome, Outcome::Cancelled);
    assert_eq!(events[0].error_kind, Some(ErrorKind::ClientDisconnected));
    // The whole stream would take a minute; a request that ended long before that was cut off
    // when the client left, not streamed to the end. (How soon is a figure, not a bound.)
    eprintln!(
        "cancelled stream recorded with a latency of {} ms",
        events[0].latency_us / 1000
    );
    assert!(
        events[0].latency_us < 59_000_000,
        "the upstream was cancelled when the client left, not streamed to the end (60 s): {} µs",
        events[0].latency_us
    );
}

/// A client that leaves once the answer's end has reached it (Codex closes the connection on
/// `response.completed`), while the upstream has not yet ended its body, got a complete answer:
/// recorded as a success, not a cancellation.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_leaving_after_the_final_event_is_a_success_not_a_cancellation() {
    let gateway = Gateway::start().await;
    gateway
        .add_provider("responses-mock", Protocol::OpenAiResponses)
        .await;
    // The upstream sends every event, `response.completed` last, then keeps the body open.
    gateway
        .add_model("lingering", vec![("responses-mock", "mock-linger", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let mut response = http()
        .post(format!("{}/v1/responses", node.base))
        .bearer_auth(&token)
        .json(&json!({"model": "lingering", "stream": true, "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut received = Vec::new();
    while !String::from_utf8_lossy(&received).contains("response.completed") {
        let chunk = response
            .chunk()
            .await
            .unwrap()
            .expect("the stream ended before response.completed");
        received.extend_from_slice(&chunk);
    }
    drop(response); // as Codex does
    let events = finished_events(&gateway, 1).await;
    assert_eq!(events[0].outcome, Outcome::Success, "{:?}", events[0]);
    assert_eq!(events[0].error_kind, None);
    assert!(events[0].usage.output_tokens > 0, "{:?}", events[0].usage);
}

/// What Codex sends to a Responses upstream: reasoning items with encrypted content, a custom
/// (freeform) tool, `include`, `store`, a cache key, and a field no version of ours models.
fn codex_style_responses(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "instructions": "You are a coding agent.",
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Sandbox: workspace-write"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix the typo"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB-opaque-upstream-state"},
            {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"},
            {"type": "custom_tool_call_output", "call_id": "call_1", "output": "Done"},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks, now say hello"}]}
        ],
        "tools": [
            {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}}, "required": ["command"]}, "strict": false},
            {"type": "custom", "name": "apply_patch", "description": "Edit files", "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": false,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "session-42",
        "text": {"verbosity": "low"},
        "x_future_field": {"kept": [1, 2.5, "three"]}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_responses_provider_takes_responses_clients_verbatim_and_translated_chat_and_anthropic_clients()
 {
    let gateway = Gateway::start().await;
    gateway
        .add_provider("responses-mock", Protocol::OpenAiResponses)
        .await;
    gateway
        .add_model(
            "codex-via-responses",
            vec![("responses-mock", "gpt-5-mock", 0)],
        )
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let client = http();
    let post = |path: &str, body: &Value| {
        let request = client.post(format!("{}{path}", node.base)).json(body);
        if path == "/v1/messages" {
            request
                .header("x-api-key", &token)
                .header("anthropic-version", "2023-06-01")
        } else {
            request.bearer_auth(&token)
        }
        .send()
    };

    // Responses client → Responses upstream, plain: the body arrives as sent but for `model`.
    let sent = codex_style_responses("codex-via-responses", false);
    let response = post("/v1/responses", &sent).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "response");
    assert_eq!(
        body["model"], "codex-via-responses",
        "the answer names the alias"
    );
    let upstream = gateway.mock.requests().last().cloned().unwrap();
    assert_eq!(upstream.path, "/v1/responses");
    assert_eq!(
        upstream.header("authorization"),
        Some(format!("Bearer {}", support::PROVIDER_SECRET_OPENAI).as_str())
    );
    let mut expected = sent.clone();
    expected["model"] = json!("gpt-5-mock");
    assert_eq!(
        upstream.body, expected,
        "reasoning items, custom tools, include, store and unknown fields reach the upstream as sent"
    );

    // Responses client, streaming: the upstream's events, ending in response.completed.
    let response = post(
        "/v1/responses",
        &codex_style_responses("codex-via-responses", true),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(
        events.first().and_then(|(name, _)| name.as_deref()),
        Some("response.created")
    );
    assert_eq!(
        events.last().and_then(|(name, _)| name.as_deref()),
        Some("response.completed")
    );
    for (name, data) in &events {
        if matches!(
            name.as_deref(),
            Some("response.created" | "response.in_progress" | "response.completed")
        ) {
            let event: Value = serde_json::from_str(data).unwrap();
            assert_eq!(
                event["response"]["model"], "codex-via-responses",
                "a streamed answer names the alias too: {data}"
            );
        }
    }
    // The mock calls the first function tool when the user spoke last.
    assert!(
        events
            .iter()
            .any(|(name, _)| name.as_deref() == Some("response.function_call_arguments.delta")),
        "{events:?}"
    );

    // OpenAI Chat client → Responses upstream, plain and streaming.
    let response = post("/v1/chat/completions", &chat("codex-via-responses", false))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "codex-via-responses");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .is_some_and(|text| !text.is_empty()),
        "{body}"
    );
    let upstream = gateway.mock.requests().last().cloned().unwrap();
    assert_eq!(upstream.path, "/v1/responses");
    assert_eq!(
        upstream.body["input"][0]["content"], "Say hello to the gateway",
        "{}",
        upstream.body
    );
    let response = post("/v1/chat/completions", &chat("codex-via-responses", true))
        .await
        .unwrap();
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|(_, data)| serde_json::from_str(data).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .any(|chunk| chunk["choices"][0]["finish_reason"] == "stop"),
        "{chunks:?}"
    );

    // Anthropic client → Responses upstream, streaming.
    let response = post("/v1/messages", &anthropic("codex-via-responses", true))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    let names: Vec<&str> = events
        .iter()
        .filter_map(|(event, _)| event.as_deref())
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(names.contains(&"content_block_delta"), "{names:?}");
    let upstream = gateway.mock.requests().last().cloned().unwrap();
    assert_eq!(upstream.path, "/v1/responses");
    assert_eq!(upstream.body["max_output_tokens"], 256);

    // Every request is recorded with the upstream's usage, against the Responses upstream.
    let events = finished_events(&gateway, 5).await;
    assert_eq!(events.len(), 5);
    for event in &events {
        assert_eq!(event.outcome, Outcome::Success, "{event:?}");
        assert_eq!(event.upstream_protocol, Some(Protocol::OpenAiResponses));
        assert!(
            event.usage.input_tokens > 0 && event.usage.output_tokens > 0 && !event.usage.estimated,
            "{event:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parameter_the_upstream_refuses_as_unsupported_is_dropped_and_sent_once_more() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_provider("anthropic-mock", Protocol::Anthropic)
        .await;
    // The route claims reasoning the upstream model does not take (a wrong capability).
    let mut model = support::model(
        "claims-reasoning",
        vec![("openai-mock", "mock-refuses-reasoning_effort", 0)],
    );
    model.routes[0].capabilities.reasoning = Some(shared::config::ReasoningSupport::Effort);
    gateway
        .publish_config(shared::config::ConfigEvent::ModelPut(model))
        .await;
    gateway
        .add_model(
            "claude-no-top-k",
            vec![("anthropic-mock", "mock-refuses-top_k", 0)],
        )
        .await;
    gateway
        .add_model("always-400", vec![("openai-mock", "mock-400", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let client = http();

    // Anthropic client with thinking → OpenAI upstream that refuses reasoning_effort.
    let mut body = anthropic("claims-reasoning", false);
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    body["max_tokens"] = json!(4096);
    let response = client
        .post(format!("{}/v1/messages", node.base))
        .header("x-api-key", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen = gateway.mock.requests();
    let [refused, retried] = &seen[seen.len() - 2..] else {
        panic!("two upstream requests: {seen:?}");
    };
    assert_eq!(refused.body["reasoning_effort"], "medium");
    assert!(retried.body.get("reasoning_effort").is_none());
    assert_eq!(retried.body["messages"], refused.body["messages"]);

    // Anthropic pass-through: "top_k: Extra inputs are not permitted" drops top_k only.
    let mut body = anthropic("claude-no-top-k", true);
    body["top_k"] = json!(5);
    body["x_unknown"] = json!({"kept": 1.50});
    let response = client
        .post(format!("{}/v1/messages", node.base))
        .header("x-api-key", &token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = sse_events(&response.text().await.unwrap());
    assert_eq!(
        events.last().and_then(|(name, _)| name.as_deref()),
        Some("message_stop")
    );
    let seen = gateway.mock.requests();
    let retried = seen.last().unwrap();
    assert!(retried.body.get("top_k").is_none());
    assert_eq!(retried.body["x_unknown"], json!({"kept": 1.5}));

    // A 400 that is not about an unsupported parameter is the client's, and not retried.
    let before = gateway.mock.requests().len();
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("always-400", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(gateway.mock.requests().len(), before + 1);

    // Each retry is in the request event: two attempts and the warning.
    let events = finished_events(&gateway, 3).await;
    for (event, field) in events.iter().take(2).zip(["reasoning_effort", "top_k"]) {
        assert_eq!(event.outcome, Outcome::Success, "{event:?}");
        assert_eq!(event.attempts.len(), 2, "{event:?}");
        assert_eq!(event.attempts[0].status, Some(400));
        assert!(
            event
                .warnings
                .iter()
                .any(|warning| warning.starts_with(&format!("{field}: "))
                    && warning.contains("sent again without it")),
            "{:?}",
            event.warnings
        );
    }
    assert_eq!(events[2].attempts.len(), 1);
}
