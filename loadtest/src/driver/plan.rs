//! The benchmark plan: which targets to compare and which scenarios to run against each, read
//! from TOML. Addresses, keys and process ids are machine-specific, so they come from the command
//! line (`name=value` assignments) and are merged in with [`Plan::assign`].

use std::collections::BTreeMap;

use serde::Deserialize;

/// A whole plan file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    #[serde(default)]
    pub settings: Settings,
    #[serde(rename = "target")]
    pub targets: Vec<Target>,
    #[serde(rename = "scenario", default)]
    pub scenarios: Vec<Scenario>,
}

/// Settings shared by every scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Requests sent before measuring, per run, to warm connections and caches.
    pub warmup_seconds: f64,
    /// Connections the open-loop driver keeps; a request waits (and the wait is counted) when all
    /// of them are busy.
    pub open_loop_connections: usize,
    /// The user message of every request.
    pub prompt: String,
    /// `max_tokens` of Anthropic requests.
    pub max_tokens: u32,
    /// The target the others' added latency is measured against (the mock, directly).
    pub direct_target: String,
    /// The target whose throughput is the floor to compare with (nginx).
    pub floor_target: String,
    /// Bytes of instructions in an agent-style request (`agent = true`): about what Claude Code
    /// or Codex send with every turn.
    pub agent_prompt_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            warmup_seconds: 1.0,
            open_loop_connections: 64,
            prompt: "Say hello to the benchmark in a few words.".into(),
            max_tokens: 256,
            direct_target: "direct".into(),
            floor_target: "nginx".into(),
            agent_prompt_bytes: 20_000,
        }
    }
}

/// One server to measure: the mock itself, a reverse proxy in front of it, or the gateway.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub name: String,
    /// Model name to send for each model class a scenario names (`plain`, `stream`, …): the mock
    /// reads behaviour from `mock-…` names, the gateway maps its aliases to them.
    pub models: BTreeMap<String, String>,
    /// `http://host:port`, without a path.
    #[serde(default)]
    pub url: Option<String>,
    /// The credential to send (any non-empty key for the mock, a token for the gateway).
    #[serde(default)]
    pub api_key: Option<String>,
    /// The process that serves this target, for CPU and memory figures.
    #[serde(default)]
    pub pid: Option<u32>,
    /// Headers sent with every request (a gateway that is told its upstream per request).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The client dialects the target serves; scenarios in another are skipped for it (all when
    /// unset).
    #[serde(default)]
    pub dialects: Option<Vec<Dialect>>,
    /// A target the script may not have started (a peer gateway needing a package registry):
    /// without a URL it is left out instead of failing the plan.
    #[serde(default)]
    pub optional: bool,
    /// Whether the target can stream; streamed scenarios leave it out when not.
    #[serde(default = "default_true")]
    pub streams: bool,
}

fn default_true() -> bool {
    true
}

impl Target {
    /// Whether the target takes requests in `dialect`, streamed or not.
    #[must_use]
    pub fn speaks(&self, dialect: Dialect, stream: bool) -> bool {
        (self.streams || !stream)
            && self
                .dialects
                .as_ref()
                .is_none_or(|dialects| dialects.contains(&dialect))
    }
}

/// The client protocol of a scenario.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// OpenAI Chat Completions, `POST /v1/chat/completions`.
    Openai,
    /// Anthropic Messages, `POST /v1/messages`.
    Anthropic,
}

/// One scenario of the plan.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scenario {
    /// Latency at a fixed rate (open loop) and throughput at a fixed concurrency (closed loop).
    Request(RequestScenario),
    /// Many streams held open at once, for memory per stream.
    OpenStreams(OpenStreamsScenario),
    /// Requests through the gateway until their rows are visible in ClickHouse.
    Pipeline(PipelineScenario),
}

impl Scenario {
    pub fn name(&self) -> &str {
        match self {
            Self::Request(scenario) => &scenario.name,
            Self::OpenStreams(scenario) => &scenario.name,
            Self::Pipeline(scenario) => &scenario.name,
        }
    }

