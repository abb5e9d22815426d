//! The official `openai` and `anthropic` Python SDKs as real clients, plain and streaming, in
//! every direction between OpenAI Chat, OpenAI Responses and Anthropic (see
//! `tests/sdk/clients.py`). `scripts/test` installs the SDKs into `.local/py` and exports
//! `AXONGATE_PYTHONPATH`.

use crate::support;

use std::process::Command;

use shared::config::Protocol;
use support::Gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_sdks_work_in_both_directions() {
    let python_path = std::env::var("AXONGATE_PYTHONPATH").unwrap_or_else(|_| {
        panic!("AXONGATE_PYTHONPATH is not set: run scripts/test, which installs the SDKs")
    });
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/clients.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .env("PYTHONPATH", python_path)
            .env("AXONGATE_BASE", &node.base)
            .env("AXONGATE_TOKEN", &token)
            .env("CLAUDE_MODEL", "claude-sdk")
            .env("GPT_MODEL", "gpt-sdk")
            .env("RESPONSES_MODEL", "responses-sdk")
            .output()
    })
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
    assert!(
        summary.as_object().is_some_and(|checks| checks.len() >= 20),
        "{summary}"
    );
    eprintln!("SDK checks passed: {summary}");
}
