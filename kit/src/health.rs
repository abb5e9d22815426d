//! `/health` (the process is alive), `/ready` (its dependencies really answer) and `/metrics`
//! (Prometheus text format), the same for every service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// A dependency check for `/ready`: returns `Err(reason)` when the dependency does not answer.
pub type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
pub type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Health {
    checks: Arc<Vec<(&'static str, Check)>>,
    metrics: Option<PrometheusHandle>,
}

impl Health {
    #[must_use]
    pub fn new(metrics: Option<PrometheusHandle>) -> Self {
        Self {
            checks: Arc::new(Vec::new()),
            metrics,
        }
    }

    /// Adds a named readiness check.
    #[must_use]
    pub fn with_check(mut self, name: &'static str, check: Check) -> Self {
        let mut checks = (*self.checks).clone();
        checks.push((name, check));
        self.checks = Arc::new(checks);
        self
    }

    /// Runs every check concurrently, each bounded by a timeout.
    pub async fn run_checks(&self) -> Vec<(&'static str, Result<(), String>)> {
        let futures = self.checks.iter().map(|(name, check)| {
            let future = check();
            async move {
                let result = match tokio::time::timeout(CHECK_TIMEOUT, future).await {
                    Ok(result) => result,
                    Err(_) => Err(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())),
                };
                (*name, result)
            }
        });
        futures::future::join_all(futures).await
    }

    /// The three endpoints as a router to merge into a service's router.
    pub fn router<S>(self) -> Router<S> {
        Router::new()
            .route("/health", get(|| async { (StatusCode::OK, "ok\n") }))
            .route("/ready", get(ready))
            .route("/metrics", get(metrics))
            .with_state(self)
    }
}

async fn ready(State(health): State<Health>) -> Response {
    let results = health.run_checks().await;
    let mut all_ok = true;
    let mut checks = serde_json::Map::new();
    for (name, result) in results {
        let value = match result {
            Ok(()) => serde_json::Value::String("ok".into()),
            Err(reason) => {
                all_ok = false;
                serde_json::Value::String(reason)
            }
        };
        checks.insert(name.into(), value);
    }
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body =
        serde_json::json!({"status": if all_ok { "ready" } else { "not_ready" }, "checks": checks});
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(health): State<Health>) -> Response {
    match &health.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics recorder not installed\n").into_response(),
    }
}

/// Installs the global Prometheus recorder and returns its handle, or `None` if one is already
/// installed (tests that start several services in one process).
#[must_use]
pub fn install_metrics() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new().install_recorder().ok()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(5));
        loop {
            interval.tick().await;
            upkeep.run_upkeep();
        }
    });
    Some(handle)
}
