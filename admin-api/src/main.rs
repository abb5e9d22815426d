//! `admin-api [serve]`, `admin-api apply -f axongate.yaml`, `admin-api export`,
//! `admin-api audit verify`.

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
    /// Apply a declarative config file: publish only the events needed to reach its state.
    Apply {
        /// The YAML (or JSON) document; see admin-api/README.md.
        #[arg(long, short = 'f')]
        file: PathBuf,
    },
    /// Print the current config as a declarative YAML document (without secrets).
    Export,
    /// The config and audit streams' tamper-evident chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk both streams, check every link and checkpoint, print a JSON report; exit 1 when
    /// a link is broken (the report names the first one).
    Verify,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // `apply` and `export` print their result on stdout, where the log lines would mix in.
    if matches!(cli.command, None | Some(Command::Serve)) {
        kit::telemetry::init("admin-api");
    }
    let config: AdminConfig = match kit::config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("admin-api: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => admin_api::serve(config).await,
        Command::Apply { file } => admin_api::apply_file(config, &file)
            .await
            .and_then(|report| Ok(serde_json::to_string_pretty(&report)?))
            .map(|report| println!("{report}")),
        Command::Export => admin_api::export_yaml(config)
            .await
            .map(|yaml| print!("{yaml}")),
        Command::Audit {
            command: AuditCommand::Verify,
        } => match admin_api::verify_chain(config).await {
            Ok((whole, report)) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
                if !whole {
                    eprintln!("admin-api: the chain is broken (see first_broken)");
                    return ExitCode::from(1);
                }
                Ok(())
            }
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("admin-api: {error:#}");
            ExitCode::FAILURE
        }
    }
}
