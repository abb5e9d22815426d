//! The admin API's config: `admin-api.toml` and/or `AXONGATE_*` environment variables.

use kit::config::{ServiceConfig, require_url};
use serde::Deserialize;

// No `Debug`: this holds the master keys, the token pepper and the first admin password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub nats_url: String,
    pub postgres_url: String,
    pub clickhouse_url: String,
    #[serde(default = "default_clickhouse_database")]
    pub clickhouse_database: String,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_node_id")]
    pub node_id: String,
    /// JetStream replicas per stream (1 single server, 3 cluster).
    #[serde(default = "default_replicas")]
    pub stream_replicas: usize,
    /// How many days request events stay in the stream; keep equal on every process, since
    /// each one creates or updates the streams at start.
    #[serde(default = "default_requests_max_age_days")]
    pub requests_max_age_days: u64,
    /// Where the built UI lives (`ui/dist`); served at `/` when present.
    #[serde(default = "default_ui_dir")]
    pub ui_dir: String,
    /// `1:<base64 32 bytes>[,2:…]`: encrypts provider keys before they enter an event (the
    /// highest id encrypts) and decrypts them for the "test" action. Same value as ingress's.
    pub master_keys: String,
    /// At least 32 bytes: the key of the user-token hash. Same value as ingress's.
    pub token_pepper: String,
    /// At least 32 bytes: the key of the config and audit streams' tamper-evident chain
    /// (`shared::chain`). Unset: derived from `token_pepper`. Set it, and give it to
    /// admin-api only, so that a host holding the pepper (an ingress node) cannot forge links.
    /// Changing it breaks verification of the chain written before (docs/deployment.md).
    #[serde(default)]
    pub audit_chain_key: Option<String>,
    /// How often the heads of the chained streams are published as a `chain.checkpoint`
    /// audit event (and logged), when they moved; 0 turns checkpoints off.
    #[serde(default = "default_audit_checkpoint_interval_secs")]
    pub audit_checkpoint_interval_secs: u64,
    /// The key spend-alert webhooks are signed with (HMAC-SHA256, at least 32 characters);
    /// without it no webhook is called (each alert's attempt is audited as failed).
    #[serde(default)]
    pub alert_webhook_secret: Option<String>,
    /// How often budgeted tokens' spend is compared with the `spend_alerts` thresholds; 0
    /// turns spend alerts off on this process.
    #[serde(default = "default_alert_check_interval_secs")]
    pub alert_check_interval_secs: u64,
    /// The password of the `admin` account created on first start (`admin123` when unset).
    /// It must be changed at first login either way.
    #[serde(default)]
    pub admin_initial_password: Option<String>,
    /// How long a login session lasts, in seconds.
    #[serde(default = "default_session_ttl_seconds")]
    pub session_ttl_seconds: u64,
    /// How long a command waits for the projector to apply its event before answering 503.
    #[serde(default = "default_read_your_writes_timeout_ms")]
    pub read_your_writes_timeout_ms: u64,
    /// An Oso policy file replacing the built-in `admin-api/policy.polar`.
    #[serde(default)]
    pub policy_file: Option<String>,
    /// How long a client may take to send a request's headers.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// A connection on which nothing moves either way for this long is closed (idle
    /// keep-alive, a stalled body, a client that stops reading).
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// How long a request body may pause between two chunks.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Open connections at most; one more is answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Password checks (argon2) running at once, at most; a login beyond them is answered 503.
    #[serde(default = "default_login_concurrency")]
    pub login_concurrency: usize,
    /// The first wait after the free failed logins; each further failure doubles it, up to
    /// the rule's cap (five minutes per address and user).
    #[serde(default = "default_login_throttle_step_ms")]
    pub login_throttle_step_ms: u64,
    /// The certificate chain (PEM, leaf first) to serve HTTPS with; needs `tls_key_path`.
    /// Unset: plain HTTP (TLS ends at a reverse proxy, or the port stays on loopback).
    #[serde(default)]
    pub tls_cert_path: Option<String>,
    /// The private key (PEM) of `tls_cert_path`.
    #[serde(default)]
    pub tls_key_path: Option<String>,
    /// Single sign-on with OpenID Connect: the identity provider's issuer URL (its
    /// `/.well-known/openid-configuration` is read). Unset: password sign-in only.
    #[serde(default)]
    pub oidc_issuer_url: Option<String>,
    /// The client id registered at the identity provider.
    #[serde(default)]
    pub oidc_client_id: Option<String>,
    /// The client secret, for a confidential client (sent as HTTP Basic); unset for a public
    /// client, which PKCE alone protects.
    #[serde(default)]
    pub oidc_client_secret: Option<String>,
    /// The callback URL registered at the provider: `https://<admin host>/api/v1/auth/oidc/callback`.
    #[serde(default)]
    pub oidc_redirect_url: Option<String>,
    /// The scopes asked for.
    #[serde(default = "default_oidc_scopes")]
    pub oidc_scopes: String,
    /// The ID token claim holding the user's groups.
    #[serde(default = "default_oidc_groups_claim")]
    pub oidc_groups_claim: String,
    /// `group=role,…`: the role each group gives (admin, operator, viewer, member); a user in
    /// several gets the most privileged. Applied at every sign-in.
    #[serde(default)]
    pub oidc_group_roles: String,
    /// `group=team[:admin],…`: the team (by id) each group makes the user a member (or team
    /// admin) of; a user leaves a mapped team when they leave its groups.
    #[serde(default)]
    pub oidc_group_teams: String,
    /// The role of a user in no group of `oidc_group_roles`, or `none` to refuse them.
    #[serde(default = "default_oidc_default_role")]
    pub oidc_default_role: String,
}

