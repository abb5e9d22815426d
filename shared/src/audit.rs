//! Audit events: who logged in, who failed to, who revealed a token, who replayed a stream,
//! the chain's checkpoints, and corrections of past spend.
//! Published on `axongate.audit.<kind>` and kept forever. Never carries a password or secret.

use serde::{Deserialize, Serialize};

use crate::envelope::EventBody;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginSucceeded {
    pub user_id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// How: `password` (absent on events before single sign-on) or `oidc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFailed {
    /// The username when it names a user; otherwise `unknown-user#<keyed hash prefix>`, since
    /// what was typed might be a password typed into the wrong field.
    pub username: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// Throttled attempts (answered 429, not audited one by one) since the previous event of
    /// the same address and user, reported with this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_attempts: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRevealed {
    pub token_id: String,
    /// `created` or `rotated`: a secret is shown only at those two moments.
    pub moment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRequested {
    pub stream: String,
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnded {
    pub user_id: String,
}

/// The result of an operator's "test" action on a provider key: a minimal real call upstream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderKeyTested {
    pub provider_key_id: String,
    pub provider_id: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// What went wrong, in words that never include the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The head of a chained stream at a moment ([`crate::chain`]): published periodically by
/// admin-api (and logged), so that a stream that later lost its newest events, or was
/// replaced from this point on, is caught, and an external copy can be compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheckpoint {
    pub stream: String,
    pub seq: u64,
    pub link: String,
}

/// A correction of past spend: what the requests of a period cost under corrected prices,
/// minus what they were charged, per token and day. Never a rewrite of the request events:
/// the spend view (`token_spend_daily`) adds each entry's amount to its row, and the audit
/// log keeps who did it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendAdjusted {
    pub adjustment_id: String,
    pub reason: String,
    /// The model alias re-rated, when the correction is for one model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_alias: Option<String>,
    /// The period of the requests re-rated (RFC 3339, `to` exclusive).
    pub from: String,
    pub to: String,
    /// The prices the requests were re-rated at.
    pub price: crate::money::Price,
    pub entries: Vec<SpendAdjustmentEntry>,
}

/// One token's correction for one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendAdjustmentEntry {
    pub token_id: String,
    /// `YYYY-MM-DD` (UTC), the day of the requests.
    pub day: String,
    pub currency: String,
    /// Re-rated minus charged: negative when the requests were over-charged.
    pub amount: crate::money::Nanos,
}

/// A token's spend in its budget period reached a threshold of the `spend_alerts` setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendThresholdCrossed {
    /// The token whose budget it is (empty for a team's or a user's budget).
    #[serde(default)]
    pub token_id: String,
    /// The token's owner, or the user whose budget it is (empty for a team's).
    #[serde(default)]
    pub owner_user_id: String,
    /// Whose budget: absent for a token's, `team` or `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_of: Option<String>,
    /// The team whose budget it is, or the token is charged to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_id: Option<String>,
    pub period: crate::config::BudgetPeriod,
    /// The period's first day (`YYYY-MM-DD`), absent for a total budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<String>,
    pub threshold_pct: u32,
    pub spent: crate::money::Nanos,
    pub budget: crate::money::Nanos,
    pub currency: String,
}

/// One attempt to send a spend alert to the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertWebhookAttempt {
    /// The `spend.threshold_crossed` event sent.
    pub alert_event_id: String,
    pub attempt: u32,
    /// `delivered`, `failed` (tried again later) or `gave_up`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// What went wrong, in a few words (never the response body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every event on `AXONGATE_AUDIT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum AuditEvent {
    #[serde(rename = "login.succeeded")]
    LoginSucceeded(LoginSucceeded),
    #[serde(rename = "login.failed")]
    LoginFailed(LoginFailed),
    #[serde(rename = "logout")]
    Logout(SessionEnded),
    #[serde(rename = "password.changed")]
    PasswordChanged(SessionEnded),
    #[serde(rename = "token.revealed")]
    TokenRevealed(TokenRevealed),
    #[serde(rename = "replay.requested")]
    ReplayRequested(ReplayRequested),
    #[serde(rename = "provider_key.tested")]
    ProviderKeyTested(ProviderKeyTested),
    #[serde(rename = "chain.checkpoint")]
    ChainCheckpoint(ChainCheckpoint),
    #[serde(rename = "spend.adjusted")]
    SpendAdjusted(SpendAdjusted),
    #[serde(rename = "spend.threshold_crossed")]
    SpendThresholdCrossed(SpendThresholdCrossed),
    #[serde(rename = "alert.webhook_attempt")]
    AlertWebhookAttempt(AlertWebhookAttempt),
}

impl AuditEvent {
    /// The subject token for this kind of audit event.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LoginSucceeded(_) => "login_succeeded",
            Self::LoginFailed(_) => "login_failed",
            Self::Logout(_) => "logout",
            Self::PasswordChanged(_) => "password_changed",
            Self::TokenRevealed(_) => "token_revealed",
            Self::ReplayRequested(_) => "replay_requested",
            Self::ProviderKeyTested(_) => "provider_key_tested",
            Self::ChainCheckpoint(_) => "chain_checkpoint",
            Self::SpendAdjusted(_) => "spend_adjusted",
            Self::SpendThresholdCrossed(_) => "spend_threshold_crossed",
            Self::AlertWebhookAttempt(_) => "alert_webhook_attempt",
        }
    }
}

impl EventBody for AuditEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::LoginSucceeded(_) => "login.succeeded",
            Self::LoginFailed(_) => "login.failed",
            Self::Logout(_) => "logout",
            Self::PasswordChanged(_) => "password.changed",
            Self::TokenRevealed(_) => "token.revealed",
            Self::ReplayRequested(_) => "replay.requested",
            Self::ProviderKeyTested(_) => "provider_key.tested",
            Self::ChainCheckpoint(_) => "chain.checkpoint",
            Self::SpendAdjusted(_) => "spend.adjusted",
            Self::SpendThresholdCrossed(_) => "spend.threshold_crossed",
            Self::AlertWebhookAttempt(_) => "alert.webhook_attempt",
        }
    }

    fn subject(&self) -> String {
        format!("{}.{}", crate::streams::AUDIT_SUBJECT_PREFIX, self.kind())
    }
}
