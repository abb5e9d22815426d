//! Ingress config: `ingress.toml` and/or `AXONGATE_*` environment variables.

use kit::config::{ServiceConfig, require_url};
use serde::Deserialize;

/// What to do when the local event spool is full (NATS has been unreachable for long).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpoolFullPolicy {
    /// Refuse new requests with 503 rather than serve them unbilled (the default).
    Refuse,
    /// Keep serving; events that do not fit are counted in a metric and logged as lost.
    Serve,
}

// No `Debug`: this holds the master keys and the token pepper.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngressConfig {
    pub nats_url: String,
    pub postgres_url: String,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_node_id")]
    pub node_id: String,
    /// `1:<base64 32 bytes>[,2:…]`: decrypts provider keys, in memory only.
    pub master_keys: String,
    /// At least 32 bytes: the key of the user-token hash.
    pub token_pepper: String,
    #[serde(default = "default_replicas")]
    pub stream_replicas: usize,
    /// How many days request events stay in the stream; keep equal on every process, since
    /// each one creates or updates the streams at start.
    #[serde(default = "default_requests_max_age_days")]
    pub requests_max_age_days: u64,
    #[serde(default = "default_spool_dir")]
    pub spool_dir: String,
    #[serde(default = "default_spool_max_bytes")]
    pub spool_max_bytes: u64,
    #[serde(default = "default_spool_full_policy")]
    pub spool_full_policy: SpoolFullPolicy,
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Answered requests whose events are not yet durable (acknowledged by the stream or
    /// fsync'd to the spool) at most: what a crash can lose. A new request waits while there is
    /// no room, and gets a 503 after `event_slot_wait_ms`; an answer takes its place just before
    /// its last bytes. Requests in progress hold none.
    #[serde(default = "default_max_unsettled_events")]
    pub max_unsettled_events: usize,
    #[serde(default = "default_event_slot_wait_ms")]
    pub event_slot_wait_ms: u64,
    /// Upstream attempts per request at most, across keys and routes (a model's `retry`
    /// policy can set its own).
    #[serde(default = "default_retry_max_attempts")]
    pub retry_max_attempts: usize,
    /// Consecutive upstream failures that open a key's circuit.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// Seconds an open circuit rests before one probe goes through.
    #[serde(default = "default_breaker_cooldown_secs")]
    pub breaker_cooldown_secs: u64,
    /// Allows any provider base URL on private, loopback or link-local addresses (tests and
    /// local mocks). Off by default; a provider can also allow it for itself.
    #[serde(default)]
    pub allow_private_upstreams: bool,
    /// On shutdown, how long in-flight requests and streams may take to finish.
    #[serde(default = "default_shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// How long a client may take to send its request body.
    #[serde(default = "default_body_read_timeout_secs")]
    pub body_read_timeout_secs: u64,
    /// Open client connections at most; past it new ones are closed on accept.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A client connection with no request in flight and no byte sent or received for this
    /// long is closed (idle keep-alive, or a socket that never sends anything).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// A client connection whose writes have been blocked this long (the client stopped
    /// reading) is closed.
    #[serde(default = "default_write_timeout_secs")]
    pub write_timeout_secs: u64,
    /// The certificate chain (PEM, leaf first) to serve HTTPS with; needs `tls_key_path`.
    /// Unset: plain HTTP (TLS ends at the load balancer).
    #[serde(default)]
    pub tls_cert_path: Option<String>,
    /// The private key (PEM) of `tls_cert_path`.
    #[serde(default)]
    pub tls_key_path: Option<String>,
    /// The OTLP/HTTP collector (`http://collector:4318`) traces are exported to (its
    /// `/v1/traces`). Unset or empty: tracing is off.
    #[serde(default)]
    pub otel_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    #[serde(default = "default_otel_service_name")]
    pub otel_service_name: String,
    /// Of the traces this node starts, the share exported (0 to 1); a client's sampled
    /// `traceparent` decides for its own trace.
    #[serde(default = "default_otel_sample_ratio")]
    pub otel_sample_ratio: f64,
    /// How long one export may take before its spans are dropped.
    #[serde(default = "default_otel_export_timeout_ms")]
    pub otel_export_timeout_ms: u64,
    /// Ended spans waiting for export at most; past it new ones are dropped and counted.
    #[serde(default = "default_otel_queue_spans")]
    pub otel_queue_spans: usize,
    /// The response cache's size bound (the shared bucket's bytes); the oldest entries are
    /// evicted past it. Keep equal on every node: each one sets the bucket's limits at start.
    #[serde(default = "default_response_cache_max_bytes")]
    pub response_cache_max_bytes: u64,
    /// The longest any cached answer lives, whatever a model's `ttl_secs` says.
    #[serde(default = "default_response_cache_max_age_secs")]
    pub response_cache_max_age_secs: u64,
    /// The largest answer stored (below the NATS server's `max_payload`, 1 MiB by default).
    #[serde(default = "default_response_cache_max_entry_bytes")]
    pub response_cache_max_entry_bytes: usize,
    /// How long a cache lookup may take before the request goes upstream as a miss.
    #[serde(default = "default_response_cache_lookup_ms")]
    pub response_cache_lookup_ms: u64,
    /// Address blocks of the load balancers in front (comma-separated, `10.0.0.0/8,fd00::/8`):
    /// only a connection from one of them may name the client's address in
    /// `client_address_header`. Empty: the connection's address is the client's.
    #[serde(default)]
    pub trusted_proxies: String,
    /// The header a trusted proxy names the client in (`X-Forwarded-For` style: the right-most
    /// address that is not itself a trusted proxy is the client).
    #[serde(default = "default_client_address_header")]
    pub client_address_header: String,
}

