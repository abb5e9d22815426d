//! Routing strategies, each with its measured distribution: least in flight spreads open
//! requests by route weight, lowest latency sends nearly everything to the faster route while
//! re-measuring the slower one, and cache affinity keeps every session on one key on either
//! node (moving only the sessions of a key that becomes unusable). Every decision is in the
//! request event.

#![allow(
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails loudly and reads top to bottom"
)]

use std::collections::{BTreeMap, HashMap};

use crate::support;

use kit::testing::{liveness, wait_until};
use serde_json::{Value, json};
use shared::config::{ConfigEvent, Protocol, ProviderKey, Route, Routing, RoutingStrategy};
use shared::request::RequestFinished;
use support::{Gateway, http};

/// A provider on the mock with these keys (ids and secrets) besides the harness's own, which
/// the routes here leave out by naming their keys.
async fn provider_with_keys(gateway: &Gateway, id: &str, keys: &[(&str, &str)]) {
    gateway.add_provider(id, Protocol::OpenAi).await;
    for (key_id, secret) in keys {
        gateway.add_key(id, key_id, secret).await;
    }
}

async fn disable_key(gateway: &Gateway, provider_id: &str, key_id: &str) -> u64 {
    let sealed = gateway_key(gateway, key_id).await;
    gateway
        .publish_config(ConfigEvent::ProviderKeyPut(ProviderKey {
            enabled: false,
            provider_id: provider_id.into(),
            ..sealed
        }))
        .await
}

/// A key as last put, read back from the config stream (its sealed secret included).
async fn gateway_key(gateway: &Gateway, key_id: &str) -> ProviderKey {
    let events: Vec<shared::Envelope<ConfigEvent>> =
        support::read_all(&gateway.jetstream, shared::streams::CONFIG_STREAM).await;
    events
        .into_iter()
        .rev()
        .find_map(|event| match event.body {
            ConfigEvent::ProviderKeyPut(key) if key.id == key_id => Some(key),
            _ => None,
        })
        .expect("the key was put")
}

fn route(provider: &str, upstream_model: &str, keys: &[&str], weight: u32) -> Route {
    Route {
        provider_id: provider.into(),
        upstream_model: upstream_model.into(),
        key_ids: keys.iter().map(|key| (*key).to_owned()).collect(),
        priority: 0,
        weight,
        capabilities: Default::default(),
    }
}

async fn routed_model(gateway: &Gateway, alias: &str, routes: Vec<Route>, routing: Routing) {
    let mut model = support::model(alias, vec![]);
    model.routes = routes;
    model.routing = Some(routing);
    gateway.publish_config(ConfigEvent::ModelPut(model)).await;
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
}

