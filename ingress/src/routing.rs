//! Route selection and per-key circuit breakers.
//!
//! A model alias has routes (provider, upstream model, key pool, priority tier, weight). The
//! attempt plan walks the tiers in order; within a tier, the model's routing strategy orders
//! the (route, key) candidates: by default a weighted random shuffle of the routes and a random
//! rotation of each route's keys; or fewest in flight, lowest moving-average time to first
//! byte, or the session's rendezvous-hashed favourite ([`RoutingStrategy`]). Keys whose circuit
//! is open are left out; a half-open key lets exactly one probe through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use sha2::{Digest, Sha256};
use shared::config::{Model, Routing, RoutingStrategy};
use shared::request::RoutingDecision;

use crate::error::IngressError;
use crate::state::{KeyRuntime, ProviderRuntime, Snapshot};

/// One upstream to try.
#[derive(Clone)]
pub struct Candidate {
    pub provider: Arc<ProviderRuntime>,
    pub key: Arc<KeyRuntime>,
    pub upstream_model: String,
    /// What the route declares its upstream model accepts (defaults fill the rest).
    pub capabilities: shared::config::Capabilities,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

/// When a breaker trips and how long it rests.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    pub consecutive_failures: u32,
    pub window: usize,
    pub failure_ratio: f64,
    pub cooldown: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            window: 20,
            failure_ratio: 0.5,
            cooldown: Duration::from_secs(30),
        }
    }
}

#[derive(Debug)]
struct Breaker {
    state: CircuitState,
    consecutive_failures: u32,
    recent: Vec<bool>,
    next: usize,
    open_until: Instant,
    probe_in_flight: bool,
    /// The key's last upstream failure, for a client that finds every key cooling down.
    last_error: Option<(Instant, IngressError)>,
}

impl Breaker {
    fn new() -> Self {
        Self {
            state: CircuitState::Closed,
            consecutive_failures: 0,
            recent: Vec::new(),
            next: 0,
            open_until: Instant::now(),
            probe_in_flight: false,
            last_error: None,
        }
    }
}

pub struct Breakers {
    settings: BreakerSettings,
    breakers: Mutex<HashMap<String, Breaker>>,
}

impl Breakers {
    #[must_use]
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            breakers: Mutex::new(HashMap::new()),
        }
    }

    /// The ingress-wide settings.
    #[must_use]
    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    /// The most recent upstream failure among `key_ids`, with the cooldown left on its
    /// circuit (if open).
    #[must_use]
    pub fn last_error<'a>(
        &self,
        key_ids: impl IntoIterator<Item = &'a str>,
    ) -> Option<(IngressError, Option<Duration>)> {
        let breakers = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        key_ids
            .into_iter()
            .filter_map(|key_id| breakers.get(key_id))
            .filter_map(|breaker| {
                let (at, error) = breaker.last_error.as_ref()?;
                let left = (breaker.state == CircuitState::Open && breaker.open_until > now)
                    .then(|| breaker.open_until - now);
                Some((*at, error.clone(), left))
            })
            .max_by_key(|(at, _, _)| *at)
            .map(|(_, error, left)| (error, left))
    }

    /// Whether a key may be tried now. For a half-open key this takes the one probe slot.
    pub fn try_acquire(&self, key_id: &str) -> bool {
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(breaker) = breakers.get_mut(key_id) else {
            return true;
        };
        match breaker.state {
            CircuitState::Closed => true,
            CircuitState::Open if Instant::now() >= breaker.open_until => {
                breaker.state = CircuitState::HalfOpen;
                breaker.probe_in_flight = true;
                set_gauge(key_id, CircuitState::HalfOpen);
                true
            }
            CircuitState::Open => false,
            CircuitState::HalfOpen if !breaker.probe_in_flight => {
                breaker.probe_in_flight = true;
                true
            }
            CircuitState::HalfOpen => false,
        }
    }

    /// Whether a key would be skipped by the planner (open and still cooling down).
    #[must_use]
    pub fn is_open(&self, key_id: &str) -> bool {
        let breakers = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        breakers
            .get(key_id)
            .is_some_and(|breaker| match breaker.state {
                CircuitState::Open => Instant::now() < breaker.open_until,
                CircuitState::HalfOpen => breaker.probe_in_flight,
                CircuitState::Closed => false,
            })
    }

    #[must_use]
    pub fn state(&self, key_id: &str) -> CircuitState {
        let breakers = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        breakers
            .get(key_id)
            .map_or(CircuitState::Closed, |breaker| breaker.state)
    }

    /// Records an attempt's outcome under `settings` (the model's policy over the defaults).
    /// Only upstream faults count as failures (429, 5xx, timeouts, connection errors), never
    /// the client's; a failure's error is kept for [`Breakers::last_error`].
    pub fn record(&self, key_id: &str, failure: Option<&IngressError>, settings: &BreakerSettings) {
        let success = failure.is_none();
        let mut breakers = self
            .breakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let breaker = breakers
            .entry(key_id.to_owned())
            .or_insert_with(Breaker::new);
        breaker.probe_in_flight = false;
        if let Some(error) = failure {
            breaker.last_error = Some((Instant::now(), error.clone()));
        }
        if breaker.recent.len() < settings.window {
            breaker.recent.push(success);
        } else {
            breaker.recent[breaker.next] = success;
        }
        breaker.next = (breaker.next + 1) % settings.window.max(1);
        if success {
            breaker.consecutive_failures = 0;
            if breaker.state != CircuitState::Closed {
                breaker.state = CircuitState::Closed;
                breaker.recent.clear();
                breaker.next = 0;
                set_gauge(key_id, CircuitState::Closed);
            }
            return;
        }
        breaker.consecutive_failures += 1;
        let failures = breaker.recent.iter().filter(|ok| !**ok).count();
        #[expect(clippy::cast_precision_loss, reason = "window sizes are small")]
        let ratio_tripped = breaker.recent.len() >= settings.window
            && failures as f64 / breaker.recent.len() as f64 >= settings.failure_ratio;
        if breaker.state == CircuitState::HalfOpen
            || breaker.consecutive_failures >= settings.consecutive_failures
            || ratio_tripped
        {
            breaker.state = CircuitState::Open;
            breaker.open_until = Instant::now() + settings.cooldown;
            set_gauge(key_id, CircuitState::Open);
            tracing::warn!(key = key_id, "circuit opened for provider key");
        }
    }
}

