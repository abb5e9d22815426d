//! AxonGate admin API: the operators' API.
//!
//! Login, role-based access (an Oso policy, `policy.polar`), commands that become config events
//! on `AXONGATE_CONFIG`, reads from the Postgres views, audit, declarative apply/export,
//! OpenAPI, and the built UI. It must never write the config views itself (the projector does,
//! from the events), and never return a secret after the response that created it.
//!
//! Every command publishes the entity's full new state with `Nats-Msg-Id = event_id` and
//! `Nats-Expected-Last-Subject-Sequence = <version the client read>` (0 to create), then waits
//! until the projector reports (via `pg_notify`) that it applied the event, and answers with
//! the state read back from the view: the client reads its own write.
//!
//! Sessions are the one piece of state admin-api writes itself, in its own table
//! `admin_sessions` (created by admin-api at start, `migrations/001_sessions.sql`). They are not
//! config: they change on every login, hold no operator intent worth replaying, and must be
//! revocable at once, so routing them through the config stream and the projector would add
//! latency and history without adding a guarantee. Only a SHA-256 hash of each session token is
//! stored. The projector neither owns nor rebuilds this table.

pub mod alerts;
pub mod analytics;
pub mod apply;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod bus;
pub mod config;
pub mod config_at;
pub mod db;
pub mod docs;
pub mod egress;
pub mod error;
pub mod extract;
pub mod integrity;
pub mod login_guard;
pub mod oidc;
pub mod permission;
pub mod read_your_writes;
pub mod rerate;
pub mod resources;
pub mod routes;
pub mod server;
pub mod state;
pub mod typescript;
pub mod usage;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::response::IntoResponse as _;
use kit::health::Health;
use shared::secret::MasterKeys;
use shared::token::TokenHasher;

pub use config::AdminConfig;
pub use state::AppState;

/// Connects to NATS and Postgres, ensures the streams and the admin tables, and builds the
/// shared state. Does not create the first admin (see [`auth::ensure_first_admin`]).
///
/// # Errors
/// When a dependency is unreachable or a secret in the config is malformed.
pub async fn connect(config: &AdminConfig) -> anyhow::Result<AppState> {
    let pool = kit::pg::connect(&config.postgres_url, 16).await?;
    db::migrate(&pool)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let settings = kit::nats::StreamSettings {
        replicas: config.stream_replicas,
        requests_max_age: std::time::Duration::from_secs(config.requests_max_age_days * 24 * 3600),
        ..Default::default()
    };
    let (_client, jetstream) =
        kit::nats::connect_and_ensure(&config.nats_url, "axongate-admin-api", settings).await?;
    let policy = match &config.policy_file {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("policy_file {path}"))?
        }
        None => authz::BUILT_IN_POLICY.to_owned(),
    };
    let authorizer =
        authz::OsoAuthorizer::from_policy(&policy).context("loading the Polar policy")?;
    let master_keys = MasterKeys::parse(&config.master_keys).context("master_keys")?;
    let token_hasher = TokenHasher::new(config.token_pepper.as_bytes()).context("token_pepper")?;
    let clickhouse = clickhouse::Client::default()
        .with_url(&config.clickhouse_url)
        .with_database(&config.clickhouse_database);
    Ok(Arc::new(state::Inner {
        clickhouse,
        projections: read_your_writes::Projections::start(
            pool.clone(),
            config.postgres_url.clone(),
        ),
        pool,
        bus: bus::Bus::new(jetstream, config.chain_key()),
        authorizer: Arc::new(authorizer),
        master_keys,
        token_hasher,
        session_ttl: Duration::from_secs(config.session_ttl_seconds),
        read_your_writes_timeout: Duration::from_millis(config.read_your_writes_timeout_ms),
        node_id: config.node_id.clone(),
        login_guard: login_guard::LoginGuard::new(
            &config.token_pepper,
            config.login_concurrency.max(1),
            Duration::from_millis(config.login_throttle_step_ms.max(1)),
        )
        .map_err(|error| anyhow::anyhow!("{error}"))?,
        oidc: oidc::OidcSettings::from_config(config)
            .map_err(|error| anyhow::anyhow!("{error}"))?
            .map(|settings| Arc::new(oidc::Oidc::new(settings))),
    }))
}

/// The whole HTTP app: the API, health endpoints, and the UI when `ui_dir` exists.
pub fn app(state: AppState, health: Health, ui_dir: &str) -> Router {
    let ui = Path::new(ui_dir);
    let spa = ui.join("index.html").is_file().then(|| {
        // The SPA: real files as they are, every other path gets index.html (client routing).
        tower_http::services::ServeDir::new(ui)
            .fallback(tower_http::services::ServeFile::new(ui.join("index.html")))
    });
    let fallback = move |request: axum::extract::Request| {
        let spa = spa.clone();
        async move {
            match spa {
                Some(spa) if !request.uri().path().starts_with("/api/") => {
                    use tower::ServiceExt as _;
                    match spa.oneshot(request).await {
                        Ok(response) => response.into_response(),
                        Err(error) => error::ApiError::internal(error).into_response(),
                    }
                }
                _ => error::ApiError::NotFound {
                    entity: "route",
                    id: request.uri().path().to_owned(),
                }
                .into_response(),
            }
        }
    };
    let router = routes::api_router()
        .with_state(state)
        .merge(health.router::<()>())
        .fallback(fallback);
    let mut router = router
        .layer(axum::middleware::from_fn(refuse_nul_in_uri))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_BODY_BYTES,
        ));
    for (name, value) in docs::security_headers() {
        router = router.layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            name, value,
        ));
    }
    router
}

