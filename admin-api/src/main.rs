//! `admin-api serve`.

use std::path::PathBuf;
use std::process::ExitCode;

use admin_api::AdminConfig;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "admin-api", version, about = "AxonGate admin API")]
struct Cli {
    /// Config file (TOML); AXONGATE_* environment variables override it.
    #[arg(long, short, global = true, env = "AXONGATE_CONFIG_FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and the UI (the default).
    Serve,
}

#[tokio::main]
async fn main() -> ExitCode {
    kit::telemetry::init("admin-api");
    let cli = Cli::parse();
    let config: AdminConfig = match kit::config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("admin-api: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => admin_api::serve(config).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("admin-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}
