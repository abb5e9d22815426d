//! OpenTelemetry traces: a real ingress process exports its spans over OTLP/HTTP to a receiver
//! in this test, which decodes them with the official protobuf types; the W3C context reaches
//! the mock upstream; the trace id reaches the request event and ClickHouse; a collector that
//! is down or hangs changes nothing for clients; with tracing off a client's context still
//! passes.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "the receiver and helpers of a test fail loudly"
)]

use crate::support;

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use kit::testing::{free_port, liveness, wait_until};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message as _;
use serde_json::{Value, json};
use shared::config::Protocol;
use shared::request::RequestEvent;
use support::{Gateway, PROVIDER_SECRET_OPENAI, clickhouse, http};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// What the receiver got: each span with its resource's `service.name`.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(String, Span)>>>);

impl Received {
    fn spans(&self) -> Vec<(String, Span)> {
        self.0.lock().unwrap().clone()
    }

    /// Waits until the trace has `count` spans; returns them.
    async fn trace(&self, trace_id: &str, count: usize) -> Vec<Span> {
        wait_until(liveness(), "the spans of the trace", || async {
            let spans: Vec<Span> = self
                .spans()
                .into_iter()
                .map(|(_, span)| span)
                .filter(|span| hex::encode(&span.trace_id) == trace_id)
                .collect();
            (spans.len() >= count).then_some(spans)
        })
        .await
    }
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with an `ExportTraceServiceRequest` in protobuf.
async fn start_receiver() -> (String, Received) {
    let (_, gate) = tokio::sync::watch::channel(true);
    start_gated_receiver(gate).await
}

/// A receiver that keeps each export's spans at once but answers only while `gate` is open.
async fn start_gated_receiver(gate: tokio::sync::watch::Receiver<bool>) -> (String, Received) {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let (store, mut gate) = (store.clone(), gate.clone());
            async move {
                assert_eq!(
                    headers["content-type"], "application/x-protobuf",
                    "OTLP/HTTP protobuf"
                );
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
                let mut spans = Vec::new();
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .as_ref()
                        .and_then(|resource| {
                            resource
                                .attributes
                                .iter()
                                .find(|attribute| attribute.key == "service.name")
                        })
                        .and_then(|attribute| text(attribute.value.as_ref()?.value.as_ref()?))
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            spans.push((service.clone(), span));
                        }
                    }
                }
                store.0.lock().unwrap().extend(spans);
                loop {
                    let open = *gate.borrow_and_update();
                    if open || gate.changed().await.is_err() {
                        break;
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), received)
}

fn text(value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::StringValue(text) => Some(text.clone()),
        _ => None,
    }
}

