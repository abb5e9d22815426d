//! Provider-key "test" against a mock upstream (health recorded), and the guarantee that no
//! provider key or token secret appears after creation: not in any response, not in any event
//! on any stream, not in the logs.

use crate::common;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use common::Harness;
use serde_json::{Value, json};

const GOOD_KEY: &str = "sk-test-good-5cr3t-Q1w2E3r4T5y6";
const BAD_KEY: &str = "sk-test-bad-5cr3t-Z9x8C7v6B5n4";
const ANTHROPIC_KEY: &str = "sk-ant-test-5cr3t-M1n2B3v4C5x6";
const GEMINI_KEY: &str = "AIza-test-5cr3t-P0o9I8u7Y6t5";

/// A minimal upstream: OpenAI's and Gemini's `GET /v1/models` (bearer or `x-goog-api-key`) and
/// Anthropic `POST /v1/messages`, accepting only the good keys. A refusal echoes the presented key, as some real providers do.
#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
async fn mock_upstream() -> String {
    let models = get(|headers: HeaderMap| async move {
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let gemini = headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if presented == format!("Bearer {GOOD_KEY}") || gemini == GEMINI_KEY {
            (
                StatusCode::OK,
                axum::Json(json!({"object": "list", "data": []})),
            )
        } else {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(
                    json!({"error": {"message": format!("Incorrect API key provided: {presented}")}}),
                ),
            )
        }
    });
    let messages = post(|headers: HeaderMap, body: axum::Json<Value>| async move {
        let key = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let version = headers
            .get("anthropic-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if key == ANTHROPIC_KEY && version == "2023-06-01" && body["max_tokens"] == 1 {
            (
                StatusCode::OK,
                axum::Json(
                    json!({"type": "message", "content": [], "usage": {"input_tokens": 1, "output_tokens": 1}}),
                ),
            )
        } else {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"type": "error", "error": {"type": "authentication_error"}})),
            )
        }
    });
    let app = Router::new()
        .route("/v1/models", models)
        .route("/v1/messages", messages);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    format!("http://{address}/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_test_records_health_and_no_secret_leaks_anywhere() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let upstream = mock_upstream().await;
    let mut after_creation: Vec<Value> = Vec::new();

    // A provider on a loopback address must allow it explicitly before a key test calls it.
    let (status, _) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"id": "local", "name": "Local", "protocol": "openai", "base_url": upstream}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, key) = harness
        .post(
            "/api/v1/provider-keys",
            &admin,
            json!({"id": "local-key", "provider_id": "local", "name": "k", "secret": GOOD_KEY}),
        )
        .await;
    assert_eq!(status, 201);
    after_creation.push(key);
    let (status, body) = harness
        .post("/api/v1/provider-keys/local-key/test", &admin, json!({}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "private_network_refused");

    let (status, _) = harness
        .post(
            "/api/v1/providers",
            &admin,
            json!({"id": "mock", "name": "Mock", "protocol": "openai", "base_url": upstream, "allow_private_network": true}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, key) = harness
        .post(
            "/api/v1/provider-keys",
            &admin,
            json!({"id": "good", "provider_id": "mock", "name": "good", "secret": GOOD_KEY}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    after_creation.push(key);
    let (status, key) = harness
        .post(
            "/api/v1/provider-keys",
            &admin,
            json!({"id": "bad", "provider_id": "mock", "name": "bad", "secret": BAD_KEY}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    after_creation.push(key);

    let (status, tested) = harness
        .post("/api/v1/provider-keys/good/test", &admin, json!({}))
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(tested["status"], 200);
    // The projector folds the result into the key's health before the answer.
    assert_eq!(tested["health_recorded"], true, "{tested}");
    assert!(
        tested["key"]["health"]["last_success_at"].is_string(),
        "health comes back with the key: {tested}"
    );
    after_creation.push(tested);
    let (status, tested) = harness
        .post("/api/v1/provider-keys/bad/test", &admin, json!({}))
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["ok"], false);
    assert_eq!(tested["status"], 401);
    assert_eq!(tested["health_recorded"], true, "{tested}");
    assert!(
        tested["key"]["health"]["last_error_at"].is_string(),
        "{tested}"
    );
    assert_eq!(tested["key"]["health"]["last_status"], 401);
    after_creation.push(tested);

    // An Anthropic key is tested with a one-token message, a Gemini key with its own header.
    for (provider, protocol, key_id, secret, body) in [
        (
            "claude",
            "anthropic",
            "ant",
            ANTHROPIC_KEY,
            json!({"model": "claude-x"}),
        ),
        ("gemini", "gemini", "gem", GEMINI_KEY, json!({})),
    ] {
        let (status, _) = harness
            .post(
                "/api/v1/providers",
                &admin,
                json!({"id": provider, "name": provider, "protocol": protocol, "base_url": upstream, "allow_private_network": true}),
            )
            .await;
        assert_eq!(status, 201);
        let (status, key) = harness
            .post(
                "/api/v1/provider-keys",
                &admin,
                json!({"id": key_id, "provider_id": provider, "name": key_id, "secret": secret}),
            )
            .await;
        assert_eq!(status, 201);
        after_creation.push(key);
        let (status, tested) = harness
            .post(
                &format!("/api/v1/provider-keys/{key_id}/test"),
                &admin,
                body,
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(tested["ok"], true, "{protocol}: {tested}");
        after_creation.push(tested);
    }

    // Tokens: the secret is in the creation (and rotation) response only.
    let (status, token) = harness
        .post("/api/v1/tokens", &admin, json!({"name": "t"}))
        .await;
    assert_eq!(status, 201);
    let first_secret = token["secret"].as_str().unwrap().to_owned();
    let token_id = token["id"].as_str().unwrap().to_owned();
    let (status, rotated) = harness
        .post(
            &format!("/api/v1/tokens/{token_id}/rotate"),
            &admin,
            json!({"version": token["version"]}),
        )
        .await;
    assert_eq!(status, 200);
    let second_secret = rotated["secret"].as_str().unwrap().to_owned();

    for path in [
        "/api/v1/provider-keys".to_owned(),
        "/api/v1/provider-keys/good".to_owned(),
        "/api/v1/provider-keys/bad".to_owned(),
        "/api/v1/tokens".to_owned(),
        format!("/api/v1/tokens/{token_id}"),
        "/api/v1/audit?limit=500".to_owned(),
        "/api/v1/export?format=json".to_owned(),
    ] {
        let (status, body) = harness.get(&path, &admin).await;
        assert_eq!(status, 200, "{path}: {body}");
        after_creation.push(body);
    }
    let (status, yaml) = harness
        .call(reqwest::Method::GET, "/api/v1/export", Some(&admin), None)
        .await;
    assert_eq!(status, 200);
    after_creation.push(yaml);

    let secrets = [
        GOOD_KEY,
        BAD_KEY,
        ANTHROPIC_KEY,
        GEMINI_KEY,
        first_secret.as_str(),
        second_secret.as_str(),
    ];
    // The distinctive middle of each secret: a leak of any part of it counts.
    let needles: Vec<&str> = secrets
        .iter()
        .map(|secret| &secret[8..secret.len() - 4])
        .collect();
    let check = |place: &str, text: &str| {
        for needle in &needles {
            assert!(
                !text.contains(needle),
                "a secret ({needle}) appears in {place}"
            );
        }
    };
    for response in &after_creation {
        check("a response after creation", &response.to_string());
    }
    for stream in ["AXONGATE_CONFIG", "AXONGATE_AUDIT", "AXONGATE_REQUESTS"] {
        let messages = harness.stream_messages(stream).await;
        if stream != "AXONGATE_REQUESTS" {
            assert!(!messages.is_empty(), "{stream} has events");
        }
        for (subject, payload) in messages {
            check(&format!("an event on {subject}"), &payload);
        }
    }
    // And the results are on the audit stream as events.
    let tested: Vec<Value> = harness
        .stream_messages("AXONGATE_AUDIT")
        .await
        .into_iter()
        .filter(|(subject, _)| subject == "axongate.audit.provider_key_tested")
        .map(|(_, payload)| serde_json::from_str::<Value>(&payload).unwrap()["payload"].clone())
        .collect();
    assert_eq!(tested.len(), 4, "one per key test: {tested:?}");
    assert!(
        tested
            .iter()
            .any(|event| event["provider_key_id"] == "good" && event["ok"] == true)
    );
    assert!(tested.iter().any(|event| event["provider_key_id"] == "bad"
        && event["ok"] == false
        && event["status"] == 401));
    let logs = common::logs();
    assert!(logs.contains("login succeeded"), "the logs are captured");
    check("the logs", &logs);
}
