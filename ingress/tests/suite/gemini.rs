//! Gemini on both sides of a real ingress: Gemini clients (`:generateContent`,
//! `:streamGenerateContent?alt=sse`, `:countTokens`, the model list; the key in
//! `x-goog-api-key` or `key=`) served by a Gemini upstream verbatim and by other upstreams
//! translated, other clients served by a Gemini upstream, errors in Gemini's shape, and what
//! the request events say.

use crate::support;

use serde_json::{Value, json};
use shared::config::{ClientProtocol, Protocol};
use shared::request::Outcome;
use support::{Gateway, finished_events, http, sse_events};

/// A Gemini request as the Gen AI SDKs write it, with fields AxonGate does not model.
fn gemini_request(text: &str) -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": text}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.5,
            "candidateCount": 1,
            "thinkingConfig": {"include_thoughts": true, "thinking_budget": 1024}
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    })
}

fn text_of(answer: &Value) -> String {
    answer["candidates"][0]["content"]["parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|part| part["thought"] != true)
        .filter_map(|part| part["text"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gemini_clients_and_gemini_upstreams_work_with_every_dialect() {
    let gateway = Gateway::start().await;
    gateway.add_provider("gemini-mock", Protocol::Gemini).await;
    gateway
        .add_provider("anthropic-mock", Protocol::Anthropic)
        .await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("flash", vec![("gemini-mock", "gemini-2.5-flash", 0)])
        .await;
    gateway
        .add_model("claude", vec![("anthropic-mock", "claude-mock-1", 0)])
        .await;
    gateway
        .add_model("gpt", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let client = http();

    // Gemini client → Gemini upstream, the key as `key=`: the body arrives as sent, the model
    // and the provider's key in the URL and header, the client's token nowhere.
    let sent = gemini_request("Say hello to the gateway");
    let response = client
        .post(format!(
            "{}/v1beta/models/flash:generateContent?key={token}",
            node.base
        ))
        .json(&sent)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert!(!text_of(&answer).is_empty(), "{answer}");
    assert_eq!(
        answer["modelVersion"], "flash",
        "the alias, as in every dialect"
    );
    assert!(answer["usageMetadata"]["promptTokenCount"].as_u64() > Some(0));
    let upstream = gateway.mock.requests().last().cloned().unwrap();
    assert_eq!(
        upstream.path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        upstream.header("x-goog-api-key"),
        Some(support::PROVIDER_SECRET_GEMINI)
    );
    assert_eq!(upstream.body, sent, "same-protocol traffic passes verbatim");
    assert!(
        !format!("{upstream:?}").contains(&token),
        "the client's token is never forwarded"
    );

    // Gemini client → Anthropic upstream, streamed, on `/v1` (the SDKs' default), the key in
    // `x-goog-api-key`: Gemini chunks, the finish reason and the usage in the last one.
    let response = client
        .post(format!(
            "{}/v1/models/claude:streamGenerateContent?alt=sse",
            node.base
        ))
        .header("x-goog-api-key", &token)
        .json(&gemini_request("Say hello to the gateway"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let chunks: Vec<Value> = sse_events(&response.text().await.unwrap())
        .into_iter()
        .map(|(name, data)| {
            assert_eq!(name, None, "Gemini names no events");
            serde_json::from_str(&data).unwrap()
        })
        .collect();
    let streamed: String = chunks.iter().map(text_of).collect();
    assert!(!streamed.is_empty(), "{chunks:?}");
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP", "{last}");
    assert!(last["usageMetadata"]["candidatesTokenCount"].as_u64() > Some(0));
    let upstream = gateway.mock.requests().last().cloned().unwrap();
    assert_eq!(upstream.path, "/v1/messages");
    assert_eq!(upstream.body["system"], "Be brief.", "{}", upstream.body);
    assert_eq!(upstream.body["thinking"]["budget_tokens"], 1024);

    // OpenAI Chat client → Gemini upstream with a tool: Gemini's function call comes back as a
    // tool call; the upstream got a function declaration and the stream URL.
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&json!({
            "model": "flash",
            "stream": true,
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.contains("\"tool_calls\""), "{body}");
    assert!(body.contains("\"finish_reason\":\"tool_calls\""), "{body}");
    let upstream = gateway.mock.requests().last().cloned().unwrap();
    assert_eq!(
        upstream.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        upstream.body["tools"][0]["functionDeclarations"][0]["name"],
        "get_weather"
    );
    assert!(upstream.body.get("model").is_none() && upstream.body.get("stream").is_none());

    // Anthropic client → Gemini upstream, plain.
    let response = client
        .post(format!("{}/v1/messages", node.base))
        .header("x-api-key", &token)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "flash", "max_tokens": 256, "messages": [{"role": "user", "content": "Say hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(
        message["content"][0]["text"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );

    // The model list and token counting in Gemini's shapes.
    let listed: Value = client
        .get(format!("{}/v1beta/models?key={token}", node.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|model| model["name"].as_str())
        .collect();
    assert_eq!(names, ["models/claude", "models/flash", "models/gpt"]);
    let counted = client
        .post(format!("{}/v1beta/models/gpt:countTokens", node.base))
        .header("x-goog-api-key", &token)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(counted.status(), 200);
    assert_eq!(counted.headers()["x-axongate-estimated"], "true");
    let counted: Value = counted.json().await.unwrap();
    assert!(counted["totalTokens"].as_u64() > Some(0), "{counted}");

    // Every request is one event, with the dialects on both sides.
    let events = finished_events(&gateway, 5).await;
    assert!(
        events.iter().all(|event| event.outcome == Outcome::Success),
        "{events:?}"
    );
    let gemini_clients = events
        .iter()
        .filter(|event| event.client_protocol == ClientProtocol::Gemini)
        .count();
    assert_eq!(gemini_clients, 3, "generate, stream and count: {events:?}");
    let gemini_upstreams = events
        .iter()
        .filter(|event| event.upstream_protocol == Some(Protocol::Gemini))
        .inspect(|event| assert!(event.usage.output_tokens > 0, "{event:?}"))
        .count();
    assert_eq!(gemini_upstreams, 3, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gemini_errors_come_in_gemini_shape() {
    let gateway = Gateway::start().await;
    gateway.add_provider("gemini-mock", Protocol::Gemini).await;
    gateway
        .add_model("flash", vec![("gemini-mock", "gemini-2.5-flash", 0)])
        .await;
    gateway
        .add_model("failing", vec![("gemini-mock", "mock-fail-400", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let client = http();
    let post = |path: String, key: &str| {
        client
            .post(format!("{}{path}", node.base))
            .header("x-goog-api-key", key)
            .json(&gemini_request("hello"))
            .send()
    };
    let cases = [
        (
            post("/v1beta/models/flash:generateContent".into(), "axg-wrong")
                .await
                .unwrap(),
            401,
            "UNAUTHENTICATED",
        ),
        (
            post("/v1beta/models/nope:generateContent".into(), &token)
                .await
                .unwrap(),
            404,
            "NOT_FOUND",
        ),
        (
            post("/v1beta/models/flash:embedEverything".into(), &token)
                .await
                .unwrap(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            post("/v1beta/models/flash:streamGenerateContent".into(), &token)
                .await
                .unwrap(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            post("/v1beta/models/failing:generateContent".into(), &token)
                .await
                .unwrap(),
            400,
            "INVALID_ARGUMENT",
        ),
    ];
    for (response, status, name) in cases {
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], status, "{body}");
        assert_eq!(body["error"]["status"], name, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|message| !message.is_empty())
        );
    }
    // A method the path does not take, in Gemini's shape too.
    let response = client
        .delete(format!("{}/v1beta/models/flash:generateContent", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNIMPLEMENTED", "{body}");
}