fn default_oidc_scopes() -> String {
    "openid profile email".into()
}

fn default_oidc_groups_claim() -> String {
    "groups".into()
}

fn default_oidc_default_role() -> String {
    "member".into()
}

fn default_audit_checkpoint_interval_secs() -> u64 {
    300
}

fn default_alert_check_interval_secs() -> u64 {
    10
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}
fn default_body_read_timeout_ms() -> u64 {
    30_000
}
fn default_max_connections() -> usize {
    1_024
}
fn default_login_concurrency() -> usize {
    4
}
fn default_login_throttle_step_ms() -> u64 {
    1_000
}

fn default_clickhouse_database() -> String {
    "axongate".into()
}
fn default_listen() -> String {
    "127.0.0.1:8081".into()
}
fn default_node_id() -> String {
    "admin-api".into()
}
fn default_replicas() -> usize {
    1
}
fn default_requests_max_age_days() -> u64 {
    30
}
fn default_ui_dir() -> String {
    "ui/dist".into()
}
fn default_session_ttl_seconds() -> u64 {
    12 * 3600
}
fn default_read_your_writes_timeout_ms() -> u64 {
    5_000
}

/// The password of the first `admin` account when none is configured.
pub const DEFAULT_ADMIN_PASSWORD: &str = "admin123";

impl AdminConfig {
    /// The first admin password: `AXONGATE_ADMIN_INITIAL_PASSWORD` or `admin123`.
    #[must_use]
    pub fn initial_admin_password(&self) -> &str {
        self.admin_initial_password
            .as_deref()
            .filter(|password| !password.is_empty())
            .unwrap_or(DEFAULT_ADMIN_PASSWORD)
    }

    /// The key of the config and audit chain: `audit_chain_key`, or derived from the pepper.
    #[must_use]
    pub fn chain_key(&self) -> shared::chain::ChainKey {
        let secret = self
            .audit_chain_key
            .as_deref()
            .unwrap_or(&self.token_pepper);
        shared::chain::ChainKey::derive(secret.as_bytes())
    }

    /// The HTTPS config from `tls_cert_path` and `tls_key_path`; `None` for plain HTTP.
    ///
    /// # Errors
    /// A one-line message naming the field (and file) at fault.
    pub fn tls(&self) -> Result<Option<std::sync::Arc<kit::tls::ServerConfig>>, String> {
        kit::tls::server_config(self.tls_cert_path.as_deref(), self.tls_key_path.as_deref())
    }
}

impl ServiceConfig for AdminConfig {
    const FIELDS: &'static [&'static str] = &[
        "nats_url",
        "postgres_url",
        "clickhouse_url",
        "clickhouse_database",
        "listen",
        "node_id",
        "stream_replicas",
        "requests_max_age_days",
        "ui_dir",
        "master_keys",
        "token_pepper",
        "audit_chain_key",
        "audit_checkpoint_interval_secs",
        "alert_webhook_secret",
        "alert_check_interval_secs",
        "admin_initial_password",
        "session_ttl_seconds",
        "read_your_writes_timeout_ms",
        "policy_file",
        "header_read_timeout_ms",
        "idle_timeout_ms",
        "body_read_timeout_ms",
        "max_connections",
        "login_concurrency",
        "login_throttle_step_ms",
        "tls_cert_path",
        "tls_key_path",
        "oidc_issuer_url",
        "oidc_client_id",
        "oidc_client_secret",
        "oidc_redirect_url",
        "oidc_scopes",
        "oidc_groups_claim",
        "oidc_group_roles",
        "oidc_group_teams",
        "oidc_default_role",
    ];

    fn validate(&self) -> Result<(), String> {
        if self
            .alert_webhook_secret
            .as_ref()
            .is_some_and(|secret| !secret.is_empty() && secret.len() < 32)
        {
            return Err("alert_webhook_secret must be at least 32 characters".into());
        }
        require_url("nats_url", &self.nats_url, &["nats", "tls"])?;
        require_url(
            "postgres_url",
            &self.postgres_url,
            &["postgres", "postgresql"],
        )?;
        require_url("clickhouse_url", &self.clickhouse_url, &["http", "https"])?;
        if !(1..=5).contains(&self.stream_replicas) {
            return Err(format!(
                "stream_replicas must be 1 to 5, got {}",
                self.stream_replicas
            ));
        }
        shared::secret::MasterKeys::parse(&self.master_keys)
            .map_err(|error| format!("master_keys: {error}"))?;
        if self.token_pepper.len() < 32 {
            return Err("token_pepper must be at least 32 characters".into());
        }
        if self
            .audit_chain_key
            .as_ref()
            .is_some_and(|key| key.len() < 32)
        {
            return Err("audit_chain_key must be at least 32 characters".into());
        }
        if self.session_ttl_seconds < 60 {
            return Err("session_ttl_seconds must be at least 60".into());
        }
        for (field, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
        ] {
            if value == 0 {
                return Err(format!("{field} must be at least 1"));
            }
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if self.read_your_writes_timeout_ms == 0 {
            return Err("read_your_writes_timeout_ms must be at least 1".into());
        }
        crate::oidc::OidcSettings::from_config(self)?;
        // Loaded here once to check it, so a bad file stops the process before it binds.
        self.tls()?;
        Ok(())
    }
}
