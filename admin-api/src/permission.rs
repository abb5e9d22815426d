//! The names the policy decides on: what a caller does ([`Action`]) to what ([`Kind`]). Every
//! endpoint declares one [`Permission`] (see [`crate::routes`]); handlers check it with
//! [`crate::authz`]; `policy.polar` matches the same words.

use std::fmt;

/// What an action is on: the `kind` of the policy's `AdminResource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Provider,
    ProviderKey,
    Model,
    Token,
    User,
    Setting,
    Usage,
    Audit,
    Config,
    /// The caller's own session and password.
    Session,
    /// Changing where a provider's keys are sent without entering them again (a provider's
    /// `base_url` or `allow_private_network`, a key's provider).
    KeyDestination,
    /// The `member_token_defaults` setting: the limits a member's new token gets.
    TokenDefaults,
    /// Corrections of past spend (`spend.adjusted`): changing what was charged.
    Billing,
    /// The `rate_limits` setting: limits per user, per model and per client address.
    RateLimits,
    /// A team: its name, budget, allowed models and per-minute limits (and everything else).
    Team,
    /// A team's members (what its team admins may change).
    TeamMembers,
}

impl Kind {
    pub const ALL: [Self; 16] = [
        Self::Provider,
        Self::ProviderKey,
        Self::Model,
        Self::Token,
        Self::User,
        Self::Setting,
        Self::Usage,
        Self::Audit,
        Self::Config,
        Self::Session,
        Self::KeyDestination,
        Self::TokenDefaults,
        Self::Billing,
        Self::RateLimits,
        Self::Team,
        Self::TeamMembers,
    ];

    /// The word `policy.polar` uses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::ProviderKey => "provider_key",
            Self::Model => "model",
            Self::Token => "token",
            Self::User => "user",
            Self::Setting => "setting",
            Self::Usage => "usage",
            Self::Audit => "audit",
            Self::Config => "config",
            Self::Session => "session",
            Self::KeyDestination => "key_destination",
            Self::TokenDefaults => "token_defaults",
            Self::Billing => "billing",
            Self::RateLimits => "rate_limits",
            Self::Team => "team",
            Self::TeamMembers => "team_members",
        }
    }
}

/// What a caller does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    /// A provider key's test call.
    Test,
    /// A token's new secret.
    Rotate,
    /// A declarative config document.
    Apply,
}

impl Action {
    pub const ALL: [Self; 7] = [
        Self::Read,
        Self::Create,
        Self::Update,
        Self::Delete,
        Self::Test,
        Self::Rotate,
        Self::Apply,
    ];

    /// The word `policy.polar` uses.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Test => "test",
            Self::Rotate => "rotate",
            Self::Apply => "apply",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The permission an endpoint checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub action: Action,
    pub kind: Kind,
}

impl Permission {
    #[must_use]
    pub const fn new(action: Action, kind: Kind) -> Self {
        Self { action, kind }
    }
}
