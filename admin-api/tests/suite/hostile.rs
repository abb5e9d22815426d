//! What a hostile client, member or operator can do (issue 13), tried against a real admin-api
//! over real NATS and Postgres: each test fails on the code before the fix.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use crate::common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use common::{ADMIN_PASSWORD, Harness};
use kit::testing::{liveness, wait_until};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A client whose requests come from `address` (any 127.x address works on loopback).
fn client_from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn login_at(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> (u16, Value) {
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn login_failures(harness: &Harness) -> Vec<Value> {
    harness
        .stream_messages("AXONGATE_AUDIT")
        .await
        .into_iter()
        .filter(|(subject, _)| subject == "axongate.audit.login_failed")
        .map(|(_, payload)| serde_json::from_str::<Value>(&payload).unwrap()["payload"].clone())
        .collect()
}

// ---- item 6: login flood ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_flood_is_bounded_and_keeps_no_typed_password() {
    let harness = Harness::start_with(|config| config.login_concurrency = 1).await;
    let admin = harness.admin().await;

    // An overlong username is refused before anything records it.
    let huge = "u".repeat(100_000);
    let before = harness.stream_count("AXONGATE_AUDIT").await;
    let (status, body) = harness
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": huge, "password": "x"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "username");
    assert_eq!(harness.stream_count("AXONGATE_AUDIT").await, before);

    // A password typed into the username field is kept nowhere.
    let typed = "Tr0ub4dor&3-correct-horse";
    let (status, _) = harness
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"username": typed, "password": "whatever-else"})),
        )
        .await;
    assert_eq!(status, 401);
    let failures = login_failures(&harness).await;
    let recorded = failures
        .iter()
        .find(|failure| failure["reason"] == "unknown_user")
        .unwrap_or_else(|| panic!("the unknown-user failure is audited: {failures:?}"));
    assert!(
        recorded["username"]
            .as_str()
            .unwrap()
            .starts_with("unknown-user#")
    );
    for (_, payload) in harness.stream_messages("AXONGATE_AUDIT").await {
        assert!(!payload.contains(typed), "in the audit stream: {payload}");
        assert!(payload.len() < 10_000, "an audit event stays small");
    }
    assert!(
        !common::logs().contains(typed),
        "the typed password is in the logs"
    );
    let audit = wait_until(liveness(), "the failure in /audit", || async {
        let (status, audit) = harness.get("/api/v1/audit?type=login.failed", &admin).await;
        assert_eq!(status, 200, "{audit}");
        audit.to_string().contains("unknown-user#").then_some(audit)
    })
    .await;
    assert!(!audit.to_string().contains(typed));

    // Password checks are bounded: with one slot, a burst is answered 503 (or throttled), never
    // queued without bound, never a 500.
    let client = client_from("127.0.0.5");
    let attempts = (0..32).map(|index| {
        let client = client.clone();
        let base = harness.base.clone();
        async move {
            login_at(&client, &base, &format!("nobody-{index}"), "wrong-password")
                .await
                .0
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert!(
        statuses
            .iter()
            .all(|status| [401, 429, 503].contains(status)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "a burst beyond the argon2 bound is refused: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_per_address_and_user_across_processes_and_audited_in_aggregate() {
    let harness = Harness::start().await;
    harness.admin().await;
    // A second admin-api process on the same bus and database.
    let (second, _task) = common::spawn_admin_api(harness.config.clone()).await;
    wait_until(liveness(), "the second admin-api", || async {
        kit::testing::http_get_status(&format!("{second}/health"))
            .await
            .filter(|status| *status == 200)
    })
    .await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..3 {
        let (status, body) = login_at(&attacker, &harness.base, "admin", "not-the-password").await;
        assert_eq!(status, 401, "{body}");
    }
    // The other process throttles the same address and user, even with the right password.
    let (status, body) = login_at(&attacker, &second, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]["code"] == "too_many_attempts");
    // The real user, elsewhere, is not locked out.
    let (status, body) =
        login_at(&client_from("127.0.0.1"), &second, "admin", ADMIN_PASSWORD).await;
    assert_eq!(status, 200, "{body}");

    // A flood of throttled attempts is counted, not audited one event each.
    let flood = 40;
    let mut answered = Vec::new();
    for index in 0..flood {
        let base = if index % 2 == 0 {
            &harness.base
        } else {
            &second
        };
        answered.push(login_at(&attacker, base, "admin", "still-wrong").await.0);
    }
    assert!(answered.iter().all(|status| [401, 429].contains(status)));
    let from_attacker: Vec<Value> = login_failures(&harness)
        .await
        .into_iter()
        .filter(|failure| failure["client_ip"] == "127.0.0.2")
        .collect();
    assert!(
        from_attacker
            .iter()
            .any(|failure| failure["reason"] == "throttled"),
        "{from_attacker:?}"
    );
    assert!(
        from_attacker.len() < 20,
        "{} events for {} attempts: {from_attacker:?}",
        from_attacker.len(),
        flood + 4
    );
}

// ---- items 7 and 8: where keys are sent -----------------------------------------------------

/// An upstream that records every `Authorization` header it is sent.
async fn recording_upstream(bind: &str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let app = Router::new().route(
        "/v1/models",
        get(move |headers: HeaderMap| {
            let recorded = Arc::clone(&recorded);
            async move {
                let presented = headers
                    .get("authorization")
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                recorded.lock().unwrap().push(presented);
                axum::Json(json!({"object": "list", "data": []}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(bind).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_where_keys_go_needs_an_admin_or_the_secret() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (_, operator) = harness.user_session(&admin, "olga", "operator").await;
    let (home_port, home) = recording_upstream("127.0.0.1:0").await;
    let (elsewhere_port, elsewhere) = recording_upstream("127.0.0.1:0").await;
    let secret = "sk-home-only-0123456789abcdef";
    for (id, port) in [("home", home_port), ("elsewhere", elsewhere_port)] {
        let (status, body) = harness
            .post(
                "/api/v1/providers",
                &admin,
                json!({"id": id, "name": id, "protocol": "openai", "base_url": format!("http://127.0.0.1:{port}/v1"), "allow_private_network": true}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, key) = harness
        .post(
            "/api/v1/provider-keys",
            &operator,
            json!({"id": "k", "provider_id": "home", "name": "k", "secret": secret}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    // The new key's ciphertext is bound to its provider (format 2).
    let sealed = harness
        .stream_messages("AXONGATE_CONFIG")
        .await
        .into_iter()
        .rfind(|(subject, _)| subject == "axongate.config.provider_key.k")
        .unwrap()
        .1;
    assert!(sealed.contains("\"format\":2"), "{sealed}");

    // An operator cannot repoint the provider, or move the key, without the secret.
    let (_, provider) = harness.get("/api/v1/providers/home", &admin).await;
    let elsewhere_url = format!("http://127.0.0.1:{elsewhere_port}/v1");
    let (status, body) = harness
        .patch(
            "/api/v1/providers/home",
            &operator,
            json!({"version": provider["version"], "base_url": elsewhere_url}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "secret_required");
    let (status, _) = harness
        .patch(
            "/api/v1/providers/home",
            &operator,
            json!({"version": provider["version"], "base_url": elsewhere_url, "key_secrets": {"k": "sk-a-guess"}}),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = harness
        .patch(
            "/api/v1/providers/home",
            &operator,
            json!({"version": provider["version"], "allow_private_network": false}),
        )
        .await;
    assert_eq!(status, 403, "the private-network flag is a destination too");
    let (status, body) = harness
        .patch(
            "/api/v1/provider-keys/k",
            &operator,
            json!({"version": key["version"], "provider_id": "elsewhere"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "secret_required");
    // Other changes stay the operator's.
    let (status, renamed) = harness
        .patch(
            "/api/v1/providers/home",
            &operator,
            json!({"version": provider["version"], "name": "Home"}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");
    // Knowing every key's secret, the operator may repoint it: nothing new is learnt.
    let (status, moved) = harness
        .patch(
            "/api/v1/providers/home",
            &operator,
            json!({"version": renamed["version"], "base_url": elsewhere_url, "key_secrets": {"k": secret}}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    let (status, _) = harness
        .patch(
            "/api/v1/providers/home",
            &admin,
            json!({"version": moved["version"], "base_url": format!("http://127.0.0.1:{home_port}/v1")}),
        )
        .await;
    assert_eq!(status, 200, "an admin may repoint without the secrets");

    // An admin may move the key without its secret: it is re-sealed for the new provider and
    // still works there.
    let (status, body) = harness
        .patch(
            "/api/v1/provider-keys/k",
            &admin,
            json!({"version": key["version"], "provider_id": "elsewhere"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, tested) = harness
        .post("/api/v1/provider-keys/k/test", &admin, json!({}))
        .await;
    assert_eq!(status, 200, "{tested}");
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(*elsewhere.lock().unwrap(), vec![format!("Bearer {secret}")]);
    assert!(home.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_test_resolves_names_and_refuses_special_addresses() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let (port, seen) = recording_upstream("127.0.0.1:0").await;
    // A host name that resolves to loopback: the machine's own name where it does (it is what
    // the issue used to reach ClickHouse), `localhost` otherwise.
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let resolves_to_loopback = !hostname.is_empty()
        && tokio::net::lookup_host((hostname.as_str(), port))
            .await
            .is_ok_and(|mut addresses| addresses.any(|address| address.ip().is_loopback()));
    let name = if resolves_to_loopback {
        hostname
    } else {
        "localhost".to_owned()
    };
    let cases = [
        ("by-name", format!("http://{name}:{port}/v1")),
        ("cgnat", "http://100.64.0.1:9/v1".to_owned()),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}/v1")),
    ];
    for (id, base_url) in &cases {
        let (status, body) = harness
            .post(
                "/api/v1/providers",
                &admin,
                json!({"id": id, "name": id, "protocol": "openai", "base_url": base_url}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = harness
            .post(
                "/api/v1/provider-keys",
                &admin,
                json!({"id": format!("{id}-key"), "provider_id": id, "name": "k", "secret": "sk-never-sent-anywhere"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = harness
            .post(
                &format!("/api/v1/provider-keys/{id}-key/test"),
                &admin,
                json!({}),
            )
            .await;
        assert_eq!(status, 400, "{id} ({base_url}): {body}");
        assert_eq!(body["error"]["code"], "private_network_refused", "{id}");
    }
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the upstream"
    );
    // Allowed explicitly, the same name is resolved and reached.
    let (_, provider) = harness.get("/api/v1/providers/by-name", &admin).await;
    let (status, _) = harness
        .patch(
            "/api/v1/providers/by-name",
            &admin,
            json!({"version": provider["version"], "allow_private_network": true}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = harness
        .post("/api/v1/provider-keys/by-name-key/test", &admin, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

// ---- item 9: apply over HTTP ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_over_http_never_reads_the_environment() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    let apply = |document: String| {
        let harness = &harness;
        let admin = admin.clone();
        async move {
            let response = harness
                .http
                .post(format!("{}/api/v1/apply", harness.base))
                .bearer_auth(admin)
                .header("content-type", "application/yaml")
                .body(document)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let provider =
        "providers:\n  - {id: p, name: P, protocol: openai, base_url: https://api.openai.com/v1}\n";
    // PATH is set in every process; the other name in none. The answers must not differ.
    let mut answers = Vec::new();
    for variable in ["PATH", "AXG_SURELY_NOT_SET_4d1c"] {
        let document = format!(
            "{provider}provider_keys:\n  - {{id: k, provider_id: p, name: k, secret_env: {variable}}}\n"
        );
        let (status, body) = apply(document).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["field"], "provider_keys.secret_env");
        answers.push(body["error"].clone());
    }
    assert_eq!(
        answers[0], answers[1],
        "a missing variable is indistinguishable"
    );
    let path = std::env::var("PATH").unwrap();
    for (_, payload) in harness.stream_messages("AXONGATE_CONFIG").await {
        assert!(
            !payload.contains("provider_key"),
            "no key was created: {payload}"
        );
        assert!(!payload.contains(&path));
    }
    let (status, body) = apply(format!(
        "{provider}tokens:\n  - {{id: t, name: T, owner_user_id: admin, secret_env: PATH}}\n"
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    // The secret in the body works.
    let (status, body) = apply(format!(
        "{provider}provider_keys:\n  - {{id: k, provider_id: p, name: k, secret: sk-from-the-body-0123}}\n"
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, key) = harness.get("/api/v1/provider-keys/k", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(key["last_four"], "0123");
}

// ---- item 11: idle and stalled connections --------------------------------------------------

/// Reads until the server closes the connection; what it sent before closing.
async fn until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(liveness(), async {
        let mut buffer = [0_u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(count) => received.extend_from_slice(&buffer[..count]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open: {}",
        String::from_utf8_lossy(&received)
    );
    received
}

/// Reads until a whole response head (and what came with it) has arrived.
async fn first_answer(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(liveness(), async {
        let mut buffer = [0_u8; 4096];
        while !received.windows(4).any(|window| window == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(count) => received.extend_from_slice(&buffer[..count]),
            }
        }
        // Then the body, as long as the head says.
        let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
        let head_end = text.find("\r\n\r\n").map_or(received.len(), |at| at + 4);
        let length: usize = text
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0);
        while received.len() < head_end + length {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(count) => received.extend_from_slice(&buffer[..count]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer: {}",
        String::from_utf8_lossy(&received)
    );
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_stalled_connections_are_closed() {
    let harness = Harness::start_with(|config| {
        // Short enough to wait for, long enough that a request sent at once is read in time on
        // a busy machine (the test asserts that each connection ends, not how soon).
        config.header_read_timeout_ms = 1_500;
        config.idle_timeout_ms = 3_000;
        config.body_read_timeout_ms = 1_500;
    })
    .await;
    let address = harness.base.trim_start_matches("http://").to_owned();
    let connect = || tokio::net::TcpStream::connect(address.clone());

    // Sends nothing.
    let mut silent = connect().await.unwrap();
    until_closed(&mut silent).await;
    // Sends half a header.
    let mut partial = connect().await.unwrap();
    partial
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    until_closed(&mut partial).await;
    // One request, then idles on keep-alive.
    let mut idle = connect().await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answered = until_closed(&mut idle).await;
    assert!(
        answered.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answered)
    );
    // Stops in the middle of its body.
    let mut stalled = connect().await.unwrap();
    stalled
        .write_all(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user")
        .await
        .unwrap();
    until_closed(&mut stalled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_are_refused_cleanly() {
    let harness = Harness::start_with(|config| config.max_connections = 4).await;
    let address = harness.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    // Four are open (the harness's pooled connection may be a fifth): one more is refused.
    let mut extra = tokio::net::TcpStream::connect(&address).await.unwrap();
    let answer = until_closed(&mut extra).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");
    drop(held);
    // Once they are gone, the server serves again.
    wait_until(liveness(), "a connection slot", || async {
        kit::testing::http_get_status(&format!("{}/health", harness.base))
            .await
            .filter(|status| *status == 200)
    })
    .await;
}

// ---- item 13: odd input, body limit, Swagger UI and CSP -------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_ids_and_big_bodies_get_4xx_and_the_docs_load_nothing_from_elsewhere() {
    let harness = Harness::start().await;
    let admin = harness.admin().await;
    for path in [
        "/api/v1/tokens/x%00",
        "/api/v1/users/%00",
        "/api/v1/settings/a%0Ab",
        "/api/v1/providers?q=%00",
    ] {
        let (status, body) = harness.get(path, &admin).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
    }
    // Bigger than the 4 MiB limit, announced by its length or sent chunked: 413 either way.
    // (Raw sockets, so the client reads the answer instead of failing on a closed pipe.)
    let address = harness.base.trim_start_matches("http://").to_owned();
    let head = |framing: &str| {
        format!(
            "POST /api/v1/providers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\nContent-Type: application/json\r\n{framing}\r\n"
        )
    };
    let mut announced = tokio::net::TcpStream::connect(&address).await.unwrap();
    announced
        .write_all(head(&format!("Content-Length: {}\r\n", 5 << 20)).as_bytes())
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&first_answer(&mut announced).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let chunked = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = chunked.into_split();
    let head = head("Transfer-Encoding: chunked\r\n");
    // Sent while the answer is read: the server may answer 413 and close as soon as the limit
    // is passed, and a write after that fails (a broken pipe is not the test's failure).
    let sending = tokio::spawn(async move {
        let chunk = vec![b' '; 64 << 10];
        let result: std::io::Result<()> = async {
            writer.write_all(head.as_bytes()).await?;
            for _ in 0..(admin_api::MAX_BODY_BYTES / chunk.len()) {
                writer
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                writer.write_all(&chunk).await?;
                writer.write_all(b"\r\n").await?;
            }
            writer.write_all(b"1\r\n \r\n").await
        }
        .await;
        (writer, result)
    });
    let answer = String::from_utf8_lossy(&first_answer(&mut reader).await).into_owned();
    sending.abort();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    // Swagger UI comes from the binary, under a policy that allows only this origin's scripts.
    let page = harness
        .http
        .get(format!("{}/api/v1/docs", harness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let policy = page
        .headers()
        .get("content-security-policy")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(!policy.contains("unsafe-eval"));
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "no inline script: {html}");
    for asset in [
        "/api/v1/docs/swagger-ui-bundle.js",
        "/api/v1/docs/swagger-ui.css",
        "/api/v1/docs/init.js",
    ] {
        assert!(html.contains(asset), "{asset}");
        let response = harness
            .http
            .get(format!("{}{asset}", harness.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        assert!(!response.bytes().await.unwrap().is_empty());
    }
    // Every response of the admin origin carries the policy, the API's too.
    let response = harness
        .http
        .get(format!("{}/api/v1/auth/me", harness.base))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("content-security-policy"));
}

// ---- issue 16 item 3: HTTPS on admin-api's own port ------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_h2_by_alpn_and_a_stalled_handshake_holds_up_nobody() {
    let cert = kit::testing::SelfSignedCert::generate();
    let harness = Harness::start_with(|config| {
        config.tls_cert_path = Some(cert.cert_path.to_string_lossy().into_owned());
        config.tls_key_path = Some(cert.key_path.to_string_lossy().into_owned());
        // The handshake deadline is the header-read timeout: long enough for a trusted client's
        // handshake on a busy machine, short enough that the stalled one is closed soon.
        config.header_read_timeout_ms = 3_000;
    })
    .await;
    let address = harness
        .base
        .strip_prefix("https://")
        .expect("an https base")
        .to_owned();

    // Part of a handshake (a TLS record header) and then nothing, while others are served.
    let mut stalled = tokio::net::TcpStream::connect(&address).await.unwrap();
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();

    let health = harness
        .http
        .get(format!("{}/health", harness.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.version(), reqwest::Version::HTTP_2, "h2 by ALPN");
    // Sign-in, the password change and a session read, all over HTTPS.
    let admin = harness.admin().await;
    let (status, _) = harness.get("/api/v1/users", &admin).await;
    assert_eq!(status, 200);

    let plain = reqwest::Client::new()
        .get(format!("http://{address}/health"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP is not answered: {plain:?}");
    let untrusting = reqwest::Client::new()
        .get(format!("{}/health", harness.base))
        .send()
        .await;
    assert!(untrusting.is_err(), "an unknown certificate is refused");

    until_closed(&mut stalled).await;
    assert!(
        common::logs().contains("serving HTTPS"),
        "a start line says so"
    );
    let key = std::fs::read_to_string(&cert.key_path).unwrap();
    assert!(
        !common::logs().contains(key.lines().nth(1).unwrap()),
        "no key material in the logs"
    );
}

#[test]
fn tls_cert_without_key_stops_with_one_line_naming_the_field() {
    let cert = kit::testing::SelfSignedCert::generate();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_admin-api"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AXONGATE_NATS_URL", "nats://127.0.0.1:1")
        .env(
            "AXONGATE_POSTGRES_URL",
            "postgres://nobody@127.0.0.1:1/none",
        )
        .env("AXONGATE_CLICKHOUSE_URL", "http://127.0.0.1:1")
        .env(
            "AXONGATE_MASTER_KEYS",
            shared::secret::MasterKeys::generate_entry(1),
        )
        .env(
            "AXONGATE_TOKEN_PEPPER",
            "test-pepper-0123456789abcdef0123456789",
        )
        .env("AXONGATE_TLS_CERT_PATH", &cert.cert_path)
        // The start-up line is info; the error is what must fit on one line.
        .env("AXONGATE_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a config error: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("tls_key_path"), "{stderr}");
}
