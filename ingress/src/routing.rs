//! Route selection and per-key circuit breakers.
//!
//! A model alias has routes (provider, upstream model, key pool, priority tier, weight). The
//! attempt plan walks the tiers in order; within a tier, routes are ordered by a weighted random
//! shuffle; within a route, its usable keys in a random rotation. Keys whose circuit is open are
//! left out; a half-open key lets exactly one probe through.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use shared::config::Model;

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

/// The ordered attempt plan for a model: every usable (provider, key) pair, best first. Keys
/// whose circuit is open are left out unless `include_open` (every key is cooling down and the
/// model's policy says to try them anyway).
#[must_use]
pub fn plan(
    model: &Model,
    snapshot: &Snapshot,
    breakers: &Breakers,
    include_open: bool,
    rng: &mut impl Rng,
) -> Vec<Candidate> {
    let mut tiers: Vec<u32> = model.routes.iter().map(|route| route.priority).collect();
    tiers.sort_unstable();
    tiers.dedup();
    let mut candidates = Vec::new();
    for tier in tiers {
        // Efraimidis–Spirakis: a weighted random order in one pass.
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
        for (_, route) in routes {
            let Some(provider) = snapshot.providers.get(&route.provider_id) else {
                continue;
            };
            if !provider.provider.enabled || provider.client.is_err() {
                continue;
            }
            let mut keys: Vec<&Arc<KeyRuntime>> = snapshot
                .keys
                .values()
                .filter(|key| {
                    key.key.provider_id == route.provider_id
                        && key.key.enabled
                        && key.secret.is_some()
                        && (route.key_ids.is_empty() || route.key_ids.contains(&key.key.id))
                        && (include_open || !breakers.is_open(&key.key.id))
                })
                .collect();
            keys.sort_by(|left, right| left.key.id.cmp(&right.key.id));
            if !keys.is_empty() {
                let start = rng.gen_range(0..keys.len());
                keys.rotate_left(start);
            }
            candidates.extend(keys.into_iter().map(|key| Candidate {
                provider: provider.clone(),
                key: key.clone(),
                upstream_model: route.upstream_model.clone(),
                capabilities: route.capabilities.clone(),
            }));
        }
    }
    candidates
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