fn set_gauge(key_id: &str, state: CircuitState) {
    let value = match state {
        CircuitState::Closed => 0.0,
        CircuitState::HalfOpen => 0.5,
        CircuitState::Open => 1.0,
    };
    metrics::gauge!("ingress_circuit_state", "key" => key_id.to_owned()).set(value);
}

/// The session a request belongs to, for `cache_affinity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Where it came from: `header`, `prompt_cache_key` or `metadata.user_id`.
    pub source: &'static str,
    pub key: String,
}

impl Session {
    /// The request's session under the model's routing: the configured header first, then
    /// `prompt_cache_key`, then Anthropic's `metadata.user_id`. Empty values are no session.
    #[must_use]
    pub fn of(
        routing: &Routing,
        headers: &http::HeaderMap,
        dialect: crate::translate::Dialect,
        request: &crate::translate::ir::Request,
    ) -> Option<Self> {
        let from_header = routing
            .session_header
            .as_deref()
            .and_then(|name| headers.get(name))
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.trim().is_empty())
            .map(|value| Self {
                source: "header",
                key: value.to_owned(),
            });
        let prompt_cache_key = || {
            request
                .params
                .prompt_cache_key
                .as_deref()
                .filter(|key| !key.is_empty())
                .map(|key| Self {
                    source: "prompt_cache_key",
                    key: key.to_owned(),
                })
        };
        let user_id = || {
            (dialect == crate::translate::Dialect::Anthropic)
                .then_some(request.params.user.as_deref())
                .flatten()
                .filter(|user| !user.is_empty())
                .map(|user| Self {
                    source: "metadata.user_id",
                    key: user.to_owned(),
                })
        };
        from_header.or_else(prompt_cache_key).or_else(user_id)
    }

    /// What the request event says of the session: the first 16 hex digits of its SHA-256.
    #[must_use]
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.key.as_bytes());
        hex::encode(&digest[..8])
    }

    /// Where `candidate` ranks for this session: a point in (0, 1] that every node computes
    /// alike, raised to `1 / weight` (weighted rendezvous hashing: the highest wins).
    fn score(&self, candidate: &Candidate, weight: f64) -> f64 {
        let mut hasher = Sha256::new();
        hasher.update(self.key.as_bytes());
        hasher.update([0]);
        hasher.update(candidate.key.key.id.as_bytes());
        hasher.update([0]);
        hasher.update(candidate.upstream_model.as_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0_u8; 8];
        bytes.copy_from_slice(&digest[..8]);
        #[expect(clippy::cast_precision_loss, reason = "a uniform point needs 53 bits")]
        let point = ((u64::from_be_bytes(bytes) >> 11) as f64 + 1.0) / (1_u64 << 53) as f64;
        point.powf(1.0 / weight)
    }
}

