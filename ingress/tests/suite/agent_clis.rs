//! The real Claude Code and Codex CLIs (the npm packages pinned in `tests/agents/package.json`)
//! run an agent loop through ingress: the mock upstream, scripted with `MOCK_TOOL_CALL` (see
//! `loadtest/README.md`), asks the agent to create a file with its own editing tool (Claude
//! Code's `Write`, Codex's freeform `apply_patch`); the CLI writes it in a scratch working
//! directory, sends the tool result back, and prints the mock's final answer, which echoes that
//! result. Each run is offline, with a fresh `HOME`, telemetry, update checks and other
//! non-essential traffic off. `scripts/test` installs the CLIs into `$AXONGATE_HOME/agents` and
//! exports `AXONGATE_AGENTS_BIN`.

// The helpers are outside `#[test]` functions, which clippy.toml's test exemption covers.
#![expect(clippy::expect_used, reason = "test helpers panic to fail the test")]

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use kit::testing::unique_name;
use loadtest::mock::RecordedRequest;
use serde_json::{Value, json};
use shared::config::{Protocol, ReasoningSupport};
use support::{Gateway, Node};

/// Liveness only: a CLI run that takes longer has hung.
const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// What the mock answers once it has seen the tool result (`FINAL_ANSWER_MARKER`).
const FINAL_ANSWER: &str = "MOCK_FINAL_ANSWER after";

fn agents_bin(name: &str) -> PathBuf {
    let bin = std::env::var("AXONGATE_AGENTS_BIN").unwrap_or_else(|_| {
        panic!(
            "AXONGATE_AGENTS_BIN is not set: run scripts/test, which installs Claude Code and Codex from tests/agents"
        )
    });
    let path = Path::new(&bin).join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test",
        path.display()
    );
    path
}

