//! Hardening: slow clients, capacity, the spool-full policy, graceful shutdown, metrics, no
//! secret in any log line, and HTTPS (h2 by ALPN, stalled handshakes, config errors).

use crate::support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shared::config::Protocol;
use support::{Gateway, http};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hello"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_headers_are_cut_off() {
    let gateway = Gateway::start().await;
    let node = gateway.start_node("a").await;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", node.port))
        .await
        .unwrap();
    socket
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buffer = Vec::new();
    // The server closes the connection once the header timeout passes.
    let read =
        tokio::time::timeout(kit::testing::liveness(), socket.read_to_end(&mut buffer)).await;
    assert!(
        read.is_ok(),
        "connection still open after the liveness deadline of incomplete headers"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed too early: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn capacity_and_spool_full_give_clean_503s() {
    let mut gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    gateway
        .add_model(
            "slow",
            vec![("openai-mock", "mock-slow-first-byte-10000", 0)],
        )
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway
        .start_node_with(
            "a",
            &[
                ("AXONGATE_MAX_CONCURRENCY", "1"),
                ("AXONGATE_SPOOL_MAX_BYTES", "2000"),
            ],
            None,
        )
        .await;
    let client = http();

    // One slow request holds the only slot (for ten seconds, ample time to knock however busy
    // the machine is); a second one is refused cleanly.
    let slow = {
        let (client, url, token) = (
            client.clone(),
            format!("{}/v1/chat/completions", node.base),
            token.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&chat("slow", false))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // Wait until the slow request holds the slot (the upstream has it), then knock.
    gateway
        .mock
        .wait_for_requests(1, kit::testing::liveness())
        .await
        .expect("slow request upstream");
    let refused = kit::testing::wait_until(kit::testing::liveness(), "a refusal while the slot is taken", || async {
        let response = client.post(format!("{}/v1/messages", node.base)).header("x-api-key", &token).json(&json!({"model": "gpt", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})).send().await.ok()?;
        (response.status() == 503).then_some(response)
    })
    .await;
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["type"], "error",
        "Anthropic shape for an Anthropic client: {body}"
    );
    assert_eq!(slow.await.unwrap(), 200);

    // NATS away and a tiny spool: once it is full, requests are refused rather than unbilled.
    gateway.nats.stop();
    let refused = kit::testing::wait_until(
        kit::testing::liveness(),
        "the spool-full policy to refuse",
        || async {
            let response = client
                .post(format!("{}/v1/chat/completions", node.base))
                .bearer_auth(&token)
                .json(&chat("gpt", false))
                .send()
                .await
                .ok()?;
            match response.status().as_u16() {
                200 => None,
                503 => Some(response.json::<Value>().await.ok()?),
                other => panic!("unexpected status {other}"),
            }
        },
    )
    .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("spool"),
        "{refused}"
    );
    let metrics = client
        .get(format!("{}/metrics", node.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ingress_refused_spool_full_total"),
        "a metric says so"
    );
    assert!(metrics.contains("ingress_spool_bytes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_finishes_in_flight_streams() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model(
            "streamy",
            vec![("openai-mock", "mock-chunks-40-chunk-delay-25", 0)],
        )
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let node = gateway.start_node("a").await;
    let mut response = http()
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("streamy", true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    // SIGTERM mid-stream: the stream still completes.
    let pid = node.process.0.id();
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    let mut body = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        body.trim_end().ends_with("data: [DONE]"),
        "stream cut short: …{}",
        &body[body.len().saturating_sub(200)..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_secret_in_logs_metrics_or_errors() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_provider("anthropic-mock", Protocol::Anthropic)
        .await;
    gateway
        .add_model(
            "gpt",
            vec![
                ("openai-mock", "mock-fail-first-1-503", 0),
                ("anthropic-mock", "claude-mock", 1),
            ],
        )
        .await;
    gateway
        .add_model("bad", vec![("openai-mock", "mock-401", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let log = gateway.spool_root.with_extension("ingress.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let node = gateway
        .start_node_with("a", &[("AXONGATE_LOG", "trace")], Some(&log))
        .await;
    let client = http();
    let mut seen = String::new();
    for (model, stream) in [("gpt", false), ("gpt", true), ("bad", false)] {
        let response = client
            .post(format!("{}/v1/chat/completions", node.base))
            .bearer_auth(&token)
            .json(&chat(model, stream))
            .send()
            .await
            .unwrap();
        seen.push_str(&response.text().await.unwrap());
    }
    seen.push_str(
        &client
            .get(format!("{}/metrics", node.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    drop(node);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.len() > 1_000, "trace logging produced output");
    for secret in [
        support::PROVIDER_SECRET_OPENAI,
        support::PROVIDER_SECRET_ANTHROPIC,
        token.as_str(),
        support::PEPPER,
    ] {
        assert!(!logs.contains(secret), "a secret appears in the logs");
        assert!(!seen.contains(secret), "a secret appears in a response");
    }
    let master_key = gateway.master_keys_text.split(':').nth(1).unwrap();
    assert!(!logs.contains(master_key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ready_follows_nats_and_postgres_is_not_needed_to_serve() {
    let mut gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    // Postgres unreachable at start: the config comes from the stream instead.
    let node = gateway
        .start_node_with(
            "a",
            &[(
                "AXONGATE_POSTGRES_URL",
                "postgres://nobody@127.0.0.1:1/none",
            )],
            None,
        )
        .await;
    let client = http();
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let ready = format!("{}/ready", node.base);
    gateway.nats.stop();
    kit::testing::wait_http_status(&ready, false, kit::testing::liveness()).await;
    // Still serving from memory while NATS is away.
    let response = client
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    gateway.nats.restart().await;
    kit::testing::wait_http_status(&ready, true, kit::testing::liveness()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn https_serves_h2_by_alpn_and_a_stalled_handshake_holds_up_nobody() {
    let gateway = Gateway::start().await;
    gateway.add_provider("openai-mock", Protocol::OpenAi).await;
    gateway
        .add_model("gpt", vec![("openai-mock", "gpt-mock-1", 0)])
        .await;
    let token = gateway.add_token("tok-1", |_| {}).await;
    let cert = kit::testing::SelfSignedCert::generate();
    let log = gateway.spool_root.with_extension("ingress-tls.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let node = gateway
        .start_node_https("a", &cert, &[("AXONGATE_LOG", "info")], Some(&log))
        .await;
    let trusting = support::https_client(&cert.cert_pem);

    // A client that stops part-way through its handshake (a TLS record header and nothing
    // more), opened first so it is waiting in the server while the others are served.
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", node.port))
        .await
        .unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();

    let health = trusting
        .get(format!("{}/health", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.version(),
        reqwest::Version::HTTP_2,
        "ALPN offers h2 and the client takes it"
    );
    let completion = trusting
        .post(format!("{}/v1/chat/completions", node.base))
        .bearer_auth(&token)
        .json(&chat("gpt", false))
        .send()
        .await
        .unwrap();
    assert_eq!(completion.status(), 200);
    assert_eq!(completion.version(), reqwest::Version::HTTP_2);
    let http1 = reqwest::Client::builder()
        .http1_only()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&cert.cert_pem).unwrap())
        .build()
        .unwrap()
        .get(format!("{}/health", node.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        http1.version(),
        reqwest::Version::HTTP_11,
        "http/1.1 by ALPN too"
    );

    let plain = http()
        .get(format!("http://127.0.0.1:{}/health", node.port))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP to the TLS port must not be answered: {plain:?}"
    );
    // The built-in roots only: our self-signed certificate is not among them.
    let untrusting = reqwest::Client::builder()
        .timeout(kit::testing::liveness())
        .build()
        .unwrap()
        .get(format!("{}/health", node.base))
        .send()
        .await;
    assert!(untrusting.is_err(), "an unknown certificate is refused");

    // The stalled handshake is cut off (the server closes its side), so it cannot hold a
    // connection slot for good.
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(kit::testing::liveness(), stalled.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "a stalled TLS handshake still open after the liveness deadline"
    );

    drop(node);
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("serving HTTPS"),
        "one start line says so: {logs}"
    );
    let key = std::fs::read_to_string(&cert.key_path).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(!logs.contains(key_body), "no key material in the logs");
}

#[test]
fn tls_cert_without_key_stops_with_one_line_naming_the_field() {
    let cert = kit::testing::SelfSignedCert::generate();
    let start = |extra: &[(&str, &std::ffi::OsStr)]| {
        let mut command = std::process::Command::new(support::ingress_binary());
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AXONGATE_NATS_URL", "nats://127.0.0.1:1")
            .env(
                "AXONGATE_POSTGRES_URL",
                "postgres://nobody@127.0.0.1:1/none",
            )
            .env(
                "AXONGATE_MASTER_KEYS",
                shared::secret::MasterKeys::generate_entry(1),
            )
            .env("AXONGATE_TOKEN_PEPPER", support::PEPPER)
            // The start-up line is info; the error is what must fit on one line.
            .env("AXONGATE_LOG", "warn");
        for (name, value) in extra {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let output = start(&[("AXONGATE_TLS_CERT_PATH", cert.cert_path.as_os_str())]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a config error: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("tls_key_path"), "{stderr}");

    // A key file that is not a key: named, and never quoted.
    let not_a_key = cert.dir.join("not-a-key.pem");
    std::fs::write(
        &not_a_key,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let output = start(&[
        ("AXONGATE_TLS_CERT_PATH", cert.cert_path.as_os_str()),
        ("AXONGATE_TLS_KEY_PATH", not_a_key.as_os_str()),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tls_key_path") && stderr.contains("not-a-key.pem"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("c2VjcmV0"),
        "the file's contents are not printed"
    );
}
