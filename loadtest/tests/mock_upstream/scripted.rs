//! `MOCK_TOOL_CALL` scripts: the named tool is called with the scripted arguments, plain and
//! streamed, in every dialect, and a tool result is answered with `MOCK_FINAL_ANSWER` text.

use serde_json::{Value, json};

use crate::common::{post_anthropic, post_openai, read_sse, start};

const PATCH: &str = "*** Begin Patch\n*** Add File: notes.txt\n+hello\n*** End Patch";

fn streamed(mut request: Value) -> Value {
    request["stream"] = json!(true);
    request
}

#[tokio::test]
async fn chat_calls_the_scripted_tool_then_answers_its_result() {
    let mock = start().await;
    let tools = json!([
        {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "apply_patch", "parameters": {"type": "object", "properties": {"input": {"type": "string"}}}}}
    ]);
    let request = json!({"model": "mock-chunks-3", "tools": tools, "messages": [
        {"role": "user", "content": format!("MOCK_TOOL_CALL apply_patch {PATCH}")}
    ]});
    let plain: Value = post_openai(&mock, "/v1/chat/completions", request.clone())
        .await
        .json()
        .await
        .unwrap();
    let call = &plain["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "apply_patch");
    let arguments = json!({"input": PATCH}).to_string();
    assert_eq!(call["arguments"], arguments.as_str());

    let events = read_sse(post_openai(&mock, "/v1/chat/completions", streamed(request)).await)
        .await
        .json();
    let fragments: String = events
        .iter()
        .filter_map(|chunk| {
            chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
        })
        .collect();
    assert_eq!(fragments, arguments);

    let after = json!({"model": "mock-chunks-3", "tools": tools, "messages": [
        {"role": "user", "content": format!("MOCK_TOOL_CALL apply_patch {PATCH}")},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "apply_patch", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "Done!"}
    ]});
    let plain: Value = post_openai(&mock, "/v1/chat/completions", after.clone())
        .await
        .json()
        .await
        .unwrap();
    let expected = "MOCK_FINAL_ANSWER after apply_patch: Done!";
    assert_eq!(plain["choices"][0]["message"]["content"], expected);
    assert_eq!(plain["choices"][0]["finish_reason"], "stop");
    let events = read_sse(post_openai(&mock, "/v1/chat/completions", streamed(after)).await)
        .await
        .json();
    let text: String = events
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, expected);
}

#[tokio::test]
async fn responses_custom_tools_get_a_custom_tool_call_item() {
    let mock = start().await;
    let request = json!({"model": "mock-chunks-4", "tools": [
        {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}},
        {"type": "custom", "name": "apply_patch", "format": {"type": "text"}}
    ], "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": format!("MOCK_TOOL_CALL apply_patch\n{PATCH}\n")}]}
    ]});
    let plain: Value = post_openai(&mock, "/v1/responses", request.clone())
        .await
        .json()
        .await
        .unwrap();
    let item = &plain["output"][0];
    assert_eq!(item["type"], "custom_tool_call");
    assert_eq!(item["name"], "apply_patch");
    assert_eq!(item["input"], PATCH);
    assert!(item["id"].as_str().unwrap().starts_with("ctc_"));
    assert!(item["call_id"].as_str().unwrap().starts_with("call_"));
    assert!(item.get("arguments").is_none());

    let events = read_sse(post_openai(&mock, "/v1/responses", streamed(request.clone())).await)
        .await
        .json();
    let added = events
        .iter()
        .find(|event| event["type"] == "response.output_item.added")
        .unwrap();
    assert_eq!(added["item"]["type"], "custom_tool_call");
    assert_eq!(added["item"]["input"], "");
    let input: String = events
        .iter()
        .filter(|event| event["type"] == "response.custom_tool_call_input.delta")
        .map(|event| {
            assert_eq!(event["item_id"], added["item"]["id"]);
            event["delta"].as_str().unwrap()
        })
        .collect();
    assert_eq!(input, PATCH);
    let done = events
        .iter()
        .find(|event| event["type"] == "response.custom_tool_call_input.done")
        .unwrap();
    assert_eq!(done["input"], PATCH);
    assert!(
        !events
            .iter()
            .any(|event| event["type"] == "response.function_call_arguments.delta")
    );
    let completed = events.last().unwrap();
    assert_eq!(completed["type"], "response.completed");
    let final_item = &completed["response"]["output"][0];
    assert_eq!(final_item["type"], "custom_tool_call");
    assert_eq!(final_item["input"], PATCH);
    assert_eq!(final_item["id"], added["item"]["id"]);

    let after = request_after(&request);
    let plain: Value = post_openai(&mock, "/v1/responses", after.clone())
        .await
        .json()
        .await
        .unwrap();
    let expected = "MOCK_FINAL_ANSWER after apply_patch: Success. A notes.txt";
    assert_eq!(plain["output"][0]["content"][0]["text"], expected);
    let events = read_sse(post_openai(&mock, "/v1/responses", streamed(after)).await)
        .await
        .json();
    let text: String = events
        .iter()
        .filter(|event| event["type"] == "response.output_text.delta")
        .map(|event| event["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, expected);
}

fn request_after(request: &Value) -> Value {
    let mut after = request.clone();
    let input = after["input"].as_array_mut().unwrap();
    input.push(json!({"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch", "input": PATCH}));
    input.push(json!({"type": "custom_tool_call_output", "call_id": "call_1", "output": "Success.\nA notes.txt\n"}));
    after
}

#[tokio::test]
async fn anthropic_calls_the_scripted_tool_then_answers_its_result() {
    let mock = start().await;
    let tools = json!([
        {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
        {"name": "Write", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}}}}
    ]);
    let input = json!({"file_path": "/tmp/x/notes.txt", "content": "hello\n"});
    let script = format!("MOCK_TOOL_CALL Write {input}");
    let request = json!({"model": "mock-chunks-3", "max_tokens": 100, "tools": tools, "messages": [
        {"role": "user", "content": [{"type": "text", "text": script}]}
    ]});
    let plain: Value = post_anthropic(&mock, "/v1/messages", request.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["stop_reason"], "tool_use");
    assert_eq!(plain["content"][0]["name"], "Write");
    assert_eq!(plain["content"][0]["input"], input);
    let events = read_sse(post_anthropic(&mock, "/v1/messages", streamed(request)).await)
        .await
        .json();
    let partial: String = events
        .iter()
        .filter_map(|event| event["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(serde_json::from_str::<Value>(&partial).unwrap(), input);

    let after = json!({"model": "mock-chunks-3", "max_tokens": 100, "tools": tools, "messages": [
        {"role": "user", "content": script},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Write", "input": input}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "File created"}]}
    ]});
    let expected = "MOCK_FINAL_ANSWER after Write: File created";
    let plain: Value = post_anthropic(&mock, "/v1/messages", after.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain["stop_reason"], "end_turn");
    assert_eq!(plain["content"][0]["text"], expected);
    let events = read_sse(post_anthropic(&mock, "/v1/messages", streamed(after)).await)
        .await
        .json();
    let text: String = events
        .iter()
        .filter_map(|event| event["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, expected);
    let usage = &events
        .iter()
        .find(|event| event["type"] == "message_delta")
        .unwrap()["usage"];
    assert_eq!(usage, &plain["usage"]);
}
