//! Config entities and the events that change them.
//!
//! A config event carries the entity's full new state (`*.put`) or its deletion (`*.deleted`),
//! so the latest event on a subject is the entity's current state and a view is a plain fold.
//! Subjects are `axongate.config.<entity>.<id>`; an update names the subject sequence it read
//! (`Nats-Expected-Last-Subject-Sequence`) so two concurrent edits cannot overwrite each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::envelope::EventBody;
use crate::money::{Nanos, Price};
use crate::secret::EncryptedSecret;
use crate::token::TokenHash;

/// The wire protocol an upstream provider speaks.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// OpenAI Chat Completions (`/chat/completions`), and every OpenAI-compatible server.
    #[serde(rename = "openai")]
    OpenAi,
    /// OpenAI Responses (`/responses`): reasoning items, encrypted reasoning, built-in and
    /// custom tools, `include`, `store` and compaction pass through to it.
    #[serde(rename = "openai_responses")]
    OpenAiResponses,
    Anthropic,
    /// Google Gemini (`/models/{model}:generateContent`, `:streamGenerateContent?alt=sse`),
    /// with the base URL's version prefix (`https://generativelanguage.googleapis.com/v1beta`).
    Gemini,
}

/// The API dialect a client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientProtocol {
    OpenaiChat,
    OpenaiResponses,
    OpenaiEmbeddings,
    Anthropic,
    /// Gemini's `generateContent` / `streamGenerateContent`.
    Gemini,
}

impl ClientProtocol {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenaiChat => "openai_chat",
            Self::OpenaiResponses => "openai_responses",
            Self::OpenaiEmbeddings => "openai_embeddings",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }
}

impl Protocol {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::OpenAiResponses => "openai_responses",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }

    /// Whether the provider is an OpenAI API (either generation endpoint): it takes a bearer
    /// key and serves `/models` and `/embeddings` under the same base URL.
    #[must_use]
    pub fn is_openai(self) -> bool {
        matches!(self, Self::OpenAi | Self::OpenAiResponses)
    }
}

/// Per-attempt upstream timeouts, in milliseconds.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeouts {
    pub connect_ms: u32,
    pub first_byte_ms: u32,
    pub idle_ms: u32,
    pub total_ms: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_ms: 5_000,
            first_byte_ms: 60_000,
            idle_ms: 60_000,
            total_ms: 600_000,
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: String,
    pub name: String,
    pub protocol: Protocol,
    pub base_url: String,
    #[serde(default)]
    pub extra_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub timeouts: Timeouts,
    pub enabled: bool,
    /// Allows a base URL on a private, loopback or link-local address. Off by default so that a
    /// provider cannot be pointed at cloud metadata endpoints by mistake.
    #[serde(default)]
    pub allow_private_network: bool,
}

/// An upstream API key. The secret is encrypted before it enters the event; only ingress
/// decrypts it, in memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderKey {
    pub id: String,
    pub provider_id: String,
    pub name: String,
    pub secret: EncryptedSecret,
    /// The last four characters of the secret, for display.
    pub last_four: String,
    pub enabled: bool,
}

impl ProviderKey {
    /// What the secret is sealed to: this key record at this provider.
    #[must_use]
    pub fn binding(&self) -> crate::secret::KeyBinding<'_> {
        crate::secret::KeyBinding {
            key_id: &self.id,
            provider_id: &self.provider_id,
        }
    }
}

/// One way to serve a model alias.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", ts(optional_fields))]
pub struct Route {
    pub provider_id: String,
    pub upstream_model: String,
    /// Keys of the provider this route may use; empty means every enabled key of the provider.
    #[serde(default)]
    pub key_ids: Vec<String>,
    /// Lower tiers are tried first; a higher tier is used only when a lower one is exhausted.
    #[serde(default)]
    pub priority: u32,
    /// Relative share of traffic among the healthy routes of one tier.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// What the upstream model accepts. Unset (or a field of it unset): the defaults for the
    /// provider's protocol and the upstream model's name, which ingress derives.
    #[serde(default, skip_serializing_if = "Capabilities::is_unset")]
    #[cfg_attr(feature = "ts", ts(as = "Option<Capabilities>", optional))]
    pub capabilities: Capabilities,
}

/// What a route's upstream model can take, so that translation never emits a parameter the
/// model would refuse. Every field is optional: unset means "derive from the protocol and the
/// model name" (ingress's `capabilities` module holds those defaults).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", ts(optional_fields))]
pub struct Capabilities {
    /// How the model takes reasoning: not at all, as an effort level, or as a token budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<ReasoningSupport>,
    /// The most output tokens the model can produce; the limit sent when the client sets none
    /// and the protocol needs one, and the ceiling for what the client asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
}

impl Capabilities {
    #[must_use]
    pub fn is_unset(&self) -> bool {
        self == &Self::default()
    }
}