/// The largest request body admin-api reads (4 MiB); a larger one is answered 413.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// A NUL (or another control character) percent-encoded into the path or query cannot name
/// anything: answered 400 here, before it reaches a handler or Postgres (whose text cannot
/// hold NUL, so it would otherwise be a 500).
async fn refuse_nul_in_uri(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let uri = request.uri();
    let raw = uri.path_and_query().map_or("", |whole| whole.as_str());
    if has_encoded_control(raw) {
        return error::ApiError::BadRequest {
            code: "invalid_uri",
            message: "the path or query holds an encoded control character".into(),
            field: None,
        }
        .into_response();
    }
    next.run(request).await
}

/// Whether `text` holds `%XX` decoding to a control character (below 0x20, or 0x7f).
fn has_encoded_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.windows(3).any(|window| {
        window[0] == b'%'
            && std::str::from_utf8(&window[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(|byte| byte < 0x20 || byte == 0x7f)
    })
}

/// Serves on an already bound listener until stopped (tests bind port 0 themselves).
///
/// # Errors
/// When a dependency is unreachable at start.
pub async fn serve_on(
    config: AdminConfig,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    let metrics = kit::health::install_metrics();
    let state = connect(&config).await?;
    if let Err(error) = auth::ensure_first_admin(&state, config.initial_admin_password()).await {
        anyhow::bail!("creating the first admin account: {error}");
    }
    if config.alert_check_interval_secs > 0 {
        tokio::spawn(alerts::scan_loop(
            state.clone(),
            Duration::from_secs(config.alert_check_interval_secs),
        ));
        tokio::spawn(alerts::deliver_loop(
            state.clone(),
            config
                .alert_webhook_secret
                .clone()
                .filter(|secret| !secret.is_empty()),
        ));
    }
    if config.audit_checkpoint_interval_secs > 0 {
        tokio::spawn(integrity::checkpoint_loop(
            state.bus.clone(),
            config.node_id.clone(),
            Duration::from_secs(config.audit_checkpoint_interval_secs),
        ));
    }
    let clickhouse = state.clickhouse.clone();
    let clickhouse_check: kit::health::Check = Arc::new(move || -> kit::health::CheckFuture {
        let client = clickhouse.clone();
        Box::pin(async move {
            client
                .query("SELECT 1")
                .fetch_one::<u8>()
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        })
    });
    let health = Health::new(metrics)
        .with_check(
            "nats",
            kit::nats::ready_check(state.bus.jetstream().clone()),
        )
        .with_check("postgres", kit::pg::ready_check(state.pool.clone()))
        .with_check("clickhouse", clickhouse_check);
    let app = app(state, health, &config.ui_dir).layer(
        tower_http::timeout::RequestBodyTimeoutLayer::new(Duration::from_millis(
            config.body_read_timeout_ms,
        )),
    );
    tracing::info!(listen = %listener.local_addr().map(|addr| addr.to_string()).unwrap_or_default(), "admin API listening");
    let limits = server::Limits {
        header_read_timeout: Duration::from_millis(config.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(config.idle_timeout_ms),
        max_connections: config.max_connections,
    };
    server::serve(
        listener,
        app,
        limits,
        config.tls().map_err(anyhow::Error::msg)?,
        kit::shutdown_signal(),
        Duration::from_secs(10),
    )
    .await;
    Ok(())
}

/// Binds `listen` and serves until stopped.
///
/// # Errors
/// When a dependency is unreachable at start or the port cannot be bound.
pub async fn serve(config: AdminConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    serve_on(config, listener).await
}

/// `admin-api apply -f <file>`: applies a declarative document as the `apply` actor and prints
/// the report (including any generated token secrets, once) as JSON on stdout.
///
/// # Errors
/// When the file cannot be read or an entry is invalid.
pub async fn apply_file(config: AdminConfig, file: &Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let document = apply::parse_document(&text).map_err(|error| anyhow::anyhow!("{error}"))?;
    let state = connect(&config).await?;
    let actor = shared::Actor {
        user_id: "system".into(),
        username: "admin-api apply".into(),
    };
    let report = apply::apply(&state, &actor, document, apply::SecretSource::Environment)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(serde_json::to_value(report)?)
}

/// `admin-api audit verify`: walks the config and audit streams, with progress on a
/// terminal, and returns the reports (and whether every link held).
///
/// # Errors
/// When NATS does not answer.
pub async fn verify_chain(config: AdminConfig) -> anyhow::Result<(bool, serde_json::Value)> {
    let client = kit::nats::connect(&config.nats_url, "axongate-admin-api-verify").await?;
    let jetstream = async_nats::jetstream::new(client);
    let mut meter: Option<(String, kit::progress::Progress)> = None;
    let reports = integrity::verify_all(&jetstream, &config.chain_key(), |stream, read, last| {
        if meter.as_ref().is_none_or(|(name, _)| name != stream) {
            meter = Some((
                stream.to_owned(),
                kit::progress::Progress::on_stderr(format!("verifying {stream}"), "events", last),
            ));
        }
        if let Some((_, progress)) = meter.as_mut() {
            progress.advance_to(read);
        }
    })
    .await?;
    let summary = integrity::summary(&reports);
    Ok((reports.iter().all(shared::chain::ChainReport::ok), summary))
}

/// `admin-api export`: the current config as YAML, without secrets.
///
/// # Errors
/// When Postgres does not answer.
pub async fn export_yaml(config: AdminConfig) -> anyhow::Result<String> {
    let pool = kit::pg::connect(&config.postgres_url, 2).await?;
    let document = apply::export(&pool)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    apply::to_yaml(&document).map_err(|error| anyhow::anyhow!("{error}"))
}
