//! The response cache across two ingress nodes: a model that opts in answers an identical
//! request from the shared bucket (plain and streamed), per token unless the model shares,
//! deterministic requests only unless it caches sampled ones, honouring `Cache-Control`, with
//! the hit recorded at zero cost and what it saved.

#![allow(
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails loudly and reads top to bottom"
)]

use crate::support;

use kit::testing::{liveness, wait_until};
use serde_json::{Value, json};
use shared::config::{ConfigEvent, Protocol, ResponseCache};
use shared::request::{Outcome, RequestEvent, RequestFinished};
use support::{Gateway, http, sse_events};

const CACHE_STREAM: &str = "KV_axongate-responses";

async fn cached_model(gateway: &Gateway, alias: &str, provider: &str, policy: ResponseCache) {
    let mut model = support::model(alias, vec![(provider, &format!("{alias}-upstream"), 0)]);
    model.response_cache = Some(policy);
    gateway.publish_config(ConfigEvent::ModelPut(model)).await;
}

/// Entries in the shared bucket (the cache stores in the background).
async fn entries(gateway: &Gateway) -> u64 {
    gateway
        .jetstream
        .get_stream(CACHE_STREAM)
        .await
        .expect("cache bucket")
        .info()
        .await
        .expect("info")
        .state
        .messages
}

async fn wait_for_entries(gateway: &Gateway, count: u64) {
    wait_until(liveness(), "response cache entries", || async {
        (entries(gateway).await >= count).then_some(())
    })
    .await;
}

struct Answer {
    cache: Option<String>,
    request_id: String,
    body: String,
}

async fn chat(base: &str, token: &str, body: &Value, cache_control: Option<&str>) -> Answer {
    let mut request = http()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(token)
        .json(body);
    if let Some(value) = cache_control {
        request = request.header("cache-control", value);
    }
    let response = request.send().await.expect("send");
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().expect("ascii").to_owned())
    };
    let cache = header("x-axongate-cache");
    let request_id = header("x-request-id").expect("request id");
    Answer {
        cache,
        request_id,
        body: response.text().await.expect("body"),
    }
}

