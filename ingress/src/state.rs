//! The routing config in memory: providers (with their HTTP clients), keys (decrypted here and
//! only here), models by alias, tokens by hash. A [`Snapshot`] is immutable; each config event
//! produces a new one, swapped in atomically, so the hot path reads without locks.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use shared::config::{
    Budget, BudgetPeriod, ConfigEntity, ConfigEvent, Model, Provider, ProviderKey, Team, UserToken,
};
use shared::secret::{MasterKeys, SecretString};
use shared::token::TokenHash;

/// A provider ready to be called, or the reason it cannot be.
pub struct ProviderRuntime {
    pub provider: Provider,
    pub client: Result<reqwest::Client, String>,
}

/// A provider key, decrypted. `secret` is `None` when it could not be decrypted (a missing
/// master key id, say); such a key is never used.
pub struct KeyRuntime {
    pub key: ProviderKey,
    pub secret: Option<SecretString>,
}

#[derive(Default, Clone)]
pub struct Snapshot {
    /// The last `AXONGATE_CONFIG` sequence applied.
    pub sequence: u64,
    pub providers: HashMap<String, Arc<ProviderRuntime>>,
    pub keys: HashMap<String, Arc<KeyRuntime>>,
    pub models: HashMap<String, Arc<Model>>,
    model_alias_by_id: HashMap<String, String>,
    pub tokens: HashMap<TokenHash, Arc<UserToken>>,
    token_hash_by_id: HashMap<String, TokenHash>,
    /// What serving needs of each known user: whether they are enabled, their budget and
    /// allowed models (never a password hash).
    users: HashMap<String, Arc<UserLimits>>,
    /// Users whose latest event is a deletion: their tokens are refused.
    deleted_users: HashSet<String>,
    /// The `rate_limits` setting (none set: no limit by dimension).
    pub rate_limits: Arc<shared::config::RateLimits>,
    /// Teams by id.
    pub teams: HashMap<String, Arc<Team>>,
}

/// The part of a user's state serving needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct UserLimits {
    #[serde(default = "enabled")]
    pub enabled: bool,
    #[serde(default)]
    pub budget: Option<Budget>,
    #[serde(default)]
    pub allowed_models: Vec<String>,
}

fn enabled() -> bool {
    true
}

/// A spend budget shared by several tokens: a token's own (its id as the key), its team's
/// (`team:<id>`) or its owner's (`user:<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetHolder {
    /// The limiter's counting key.
    pub key: String,
    pub budget: Budget,
    /// The tokens whose spend counts against it.
    pub token_ids: Vec<String>,
}

/// Why a token's owner may not use it, if they may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerRefusal {
    Disabled,
    Deleted,
}

/// The part of a user's state ingress needs (a view row or an event decodes into it).
#[derive(serde::Deserialize)]
struct UserState {
    id: String,
    #[serde(flatten)]
    limits: UserLimits,
}

/// What an applied event invalidates in caches.
#[derive(Debug, Default)]
pub struct Invalidation {
    pub token_hashes: Vec<TokenHash>,
}

/// What building a snapshot needs besides the events.
pub struct Secrets {
    pub master_keys: MasterKeys,
    pub allow_private_upstreams: bool,
}

