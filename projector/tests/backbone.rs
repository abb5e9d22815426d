//! The first end-to-end test through the real backbone: config events published with the
//! shared types are folded by the projector (a real process) into Postgres; request events
//! land as ClickHouse rows; delivering everything a second time leaves the same rows; and the
//! projector's `/ready` follows NATS going away and coming back.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a test harness fails loudly"
)]

use std::process::{Command, Stdio};

use async_nats::jetstream::{self, message::PublishMessage};
use kit::testing::{
    ChildGuard, NatsServer, env_url, free_port, fresh_postgres_database, unique_name,
    wait_http_status, wait_until,
};
use shared::config::{ConfigEvent, Deleted, Model, Protocol, Provider, Route, Timeouts};
use shared::money::{Nanos, Price};
use shared::request::{Outcome, RequestEvent, RequestFinished, Usage};
use shared::{Actor, Envelope, EventBody};

struct Env {
    nats: NatsServer,
    postgres_url: String,
    clickhouse_url: String,
    clickhouse_database: String,
    listen_port: u16,
}

impl Env {
    async fn start() -> Self {
        Self {
            nats: NatsServer::start().await,
            postgres_url: fresh_postgres_database().await,
            clickhouse_url: env_url("AXONGATE_CLICKHOUSE_URL"),
            clickhouse_database: unique_name("axg_test"),
            listen_port: free_port(),
        }
    }

    fn spawn_projector(&self) -> ChildGuard {
        let child = Command::new(env!("CARGO_BIN_EXE_projector"))
            .arg("run")
            .env("AXONGATE_NATS_URL", &self.nats.url)
            .env("AXONGATE_POSTGRES_URL", &self.postgres_url)
            .env("AXONGATE_CLICKHOUSE_URL", &self.clickhouse_url)
            .env("AXONGATE_CLICKHOUSE_DATABASE", &self.clickhouse_database)
            .env("AXONGATE_LISTEN", format!("127.0.0.1:{}", self.listen_port))
            .env("AXONGATE_BATCH_MAX_WAIT_MS", "100")
            .env("AXONGATE_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start projector");
        ChildGuard(child)
    }

    fn ready_url(&self) -> String {
        format!("http://127.0.0.1:{}/ready", self.listen_port)
    }

    async fn pg(&self) -> tokio_postgres::Client {
        let (client, connection) =
            tokio_postgres::connect(&self.postgres_url, tokio_postgres::NoTls)
                .await
                .expect("pg");
        tokio::spawn(connection);
        client
    }

    fn ch(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.clickhouse_url)
            .with_database(&self.clickhouse_database)
    }

    async fn jetstream(&self) -> jetstream::Context {
        jetstream::new(async_nats::connect(&self.nats.url).await.expect("nats"))
    }
}

