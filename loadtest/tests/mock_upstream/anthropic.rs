use serde_json::{Value, json};

use crate::common::{client, post_anthropic, read_sse, start};

#[tokio::test]
async fn missing_key_is_a_401_authentication_error() {
    let mock = start().await;
    let response = client()
        .post(format!("{}/v1/messages", mock.base_url()))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn missing_version_is_a_400() {
    let mock = start().await;
    let response = client()
        .post(format!("{}/v1/messages", mock.base_url()))
        .header("x-api-key", "k")
        .json(&json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "anthropic-version: header is required"
    );
}

#[tokio::test]
async fn missing_max_tokens_is_rejected_like_the_real_api() {
    let mock = start().await;
    let response = post_anthropic(
        &mock,
        "/v1/messages",
        json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["message"], "max_tokens: Field required");
}

#[tokio::test]
async fn plain_message_has_the_documented_shape() {
    let mock = start().await;
    let request = json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "Be kind.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello, Claude"}]}]});
    let message: Value = post_anthropic(&mock, "/v1/messages", request)
        .await
        .json()
        .await
        .unwrap();
    assert!(message["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], "claude-sonnet-4-5");
    assert_eq!(message["content"][0]["type"], "text");
    assert_eq!(
        message["content"][0]["text"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        8
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["stop_sequence"], Value::Null);
    // "Be kind." (8) + "Hello, Claude" (13) = 21 bytes → 6 tokens.
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 6, "output_tokens": 8, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    );
}

#[tokio::test]
async fn stream_follows_the_event_sequence_and_matches_the_plain_answer() {
    let mock = start().await;
    let request = json!({"model": "mock-chunks-4-tokens-9", "max_tokens": 100, "messages": [{"role": "user", "content": "stream it"}]});
    let plain: Value = post_anthropic(&mock, "/v1/messages", request.clone())
        .await
        .json()
        .await
        .unwrap();
    let mut streamed = request;
    streamed["stream"] = json!(true);
    let transcript = read_sse(post_anthropic(&mock, "/v1/messages", streamed).await).await;
    assert_eq!(
        transcript.names(),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let events = transcript.json();
    for (event, name) in events.iter().zip(transcript.names()) {
        assert_eq!(event["type"], name);
    }
    let start = &events[0]["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(
        start["usage"]["input_tokens"],
        plain["usage"]["input_tokens"]
    );
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(
        events[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let text: String = events[3..7]
        .iter()
        .map(|event| {
            assert_eq!(event["delta"]["type"], "text_delta");
            event["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, plain["content"][0]["text"].as_str().unwrap());
    assert_eq!(events[7]["index"], 0);
    assert_eq!(events[8]["delta"]["stop_reason"], "end_turn");
    assert_eq!(events[8]["usage"]["output_tokens"], 9);
    assert_eq!(events[8]["usage"], plain["usage"]);
}

#[tokio::test]
async fn tools_get_a_tool_use_block_streamed_as_partial_json() {
    let mock = start().await;
    let request = json!({"model": "mock-chunks-3", "max_tokens": 100,
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}],
        "messages": [{"role": "user", "content": "Weather in SF?"}]});
    let plain: Value = post_anthropic(&mock, "/v1/messages", request.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["stop_reason"], "tool_use");
    let block = &plain["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert!(block["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({"location": "mock"}));

    let mut streamed = request;
    streamed["stream"] = json!(true);
    let events = read_sse(post_anthropic(&mock, "/v1/messages", streamed).await)
        .await
        .json();
    assert_eq!(events[1]["content_block"]["type"], "tool_use");
    assert_eq!(events[1]["content_block"]["input"], json!({}));
    let partial: String = events
        .iter()
        .filter(|event| event["type"] == "content_block_delta")
        .map(|event| {
            assert_eq!(event["delta"]["type"], "input_json_delta");
            event["delta"]["partial_json"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&partial).unwrap(),
        block["input"]
    );
    let delta = events
        .iter()
        .find(|event| event["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"], plain["usage"]);
}

#[tokio::test]
async fn cache_control_writes_then_reads_the_prefix() {
    let mock = start().await;
    let system =
        json!([{"type": "text", "text": "s".repeat(800), "cache_control": {"type": "ephemeral"}}]);
    let request = |question: &str| json!({"model": "claude", "max_tokens": 10, "system": system, "messages": [{"role": "user", "content": question}]});
    let first: Value = post_anthropic(&mock, "/v1/messages", request("abcd"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["usage"],
        json!({"input_tokens": 1, "cache_creation_input_tokens": 200, "cache_read_input_tokens": 0, "output_tokens": 8})
    );
    let second: Value = post_anthropic(&mock, "/v1/messages", request("efgh"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["usage"],
        json!({"input_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 200, "output_tokens": 8})
    );
}

#[tokio::test]
async fn count_tokens_uses_the_same_rule_as_usage() {
    let mock = start().await;
    let request =
        json!({"model": "claude", "messages": [{"role": "user", "content": "count these tokens"}]});
    let counted: Value = post_anthropic(&mock, "/v1/messages/count_tokens", request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(counted, json!({"input_tokens": 5}));
}