fn default_client_address_header() -> String {
    "x-forwarded-for".into()
}

fn default_response_cache_max_bytes() -> u64 {
    1 << 30
}
fn default_response_cache_max_age_secs() -> u64 {
    24 * 3600
}
fn default_response_cache_max_entry_bytes() -> usize {
    768 * 1024
}
fn default_response_cache_lookup_ms() -> u64 {
    250
}

fn default_otel_service_name() -> String {
    "axongate-ingress".into()
}
fn default_otel_sample_ratio() -> f64 {
    1.0
}
fn default_otel_export_timeout_ms() -> u64 {
    10_000
}
fn default_otel_queue_spans() -> usize {
    8_192
}

fn default_max_connections() -> usize {
    10_000
}
fn default_idle_timeout_secs() -> u64 {
    30
}
fn default_write_timeout_secs() -> u64 {
    60
}

fn default_shutdown_grace_secs() -> u64 {
    30
}
fn default_body_read_timeout_secs() -> u64 {
    60
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_node_id() -> String {
    "ingress".into()
}
fn default_replicas() -> usize {
    1
}
fn default_requests_max_age_days() -> u64 {
    30
}
fn default_spool_dir() -> String {
    ".local/spool".into()
}
fn default_spool_max_bytes() -> u64 {
    1 << 30
}
fn default_spool_full_policy() -> SpoolFullPolicy {
    SpoolFullPolicy::Refuse
}
fn default_max_body_bytes() -> usize {
    32 << 20
}
fn default_max_concurrency() -> usize {
    4_096
}
fn default_max_unsettled_events() -> usize {
    1_024
}
fn default_event_slot_wait_ms() -> u64 {
    5_000
}
fn default_retry_max_attempts() -> usize {
    4
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_cooldown_secs() -> u64 {
    30
}

impl IngressConfig {
    /// The tracing settings; `None` when tracing is off (no `otel_endpoint`).
    #[must_use]
    pub fn tracing(&self) -> Option<crate::otel::Settings> {
        self.otel_endpoint
            .as_ref()
            .filter(|endpoint| !endpoint.is_empty())
            .map(|endpoint| crate::otel::Settings {
                endpoint: endpoint.clone(),
                service_name: self.otel_service_name.clone(),
                sample_ratio: self.otel_sample_ratio,
                export_timeout: std::time::Duration::from_millis(self.otel_export_timeout_ms),
                queue_spans: self.otel_queue_spans,
                node_id: self.node_id.clone(),
            })
    }

    /// How the client's address is found, for the per-address limits.
    ///
    /// # Errors
    /// A `trusted_proxies` entry that is not an address block, or a header name that is not one.
    pub fn client_address(&self) -> Result<crate::limits::ClientAddress, String> {
        let trusted = self
            .trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(shared::net::Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("trusted_proxies: {error}"))?;
        let header = http::HeaderName::from_bytes(self.client_address_header.trim().as_bytes())
            .map_err(|_| "client_address_header must be an HTTP header name".to_owned())?;
        Ok(crate::limits::ClientAddress { trusted, header })
    }

    /// The response cache's settings.
    #[must_use]
    pub fn response_cache(&self) -> crate::cache::Settings {
        crate::cache::Settings {
            max_age: std::time::Duration::from_secs(self.response_cache_max_age_secs),
            max_bytes: i64::try_from(self.response_cache_max_bytes).unwrap_or(i64::MAX),
            max_entry_bytes: self.response_cache_max_entry_bytes,
            lookup: std::time::Duration::from_millis(self.response_cache_lookup_ms),
            replicas: self.stream_replicas,
        }
    }

    /// The HTTPS config from `tls_cert_path` and `tls_key_path`; `None` for plain HTTP.
    ///
    /// # Errors
    /// A one-line message naming the field (and file) at fault.
    pub fn tls(&self) -> Result<Option<std::sync::Arc<kit::tls::ServerConfig>>, String> {
        kit::tls::server_config(self.tls_cert_path.as_deref(), self.tls_key_path.as_deref())
    }
}

impl ServiceConfig for IngressConfig {
    const FIELDS: &'static [&'static str] = &[
        "nats_url",
        "postgres_url",
        "listen",
        "node_id",
        "master_keys",
        "token_pepper",
        "stream_replicas",
        "requests_max_age_days",
        "spool_dir",
        "spool_max_bytes",
        "spool_full_policy",
        "max_body_bytes",
        "max_concurrency",
        "max_unsettled_events",
        "event_slot_wait_ms",
        "retry_max_attempts",
        "breaker_failures",
        "breaker_cooldown_secs",
        "allow_private_upstreams",
        "shutdown_grace_secs",
        "body_read_timeout_secs",
        "max_connections",
        "idle_timeout_secs",
        "write_timeout_secs",
        "tls_cert_path",
        "tls_key_path",
        "otel_endpoint",
        "otel_service_name",
        "otel_sample_ratio",
        "otel_export_timeout_ms",
        "otel_queue_spans",
        "response_cache_max_bytes",
        "response_cache_max_age_secs",
        "response_cache_max_entry_bytes",
        "response_cache_lookup_ms",
        "trusted_proxies",
        "client_address_header",
    ];

    fn validate(&self) -> Result<(), String> {
        require_url("nats_url", &self.nats_url, &["nats", "tls"])?;
        require_url(
            "postgres_url",
            &self.postgres_url,
            &["postgres", "postgresql"],
        )?;
        shared::secret::MasterKeys::parse(&self.master_keys)
            .map_err(|error| format!("master_keys: {error}"))?;
        if self.token_pepper.len() < 32 {
            return Err("token_pepper must be at least 32 characters".into());
        }
        if self.max_unsettled_events == 0 {
            return Err("max_unsettled_events must be at least 1".into());
        }
        if !(1..=10).contains(&self.retry_max_attempts) {
            return Err("retry_max_attempts must be 1 to 10".into());
        }
        if self.breaker_failures == 0 {
            return Err("breaker_failures must be at least 1".into());
        }
        if !(1..=5).contains(&self.stream_replicas) {
            return Err(format!(
                "stream_replicas must be 1 to 5, got {}",
                self.stream_replicas
            ));
        }
        if self.max_concurrency == 0 {
            return Err("max_concurrency must be at least 1".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if self.idle_timeout_secs == 0 || self.write_timeout_secs == 0 {
            return Err("idle_timeout_secs and write_timeout_secs must be at least 1".into());
        }
        // Empty is unset (a compose file passes `${AXONGATE_OTEL_ENDPOINT:-}` through).
        if let Some(endpoint) = self
            .otel_endpoint
            .as_ref()
            .filter(|value| !value.is_empty())
        {
            require_url("otel_endpoint", endpoint, &["http", "https"])?;
        }
        if !(0.0..=1.0).contains(&self.otel_sample_ratio) {
            return Err("otel_sample_ratio must be 0 to 1".into());
        }
        if self.otel_export_timeout_ms == 0 || self.otel_queue_spans == 0 {
            return Err("otel_export_timeout_ms and otel_queue_spans must be at least 1".into());
        }
        if self.response_cache_max_bytes < 1 << 20 {
            return Err("response_cache_max_bytes must be at least 1 MiB".into());
        }
        if self.response_cache_max_age_secs == 0 || self.response_cache_lookup_ms == 0 {
            return Err(
                "response_cache_max_age_secs and response_cache_lookup_ms must be at least 1"
                    .into(),
            );
        }
        if !(1024..=64 << 20).contains(&self.response_cache_max_entry_bytes) {
            return Err("response_cache_max_entry_bytes must be 1 KiB to 64 MiB".into());
        }
        self.client_address()?;
        // Loaded here once to check it, so a bad file stops the process before it binds.
        self.tls()?;
        Ok(())
    }
}
