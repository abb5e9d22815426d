//! `loadgen`: runs a benchmark plan (see `loadtest/plans/bench.toml`) against its targets and
//! prints Markdown tables as each scenario finishes; `--json` keeps every figure.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use loadtest::driver::{self, Environment, pipeline::RequestsTable, plan::Plan, report};

#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
struct Args {
    /// The plan (TOML).
    #[arg(long, default_value = "loadtest/plans/bench.toml")]
    plan: PathBuf,
    /// A target's base URL: `NAME=http://host:port` (repeatable).
    #[arg(long = "url", value_name = "NAME=URL")]
    urls: Vec<String>,
    /// A target's credential: `NAME=KEY` (repeatable).
    #[arg(long = "key", value_name = "NAME=KEY")]
    keys: Vec<String>,
    /// The process serving a target, for CPU and memory: `NAME=PID` (repeatable).
    #[arg(long = "pid", value_name = "NAME=PID")]
    pids: Vec<String>,
    /// A header a target gets with every request: `NAME=HEADER:VALUE` (repeatable).
    #[arg(long = "header", value_name = "NAME=HEADER:VALUE")]
    headers: Vec<String>,
    /// Other processes on the driver's core (the mock), for the load core's CPU figure.
    #[arg(long = "load-core-pid")]
    load_core_pids: Vec<u32>,
    /// ClickHouse HTTP URL, for the event pipeline scenario.
    #[arg(long)]
    clickhouse_url: Option<String>,
    /// ClickHouse database holding the projector's `requests` table.
    #[arg(long, default_value = "axongate")]
    clickhouse_database: String,
    /// Run only scenarios whose name contains one of these (repeatable).
    #[arg(long = "only")]
    only: Vec<String>,
    /// Multiply every duration by this (a smoke run uses 0.1).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Override the number of streams of open-stream scenarios.
    #[arg(long)]
    streams: Option<usize>,
    /// A sentence on CPU pinning for the report.
    #[arg(long)]
    pinning: Option<String>,
    /// The source revision measured, for the report (e.g. `git describe --always --dirty`).
    #[arg(long)]
    revision: Option<String>,
    /// Seconds to wait for every target to answer well before measuring.
    #[arg(long, default_value_t = 60)]
    ready_timeout: u64,
    /// Write the whole report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the whole report as Markdown here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One thread: the driver shares its core with the mock, and a second thread would only
    // contend for it.
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

fn load_plan(args: &Args) -> anyhow::Result<Plan> {
    let text = std::fs::read_to_string(&args.plan)
        .with_context(|| format!("cannot read the plan {}", args.plan.display()))?;
    let mut plan = Plan::parse(&text)?;
    for (field, assignments) in [
        ("url", &args.urls),
        ("key", &args.keys),
        ("pid", &args.pids),
        ("header", &args.headers),
    ] {
        for assignment in assignments {
            plan.assign(field, assignment)?;
        }
    }
    plan.retain_scenarios(&args.only);
    plan.scale_durations(args.scale);
    if let Some(streams) = args.streams {
        for scenario in &mut plan.scenarios {
            if let driver::plan::Scenario::OpenStreams(open) = scenario {
                open.streams = streams;
            }
        }
    }
    for absent in plan.drop_absent_optional() {
        eprintln!("loadgen: optional target {absent:?} has no URL; left out");
    }
    plan.check_ready()?;
    Ok(plan)
}

fn machine(pinning: Option<String>) -> report::Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpus = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_owned());
    let memory_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            meminfo
                .lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024);
    report::Machine {
        cpus,
        cpu_model,
        memory_mb,
        pinning,
        load_average_start: load_average(),
        load_average_end: None,
    }
}

fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

async fn run(args: Args) -> anyhow::Result<()> {
    let plan = load_plan(&args)?;
    let requests_table = match &args.clickhouse_url {
        Some(url) => Some(RequestsTable {
            addr: driver::http::socket_address(url).map_err(anyhow::Error::msg)?,
            database: args.clickhouse_database.clone(),
        }),
        None => None,
    };
    let environment = Environment {
        load_core_pids: args.load_core_pids.clone(),
        requests_table,
    };
    let machine = machine(args.pinning.clone());
    let idle: Vec<(String, u32, Option<u64>)> = plan
        .targets
        .iter()
        .filter_map(|target| {
            let pid = target.pid?;
            Some((target.name.clone(), pid, driver::procfs::resident_kb(pid)))
        })
        .collect();
    eprintln!("loadgen: waiting for every target to answer");
    driver::wait_until_ready(&plan, Duration::from_secs(args.ready_timeout)).await?;
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let scenarios = driver::execute(&plan, &environment, |scenario| {
        println!("{}", report::render_scenario(scenario));
    })
    .await?;
    let memory = idle
        .into_iter()
        .map(|(target, pid, rss_idle_kb)| report::ProcessMemory {
            target,
            pid,
            rss_idle_kb,
            rss_end_kb: driver::procfs::resident_kb(pid),
        })
        .collect();
    let report = report::Report {
        started_at,
        machine: report::Machine {
            load_average_end: load_average(),
            ..machine
        },
        revision: args.revision.clone(),
        memory,
        scenarios,
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, report::render(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
