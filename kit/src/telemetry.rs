//! Tracing set-up: human-readable lines by default, JSON lines with `AXONGATE_LOG_FORMAT=json`;
//! the filter comes from `AXONGATE_LOG` (or `RUST_LOG`), default `info`.

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber. Safe to call once per process.
pub fn init(service: &'static str) {
    let filter = std::env::var("AXONGATE_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AXONGATE_LOG_FORMAT").is_ok_and(|format| format == "json");
    // Logs go to stderr, so stdout stays free for command output (`projector replay`); colours
    // only when a person is watching.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if result.is_ok() {
        tracing::info!(service, version = env!("CARGO_PKG_VERSION"), "starting");
    }
}
