//! The results: serialisable as JSON, and rendered as Markdown tables for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::histogram::{AddedLatency, LatencySummary};
use super::pipeline::LagFigures;
use super::plan::Dialect;
use super::streams::OpenStreamsOutcome;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub started_at: String,
    pub machine: Machine,
    /// What was measured (the source revision of the binaries), as told by the caller.
    pub revision: Option<String>,
    /// Each target's resident memory when idle (before any load) and at the end.
    pub memory: Vec<ProcessMemory>,
    pub scenarios: Vec<ScenarioReport>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProcessMemory {
    pub target: String,
    pub pid: u32,
    pub rss_idle_kb: Option<u64>,
    pub rss_end_kb: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub memory_mb: Option<u64>,
    /// Which cores the driver and each process were pinned to, as told by the caller.
    pub pinning: Option<String>,
    /// `/proc/loadavg` (1, 5, 15 minutes) when the run started and ended: other work on a shared
    /// machine shows up here.
    pub load_average_start: Option<String>,
    pub load_average_end: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScenarioReport {
    Request(RequestReport),
    OpenStreams(OpenStreamsReport),
    Pipeline(PipelineReport),
}

#[derive(Clone, Debug, Serialize)]
pub struct RequestReport {
    pub name: String,
    pub dialect: Dialect,
    pub stream: bool,
    pub open_loop: Vec<RunReport>,
    pub closed_loop: Vec<RunReport>,
}

/// One run against one target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    pub target: String,
    pub rate: Option<u32>,
    pub concurrency: Option<usize>,
    pub seconds: f64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// Answers per second over the measured interval.
    pub throughput: f64,
    /// Open loop: from the due time (no coordinated omission); closed loop: from sending.
    pub latency: LatencySummary,
    /// From actually sending.
    pub service: LatencySummary,
    pub first_byte: Option<LatencySummary>,
    pub gaps: Option<LatencySummary>,
    pub added_vs_direct: Option<AddedLatency>,
    pub added_first_byte_vs_direct: Option<AddedLatency>,
    /// Throughput over the floor's (nginx) in the same scenario.
    pub throughput_vs_floor: Option<f64>,
    /// CPU of the process under test, in % of one core.
    pub cpu_target_percent: Option<f64>,
    /// CPU of the driver and the mock (the load core), in % of one core.
    pub cpu_load_core_percent: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OpenStreamsReport {
    pub name: String,
    pub results: Vec<OpenStreamsTarget>,
}

#[derive(Clone, Debug, Serialize)]
pub struct OpenStreamsTarget {
    pub target: String,
    #[serde(flatten)]
    pub outcome: OpenStreamsOutcome,
}

#[derive(Clone, Debug, Serialize)]
pub struct PipelineReport {
    pub name: String,
    pub target: String,
    pub runs: Vec<PipelineRun>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PipelineRun {
    /// `fixed rate` or `closed loop`.
    pub mode: String,
    pub rate: Option<u32>,
    pub concurrency: Option<usize>,
    pub requests: u64,
    pub errors: u64,
    /// Requests per second through the gateway.
    pub ingress_rate: f64,
    pub rows_visible: u64,
    pub lag: LagFigures,
    /// Rows over the time from the start of the run to the last row visible.
    pub projector_rows_per_second: Option<f64>,
    /// From the last answer to the last row visible.
    pub drain_seconds: Option<f64>,
}

fn ms(micros: f64) -> String {
    format!("{:.3}", micros / 1_000.0)
}

fn signed_ms(micros: f64) -> String {
    format!("{:+.3}", micros / 1_000.0)
}

fn optional<T>(value: Option<T>, show: impl Fn(T) -> String) -> String {
    value.map_or_else(|| "–".to_owned(), show)
}

fn errors(errors: &BTreeMap<String, u64>) -> String {
    let total: u64 = errors.values().sum();
    if total == 0 {
        return "0".into();
    }
    let kinds: Vec<String> = errors
        .iter()
        .map(|(kind, count)| format!("{kind}: {count}"))
        .collect();
    format!("{total} ({})", kinds.join(", "))
}

fn megabytes(kb: Option<u64>) -> String {
    optional(kb, |kb| format!("{:.1}", kb as f64 / 1024.0))
}

/// Renders one scenario as a Markdown section.
pub fn render_scenario(scenario: &ScenarioReport) -> String {
    let mut out = String::new();
    match scenario {
        ScenarioReport::Request(request) => render_request(&mut out, request),
        ScenarioReport::OpenStreams(open) => render_open_streams(&mut out, open),
        ScenarioReport::Pipeline(pipeline) => render_pipeline(&mut out, pipeline),
    }
    out
}

fn render_request(out: &mut String, request: &RequestReport) {
    let _ = writeln!(out, "### {}\n", request.name);
    if !request.open_loop.is_empty() {
        let rate = request.open_loop[0].rate.unwrap_or_default();
        let _ = writeln!(
            out,
            "Open loop at {rate} req/s, latency in ms from the due time (added = minus direct at the same percentile):\n"
        );
        let _ = writeln!(
            out,
            "| target | req/s | errors | p50 | p90 | p99 | p99.9 | max | added p50 | added p99 |"
        );
        let _ = writeln!(out, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        for run in &request.open_loop {
            let latency = &run.latency;
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} |",
                run.target,
                run.throughput,
                errors(&run.errors),
                ms(latency.p50_us),
                ms(latency.p90_us),
                ms(latency.p99_us),
                ms(latency.p999_us),
                ms(latency.max_us),
                optional(run.added_vs_direct, |added| signed_ms(added.p50_us)),
                optional(run.added_vs_direct, |added| signed_ms(added.p99_us)),
            );
        }
        if request.stream {
            let _ = writeln!(
                out,
                "\nStreams at {rate} req/s: time to first byte (ms, from the due time) and gaps between consecutive events (ms):\n"
            );
            let _ = writeln!(
                out,
                "| target | TTFB p50 | TTFB p99 | added TTFB p50 | added TTFB p99 | gap p50 | gap p99 | gap p99.9 | gap max |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            for run in &request.open_loop {
                let first = run.first_byte.unwrap_or_default();
                let gaps = run.gaps.unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    run.target,
                    ms(first.p50_us),
                    ms(first.p99_us),
                    optional(run.added_first_byte_vs_direct, |added| signed_ms(
                        added.p50_us
                    )),
                    optional(run.added_first_byte_vs_direct, |added| signed_ms(
                        added.p99_us
                    )),
                    ms(gaps.p50_us),
                    ms(gaps.p99_us),
                    ms(gaps.p999_us),
                    ms(gaps.max_us),
                );
            }
        }
    }
    if !request.closed_loop.is_empty() {
        let concurrency = request.closed_loop[0].concurrency.unwrap_or_default();
        let _ = writeln!(
            out,
            "\nClosed loop, {concurrency} connections (latency in ms from sending; CPU in % of one core):\n"
        );
        let _ = writeln!(
            out,
            "| target | req/s | vs nginx | errors | p50 | p99 | p99.9 | CPU under test | CPU load core |"
        );
        let _ = writeln!(out, "|---|---:|---:|---|---:|---:|---:|---:|---:|");
        for run in &request.closed_loop {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
                run.target,
                run.throughput,
                optional(run.throughput_vs_floor, |ratio| format!(
                    "{:.0}%",
                    ratio * 100.0
                )),
                errors(&run.errors),
                ms(run.latency.p50_us),
                ms(run.latency.p99_us),
                ms(run.latency.p999_us),
                optional(run.cpu_target_percent, |cpu| format!("{cpu:.0}")),
                optional(run.cpu_load_core_percent, |cpu| format!("{cpu:.0}")),
            );
        }
    }
    out.push('\n');
}