/// How a model takes reasoning.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningSupport {
    /// No reasoning parameter at all (gpt-4.1 class, most OpenAI-compatible open models).
    None,
    /// OpenAI's `reasoning_effort` / `reasoning.effort`.
    Effort,
    /// Anthropic's `thinking` with `budget_tokens`.
    Budget,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    /// The public name clients send as `model`.
    pub alias: String,
    pub enabled: bool,
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u32>,
    /// How the model's requests are retried and its keys benched; unset fields take the
    /// ingress defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Answers of this model served again to identical requests; absent: never cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_cache: Option<ResponseCache>,
    /// How a tier's routes and keys are ordered; absent: weighted random.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<Routing>,
}

/// How a model picks among the routes (and their keys) of one priority tier. Tiers are always
/// tried in order; the strategy orders the candidates inside a tier.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", ts(optional_fields))]
pub struct Routing {
    pub strategy: RoutingStrategy,
    /// For `cache_affinity`: a request header naming the session, looked at before the body's
    /// `prompt_cache_key` and `metadata.user_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_header: Option<String>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingStrategy {
    /// A weighted random order (the default).
    #[default]
    Weighted,
    /// Fewest requests in flight on this node, relative to the route's weight.
    LeastInFlight,
    /// Lowest recent time to first byte (an exponentially weighted moving average per route
    /// and key, measured on this node); every 16th request re-measures the stalest candidate.
    Latency,
    /// Requests of one session (a configured header, `prompt_cache_key` or
    /// `metadata.user_id`) go to the same route and key while it is usable, so the provider's
    /// prompt cache keeps hitting; every node picks the same one (weighted rendezvous hashing),
    /// and a session whose key becomes unusable moves while the others stay. Requests without
    /// a session key are ordered by weight.
    CacheAffinity,
}

impl RoutingStrategy {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weighted => "weighted",
            Self::LeastInFlight => "least_in_flight",
            Self::Latency => "latency",
            Self::CacheAffinity => "cache_affinity",
        }
    }
}

/// A model's response cache: an identical request (same dialect, model, messages, tools and
/// parameters) within `ttl_secs` is answered from the cache shared by every ingress node, at no
/// cost, streamed or not as it asks.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", ts(optional_fields))]
pub struct ResponseCache {
    /// Seconds a cached answer is served (capped by the deployment's
    /// `response_cache_max_age_secs`).
    pub ttl_secs: u32,
    /// One token's cached answer also serves the identical requests of other tokens. Default:
    /// each token has its own entries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub across_tokens: bool,
    /// Requests that sample (a `temperature` above 0, or none given, which samples at the
    /// provider's default) are cached too. Default: only `temperature: 0` requests are.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub sampled: bool,
}

/// A model's retry and circuit-breaker policy. Every field is optional: unset ones take the
/// ingress-wide defaults (`retry_max_attempts`, `breaker_failures`, `breaker_cooldown_secs`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", ts(optional_fields))]
pub struct RetryPolicy {
    /// Upstream attempts per request at most, across keys and routes (1: no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Upstream statuses tried again on the next key or route; any other error status is the
    /// answer. Timeouts and connection failures are always tried again. Default: 401, 403, 408,
    /// 409, 429 and 5xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<Vec<u16>>,
    /// Consecutive upstream failures of a key (within this model's requests) that open its
    /// circuit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_failures: Option<u32>,
    /// Seconds an open circuit rests before one probe goes through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_cooldown_secs: Option<u32>,
    /// When every key of every route is cooling down: `false` (the default) tries them anyway,
    /// since benching only helps when there is somewhere else to go; `true` answers at once with
    /// the last upstream error and a `Retry-After` of the cooldown left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bench_when_all_open: Option<bool>,
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    Daily,
    Weekly,
    Monthly,
    Total,
}

impl BudgetPeriod {
    /// The first day (UTC) of the period `at` falls in; `None` for a total budget.
    #[must_use]
    pub fn start(self, at: time::OffsetDateTime) -> Option<time::Date> {
        let day = at.to_offset(time::UtcOffset::UTC).date();
        match self {
            Self::Daily => Some(day),
            Self::Weekly => day.checked_sub(time::Duration::days(i64::from(
                day.weekday().number_days_from_monday(),
            ))),
            Self::Monthly => day.replace_day(1).ok(),
            Self::Total => None,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Total => "total",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub amount: Nanos,
    pub currency: String,
    pub period: BudgetPeriod,
}

/// A user token (an AxonGate API key). Only its keyed hash is ever stored or published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserToken {
    pub id: String,
    pub name: String,
    pub owner_user_id: String,
    pub hash: TokenHash,
    pub last_four: String,
    /// Glob patterns (`*` matches any run of characters) over model aliases; empty allows all.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    pub expires_at: Option<OffsetDateTime>,
    pub enabled: bool,
    /// The team this token's spend is charged to (its owner must be a member); the team's
    /// budget, allowed models and limits then apply too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
}

/// A team: users who share a budget, a set of allowed models and per-minute limits. A token
/// charged to the team counts against all of them as well as its own and its owner's; the most
/// restrictive applies. The team's spend is the sum of its tokens'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub members: Vec<TeamMember>,
    /// Glob patterns over model aliases; empty allows all.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Requests per minute of all the team's tokens together, across every ingress node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Tokens per minute of all the team's tokens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u32>,
}

