//! What every AxonGate service process needs, written once: loading its config (a file plus
//! `AXONGATE_*` environment overrides, unknown keys rejected, validated before any port is
//! bound), tracing, the `/health`, `/ready` and `/metrics` endpoints, connecting to NATS and
//! creating or updating the JetStream streams, a Postgres pool, and HTTPS on a service's own
//! port.
//!
//! This crate exists so that the three services do not each carry a copy of the same start-up
//! code while still never depending on one another. It must hold no business logic: no event
//! folding, no request handling, no authorization.

pub mod chain;
pub mod config;
pub mod health;
pub mod nats;
pub mod pg;
pub mod progress;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
