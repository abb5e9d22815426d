//! Gemini `generateContent`, its two stream forms, token counting, the model list, API-key
//! authentication and Google's error bodies.

use std::time::Duration;

use base64::Engine;
use loadtest::mock::{Behavior, MockConfig, MockUpstream};
use serde_json::{Value, json};

use crate::common::{client, post_gemini, read_sse, start};

const GENERATE: &str = "/v1beta/models/gemini-2.5-flash:generateContent";
const STREAM: &str = "/v1beta/models/mock-chunks-4-tokens-9:streamGenerateContent?alt=sse";

fn user(text: &str) -> Value {
    json!({"contents": [{"role": "user", "parts": [{"text": text}]}]})
}

/// A successful answer's JSON body.
async fn answer(mock: &MockUpstream, path: &str, body: Value) -> Value {
    let response = post_gemini(mock, path, body).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn get_json(url: &str, with_key_header: bool) -> Value {
    let mut request = client().get(url);
    if with_key_header {
        request = request.header("x-goog-api-key", "k");
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn gemini_error(response: reqwest::Response, status: u16, status_name: &str) -> Value {
    assert_eq!(response.status(), status);
    assert!(!response.headers().contains_key("request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], status);
    assert_eq!(body["error"]["status"], status_name);
    assert!(body["error"]["message"].is_string());
    body
}

/// Splits a raw `alt=sse` body into its events, checking Google's framing: `data: <json>` and
/// `\r\n\r\n`, no event names, no `[DONE]`.
fn crlf_events(body: &str) -> Vec<Value> {
    assert!(body.ends_with("\r\n\r\n"), "the body ends with an event");
    body[..body.len() - 4]
        .split("\r\n\r\n")
        .map(|event| {
            assert!(event.starts_with("data: "), "only data lines: {event:?}");
            let data = &event["data: ".len()..];
            assert!(!data.contains('\n'), "one line per event: {data:?}");
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

async fn stream_events(mock: &MockUpstream, path: &str, body: Value) -> Vec<Value> {
    let response = post_gemini(mock, path, body).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    crlf_events(&response.text().await.unwrap())
}

#[tokio::test]
async fn plain_response_has_the_documented_shape() {
    let mock = start().await;
    let mut request = user("Hello, Gemini");
    request["systemInstruction"] = json!({"parts": [{"text": "Be kind."}]});
    let response = post_gemini(&mock, GENERATE, request.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    let candidate = &body["candidates"][0];
    assert_eq!(candidate["content"]["role"], "model");
    let parts = candidate["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].as_object().unwrap().len(), 1, "{parts:?}");
    assert_eq!(parts[0]["text"].as_str().unwrap().split(' ').count(), 8);
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["index"], 0);
    // "Be kind." (8) + "Hello, Gemini" (13) = 21 bytes → 6 tokens.
    assert_eq!(
        body["usageMetadata"],
        json!({"promptTokenCount": 6, "candidatesTokenCount": 8, "totalTokenCount": 14,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 6}]})
    );
    assert_eq!(body["modelVersion"], "gemini-2.5-flash");
    assert!(body["responseId"].as_str().unwrap().len() >= 20);

    // The SDKs' default `/v1` and a base URL without a version are served alike.
    for path in [
        "/v1/models/gemini-2.5-flash:generateContent",
        "/models/gemini-2.5-flash:generateContent",
    ] {
        let other: Value = answer(&mock, path, request.clone()).await;
        assert_eq!(other["usageMetadata"], body["usageMetadata"]);
        assert_eq!(other["candidates"][0]["content"], candidate["content"]);
    }
}

#[tokio::test]
async fn sse_stream_sends_crlf_framed_chunks_that_add_up_to_the_plain_answer() {
    let mock = start().await;
    let plain: Value = answer(
        &mock,
        "/v1beta/models/mock-chunks-4-tokens-9:generateContent",
        user("stream it"),
    )
    .await;
    let events = stream_events(&mock, STREAM, user("stream it")).await;
    assert_eq!(events.len(), 4);
    let response_id = &events[0]["responseId"];
    let mut text = String::new();
    for (position, event) in events.iter().enumerate() {
        let candidate = &event["candidates"][0];
        assert_eq!(candidate["content"]["role"], "model");
        assert_eq!(candidate.get("index"), None);
        assert_eq!(event["modelVersion"], "mock-chunks-4-tokens-9");
        assert_eq!(&event["responseId"], response_id);
        text.push_str(candidate["content"]["parts"][0]["text"].as_str().unwrap());
        if position < 3 {
            assert_eq!(candidate.get("finishReason"), None);
            assert_eq!(
                event["usageMetadata"],
                json!({"promptTokenCount": 3, "totalTokenCount": 3,
                    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 3}]})
            );
        }
    }
    assert_eq!(text, plain["candidates"][0]["content"]["parts"][0]["text"]);
    assert_eq!(events[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(events[3]["usageMetadata"], plain["usageMetadata"]);
    assert_eq!(events[3]["usageMetadata"]["candidatesTokenCount"], 9);

    // The generic SSE reader sees the same events, unnamed.
    let transcript = read_sse(post_gemini(&mock, STREAM, user("stream it")).await).await;
    assert_eq!(transcript.names(), ["", "", "", ""]);
}

#[tokio::test]
async fn stream_without_alt_sse_is_one_json_array_of_the_same_chunks() {
    let mock = start().await;
    let path = "/v1beta/models/mock-chunks-3:streamGenerateContent";
    let response = post_gemini(&mock, path, user("array please")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let array: Vec<Value> = response.json().await.unwrap();
    let events = stream_events(&mock, &format!("{path}?alt=sse"), user("array please")).await;
    assert_eq!(array.len(), 3);
    for (mut from_array, mut from_sse) in array.into_iter().zip(events) {
        from_array["responseId"] = Value::Null;
        from_sse["responseId"] = Value::Null;
        assert_eq!(from_array, from_sse);
    }
}

#[tokio::test]
async fn declared_functions_are_called_whole_and_end_with_stop() {
    let mock = start().await;
    let mut request = user("Weather in Paris?");
    request["tools"] = json!([{"functionDeclarations": [{"name": "get_weather", "description": "Weather",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}, "days": {"type": "INTEGER"}}}}]}]);
    let plain: Value = answer(&mock, GENERATE, request.clone()).await;
    let candidate = &plain["candidates"][0];
    assert_eq!(
        candidate["content"]["parts"],
        json!([{"functionCall": {"name": "get_weather", "args": {"city": "mock", "days": 1}}}])
    );
    assert_eq!(candidate["finishReason"], "STOP");

    let events = stream_events(
        &mock,
        "/v1beta/models/mock-chunks-5:streamGenerateContent?alt=sse",
        request.clone(),
    )
    .await;
    assert_eq!(events.len(), 1, "a function call comes in one chunk");
    assert_eq!(events[0]["candidates"][0]["content"], candidate["content"]);
    assert_eq!(events[0]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(events[0]["usageMetadata"], plain["usageMetadata"]);

    request["toolConfig"] = json!({"functionCallingConfig": {"mode": "NONE"}});
    let text: Value = answer(&mock, GENERATE, request).await;
    assert!(text["candidates"][0]["content"]["parts"][0]["text"].is_string());
}

#[tokio::test]
async fn a_scripted_call_is_answered_after_its_function_response() {
    let mock = start().await;
    let script = "MOCK_TOOL_CALL write_file {\"path\": \"a.txt\", \"text\": \"hi\"}";
    let tools = json!([{"functionDeclarations": [
        {"name": "read_file", "parameters": {"type": "OBJECT", "properties": {"path": {"type": "STRING"}}}},
        {"name": "write_file", "parameters": {"type": "OBJECT", "properties": {"path": {"type": "STRING"}, "text": {"type": "STRING"}}}}
    ]}]);
    let mut request = user(script);
    request["tools"] = tools.clone();
    let first: Value = answer(&mock, GENERATE, request).await;
    let call = &first["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(call["name"], "write_file");
    assert_eq!(call["args"], json!({"path": "a.txt", "text": "hi"}));

    let after = json!({"tools": tools, "contents": [
        {"role": "user", "parts": [{"text": script}]},
        first["candidates"][0]["content"],
        {"role": "user", "parts": [{"functionResponse": {"name": "write_file", "response": {"result": "Wrote   a.txt\n"}}}]}
    ]});
    let events = stream_events(
        &mock,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        after,
    )
    .await;
    let text: String = events
        .iter()
        .map(|event| {
            event["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(text, "MOCK_FINAL_ANSWER after write_file: Wrote a.txt");
}

#[tokio::test]
async fn included_thoughts_come_first_and_sign_the_answer() {
    let mock = start().await;
    let mut request = user("think");
    request["generationConfig"] =
        json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 1024}});
    let plain: Value = answer(&mock, GENERATE, request.clone()).await;
    let parts = plain["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["thought"], true);
    let thought = parts[0]["text"].as_str().unwrap();
    assert!(!thought.is_empty());
    assert_eq!(parts[0].get("thoughtSignature"), None);
    assert!(parts[1]["text"].is_string());
    assert_eq!(parts[1].get("thought"), None);
    let signature = parts[1]["thoughtSignature"].as_str().unwrap();
    assert!(
        base64::engine::general_purpose::STANDARD
            .decode(signature)
            .is_ok()
    );
    let usage = &plain["usageMetadata"];
    let thoughts = u64::try_from(thought.len().div_ceil(4)).unwrap();
    assert_eq!(usage["thoughtsTokenCount"], thoughts);
    assert_eq!(
        usage["totalTokenCount"].as_u64().unwrap(),
        usage["promptTokenCount"].as_u64().unwrap()
            + usage["candidatesTokenCount"].as_u64().unwrap()
            + thoughts
    );

    let events = stream_events(
        &mock,
        "/v1beta/models/mock-chunks-2:streamGenerateContent?alt=sse",
        request,
    )
    .await;
    assert_eq!(events.len(), 3);
    let part = |event: &Value| event["candidates"][0]["content"]["parts"][0].clone();
    assert_eq!(part(&events[0])["thought"], true);
    assert!(part(&events[1])["thoughtSignature"].is_string());
    assert_eq!(part(&events[2]).get("thoughtSignature"), None);
    assert_eq!(events[2]["usageMetadata"]["thoughtsTokenCount"], thoughts);

    // Thinking without includeThoughts is counted but not shown; the proto's snake_case names
    // (as the Python SDK sends them) are read too; a zero budget turns thinking off.
    let mut hidden = user("think");
    hidden["generationConfig"] = json!({"thinkingConfig": {"thinking_budget": 512}});
    let hidden: Value = answer(&mock, GENERATE, hidden).await;
    assert_eq!(
        hidden["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(hidden["usageMetadata"]["thoughtsTokenCount"], thoughts);
    let mut off = user("think");
    off["generationConfig"] =
        json!({"thinkingConfig": {"include_thoughts": true, "thinking_budget": 0}});
    let off: Value = answer(&mock, GENERATE, off).await;
    assert_eq!(off["usageMetadata"].get("thoughtsTokenCount"), None);
    assert_eq!(
        off["candidates"][0]["content"]["parts"][0].get("thoughtSignature"),
        None
    );
}

#[tokio::test]
async fn max_output_tokens_truncates_with_max_tokens() {
    let mock = start().await;
    let mut request = user("long");
    request["generationConfig"] = json!({"maxOutputTokens": 3});
    let body: Value = answer(&mock, GENERATE, request).await;
    assert_eq!(body["candidates"][0]["finishReason"], "MAX_TOKENS");
    assert_eq!(body["usageMetadata"]["candidatesTokenCount"], 3);
}

#[tokio::test]
async fn long_prompts_report_implicitly_cached_tokens_the_second_time() {
    let mock = start().await;
    let request = |question: &str| {
        json!({"systemInstruction": {"parts": [{"text": "s".repeat(4096)}]},
            "contents": [{"role": "user", "parts": [{"text": question}]}]})
    };
    let first: Value = answer(&mock, GENERATE, request("abcd")).await;
    assert_eq!(first["usageMetadata"].get("cachedContentTokenCount"), None);
    let second: Value = answer(&mock, GENERATE, request("efgh")).await;
    assert_eq!(second["usageMetadata"]["promptTokenCount"], 1025);
    assert_eq!(second["usageMetadata"]["cachedContentTokenCount"], 1024);
}

#[tokio::test]
async fn count_tokens_uses_the_same_rule_as_usage() {
    let mock = start().await;
    let path = "/v1beta/models/gemini-2.5-flash:countTokens";
    let counted: Value = answer(&mock, path, user("count these tokens")).await;
    assert_eq!(
        counted,
        json!({"totalTokens": 5, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}]})
    );
    let wrapped = json!({"generateContentRequest": {"model": "models/gemini-2.5-flash", "contents": user("count these tokens")["contents"]}});
    let counted: Value = answer(&mock, path, wrapped).await;
    assert_eq!(counted["totalTokens"], 5);
}

#[tokio::test]
async fn models_are_listed_and_fetched_one_by_one() {
    let mock = start().await;
    let list = get_json(&format!("{}/v1beta/models", mock.base_url()), true).await;
    let models = list["models"].as_array().unwrap();
    assert!(!models.is_empty());
    for model in models {
        assert!(model["name"].as_str().unwrap().starts_with("models/"));
        assert!(model["displayName"].is_string());
        let methods = model["supportedGenerationMethods"].as_array().unwrap();
        assert!(methods.contains(&json!("generateContent")));
        assert!(methods.contains(&json!("countTokens")));
    }
    // The SDKs' `/v1` with `key=`: Gemini's list, not OpenAI's.
    let list = get_json(&format!("{}/v1/models?key=k", mock.base_url()), false).await;
    assert!(list["models"].is_array());
    let one = get_json(
        &format!("{}/v1beta/models/gemini-2.5-pro", mock.base_url()),
        true,
    )
    .await;
    assert_eq!(one["name"], "models/gemini-2.5-pro");
    assert_eq!(one["displayName"], "Gemini 2.5 Pro");
}

#[tokio::test]
async fn the_key_comes_from_the_header_or_the_query() {
    let mock = MockUpstream::start(MockConfig::default().with_valid_keys(["good-key"]))
        .await
        .unwrap();
    let url = format!("{}{GENERATE}", mock.base_url());
    let by_header = client()
        .post(&url)
        .header("x-goog-api-key", "good-key")
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
    let by_query = client()
        .post(format!("{url}?key=good-key"))
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 200);

    let missing = client().post(&url).json(&user("hi")).send().await.unwrap();
    let body = gemini_error(missing, 403, "PERMISSION_DENIED").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unregistered callers")
    );
    let wrong = client()
        .post(format!("{url}?key=bad-key"))
        .json(&user("hi"))
        .send()
        .await
        .unwrap();
    let body = gemini_error(wrong, 400, "INVALID_ARGUMENT").await;
    assert_eq!(
        body["error"]["message"],
        "API key not valid. Please pass a valid API key."
    );
    assert_eq!(body["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let recorded = mock.requests();
    assert_eq!(recorded.len(), 4);
    assert_eq!(recorded[0].api_key(), Some("good-key"));
    assert_eq!(recorded[1].api_key(), Some("good-key"));
    assert_eq!(recorded[1].path, format!("{GENERATE}?key=good-key"));
    assert_eq!(recorded[1].model(), Some("gemini-2.5-flash"));
    assert!(!recorded[1].is_stream());
    assert_eq!(recorded[2].api_key(), None);
}

#[tokio::test]
async fn failures_and_refusals_use_google_error_bodies() {
    let mock = start().await;
    let path = |model: &str| format!("/v1beta/models/{model}:generateContent");
    let limited = post_gemini(&mock, &path("mock-429-retry-after-2"), user("hi")).await;
    assert_eq!(limited.headers()["retry-after"], "2");
    let body = gemini_error(limited, 429, "RESOURCE_EXHAUSTED").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Resource has been exhausted")
    );
    for (status, name) in [
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (400, "INVALID_ARGUMENT"),
        (404, "NOT_FOUND"),
    ] {
        let response = post_gemini(&mock, &path(&format!("mock-fail-{status}")), user("x")).await;
        gemini_error(response, status, name).await;
    }
    let streamed = post_gemini(
        &mock,
        "/v1beta/models/mock-fail-503:streamGenerateContent?alt=sse",
        user("x"),
    )
    .await;
    gemini_error(streamed, 503, "UNAVAILABLE").await;

    let mut request = user("x");
    request["generationConfig"] =
        json!({"temperature": 0.2, "thinkingConfig": {"thinkingBudget": 0}});
    let refused = post_gemini(&mock, &path("mock-refuses-thinkingConfig"), request.clone()).await;
    let body = gemini_error(refused, 400, "INVALID_ARGUMENT").await;
    let message = "Invalid JSON payload received. Unknown name \"thinkingConfig\" at 'generation_config': Cannot find field.";
    assert_eq!(body["error"]["message"], message);
    assert_eq!(
        body["error"]["details"],
        json!([{"@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [{"field": "generation_config", "description": message}]}])
    );
    request["cachedContent"] = json!("cachedContents/abc");
    let refused = post_gemini(&mock, &path("mock-refuses-cachedContent"), request).await;
    let body = gemini_error(refused, 400, "INVALID_ARGUMENT").await;
    assert_eq!(
        body["error"]["message"],
        "Invalid JSON payload received. Unknown name \"cachedContent\": Cannot find field."
    );

    let no_contents = post_gemini(&mock, GENERATE, json!({"contents": []})).await;
    let body = gemini_error(no_contents, 400, "INVALID_ARGUMENT").await;
    assert_eq!(
        body["error"]["message"],
        "* GenerateContentRequest.contents: contents is not specified\n"
    );
    let bad_json = client()
        .post(format!("{}{GENERATE}", mock.base_url()))
        .header("x-goog-api-key", "k")
        .body("{not json")
        .send()
        .await
        .unwrap();
    gemini_error(bad_json, 400, "INVALID_ARGUMENT").await;
    let unknown_method = post_gemini(
        &mock,
        "/v1beta/models/gemini-2.5-flash:predictLongRunning",
        user("x"),
    )
    .await;
    gemini_error(unknown_method, 404, "NOT_FOUND").await;
}

#[tokio::test]
async fn fail_first_pacing_and_disconnects_apply_to_gemini_streams() {
    let mock = start().await;
    let path = "/v1beta/models/mock-fail-first-1-503:generateContent";
    gemini_error(
        post_gemini(&mock, path, user("x")).await,
        503,
        "UNAVAILABLE",
    )
    .await;
    assert_eq!(post_gemini(&mock, path, user("x")).await.status(), 200);

    let broken = read_sse(
        post_gemini(
            &mock,
            "/v1beta/models/mock-chunks-6-disconnect-after-2:streamGenerateContent?alt=sse",
            user("x"),
        )
        .await,
    )
    .await;
    assert!(broken.broken);
    assert_eq!(broken.events.len(), 2);

    mock.set_behavior(Behavior {
        chunk_delay: Duration::from_millis(30),
        ..Behavior::default()
    });
    let started = std::time::Instant::now();
    let events = stream_events(
        &mock,
        "/v1beta/models/mock-chunks-3:streamGenerateContent?alt=sse",
        user("x"),
    )
    .await;
    assert_eq!(events.len(), 3);
    assert!(started.elapsed() >= Duration::from_millis(60));
}
