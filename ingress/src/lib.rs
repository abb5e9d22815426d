//! AxonGate ingress: the public API every application and agent calls.
//!
//! It authenticates AxonGate tokens from memory, applies limits and budgets, routes a model alias
//! to upstream providers and keys, translates between the OpenAI and Anthropic protocols through
//! one protocol-neutral representation, retries and fails over, streams the answer back, and
//! publishes one event per request. It must never write to Postgres or ClickHouse, never block a
//! response on the bus, never call an address the operator did not configure, and never log or
//! return a secret.

pub mod auth;
pub mod bounds;
pub mod cache;
pub mod config;
pub mod endpoints;
pub mod error;
pub mod follow;
pub mod gemini;
pub mod limits;
pub mod otel;
pub mod proxy;
pub mod publish;
pub mod routing;
pub mod server;
pub mod state;
pub mod translate;
pub mod upstream;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use futures::StreamExt as _;
use kit::health::Health;

pub use config::IngressConfig;

/// Loads the config, connects to NATS, starts following config and limit reports, and serves
/// the public API until stopped; then finishes in-flight streams (up to a deadline) and flushes
/// queued events.
///
/// # Errors
/// When the config is invalid, NATS is unreachable at start, or the port cannot be bound.
pub async fn run(config: IngressConfig) -> anyhow::Result<()> {
    let metrics = kit::health::install_metrics();
    let settings = kit::nats::StreamSettings {
        replicas: config.stream_replicas,
        requests_max_age: std::time::Duration::from_secs(config.requests_max_age_days * 24 * 3600),
        ..Default::default()
    };
    let (client, jetstream) =
        kit::nats::connect_and_ensure(&config.nats_url, "axongate-ingress", settings).await?;
    let secrets = Arc::new(state::Secrets {
        master_keys: shared::secret::MasterKeys::parse(&config.master_keys)?,
        allow_private_upstreams: config.allow_private_upstreams,
    });
    let snapshot = match follow::load_from_postgres(&config.postgres_url, &secrets).await {
        Ok(mut snapshot) => {
            follow::mark_deleted_owners(&jetstream, &mut snapshot)
                .await
                .context("cannot check the config stream for deleted token owners")?;
            snapshot
        }
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "config views unavailable; replaying the config stream instead");
            follow::load_from_stream(&jetstream, &secrets).await?
        }
    };
    tracing::info!(
        sequence = snapshot.sequence,
        models = snapshot.models.len(),
        tokens = snapshot.tokens.len(),
        "config loaded"
    );
    let store = Arc::new(state::ConfigStore::new(snapshot));
    let hasher = shared::token::TokenHasher::new(config.token_pepper.as_bytes())?;
    let authenticator = Arc::new(auth::Authenticator::new(hasher));
    tokio::spawn({
        let (client, jetstream, store, secrets, authenticator) = (
            client.clone(),
            jetstream.clone(),
            store.clone(),
            secrets.clone(),
            authenticator.clone(),
        );
        async move {
            if let Err(error) =
                follow::follow(client, jetstream, store, secrets, authenticator).await
            {
                tracing::error!(error = %format!("{error:#}"), "stopped following config");
            }
        }
    });
    wait_for_current_config(&jetstream, &store).await;
    let limiter = Arc::new(limits::Limiter::new(config.node_id.clone()));
    match follow::seed_limits(&jetstream, &limiter).await {
        Ok(count) => tracing::info!(
            requests = count,
            "per-minute limits seeded from the last minute of requests"
        ),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "could not seed per-minute limits")
        }
    }
    match follow::load_spend_baseline(&config.postgres_url, &store.load(), &limiter).await {
        Ok(count) => tracing::info!(budgets = count, "budget spend loaded"),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "spend view unavailable; summing this period's spend from the request stream");
            match follow::seed_spend_from_stream(&jetstream, &store.load(), &limiter).await {
                Ok(count) => tracing::info!(
                    budgets = count,
                    "budget spend seeded from the request stream"
                ),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "could not seed budget spend; budgets count from now")
                }
            }
        }
    }
    tokio::spawn({
        let (jetstream, store, limiter) = (jetstream.clone(), store.clone(), limiter.clone());
        async move {
            if let Err(error) = follow::follow_adjustments(jetstream, store, limiter).await {
                tracing::error!(error = %format!("{error:#}"), "stopped following spend adjustments");
            }
        }
    });
    tokio::spawn(follow::watch_budgets(
        config.postgres_url.clone(),
        store.clone(),
        limiter.clone(),
    ));
    start_limit_gossip(client.clone(), limiter.clone(), store.clone()).await?;
    let spool = Arc::new(
        publish::Spool::open(Path::new(&config.spool_dir), config.spool_max_bytes)
            .with_context(|| format!("cannot open the event spool at {}", config.spool_dir))?,
    );
    let (publisher, publish_task) = publish::Publisher::start(
        client.clone(),
        jetstream.clone(),
        spool.clone(),
        config.max_unsettled_events,
    );
    let (tracing_on, exporter) = match config.tracing() {
        Some(settings) => {
            let (tracing_on, exporter) =
                otel::Tracing::start(&settings).map_err(anyhow::Error::msg)?;
            tracing::info!(endpoint = %settings.endpoint, sample_ratio = settings.sample_ratio, "exporting traces");
            (tracing_on, Some(exporter))
        }
        None => (otel::Tracing::off(), None),
    };
    let cache = Arc::new(
        cache::ResponseCache::open(&jetstream, config.response_cache())
            .await
            .context("cannot open the response cache bucket")?,
    );
    let state = Arc::new(proxy::AppState {
        config: store,
        auth: authenticator,
        limiter,
        breakers: Arc::new(routing::Breakers::new(routing::BreakerSettings {
            consecutive_failures: config.breaker_failures,
            cooldown: std::time::Duration::from_secs(config.breaker_cooldown_secs),
            ..routing::BreakerSettings::default()
        })),
        route_stats: Arc::default(),
        client_address: config
            .client_address()
            .map_err(|error| anyhow::anyhow!(error))?,
        publisher,
        node_id: config.node_id.clone(),
        spool_full_policy: config.spool_full_policy,
        max_body_bytes: config.max_body_bytes,
        body_read_timeout: std::time::Duration::from_secs(config.body_read_timeout_secs),
        concurrency: Arc::new(tokio::sync::Semaphore::new(config.max_concurrency)),
        event_slot_wait: std::time::Duration::from_millis(config.event_slot_wait_ms),
        retry: proxy::RetrySettings {
            max_attempts: config.retry_max_attempts,
            ..proxy::RetrySettings::default()
        },
        tracing: tracing_on,
        cache,
    });
    let health = Health::new(metrics)
        .with_check("nats", kit::nats::ready_check(jetstream.clone()))
        .with_check(
            "spool",
            spool_ready_check(spool.clone(), config.spool_full_policy),
        );
    let app = router(state.clone()).merge(health.router());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(listen = %config.listen, node = %config.node_id, "ingress listening");
    server::serve(
        listener,
        app,
        kit::shutdown_signal(),
        std::time::Duration::from_secs(config.shutdown_grace_secs),
        server::ConnectionLimits {
            max_connections: config.max_connections,
            idle_timeout: std::time::Duration::from_secs(config.idle_timeout_secs),
            write_timeout: std::time::Duration::from_secs(config.write_timeout_secs),
        },
        config.tls().map_err(anyhow::Error::msg)?,
    )
    .await;
    // Every response has ended; let the publisher flush what is queued (or spool it).
    drop(state);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), publish_task).await;
    if let Some(exporter) = exporter {
        exporter.shutdown().await;
    }
    Ok(())
}

