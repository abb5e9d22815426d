use std::time::{Duration, Instant};

use futures::StreamExt;
use loadtest::mock::{Behavior, Failure, MockConfig, MockUpstream};
use loadtest::sse::SseDecoder;
use serde_json::{Value, json};

use crate::common::{WAIT, client, post_anthropic, post_openai, read_sse, start};

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

fn chat_stream(model: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

fn message(model: &str) -> Value {
    json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]})
}

async fn openai_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert!(error["message"].is_string());
    assert!(error["type"].is_string());
    assert!(error.get("param").is_some() && error.get("code").is_some());
    body
}

async fn anthropic_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert!(body["error"]["message"].is_string());
    body
}

#[tokio::test]
async fn model_names_inject_failures_in_each_dialect() {
    let mock = start().await;
    let body = openai_error(
        post_openai(&mock, "/v1/chat/completions", chat("mock-fail-500")).await,
        500,
    )
    .await;
    assert_eq!(body["error"]["type"], "server_error");
    let body = openai_error(
        post_openai(&mock, "/v1/chat/completions", chat_stream("mock-fail-500")).await,
        500,
    )
    .await;
    assert_eq!(body["error"]["type"], "server_error");
    let body = openai_error(
        post_openai(
            &mock,
            "/v1/responses",
            json!({"model": "mock-400", "input": "x"}),
        )
        .await,
        400,
    )
    .await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    openai_error(
        post_openai(&mock, "/v1/chat/completions", chat("mock-413")).await,
        413,
    )
    .await;

    let body = anthropic_error(
        post_anthropic(&mock, "/v1/messages", message("mock-529")).await,
        529,
    )
    .await;
    assert_eq!(body["error"]["type"], "overloaded_error");
    let body = anthropic_error(
        post_anthropic(&mock, "/v1/messages", message("mock-500")).await,
        500,
    )
    .await;
    assert_eq!(body["error"]["type"], "api_error");
    let body = anthropic_error(
        post_anthropic(&mock, "/v1/messages", message("mock-413")).await,
        413,
    )
    .await;
    assert_eq!(body["error"]["type"], "request_too_large");
    let body = anthropic_error(
        post_anthropic(&mock, "/v1/messages", message("mock-400")).await,
        400,
    )
    .await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let mock = start().await;
    let response = post_openai(
        &mock,
        "/v1/chat/completions",
        chat("mock-429-retry-after-2"),
    )
    .await;
    assert_eq!(response.headers()["retry-after"], "2");
    let body = openai_error(response, 429).await;
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let response = post_anthropic(&mock, "/v1/messages", message("mock-429-retry-after-7")).await;
    assert_eq!(response.headers()["retry-after"], "7");
    let body = anthropic_error(response, 429).await;
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn fail_first_by_model_name_then_succeed() {
    let mock = start().await;
    for _ in 0..2 {
        let response =
            post_openai(&mock, "/v1/chat/completions", chat("mock-fail-first-2-503")).await;
        openai_error(response, 503).await;
    }
    let response = post_openai(&mock, "/v1/chat/completions", chat("mock-fail-first-2-503")).await;
    assert_eq!(response.status(), 200);
    // Another model name has its own counter.
    let response = post_openai(&mock, "/v1/chat/completions", chat("mock-fail-first-1-x")).await;
    openai_error(response, 500).await;
}

#[tokio::test]
async fn set_behavior_makes_it_fail_then_recover() {
    let mock = start().await;
    assert_eq!(
        post_openai(&mock, "/v1/chat/completions", chat("gpt"))
            .await
            .status(),
        200
    );
    mock.set_behavior(Behavior::failing(503));
    openai_error(
        post_openai(&mock, "/v1/chat/completions", chat("gpt")).await,
        503,
    )
    .await;
    anthropic_error(
        post_anthropic(&mock, "/v1/messages", message("claude")).await,
        503,
    )
    .await;
    mock.set_behavior(Behavior::default());
    assert_eq!(
        post_openai(&mock, "/v1/chat/completions", chat("gpt"))
            .await
            .status(),
        200
    );

    mock.set_behavior(Behavior {
        failure: Some(Failure::first_requests(2, 529).with_retry_after(1)),
        ..Behavior::default()
    });
    let first = post_anthropic(&mock, "/v1/messages", message("claude")).await;
    assert_eq!(first.headers()["retry-after"], "1");
    anthropic_error(first, 529).await;
    anthropic_error(
        post_anthropic(&mock, "/v1/messages", message("claude")).await,
        529,
    )
    .await;
    assert_eq!(
        post_anthropic(&mock, "/v1/messages", message("claude"))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn failure_rate_is_spread_evenly() {
    let mock = MockUpstream::start(MockConfig::default().with_behavior(Behavior {
        failure: Some(Failure::rate(0.5, 500)),
        ..Behavior::default()
    }))
    .await
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            post_openai(&mock, "/v1/chat/completions", chat("gpt"))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 500, 200, 500, 200, 500]);
}

#[tokio::test]
async fn first_byte_delay_holds_back_the_response() {
    let mock = start().await;
    let started = Instant::now();
    let response = post_openai(
        &mock,
        "/v1/chat/completions",
        chat("mock-slow-first-byte-300"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn chunk_delay_paces_the_stream() {
    let mock = start().await;
    let started = Instant::now();
    let transcript = read_sse(
        post_openai(
            &mock,
            "/v1/chat/completions",
            chat_stream("mock-chunks-4-chunk-delay-60"),
        )
        .await,
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(180),
        "three gaps of 60 ms"
    );
    assert!(
        transcript.network_chunks >= 4,
        "paced deltas arrive separately"
    );
    assert_eq!(transcript.json().len(), 6);
}

#[tokio::test]
async fn chunks_knob_sets_the_number_of_deltas() {
    let mock = start().await;
    let transcript =
        read_sse(post_openai(&mock, "/v1/chat/completions", chat_stream("mock-chunks-50")).await)
            .await;
    let contents = transcript
        .json()
        .iter()
        .filter(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|text| !text.is_empty())
        })
        .count();
    assert_eq!(contents, 50);
}

#[tokio::test]
async fn disconnect_drops_the_stream_after_n_chunks() {
    let mock = start().await;
    let transcript = read_sse(
        post_openai(
            &mock,
            "/v1/chat/completions",
            chat_stream("mock-disconnect-after-5"),
        )
        .await,
    )
    .await;
    assert!(transcript.broken, "the body ends in an error, not cleanly");
    let chunks = transcript.json();
    assert_eq!(chunks.len(), 6, "the role chunk and five content deltas");
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["choices"][0]["finish_reason"].is_null())
    );

    let anthropic = read_sse(
        post_anthropic(&mock, "/v1/messages", json!({"model": "mock-disconnect-after-2", "max_tokens": 10, "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await,
    )
    .await;
    assert!(anthropic.broken);
    assert_eq!(anthropic.names().last(), Some(&"content_block_delta"));

    let plain = post_openai(
        &mock,
        "/v1/chat/completions",
        chat("mock-disconnect-after-1"),
    )
    .await;
    assert_eq!(plain.status(), 200);
    assert!(
        plain.bytes().await.is_err(),
        "a plain body is cut in the middle"
    );
}

#[tokio::test]
async fn stalled_and_hanging_requests_are_dropped_at_shutdown() {
    let mock = start().await;
    let hanging = tokio::spawn({
        let url = format!("{}/v1/chat/completions", mock.base_url());
        async move {
            let response = client()
                .post(url)
                .bearer_auth("k")
                .json(&chat("mock-hang"))
                .send()
                .await?;
            response.bytes().await
        }
    });
    let stalled = post_openai(
        &mock,
        "/v1/chat/completions",
        chat_stream("mock-stall-after-2"),
    )
    .await;
    let mut body = stalled.bytes_stream();
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    while events.len() < 3 {
        let bytes = tokio::time::timeout(WAIT, body.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        events.extend(decoder.push(&bytes));
    }
    assert_eq!(
        events.len(),
        3,
        "role chunk and two content deltas, then nothing"
    );
    mock.wait_for_requests(2, WAIT).await.unwrap();

    // A hung request never ends by itself, so a shutdown that returns at all did not wait for it.
    tokio::time::timeout(WAIT, mock.shutdown())
        .await
        .expect("shutdown does not wait for hung requests");
    assert!(
        hanging.await.unwrap().is_err(),
        "the hanging request never got a body"
    );
    let rest = tokio::time::timeout(WAIT, body.next()).await.unwrap();
    assert!(
        matches!(rest, Some(Err(_))),
        "the stalled stream is dropped"
    );
}

#[tokio::test]
async fn only_configured_keys_are_accepted() {
    let mock = MockUpstream::start(MockConfig::default().with_valid_keys(["sk-good", "ant-good"]))
        .await
        .unwrap();
    let body = openai_error(
        post_openai(&mock, "/v1/chat/completions", chat("gpt")).await,
        401,
    )
    .await;
    assert_eq!(body["error"]["code"], "invalid_api_key");
    let body = anthropic_error(
        post_anthropic(&mock, "/v1/messages", message("claude")).await,
        401,
    )
    .await;
    assert_eq!(body["error"]["type"], "authentication_error");
    let response = client()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .bearer_auth("sk-good")
        .json(&chat("gpt"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn openai_routes_require_a_bearer_key() {
    let mock = start().await;
    let response = client()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .json(&chat("gpt"))
        .send()
        .await
        .unwrap();
    let body = openai_error(response, 401).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn unknown_paths_are_404_and_bad_json_is_400() {
    let mock = start().await;
    openai_error(
        post_openai(&mock, "/v1/completions/legacy", json!({})).await,
        404,
    )
    .await;
    let response = client()
        .post(format!("{}/v1/chat/completions", mock.base_url()))
        .bearer_auth("k")
        .body("{not json")
        .send()
        .await
        .unwrap();
    openai_error(response, 400).await;
    let body = openai_error(
        post_openai(&mock, "/v1/chat/completions", json!({"model": "m"})).await,
        400,
    )
    .await;
    assert_eq!(body["error"]["param"], "messages");
}