    fn model(&self) -> &str {
        match self {
            Self::Request(scenario) => &scenario.model,
            Self::OpenStreams(scenario) => &scenario.model,
            Self::Pipeline(scenario) => &scenario.model,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestScenario {
    pub name: String,
    pub dialect: Dialect,
    #[serde(default)]
    pub stream: bool,
    /// A model class every target maps in its `models`.
    pub model: String,
    /// An agent's request instead of a short chat: `settings.agent_prompt_bytes` of
    /// instructions, a few earlier turns and eight tools with their schemas (the upstream answers
    /// with a tool call).
    #[serde(default)]
    pub agent: bool,
    /// Open loop: requests per second; no open-loop run when absent.
    #[serde(default)]
    pub rate: Option<u32>,
    /// Open loop: measured seconds.
    #[serde(default = "default_seconds")]
    pub seconds: f64,
    /// Closed loop: concurrent connections; no closed-loop run when absent.
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// Closed loop: measured seconds.
    #[serde(default = "default_seconds")]
    pub closed_seconds: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenStreamsScenario {
    pub name: String,
    pub dialect: Dialect,
    /// A model class whose streams last longer than it takes to open them all.
    pub model: String,
    pub streams: usize,
    /// Streams opened at a time, so a listen backlog never overflows.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Longest wait for every stream to be open.
    #[serde(default = "default_open_timeout")]
    pub open_timeout_seconds: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineScenario {
    pub name: String,
    /// The gateway target whose events are projected.
    pub target: String,
    pub dialect: Dialect,
    pub model: String,
    /// Open-loop rate whose lag is measured.
    pub rate: u32,
    #[serde(default = "default_seconds")]
    pub seconds: f64,
    /// Closed-loop concurrency of the burst at the highest rate.
    pub concurrency: usize,
    #[serde(default = "default_seconds")]
    pub closed_seconds: f64,
    /// Longest wait for every row to be visible after a run.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_seconds: f64,
}

fn default_seconds() -> f64 {
    5.0
}
fn default_batch() -> usize {
    250
}
fn default_open_timeout() -> f64 {
    30.0
}
fn default_drain_timeout() -> f64 {
    60.0
}

/// What can be wrong with a plan.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("plan: {0}")]
    Syntax(String),
    #[error("plan: {0}")]
    Invalid(String),
}

impl Plan {
    /// Parses and validates a plan (without the command-line assignments).
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let plan: Self =
            toml::from_str(text).map_err(|error| PlanError::Syntax(error.to_string()))?;
        plan.validate_shape()?;
        Ok(plan)
    }

    fn validate_shape(&self) -> Result<(), PlanError> {
        let invalid = |message: String| Err(PlanError::Invalid(message));
        if self.targets.is_empty() {
            return invalid("at least one [[target]] is needed".into());
        }
        let mut names = std::collections::BTreeSet::new();
        for target in &self.targets {
            if !names.insert(target.name.as_str()) {
                return invalid(format!("target {:?} appears twice", target.name));
            }
        }
        if self.settings.open_loop_connections == 0 {
            return invalid("settings.open_loop_connections must be at least 1".into());
        }
        if self.settings.warmup_seconds.is_nan() || self.settings.warmup_seconds < 0.0 {
            return invalid("settings.warmup_seconds must not be negative".into());
        }
        for scenario in &self.scenarios {
            let name = scenario.name();
            let targets: Vec<&Target> = match scenario {
                Scenario::Pipeline(pipeline) => {
                    match self
                        .targets
                        .iter()
                        .find(|target| target.name == pipeline.target)
                    {
                        Some(target) => vec![target],
                        None => {
                            return invalid(format!(
                                "scenario {name:?}: no target named {:?}",
                                pipeline.target
                            ));
                        }
                    }
                }
                _ => self.targets.iter().collect(),
            };
            for target in targets {
                if !target.models.contains_key(scenario.model()) {
                    return invalid(format!(
                        "scenario {name:?}: target {:?} has no model for class {:?}",
                        target.name,
                        scenario.model()
                    ));
                }
            }
            let positive = |value: f64, field: &str| -> Result<(), PlanError> {
                if value > 0.0 && value.is_finite() {
                    Ok(())
                } else {
                    Err(PlanError::Invalid(format!(
                        "scenario {name:?}: {field} must be positive"
                    )))
                }
            };
            match scenario {
                Scenario::Request(request) => {
                    if request.rate.is_none() && request.concurrency.is_none() {
                        return invalid(format!(
                            "scenario {name:?}: set rate (open loop), concurrency (closed loop) or both"
                        ));
                    }
                    if request.rate == Some(0) || request.concurrency == Some(0) {
                        return invalid(format!(
                            "scenario {name:?}: rate and concurrency must be at least 1"
                        ));
                    }
                    positive(request.seconds, "seconds")?;
                    positive(request.closed_seconds, "closed_seconds")?;
                }
                Scenario::OpenStreams(open) => {
                    if open.streams == 0 || open.batch == 0 {
                        return invalid(format!(
                            "scenario {name:?}: streams and batch must be at least 1"
                        ));
                    }
                    positive(open.open_timeout_seconds, "open_timeout_seconds")?;
                }
                Scenario::Pipeline(pipeline) => {
                    if pipeline.rate == 0 || pipeline.concurrency == 0 {
                        return invalid(format!(
                            "scenario {name:?}: rate and concurrency must be at least 1"
                        ));
                    }
                    positive(pipeline.seconds, "seconds")?;
                    positive(pipeline.closed_seconds, "closed_seconds")?;
                    positive(pipeline.drain_timeout_seconds, "drain_timeout_seconds")?;
                }
            }
        }
        Ok(())
    }

    /// Applies one command-line assignment: `field` is `url`, `key` or `pid`, `assignment` is
    /// `target=value`.
    pub fn assign(&mut self, field: &str, assignment: &str) -> Result<(), PlanError> {
        let (name, value) = assignment.split_once('=').ok_or_else(|| {
            PlanError::Invalid(format!("--{field} {assignment:?}: expected TARGET=VALUE"))
        })?;
        let target = self
            .targets
            .iter_mut()
            .find(|target| target.name == name)
            .ok_or_else(|| PlanError::Invalid(format!("--{field}: no target named {name:?}")))?;
        match field {
            "url" => {
                let url = value.trim_end_matches('/');
                if !url.starts_with("http://") {
                    return Err(PlanError::Invalid(format!(
                        "--url {name}: {value:?} is not an http:// URL"
                    )));
                }
                target.url = Some(url.to_owned());
            }
            "key" => target.api_key = Some(value.to_owned()),
            "header" => {
                let (header, text) = value.split_once(':').ok_or_else(|| {
                    PlanError::Invalid(format!("--header {name}: expected NAME:VALUE"))
                })?;
                target
                    .headers
                    .insert(header.trim().to_owned(), text.trim().to_owned());
            }
            "pid" => {
                target.pid = Some(value.parse().map_err(|_| {
                    PlanError::Invalid(format!("--pid {name}: {value:?} is not a process id"))
                })?);
            }
            other => return Err(PlanError::Invalid(format!("unknown field {other:?}"))),
        }
        Ok(())
    }

    /// Keeps only the scenarios whose name contains one of `filters` (all when empty).
    pub fn retain_scenarios(&mut self, filters: &[String]) {
        if !filters.is_empty() {
            self.scenarios.retain(|scenario| {
                filters
                    .iter()
                    .any(|filter| scenario.name().contains(filter.as_str()))
            });
        }
    }

    /// Multiplies every duration by `factor` (a smoke run uses a small one).
    pub fn scale_durations(&mut self, factor: f64) {
        self.settings.warmup_seconds *= factor;
        for scenario in &mut self.scenarios {
            match scenario {
                Scenario::Request(request) => {
                    request.seconds *= factor;
                    request.closed_seconds *= factor;
                }
                Scenario::OpenStreams(_) => {}
                Scenario::Pipeline(pipeline) => {
                    pipeline.seconds *= factor;
                    pipeline.closed_seconds *= factor;
                }
            }
        }
    }

    /// Leaves out the optional targets that were given no URL (a peer the script could not
    /// start), naming them.
    pub fn drop_absent_optional(&mut self) -> Vec<String> {
        let absent: Vec<String> = self
            .targets
            .iter()
            .filter(|target| target.optional && target.url.is_none())
            .map(|target| target.name.clone())
            .collect();
        self.targets.retain(|target| !absent.contains(&target.name));
        absent
    }

    /// Checks that every target can be reached: it has a URL.
    pub fn check_ready(&self) -> Result<(), PlanError> {
        match self.targets.iter().find(|target| target.url.is_none()) {
            Some(target) => Err(PlanError::Invalid(format!(
                "target {:?} has no URL: pass --url {}=http://…",
                target.name, target.name
            ))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
[settings]
warmup_seconds = 0.5

[[target]]
name = "direct"
models = { plain = "mock-bench", hold = "mock-chunks-20-chunk-delay-500" }

[[target]]
name = "ingress"
models = { plain = "bench", hold = "bench-hold" }

[[scenario]]
kind = "request"
name = "1 passthrough"
dialect = "openai"
model = "plain"
rate = 1000
concurrency = 64

[[scenario]]
kind = "open_streams"
name = "4 open streams"
dialect = "anthropic"
model = "hold"
streams = 2000

[[scenario]]
kind = "pipeline"
name = "5 pipeline"
target = "ingress"
dialect = "openai"
model = "plain"
rate = 500
concurrency = 32
"#;

    fn invalid(text: &str) -> String {
        match Plan::parse(text) {
            Err(PlanError::Invalid(message) | PlanError::Syntax(message)) => message,
            Ok(_) => panic!("accepted: {text}"),
        }
    }

    #[test]
    fn parses_every_kind_with_defaults() {
        let plan = Plan::parse(PLAN).unwrap();
        assert_eq!(plan.settings.warmup_seconds, 0.5);
        assert_eq!(plan.settings.open_loop_connections, 64);
        assert_eq!(plan.targets.len(), 2);
        let Scenario::Request(request) = &plan.scenarios[0] else {
            panic!("{:?}", plan.scenarios[0])
        };
        assert_eq!(request.rate, Some(1000));
        assert_eq!(request.concurrency, Some(64));
        assert_eq!(request.seconds, 5.0);
        assert!(!request.stream);
        let Scenario::OpenStreams(open) = &plan.scenarios[1] else {
            panic!("{:?}", plan.scenarios[1])
        };
        assert_eq!((open.streams, open.batch), (2000, 250));
        assert_eq!(open.dialect, Dialect::Anthropic);
        let Scenario::Pipeline(pipeline) = &plan.scenarios[2] else {
            panic!("{:?}", plan.scenarios[2])
        };
        assert_eq!(pipeline.target, "ingress");
        assert_eq!(pipeline.drain_timeout_seconds, 60.0);
    }

    #[test]
    fn the_shipped_plan_is_valid() {
        let text = include_str!("../../plans/bench.toml");
        let plan = Plan::parse(text).unwrap();
        assert!(plan.scenarios.len() >= 5);
    }

    #[test]
    fn rejects_unknown_fields_kinds_and_missing_models() {
        assert!(invalid(&PLAN.replace("rate = 1000", "rate = 1000\nspeed = 3")).contains("speed"));
        assert!(invalid(&PLAN.replace("kind = \"request\"", "kind = \"soak\"")).contains("soak"));
        assert!(
            invalid(&PLAN.replace("plain = \"bench\"", "other = \"bench\""))
                .contains("no model for class \"plain\"")
        );
        assert!(
            invalid(&PLAN.replace("target = \"ingress\"", "target = \"nope\"")).contains("nope")
        );
        assert!(invalid(&PLAN.replace("rate = 1000\nconcurrency = 64", "")).contains("set rate"));
        assert!(invalid(&PLAN.replace("streams = 2000", "streams = 0")).contains("at least 1"));
        assert!(
            invalid(&PLAN.replace("name = \"ingress\"", "name = \"direct\"")).contains("twice")
        );
    }

    #[test]
    fn assignments_fill_in_urls_keys_and_pids() {
        let mut plan = Plan::parse(PLAN).unwrap();
        assert!(plan.check_ready().is_err());
        plan.assign("url", "direct=http://127.0.0.1:9100/").unwrap();
        plan.assign("url", "ingress=http://127.0.0.1:8080").unwrap();
        plan.assign("key", "ingress=axg-secret=with-equals")
            .unwrap();
        plan.assign("pid", "ingress=4242").unwrap();
        plan.check_ready().unwrap();
        let ingress = &plan.targets[1];
        assert_eq!(
            plan.targets[0].url.as_deref(),
            Some("http://127.0.0.1:9100")
        );
        assert_eq!(ingress.api_key.as_deref(), Some("axg-secret=with-equals"));
        assert_eq!(ingress.pid, Some(4242));
        assert!(plan.assign("url", "nginx=http://x").is_err());
        assert!(plan.assign("url", "direct=https://x").is_err());
        assert!(plan.assign("pid", "direct=abc").is_err());
        assert!(plan.assign("url", "no-equals-sign").is_err());
    }

    #[test]
    fn filters_and_scaling() {
        let mut plan = Plan::parse(PLAN).unwrap();
        plan.scale_durations(0.1);
        let Scenario::Request(request) = &plan.scenarios[0] else {
            panic!()
        };
        assert!((request.seconds - 0.5).abs() < 1e-9);
        plan.retain_scenarios(&["pipe".into(), "open".into()]);
        let names: Vec<_> = plan.scenarios.iter().map(Scenario::name).collect();
        assert_eq!(names, ["4 open streams", "5 pipeline"]);
    }
}
