//! The official `openai`, `anthropic` and `google-genai` Python SDKs as real clients, plain and
//! streaming, in every direction between OpenAI Chat, OpenAI Responses, Anthropic and Gemini
//! (see `tests/sdk/clients.py` and `tests/sdk/gemini_client.py`). `scripts/test` installs the
//! SDKs into `.local/py` and exports `AXONGATE_PYTHONPATH`.

#![expect(clippy::expect_used, reason = "the helpers of a test fail it loudly")]

use crate::support;

use std::process::Command;

use shared::config::Protocol;
use support::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_sdks_work_in_both_directions() {
    let gateway = Gateway::start().await;
    gateway
        .add_provider("anthropic-mock", Protocol::Anthropic)
        .await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_provider("responses-mock", Protocol::OpenAiResponses)
        .await;
    gateway
        .add_model("claude-sdk", vec![("anthropic-mock", "claude-mock-1", 0)])
        .await;
    gateway
        .add_model("gpt-sdk", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    gateway
        .add_model("responses-sdk", vec![("responses-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-sdk", |_| {}).await;
    let node = gateway.start_node("sdk").await;
    let summary = run_script(
        "clients.py",
        &node.base,
        &token,
        &[
            ("CLAUDE_MODEL", "claude-sdk"),
            ("GPT_MODEL", "gpt-sdk"),
            ("RESPONSES_MODEL", "responses-sdk"),
        ],
    )
    .await;
    assert!(summary.len() >= 20, "{summary:?}");
}

/// Google's Gen AI SDK on both API versions, against a Gemini upstream (pass-through) and
/// Anthropic and OpenAI ones (translated): text, streams, function calls and their results,
/// thoughts, token counts, the model list and errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_google_genai_sdk_works_against_every_upstream() {
    let gateway = Gateway::start().await;
    gateway.add_provider("gemini-mock", Protocol::Gemini).await;
    gateway
        .add_provider("anthropic-mock", Protocol::Anthropic)
        .await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gemini-sdk", vec![("gemini-mock", "gemini-2.5-flash", 0)])
        .await;
    gateway
        .add_model("claude-sdk", vec![("anthropic-mock", "claude-mock-1", 0)])
        .await;
    gateway
        .add_model("gpt-sdk", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-sdk", |_| {}).await;
    let node = gateway.start_node("sdk").await;
    let summary = run_script(
        "gemini_client.py",
        &node.base,
        &token,
        &[
            ("GEMINI_MODEL", "gemini-sdk"),
            ("CLAUDE_MODEL", "claude-sdk"),
            ("GPT_MODEL", "gpt-sdk"),
        ],
    )
    .await;
    // 2 API versions × 3 upstreams × 6 checks, then thoughts, counts, lists and errors.
    assert!(summary.len() >= 45, "{summary:?}");
}

/// Runs one of `tests/sdk/*.py` against `base` and returns its summary (check name → "ok").
async fn run_script(
    script: &str,
    base: &str,
    token: &str,
    models: &[(&str, &str)],
) -> serde_json::Map<String, serde_json::Value> {
    let python_path = std::env::var("AXONGATE_PYTHONPATH").unwrap_or_else(|_| {
        panic!("AXONGATE_PYTHONPATH is not set: run scripts/test, which installs the SDKs")
    });
    let mut command = Command::new("python3");
    command
        .arg(format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR")))
        .env("PYTHONPATH", python_path)
        .env("AXONGATE_BASE", base)
        .env("AXONGATE_TOKEN", token);
    for (name, value) in models {
        command.env(name, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "SDK checks failed:\n{stdout}\n{stderr}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("summary");
    eprintln!("{script}: SDK checks passed: {summary}");
    summary.as_object().cloned().unwrap_or_default()
}