fn event<'a>(events: &'a [RequestFinished], request_id: &str) -> &'a RequestFinished {
    events
        .iter()
        .find(|event| event.request_id == request_id)
        .expect("the request's event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_requests_are_answered_from_the_shared_cache_on_either_node() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_provider("anthropic-mock", Protocol::Anthropic)
        .await;
    // Per token, deterministic requests only.
    cached_model(
        &gateway,
        "cached-gpt",
        "openai-mock",
        ResponseCache {
            ttl_secs: 3600,
            ..ResponseCache::default()
        },
    )
    .await;
    // Shared by every token, sampled requests too, translated (OpenAI client → Anthropic).
    cached_model(
        &gateway,
        "cached-claude",
        "anthropic-mock",
        ResponseCache {
            ttl_secs: 3600,
            across_tokens: true,
            sampled: true,
        },
    )
    .await;
    // A one-second TTL.
    cached_model(
        &gateway,
        "cached-brief",
        "openai-mock",
        ResponseCache {
            ttl_secs: 1,
            sampled: true,
            ..ResponseCache::default()
        },
    )
    .await;
    gateway
        .add_model("uncached", vec![("openai-mock", "plain-upstream", 0)])
        .await;
    let token_a = gateway.add_token("tok-a", |_| {}).await;
    let token_b = gateway.add_token("tok-b", |_| {}).await;
    let node_a = gateway.start_node("a").await;
    let node_b = gateway.start_node("b").await;
    let upstream_calls = || gateway.mock.request_count();

    // The bucket evicts the oldest entries at its size bound rather than refusing new ones.
    let config = gateway
        .jetstream
        .get_stream(CACHE_STREAM)
        .await
        .expect("bucket")
        .info()
        .await
        .expect("info")
        .config
        .clone();
    assert_eq!(
        config.discard,
        async_nats::jetstream::stream::DiscardPolicy::Old
    );
    assert_eq!(config.max_bytes, 1 << 30);
    assert_eq!(config.max_messages_per_subject, 1);

    // A plain, deterministic request: a miss on node a, stored, then a hit on node b for the
    // same request written differently (key order, an attribution field).
    let first_body = json!({"model": "cached-gpt", "temperature": 0, "messages": [{"role": "user", "content": "What is 2 + 2?"}]});
    let same_body = json!({"user": "someone", "messages": [{"content": "What is 2 + 2?", "role": "user"}], "temperature": 0, "model": "cached-gpt"});
    let before = upstream_calls();
    let miss = chat(&node_a.base, &token_a, &first_body, None).await;
    assert_eq!(miss.cache.as_deref(), Some("miss"));
    assert_eq!(upstream_calls(), before + 1);
    wait_for_entries(&gateway, 1).await;
    let hit = chat(&node_b.base, &token_a, &same_body, None).await;
    assert_eq!(hit.cache.as_deref(), Some("hit"));
    assert_eq!(
        hit.body, miss.body,
        "the cached answer is the one first sent"
    );
    assert_eq!(
        upstream_calls(),
        before + 1,
        "a hit does not reach the upstream"
    );
    assert_ne!(hit.request_id, miss.request_id);

    // Another token's identical request is its own (the model does not share across tokens).
    let other_token = chat(&node_b.base, &token_b, &first_body, None).await;
    assert_eq!(other_token.cache.as_deref(), Some("miss"));
    assert_eq!(upstream_calls(), before + 2);
    // A sampled request is not cached by this model: no cache header, upstream every time.
    let sampled = json!({"model": "cached-gpt", "temperature": 0.7, "messages": [{"role": "user", "content": "What is 2 + 2?"}]});
    for _ in 0..2 {
        let answer = chat(&node_a.base, &token_a, &sampled, None).await;
        assert_eq!(answer.cache, None);
    }
    assert_eq!(upstream_calls(), before + 4);
    // `Cache-Control: no-cache` asks for a fresh answer.
    let fresh = chat(&node_a.base, &token_a, &first_body, Some("no-cache")).await;
    assert_eq!(fresh.cache.as_deref(), Some("miss"));
    assert_eq!(upstream_calls(), before + 5);
    // A model without a cache never says anything about one.
    let plain = json!({"model": "uncached", "temperature": 0, "messages": [{"role": "user", "content": "What is 2 + 2?"}]});
    assert_eq!(chat(&node_a.base, &token_a, &plain, None).await.cache, None);
    assert_eq!(chat(&node_a.base, &token_a, &plain, None).await.cache, None);
    assert_eq!(upstream_calls(), before + 7);

    // A translated stream: stored as sent on node a, replayed as a stream on node b to another
    // token (the model shares), event for event.
    let stored = entries(&gateway).await;
    let stream_body = json!({"model": "cached-claude", "stream": true, "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "Tell me a short story"}]});
    let stream_miss = chat(&node_a.base, &token_a, &stream_body, None).await;
    assert_eq!(stream_miss.cache.as_deref(), Some("miss"));
    let calls = upstream_calls();
    wait_for_entries(&gateway, stored + 1).await;
    let stream_hit = chat(&node_b.base, &token_b, &stream_body, None).await;
    assert_eq!(stream_hit.cache.as_deref(), Some("hit"));
    assert_eq!(upstream_calls(), calls);
    let replayed = sse_events(&stream_hit.body);
    assert_eq!(replayed, sse_events(&stream_miss.body));
    assert!(
        replayed.len() > 3,
        "a stream of several events: {replayed:?}"
    );
    assert_eq!(replayed.last().expect("events").1, "[DONE]");
    // The plain form of the same request is another entry.
    let mut plain_form = stream_body.clone();
    plain_form["stream"] = json!(false);
    plain_form
        .as_object_mut()
        .expect("object")
        .remove("stream_options");
    let plain_answer = chat(&node_b.base, &token_b, &plain_form, None).await;
    assert_eq!(plain_answer.cache.as_deref(), Some("miss"));
    let body: Value = serde_json::from_str(&plain_answer.body).expect("json");
    assert_eq!(body["object"], "chat.completion");

    // A one-second TTL: once it has passed, the entry is a miss and the upstream answers again.
    let brief =
        json!({"model": "cached-brief", "messages": [{"role": "user", "content": "Quick one"}]});
    let brief_miss = chat(&node_a.base, &token_a, &brief, None).await;
    assert_eq!(brief_miss.cache.as_deref(), Some("miss"));
    let calls = upstream_calls();
    wait_until(liveness(), "the one-second entry to expire", || {
        let (base, token, brief) = (&node_b.base, &token_a, &brief);
        async move {
            let answer = chat(base, token, brief, None).await;
            (answer.cache.as_deref() == Some("miss")).then_some(())
        }
    })
    .await;
    assert_eq!(upstream_calls(), calls + 1);

    // The events: a hit has no attempt, zero usage, a cost of zero, and names what it saved.
    let events = wait_until(liveness(), "every request's event", || async {
        let all: Vec<RequestFinished> = gateway
            .request_events()
            .await
            .into_iter()
            .map(|envelope| match envelope.body {
                RequestEvent::Finished(finished) => finished,
            })
            .collect();
        [&hit, &stream_hit, &brief_miss]
            .iter()
            .all(|answer| {
                all.iter()
                    .any(|event| event.request_id == answer.request_id)
            })
            .then_some(all)
    })
    .await;
    for (hit, miss) in [(&hit, &miss), (&stream_hit, &stream_miss)] {
        let source = event(&events, &miss.request_id);
        let served = event(&events, &hit.request_id);
        assert_eq!(served.outcome, Outcome::Success);
        assert!(served.attempts.is_empty(), "{served:?}");
        assert_eq!(served.provider_id, None);
        assert_eq!(served.usage, shared::request::Usage::default());
        let cost = served.cost.as_ref().expect("priced model");
        assert_eq!(cost.amount.0, 0);
        let saved = served.cache_hit.as_ref().expect("a cache hit");
        assert_eq!(saved.source_request_id, miss.request_id);
        assert_eq!(saved.saved, source.usage);
        assert!(saved.saved.output_tokens > 0);
        assert_eq!(saved.saved_cost, source.cost);
        assert!(source.cache_hit.is_none());
        assert!(source.cost.as_ref().is_some_and(|cost| cost.amount.0 > 0));
    }
    assert_eq!(
        event(&events, &stream_hit.request_id).user_id.as_deref(),
        Some("user-1")
    );
    assert_eq!(
        event(&events, &stream_hit.request_id).token_id.as_deref(),
        Some("tok-b")
    );
}