impl Team {
    /// The member's role in this team, if they are a member.
    #[must_use]
    pub fn role_of(&self, user_id: &str) -> Option<TeamRole> {
        self.members
            .iter()
            .find(|member| member.user_id == user_id)
            .map(|member| member.role)
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    pub user_id: String,
    pub role: TeamRole,
}

/// A member's role in a team: a team admin manages the team's members and the tokens charged
/// to it (within the limits set above them); a member uses the team's budget.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamRole {
    Admin,
    Member,
}

impl TeamRole {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }
}

#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Operator,
    Viewer,
    Member,
}

impl Role {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Operator => "operator",
            Self::Viewer => "viewer",
            Self::Member => "member",
        }
    }
}

/// An operator account. `password_hash` is an argon2id PHC string, never a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    pub password_hash: String,
    pub must_change_password: bool,
    pub enabled: bool,
    /// A spend budget over all the user's tokens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Glob patterns over model aliases the user's tokens may call; empty allows all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_models: Vec<String>,
    /// For a user who signs in with single sign-on: `<issuer>#<sub>`, the identity provider's
    /// subject the account belongs to. Such a user has no password of their own
    /// (`password_hash` is empty) unless an admin sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sso_subject: Option<String>,
}

/// The role a user holds. One binding per user; the subject id is the user id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleBinding {
    pub user_id: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub key: String,
    pub value: serde_json::Value,
}

/// The key of the setting holding the limits by dimension.
pub const RATE_LIMITS_SETTING: &str = "rate_limits";

/// Requests and tokens per minute (sliding), counted across every ingress node.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", ts(optional_fields))]
pub struct Rate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u32>,
}

impl Rate {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none()
    }
}

/// The `rate_limits` setting: limits by dimension, on top of each token's own. A request must
/// fit every limit that applies to it.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", ts(optional_fields))]
pub struct RateLimits {
    /// Each user, across all their tokens (unless `users` names them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<Rate>,
    /// Users with their own limit instead of `per_user`, by user id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "ts",
        ts(as = "Option<std::collections::BTreeMap<String, Rate>>", optional)
    )]
    pub users: std::collections::BTreeMap<String, Rate>,
    /// All callers of a model together, by model alias.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "ts",
        ts(as = "Option<std::collections::BTreeMap<String, Rate>>", optional)
    )]
    pub models: std::collections::BTreeMap<String, Rate>,
    /// Each client address (the connection's, or the trusted proxy header's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_address: Option<Rate>,
}

/// The key of the setting holding the spend alerts.
pub const SPEND_ALERTS_SETTING: &str = "spend_alerts";

/// The `spend_alerts` setting: when a token's spend in its budget period reaches each
/// threshold (a percentage of the budget), a `spend.threshold_crossed` audit event is recorded
/// once, and sent to `webhook_url` when one is set (signed, retried; each attempt audited).
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ts", ts(optional_fields))]
pub struct SpendAlerts {
    /// Percentages of the budget, 1 to 1000 (for example 50, 80, 100).
    pub thresholds: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// The webhook may be on a private network (loopback, RFC 1918, …).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg_attr(feature = "ts", ts(as = "Option<bool>", optional))]
    pub allow_private_network: bool,
}

/// The body of a `*.deleted` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    pub id: String,
}

/// The kinds of config entity, and the subject token each is published under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigEntity {
    Provider,
    ProviderKey,
    Model,
    Token,
    User,
    RoleBinding,
    Setting,
    Team,
}

impl ConfigEntity {
    pub const ALL: [Self; 8] = [
        Self::Provider,
        Self::ProviderKey,
        Self::Model,
        Self::Token,
        Self::User,
        Self::RoleBinding,
        Self::Setting,
        Self::Team,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::ProviderKey => "provider_key",
            Self::Model => "model",
            Self::Token => "token",
            Self::User => "user",
            Self::RoleBinding => "role_binding",
            Self::Setting => "setting",
            Self::Team => "team",
        }
    }
}

