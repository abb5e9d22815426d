//! `ingress`: the public API.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ingress::IngressConfig;

// The hot path allocates per request and per stream chunk; mimalloc's thread-local free lists
// cut the time glibc's allocator took in profiles (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ingress",
    version,
    about = "AxonGate ingress: the public OpenAI- and Anthropic-protocol API"
)]
struct Cli {
    /// Config file (TOML); AXONGATE_* environment variables override it.
    #[arg(long, short, env = "AXONGATE_CONFIG_FILE")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    kit::telemetry::init("ingress");
    let cli = Cli::parse();
    let config: IngressConfig = match kit::config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ingress: {error}");
            return ExitCode::from(2);
        }
    };
    match ingress::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ingress: {error:#}");
            ExitCode::FAILURE
        }
    }
}