/// What this node has seen of each route and key: requests in flight and the moving average of
/// their time to first byte. Per node; `least_in_flight` and `latency` decide on it.
#[derive(Default)]
pub struct RouteStats {
    stats: Mutex<HashMap<(String, String), Stat>>,
    /// `latency` decisions per model, for the re-measuring turn.
    turns: Mutex<HashMap<String, u64>>,
}

#[derive(Default)]
struct Stat {
    in_flight: u32,
    ewma_us: Option<f64>,
    measured_at: Option<Instant>,
}

/// The weight of a new time-to-first-byte sample in the moving average.
const EWMA_ALPHA: f64 = 0.3;
/// Every this many `latency` decisions for a model, the stalest candidate goes first.
const REMEASURE_EVERY: u64 = 16;

fn stat_key(candidate: &Candidate) -> (String, String) {
    (
        candidate.key.key.id.clone(),
        candidate.upstream_model.clone(),
    )
}

impl RouteStats {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Stat>> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a request in flight on `candidate` until the guard drops.
    #[must_use]
    pub fn start(self: &Arc<Self>, candidate: &Candidate) -> InFlight {
        let key = stat_key(candidate);
        self.lock().entry(key.clone()).or_default().in_flight += 1;
        InFlight {
            stats: self.clone(),
            key,
        }
    }

    /// Folds a failed attempt into `candidate`'s average as a sample of `penalty` (its
    /// first-byte timeout): a key that only fails is measured, and measured slow.
    pub fn observe_failure(&self, candidate: &Candidate, penalty: Duration) {
        self.observe_ttfb(candidate, penalty);
    }

    /// Folds an attempt's time to first byte into `candidate`'s average.
    pub fn observe_ttfb(&self, candidate: &Candidate, ttfb: Duration) {
        #[expect(clippy::cast_precision_loss, reason = "microseconds fit")]
        let sample = ttfb.as_micros() as f64;
        let mut stats = self.lock();
        let stat = stats.entry(stat_key(candidate)).or_default();
        stat.ewma_us = Some(match stat.ewma_us {
            Some(average) => average + EWMA_ALPHA * (sample - average),
            None => sample,
        });
        stat.measured_at = Some(Instant::now());
    }

    /// Requests in flight on `candidate` now.
    #[must_use]
    pub fn in_flight(&self, candidate: &Candidate) -> u32 {
        self.lock()
            .get(&stat_key(candidate))
            .map_or(0, |stat| stat.in_flight)
    }

    fn next_turn(&self, model_id: &str) -> u64 {
        let mut turns = self
            .turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let turn = turns.entry(model_id.to_owned()).or_default();
        *turn += 1;
        *turn
    }
}

/// A request in flight on a route and key; dropping it ends the count.
pub struct InFlight {
    stats: Arc<RouteStats>,
    key: (String, String),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(stat) = self.stats.lock().get_mut(&self.key) {
            stat.in_flight = stat.in_flight.saturating_sub(1);
        }
    }
}

/// What the planner decides with: the node's route statistics, the request's session, and
/// which upstream protocols the operation can use.
pub struct Router<'a> {
    pub stats: &'a RouteStats,
    pub session: Option<&'a Session>,
    pub accepts: &'a dyn Fn(shared::config::Protocol) -> bool,
}

/// The attempt plan and, when the model has a strategy, the decision behind its first tier.
pub struct Plan {
    pub candidates: Vec<Candidate>,
    pub decision: Option<RoutingDecision>,
}