async fn publish<B: EventBody>(jetstream: &jetstream::Context, envelope: &Envelope<B>) -> u64 {
    let ack = jetstream
        .send_publish(
            envelope.subject(),
            PublishMessage::build()
                .message_id(envelope.event_id.to_string())
                .payload(envelope.to_bytes().expect("encode").into()),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");
    ack.sequence
}

fn provider(id: &str, name: &str) -> ConfigEvent {
    ConfigEvent::ProviderPut(Provider {
        id: id.into(),
        name: name.into(),
        protocol: Protocol::OpenAi,
        base_url: "https://api.example.com/v1".into(),
        extra_headers: Default::default(),
        timeouts: Timeouts::default(),
        enabled: true,
        allow_private_network: false,
    })
}

fn model() -> ConfigEvent {
    ConfigEvent::ModelPut(Model {
        id: "gpt".into(),
        alias: "gpt-4.1".into(),
        enabled: true,
        routes: vec![Route {
            provider_id: "p1".into(),
            upstream_model: "gpt-4.1-2025-04-14".into(),
            key_ids: vec![],
            priority: 0,
            weight: 1,
            capabilities: Default::default(),
        }],
        price: Some(Price {
            currency: "USD".into(),
            input_per_million: Nanos(2_000_000_000),
            output_per_million: Nanos(8_000_000_000),
            cache_read_per_million: Nanos(500_000_000),
            cache_write_per_million: Nanos(0),
            version: 1,
        }),
        context_window: Some(1_000_000),
        retry: None,
        response_cache: None,
        routing: None,
    })
}

fn request(index: u64, outcome: Outcome) -> RequestEvent {
    RequestEvent::Finished(RequestFinished {
        request_id: format!("req-{index}"),
        token_id: Some("tok-1".into()),
        user_id: Some("user-1".into()),
        model_alias: "gpt-4.1".into(),
        provider_id: Some("p1".into()),
        upstream_model: Some("gpt-4.1-2025-04-14".into()),
        provider_key_id: Some("key-1".into()),
        client_protocol: shared::config::ClientProtocol::Anthropic,
        upstream_protocol: Some(Protocol::OpenAi),
        stream: index.is_multiple_of(2),
        outcome,
        error_kind: None,
        http_status: 200,
        usage: Usage {
            input_tokens: 100 * index,
            output_tokens: 10 * index,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            estimated: false,
        },
        cost: Some(shared::request::Cost {
            amount: Nanos(1_000 * i64::try_from(index).expect("small")),
            currency: "USD".into(),
            price_version: 1,
        }),
        started_at: time::OffsetDateTime::now_utc(),
        ttfb_us: Some(1_000),
        latency_us: 5_000,
        attempts: vec![],
        warnings: vec![],
        trace_id: None,
        config_seq: None,
        cache_hit: None,
        routing: None,
        team_id: None,
    })
}

#[derive(Debug, PartialEq, clickhouse::Row, serde::Deserialize)]
struct Totals {
    rows: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost_nanos: i64,
}

async fn ch_totals(env: &Env) -> Option<Totals> {
    env.ch()
        .query("SELECT count() AS rows, sum(input_tokens), sum(output_tokens), sum(cost_nanos) FROM requests")
        .fetch_one::<Totals>()
        .await
        .ok()
}

async fn pg_snapshot(env: &Env) -> Vec<(String, String, serde_json::Value, i64)> {
    env.pg()
        .await
        .query(
            "SELECT entity, id, data, subject_sequence FROM config_entities ORDER BY entity, id",
            &[],
        )
        .await
        .expect("query")
        .into_iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect()
}

async fn audit_count(env: &Env) -> i64 {
    env.pg()
        .await
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .expect("audit")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_folded_once_even_when_delivered_twice() {
    let env = Env::start().await;
    let mut projector = env.spawn_projector();
    wait_http_status(&env.ready_url(), true, kit::testing::liveness()).await;
    let jetstream = env.jetstream().await;

    let actor = Actor {
        user_id: "user-1".into(),
        username: "alice".into(),
    };
    let config_events = vec![
        Envelope::by_actor(provider("p1", "first name"), actor.clone()),
        Envelope::by_actor(provider("p2", "to be deleted"), actor.clone()),
        Envelope::by_actor(model(), actor.clone()),
        Envelope::by_actor(provider("p1", "renamed"), actor.clone()),
        Envelope::by_actor(
            ConfigEvent::ProviderDeleted(Deleted { id: "p2".into() }),
            actor.clone(),
        ),
    ];
    let mut last_config_sequence = 0;
    for event in &config_events {
        last_config_sequence = publish(&jetstream, event).await;
    }
    let request_events: Vec<_> = (1..=3)
        .map(|index| {
            Envelope::by_node(
                request(
                    index,
                    if index == 3 {
                        Outcome::Error
                    } else {
                        Outcome::Success
                    },
                ),
                "ingress-test",
            )
        })
        .collect();
    // The first alone, the other two in one batch message (ingress's group commit).
    publish(&jetstream, &request_events[0]).await;
    let batch: Vec<Vec<u8>> = request_events[1..]
        .iter()
        .map(|event| event.to_bytes().expect("encode"))
        .collect();
    jetstream
        .send_publish(
            shared::streams::REQUESTS_BATCH_SUBJECT,
            PublishMessage::build()
                .message_id(format!("{}+2", request_events[1].event_id))
                .payload(shared::envelope::batch_payload(batch.iter().map(Vec::as_slice)).into()),
        )
        .await
        .expect("publish")
        .await
        .expect("ack");

    // Folded: p1 renamed, p2 gone, the model present; three request rows with exact totals.
    let snapshot = wait_until(kit::testing::liveness(), "config views", || async {
        let snapshot = pg_snapshot(&env).await;
        (snapshot.len() == 2 && snapshot.iter().any(|row| row.2["name"] == "renamed"))
            .then_some(snapshot)
    })
    .await;
    assert_eq!(snapshot[0].0, "model");
    assert_eq!(snapshot[0].2["alias"], "gpt-4.1");
    assert_eq!(
        snapshot[0].2["price"]["input_per_million"],
        2_000_000_000_i64
    );
    assert_eq!(snapshot[1].1, "p1");
    assert_eq!(
        snapshot[1].3,
        i64::try_from(last_config_sequence - 1).expect("seq"),
        "version is the subject sequence"
    );
    let expected = Totals {
        rows: 3,
        input_tokens: 600,
        output_tokens: 60,
        cost_nanos: 6_000,
    };
    let totals = wait_until(kit::testing::liveness(), "request rows", || async {
        ch_totals(&env).await.filter(|totals| totals.rows == 3)
    })
    .await;
    assert_eq!(totals, expected);
    // Spend counts every event of the batch too (the error one included: it has a cost here).
    let spend = wait_until(kit::testing::liveness(), "spend folded", || async {
        let row = env
            .pg()
            .await
            .query_one(
                "SELECT coalesce(sum(cost_nanos), 0)::bigint, coalesce(sum(requests), 0)::bigint FROM token_spend_daily WHERE token_id = 'tok-1'",
                &[],
            )
            .await
            .ok()?;
        let (cost, requests): (i64, i64) = (row.get(0), row.get(1));
        (requests >= 3).then_some((cost, requests))
    })
    .await;
    assert_eq!(spend, (6_000, 3));
    assert_eq!(
        audit_count(&env).await,
        5,
        "one audit row per config change"
    );

    // A retried publish of the same events is dropped by the stream (Nats-Msg-Id).
    for event in &config_events {
        publish(&jetstream, event).await;
    }
    let mut stream = jetstream
        .get_stream(shared::streams::CONFIG_STREAM)
        .await
        .expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 5);

    // Force a full redelivery: kill the projector, delete its durable consumers (they restart
    // from the first message), start it again. Everything arrives a second time.
    projector.kill();
    for (stream_name, consumer) in [
        (
            shared::streams::CONFIG_STREAM,
            projector::consumer::CONFIG_CONSUMER,
        ),
        (
            shared::streams::REQUESTS_STREAM,
            projector::consumer::REQUESTS_CONSUMER,
        ),
    ] {
        jetstream
            .get_stream(stream_name)
            .await
            .expect("stream")
            .delete_consumer(consumer)
            .await
            .expect("delete consumer");
    }
    let _projector = env.spawn_projector();
    wait_http_status(&env.ready_url(), true, kit::testing::liveness()).await;
    // Wait until both consumers have acknowledged everything again, then compare.
    for (stream_name, consumer_name) in [
        (
            shared::streams::CONFIG_STREAM,
            projector::consumer::CONFIG_CONSUMER,
        ),
        (
            shared::streams::REQUESTS_STREAM,
            projector::consumer::REQUESTS_CONSUMER,
        ),
    ] {
        let stream = jetstream.get_stream(stream_name).await.expect("stream");
        wait_until(
            kit::testing::liveness(),
            "redelivery to be acknowledged",
            || {
                let stream = stream.clone();
                async move {
                    let mut consumer: jetstream::consumer::PullConsumer =
                        stream.get_consumer(consumer_name).await.ok()?;
                    let info = consumer.info().await.ok()?;
                    (info.num_pending == 0
                        && info.num_ack_pending == 0
                        && info.delivered.stream_sequence > 0)
                        .then_some(())
                }
            },
        )
        .await;
    }
    assert_eq!(
        pg_snapshot(&env).await,
        snapshot,
        "config views unchanged by redelivery"
    );
    assert_eq!(
        ch_totals(&env).await,
        Some(expected),
        "no request counted twice"
    );
    assert_eq!(audit_count(&env).await, 5, "no audit row doubled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_nats() {
    let mut env = Env::start().await;
    let _projector = env.spawn_projector();
    wait_http_status(&env.ready_url(), true, kit::testing::liveness()).await;
    env.nats.stop();
    wait_http_status(&env.ready_url(), false, kit::testing::liveness()).await;
    env.nats.restart().await;
    wait_http_status(&env.ready_url(), true, kit::testing::liveness()).await;
}

#[test]
fn bad_config_is_one_clear_line_and_nonzero_exit() {
    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .arg("migrate")
        .env_clear()
        .env("AXONGATE_NATS_URL", "http://wrong-scheme")
        .env("AXONGATE_POSTGRES_URL", "postgres://x@127.0.0.1:1/x")
        .env("AXONGATE_CLICKHOUSE_URL", "http://127.0.0.1:1")
        .output()
        .expect("run projector");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nats_url must be a nats or tls URL"),
        "{stderr}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_projector"))
        .arg("migrate")
        .env_clear()
        .env("AXONGATE_NATS_URL", "nats://127.0.0.1:1")
        .env(
            "AXONGATE_POSTGRES_URL",
            "postgres://x:hunter2@127.0.0.1:1/x",
        )
        .env("AXONGATE_CLICKHOUSE_URL", "http://127.0.0.1:1")
        .output()
        .expect("run projector");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not answer"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "no password in errors: {stderr}"
    );
}

