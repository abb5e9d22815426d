//! A gateway under test: a private NATS, a fresh Postgres database with the projector's
//! migrations, the mock upstream, and ingress processes started from the real binary.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a test harness fails loudly"
)]

use std::process::{Command, Stdio};

use async_nats::jetstream::{self, message::PublishMessage};
use kit::testing::{
    ChildGuard, NatsServer, env_url, free_port, fresh_postgres_database, unique_name,
    wait_http_status,
};
use loadtest::mock::{MockConfig, MockUpstream};
use shared::config::{
    ConfigEvent, Model, Protocol, Provider, ProviderKey, Route, Timeouts, UserToken,
};
use shared::money::{Nanos, Price};
use shared::secret::{MasterKeys, SecretString};
use shared::token::{PlainToken, TokenHasher};
use shared::{Actor, Envelope, EventBody};

pub const PEPPER: &str = "test-pepper-of-at-least-thirty-two-characters";
pub const PROVIDER_SECRET_OPENAI: &str = "sk-openai-provider-secret-1111";
pub const PROVIDER_SECRET_ANTHROPIC: &str = "sk-ant-provider-secret-2222";
pub const PROVIDER_SECRET_GEMINI: &str = "AIzaSy-provider-secret-3333";

pub struct Gateway {
    pub nats: NatsServer,
    pub postgres_url: String,
    /// The projector's ClickHouse database (request rows).
    pub clickhouse_database: String,
    pub mock: MockUpstream,
    pub master_keys_text: String,
    master_keys: MasterKeys,
    hasher: TokenHasher,
    pub jetstream: jetstream::Context,
    _projector: tokio::task::JoinHandle<()>,
    pub spool_root: std::path::PathBuf,
}

/// The ingress binary under test: `AXONGATE_TEST_INGRESS_BIN` when set (a copy taken right
/// after the build, since worktrees sharing one target directory overwrite `debug/ingress`),
/// else the one cargo built for this test.
pub fn ingress_binary() -> String {
    std::env::var("AXONGATE_TEST_INGRESS_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_ingress").to_owned())
}

pub struct Node {
    pub process: ChildGuard,
    pub port: u16,
    pub base: String,
    pub spool_dir: std::path::PathBuf,
}

impl Gateway {
    /// Starts NATS, a fresh database (migrated by a real projector), and the mock upstream.
    pub async fn start() -> Self {
        let nats = NatsServer::start().await;
        let postgres_url = fresh_postgres_database().await;
        let clickhouse_database = unique_name("axg_ingress");
        let projector_config = projector::ProjectorConfig {
            nats_url: nats.url.clone(),
            postgres_url: postgres_url.clone(),
            clickhouse_url: env_url("AXONGATE_CLICKHOUSE_URL"),
            clickhouse_database: clickhouse_database.clone(),
            listen: format!("127.0.0.1:{}", free_port()),
            node_id: "projector-test".into(),
            stream_replicas: 1,
            requests_max_age_days: 1,
            batch_size: 100,
            batch_max_wait_ms: 100,
        };
        let ready = format!("http://{}/ready", projector_config.listen);
        let projector = tokio::spawn(async move {
            if let Err(error) = projector::run(projector_config).await {
                panic!("projector stopped: {error:#}");
            }
        });
        wait_http_status(&ready, true, kit::testing::liveness()).await;
        let mock = MockUpstream::start(MockConfig::default())
            .await
            .expect("mock upstream");
        let master_keys_text = MasterKeys::generate_entry(1);
        let master_keys = MasterKeys::parse(&master_keys_text).expect("keys");
        let jetstream = jetstream::new(async_nats::connect(&nats.url).await.expect("nats"));
        Self {
            nats,
            postgres_url,
            clickhouse_database,
            mock,
            master_keys_text,
            master_keys,
            hasher: TokenHasher::new(PEPPER.as_bytes()).expect("pepper"),
            jetstream,
            _projector: projector,
            spool_root: std::env::temp_dir().join(unique_name("axg-spool")),
        }
    }