/// The ordered attempt plan for a model: every usable (provider, key) pair, best first. Tiers
/// go in priority order; inside a tier the model's strategy orders the candidates (weighted
/// random by default). Keys whose circuit is open are left out unless `include_open` (every key
/// is cooling down and the model's policy says to try them anyway).
#[must_use]
pub fn plan(
    model: &Model,
    snapshot: &Snapshot,
    breakers: &Breakers,
    include_open: bool,
    router: &Router<'_>,
    rng: &mut impl Rng,
) -> Plan {
    let strategy = model
        .routing
        .as_ref()
        .map_or(RoutingStrategy::Weighted, |routing| routing.strategy);
    let mut tiers: Vec<u32> = model.routes.iter().map(|route| route.priority).collect();
    tiers.sort_unstable();
    tiers.dedup();
    let remeasure = strategy == RoutingStrategy::Latency
        && router
            .stats
            .next_turn(&model.id)
            .is_multiple_of(REMEASURE_EVERY);
    let mut candidates = Vec::new();
    let mut decision = None;
    for tier in tiers {
        let mut weighted = weighted_tier(
            model,
            tier,
            snapshot,
            breakers,
            include_open,
            router.accepts,
            rng,
        );
        if weighted.is_empty() {
            continue;
        }
        // Every tier in the strategy's order; the event tells of the first.
        let ordered = order(strategy, &mut weighted, router, remeasure);
        if model.routing.is_some() && decision.is_none() {
            decision = Some(ordered);
        }
        candidates.extend(weighted.into_iter().map(|(candidate, _)| candidate));
    }
    Plan {
        candidates,
        decision,
    }
}

/// One tier's candidates in a weighted random order (routes by Efraimidis–Spirakis, each
/// route's keys in a random rotation), each with its share of the route's weight.
fn weighted_tier(
    model: &Model,
    tier: u32,
    snapshot: &Snapshot,
    breakers: &Breakers,
    include_open: bool,
    accepts: &dyn Fn(shared::config::Protocol) -> bool,
    rng: &mut impl Rng,
) -> Vec<(Candidate, f64)> {
    let mut routes: Vec<(f64, &shared::config::Route)> = model
        .routes
        .iter()
        .filter(|route| route.priority == tier && route.weight > 0)
        .map(|route| {
            (
                rng.r#gen::<f64>().powf(1.0 / f64::from(route.weight)),
                route,
            )
        })
        .collect();
    routes.sort_by(|left, right| right.0.total_cmp(&left.0));
    let mut candidates = Vec::new();
    for (_, route) in routes {
        let Some(provider) = snapshot.providers.get(&route.provider_id) else {
            continue;
        };
        if !provider.provider.enabled
            || provider.client.is_err()
            || !accepts(provider.provider.protocol)
        {
            continue;
        }
        let configured: Vec<&Arc<KeyRuntime>> = snapshot
            .keys
            .values()
            .filter(|key| {
                key.key.provider_id == route.provider_id
                    && key.key.enabled
                    && key.secret.is_some()
                    && (route.key_ids.is_empty() || route.key_ids.contains(&key.key.id))
            })
            .collect();
        // A key's share of the route's weight counts its usable siblings whatever their
        // circuits, so one key cooling down moves no other key's sessions.
        #[expect(clippy::cast_precision_loss, reason = "key counts are small")]
        let share = f64::from(route.weight) / configured.len().max(1) as f64;
        let mut keys: Vec<&Arc<KeyRuntime>> = configured
            .into_iter()
            .filter(|key| include_open || !breakers.is_open(&key.key.id))
            .collect();
        keys.sort_by(|left, right| left.key.id.cmp(&right.key.id));
        if !keys.is_empty() {
            let start = rng.gen_range(0..keys.len());
            keys.rotate_left(start);
        }
        candidates.extend(keys.into_iter().map(|key| {
            (
                Candidate {
                    provider: provider.clone(),
                    key: key.clone(),
                    upstream_model: route.upstream_model.clone(),
                    capabilities: route.capabilities.clone(),
                },
                share,
            )
        }));
    }
    candidates
}