/// Waits (a bounded while) until the config holds everything the config stream held when the
/// node started: the views the node loaded from may lag the stream (the projector folds
/// asynchronously), and a node that served before the follower filled the gap would refuse a
/// token or model that every other node knows. If the stream cannot be read, or the follower
/// does not catch up within the bound, the node starts anyway and says so (it keeps following).
async fn wait_for_current_config(
    jetstream: &async_nats::jetstream::Context,
    store: &state::ConfigStore,
) {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);
    let last = match jetstream.get_stream(shared::streams::CONFIG_STREAM).await {
        Ok(mut stream) => match stream.info().await {
            Ok(info) => info.state.last_sequence,
            Err(error) => {
                tracing::warn!(%error, "cannot read the config stream's last sequence; serving the config as loaded");
                return;
            }
        },
        Err(error) => {
            tracing::warn!(%error, "cannot read the config stream; serving the config as loaded");
            return;
        }
    };
    let started = std::time::Instant::now();
    while store.load().sequence < last {
        if started.elapsed() > PATIENCE {
            tracing::warn!(
                applied = store.load().sequence,
                stream = last,
                "config not caught up with the stream after 30 s; serving anyway and still following"
            );
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tracing::info!(sequence = last, "config current with the stream");
}

/// `/ready` fails while the spool-full policy refuses traffic (spool full or its disk failing),
/// so a load balancer sends requests to the nodes that can take them.
fn spool_ready_check(
    spool: Arc<publish::Spool>,
    policy: config::SpoolFullPolicy,
) -> kit::health::Check {
    Arc::new(move || -> kit::health::CheckFuture {
        let refusal = match policy {
            config::SpoolFullPolicy::Refuse => spool.refusal(),
            config::SpoolFullPolicy::Serve => None,
        };
        Box::pin(async move {
            match refusal {
                Some(reason) => Err(format!("refusing requests: {reason}")),
                None => Ok(()),
            }
        })
    })
}

/// The public API routes.
pub fn router(state: Arc<proxy::AppState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(proxy::chat_completions))
        .route("/v1/responses", post(proxy::responses))
        .route("/v1/messages", post(proxy::messages))
        .route("/v1/messages/count_tokens", post(endpoints::count_tokens))
        .route("/v1/embeddings", post(endpoints::embeddings))
        .route("/v1/models", get(endpoints::models))
        .route("/v1beta/models", get(gemini::models))
        .route(
            "/v1beta/models/{*target}",
            post(gemini::model_method).get(gemini::model),
        )
        .route(
            "/v1/models/{*target}",
            post(gemini::model_method).get(gemini::model),
        )
        // A known path with the wrong method answers in the caller's error shape too.
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are read with the configured limit inside the handlers, so that an oversized
        // body gets a 413 in the caller's dialect.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// 405 in the caller's dialect: Gemini for `/v1beta/…` (or a Gemini key), Anthropic for
/// `/v1/messages…` (or an `anthropic-version` header), OpenAI otherwise, with `Allow`.
async fn method_not_allowed(
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    let path = uri.path();
    let dialect = if path.starts_with("/v1beta/") || gemini::is_gemini_caller(&headers, &uri) {
        translate::Dialect::Gemini
    } else if path.starts_with("/v1/messages") || headers.contains_key("anthropic-version") {
        translate::Dialect::Anthropic
    } else {
        translate::Dialect::OpenAiChat
    };
    let allowed = match path {
        "/v1/models" | "/v1beta/models" => "GET",
        _ if path.starts_with("/v1beta/models/") || path.starts_with("/v1/models/") => "GET, POST",
        _ => "POST",
    };
    let mut response = error::IngressError::MethodNotAllowed {
        method: method.to_string(),
        path: bounds::for_record(path),
        allowed,
    }
    .render(dialect);
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static(allowed),
    );
    response
}