/// The writers themselves ignore a batch they have already applied, whatever delivered it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_apply_a_repeated_batch_once() {
    let env = Env::start().await;
    let config = projector::ProjectorConfig {
        nats_url: env.nats.url.clone(),
        postgres_url: env.postgres_url.clone(),
        clickhouse_url: env.clickhouse_url.clone(),
        clickhouse_database: env.clickhouse_database.clone(),
        listen: "127.0.0.1:0".into(),
        node_id: "test".into(),
        stream_replicas: 1,
        requests_max_age_days: 1,
        batch_size: 100,
        batch_max_wait_ms: 100,
    };
    let stores = projector::store::Stores::connect(&config)
        .await
        .expect("stores");
    stores.migrate().await.expect("migrate");
    let actor = Actor {
        user_id: "u".into(),
        username: "u".into(),
    };
    let items = || {
        vec![
            projector::store::pg::Item::Event {
                sequence: 1,
                envelope: Box::new(Envelope::by_actor(provider("p1", "one"), actor.clone())),
            },
            projector::store::pg::Item::Event {
                sequence: 2,
                envelope: Box::new(Envelope::by_actor(model(), actor.clone())),
            },
        ]
    };
    let first = stores.pg.apply_config_batch(&items()).await.expect("apply");
    let second = stores
        .pg
        .apply_config_batch(&items())
        .await
        .expect("apply again");
    assert_eq!((first.applied, second.applied, second.skipped), (2, 0, 2));
    assert_eq!(pg_snapshot(&env).await.len(), 2);
    assert_eq!(audit_count(&env).await, 2);

    let envelopes: Vec<_> = (1..=3)
        .map(|index| Envelope::by_node(request(index, Outcome::Success), "n"))
        .collect();
    let rows: Vec<_> = envelopes
        .iter()
        .enumerate()
        .map(|(index, envelope)| {
            projector::fold::RequestRow::from_event(index as u64 + 1, envelope)
        })
        .collect();
    assert_eq!(stores.ch.insert_requests(&rows).await.expect("insert"), 3);
    assert_eq!(
        stores
            .ch
            .insert_requests(&rows)
            .await
            .expect("insert again"),
        0
    );
    stores.ch.load_high_water_mark().await.expect("reload");
    assert_eq!(
        stores
            .ch
            .insert_requests(&rows)
            .await
            .expect("after a restart"),
        0
    );
    assert_eq!(ch_totals(&env).await.map(|totals| totals.rows), Some(3));
}

