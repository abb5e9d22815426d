use std::time::Duration;

use loadtest::mock::{MockConfig, MockUpstream};
use serde_json::json;

use crate::common::{WAIT, post_anthropic, post_openai, start};

#[tokio::test]
async fn requests_are_recorded_with_headers_body_and_key() {
    let mock = start().await;
    let chat = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    post_openai(&mock, "/v1/chat/completions?trace=1", chat.clone()).await;
    post_anthropic(
        &mock,
        "/v1/messages",
        json!({"model": "claude", "max_tokens": 5, "stream": true, "messages": []}),
    )
    .await;
    let requests = mock.wait_for_requests(2, WAIT).await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].path, "/v1/chat/completions?trace=1");
    assert_eq!(requests[0].body, chat);
    assert_eq!(requests[0].api_key(), Some("sk-openai-test"));
    assert_eq!(requests[0].header("Content-Type"), Some("application/json"));
    assert_eq!(requests[0].model(), Some("gpt-4o"));
    assert!(!requests[0].is_stream());
    assert_eq!(requests[1].api_key(), Some("sk-ant-test"));
    assert_eq!(requests[1].header("anthropic-version"), Some("2023-06-01"));
    assert!(requests[1].is_stream());

    mock.clear();
    assert!(mock.requests().is_empty());
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn recording_can_be_switched_off() {
    let mock = MockUpstream::start(MockConfig::default().without_recording())
        .await
        .unwrap();
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post_openai(&mock, "/v1/chat/completions", chat.clone())
            .await
            .status(),
        200
    );
    assert!(mock.requests().is_empty());
    assert_eq!(mock.request_count(), 1);
    mock.set_recording(true);
    post_openai(&mock, "/v1/chat/completions", chat).await;
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn waiting_for_requests_times_out_with_what_arrived() {
    let mock = start().await;
    let error = mock
        .wait_for_requests(1, Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(error.received.is_empty());
}

#[tokio::test]
async fn rejected_requests_are_recorded_too() {
    let mock = start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/messages", mock.base_url()))
        .json(&json!({"model": "claude"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].api_key(), None);
}
