//! The load driver: runs a [`plan::Plan`] against each of its targets in turn and reports
//! latency without coordinated omission, throughput, time to first byte, gaps between streamed
//! events, memory per open stream, and the event pipeline's lag.
//!
//! It runs on one core beside the mock (a current-thread runtime), so everything on the request
//! path is lean: one keep-alive HTTP/1.1 connection per worker and requests built once per run.

pub mod histogram;
pub mod http;
pub mod pipeline;
pub mod plan;
pub mod procfs;
pub mod report;
pub mod request;
pub mod run;
pub mod streams;

use std::sync::Arc;
use std::time::{Duration, Instant};

use histogram::AddedLatency;
use plan::{Plan, Scenario, Target};
use report::{
    OpenStreamsReport, OpenStreamsTarget, PipelineReport, PipelineRun, RequestReport, RunReport,
    ScenarioReport,
};
use request::RequestTemplate;
use run::{Endpoint, RunOptions, RunOutcome};

/// What the driver needs beyond the plan.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// Processes on the load core besides the driver (the mock), for its CPU figure.
    pub load_core_pids: Vec<u32>,
    /// The ClickHouse `requests` table for the pipeline scenario.
    pub requests_table: Option<pipeline::RequestsTable>,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    #[error("target {target}: {message}")]
    Target { target: String, message: String },
    #[error("scenario {0}: needs --clickhouse-url")]
    NoClickHouse(String),
}

fn endpoint(
    plan: &Plan,
    target: &Target,
    dialect: plan::Dialect,
    stream: bool,
    model_class: &str,
) -> Result<Endpoint, DriverError> {
    agent_endpoint(plan, target, dialect, stream, model_class, false)
}

/// [`endpoint`], with an agent's request when `agent` is set.
fn agent_endpoint(
    plan: &Plan,
    target: &Target,
    dialect: plan::Dialect,
    stream: bool,
    model_class: &str,
    agent: bool,
) -> Result<Endpoint, DriverError> {
    let failure = |message: String| DriverError::Target {
        target: target.name.clone(),
        message,
    };
    let url = target
        .url
        .as_deref()
        .ok_or_else(|| failure("no URL".into()))?;
    let model = target
        .models
        .get(model_class)
        .ok_or_else(|| failure(format!("no model for class {model_class:?}")))?;
    let addr = http::socket_address(url).map_err(failure)?;
    let template = RequestTemplate::build(
        dialect,
        stream,
        model,
        target.api_key.as_deref().unwrap_or("sk-bench"),
        http::authority(url),
        &plan.settings,
        &request::Extras {
            headers: Some(&target.headers),
            agent,
        },
    )
    .map_err(|error| failure(error.to_string()))?;
    Ok(Endpoint {
        addr,
        template: Arc::new(template),
    })
}