/// Reorders a tier (given in weighted random order, which breaks ties) by `strategy`, and says
/// why its first candidate is first.
fn order(
    strategy: RoutingStrategy,
    tier: &mut [(Candidate, f64)],
    router: &Router<'_>,
    remeasure: bool,
) -> RoutingDecision {
    let mut decision = RoutingDecision {
        strategy,
        candidates: u32::try_from(tier.len()).unwrap_or(u32::MAX),
        session_source: None,
        session: None,
        in_flight: None,
        ewma_ttfb_us: None,
        explored: false,
    };
    match strategy {
        RoutingStrategy::Weighted => {}
        RoutingStrategy::LeastInFlight => {
            let stats = router.stats.lock();
            let load = |candidate: &Candidate, share: f64| {
                f64::from(
                    stats
                        .get(&stat_key(candidate))
                        .map_or(0, |stat| stat.in_flight),
                ) / share
            };
            // Stable: equal loads keep the weighted order.
            tier.sort_by(|left, right| load(&left.0, left.1).total_cmp(&load(&right.0, right.1)));
            decision.in_flight = Some(
                stats
                    .get(&stat_key(&tier[0].0))
                    .map_or(0, |stat| stat.in_flight),
            );
        }
        RoutingStrategy::Latency => {
            let stats = router.stats.lock();
            let measured = |candidate: &Candidate| {
                stats
                    .get(&stat_key(candidate))
                    .and_then(|stat| Some((stat.ewma_us?, stat.measured_at?)))
            };
            // Never measured and not being measured first (in weighted order), then fastest
            // first, then those whose first measurement is under way (so a burst does not all
            // go to a new key before anything is known of it).
            let rank = |candidate: &Candidate| match measured(candidate) {
                Some((average, _)) => (1_u8, average),
                None if stats
                    .get(&stat_key(candidate))
                    .is_some_and(|stat| stat.in_flight > 0) =>
                {
                    (2, 0.0)
                }
                None => (0, 0.0),
            };
            tier.sort_by(|left, right| {
                let (left, right) = (rank(&left.0), rank(&right.0));
                left.0.cmp(&right.0).then(left.1.total_cmp(&right.1))
            });
            if measured(&tier[0].0).is_none() {
                decision.explored = true;
            } else if remeasure && tier.len() > 1 {
                let stalest = (0..tier.len())
                    .min_by_key(|index| measured(&tier[*index].0).map(|(_, at)| at))
                    .unwrap_or(0);
                if stalest != 0 {
                    tier[..=stalest].rotate_right(1);
                    decision.explored = true;
                }
            }
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "a positive average of microseconds"
            )]
            {
                decision.ewma_ttfb_us = measured(&tier[0].0).map(|(average, _)| average as u64);
            }
        }
        RoutingStrategy::CacheAffinity => {
            if let Some(session) = router.session {
                tier.sort_by(|left, right| {
                    session
                        .score(&right.0, right.1)
                        .total_cmp(&session.score(&left.0, left.1))
                });
                decision.session_source = Some(session.source.to_owned());
                decision.session = Some(session.fingerprint());
            }
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> IngressError {
        IngressError::Overloaded("upstream said no".into())
    }

    #[test]
    fn breaker_trips_cools_down_and_probes_once() {
        let settings = BreakerSettings {
            cooldown: Duration::from_millis(0),
            ..Default::default()
        };
        let breakers = Breakers::new(settings);
        for _ in 0..4 {
            breakers.record("k", Some(&failed()), &settings);
        }
        assert_eq!(breakers.state("k"), CircuitState::Closed);
        breakers.record("k", Some(&failed()), &settings);
        assert_eq!(breakers.state("k"), CircuitState::Open);
        // Cooldown over: one probe, then nothing until it reports.
        assert!(breakers.try_acquire("k"));
        assert!(!breakers.try_acquire("k"));
        breakers.record("k", Some(&failed()), &settings);
        assert_eq!(
            breakers.state("k"),
            CircuitState::Open,
            "a failed probe reopens"
        );
        assert!(breakers.try_acquire("k"));
        breakers.record("k", None, &settings);
        assert_eq!(breakers.state("k"), CircuitState::Closed);
        assert!(breakers.try_acquire("k"));
    }

    #[test]
    fn breaker_trips_on_error_ratio() {
        let settings = BreakerSettings::default();
        let breakers = Breakers::new(settings);
        for index in 0..20 {
            let failure = (index % 2 != 0).then(failed);
            breakers.record("k", failure.as_ref(), &settings);
        }
        assert_eq!(breakers.state("k"), CircuitState::Open);
    }

    #[test]
    fn the_models_thresholds_and_the_last_error_are_kept() {
        let breakers = Breakers::new(BreakerSettings::default());
        let strict = BreakerSettings {
            consecutive_failures: 2,
            cooldown: Duration::from_secs(600),
            ..BreakerSettings::default()
        };
        assert!(breakers.last_error(["k"]).is_none());
        breakers.record("k", Some(&failed()), &strict);
        assert_eq!(breakers.state("k"), CircuitState::Closed);
        let second = IngressError::Overloaded("the second failure".into());
        breakers.record("k", Some(&second), &strict);
        assert_eq!(
            breakers.state("k"),
            CircuitState::Open,
            "two failures under this policy"
        );
        let (error, left) = breakers.last_error(["other", "k"]).unwrap();
        assert_eq!(error.to_string(), second.to_string());
        assert!(
            left.unwrap() > Duration::from_secs(500),
            "the cooldown left"
        );
    }
}
