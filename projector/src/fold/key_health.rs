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
