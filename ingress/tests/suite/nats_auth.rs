//! NATS with authentication (issue 13, item 12), with real processes: a `nats-server` that
//! requires a user and password, and the ingress binary given its credentials through
//! `AXONGATE_NATS_USER` / `AXONGATE_NATS_PASSWORD`. With them ingress becomes ready (it
//! connected, created its streams and loaded its config from the stream, Postgres being
//! unreachable); without them nothing can talk to the bus; with a wrong password ingress stops
//! with a line that names NATS and never prints the password.

#![expect(clippy::expect_used, reason = "the helpers of a test fail it loudly")]

use crate::support;

use std::process::{Command, Stdio};

use kit::testing::{ChildGuard, free_port, liveness, unique_name, wait_http_status, wait_until};

const USER: &str = "ingress";
const PASSWORD: &str = "nats-password-that-must-never-be-printed-7Qz";

fn nats_server_binary() -> String {
    std::env::var("AXONGATE_NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into())
}

/// A nats-server with JetStream that requires `USER` / `PASSWORD`.
async fn start_nats_with_auth(store: &std::path::Path) -> (ChildGuard, String) {
    let port = free_port();
    let child = Command::new(nats_server_binary())
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(store)
        .args(["--user", USER, "--pass", PASSWORD])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nats-server (scripts/test installs it)");
    let guard = ChildGuard(child);
    let url = format!("nats://127.0.0.1:{port}");
    wait_until(liveness(), "nats-server to accept the user", || {
        let url = url.clone();
        async move {
            async_nats::ConnectOptions::new()
                .user_and_password(USER.into(), PASSWORD.into())
                .connect(&url)
                .await
                .ok()
                .map(|_| ())
        }
    })
    .await;
    (guard, url)
}

fn ingress(nats_url: &str, password: &str, spool: &std::path::Path) -> (Command, u16) {
    let port = free_port();
    let unreachable_postgres = format!("postgres://axongate@127.0.0.1:{}/nowhere", free_port());
    let mut command = Command::new(support::ingress_binary());
    command
        .env("AXONGATE_NATS_URL", nats_url)
        .env("AXONGATE_NATS_USER", USER)
        .env("AXONGATE_NATS_PASSWORD", password)
        .env("AXONGATE_POSTGRES_URL", unreachable_postgres)
        .env("AXONGATE_LISTEN", format!("127.0.0.1:{port}"))
        .env("AXONGATE_NODE_ID", "nats-auth")
        .env(
            "AXONGATE_MASTER_KEYS",
            shared::secret::MasterKeys::generate_entry(1),
        )
        .env(
            "AXONGATE_TOKEN_PEPPER",
            "nats-auth-pepper-0123456789abcdef0123456789",
        )
        .env("AXONGATE_SPOOL_DIR", spool)
        .env("AXONGATE_LOG", "info");
    (command, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingress_uses_nats_credentials_and_never_prints_them() {
    let scratch = std::env::temp_dir().join(unique_name("axg-nats-auth"));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let (_nats, url) = start_nats_with_auth(&scratch.join("nats")).await;

    // Without credentials the bus refuses everyone.
    assert!(
        async_nats::connect(&url).await.is_err(),
        "an anonymous client must be refused"
    );

    // With them, ingress connects, sets up its streams and becomes ready.
    let (mut command, port) = ingress(&url, PASSWORD, &scratch.join("spool-a"));
    let log = scratch.join("ingress-a.log");
    command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"));
    let good = ChildGuard(command.spawn().expect("start ingress"));
    wait_http_status(&format!("http://127.0.0.1:{port}/ready"), true, liveness()).await;
    drop(good);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !output.contains(PASSWORD),
        "the NATS password is in ingress's log"
    );

    // With a wrong password it stops, saying why, without printing either password.
    let wrong = "a-wrong-nats-password-that-must-not-be-printed";
    let (mut command, _) = ingress(&url, wrong, &scratch.join("spool-b"));
    let (stdout, stderr) = (scratch.join("ingress-b.out"), scratch.join("ingress-b.err"));
    let mut refused = ChildGuard(
        command
            .stdout(std::fs::File::create(&stdout).expect("log file"))
            .stderr(std::fs::File::create(&stderr).expect("log file"))
            .spawn()
            .expect("start ingress"),
    );
    let status = wait_until(liveness(), "ingress to stop on a wrong password", || {
        std::future::ready(refused.0.try_wait().ok().flatten())
    })
    .await;
    let output = (
        status,
        std::fs::read_to_string(&stdout).unwrap_or_default(),
        std::fs::read_to_string(&stderr).unwrap_or_default(),
    );
    let text = format!("{}{}", output.1, output.2);
    assert!(
        !output.0.success(),
        "ingress must not start with a wrong NATS password: {text}"
    );
    assert!(
        text.to_lowercase().contains("nats"),
        "the error names NATS: {text}"
    );
    assert!(
        !text.contains(wrong) && !text.contains(PASSWORD),
        "no password in the output: {text}"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
