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

pub mod analytics;
pub mod apply;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod bus;
pub mod config;
pub mod db;
pub mod egress;
pub mod error;
pub mod extract;
pub mod resources;
pub mod routes;
pub mod state;
pub mod usage;

use std::net::SocketAddr;
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
        projections: db::Projections::start(pool.clone(), config.postgres_url.clone()),
        pool,
        bus: bus::Bus::new(jetstream),
        authorizer: Arc::new(authorizer),
        master_keys,
        token_hasher,
        session_ttl: Duration::from_secs(config.session_ttl_seconds),
        read_your_writes_timeout: Duration::from_millis(config.read_your_writes_timeout_ms),
        node_id: config.node_id.clone(),
        throttle: auth::LoginThrottle::default(),
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
    router.layer(tower_http::limit::RequestBodyLimitLayer::new(4 << 20))
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
    let app = app(state, health, &config.ui_dir);
    tracing::info!(listen = %listener.local_addr().map(|addr| addr.to_string()).unwrap_or_default(), "admin API listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(kit::shutdown_signal())
    .await?;
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
    let report = apply::apply(&state, &actor, document)
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(serde_json::to_value(report)?)
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