/// A span's attribute as JSON (string, integer, bool or an array of those).
fn attribute(span: &Span, key: &str) -> Value {
    fn json_of(value: &AnyValue) -> Value {
        match value {
            AnyValue::StringValue(text) => json!(text),
            AnyValue::IntValue(number) => json!(number),
            AnyValue::BoolValue(flag) => json!(flag),
            AnyValue::DoubleValue(number) => json!(number),
            AnyValue::ArrayValue(array) => Value::Array(
                array
                    .values
                    .iter()
                    .filter_map(|value| value.value.as_ref().map(json_of))
                    .collect(),
            ),
            _ => Value::Null,
        }
    }
    span.attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref()?.value.as_ref())
        .map_or(Value::Null, json_of)
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn spans_reach_a_real_otlp_receiver_with_genai_attributes_and_parent_links() {
    let gateway = Gateway::start().await;
    let key_id = gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    // The mock fails the first request for this upstream model with a 500: one retry.
    gateway
        .add_model("traced", vec![("openai-mock", "mock-fail-first-1-500", 0)])
        .await;
    let token = gateway.add_token("tok-otel", |_| {}).await;
    let (collector, received) = start_receiver().await;
    let node = gateway
        .start_node_with(
            "traced",
            &[
                ("AXONGATE_OTEL_ENDPOINT", collector.as_str()),
                ("AXONGATE_OTEL_SERVICE_NAME", "axongate-under-test"),
            ],
            None,
        )
        .await;
    let client = http();

    // 1. A client with its own trace context, a retried upstream call.
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .header("tracestate", "vendor=abc")
        .json(&chat("traced", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let spans = received.trace(CLIENT_TRACE, 3).await;
    println!(
        "received {} spans of the client's trace: {:?}",
        spans.len(),
        spans.iter().map(|span| &span.name).collect::<Vec<_>>()
    );
    assert_eq!(spans.len(), 3, "one request span and one per attempt");
    let servers: Vec<&Span> = spans
        .iter()
        .filter(|span| span.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(servers.len(), 1);
    let request = servers[0];
    assert_eq!(request.name, "chat traced");
    assert_eq!(
        hex::encode(&request.parent_span_id),
        CLIENT_SPAN,
        "the request span is a child of the client's span"
    );
    assert_eq!(attribute(request, "gen_ai.operation.name"), "chat");
    assert_eq!(attribute(request, "gen_ai.provider.name"), "openai");
    assert_eq!(attribute(request, "gen_ai.system"), "openai");
    assert_eq!(attribute(request, "gen_ai.request.model"), "traced");
    assert_eq!(
        attribute(request, "gen_ai.response.model"),
        "mock-fail-first-1-500"
    );
    assert!(attribute(request, "gen_ai.usage.input_tokens").as_i64() > Some(0));
    assert!(attribute(request, "gen_ai.usage.output_tokens").as_i64() > Some(0));
    assert_eq!(
        attribute(request, "gen_ai.response.finish_reasons"),
        json!(["stop"])
    );
    assert!(attribute(request, "gen_ai.response.id").is_string());
    assert_eq!(attribute(request, "http.response.status_code"), 200);
    assert_eq!(attribute(request, "axongate.request.id"), request_id);
    assert_eq!(attribute(request, "axongate.token.id"), "tok-otel");
    assert_eq!(attribute(request, "axongate.outcome"), "success");
    assert_ne!(
        request.status.as_ref().map(|status| status.code),
        Some(StatusCode::Error as i32)
    );

    let mut attempts: Vec<&Span> = spans
        .iter()
        .filter(|span| span.kind == SpanKind::Client as i32)
        .collect();
    attempts.sort_by_key(|span| attribute(span, "axongate.attempt").as_i64());
    assert_eq!(attempts.len(), 2, "one span per upstream attempt");
    for (number, attempt) in attempts.iter().enumerate() {
        assert_eq!(
            attempt.parent_span_id, request.span_id,
            "an attempt is a child of the request span"
        );
        assert_eq!(attempt.name, "chat mock-fail-first-1-500");
        assert_eq!(attribute(attempt, "axongate.attempt"), json!(number + 1));
        assert_eq!(attribute(attempt, "gen_ai.provider.name"), "openai");
        assert_eq!(
            attribute(attempt, "gen_ai.request.model"),
            "mock-fail-first-1-500"
        );
        assert_eq!(attribute(attempt, "axongate.provider.id"), "openai-mock");
        assert_eq!(attribute(attempt, "axongate.provider_key.id"), key_id);
        assert_eq!(attribute(attempt, "server.address"), "127.0.0.1");
        assert_eq!(
            attribute(attempt, "server.port"),
            json!(gateway.mock.local_addr().port())
        );
    }
    assert_eq!(attribute(attempts[0], "http.response.status_code"), 500);
    assert_eq!(
        attribute(attempts[0], "axongate.outcome"),
        "retryable_error"
    );
    assert_eq!(
        attribute(attempts[0], "error.type"),
        "upstream_server_error"
    );
    assert_eq!(
        attempts[0].status.as_ref().map(|status| status.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(attribute(attempts[1], "http.response.status_code"), 200);
    assert_eq!(attribute(attempts[1], "axongate.outcome"), "success");
    assert!(attribute(attempts[1], "error.type").is_null());

    // What the upstream received: each attempt's own span id in `traceparent`, the client's
    // `tracestate` as sent.
    let upstream: Vec<_> = gateway
        .mock
        .requests()
        .into_iter()
        .filter(|recorded| recorded.model() == Some("mock-fail-first-1-500"))
        .collect();
    assert_eq!(upstream.len(), 2);
    for (recorded, attempt) in upstream.iter().zip(&attempts) {
        assert_eq!(
            recorded.header("traceparent"),
            Some(format!("00-{CLIENT_TRACE}-{}-01", hex::encode(&attempt.span_id)).as_str())
        );
        assert_eq!(recorded.header("tracestate"), Some("vendor=abc"));
    }

    // No secret in any span.
    let everything = format!("{:?}", received.spans());
    assert!(!everything.contains(&token), "the client's token");
    assert!(
        !everything.contains(PROVIDER_SECRET_OPENAI),
        "the provider key"
    );
    assert!(
        received
            .spans()
            .iter()
            .all(|(service, _)| service == "axongate-under-test")
    );

    // 2. A client without trace context, streamed: ingress starts the trace.
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("traced", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let streamed_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(response.text().await.unwrap().contains("[DONE]"));
    let own = wait_until(liveness(), "the streamed request's span", || async {
        received
            .spans()
            .into_iter()
            .map(|(_, span)| span)
            .find(|span| {
                span.kind == SpanKind::Server as i32
                    && attribute(span, "axongate.request.id") == streamed_id.as_str()
            })
    })
    .await;
    assert!(own.parent_span_id.is_empty(), "a root span");
    assert_eq!(
        attribute(&own, "gen_ai.response.finish_reasons"),
        json!(["stop"])
    );
    let own_trace = hex::encode(&own.trace_id);
    let own_spans = received.trace(&own_trace, 2).await;
    assert_eq!(own_spans.len(), 2, "the request span and one attempt");

    // 3. The trace id in the request events and the ClickHouse rows.
    let events = wait_until(liveness(), "both request events", || async {
        let events = gateway.request_events().await;
        (events.len() >= 2).then_some(events)
    })
    .await;
    let trace_of = |id: &str| {
        events.iter().find_map(|event| {
            let RequestEvent::Finished(finished) = &event.body;
            (finished.request_id == id).then(|| finished.trace_id.clone())
        })
    };
    assert_eq!(trace_of(&request_id), Some(Some(CLIENT_TRACE.to_owned())));
    assert_eq!(trace_of(&streamed_id), Some(Some(own_trace.clone())));
    let rows = wait_until(liveness(), "the ClickHouse rows", || async {
        let text = clickhouse(
            &client,
            &format!(
                "SELECT request_id, trace_id FROM {}.requests ORDER BY request_id FORMAT TabSeparated",
                gateway.clickhouse_database
            ),
        )
        .await;
        (text.lines().count() >= 2).then_some(text)
    })
    .await;
    assert!(
        rows.contains(&format!("{request_id}\t{CLIENT_TRACE}")),
        "{rows}"
    );
    assert!(
        rows.contains(&format!("{streamed_id}\t{own_trace}")),
        "{rows}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collector_that_is_down_or_hangs_changes_nothing_for_clients() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("traced", vec![("openai-mock", "gpt-mock", 0)])
        .await;
    let token = gateway.add_token("tok-otel", |_| {}).await;
    // Nothing listens on the first; the second accepts connections and never answers.
    let down = format!("http://127.0.0.1:{}", free_port());
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_url = format!("http://{}", hanging.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = held.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = hanging.accept().await {
            holder.lock().unwrap().push(socket);
        }
    });
    let client = http();
    for (name, collector) in [("down", &down), ("hanging", &hanging_url)] {
        let node = gateway
            .start_node_with(
                name,
                &[
                    ("AXONGATE_OTEL_ENDPOINT", collector.as_str()),
                    ("AXONGATE_OTEL_EXPORT_TIMEOUT_MS", "300"),
                ],
                None,
            )
            .await;
        for stream in [false, true, false, true, false] {
            let response = client
                .post(format!("{}/v1/chat/completions", node.base))
                .bearer_auth(&token)
                .json(&chat("traced", stream))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{name}");
            assert!(!response.text().await.unwrap().is_empty());
        }
        // The spans were dropped, and counted.
        let metrics = format!("{}/metrics", node.base);
        let dropped = wait_until(liveness(), "dropped spans counted", || async {
            let text = client.get(&metrics).send().await.ok()?.text().await.ok()?;
            let dropped: f64 = text
                .lines()
                .find(|line| line.starts_with("ingress_trace_spans_dropped_total"))?
                .rsplit(' ')
                .next()?
                .parse()
                .ok()?;
            (dropped >= 1.0).then_some(dropped)
        })
        .await;
        println!("{name} collector: 5 requests answered, {dropped} spans dropped");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_tracing_off_a_client_traceparent_is_forwarded_and_recorded() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("untraced", vec![("openai-mock", "gpt-untraced", 0)])
        .await;
    let token = gateway.add_token("tok-otel", |_| {}).await;
    let node = gateway.start_node("plain").await;
    let client = http();
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let send = |traceparent: String| {
        client
            .post(format!("{}/v1/chat/completions", node.base))
            .bearer_auth(&token)
            .header("traceparent", traceparent)
            .json(&chat("untraced", false))
            .send()
    };
    let response = send(traceparent.clone()).await.unwrap();
    assert_eq!(response.status(), 200);
    let traced_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // Malformed (upper-case hex) and oversized: ignored, as if absent.
    let response = send(traceparent.to_uppercase()).await.unwrap();
    assert_eq!(response.status(), 200);
    let malformed_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let response = send(format!("{traceparent}-{}", "x".repeat(1000)))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let upstream: Vec<Option<String>> = gateway
        .mock
        .requests()
        .iter()
        .filter(|recorded| recorded.model() == Some("gpt-untraced"))
        .map(|recorded| recorded.header("traceparent").map(str::to_owned))
        .collect();
    assert_eq!(upstream, vec![Some(traceparent.clone()), None, None]);
    let events = wait_until(liveness(), "the request events", || async {
        let events = gateway.request_events().await;
        (events.len() >= 3).then_some(events)
    })
    .await;
    for event in &events {
        let RequestEvent::Finished(finished) = &event.body;
        let expected = (finished.request_id == traced_id).then(|| CLIENT_TRACE.to_owned());
        assert_eq!(finished.trace_id, expected, "{}", finished.request_id);
        if finished.request_id == malformed_id {
            assert!(finished.trace_id.is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_graceful_stop_exports_the_spans_still_queued() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("traced", vec![("openai-mock", "gpt-mock", 0)])
        .await;
    let token = gateway.add_token("tok-otel", |_| {}).await;
    // The collector keeps what it is sent but does not answer yet: the first export stays in
    // flight, and every span that ends meanwhile waits in ingress's queue.
    let (open, gate) = tokio::sync::watch::channel(false);
    let (collector, received) = start_gated_receiver(gate).await;
    let mut node = gateway
        .start_node_with(
            "stopping",
            &[
                ("AXONGATE_OTEL_ENDPOINT", collector.as_str()),
                // Generous: the held export must not time out on a busy machine.
                ("AXONGATE_OTEL_EXPORT_TIMEOUT_MS", "60000"),
            ],
            None,
        )
        .await;
    let client = http();
    let send = || async {
        let response = client
            .post(format!("{}/v1/chat/completions", node.base))
            .bearer_auth(&token)
            .json(&chat("traced", false))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    };
    send().await;
    wait_until(liveness(), "the first export", || async {
        (!received.spans().is_empty()).then_some(())
    })
    .await;
    // The export of the first request's spans is held: the next two requests' spans queue.
    send().await;
    send().await;
    let requests = 3;
    let before = received.spans().len();
    assert!(before <= 2, "only the first request's spans were exported");
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(node.process.0.id().to_string())
        .status()
        .unwrap();
    // Once ingress has stopped listening, it is shutting down: let the collector answer.
    let health = format!("{}/health", node.base);
    wait_until(liveness(), "ingress to stop listening", || async {
        client.get(&health).send().await.is_err().then_some(())
    })
    .await;
    open.send(true).unwrap();
    let status = wait_until(liveness(), "ingress to exit", || {
        let exited = node.process.0.try_wait().ok().flatten();
        async move { exited }
    })
    .await;
    assert!(status.success(), "{status}");
    let after = received.spans().len();
    println!("{before} spans exported before the stop, {after} by the end");
    assert_eq!(
        after,
        2 * requests,
        "a request span and an attempt span each"
    );
}