    /// Starts an ingress process and waits until it is ready.
    pub async fn start_node(&self, name: &str) -> Node {
        self.start_node_with(name, &[], None).await
    }

    /// Starts an ingress process with extra environment, its logs (stderr) in `log` if given.
    pub async fn start_node_with(
        &self,
        name: &str,
        extra_env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Node {
        let node = self.spawn_node(name, extra_env, log);
        wait_http_status(
            &format!("{}/ready", node.base),
            true,
            kit::testing::liveness(),
        )
        .await;
        node
    }

    /// Starts an ingress process serving HTTPS with `cert` (and extra environment, its logs in
    /// `log` if given) and waits until it is ready over HTTPS; `Node::base` is `https://…`.
    pub async fn start_node_https(
        &self,
        name: &str,
        cert: &kit::testing::SelfSignedCert,
        extra_env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Node {
        let (cert_path, key_path) = (
            cert.cert_path.to_string_lossy(),
            cert.key_path.to_string_lossy(),
        );
        let mut env = vec![
            ("AXONGATE_TLS_CERT_PATH", cert_path.as_ref()),
            ("AXONGATE_TLS_KEY_PATH", key_path.as_ref()),
        ];
        env.extend_from_slice(extra_env);
        let mut node = self.spawn_node(name, &env, log);
        node.base = format!("https://127.0.0.1:{}", node.port);
        let client = https_client(&cert.cert_pem);
        let ready = format!("{}/ready", node.base);
        kit::testing::wait_until(
            kit::testing::liveness(),
            "ingress /ready over HTTPS",
            || {
                let (client, ready) = (&client, &ready);
                async move {
                    let response = client.get(ready).send().await.ok()?;
                    response.status().is_success().then_some(())
                }
            },
        )
        .await;
        node
    }

    /// Starts an ingress process without waiting for it; `Node::base` is `http://…`.
    fn spawn_node(
        &self,
        name: &str,
        extra_env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> Node {
        let port = free_port();
        let spool_dir = self.spool_root.join(name);
        let mut command = Command::new(ingress_binary());
        command
            .env("AXONGATE_NATS_URL", &self.nats.url)
            .env("AXONGATE_POSTGRES_URL", &self.postgres_url)
            .env("AXONGATE_LISTEN", format!("127.0.0.1:{port}"))
            .env("AXONGATE_NODE_ID", name)
            .env("AXONGATE_MASTER_KEYS", &self.master_keys_text)
            .env("AXONGATE_TOKEN_PEPPER", PEPPER)
            .env("AXONGATE_SPOOL_DIR", &spool_dir)
            .env(
                "AXONGATE_LOG",
                std::env::var("AXONGATE_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null());
        for (key, value) in extra_env {
            command.env(key, value);
        }
        if let Some(log) = log {
            command.stderr(std::fs::File::create(log).expect("log file"));
        }
        let child = command.spawn().expect("start ingress");
        Node {
            process: ChildGuard(child),
            port,
            base: format!("http://127.0.0.1:{port}"),
            spool_dir,
        }
    }

    pub async fn publish_config(&self, event: ConfigEvent) -> u64 {
        publish(&self.jetstream, &Envelope::by_actor(event, Actor::system())).await
    }

    /// A provider pointing at the mock, with one key.
    pub async fn add_provider(&self, id: &str, protocol: Protocol) -> String {
        self.publish_config(ConfigEvent::ProviderPut(Provider {
            id: id.into(),
            name: id.into(),
            protocol,
            base_url: if protocol == Protocol::Gemini {
                format!("{}/v1beta", self.mock.base_url())
            } else {
                format!("{}/v1", self.mock.base_url())
            },
            extra_headers: Default::default(),
            // Generous: a busy machine must not turn the mock's answer into a timeout; tests
            // that want a timeout set their own.
            timeouts: Timeouts {
                connect_ms: 5_000,
                first_byte_ms: 30_000,
                idle_ms: 30_000,
                total_ms: 120_000,
            },
            enabled: true,
            allow_private_network: true,
        }))
        .await;
        let key_id = format!("{id}-key");
        let secret = match protocol {
            Protocol::OpenAi | Protocol::OpenAiResponses => PROVIDER_SECRET_OPENAI,
            Protocol::Anthropic => PROVIDER_SECRET_ANTHROPIC,
            Protocol::Gemini => PROVIDER_SECRET_GEMINI,
        };
        self.add_key(id, &key_id, secret).await;
        key_id
    }

    pub async fn add_key(&self, provider_id: &str, key_id: &str, secret: &str) {
        let sealed = self
            .master_keys
            .encrypt(
                &SecretString::new(secret.into()),
                shared::secret::KeyBinding {
                    key_id,
                    provider_id,
                },
            )
            .expect("encrypt");
        self.publish_config(ConfigEvent::ProviderKeyPut(ProviderKey {
            id: key_id.into(),
            provider_id: provider_id.into(),
            name: key_id.into(),
            secret: sealed,
            last_four: secret[secret.len() - 4..].into(),
            enabled: true,
        }))
        .await;
    }

    pub async fn add_model(&self, alias: &str, routes: Vec<(&str, &str, u32)>) {
        self.publish_config(ConfigEvent::ModelPut(model(alias, routes)))
            .await;
    }

    /// A token with the given limits; returns its secret.
    pub async fn add_token(&self, id: &str, configure: impl FnOnce(&mut UserToken)) -> String {
        let plain = PlainToken::generate();
        let mut token = UserToken {
            id: id.into(),
            name: id.into(),
            owner_user_id: "user-1".into(),
            hash: self.hasher.hash(&plain),
            last_four: plain.last_four(),
            allowed_models: vec![],
            rpm: None,
            tpm: None,
            budget: None,
            expires_at: None,
            enabled: true,
            team_id: None,
        };
        configure(&mut token);
        self.publish_config(ConfigEvent::TokenPut(token)).await;
        plain.expose().to_owned()
    }

    pub async fn token_put(&self, token: UserToken) {
        self.publish_config(ConfigEvent::TokenPut(token)).await;
    }

    pub fn hash(&self, plain: &str) -> shared::token::TokenHash {
        self.hasher.hash(&PlainToken::from_presented(plain))
    }

    /// Every request event in the stream so far.
    pub async fn request_events(&self) -> Vec<Envelope<shared::request::RequestEvent>> {
        read_all(&self.jetstream, shared::streams::REQUESTS_STREAM).await
    }
}

/// `(provider, upstream model, priority)` routes, priced like a mid-size model.
pub fn model(alias: &str, routes: Vec<(&str, &str, u32)>) -> Model {
    Model {
        id: alias.replace('.', "_"),
        alias: alias.into(),
        enabled: true,
        routes: routes
            .into_iter()
            .map(|(provider, upstream_model, priority)| Route {
                provider_id: provider.into(),
                upstream_model: upstream_model.into(),
                key_ids: vec![],
                priority,
                weight: 1,
                capabilities: Default::default(),
            })
            .collect(),
        price: Some(Price {
            currency: "USD".into(),
            input_per_million: Nanos(3_000_000_000),
            output_per_million: Nanos(15_000_000_000),
            cache_read_per_million: Nanos(300_000_000),
            cache_write_per_million: Nanos(3_750_000_000),
            version: 7,
        }),
        context_window: None,
        retry: None,
        response_cache: None,
        routing: None,
    }
}

pub async fn publish<B: EventBody>(jetstream: &jetstream::Context, envelope: &Envelope<B>) -> u64 {
    jetstream
        .send_publish(
            envelope.subject(),
            PublishMessage::build()
                .message_id(envelope.event_id.to_string())
                .payload(envelope.to_bytes().expect("encode").into()),
        )
        .await
        .expect("publish")
        .await
        .expect("ack")
        .sequence
}

pub async fn read_all<B: EventBody>(
    jetstream: &jetstream::Context,
    stream_name: &str,
) -> Vec<Envelope<B>> {
    let mut stream = jetstream.get_stream(stream_name).await.expect("stream");
    let last = stream.info().await.expect("info").state.last_sequence;
    let mut events = Vec::new();
    for sequence in 1..=last {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            for event in Envelope::<B>::all_from_bytes(&message.payload) {
                events.push(event.expect("decode"));
            }
        }
    }
    events
}

/// Runs a query on the test ClickHouse server; returns its answer's text.
pub async fn clickhouse(client: &reqwest::Client, query: &str) -> String {
    let response = client
        .post(env_url("AXONGATE_CLICKHOUSE_URL"))
        .body(query.to_owned())
        .send()
        .await
        .expect("ClickHouse answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{query}: {text}");
    text
}

/// A reqwest client with a short timeout, so a hung gateway fails the test.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(kit::testing::liveness())
        .build()
        .expect("client")
}

/// A client that trusts `cert_pem` alone (no built-in roots) and speaks HTTP/2 when the server
/// offers it by ALPN.
pub fn https_client(cert_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(kit::testing::liveness())
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).expect("certificate"))
        .build()
        .expect("client")
}

impl Gateway {
    /// Publishes a user (enabled or not) as admin-api would; returns the stream sequence.
    pub async fn put_user(&self, id: &str, enabled: bool) -> u64 {
        self.publish_config(ConfigEvent::UserPut(shared::config::User {
            id: id.into(),
            username: format!("name-of-{id}"),
            display_name: String::new(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            must_change_password: false,
            enabled,
            budget: None,
            allowed_models: Vec::new(),
            sso_subject: None,
        }))
        .await
    }

    /// Publishes a user's deletion; returns the stream sequence.
    pub async fn delete_user(&self, id: &str) -> u64 {
        self.publish_config(ConfigEvent::UserDeleted(shared::config::Deleted {
            id: id.into(),
        }))
        .await
    }

    /// Waits until the projector's config views reflect at least `sequence`.
    pub async fn wait_projected(&self, sequence: u64) {
        let (client, connection) =
            tokio_postgres::connect(&self.postgres_url, tokio_postgres::NoTls)
                .await
                .expect("postgres");
        tokio::spawn(connection);
        kit::testing::wait_until(
            kit::testing::liveness(),
            "the config views to catch up",
            || {
                let client = &client;
                async move {
                    let row = client
                    .query_opt(
                        "SELECT last_sequence FROM projection_offsets WHERE projection = 'config'",
                        &[],
                    )
                    .await
                    .ok()??;
                    let applied: i64 = row.get(0);
                    (u64::try_from(applied).ok()? >= sequence).then_some(())
                }
            },
        )
        .await;
    }

    /// Starts an ingress node that cannot reach Postgres (config replayed from the stream).
    pub async fn start_node_without_postgres(
        &self,
        name: &str,
        extra_env: &[(&str, &str)],
    ) -> Node {
        let unreachable = format!("postgres://axongate@127.0.0.1:{}/nowhere", free_port());
        let mut env: Vec<(&str, &str)> = vec![("AXONGATE_POSTGRES_URL", unreachable.as_str())];
        env.extend_from_slice(extra_env);
        self.start_node_with(name, &env, None).await
    }
}

/// Parses an SSE body into (event name, data) pairs.
pub fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = Some(name.trim().to_owned());
                } else if let Some(value) = line.strip_prefix("data:") {
                    data.push(value.trim_start().to_owned());
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

/// The first `count` request events, once that many are in the stream.
pub async fn finished_events(
    gateway: &Gateway,
    count: usize,
) -> Vec<shared::request::RequestFinished> {
    kit::testing::wait_until(kit::testing::liveness(), "request events", || async {
        let events = gateway.request_events().await;
        (events.len() >= count).then(|| {
            events
                .into_iter()
                .map(|event| match event.body {
                    shared::request::RequestEvent::Finished(finished) => finished,
                })
                .collect()
        })
    })
    .await
}