/// Every event on `AXONGATE_CONFIG`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum ConfigEvent {
    #[serde(rename = "provider.put")]
    ProviderPut(Provider),
    #[serde(rename = "provider.deleted")]
    ProviderDeleted(Deleted),
    #[serde(rename = "provider_key.put")]
    ProviderKeyPut(ProviderKey),
    #[serde(rename = "provider_key.deleted")]
    ProviderKeyDeleted(Deleted),
    #[serde(rename = "model.put")]
    ModelPut(Model),
    #[serde(rename = "model.deleted")]
    ModelDeleted(Deleted),
    #[serde(rename = "token.put")]
    TokenPut(UserToken),
    #[serde(rename = "token.deleted")]
    TokenDeleted(Deleted),
    #[serde(rename = "user.put")]
    UserPut(User),
    #[serde(rename = "user.deleted")]
    UserDeleted(Deleted),
    #[serde(rename = "role_binding.put")]
    RoleBindingPut(RoleBinding),
    #[serde(rename = "role_binding.deleted")]
    RoleBindingDeleted(Deleted),
    #[serde(rename = "setting.put")]
    SettingPut(Setting),
    #[serde(rename = "setting.deleted")]
    SettingDeleted(Deleted),
    #[serde(rename = "team.put")]
    TeamPut(Team),
    #[serde(rename = "team.deleted")]
    TeamDeleted(Deleted),
}

impl ConfigEvent {
    /// Which entity this event changes.
    #[must_use]
    pub fn entity(&self) -> ConfigEntity {
        match self {
            Self::ProviderPut(_) | Self::ProviderDeleted(_) => ConfigEntity::Provider,
            Self::ProviderKeyPut(_) | Self::ProviderKeyDeleted(_) => ConfigEntity::ProviderKey,
            Self::ModelPut(_) | Self::ModelDeleted(_) => ConfigEntity::Model,
            Self::TokenPut(_) | Self::TokenDeleted(_) => ConfigEntity::Token,
            Self::UserPut(_) | Self::UserDeleted(_) => ConfigEntity::User,
            Self::RoleBindingPut(_) | Self::RoleBindingDeleted(_) => ConfigEntity::RoleBinding,
            Self::SettingPut(_) | Self::SettingDeleted(_) => ConfigEntity::Setting,
            Self::TeamPut(_) | Self::TeamDeleted(_) => ConfigEntity::Team,
        }
    }

    /// The id of the entity this event changes (for settings, the key; for role bindings, the
    /// user id).
    #[must_use]
    pub fn entity_id(&self) -> &str {
        match self {
            Self::ProviderPut(provider) => &provider.id,
            Self::ProviderKeyPut(key) => &key.id,
            Self::ModelPut(model) => &model.id,
            Self::TokenPut(token) => &token.id,
            Self::UserPut(user) => &user.id,
            Self::RoleBindingPut(binding) => &binding.user_id,
            Self::SettingPut(setting) => &setting.key,
            Self::TeamPut(team) => &team.id,
            Self::ProviderDeleted(deleted)
            | Self::ProviderKeyDeleted(deleted)
            | Self::ModelDeleted(deleted)
            | Self::TokenDeleted(deleted)
            | Self::UserDeleted(deleted)
            | Self::RoleBindingDeleted(deleted)
            | Self::SettingDeleted(deleted)
            | Self::TeamDeleted(deleted) => &deleted.id,
        }
    }

    /// Whether this event removes the entity.
    #[must_use]
    pub fn is_deletion(&self) -> bool {
        matches!(
            self,
            Self::ProviderDeleted(_)
                | Self::ProviderKeyDeleted(_)
                | Self::ModelDeleted(_)
                | Self::TokenDeleted(_)
                | Self::UserDeleted(_)
                | Self::RoleBindingDeleted(_)
                | Self::SettingDeleted(_)
                | Self::TeamDeleted(_)
        )
    }
}

impl EventBody for ConfigEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ProviderPut(_) => "provider.put",
            Self::ProviderDeleted(_) => "provider.deleted",
            Self::ProviderKeyPut(_) => "provider_key.put",
            Self::ProviderKeyDeleted(_) => "provider_key.deleted",
            Self::ModelPut(_) => "model.put",
            Self::ModelDeleted(_) => "model.deleted",
            Self::TokenPut(_) => "token.put",
            Self::TokenDeleted(_) => "token.deleted",
            Self::UserPut(_) => "user.put",
            Self::UserDeleted(_) => "user.deleted",
            Self::RoleBindingPut(_) => "role_binding.put",
            Self::RoleBindingDeleted(_) => "role_binding.deleted",
            Self::SettingPut(_) => "setting.put",
            Self::SettingDeleted(_) => "setting.deleted",
            Self::TeamPut(_) => "team.put",
            Self::TeamDeleted(_) => "team.deleted",
        }
    }

    fn subject(&self) -> String {
        crate::streams::config_subject(self.entity(), self.entity_id())
    }
}
