//! Helpers shared by the mock's integration tests.

use std::time::Duration;

use futures::StreamExt;
use loadtest::mock::{MockConfig, MockUpstream};
use loadtest::sse::{SseDecoder, SseEvent};
use serde_json::Value;

/// The liveness deadline of these tests: generous, since the machine is shared and noisy.
pub const WAIT: Duration = Duration::from_secs(60);

pub async fn start() -> MockUpstream {
    MockUpstream::start(MockConfig::default()).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(WAIT).build().unwrap()
}

pub async fn post_openai(mock: &MockUpstream, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", mock.base_url()))
        .bearer_auth("sk-openai-test")
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn post_anthropic(mock: &MockUpstream, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", mock.base_url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub async fn post_gemini(mock: &MockUpstream, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", mock.base_url()))
        .header("x-goog-api-key", "gemini-test-key")
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The result of reading a whole SSE body.
pub struct Transcript {
    pub events: Vec<SseEvent>,
    /// The body ended with an error (a dropped connection) rather than cleanly.
    pub broken: bool,
    /// Network chunks received, to show events were not assumed one per chunk.
    pub network_chunks: usize,
}

impl Transcript {
    pub fn json(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|event| event.data != "[DONE]")
            .map(|event| serde_json::from_str(&event.data).unwrap())
            .collect()
    }

    pub fn names(&self) -> Vec<&str> {
        self.events
            .iter()
            .map(|event| event.event.as_deref().unwrap_or(""))
            .collect()
    }
}

pub async fn read_sse(response: reqwest::Response) -> Transcript {
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    let mut network_chunks = 0;
    let mut broken = false;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => {
                network_chunks += 1;
                events.extend(decoder.push(&bytes));
            }
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    if !broken {
        assert_eq!(decoder.pending_bytes(), 0, "stream ended mid-event");
    }
    Transcript {
        events,
        broken,
        network_chunks,
    }
}
