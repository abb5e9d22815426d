use serde_json::{Value, json};

use crate::common::{post_openai, read_sse, start};

#[tokio::test]
async fn plain_response_has_the_documented_shape() {
    let mock = start().await;
    let request =
        json!({"model": "gpt-4.1", "instructions": "Be brief.", "input": "Tell me something"});
    let response: Value = post_openai(&mock, "/v1/responses", request)
        .await
        .json()
        .await
        .unwrap();
    assert!(response["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(response["object"], "response");
    assert!(response["created_at"].as_u64().is_some());
    assert_eq!(response["status"], "completed");
    assert_eq!(response["model"], "gpt-4.1");
    assert_eq!(response["instructions"], "Be brief.");
    let item = &response["output"][0];
    assert_eq!(item["type"], "message");
    assert!(item["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(item["status"], "completed");
    assert_eq!(item["role"], "assistant");
    assert_eq!(item["content"][0]["type"], "output_text");
    assert_eq!(item["content"][0]["annotations"], json!([]));
    assert_eq!(
        item["content"][0]["text"]
            .as_str()
            .unwrap()
            .split(' ')
            .count(),
        8
    );
    let usage = &response["usage"];
    // "Be brief." (9) + "Tell me something" (17) = 26 bytes → 7 tokens.
    assert_eq!(usage["input_tokens"], 7);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens"], 8);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(usage["total_tokens"], 15);
}

#[tokio::test]
async fn stream_emits_the_typed_events_in_order() {
    let mock = start().await;
    let input =
        json!([{"role": "user", "content": [{"type": "input_text", "text": "Stream please"}]}]);
    let plain: Value = post_openai(
        &mock,
        "/v1/responses",
        json!({"model": "mock-chunks-3", "input": input}),
    )
    .await
    .json()
    .await
    .unwrap();
    let transcript = read_sse(
        post_openai(
            &mock,
            "/v1/responses",
            json!({"model": "mock-chunks-3", "input": input, "stream": true}),
        )
        .await,
    )
    .await;
    assert_eq!(
        transcript.names(),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let events = transcript.json();
    for (index, (event, name)) in events.iter().zip(transcript.names()).enumerate() {
        assert_eq!(
            event["type"], name,
            "the data's type matches the event line"
        );
        assert_eq!(
            event["sequence_number"], index,
            "sequence numbers count from 0"
        );
    }
    assert_eq!(events[0]["response"]["status"], "in_progress");
    assert_eq!(events[0]["response"]["output"], json!([]));
    let item_id = events[2]["item"]["id"].as_str().unwrap();
    let deltas: String = events[4..7]
        .iter()
        .map(|event| {
            assert_eq!(event["item_id"], item_id);
            event["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(events[7]["text"], deltas.as_str());
    assert_eq!(events[8]["part"]["text"], deltas.as_str());
    assert_eq!(events[9]["item"]["content"][0]["text"], deltas.as_str());
    let completed = &events[10]["response"];
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["output"][0]["content"][0]["text"],
        deltas.as_str()
    );
    assert_eq!(completed["usage"], plain["usage"]);
    assert_eq!(plain["output"][0]["content"][0]["text"], deltas.as_str());
    assert!(transcript.events.iter().all(|event| event.data != "[DONE]"));
}

#[tokio::test]
async fn function_tools_get_a_function_call_item() {
    let mock = start().await;
    let request = json!({"model": "mock-chunks-3", "input": "What time is it in Oslo?", "tools": [
        {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    ]});
    let plain: Value = post_openai(&mock, "/v1/responses", request.clone())
        .await
        .json()
        .await
        .unwrap();
    let item = &plain["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "get_time");
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(item["arguments"], "{\"city\":\"mock\"}");

    let mut streamed = request;
    streamed["stream"] = json!(true);
    let transcript = read_sse(post_openai(&mock, "/v1/responses", streamed).await).await;
    let events = transcript.json();
    let fragments: String = events
        .iter()
        .filter(|event| event["type"] == "response.function_call_arguments.delta")
        .map(|event| event["delta"].as_str().unwrap())
        .collect();
    assert_eq!(fragments, "{\"city\":\"mock\"}");
    let done = events
        .iter()
        .find(|event| event["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done["arguments"], fragments.as_str());
    assert_eq!(
        events.last().unwrap()["response"]["output"][0]["type"],
        "function_call"
    );
}

#[tokio::test]
async fn max_output_tokens_makes_the_response_incomplete() {
    let mock = start().await;
    let request = json!({"model": "m", "input": "hi", "max_output_tokens": 3, "stream": true});
    let transcript = read_sse(post_openai(&mock, "/v1/responses", request).await).await;
    assert_eq!(transcript.names().last(), Some(&"response.incomplete"));
    let last = transcript.json().pop().unwrap();
    assert_eq!(last["response"]["status"], "incomplete");
    assert_eq!(
        last["response"]["incomplete_details"]["reason"],
        "max_output_tokens"
    );
    assert_eq!(last["response"]["usage"]["output_tokens"], 3);
}
