//! A real admin API over real NATS and Postgres, with the real projector folding its events,
//! driven over HTTP.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]
#![expect(clippy::unwrap_used, reason = "a test harness fails loudly")]

use std::sync::{Mutex, OnceLock};

use admin_api::AdminConfig;
use kit::testing::{
    NatsServer, env_url, free_port, fresh_postgres_database, unique_name, wait_until,
};
use reqwest::Method;
use serde_json::{Value, json};

pub const ADMIN_PASSWORD: &str = "a-much-better-password";

/// Everything every test's processes log, captured so tests can search it for secrets.
pub static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,async_nats=info,tokio_postgres=info,hyper=info,reqwest=info,h2=info,polar_core=info,oso=info")
            .with_writer(|| CaptureWriter)
            .with_ansi(false)
            .try_init();
    });
}

/// The captured logs so far.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

pub struct Harness {
    pub nats: NatsServer,
    pub postgres_url: String,
    pub base: String,
    pub http: reqwest::Client,
    pub config: AdminConfig,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

pub fn test_config(nats_url: &str, postgres_url: &str) -> AdminConfig {
    let config: AdminConfig = serde_json::from_value(json!({
        "nats_url": nats_url,
        "postgres_url": postgres_url,
        "clickhouse_url": env_url("AXONGATE_CLICKHOUSE_URL"),
        "master_keys": shared::secret::MasterKeys::generate_entry(1),
        "token_pepper": "test-pepper-0123456789abcdef0123456789",
        // A write waits for the projector up to the liveness deadline, not the production
        // default of 5 s, which a busy machine can exceed (the test of the 503 sets its own).
        "read_your_writes_timeout_ms": kit::testing::liveness().as_millis(),
        // Once throttled, a login stays throttled for longer than any test takes between two
        // attempts, however busy the machine (the production step is one second).
        "login_throttle_step_ms": kit::testing::liveness().as_millis(),
    }))
    .unwrap();
    kit::config::ServiceConfig::validate(&config).unwrap();
    config
}

pub fn spawn_projector(
    nats_url: &str,
    postgres_url: &str,
    clickhouse_database: &str,
) -> tokio::task::JoinHandle<()> {
    let config = projector::ProjectorConfig {
        nats_url: nats_url.to_owned(),
        postgres_url: postgres_url.to_owned(),
        clickhouse_url: env_url("AXONGATE_CLICKHOUSE_URL"),
        clickhouse_database: clickhouse_database.to_owned(),
        listen: format!("127.0.0.1:{}", free_port()),
        node_id: "projector-test".into(),
        stream_replicas: 1,
        requests_max_age_days: 30,
        batch_size: 1_000,
        batch_max_wait_ms: 50,
    };
    tokio::spawn(async move {
        if let Err(error) = projector::run(config).await {
            eprintln!("projector stopped: {error:#}");
        }
    })
}

/// Serves `config` on a free port; returns its base URL (`https://…` when the config has a
/// certificate).
pub async fn spawn_admin_api(config: AdminConfig) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_admin_api_on(config, listener)
}

/// Serves `config` on `listener`; returns its base URL.
pub fn spawn_admin_api_on(
    config: AdminConfig,
    listener: tokio::net::TcpListener,
) -> (String, tokio::task::JoinHandle<()>) {
    let scheme = if config.tls_cert_path.is_some() {
        "https"
    } else {
        "http"
    };
    let base = format!("{scheme}://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        if let Err(error) = admin_api::serve_on(config, listener).await {
            eprintln!("admin-api stopped: {error:#}");
        }
    });
    (base, task)
}