/// A scratch folder with a fresh `HOME` and an empty working directory, removed on drop. It is
/// under the target dir rather than /tmp: Codex refuses its helper links under a temp dir.
struct Scratch {
    root: PathBuf,
    home: PathBuf,
    work: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Self {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("agent-clis")
            .join(unique_name(name));
        let home = root.join("home");
        let work = root.join("work");
        std::fs::create_dir_all(&home).expect("create HOME");
        std::fs::create_dir_all(&work).expect("create the working dir");
        Self { root, home, work }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A command with only the environment a run needs: nothing of the developer's (API keys,
/// config folders) leaks in.
fn command(program: &Path, scratch: &Scratch) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &scratch.home)
        .env("LANG", "C.UTF-8")
        .env("NO_COLOR", "1")
        .current_dir(&scratch.work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

async fn run(mut command: tokio::process::Command, what: &str) -> Output {
    let child = command
        .spawn()
        .unwrap_or_else(|error| panic!("start {what}: {error}"));
    tokio::time::timeout(RUN_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {RUN_DEADLINE:?}"))
        .unwrap_or_else(|error| panic!("wait for {what}: {error}"))
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One gateway whose alias `alias` is served by a provider of `protocol` at `upstream_model`,
/// the route declaring how the model takes reasoning (`None`: not declared).
async fn gateway(
    alias: &str,
    protocol: Protocol,
    upstream_model: &str,
    reasoning: Option<ReasoningSupport>,
) -> (Gateway, Node, String) {
    let gateway = Gateway::start().await;
    gateway.add_provider("upstream", protocol).await;
    let mut model = support::model(alias, vec![("upstream", upstream_model, 0)]);
    model.routes[0].capabilities.reasoning = reasoning;
    gateway
        .publish_config(shared::config::ConfigEvent::ModelPut(model))
        .await;
    let token = gateway.add_token("tok-agent", |_| {}).await;
    let log = std::env::temp_dir().join(format!("axg-agents-{}.log", unique_name("n")));
    eprintln!("ingress log: {}", log.display());
    let node = gateway
        .start_node_with(
            "agents",
            &[(
                "AXONGATE_LOG",
                "debug,hyper=info,h2=info,async_nats=info,reqwest=info",
            )],
            Some(&log),
        )
        .await;
    (gateway, node, token)
}

/// The requests the mock received for `upstream_model`.
fn upstream_requests(gateway: &Gateway, upstream_model: &str) -> Vec<RecordedRequest> {
    gateway
        .mock
        .requests()
        .into_iter()
        .filter(|request| request.body["model"] == upstream_model)
        .collect()
}

/// Every part of every content of a Gemini request.
fn gemini_parts(body: &Value) -> impl Iterator<Item = Value> {
    body["contents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .flat_map(|content| content["parts"].as_array().cloned().unwrap_or_default())
}

/// Whether a request body (in its upstream dialect) carries a tool result.
fn carries_tool_result(protocol: Protocol, body: &Value) -> bool {
    let items = |key: &str| body[key].as_array().cloned().unwrap_or_default();
    match protocol {
        Protocol::Anthropic => items("messages").iter().any(|message| {
            message["content"]
                .as_array()
                .is_some_and(|blocks| blocks.iter().any(|block| block["type"] == "tool_result"))
        }),
        Protocol::OpenAi => items("messages")
            .iter()
            .any(|message| message["role"] == "tool"),
        Protocol::OpenAiResponses => items("input").iter().any(|item| {
            item["type"] == "custom_tool_call_output" || item["type"] == "function_call_output"
        }),
        Protocol::Gemini => gemini_parts(body).any(|part| part.get("functionResponse").is_some()),
    }
}

/// The tool call as the second turn repeats it upstream: its name and arguments (for a
/// Responses custom tool, `{"input": <raw input>}`).
fn past_tool_calls(protocol: Protocol, body: &Value) -> Vec<(String, Value)> {
    let items = |key: &str| body[key].as_array().cloned().unwrap_or_default();
    let parse = |text: &Value| {
        serde_json::from_str(text.as_str().unwrap_or_default()).unwrap_or(Value::Null)
    };
    match protocol {
        Protocol::Anthropic => items("messages")
            .iter()
            .flat_map(|message| message["content"].as_array().cloned().unwrap_or_default())
            .filter(|block| block["type"] == "tool_use")
            .map(|block| {
                (
                    block["name"].as_str().unwrap_or_default().to_owned(),
                    block["input"].clone(),
                )
            })
            .collect(),
        Protocol::OpenAi => items("messages")
            .iter()
            .flat_map(|message| {
                message["tool_calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|call| {
                let function = &call["function"];
                (
                    function["name"].as_str().unwrap_or_default().to_owned(),
                    parse(&function["arguments"]),
                )
            })
            .collect(),
        Protocol::OpenAiResponses => items("input")
            .iter()
            .filter_map(|item| {
                let name = item["name"].as_str().unwrap_or_default().to_owned();
                match item["type"].as_str() {
                    Some("custom_tool_call") => Some((name, json!({"input": item["input"]}))),
                    Some("function_call") => Some((name, parse(&item["arguments"]))),
                    _ => None,
                }
            })
            .collect(),
        Protocol::Gemini => gemini_parts(body)
            .filter_map(|part| {
                let call = part.get("functionCall")?;
                Some((
                    call["name"].as_str().unwrap_or_default().to_owned(),
                    call["args"].clone(),
                ))
            })
            .collect(),
    }
}

/// The upstream saw the scripted turn and, later, a turn with the tool's result that repeats
/// the call `(name, arguments)` as the mock made it.
fn assert_second_turn_carried_the_result(
    gateway: &Gateway,
    protocol: Protocol,
    upstream_model: &str,
    call: (&str, Value),
    output: &Output,
) {
    let requests = upstream_requests(gateway, upstream_model);
    let with_result: Vec<_> = requests
        .iter()
        .filter(|request| carries_tool_result(protocol, &request.body))
        .collect();
    assert!(
        requests.len() >= 2 && !with_result.is_empty(),
        "expected a first turn and a turn with the tool result upstream; got {} requests, {} with a tool result\n{}",
        requests.len(),
        with_result.len(),
        describe(output)
    );
    let repeated = past_tool_calls(protocol, &with_result[0].body);
    assert_eq!(
        repeated,
        vec![(call.0.to_owned(), call.1)],
        "the second turn's tool call\n{}",
        describe(output)
    );
    eprintln!(
        "{protocol:?} upstream: {} requests, {} with a tool result",
        requests.len(),
        with_result.len()
    );
}

// ---- Claude Code ----

const CLAUDE_FILE: &str = "hello-claude.txt";
const CLAUDE_CONTENT: &str = "Hello from Claude Code through AxonGate\nsecond line\n";

async fn claude_code_writes_a_file(
    protocol: Protocol,
    upstream_model: &str,
    reasoning: Option<ReasoningSupport>,
) {
    let claude = agents_bin("claude");
    let alias = "claude-agent";
    let (gateway, node, token) = gateway(alias, protocol, upstream_model, reasoning).await;
    let scratch = Scratch::new("claude");
    let target = scratch.work.join(CLAUDE_FILE);
    let arguments = json!({"file_path": target, "content": CLAUDE_CONTENT});
    let prompt = format!("MOCK_TOOL_CALL Write {arguments}");

    let mut command = command(&claude, &scratch);
    command
        .env("ANTHROPIC_BASE_URL", &node.base)
        .env("ANTHROPIC_AUTH_TOKEN", &token)
        .env("ANTHROPIC_MODEL", alias)
        .env("ANTHROPIC_DEFAULT_HAIKU_MODEL", alias)
        .env("ANTHROPIC_DEFAULT_SONNET_MODEL", alias)
        .env("ANTHROPIC_DEFAULT_OPUS_MODEL", alias)
        .env("ANTHROPIC_SMALL_FAST_MODEL", alias)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_ERROR_REPORTING", "1")
        .env("DISABLE_BUG_COMMAND", "1")
        // Running as root rules out --dangerously-skip-permissions; acceptEdits lets Write
        // create files in the working directory without asking.
        .args(["-p", &prompt, "--model", alias, "--output-format", "json"])
        .args([
            "--permission-mode",
            "acceptEdits",
            "--allowedTools",
            "Write",
        ])
        .args(["--max-turns", "4"]);
    let output = run(command, "claude").await;
    let details = describe(&output);
    assert!(output.status.success(), "claude failed\n{details}");

    let written = std::fs::read_to_string(&target)
        .unwrap_or_else(|error| panic!("{} not written ({error})\n{details}", target.display()));
    assert_eq!(written, CLAUDE_CONTENT, "{details}");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("no JSON result on stdout\n{details}"));
    assert_eq!(result["is_error"], false, "{details}");
    let text = result["result"].as_str().unwrap_or_default();
    assert!(
        text.starts_with(&format!("{FINAL_ANSWER} Write: ")),
        "final text: {text}\n{details}"
    );
    assert!(text.contains(CLAUDE_FILE), "final text: {text}");
    eprintln!("claude printed: {text}");
    assert_second_turn_carried_the_result(
        &gateway,
        protocol,
        upstream_model,
        ("Write", arguments),
        &output,
    );
    assert_every_request_clean(&gateway).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claude_code_through_an_anthropic_upstream() {
    claude_code_writes_a_file(
        Protocol::Anthropic,
        "claude-agent-upstream",
        Some(ReasoningSupport::Budget),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claude_code_through_an_openai_chat_upstream() {
    claude_code_writes_a_file(
        Protocol::OpenAi,
        "gpt-agent-upstream",
        Some(ReasoningSupport::Effort),
    )
    .await;
}

/// A Chat model without reasoning (gpt-4.1 class) that refuses any reasoning parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claude_code_through_an_openai_chat_model_without_reasoning() {
    claude_code_writes_a_file(
        Protocol::OpenAi,
        "mock-refuses-reasoning_effort",
        Some(ReasoningSupport::None),
    )
    .await;
}

// ---- Codex ----

/// Codex picks its tools by the model's entry in its bundled catalog: a name it does not know
/// gets fallback metadata without the `apply_patch` tool, so the alias is named like a model it
/// knows.
const CODEX_ALIAS: &str = "gpt-5.5";
const CODEX_FILE: &str = "hello-codex.txt";
const CODEX_CONTENT: &str = "Hello from Codex through AxonGate\nsecond line\n";

async fn codex_applies_a_patch(
    protocol: Protocol,
    upstream_model: &str,
    reasoning: Option<ReasoningSupport>,
) {
    let codex = agents_bin("codex");
    let (gateway, node, token) = gateway(CODEX_ALIAS, protocol, upstream_model, reasoning).await;
    let scratch = Scratch::new("codex");
    let codex_home = scratch.home.join(".codex");
    std::fs::create_dir_all(&codex_home).expect("create ~/.codex");
    let config = format!(
        r#"model = "{CODEX_ALIAS}"
model_provider = "axongate"
approval_policy = "never"
sandbox_mode = "workspace-write"
check_for_update_on_startup = false

[analytics]
enabled = false

[feedback]
enabled = false

[model_providers.axongate]
name = "AxonGate"
base_url = "{base}/v1"
env_key = "AXONGATE_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"#,
        base = node.base
    );
    std::fs::write(codex_home.join("config.toml"), config).expect("write config.toml");
    let added: String = CODEX_CONTENT
        .lines()
        .map(|line| format!("+{line}\n"))
        .collect();
    let patch = format!("*** Begin Patch\n*** Add File: {CODEX_FILE}\n{added}*** End Patch\n");
    let prompt = format!("MOCK_TOOL_CALL apply_patch\n{patch}");
    let last_message = scratch.root.join("last-message.txt");

    let mut command = command(&codex, &scratch);
    command
        .env("AXONGATE_API_KEY", &token)
        .args([
            "exec",
            "--strict-config",
            "--skip-git-repo-check",
            "--ephemeral",
        ])
        .args(["--color", "never", "--json", "-C"])
        .arg(&scratch.work)
        .arg("-o")
        .arg(&last_message)
        .arg(&prompt);
    let output = run(command, "codex exec").await;
    let details = describe(&output);
    assert!(output.status.success(), "codex exec failed\n{details}");

    let target = scratch.work.join(CODEX_FILE);
    let written = std::fs::read_to_string(&target)
        .unwrap_or_else(|error| panic!("{} not written ({error})\n{details}", target.display()));
    assert_eq!(written, CODEX_CONTENT, "{details}");

    let text = std::fs::read_to_string(&last_message).unwrap_or_default();
    assert!(
        text.starts_with(&format!("{FINAL_ANSWER} apply_patch: ")),
        "final text: {text}\n{details}"
    );
    assert!(text.contains(CODEX_FILE), "final text: {text}");
    eprintln!("codex printed: {text}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(FINAL_ANSWER),
        "the final answer is not printed\n{details}"
    );
    // Toward Chat and Anthropic the custom tool's call travels as a function call with the raw
    // patch in the one string argument `input`; toward Responses as a `custom_tool_call`.
    assert_second_turn_carried_the_result(
        &gateway,
        protocol,
        upstream_model,
        ("apply_patch", json!({"input": patch.trim_end()})),
        &output,
    );
    if protocol != Protocol::OpenAiResponses {
        // The gateway offered the custom tool as a function with one string argument.
        let first = &upstream_requests(&gateway, upstream_model)[0].body;
        let tool = first["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|tool| tool["name"] == "apply_patch" || tool["function"]["name"] == "apply_patch")
            .unwrap_or_else(|| panic!("apply_patch not offered upstream: {first}"));
        let schema = if protocol == Protocol::Anthropic {
            &tool["input_schema"]
        } else {
            &tool["function"]["parameters"]
        };
        assert_eq!(schema["properties"]["input"]["type"], "string", "{tool}");
    }
    assert_every_request_clean(&gateway).await;
}

/// No 4xx or 5xx anywhere in the event stream: every request the CLI made succeeded, and no
/// upstream attempt was refused (a parameter the route's model cannot take would show as a 400
/// attempt, even when the drop-and-retry rescues the request).
async fn assert_every_request_clean(gateway: &Gateway) {
    let events = gateway.request_events().await;
    assert!(!events.is_empty(), "no request events");
    for event in &events {
        let shared::request::RequestEvent::Finished(finished) = &event.body;
        assert!(
            finished.http_status < 400 && finished.outcome == shared::request::Outcome::Success,
            "request {} ended {} ({:?}): {finished:?}",
            finished.request_id,
            finished.http_status,
            finished.outcome,
        );
        for attempt in &finished.attempts {
            assert!(
                attempt.status.is_some_and(|status| status < 400),
                "request {}: an upstream attempt answered {:?}",
                finished.request_id,
                attempt.status
            );
        }
    }
    eprintln!("{} request events, all clean", events.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codex_through_an_openai_responses_upstream() {
    codex_applies_a_patch(
        Protocol::OpenAiResponses,
        "gpt-agent-upstream",
        Some(ReasoningSupport::Effort),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codex_through_an_anthropic_upstream() {
    codex_applies_a_patch(
        Protocol::Anthropic,
        "claude-agent-upstream",
        Some(ReasoningSupport::Budget),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codex_through_an_openai_chat_upstream() {
    codex_applies_a_patch(
        Protocol::OpenAi,
        "gpt-agent-upstream",
        Some(ReasoningSupport::Effort),
    )
    .await;
}

/// Codex's reasoning effort toward a Chat model without reasoning that refuses the parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codex_through_an_openai_chat_model_without_reasoning() {
    codex_applies_a_patch(
        Protocol::OpenAi,
        "mock-refuses-reasoning_effort",
        Some(ReasoningSupport::None),
    )
    .await;
}

/// The same toward a Responses model without reasoning (`reasoning` refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn codex_through_an_openai_responses_model_without_reasoning() {
    codex_applies_a_patch(
        Protocol::OpenAiResponses,
        "mock-refuses-reasoning",
        Some(ReasoningSupport::None),
    )
    .await;
}
