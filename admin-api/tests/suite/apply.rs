//! Declarative config: applying a document publishes only the events needed, so a second
//! apply publishes none (compared by stream message counts); over HTTP and with the CLI
//! (secrets from environment variables), and export without secrets.

use crate::common;

use std::process::Command;

use common::Harness;
use serde_json::{Value, json};

const DOCUMENT: &str = r#"
providers:
  - id: openai
    name: OpenAI
    protocol: openai
    base_url: https://api.openai.com/v1
  - id: anthropic
    name: Anthropic
    protocol: anthropic
    base_url: https://api.anthropic.com/v1
    timeouts: {connect_ms: 2000}
models:
  - id: sonnet
    alias: claude-sonnet
    routes:
      - {provider_id: anthropic, upstream_model: claude-sonnet-4-5, weight: 3}
      - {provider_id: openai, upstream_model: gpt-4.1, priority: 1}
    price: {currency: USD, input_per_million: "3", output_per_million: "15", cache_read_per_million: "0.3"}
    context_window: 200000
tokens:
  - id: ci
    name: CI pipeline
    owner_user_id: admin
    allowed_models: ["claude-*"]
    rpm: 120
    budget: {amount: "25.5", currency: USD, period: monthly}
"#;

#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
async fn apply(harness: &Harness, admin: &str, document: &str) -> (u16, Value) {
    let response = harness
        .http
        .post(format!("{}/api/v1/apply", harness.base))
        .bearer_auth(admin)
        .header("content-type", "application/yaml")
        .body(document.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_apply_twice_publishes_nothing_the_second_time() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;

    let (status, report) = apply(&harness, &admin, DOCUMENT).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["changes"].as_array().unwrap().len(), 4, "{report}");
    assert_eq!(report["revealed_tokens"][0]["id"], "ci");
    assert!(
        report["revealed_tokens"][0]["secret"]
            .as_str()
            .unwrap()
            .starts_with("axg-")
    );
    let after_first = harness.stream_count("AXONGATE_CONFIG").await;

    let (status, report) = apply(&harness, &admin, DOCUMENT).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["changes"], json!([]), "{report}");
    assert_eq!(report["revealed_tokens"], json!([]));
    assert_eq!(
        harness.stream_count("AXONGATE_CONFIG").await,
        after_first,
        "the second apply published nothing"
    );

    // The state is what the document says.
    let (_, model) = harness.get("/api/v1/models/sonnet", &admin).await;
    assert_eq!(model["price"]["cache_read_per_million"], "0.3");
    assert_eq!(model["routes"][0]["weight"], 3);
    let (_, token) = harness.get("/api/v1/tokens/ci", &admin).await;
    assert_eq!(token["budget"]["amount"], "25.5");

    // One change, one event.
    let changed = DOCUMENT.replace("name: OpenAI\n", "name: OpenAI (EU)\n");
    let (status, report) = apply(&harness, &admin, &changed).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["changes"],
        json!([{"entity": "provider", "id": "openai", "action": "updated"}])
    );
    assert_eq!(
        harness.stream_count("AXONGATE_CONFIG").await,
        after_first + 1
    );

    // Export, then apply the export: a round trip that changes nothing.
    let (status, exported) = harness.get("/api/v1/export?format=json", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(exported["providers"].as_array().unwrap().len(), 2);
    let (status, report) = apply(&harness, &admin, &exported.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["changes"], json!([]), "{report}");

    // Pruning removes what the document no longer declares.
    let pruned = "prune: true\nproviders:\n  - {id: openai, name: OpenAI (EU), protocol: openai, base_url: https://api.openai.com/v1}\n";
    let (status, report) = apply(&harness, &admin, pruned).await;
    assert_eq!(status, 200, "{report}");
    let actions: Vec<String> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {} {}", c["action"], c["entity"], c["id"]))
        .collect();
    assert_eq!(
        actions,
        [
            "\"deleted\" \"token\" \"ci\"",
            "\"deleted\" \"model\" \"sonnet\"",
            "\"deleted\" \"provider\" \"anthropic\""
        ]
    );

    // The limits by dimension: applied once, unchanged the second time, exported, checked.
    let limits = "rate_limits:\n  per_user: {rpm: 600}\n  models:\n    gpt-4.1: {tpm: 1000000}\n";
    let (status, report) = apply(&harness, &admin, limits).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["changes"],
        json!([{"entity": "setting", "id": "rate_limits", "action": "created"}])
    );
    let (status, report) = apply(&harness, &admin, limits).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["changes"], json!([]), "{report}");
    let (_, exported) = harness.get("/api/v1/export?format=json", &admin).await;
    assert_eq!(
        exported["rate_limits"],
        json!({"per_user": {"rpm": 600}, "models": {"gpt-4.1": {"tpm": 1000000}}})
    );
    let (status, body) = apply(&harness, &admin, "rate_limits: {per_address: {rpm: 0}}").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "value.per_address", "{body}");

    // A broken document names its problem; a non-admin may not apply.
    let (status, body) = apply(
        &harness,
        &admin,
        "providers: [{id: x, name: X, protocol: smtp, base_url: https://x}]",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (_, operator) = harness.user_session(&admin, "opal", "operator").await;
    let (status, _) = apply(&harness, &operator, DOCUMENT).await;
    assert_eq!(status, 403);
}