/// The mock's recorded requests per API key.
fn by_api_key(gateway: &Gateway) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for request in gateway.mock.requests() {
        *counts
            .entry(request.api_key().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    counts
}

/// The events of these request ids, by id.
async fn events_of(gateway: &Gateway, ids: &[String]) -> HashMap<String, RequestFinished> {
    let wanted: std::collections::HashSet<&String> = ids.iter().collect();
    wait_until(liveness(), "the requests' events", || async {
        let events: HashMap<String, RequestFinished> = gateway
            .request_events()
            .await
            .into_iter()
            .map(|event| match event.body {
                shared::request::RequestEvent::Finished(finished) => finished,
            })
            .filter(|finished| wanted.contains(&finished.request_id))
            .map(|finished| (finished.request_id.clone(), finished))
            .collect();
        (events.len() == wanted.len()).then_some(events)
    })
    .await
}

#[tokio::test]
async fn least_in_flight_spreads_open_requests_by_route_weight() {
    let gateway = Gateway::start().await;
    provider_with_keys(
        &gateway,
        "busy",
        &[("light", "sk-light-1111"), ("heavy", "sk-heavy-3333")],
    )
    .await;
    // Streams that send one chunk and then stay open: every request stays in flight.
    routed_model(
        &gateway,
        "spread",
        vec![
            route("busy", "mock-stall-after-1", &["light"], 1),
            route("busy", "mock-stall-after-1", &["heavy"], 3),
        ],
        Routing {
            strategy: RoutingStrategy::LeastInFlight,
            session_header: None,
        },
    )
    .await;
    let token = gateway.add_token("tok-spread", |_| {}).await;
    let node = gateway.start_node("ingress-spread").await;

    // Eight requests one after another, each open when the next is routed: by weight 1 : 3,
    // the balanced split is 2 : 6 whatever the order of ties.
    let mut open = Vec::new();
    let mut ids = Vec::new();
    for index in 0..8 {
        let id = format!("spread-{index}");
        let response = http()
            .post(format!("{}/v1/chat/completions", node.base))
            .bearer_auth(&token)
            .header("x-request-id", &id)
            .json(&chat("spread", true))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        ids.push(id);
        open.push(response);
    }
    let counts = by_api_key(&gateway);
    eprintln!("least_in_flight, 8 open requests over weights 1 : 3: {counts:?}");
    assert_eq!(counts.get("sk-light-1111"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("sk-heavy-3333"), Some(&6), "{counts:?}");

    // Closing them ends their count; the decisions are in the events.
    drop(open);
    let events = events_of(&gateway, &ids).await;
    for id in &ids {
        let decision = events[id].routing.as_ref().expect("a routing decision");
        assert_eq!(decision.strategy, RoutingStrategy::LeastInFlight);
        assert_eq!(decision.candidates, 2);
        assert!(decision.in_flight.is_some(), "{decision:?}");
    }
    // The first request found nothing in flight.
    assert_eq!(
        events["spread-0"].routing.as_ref().unwrap().in_flight,
        Some(0)
    );

    // With nothing open any more, a new request again finds its route idle.
    let mut attempt = 0;
    wait_until(liveness(), "the closed requests to leave", || {
        attempt += 1;
        let id = format!("spread-after-{attempt}");
        let (base, token) = (&node.base, &token);
        let gateway = &gateway;
        async move {
            let response = http()
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(token)
                .header("x-request-id", &id)
                .json(&chat("spread", false))
                .send()
                .await
                .ok()?;
            response.text().await.ok()?;
            let event = events_of(gateway, std::slice::from_ref(&id)).await;
            (event[&id].routing.as_ref()?.in_flight == Some(0)).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn lowest_latency_prefers_the_faster_route_and_re_measures_the_slower() {
    let gateway = Gateway::start().await;
    provider_with_keys(
        &gateway,
        "timed",
        &[("slow-key", "sk-slow-1111"), ("fast-key", "sk-fast-2222")],
    )
    .await;
    routed_model(
        &gateway,
        "quick",
        vec![
            route("timed", "mock-slow-first-byte-400", &["slow-key"], 1),
            route("timed", "mock", &["fast-key"], 1),
        ],
        Routing {
            strategy: RoutingStrategy::Latency,
            session_header: None,
        },
    )
    .await;
    let token = gateway.add_token("tok-quick", |_| {}).await;
    let node = gateway.start_node("ingress-quick").await;

    let mut ids = Vec::new();
    for index in 0..32 {
        let id = format!("quick-{index}");
        let response = http()
            .post(format!("{}/v1/chat/completions", node.base))
            .bearer_auth(&token)
            .header("x-request-id", &id)
            .json(&chat("quick", false))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 200);
        response.text().await.expect("body");
        ids.push(id);
    }
    let events = events_of(&gateway, &ids).await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut explored = 0;
    for id in &ids {
        let event = &events[id];
        *counts
            .entry(event.provider_key_id.as_deref().expect("a key"))
            .or_default() += 1;
        let decision = event.routing.as_ref().expect("a routing decision");
        assert_eq!(decision.strategy, RoutingStrategy::Latency);
        explored += usize::from(decision.explored);
        if !decision.explored {
            assert_eq!(
                event.provider_key_id.as_deref(),
                Some("fast-key"),
                "only a measuring turn goes to the slower route: {decision:?}"
            );
            assert!(decision.ewma_ttfb_us.is_some());
        }
    }
    eprintln!(
        "latency, 32 requests (400 ms vs prompt first byte): {counts:?}, {explored} measuring turns"
    );
    // Each route is measured once, then every 16th decision re-measures the stalest.
    let slow = counts.get("slow-key").copied().unwrap_or(0);
    assert!(
        (3..=4).contains(&slow),
        "the slower route gets its first measurement and the re-measuring turns: {counts:?}"
    );
    assert_eq!(counts.get("fast-key").copied().unwrap_or(0), 32 - slow);
    // The events show the two averages apart.
    let average_of = |key: &str| {
        ids.iter()
            .filter_map(|id| {
                let event = &events[id];
                (event.provider_key_id.as_deref() == Some(key))
                    .then(|| event.routing.as_ref()?.ewma_ttfb_us)
                    .flatten()
            })
            .next_back()
    };
    let (slow_average, fast_average) = (
        average_of("slow-key").expect("a re-measured slow route"),
        average_of("fast-key").expect("a fast route"),
    );
    assert!(
        slow_average >= 400_000 && fast_average < slow_average,
        "slow {slow_average} us, fast {fast_average} us"
    );
}

#[tokio::test]
async fn cache_affinity_keeps_each_session_on_one_key_across_nodes() {
    let gateway = Gateway::start().await;
    let keys = [
        ("aff-1", "sk-aff-1111"),
        ("aff-2", "sk-aff-2222"),
        ("aff-3", "sk-aff-3333"),
    ];
    provider_with_keys(&gateway, "sticky", &keys).await;
    routed_model(
        &gateway,
        "sticky",
        vec![route("sticky", "mock", &["aff-1", "aff-2", "aff-3"], 1)],
        Routing {
            strategy: RoutingStrategy::CacheAffinity,
            session_header: Some("x-session-id".into()),
        },
    )
    .await;
    let token = gateway.add_token("tok-sticky", |_| {}).await;
    let nodes = [
        gateway.start_node("ingress-sticky-a").await,
        gateway.start_node("ingress-sticky-b").await,
    ];

    // 24 sessions, a third named by header, a third by prompt_cache_key (OpenAI clients,
    // Codex), a third by metadata.user_id (Anthropic clients, Claude Code).
    let send = |session: usize, round: usize| {
        let node = &nodes[(session + round) % 2];
        let id = format!("sticky-{session}-{round}");
        let name = format!("session-{session:02}");
        let request = match session % 3 {
            0 => http()
                .post(format!("{}/v1/chat/completions", node.base))
                .bearer_auth(&token)
                .header("x-session-id", &name)
                .json(&chat("sticky", false)),
            1 => {
                let mut body = chat("sticky", false);
                body["prompt_cache_key"] = json!(name);
                http()
                    .post(format!("{}/v1/chat/completions", node.base))
                    .bearer_auth(&token)
                    .json(&body)
            }
            _ => http()
                .post(format!("{}/v1/messages", node.base))
                .header("x-api-key", &token)
                .header("anthropic-version", "2023-06-01")
                .json(&json!({
                    "model": "sticky", "max_tokens": 64,
                    "metadata": {"user_id": name},
                    "messages": [{"role": "user", "content": "hello"}],
                })),
        };
        let request = request.header("x-request-id", &id);
        async move {
            let response = request.send().await.expect("send");
            assert_eq!(response.status(), 200, "{id}");
            response.text().await.expect("body");
            id
        }
    };
    let mut ids = Vec::new();
    for round in 0..3 {
        for session in 0..24 {
            ids.push(send(session, round).await);
        }
    }
    let events = events_of(&gateway, &ids).await;
    let key_of = |session: usize, round: usize| -> String {
        events[&format!("sticky-{session}-{round}")]
            .provider_key_id
            .clone()
            .expect("a key")
    };
    let mut placement = BTreeMap::new();
    let mut sessions_per_key: BTreeMap<String, usize> = BTreeMap::new();
    for session in 0..24 {
        let key = key_of(session, 0);
        for round in 1..3 {
            assert_eq!(
                key_of(session, round),
                key,
                "session {session} moved between rounds (nodes alternate)"
            );
        }
        *sessions_per_key.entry(key.clone()).or_default() += 1;
        placement.insert(session, key);
        let decision = events[&format!("sticky-{session}-0")]
            .routing
            .clone()
            .expect("a routing decision");
        assert_eq!(decision.strategy, RoutingStrategy::CacheAffinity);
        let expected_source = ["header", "prompt_cache_key", "metadata.user_id"][session % 3];
        assert_eq!(decision.session_source.as_deref(), Some(expected_source));
        let fingerprint = decision.session.expect("a session fingerprint");
        assert_eq!(fingerprint.len(), 16);
        assert!(!fingerprint.contains("session"), "the session is hashed");
    }
    eprintln!(
        "cache_affinity, 24 sessions x 3 requests over 3 keys and 2 nodes: sessions per key {sessions_per_key:?}"
    );
    assert_eq!(
        sessions_per_key.len(),
        3,
        "every key serves sessions: {sessions_per_key:?}"
    );

    // A key becomes unusable: its sessions move (to the same key on both nodes), the others stay.
    let (gone, _) = sessions_per_key
        .iter()
        .max_by_key(|(_, count)| **count)
        .map(|(key, count)| (key.clone(), *count))
        .unwrap();
    disable_key(&gateway, "sticky", &gone).await;
    let gone_secret = keys.iter().find(|(id, _)| *id == gone).unwrap().1;
    let moved_session = placement
        .iter()
        .find(|(_, key)| **key == gone)
        .map(|(session, _)| *session)
        .unwrap();
    // Each node has applied the change once a request of a session that was on the key, sent
    // to that node, no longer reaches the key.
    for index in 0..2 {
        let mut attempt = 0;
        wait_until(liveness(), "the node to route without the key", || {
            attempt += 1;
            // Rounds that send this session to node `index`.
            let round = 100 + 2 * attempt + (index + moved_session) % 2;
            let request = send(moved_session, round);
            let gateway = &gateway;
            async move {
                gateway.mock.clear();
                request.await;
                let counts = by_api_key(gateway);
                (!counts.is_empty() && !counts.contains_key(gone_secret)).then_some(())
            }
        })
        .await;
    }
    let mut after = Vec::new();
    for session in 0..24 {
        after.push(send(session, 10).await);
        after.push(send(session, 11).await);
    }
    let events = events_of(&gateway, &after).await;
    let mut moved = 0;
    for session in 0..24 {
        let key = |round: usize| {
            events[&format!("sticky-{session}-{round}")]
                .provider_key_id
                .clone()
                .unwrap()
        };
        assert_eq!(key(10), key(11), "session {session} agrees on both nodes");
        if placement[&session] == gone {
            assert_ne!(key(10), gone);
            moved += 1;
        } else {
            assert_eq!(
                key(10),
                placement[&session],
                "session {session} stays on its key"
            );
        }
    }
    eprintln!(
        "cache_affinity, key {gone} disabled: {moved} sessions moved, {} stayed",
        24 - moved
    );
    assert!(moved > 0);
}
