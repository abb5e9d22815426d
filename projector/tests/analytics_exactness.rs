//! Request events into ClickHouse exactly once: through a projector killed mid-batch, through
//! ClickHouse going away (the consumer stops acknowledging and catches up), and through
//! `projector rebuild analytics`.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a test harness fails loudly"
)]

use std::process::{Command, Stdio};

use async_nats::jetstream::{self, message::PublishMessage};
use kit::testing::{
    ChildGuard, ClickHouseServer, NatsServer, free_port, fresh_postgres_database, unique_name,
    wait_http_status, wait_until,
};
use shared::Envelope;
use shared::money::Nanos;
use shared::request::{Cost, Outcome, RequestEvent, RequestFinished, Usage};

struct Env {
    nats: NatsServer,
    clickhouse: ClickHouseServer,
    postgres_url: String,
    database: String,
    port: u16,
}

impl Env {
    async fn start() -> Self {
        Self {
            nats: NatsServer::start().await,
            clickhouse: ClickHouseServer::start().await,
            postgres_url: fresh_postgres_database().await,
            database: unique_name("axg_exact"),
            port: free_port(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_projector"));
        command
            .args(args)
            .env("AXONGATE_NATS_URL", &self.nats.url)
            .env("AXONGATE_POSTGRES_URL", &self.postgres_url)
            .env("AXONGATE_CLICKHOUSE_URL", &self.clickhouse.url)
            .env("AXONGATE_CLICKHOUSE_DATABASE", &self.database)
            .env("AXONGATE_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("AXONGATE_BATCH_SIZE", "200")
            .env("AXONGATE_BATCH_MAX_WAIT_MS", "50")
            .env("AXONGATE_LOG", "warn")
            .stdout(Stdio::null());
        command
    }

    async fn spawn(&self) -> ChildGuard {
        let guard = ChildGuard(self.command(&["run"]).spawn().expect("projector"));
        wait_http_status(
            &format!("http://127.0.0.1:{}/ready", self.port),
            true,
            kit::testing::liveness(),
        )
        .await;
        guard
    }

    async fn totals(&self) -> Option<(u64, u64, i64)> {
        clickhouse::Client::default()
            .with_url(&self.clickhouse.url)
            .with_database(&self.database)
            .query("SELECT count(), sum(input_tokens), sum(cost_nanos) FROM requests")
            .fetch_one::<(u64, u64, i64)>()
            .await
            .ok()
    }
}

fn event(index: u64) -> Envelope<RequestEvent> {
    Envelope::by_node(
        RequestEvent::Finished(RequestFinished {
            request_id: format!("r{index}"),
            token_id: Some(format!("tok-{}", index % 7)),
            user_id: None,
            team_id: None,
            model_alias: "m".into(),
            provider_id: Some("p".into()),
            upstream_model: Some("u".into()),
            provider_key_id: Some("k".into()),
            client_protocol: shared::config::ClientProtocol::OpenaiChat,
            upstream_protocol: Some(shared::config::Protocol::OpenAi),
            stream: false,
            outcome: Outcome::Success,
            error_kind: None,
            http_status: 200,
            usage: Usage {
                input_tokens: index,
                output_tokens: 1,
                ..Default::default()
            },
            cost: Some(Cost {
                amount: Nanos(i64::try_from(index).unwrap()),
                currency: "USD".into(),
                price_version: 1,
            }),
            started_at: time::OffsetDateTime::now_utc(),
            ttfb_us: None,
            latency_us: 1,
            attempts: vec![],
            warnings: vec![],
            trace_id: None,
            config_seq: None,
            cache_hit: None,
            routing: None,
        }),
        "test",
    )
}

/// Publishes the events of `range` as ingress does under load: some alone, most packed into
/// batch messages (group commit) of varying sizes. Returns the stream's last sequence.
async fn publish_range(jetstream: &jetstream::Context, range: std::ops::Range<u64>) -> u64 {
    const GROUPS: [u64; 5] = [1, 3, 16, 1, 64];
    let mut acks = Vec::new();
    let mut last = 0;
    let mut next = range.start;
    let mut group = 0;
    while next < range.end {
        let size = GROUPS[group % GROUPS.len()].min(range.end - next);
        group += 1;
        let envelopes: Vec<Envelope<RequestEvent>> = (next..next + size).map(event).collect();
        next += size;
        let (subject, message_id, payload) = if let [envelope] = envelopes.as_slice() {
            (
                envelope.subject(),
                envelope.event_id.to_string(),
                envelope.to_bytes().unwrap(),
            )
        } else {
            let bytes: Vec<Vec<u8>> = envelopes.iter().map(|e| e.to_bytes().unwrap()).collect();
            (
                shared::streams::REQUESTS_BATCH_SUBJECT.to_owned(),
                format!("{}+{size}", envelopes[0].event_id),
                shared::envelope::batch_payload(bytes.iter().map(Vec::as_slice)),
            )
        };
        let ack = jetstream
            .send_publish(
                subject,
                PublishMessage::build()
                    .message_id(message_id)
                    .payload(payload.into()),
            )
            .await
            .expect("publish");
        acks.push(ack);
        if acks.len() >= 100 {
            for ack in acks.drain(..) {
                last = last.max(ack.await.expect("ack").sequence);
            }
        }
    }
    for ack in acks {
        last = last.max(ack.await.expect("ack").sequence);
    }
    last
}

fn expected(count: u64) -> (u64, u64, i64) {
    let sum: u64 = (0..count).sum();
    (count, sum, i64::try_from(sum).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_batch_and_restarted_counts_each_request_once() {
    let env = Env::start().await;
    let mut projector = env.spawn().await;
    let jetstream = jetstream::new(async_nats::connect(&env.nats.url).await.unwrap());
    let total = 6_000;
    let last_sequence = publish_range(&jetstream, 0..total).await;
    // Kill it while it is still writing.
    wait_until(kit::testing::liveness(), "some rows", || async {
        env.totals().await.filter(|totals| totals.0 > 0).map(|_| ())
    })
    .await;
    projector.kill();
    let partial = env.totals().await.unwrap().0;
    eprintln!("killed with {partial} of {total} rows written");
    let _projector = env.spawn().await;
    let totals = wait_until(kit::testing::liveness(), "all rows", || async {
        env.totals().await.filter(|totals| totals.0 >= total)
    })
    .await;
    assert_eq!(totals, expected(total));
    // And a full redelivery (consumer deleted) adds nothing.
    jetstream
        .get_stream(shared::streams::REQUESTS_STREAM)
        .await
        .unwrap()
        .delete_consumer(projector::consumer::REQUESTS_CONSUMER)
        .await
        .unwrap();
    drop(_projector);
    let _projector = env.spawn().await;
    let stream = jetstream
        .get_stream(shared::streams::REQUESTS_STREAM)
        .await
        .unwrap();
    wait_until(kit::testing::liveness(), "redelivery acknowledged", || {
        let stream = stream.clone();
        async move {
            let mut consumer: jetstream::consumer::PullConsumer = stream
                .get_consumer(projector::consumer::REQUESTS_CONSUMER)
                .await
                .ok()?;
            let info = consumer.info().await.ok()?;
            (info.num_pending == 0
                && info.num_ack_pending == 0
                && info.delivered.stream_sequence >= last_sequence)
                .then_some(())
        }
    })
    .await;
    assert_eq!(env.totals().await.unwrap(), expected(total));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_outage_waits_and_catches_up_then_rebuild_matches() {
    let mut env = Env::start().await;
    let projector = env.spawn().await;
    let jetstream = jetstream::new(async_nats::connect(&env.nats.url).await.unwrap());
    let first_part = publish_range(&jetstream, 0..500).await;
    wait_until(kit::testing::liveness(), "first rows", || async {
        env.totals().await.filter(|totals| totals.0 == 500)
    })
    .await;
    env.clickhouse.stop();
    publish_range(&jetstream, 500..1_500).await;
    // While ClickHouse is down nothing is acknowledged past what was written.
    let stream = jetstream
        .get_stream(shared::streams::REQUESTS_STREAM)
        .await
        .unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_consumer(projector::consumer::REQUESTS_CONSUMER)
        .await
        .unwrap();
    wait_until(
        kit::testing::liveness(),
        "the backlog to be visible",
        || async {
            let mut consumer = consumer.clone();
            let info = consumer.info().await.ok()?;
            (info.ack_floor.stream_sequence <= first_part
                && info.delivered.stream_sequence > first_part)
                .then_some(())
        },
    )
    .await;
    env.clickhouse.restart().await;
    let totals = wait_until(kit::testing::liveness(), "catch-up", || async {
        env.totals().await.filter(|totals| totals.0 >= 1_500)
    })
    .await;
    assert_eq!(totals, expected(1_500));
    drop(projector);

    // Rebuild from the stream gives the same totals, with progress on stderr.
    let output = env
        .command(&["rebuild", "analytics"])
        .stderr(Stdio::piped())
        .output()
        .expect("rebuild");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("rows written"), "progress output: {stderr}");
    assert!(
        !stderr.contains('\r'),
        "no progress lines when piped: {stderr:?}"
    );
    assert_eq!(env.totals().await.unwrap(), expected(1_500));
}