/// Sends one request of every (target, dialect, stream, model) a plan uses until each answers
/// well, for at most `limit` (the gateway needs a moment to load its config).
pub async fn wait_until_ready(plan: &Plan, limit: Duration) -> Result<(), DriverError> {
    let started = Instant::now();
    for scenario in &plan.scenarios {
        let (dialect, stream, model, targets): (_, _, _, Vec<&Target>) = match scenario {
            Scenario::Request(request) => (
                request.dialect,
                request.stream,
                &request.model,
                plan.targets
                    .iter()
                    .filter(|target| target.speaks(request.dialect, request.stream))
                    .collect(),
            ),
            // Held streams last long; a plain request proves the route.
            Scenario::OpenStreams(_) => continue,
            Scenario::Pipeline(pipeline) => (
                pipeline.dialect,
                false,
                &pipeline.model,
                plan.targets
                    .iter()
                    .filter(|target| target.name == pipeline.target)
                    .collect(),
            ),
        };
        for target in targets {
            let endpoint = endpoint(plan, target, dialect, stream, model)?;
            loop {
                let mut connection = None;
                let attempt = tokio::time::timeout(
                    Duration::from_secs(5),
                    run::probe(&mut connection, &endpoint),
                )
                .await;
                let last_error = match attempt {
                    Ok(Ok(())) => break,
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => "timeout".to_owned(),
                };
                if started.elapsed() > limit {
                    return Err(DriverError::Target {
                        target: target.name.clone(),
                        message: format!(
                            "not ready for scenario {:?} after {limit:?}: {last_error}",
                            scenario.name()
                        ),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    Ok(())
}

fn run_report(target: &Target, outcome: &RunOutcome, stream: bool) -> RunReport {
    let recorder = &outcome.recorder;
    RunReport {
        target: target.name.clone(),
        seconds: outcome.measured.as_secs_f64(),
        ok: recorder.ok,
        errors: recorder.errors.clone(),
        throughput: outcome.throughput(),
        latency: recorder.latency.summary(),
        service: recorder.service.summary(),
        first_byte: stream.then(|| recorder.first_byte.summary()),
        gaps: stream.then(|| recorder.gaps.summary()),
        ..RunReport::default()
    }
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.max(0.0))
}

/// Runs every scenario of the plan; `on_scenario` sees each one as it finishes.
pub async fn execute(
    plan: &Plan,
    environment: &Environment,
    mut on_scenario: impl FnMut(&ScenarioReport),
) -> Result<Vec<ScenarioReport>, DriverError> {
    plan.check_ready()?;
    let mut reports = Vec::new();
    for scenario in &plan.scenarios {
        let report = match scenario {
            Scenario::Request(request) => {
                ScenarioReport::Request(run_request_scenario(plan, environment, request).await?)
            }
            Scenario::OpenStreams(open) => {
                let mut results = Vec::new();
                for target in plan
                    .targets
                    .iter()
                    .filter(|target| target.speaks(open.dialect, true))
                {
                    let endpoint = endpoint(plan, target, open.dialect, true, &open.model)?;
                    let outcome = streams::hold_open(
                        &endpoint,
                        open.streams,
                        open.batch,
                        seconds(open.open_timeout_seconds),
                        target.pid,
                    )
                    .await;
                    results.push(OpenStreamsTarget {
                        target: target.name.clone(),
                        outcome,
                    });
                }
                ScenarioReport::OpenStreams(OpenStreamsReport {
                    name: open.name.clone(),
                    results,
                })
            }
            Scenario::Pipeline(pipeline) => {
                let table = environment
                    .requests_table
                    .clone()
                    .ok_or_else(|| DriverError::NoClickHouse(pipeline.name.clone()))?;
                ScenarioReport::Pipeline(run_pipeline(plan, pipeline, table).await?)
            }
        };
        on_scenario(&report);
        reports.push(report);
    }
    Ok(reports)
}

async fn run_request_scenario(
    plan: &Plan,
    environment: &Environment,
    scenario: &plan::RequestScenario,
) -> Result<RequestReport, DriverError> {
    let direct = &plan.settings.direct_target;
    let floor = &plan.settings.floor_target;
    let mut report = RequestReport {
        name: scenario.name.clone(),
        dialect: scenario.dialect,
        stream: scenario.stream,
        open_loop: Vec::new(),
        closed_loop: Vec::new(),
    };
    let targets: Vec<&Target> = plan
        .targets
        .iter()
        .filter(|target| target.speaks(scenario.dialect, scenario.stream))
        .collect();
    if let Some(rate) = scenario.rate {
        for &target in &targets {
            let endpoint = agent_endpoint(
                plan,
                target,
                scenario.dialect,
                scenario.stream,
                &scenario.model,
                scenario.agent,
            )?;
            let options = RunOptions {
                warmup: seconds(plan.settings.warmup_seconds),
                measure: seconds(scenario.seconds),
                track_completions: false,
                origin: Instant::now(),
            };
            let outcome = run::open_loop(
                &endpoint,
                rate,
                plan.settings.open_loop_connections,
                options,
            )
            .await;
            let mut run = run_report(target, &outcome, scenario.stream);
            run.rate = Some(rate);
            report.open_loop.push(run);
        }
        if let Some(direct_run) = report
            .open_loop
            .iter()
            .find(|run| &run.target == direct)
            .cloned()
        {
            for run in &mut report.open_loop {
                if &run.target != direct {
                    run.added_vs_direct =
                        Some(AddedLatency::between(&run.latency, &direct_run.latency));
                    if let (Some(first), Some(direct_first)) =
                        (run.first_byte, direct_run.first_byte)
                    {
                        run.added_first_byte_vs_direct =
                            Some(AddedLatency::between(&first, &direct_first));
                    }
                }
            }
        }
    }
    if let Some(concurrency) = scenario.concurrency {
        for &target in &targets {
            let endpoint = agent_endpoint(
                plan,
                target,
                scenario.dialect,
                scenario.stream,
                &scenario.model,
                scenario.agent,
            )?;
            let options = RunOptions {
                warmup: seconds(plan.settings.warmup_seconds),
                measure: seconds(scenario.closed_seconds),
                track_completions: false,
                origin: Instant::now(),
            };
            // Measure CPU over the measured interval only: wait out the warm-up first.
            let target_pid: Vec<u32> = target.pid.into_iter().collect();
            let load_core: Vec<u32> = std::iter::once(std::process::id())
                .chain(environment.load_core_pids.iter().copied())
                .filter(|pid| !target_pid.contains(pid))
                .collect();
            let run = run::closed_loop(&endpoint, concurrency, options);
            let meters = async {
                tokio::time::sleep(options.warmup).await;
                let target_meter = procfs::CpuMeter::start(target_pid.clone());
                let load_meter = procfs::CpuMeter::start(load_core.clone());
                tokio::time::sleep(options.measure).await;
                (target_meter.percent(), load_meter.percent())
            };
            let (outcome, (target_cpu, load_cpu)) = tokio::join!(run, meters);
            let mut run = run_report(target, &outcome, scenario.stream);
            run.concurrency = Some(concurrency);
            run.cpu_target_percent = target_cpu;
            run.cpu_load_core_percent = load_cpu;
            report.closed_loop.push(run);
        }
        if let Some(floor_throughput) = report
            .closed_loop
            .iter()
            .find(|run| &run.target == floor)
            .map(|run| run.throughput)
            .filter(|throughput| *throughput > 0.0)
        {
            for run in &mut report.closed_loop {
                run.throughput_vs_floor = Some(run.throughput / floor_throughput);
            }
        }
    }
    Ok(report)
}

async fn run_pipeline(
    plan: &Plan,
    scenario: &plan::PipelineScenario,
    table: pipeline::RequestsTable,
) -> Result<PipelineReport, DriverError> {
    let target = plan
        .targets
        .iter()
        .find(|target| target.name == scenario.target)
        .ok_or_else(|| DriverError::Target {
            target: scenario.target.clone(),
            message: "not in the plan".into(),
        })?;
    let endpoint = endpoint(plan, target, scenario.dialect, false, &scenario.model)?;
    let drain_limit = seconds(scenario.drain_timeout_seconds);
    let mut runs = Vec::new();
    for closed in [false, true] {
        let no_table = || DriverError::Target {
            target: scenario.target.clone(),
            message: "ClickHouse requests table cannot be counted".into(),
        };
        let baseline = table
            .settled_count(Duration::from_millis(1_500), drain_limit)
            .await
            .ok_or_else(no_table)?;
        let origin = Instant::now();
        let poller =
            pipeline::Poller::start(table.clone(), baseline, origin, Duration::from_millis(20));
        let options = RunOptions {
            warmup: Duration::ZERO,
            measure: seconds(if closed {
                scenario.closed_seconds
            } else {
                scenario.seconds
            }),
            track_completions: true,
            origin,
        };
        let outcome = if closed {
            run::closed_loop(&endpoint, scenario.concurrency, options).await
        } else {
            run::open_loop(
                &endpoint,
                scenario.rate,
                plan.settings.open_loop_connections,
                options,
            )
            .await
        };
        let completions = &outcome.recorder.completions;
        let expected = completions.len() as u64;
        poller.wait_for(expected, drain_limit).await;
        let samples = poller.finish().await;
        let lag = pipeline::match_lags(completions, &samples);
        let rows_visible = samples.last().map_or(0, |(_, rows)| *rows);
        let first_completion = completions.first().map(Duration::as_secs_f64);
        let last_completion = completions.last().map(Duration::as_secs_f64);
        let all_visible = lag.unmatched == 0;
        let projector_rows_per_second = match (all_visible, first_completion, lag.last_visible_s) {
            (true, Some(first), Some(last)) if last > first => Some(expected as f64 / last),
            _ => None,
        };
        let drain_seconds = match (all_visible, last_completion, lag.last_visible_s) {
            (true, Some(last_completion), Some(last_visible)) => {
                Some((last_visible - last_completion).max(0.0))
            }
            _ => None,
        };
        runs.push(PipelineRun {
            mode: if closed {
                "closed loop".into()
            } else {
                "fixed rate".into()
            },
            rate: (!closed).then_some(scenario.rate),
            concurrency: closed.then_some(scenario.concurrency),
            requests: expected,
            errors: outcome.recorder.error_count(),
            ingress_rate: outcome.throughput(),
            rows_visible,
            lag,
            projector_rows_per_second,
            drain_seconds,
        });
    }
    Ok(PipelineReport {
        name: scenario.name.clone(),
        target: scenario.target.clone(),
        runs,
    })
}
