use serde_json::{Value, json};

use crate::common::{post_openai, read_sse, start};

fn weather_tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]
    }}}])
}

#[tokio::test]
async fn plain_completion_has_the_documented_shape() {
    let mock = start().await;
    let body = json!({"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello to the gateway"}
    ]});
    let response = post_openai(&mock, "/v1/chat/completions", body).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let completion: Value = response.json().await.unwrap();
    assert!(completion["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(completion["object"], "chat.completion");
    assert!(completion["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(completion["model"], "gpt-4o-mini");
    let choice = &completion["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["logprobs"], Value::Null);
    assert!(choice["message"].get("tool_calls").is_none());
    let content = choice["message"]["content"].as_str().unwrap();
    // Default behavior: eight chunks of one word (token) each.
    assert_eq!(content.split(' ').count(), 8);
    let usage = &completion["usage"];
    // "You are terse." (14 bytes) + "Say hello to the gateway" (24 bytes) = 38 bytes → 10 tokens.
    assert_eq!(usage["prompt_tokens"], 10);
    assert_eq!(usage["completion_tokens"], 8);
    assert_eq!(usage["total_tokens"], 18);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
}

#[tokio::test]
async fn the_path_without_v1_is_served_too() {
    let mock = start().await;
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    let response = post_openai(&mock, "/chat/completions", body).await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
}

#[tokio::test]
async fn stream_with_usage_matches_the_plain_answer() {
    let mock = start().await;
    let messages = json!([{"role": "user", "content": "Stream twelve words to me, please"}]);
    let plain: Value = post_openai(
        &mock,
        "/v1/chat/completions",
        json!({"model": "mock-chunks-5-tokens-12", "messages": messages}),
    )
    .await
    .json()
    .await
    .unwrap();
    let transcript = read_sse(
        post_openai(
            &mock,
            "/v1/chat/completions",
            json!({"model": "mock-chunks-5-tokens-12", "messages": messages, "stream": true, "stream_options": {"include_usage": true}}),
        )
        .await,
    )
    .await;
    assert_eq!(transcript.events.last().unwrap().data, "[DONE]");
    let chunks = transcript.json();
    // role, 5 content deltas, finish, usage.
    assert_eq!(chunks.len(), 8);
    let id = chunks[0]["id"].as_str().unwrap();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["model"], "mock-chunks-5-tokens-12");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks[1..6]
        .iter()
        .map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        text,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
    assert_eq!(text.split(' ').count(), 12);
    for chunk in &chunks[..7] {
        assert_eq!(
            chunk["usage"],
            Value::Null,
            "non-final chunks carry usage: null"
        );
    }
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[7]["choices"], json!([]));
    assert_eq!(chunks[7]["usage"], plain["usage"]);
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let mock = start().await;
    let transcript = read_sse(
        post_openai(
            &mock,
            "/v1/chat/completions",
            json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await,
    )
    .await;
    let chunks = transcript.json();
    assert_eq!(chunks.len(), 10);
    assert!(chunks.iter().all(|chunk| chunk.get("usage").is_none()));
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["choices"].as_array().unwrap().len() == 1)
    );
    assert_eq!(chunks[9]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn tools_and_a_user_turn_get_a_tool_call() {
    let mock = start().await;
    let request = json!({"model": "mock-chunks-4", "tools": weather_tools(), "messages": [
        {"role": "user", "content": "Weather in Paris?"}
    ]});
    let plain: Value = post_openai(&mock, "/v1/chat/completions", request.clone())
        .await
        .json()
        .await
        .unwrap();
    let choice = &plain["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let arguments: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(arguments, json!({"city": "mock", "unit": "celsius"}));

    let mut streamed = request;
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let chunks = read_sse(post_openai(&mock, "/v1/chat/completions", streamed).await)
        .await
        .json();
    let first = &chunks[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert_eq!(first["tool_calls"][0]["index"], 0);
    assert!(
        first["tool_calls"][0]["id"]
            .as_str()
            .unwrap()
            .starts_with("call_")
    );
    assert_eq!(first["tool_calls"][0]["type"], "function");
    assert_eq!(first["tool_calls"][0]["function"]["name"], "get_weather");
    assert_eq!(first["tool_calls"][0]["function"]["arguments"], "");
    let fragments: Vec<&str> = chunks[1..]
        .iter()
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        })
        .collect();
    assert_eq!(fragments.len(), 4, "arguments arrive over several chunks");
    assert!(chunks[1..].iter().all(|chunk| {
        chunk["choices"][0]["delta"]["tool_calls"][0]
            .get("id")
            .is_none()
    }));
    let joined: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(joined, arguments);
    let finish = chunks
        .iter()
        .find_map(|chunk| chunk["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("tool_calls"));
    assert_eq!(chunks.last().unwrap()["usage"], plain["usage"]);
}

#[tokio::test]
async fn a_tool_result_turn_gets_text() {
    let mock = start().await;
    let request = json!({"model": "m", "tools": weather_tools(), "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    ]});
    let plain: Value = post_openai(&mock, "/v1/chat/completions", request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["choices"][0]["finish_reason"], "stop");
    assert!(plain["choices"][0]["message"]["content"].is_string());
}

#[tokio::test]
async fn max_tokens_truncates_with_finish_reason_length() {
    let mock = start().await;
    let request = json!({"model": "mock-tokens-50", "max_completion_tokens": 5, "messages": [{"role": "user", "content": "long please"}]});
    let plain: Value = post_openai(&mock, "/v1/chat/completions", request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["choices"][0]["finish_reason"], "length");
    assert_eq!(plain["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn repeated_prefix_with_a_cache_key_reports_cached_tokens() {
    let mock = start().await;
    let system = "x".repeat(400);
    let request = |question: &str| {
        json!({"model": "m", "prompt_cache_key": "tenant-1", "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": question}
        ]})
    };
    let first: Value = post_openai(&mock, "/v1/chat/completions", request("first?"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    let second: Value = post_openai(&mock, "/v1/chat/completions", request("second!"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        second["usage"]["prompt_tokens_details"]["cached_tokens"],
        100
    );
    assert_eq!(second["usage"]["prompt_tokens"], 102);
    mock.clear();
    let after_clear: Value = post_openai(&mock, "/v1/chat/completions", request("third?"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        after_clear["usage"]["prompt_tokens_details"]["cached_tokens"],
        0
    );
}