fn render_open_streams(out: &mut String, open: &OpenStreamsReport) {
    let _ = writeln!(out, "### {}\n", open.name);
    let _ = writeln!(
        out,
        "| target | open / asked | failed | seconds to open | RSS before (MB) | RSS open (MB) | RSS after (MB) | kB per stream |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for result in &open.results {
        let outcome = &result.outcome;
        let _ = writeln!(
            out,
            "| {} | {} / {} | {} | {:.2} | {} | {} | {} | {} |",
            result.target,
            outcome.opened,
            outcome.requested,
            outcome.failed,
            outcome.seconds_to_open,
            megabytes(outcome.rss_before_kb),
            megabytes(outcome.rss_open_kb),
            megabytes(outcome.rss_after_kb),
            optional(outcome.kb_per_stream, |kb| format!("{kb:.1}")),
        );
    }
    out.push('\n');
}

fn render_pipeline(out: &mut String, pipeline: &PipelineReport) {
    let _ = writeln!(out, "### {} (through {})\n", pipeline.name, pipeline.target);
    let _ = writeln!(
        out,
        "| run | requests | errors | ingress req/s | rows visible | lag p50 (ms) | lag p99 (ms) | lag max (ms) | unmatched | projector rows/s | drain (s) |"
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in &pipeline.runs {
        let shape = match (run.rate, run.concurrency) {
            (Some(rate), _) => format!("{} {rate} req/s", run.mode),
            (None, Some(concurrency)) => format!("{} ×{concurrency}", run.mode),
            (None, None) => run.mode.clone(),
        };
        let _ = writeln!(
            out,
            "| {shape} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            run.requests,
            run.errors,
            run.ingress_rate,
            run.rows_visible,
            ms(run.lag.lag.p50_us),
            ms(run.lag.lag.p99_us),
            ms(run.lag.lag.max_us),
            run.lag.unmatched,
            optional(run.projector_rows_per_second, |rate| format!("{rate:.0}")),
            optional(run.drain_seconds, |seconds| format!("{seconds:.2}")),
        );
    }
    out.push('\n');
}

/// The whole report as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let machine = &report.machine;
    let _ = writeln!(out, "## Load test, {}\n", report.started_at);
    let _ = writeln!(
        out,
        "Machine: {} CPUs ({}), {} MB memory.{}\n",
        machine.cpus,
        machine.cpu_model.as_deref().unwrap_or("unknown model"),
        optional(machine.memory_mb, |mb| mb.to_string()),
        optional(machine.pinning.as_deref(), |pinning| format!(" {pinning}")),
    );
    let _ = writeln!(
        out,
        "Load average (1, 5, 15 min) at the start: {}; at the end: {}.{}\n",
        machine.load_average_start.as_deref().unwrap_or("–"),
        machine.load_average_end.as_deref().unwrap_or("–"),
        optional(report.revision.as_deref(), |revision| format!(
            " Revision: {revision}."
        )),
    );
    if !report.memory.is_empty() {
        let _ = writeln!(out, "| process | RSS idle (MB) | RSS at the end (MB) |");
        let _ = writeln!(out, "|---|---:|---:|");
        for process in &report.memory {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                process.target,
                megabytes(process.rss_idle_kb),
                megabytes(process.rss_end_kb)
            );
        }
        out.push('\n');
    }
    for scenario in &report.scenarios {
        out.push_str(&render_scenario(scenario));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(p50_us: f64, p99_us: f64) -> LatencySummary {
        LatencySummary {
            count: 100,
            mean_us: p50_us,
            p50_us,
            p90_us: p50_us,
            p99_us,
            p999_us: p99_us,
            max_us: p99_us,
        }
    }

    fn sample() -> Report {
        let direct = RunReport {
            target: "direct".into(),
            rate: Some(1000),
            seconds: 5.0,
            ok: 5000,
            throughput: 1000.0,
            latency: summary(100.0, 300.0),
            first_byte: Some(summary(80.0, 250.0)),
            gaps: Some(summary(0.0, 10.0)),
            ..RunReport::default()
        };
        let ingress = RunReport {
            target: "ingress".into(),
            errors: BTreeMap::from([("status 503".to_owned(), 2)]),
            latency: summary(250.0, 900.0),
            added_vs_direct: Some(AddedLatency {
                p50_us: 150.0,
                p90_us: 150.0,
                p99_us: 600.0,
                p999_us: 600.0,
            }),
            ..direct.clone()
        };
        let closed = RunReport {
            target: "ingress".into(),
            concurrency: Some(64),
            throughput: 20_000.0,
            throughput_vs_floor: Some(0.5),
            cpu_target_percent: Some(99.4),
            ..RunReport::default()
        };
        Report {
            started_at: "2026-01-01T00:00:00Z".into(),
            machine: Machine {
                cpus: 2,
                cpu_model: Some("AMD EPYC".into()),
                memory_mb: Some(24_000),
                pinning: Some("Driver and mock on core 0.".into()),
                load_average_start: Some("0.50 0.40 0.30".into()),
                load_average_end: None,
            },
            revision: Some("abc123".into()),
            memory: vec![ProcessMemory {
                target: "ingress".into(),
                pid: 1,
                rss_idle_kb: Some(20_480),
                rss_end_kb: None,
            }],
            scenarios: vec![
                ScenarioReport::Request(RequestReport {
                    name: "1 passthrough".into(),
                    dialect: Dialect::Openai,
                    stream: true,
                    open_loop: vec![direct, ingress],
                    closed_loop: vec![closed],
                }),
                ScenarioReport::OpenStreams(OpenStreamsReport {
                    name: "4 open".into(),
                    results: vec![OpenStreamsTarget {
                        target: "ingress".into(),
                        outcome: OpenStreamsOutcome {
                            requested: 2000,
                            opened: 2000,
                            rss_before_kb: Some(10_240),
                            rss_open_kb: Some(30_720),
                            kb_per_stream: Some(10.24),
                            ..OpenStreamsOutcome::default()
                        },
                    }],
                }),
                ScenarioReport::Pipeline(PipelineReport {
                    name: "5 pipeline".into(),
                    target: "ingress".into(),
                    runs: vec![PipelineRun {
                        mode: "fixed rate".into(),
                        rate: Some(1000),
                        requests: 5000,
                        rows_visible: 5000,
                        ..PipelineRun::default()
                    }],
                }),
            ],
        }
    }

    #[test]
    fn markdown_has_every_figure_in_milliseconds() {
        let text = render(&sample());
        assert!(
            text.contains(
                "Machine: 2 CPUs (AMD EPYC), 24000 MB memory. Driver and mock on core 0."
            ),
            "{text}"
        );
        assert!(
            text.contains("| direct | 1000 | 0 | 0.100 | 0.100 | 0.300 | 0.300 | 0.300 | – | – |"),
            "{text}"
        );
        assert!(
            text.contains("| ingress | 1000 | 2 (status 503: 2) | 0.250 |"),
            "{text}"
        );
        assert!(text.contains("| +0.150 | +0.600 |"), "{text}");
        assert!(text.contains("TTFB p50"), "{text}");
        assert!(
            text.contains("at the start: 0.50 0.40 0.30; at the end: –. Revision: abc123."),
            "{text}"
        );
        assert!(text.contains("| ingress | 20.0 | – |"), "{text}");
        assert!(text.contains("| ingress | 20000 | 50% | 0 |"), "{text}");
        assert!(text.contains("| 99 | – |"), "{text}");
        assert!(
            text.contains("| ingress | 2000 / 2000 | 0 | 0.00 | 10.0 | 30.0 | – | 10.2 |"),
            "{text}"
        );
        assert!(text.contains("| fixed rate 1000 req/s | 5000 |"), "{text}");
    }

    #[test]
    fn json_is_tagged_by_kind() {
        let json = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["scenarios"][0]["kind"], "request");
        assert_eq!(json["scenarios"][1]["results"][0]["opened"], 2000);
        assert_eq!(json["scenarios"][2]["kind"], "pipeline");
    }
}
