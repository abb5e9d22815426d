//! The load driver against the in-process mock, briefly: every load shape runs, counts what it
//! should and records no errors. A few hundred requests in all; no thresholds, since this checks
//! that the harness works, not how fast anything is (that is `scripts/bench`).

#![expect(clippy::expect_used, reason = "a test's helpers fail loudly")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use loadtest::driver::http::{Connection, exchange};
use loadtest::driver::plan::{Dialect, Settings};
use loadtest::driver::request::RequestTemplate;
use loadtest::driver::run::{Endpoint, RunOptions, closed_loop, open_loop};
use loadtest::driver::streams::hold_open;
use loadtest::mock::{MockConfig, MockUpstream};

async fn mock() -> MockUpstream {
    MockUpstream::start(MockConfig::default().without_recording())
        .await
        .expect("mock upstream")
}

fn endpoint(mock: &MockUpstream, dialect: Dialect, stream: bool, model: &str) -> Endpoint {
    let url = mock.base_url();
    let template = RequestTemplate::new(
        dialect,
        stream,
        model,
        "sk-test",
        loadtest::driver::http::authority(&url),
        &Settings::default(),
    )
    .expect("template");
    Endpoint {
        addr: loadtest::driver::http::socket_address(&url).expect("address"),
        template: Arc::new(template),
    }
}

fn options(measure_ms: u64) -> RunOptions {
    RunOptions {
        warmup: Duration::from_millis(50),
        measure: Duration::from_millis(measure_ms),
        track_completions: true,
        origin: Instant::now(),
    }
}

#[tokio::test]
async fn open_loop_sends_at_the_rate_and_records_every_answer() {
    let mock = mock().await;
    let endpoint = endpoint(&mock, Dialect::Openai, false, "mock-bench");
    let outcome = open_loop(&endpoint, 500, 4, options(300)).await;
    let recorder = &outcome.recorder;
    assert_eq!(recorder.errors.len(), 0, "{:?}", recorder.errors);
    assert_eq!(recorder.ok, 150, "measured requests: 500/s for 0.3 s");
    assert_eq!(recorder.latency.count(), 150);
    assert_eq!(recorder.completions.len(), 150);
    assert!(
        recorder
            .completions
            .windows(2)
            .all(|pair| pair[0] <= pair[1])
    );
    mock.shutdown().await;
}

#[tokio::test]
async fn closed_loop_streams_record_first_byte_and_gaps() {
    let mock = mock().await;
    let endpoint = endpoint(&mock, Dialect::Anthropic, true, "mock-chunks-50");
    let outcome = closed_loop(&endpoint, 2, options(200)).await;
    let recorder = &outcome.recorder;
    assert_eq!(recorder.errors.len(), 0, "{:?}", recorder.errors);
    assert!(recorder.ok > 0);
    assert_eq!(recorder.first_byte.count(), recorder.ok);
    // 50 deltas plus start, block start/stop, message delta and stop: many gaps per stream.
    assert!(
        recorder.gaps.count() >= recorder.ok * 50,
        "{}",
        recorder.gaps.count()
    );
    assert!(outcome.throughput() > 0.0);
    mock.shutdown().await;
}

#[tokio::test]
async fn failures_are_counted_by_status() {
    let mock = mock().await;
    let endpoint = endpoint(&mock, Dialect::Openai, true, "mock-fail-503");
    let mut connection = Connection::open(endpoint.addr).await.expect("connect");
    let error = exchange(&mut connection, &endpoint.template, None)
        .await
        .expect_err("a 503");
    assert_eq!(error.to_string(), "status 503");
    let cut = endpoint_with(&mock, "mock-chunks-10-disconnect-after-3");
    let mut connection = Connection::open(cut.addr).await.expect("connect");
    assert!(
        exchange(&mut connection, &cut.template, None)
            .await
            .is_err()
    );
    mock.shutdown().await;
}

fn endpoint_with(mock: &MockUpstream, model: &str) -> Endpoint {
    endpoint(mock, Dialect::Openai, true, model)
}

#[tokio::test]
async fn held_streams_are_counted_open_and_the_servers_memory_sampled() {
    let mock = mock().await;
    let endpoint = endpoint(
        &mock,
        Dialect::Openai,
        true,
        "mock-chunks-5-chunk-delay-2000",
    );
    let outcome = hold_open(
        &endpoint,
        30,
        10,
        Duration::from_secs(60),
        Some(std::process::id()),
    )
    .await;
    assert_eq!((outcome.opened, outcome.failed), (30, 0), "{outcome:?}");
    assert!(outcome.rss_before_kb.is_some() && outcome.kb_per_stream.is_some());
    mock.shutdown().await;
}