impl Snapshot {
    /// Applies one config event.
    pub fn apply(&mut self, event: &ConfigEvent, sequence: u64, secrets: &Secrets) -> Invalidation {
        let mut invalidation = Invalidation::default();
        self.sequence = self.sequence.max(sequence);
        match event {
            ConfigEvent::ProviderPut(provider) => {
                let client = build_client(provider, secrets.allow_private_upstreams);
                if let Err(reason) = &client {
                    tracing::error!(provider = %provider.id, %reason, "provider cannot be used");
                }
                self.providers.insert(
                    provider.id.clone(),
                    Arc::new(ProviderRuntime {
                        provider: provider.clone(),
                        client,
                    }),
                );
            }
            ConfigEvent::ProviderDeleted(deleted) => {
                self.providers.remove(&deleted.id);
            }
            ConfigEvent::ProviderKeyPut(key) => {
                let secret = match secrets.master_keys.decrypt(&key.secret, key.binding()) {
                    Ok(secret) => Some(secret),
                    Err(error) => {
                        tracing::error!(key = %key.id, %error, "provider key cannot be decrypted and will not be used");
                        None
                    }
                };
                self.keys.insert(
                    key.id.clone(),
                    Arc::new(KeyRuntime {
                        key: key.clone(),
                        secret,
                    }),
                );
            }
            ConfigEvent::ProviderKeyDeleted(deleted) => {
                self.keys.remove(&deleted.id);
            }
            ConfigEvent::ModelPut(model) => {
                if let Some(old_alias) = self
                    .model_alias_by_id
                    .insert(model.id.clone(), model.alias.clone())
                {
                    self.models.remove(&old_alias);
                }
                self.models
                    .insert(model.alias.clone(), Arc::new(model.clone()));
            }
            ConfigEvent::ModelDeleted(deleted) => {
                if let Some(alias) = self.model_alias_by_id.remove(&deleted.id) {
                    self.models.remove(&alias);
                }
            }
            ConfigEvent::TokenPut(token) => {
                if let Some(old_hash) = self
                    .token_hash_by_id
                    .insert(token.id.clone(), token.hash.clone())
                {
                    self.tokens.remove(&old_hash);
                    invalidation.token_hashes.push(old_hash);
                }
                self.tokens
                    .insert(token.hash.clone(), Arc::new(token.clone()));
                invalidation.token_hashes.push(token.hash.clone());
            }
            ConfigEvent::TokenDeleted(deleted) => {
                if let Some(hash) = self.token_hash_by_id.remove(&deleted.id) {
                    self.tokens.remove(&hash);
                    invalidation.token_hashes.push(hash);
                }
            }
            ConfigEvent::UserPut(user) => {
                self.set_user(
                    &user.id,
                    UserLimits {
                        enabled: user.enabled,
                        budget: user.budget.clone(),
                        allowed_models: user.allowed_models.clone(),
                    },
                );
            }
            ConfigEvent::TeamPut(team) => {
                self.teams.insert(team.id.clone(), Arc::new(team.clone()));
            }
            ConfigEvent::TeamDeleted(deleted) => {
                self.teams.remove(&deleted.id);
            }
            ConfigEvent::UserDeleted(deleted) => {
                self.users.remove(&deleted.id);
                self.deleted_users.insert(deleted.id.clone());
            }
            ConfigEvent::SettingPut(setting)
                if setting.key == shared::config::RATE_LIMITS_SETTING =>
            {
                match serde_json::from_value(setting.value.clone()) {
                    Ok(limits) => self.rate_limits = Arc::new(limits),
                    // admin-api checks the shape; an event that slipped past it leaves the
                    // limits as they were rather than lifting them.
                    Err(error) => {
                        tracing::warn!(%error, "rate_limits setting ignored: not the expected shape");
                    }
                }
            }
            ConfigEvent::SettingDeleted(deleted)
                if deleted.id == shared::config::RATE_LIMITS_SETTING =>
            {
                self.rate_limits = Arc::default();
            }
            // Role bindings and other settings do not affect serving.
            ConfigEvent::RoleBindingPut(_)
            | ConfigEvent::RoleBindingDeleted(_)
            | ConfigEvent::SettingPut(_)
            | ConfigEvent::SettingDeleted(_) => {}
        }
        invalidation
    }

    /// Applies a row of the Postgres config view (the entity's current state).
    ///
    /// # Errors
    /// When the row's data does not match the entity's type.
    pub fn apply_view_row(
        &mut self,
        entity: &str,
        data: serde_json::Value,
        secrets: &Secrets,
    ) -> Result<(), serde_json::Error> {
        let event = match entity {
            "user" => {
                let user: UserState = serde_json::from_value(data)?;
                self.set_user(&user.id, user.limits);
                return Ok(());
            }
            "provider" => ConfigEvent::ProviderPut(serde_json::from_value(data)?),
            "provider_key" => ConfigEvent::ProviderKeyPut(serde_json::from_value(data)?),
            "model" => ConfigEvent::ModelPut(serde_json::from_value(data)?),
            "token" => ConfigEvent::TokenPut(serde_json::from_value(data)?),
            "setting" => ConfigEvent::SettingPut(serde_json::from_value(data)?),
            "team" => ConfigEvent::TeamPut(serde_json::from_value(data)?),
            _ => return Ok(()),
        };
        self.apply(&event, 0, secrets);
        Ok(())
    }