/// A client for the admin API `config` serves: with a certificate, one that trusts it alone.
fn client_for(config: &AdminConfig) -> reqwest::Client {
    let Some(cert_path) = &config.tls_cert_path else {
        return reqwest::Client::new();
    };
    let cert = std::fs::read(cert_path).unwrap();
    // A deadline, so a server that never answers (a handshake stuck in its accept loop) fails
    // the test instead of hanging it.
    reqwest::Client::builder()
        .timeout(kit::testing::liveness())
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
        .build()
        .unwrap()
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut AdminConfig)) -> Self {
        Self::start_at(|config, _| tweak(config)).await
    }

    /// Like [`Harness::start_with`], the tweak also given the base URL admin-api will serve
    /// at (plain HTTP), for settings that name it.
    pub async fn start_at(tweak: impl FnOnce(&mut AdminConfig, &str)) -> Self {
        capture_logs();
        let nats = NatsServer::start().await;
        let postgres_url = fresh_postgres_database().await;
        let mut config = test_config(&nats.url, &postgres_url);
        config.clickhouse_database = unique_name("axg_admin_test");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let planned = format!("http://{}", listener.local_addr().unwrap());
        tweak(&mut config, &planned);
        let projector = spawn_projector(&nats.url, &postgres_url, &config.clickhouse_database);
        let (base, admin) = spawn_admin_api_on(config.clone(), listener);
        let harness = Self {
            nats,
            postgres_url,
            base,
            http: client_for(&config),
            config,
            tasks: vec![projector, admin],
        };
        let url = format!("{}/health", harness.base);
        let http = harness.http.clone();
        wait_until(kit::testing::liveness(), "admin-api /health", || {
            let (http, url) = (http.clone(), url.clone());
            async move {
                http.get(&url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            }
        })
        .await;
        harness
    }

    /// Sends a request; returns the status and the JSON body (Null when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Logs in, waiting until the account exists in the view (the first admin appears once the
    /// projector has folded its event).
    pub async fn login(&self, username: &str, password: &str) -> Value {
        let body = json!({"username": username, "password": password});
        let (status, value) = self
            .call(Method::POST, "/api/v1/auth/login", None, Some(body))
            .await;
        assert_eq!(status, 200, "login {username}: {value}");
        value
    }

    /// Waits for the first admin, logs in with `admin123`, changes the password, and returns
    /// a session token that may do everything.
    pub async fn admin(&self) -> String {
        // Wait for the first admin in the view before signing in: a sign-in that fails because
        // the user does not exist yet would count towards the login throttle.
        self.wait_for_user_in_view("admin").await;
        let http = self.http.clone();
        let url = format!("{}/api/v1/auth/login", self.base);
        let session = wait_until(
            kit::testing::liveness(),
            "the first admin to sign in",
            || {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let response = http
                        .post(&url)
                        .json(&json!({"username": "admin", "password": "admin123"}))
                        .send()
                        .await
                        .ok()?;
                    if response.status().as_u16() != 200 {
                        return None;
                    }
                    response.json::<Value>().await.ok()
                }
            },
        )
        .await;
        let token = session["token"].as_str().unwrap().to_owned();
        let (status, body) = self
            .post(
                "/api/v1/auth/password",
                &token,
                json!({"current_password": "admin123", "new_password": ADMIN_PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        token
    }

    /// Waits until the projector has folded the user named `username` into the views.
    pub async fn wait_for_user_in_view(&self, username: &str) {
        wait_for_user_in_view(&self.config.postgres_url, username).await;
    }

    /// Creates a user with a role, logs them in and changes their password; returns
    /// (user id, session token).
    pub async fn user_session(&self, admin: &str, username: &str, role: &str) -> (String, String) {
        let (status, user) = self
            .post(
                "/api/v1/users",
                admin,
                json!({"username": username, "password": "initial-password", "role": role}),
            )
            .await;
        assert_eq!(status, 201, "{user}");
        let token = self.login(username, "initial-password").await["token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, body) = self
            .post(
                "/api/v1/auth/password",
                &token,
                json!({"current_password": "initial-password", "new_password": "changed-password"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (user["id"].as_str().unwrap().to_owned(), token)
    }

    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(async_nats::connect(&self.nats.url).await.unwrap())
    }

    /// How many messages a stream holds.
    pub async fn stream_count(&self, stream: &str) -> u64 {
        let jetstream = self.jetstream().await;
        let mut stream = jetstream.get_stream(stream).await.unwrap();
        stream.info().await.unwrap().state.messages
    }

    /// Every message of a stream, as (subject, payload text).
    pub async fn stream_messages(&self, stream: &str) -> Vec<(String, String)> {
        stream_messages(&self.nats.url, stream).await
    }

    /// Stops the projector (commands then wait for it in vain).
    pub fn stop_projector(&mut self) {
        self.tasks[0].abort();
    }

    /// Starts a projector again; it resumes from its durable consumers.
    pub fn start_projector(&mut self) {
        self.tasks[0] = spawn_projector(
            &self.nats.url,
            &self.postgres_url,
            &self.config.clickhouse_database,
        );
    }
}

/// Every message of a stream on the NATS server at `url`, as (subject, payload text).
pub async fn stream_messages(url: &str, stream: &str) -> Vec<(String, String)> {
    let jetstream = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let mut stream = jetstream.get_stream(stream).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut messages = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            messages.push((
                message.subject.to_string(),
                String::from_utf8_lossy(&message.payload).into_owned(),
            ));
        }
    }
    messages
}

/// Waits until the projector has folded the user named `username` into the views of the
/// database at `postgres_url` (before a first sign-in: a sign-in that fails because the user does
/// not exist yet counts towards the login throttle).
pub async fn wait_for_user_in_view(postgres_url: &str, username: &str) {
    let (client, connection) = tokio_postgres::connect(postgres_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    wait_until(
        kit::testing::liveness(),
        &format!("user {username} in the views"),
        || async {
            let rows = client
                .query(
                    "SELECT 1 FROM config_entities WHERE entity = 'user' AND data->>'username' = $1",
                    &[&username],
                )
                .await
                .ok()?;
            (!rows.is_empty()).then_some(())
        },
    )
    .await;
}
