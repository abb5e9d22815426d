//! `projector run | migrate | rebuild <view> | replay --stream … --from …`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use projector::ProjectorConfig;

// The projector decodes and folds thousands of events a second, each a burst of small
// allocations; glibc's malloc was a fifth of its CPU in a call-graph profile (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "projector",
    version,
    about = "AxonGate projector: streams into Postgres and ClickHouse"
)]
struct Cli {
    /// Config file (TOML); AXONGATE_* environment variables override it.
    #[arg(long, short, global = true, env = "AXONGATE_CONFIG_FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the projections (the default).
    Run,
    /// Apply the Postgres and ClickHouse migrations and exit.
    Migrate,
    /// Drop a view and rebuild it by replaying its stream: `config` or `analytics`.
    Rebuild { view: String },
    /// Print a stream's events as JSON lines.
    Replay {
        #[arg(long)]
        stream: String,
        /// A stream sequence or an RFC 3339 time.
        #[arg(long, default_value = "1")]
        from: projector::rebuild::From,
        /// The last stream sequence to print.
        #[arg(long)]
        to: Option<u64>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    kit::telemetry::init("projector");
    let cli = Cli::parse();
    let config: ProjectorConfig = match kit::config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("projector: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => projector::run(config).await,
        Command::Migrate => migrate(&config).await,
        Command::Rebuild { view } => rebuild(&config, &view).await,
        Command::Replay { stream, from, to } => replay(&config, &stream, from, to).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("projector: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: &ProjectorConfig) -> anyhow::Result<()> {
    let stores = projector::store::Stores::connect(config).await?;
    stores.migrate().await?;
    eprintln!("migrations applied");
    Ok(())
}

async fn rebuild(config: &ProjectorConfig, view: &str) -> anyhow::Result<()> {
    let stores = projector::store::Stores::connect(config).await?;
    stores.migrate().await?;
    let (_client, jetstream) = kit::nats::connect_and_ensure(
        &config.nats_url,
        "axongate-projector-rebuild",
        config.stream_settings(),
    )
    .await?;
    projector::rebuild::rebuild(&jetstream, &stores, view).await
}

async fn replay(
    config: &ProjectorConfig,
    stream: &str,
    from: projector::rebuild::From,
    to: Option<u64>,
) -> anyhow::Result<()> {
    let client = kit::nats::connect(&config.nats_url, "axongate-projector-replay").await?;
    let jetstream = async_nats::jetstream::new(client);
    projector::rebuild::replay(&jetstream, stream, from, to).await
}