    /// The entities ingress needs from the views.
    #[must_use]
    pub fn view_entities() -> [&'static str; 7] {
        [
            ConfigEntity::Setting.as_str(),
            ConfigEntity::Team.as_str(),
            ConfigEntity::Provider.as_str(),
            ConfigEntity::ProviderKey.as_str(),
            ConfigEntity::Model.as_str(),
            ConfigEntity::Token.as_str(),
            ConfigEntity::User.as_str(),
        ]
    }

    fn set_user(&mut self, user_id: &str, limits: UserLimits) {
        self.users.insert(user_id.to_owned(), Arc::new(limits));
        self.deleted_users.remove(user_id);
    }

    /// Marks a user deleted (found so in the stream when the views, which drop deleted rows,
    /// cannot say).
    pub fn mark_user_deleted(&mut self, user_id: &str) {
        self.users.remove(user_id);
        self.deleted_users.insert(user_id.to_owned());
    }

    /// Token owners the snapshot knows nothing about (neither a user row nor a deletion).
    #[must_use]
    pub fn unknown_owners(&self) -> Vec<String> {
        let mut owners: Vec<String> = self
            .tokens
            .values()
            .map(|token| token.owner_user_id.clone())
            .filter(|owner| !self.users.contains_key(owner) && !self.deleted_users.contains(owner))
            .collect();
        owners.sort();
        owners.dedup();
        owners
    }

    /// Whether the owner of a token may not use it: disabled, or deleted. An owner with no
    /// user event at all (tokens published by tools before users existed) is not refused.
    #[must_use]
    pub fn owner_refusal(&self, user_id: &str) -> Option<OwnerRefusal> {
        if self.deleted_users.contains(user_id) {
            Some(OwnerRefusal::Deleted)
        } else if self.users.get(user_id).is_some_and(|user| !user.enabled) {
            Some(OwnerRefusal::Disabled)
        } else {
            None
        }
    }
}

impl Snapshot {
    /// What serving needs of a user, when the snapshot knows them.
    #[must_use]
    pub fn user(&self, user_id: &str) -> Option<&Arc<UserLimits>> {
        self.users.get(user_id)
    }

    /// The token with this id.
    #[must_use]
    pub fn token_by_id(&self, token_id: &str) -> Option<&Arc<UserToken>> {
        self.token_hash_by_id
            .get(token_id)
            .and_then(|hash| self.tokens.get(hash))
    }

    /// The budget counted under a limiter key: a token's (its id), a team's (`team:<id>`) or a
    /// user's (`user:<id>`).
    #[must_use]
    pub fn budget_of(&self, key: &str) -> Option<&Budget> {
        if let Some(team_id) = key.strip_prefix("team:") {
            self.teams.get(team_id)?.budget.as_ref()
        } else if let Some(user_id) = key.strip_prefix("user:") {
            self.users.get(user_id)?.budget.as_ref()
        } else {
            self.token_by_id(key)?.budget.as_ref()
        }
    }

    /// The period of the budget counted under a limiter key.
    #[must_use]
    pub fn budget_period(&self, key: &str) -> Option<BudgetPeriod> {
        self.budget_of(key).map(|budget| budget.period)
    }

    /// Every budget and the tokens whose spend counts against it: each token's own, each
    /// team's (the tokens charged to it) and each user's (the tokens they own).
    #[must_use]
    pub fn budget_holders(&self) -> Vec<BudgetHolder> {
        let mut holders: HashMap<String, BudgetHolder> = HashMap::new();
        for token in self.tokens.values() {
            if let Some(budget) = &token.budget {
                holders.insert(
                    token.id.clone(),
                    BudgetHolder {
                        key: token.id.clone(),
                        budget: budget.clone(),
                        token_ids: vec![token.id.clone()],
                    },
                );
            }
            let shared_budgets = [
                token
                    .team_id
                    .as_ref()
                    .and_then(|team_id| self.teams.get(team_id))
                    .and_then(|team| Some((format!("team:{}", team.id), team.budget.as_ref()?))),
                self.users
                    .get(&token.owner_user_id)
                    .and_then(|user| user.budget.as_ref())
                    .map(|budget| (format!("user:{}", token.owner_user_id), budget)),
            ];
            for (key, budget) in shared_budgets.into_iter().flatten() {
                holders
                    .entry(key.clone())
                    .or_insert_with(|| BudgetHolder {
                        key,
                        budget: budget.clone(),
                        token_ids: Vec::new(),
                    })
                    .token_ids
                    .push(token.id.clone());
            }
        }
        let mut holders: Vec<BudgetHolder> = holders.into_values().collect();
        holders.sort_by(|a, b| a.key.cmp(&b.key));
        holders
    }
}