/// `projector rebuild config` gives views equal to the live ones, and `projector replay`
/// prints a range of events as JSON lines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_equals_live_and_replay_prints_a_range() {
    let env = Env::start().await;
    let _projector = env.spawn_projector();
    wait_http_status(&env.ready_url(), true, kit::testing::liveness()).await;
    let jetstream = env.jetstream().await;
    let actor = Actor {
        user_id: "u".into(),
        username: "alice".into(),
    };
    for event in [
        provider("p1", "one"),
        provider("p2", "two"),
        model(),
        provider("p1", "one, renamed"),
        ConfigEvent::ProviderDeleted(Deleted { id: "p2".into() }),
    ] {
        publish(&jetstream, &Envelope::by_actor(event, actor.clone())).await;
    }
    let live = wait_until(kit::testing::liveness(), "live views", || async {
        let snapshot = pg_snapshot(&env).await;
        (snapshot.len() == 2 && snapshot.iter().any(|row| row.2["name"] == "one, renamed"))
            .then_some(snapshot)
    })
    .await;
    let live_audit: Vec<(i64, Option<serde_json::Value>, Option<serde_json::Value>)> = env
        .pg()
        .await
        .query(
            "SELECT sequence, before, after FROM audit_log ORDER BY sequence",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();

    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_projector"))
            .args(args)
            .env("AXONGATE_NATS_URL", &env.nats.url)
            .env("AXONGATE_POSTGRES_URL", &env.postgres_url)
            .env("AXONGATE_CLICKHOUSE_URL", &env.clickhouse_url)
            .env("AXONGATE_CLICKHOUSE_DATABASE", &env.clickhouse_database)
            .env("AXONGATE_LOG", "warn")
            .output()
            .expect("run projector")
    };
    let output = run(&["rebuild", "config"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("applying 5/5") && stderr.contains("5 applied"),
        "progress output: {stderr}"
    );
    // Piped, there is no terminal to redraw on: summary lines only, no `\r` progress line.
    assert!(
        !stderr.contains('\r'),
        "no progress lines when piped: {stderr:?}"
    );
    assert_eq!(
        pg_snapshot(&env).await,
        live,
        "rebuilt views equal the live ones"
    );
    let rebuilt_audit: Vec<(i64, Option<serde_json::Value>, Option<serde_json::Value>)> = env
        .pg()
        .await
        .query(
            "SELECT sequence, before, after FROM audit_log ORDER BY sequence",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    assert_eq!(rebuilt_audit, live_audit, "and so is the audit view");

    let output = run(&[
        "replay",
        "--stream",
        "AXONGATE_CONFIG",
        "--from",
        "2",
        "--to",
        "3",
    ]);
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["sequence"], 2);
    assert_eq!(lines[1]["event"]["type"], "model.put");
}