/// Publishes this node's usage every interval and merges the other nodes' reports.
async fn start_limit_gossip(
    client: async_nats::Client,
    limiter: Arc<limits::Limiter>,
    store: Arc<state::ConfigStore>,
) -> anyhow::Result<()> {
    let mut subscription = client.subscribe(limits::GOSSIP_SUBJECT).await?;
    let merge_limiter = limiter.clone();
    tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            if let Ok(report) = serde_json::from_slice::<limits::UsageReport>(&message.payload) {
                let snapshot = store.load();
                merge_limiter.merge(&report, |key: &str| snapshot.budget_period(key));
            }
        }
    });
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(limits::GOSSIP_INTERVAL);
        let mut quiet = 0_u32;
        loop {
            interval.tick().await;
            // A node with nothing to report still says so every HEARTBEAT_EVERY intervals, so
            // the others know how current their view of it is.
            let report = limiter.take_report().or_else(|| {
                quiet += 1;
                (quiet >= limits::HEARTBEAT_EVERY).then(|| limiter.heartbeat())
            });
            if report.is_some() {
                quiet = 0;
            }
            if let Some(report) = report
                && let Ok(payload) = serde_json::to_vec(&report)
                && let Err(error) = client.publish(limits::GOSSIP_SUBJECT, payload.into()).await
            {
                tracing::warn!(%error, "could not publish the usage report");
            }
        }
    });
    Ok(())
}