/// The live config: a snapshot swapped atomically on every event.
pub struct ConfigStore {
    current: ArcSwap<Snapshot>,
}

impl ConfigStore {
    #[must_use]
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    #[must_use]
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Records that `sequence` was seen but carries nothing to apply.
    pub fn skip(&self, sequence: u64) {
        let mut next = Snapshot::clone(&self.current.load());
        next.sequence = next.sequence.max(sequence);
        self.current.store(Arc::new(next));
    }

    /// Applies an event on a copy and swaps it in.
    pub fn apply(&self, event: &ConfigEvent, sequence: u64, secrets: &Secrets) -> Invalidation {
        let mut next = Snapshot::clone(&self.current.load());
        let invalidation = next.apply(event, sequence, secrets);
        self.current.store(Arc::new(next));
        metrics::gauge!("ingress_config_sequence").set(sequence as f64);
        invalidation
    }
}

/// Whether an address is on the public internet; the one table is `shared::net`, which
/// admin-api's key test uses too.
pub use shared::net::is_public_address;

/// Resolves upstream host names, refusing any address that is not public unless allowed, so a
/// provider URL (or a DNS answer that changes later) cannot point ingress at internal services.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| allow_private || is_public_address(address.ip()))
                .collect();
            if addresses.is_empty() {
                return Err(format!(
                    "{host} resolves only to non-public addresses, which this provider may not use"
                )
                .into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// Builds the pooled HTTP client of one provider, checking its base URL first.
fn build_client(
    provider: &Provider,
    allow_private_upstreams: bool,
) -> Result<reqwest::Client, String> {
    let allow_private = allow_private_upstreams || provider.allow_private_network;
    let url = reqwest::Url::parse(&provider.base_url)
        .map_err(|error| format!("base_url is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "base_url scheme {} is not http or https",
            url.scheme()
        ));
    }
    let host = url.host().ok_or("base_url has no host")?;
    let literal = match host {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(domain) if domain.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = literal
        && !allow_private
        && !is_public_address(ip)
    {
        return Err(format!(
            "base_url points at the non-public address {ip}; set allow_private_network on the provider to allow it"
        ));
    }
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(u64::from(
            provider.timeouts.connect_ms,
        )))
        .redirect(reqwest::redirect::Policy::none())
        // A proxy from HTTP(S)_PROXY would resolve the host itself, past the guarded resolver.
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1_024)
        .tcp_nodelay(true)
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .build()
        .map_err(|error| format!("HTTP client: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_addresses_are_recognised() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "0.0.0.0",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public_address(address.parse().unwrap()), "{address}");
        }
        for address in ["1.1.1.1", "2606:4700:4700::1111", "8.8.8.8"] {
            assert!(is_public_address(address.parse().unwrap()), "{address}");
        }
    }

    fn provider(base_url: &str, allow: bool) -> Provider {
        Provider {
            id: "p".into(),
            name: "p".into(),
            protocol: shared::config::Protocol::OpenAi,
            base_url: base_url.into(),
            extra_headers: Default::default(),
            timeouts: Default::default(),
            enabled: true,
            allow_private_network: allow,
        }
    }

    #[test]
    fn metadata_and_private_base_urls_are_refused_unless_allowed() {
        assert!(build_client(&provider("http://169.254.169.254/latest", false), false).is_err());
        assert!(build_client(&provider("http://localhost:9100", false), false).is_err());
        assert!(build_client(&provider("http://[::1]:9100", false), false).is_err());
        assert!(build_client(&provider("file:///etc/passwd", true), true).is_err());
        assert!(build_client(&provider("http://127.0.0.1:9100", true), false).is_ok());
        assert!(build_client(&provider("http://127.0.0.1:9100", false), true).is_ok());
        assert!(build_client(&provider("https://api.openai.com/v1", false), false).is_ok());
    }
}