#[expect(clippy::unwrap_used, reason = "a test helper fails loudly")]
fn cli(harness: &Harness, arguments: &[&str], secrets: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_admin-api"));
    command
        .args(arguments)
        .env("AXONGATE_NATS_URL", &harness.config.nats_url)
        .env("AXONGATE_POSTGRES_URL", &harness.config.postgres_url)
        .env("AXONGATE_CLICKHOUSE_URL", &harness.config.clickhouse_url)
        .env("AXONGATE_MASTER_KEYS", &harness.config.master_keys)
        .env("AXONGATE_TOKEN_PEPPER", &harness.config.token_pepper);
    for (name, value) in secrets {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_apply_takes_secrets_from_the_environment_and_export_has_none() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let token = shared::token::PlainToken::generate();
    let document = r#"
providers:
  - {id: openai, name: OpenAI, protocol: openai, base_url: "https://api.openai.com/v1"}
provider_keys:
  - {id: openai-main, provider_id: openai, name: main, secret_env: AXG_TEST_OPENAI_KEY}
models:
  - id: gpt
    alias: gpt-4.1
    routes: [{provider_id: openai, upstream_model: gpt-4.1, key_ids: [openai-main]}]
tokens:
  - {id: ci, name: CI, owner_user_id: admin, secret_env: AXG_TEST_TOKEN}
"#;
    let file = std::env::temp_dir()
        .join(kit::testing::unique_name("axongate-apply"))
        .with_extension("yaml");
    std::fs::write(&file, document).unwrap();
    let file_arg = file.to_str().unwrap();
    let key_secret = "sk-from-the-environment-7f3a9c2e";
    let secrets = [
        ("AXG_TEST_OPENAI_KEY", key_secret),
        ("AXG_TEST_TOKEN", token.expose()),
    ];

    let (ok, stdout, stderr) = cli(&harness, &["apply", "-f", file_arg], &secrets);
    assert!(ok, "{stdout}\n{stderr}");
    // Piped, apply draws no progress and prints no summary: the report on stdout is all.
    assert_eq!(stderr, "", "nothing on a piped stderr");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["changes"].as_array().unwrap().len(), 4, "{report}");
    assert_eq!(
        report["revealed_tokens"],
        json!([]),
        "a token from the environment is not revealed"
    );
    let count = harness.stream_count("AXONGATE_CONFIG").await;

    let (ok, stdout, stderr) = cli(&harness, &["apply", "-f", file_arg], &secrets);
    assert!(ok, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["changes"], json!([]), "{report}");
    assert_eq!(
        harness.stream_count("AXONGATE_CONFIG").await,
        count,
        "the second apply published nothing"
    );

    // A new secret in the environment is one key event.
    let rotated = [
        ("AXG_TEST_OPENAI_KEY", "sk-rotated-in-the-environment-0b1d"),
        ("AXG_TEST_TOKEN", token.expose()),
    ];
    let (ok, stdout, stderr) = cli(&harness, &["apply", "-f", file_arg], &rotated);
    assert!(ok, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["changes"],
        json!([{"entity": "provider_key", "id": "openai-main", "action": "updated"}])
    );
    let (_, key) = harness
        .get("/api/v1/provider-keys/openai-main", &admin)
        .await;
    assert_eq!(key["last_four"], "0b1d");
    let (_, stored_token) = harness.get("/api/v1/tokens/ci", &admin).await;
    assert_eq!(stored_token["last_four"], token.last_four());

    // A missing variable is named.
    let (ok, _, stderr) = cli(&harness, &["apply", "-f", file_arg], &[]);
    assert!(!ok);
    assert!(stderr.contains("AXG_TEST_OPENAI_KEY"), "{stderr}");

    let (ok, yaml, stderr) = cli(&harness, &["export"], &[]);
    assert!(ok, "{stderr}");
    assert!(
        yaml.contains("openai-main") && yaml.contains("secret_env"),
        "{yaml}"
    );
    for secret in [
        key_secret,
        "sk-rotated-in-the-environment",
        &token.expose()[4..],
    ] {
        assert!(!yaml.contains(secret), "export holds no secret");
    }
    for (_, payload) in harness.stream_messages("AXONGATE_CONFIG").await {
        assert!(
            !payload.contains("sk-rotated-in-the-environment")
                && !payload.contains(&token.expose()[4..])
        );
    }
    std::fs::remove_file(&file).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_run_demo_applies_once_and_reveals_its_token_once() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    // What compose/local start does with compose/demo.yaml.
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../compose/demo.yaml"))
            .unwrap();
    let file = std::env::temp_dir()
        .join(kit::testing::unique_name("axongate-demo"))
        .with_extension("yaml");
    std::fs::write(&file, template.replace("MOCK_URL", "http://127.0.0.1:9100")).unwrap();
    let file_arg = file.to_str().unwrap();
    let secrets = [(
        "AXONGATE_DEMO_PROVIDER_KEY",
        "demo-key-for-the-mock-upstream",
    )];

    let (ok, stdout, stderr) = cli(&harness, &["apply", "-f", file_arg], &secrets);
    assert!(ok, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["changes"].as_array().unwrap().len(), 13, "{report}");
    let revealed = report["revealed_tokens"].as_array().unwrap();
    assert_eq!(revealed.len(), 1);
    assert_eq!(revealed[0]["id"], "demo");
    assert!(revealed[0]["secret"].as_str().unwrap().starts_with("axg-"));
    for (provider, protocol) in [
        ("demo-openai", "openai"),
        ("demo-responses", "openai_responses"),
        ("demo-anthropic", "anthropic"),
        ("demo-gemini", "gemini"),
    ] {
        let (status, body) = harness
            .get(&format!("/api/v1/providers/{provider}"), &admin)
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["protocol"], protocol);
        assert_eq!(body["allow_private_network"], true);
    }
    let (_, token) = harness.get("/api/v1/tokens/demo", &admin).await;
    assert_eq!(token["allowed_models"], json!(["demo*"]));

    // A second start changes nothing and reveals nothing.
    let (ok, stdout, stderr) = cli(&harness, &["apply", "-f", file_arg], &secrets);
    assert!(ok, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["changes"], json!([]), "{report}");
    assert_eq!(report["revealed_tokens"], json!([]));
}
