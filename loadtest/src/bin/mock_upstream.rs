//! `mock-upstream`: serves the mock provider for benchmarks and the local dev stack, and prints
//! its base URL as the first line of standard output.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use loadtest::mock::{Behavior, Failure, MockConfig, MockUpstream};

/// Mock OpenAI / Anthropic / Gemini upstream. Model names starting with `mock-` override these settings
/// per request (see loadtest/README.md).
#[derive(Debug, Parser)]
#[command(name = "mock-upstream", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9100", env = "MOCK_UPSTREAM_LISTEN")]
    listen: SocketAddr,
    /// Delay before the first byte of every response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Delay between streamed content chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Content chunks per streamed answer.
    #[arg(long, default_value_t = 8)]
    chunks: u32,
    /// Output tokens per answer (default: one per chunk).
    #[arg(long)]
    output_tokens: Option<u32>,
    /// Fraction of requests, in [0, 1], that fail with --fail-status (spread evenly).
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// HTTP status of injected failures.
    #[arg(long, default_value_t = 500)]
    fail_status: u16,
    /// Retry-After header, in seconds, on injected failures.
    #[arg(long)]
    retry_after: Option<u64>,
    /// Accept only this API key (repeatable); by default any non-empty key is accepted.
    #[arg(long = "valid-key")]
    valid_keys: Vec<String>,
    /// Keep a record of requests in memory (nothing reads it from the binary; for debugging).
    #[arg(long)]
    record: bool,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    runtime.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let failure = (args.fail_rate > 0.0).then(|| {
        let failure = Failure::rate(args.fail_rate, args.fail_status);
        match args.retry_after {
            Some(seconds) => failure.with_retry_after(seconds),
            None => failure,
        }
    });
    let behavior = Behavior {
        first_byte_delay: Duration::from_millis(args.delay_ms),
        chunk_delay: Duration::from_millis(args.chunk_delay_ms),
        chunks: args.chunks.max(1),
        output_tokens: args.output_tokens,
        failure,
        ..Behavior::default()
    };
    let config = MockConfig {
        listen: args.listen,
        behavior,
        record_requests: args.record,
        valid_keys: (!args.valid_keys.is_empty()).then_some(args.valid_keys),
    };
    let upstream = MockUpstream::start(config)
        .await
        .with_context(|| format!("mock-upstream: cannot listen on {}", args.listen))?;
    println!("{}", upstream.base_url());
    tracing::info!(url = %upstream.base_url(), "mock upstream listening");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("shutting down");
    upstream.shutdown().await;
    Ok(())
}
