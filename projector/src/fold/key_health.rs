//! Provider key health: what an operator's key test or a real request's attempt says about a
//! key.

use shared::audit::ProviderKeyTested;
use shared::request::{Attempt, ErrorKind};
use time::OffsetDateTime;

/// One observation of a key: it worked (`ok`) or it failed with `error`, at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCheck {
    pub provider_key_id: String,
    pub provider_id: String,
    pub ok: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    pub at: OffsetDateTime,
}

impl KeyCheck {
    /// What an operator's "test" action found.
    #[must_use]
    pub fn from_test(tested: &ProviderKeyTested, at: OffsetDateTime) -> Self {
        Self {
            provider_key_id: tested.provider_key_id.clone(),
            provider_id: tested.provider_id.clone(),
            ok: tested.ok,
            status: tested.status,
            latency_ms: tested.latency_ms,
            error: tested.error.clone(),
            at,
        }
    }

    /// What one attempt of a real request shows. Only the upstream's own faults count against
    /// the key: a request the upstream refused as invalid still shows the key works.
    #[must_use]
    pub fn from_attempt(attempt: &Attempt, at: OffsetDateTime) -> Self {
        let fault = attempt.error_kind.filter(|kind| kind.is_upstream_fault());
        Self {
            provider_key_id: attempt.provider_key_id.clone(),
            provider_id: attempt.provider_id.clone(),
            ok: fault.is_none(),
            status: attempt.status,
            latency_ms: attempt.latency_us / 1_000,
            error: fault.map(ErrorKind::as_str).map(str::to_owned),
            at,
        }
    }
}

/// A key's health after one or more observations, in order: what one upsert merges into its
/// row (the latest success and error times, the latest error, the last observation's status
/// and latency). Folding a batch's checks into one of these writes the row once instead of
/// once per request, with the same end state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHealth {
    pub provider_key_id: String,
    pub provider_id: String,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_error_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_status: Option<u16>,
    pub last_latency_ms: u64,
    pub updated_at: OffsetDateTime,
}

impl From<&KeyCheck> for KeyHealth {
    fn from(check: &KeyCheck) -> Self {
        Self {
            provider_key_id: check.provider_key_id.clone(),
            provider_id: check.provider_id.clone(),
            last_success_at: check.ok.then_some(check.at),
            last_error_at: (!check.ok).then_some(check.at),
            last_error: check.error.clone(),
            last_status: check.status,
            last_latency_ms: check.latency_ms,
            updated_at: check.at,
        }
    }
}

impl KeyHealth {
    /// Adds a later observation of the same key (its provider stays the first one's, as the
    /// stored row's does).
    pub fn then(&mut self, later: &KeyCheck) {
        let latest = |known: Option<OffsetDateTime>, seen: bool| match (known, seen) {
            (Some(known), true) => Some(known.max(later.at)),
            (None, true) => Some(later.at),
            (known, false) => known,
        };
        self.last_success_at = latest(self.last_success_at, later.ok);
        self.last_error_at = latest(self.last_error_at, !later.ok);
        if later.error.is_some() {
            self.last_error.clone_from(&later.error);
        }
        self.last_status = later.status;
        self.last_latency_ms = later.latency_ms;
        self.updated_at = later.at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(error_kind: Option<ErrorKind>, status: Option<u16>) -> Attempt {
        Attempt {
            provider_id: "p1".into(),
            provider_key_id: "k1".into(),
            upstream_model: "m".into(),
            status,
            error_kind,
            latency_us: 2_345_678,
        }
    }

    #[test]
    fn when_an_attempt_succeeds_then_the_key_is_healthy_with_its_latency_in_milliseconds() {
        let at = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            KeyCheck::from_attempt(&attempt(None, Some(200)), at),
            KeyCheck {
                provider_key_id: "k1".into(),
                provider_id: "p1".into(),
                ok: true,
                status: Some(200),
                latency_ms: 2_345,
                error: None,
                at,
            }
        );
    }

    #[test]
    fn when_the_upstream_refuses_the_request_as_invalid_then_the_key_is_still_healthy() {
        let check = KeyCheck::from_attempt(
            &attempt(Some(ErrorKind::UpstreamBadRequest), Some(400)),
            OffsetDateTime::UNIX_EPOCH,
        );
        assert_eq!(
            (check.ok, check.error, check.status),
            (true, None, Some(400))
        );
    }

    #[test]
    fn when_the_upstream_fails_then_the_key_is_unhealthy_with_the_error_kind() {
        for kind in [
            ErrorKind::UpstreamAuth,
            ErrorKind::UpstreamRateLimited,
            ErrorKind::UpstreamTimeout,
            ErrorKind::UpstreamConnect,
        ] {
            let check =
                KeyCheck::from_attempt(&attempt(Some(kind), None), OffsetDateTime::UNIX_EPOCH);
            assert!(!check.ok, "{kind:?}");
            assert_eq!(check.error.as_deref(), Some(kind.as_str()));
        }
    }
}
