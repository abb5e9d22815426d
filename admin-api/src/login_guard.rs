//! What stands between an anonymous client and argon2: bounded input, throttles that hold
//! across admin-api processes, a bound on password checks running at once, and audit records
//! that stay small and never keep what a client typed into the username field unless it is a
//! real username.
//!
//! Throttles (exponential back-off after some free failures, counted in Postgres table
//! `admin_login_throttle`, so every process sees the same counts; a counter starts again
//! [`RESET_AFTER`] after its last failure):
//!
//! | key | free failures | then waits | at most |
//! | --- | --- | --- | --- |
//! | (address, user) | 3 | 1 s, 2 s, 4 s… | 5 min |
//! | address (any user) | 20 | 1 s, 2 s, 4 s… | 5 min |
//! | user (any address) | 10 | 1 s, 2 s, 4 s… | 1 min, and only for an address that has already failed for this user |
//!
//! So four wrong passwords typed from one place slow that place down, and someone guessing
//! from elsewhere never locks the real user out of an address that has not failed.
//! While throttled, an attempt costs one Postgres round trip and no argon2; it is answered
//! 429 and counted, and only the first throttled attempt of a window publishes an audit event:
//! the count of the others rides on the next failure's event (`throttled_attempts`).

use std::sync::Arc;
use std::time::Duration;

use shared::token::{PlainToken, TokenHasher};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::db;
use crate::error::ApiError;

/// Usernames are at most 64 bytes (see `resources::users`); anything longer is refused with
/// 400 before it is looked up, logged or recorded.
pub const MAX_USERNAME_BYTES: usize = 64;
/// A password longer than any that can be set is refused before argon2 sees it.
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// A throttle counter starts again this long after its last failure.
pub const RESET_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Rule {
    free: u32,
    cap: Duration,
}

const PAIR: Rule = Rule {
    free: 3,
    cap: Duration::from_secs(300),
};
const ADDRESS: Rule = Rule {
    free: 20,
    cap: Duration::from_secs(300),
};
const USER: Rule = Rule {
    free: 10,
    cap: Duration::from_secs(60),
};

impl Rule {
    /// The wait after `failures`: none for the free ones, then `step`, doubling, up to the cap
    /// (which a step longer than the cap raises to the step).
    fn delay(self, failures: u32, step: Duration) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        step.saturating_mul(1_u32 << (failures - self.free).min(16))
            .min(self.cap.max(step))
    }
}

/// The throttle keys of one attempt.
pub struct Keys {
    pair: String,
    address: String,
    user: String,
}

impl Keys {
    fn all(&self) -> Vec<String> {
        vec![self.pair.clone(), self.address.clone(), self.user.clone()]
    }
}

/// A throttled attempt: wait this long; `first` when it is the first of its window.
pub struct Throttled {
    pub retry_after_seconds: u64,
    pub first: bool,
}

pub struct LoginGuard {
    username_hasher: TokenHasher,
    password_checks: Arc<Semaphore>,
    /// The first wait once a key is throttled (`login_throttle_step_ms`).
    step: Duration,
}

impl LoginGuard {
    /// # Errors
    /// When the pepper is too short (validated before).
    pub fn new(token_pepper: &str, concurrency: usize, step: Duration) -> Result<Self, ApiError> {
        // A key of its own (domain-separated from the token hash), so a username's hash can
        // never be compared with a token's.
        let username_hasher =
            TokenHasher::new(format!("login-username\0{token_pepper}").as_bytes())
                .map_err(ApiError::internal)?;
        Ok(Self {
            username_hasher,
            password_checks: Arc::new(Semaphore::new(concurrency)),
            step,
        })
    }

    /// A keyed hash of a typed username: what the throttle table stores, and what the audit
    /// records instead of a username that names no user.
    #[must_use]
    pub fn username_hash(&self, username: &str) -> String {
        self.username_hasher
            .hash(&PlainToken::from_presented(&username.to_lowercase()))
            .0
    }

    /// What logs and the audit show for a typed username that names no user.
    #[must_use]
    pub fn unknown_user_label(&self, username: &str) -> String {
        let hash = self.username_hash(username);
        format!("unknown-user#{}", &hash[..hash.len().min(12)])
    }

    #[must_use]
    pub fn keys(&self, address: &str, username: &str) -> Keys {
        let user = self.username_hash(username);
        Keys {
            pair: format!("pair:{address}|{user}"),
            address: format!("addr:{address}"),
            user: format!("user:{user}"),
        }
    }

    /// `Some` while any of the attempt's keys is throttled (the attempt is then counted).
    ///
    /// # Errors
    /// On a database error.
    pub async fn check(
        &self,
        pool: &deadpool_postgres::Pool,
        keys: &Keys,
    ) -> Result<Option<Throttled>, ApiError> {
        let rows = db::throttle_rows(pool, &keys.all(), RESET_AFTER.as_secs_f64()).await?;
        let pair_failed = rows
            .iter()
            .any(|row| row.key == keys.pair && row.failures > 0);
        let mut worst: Option<(Duration, &str)> = None;
        for row in &rows {
            let rule = if row.key == keys.pair {
                PAIR
            } else if row.key == keys.address {
                ADDRESS
            } else if pair_failed {
                USER
            } else {
                continue;
            };
            let since = Duration::from_secs_f64(row.seconds_since_last.max(0.0));
            let wait = rule.delay(row.failures, self.step).saturating_sub(since);
            if !wait.is_zero() && worst.is_none_or(|(longest, _)| wait > longest) {
                worst = Some((wait, &row.key));
            }
        }
        let Some((wait, key)) = worst else {
            return Ok(None);
        };
        let unreported = db::throttle_suppress(pool, key).await?;
        Ok(Some(Throttled {
            retry_after_seconds: wait.as_secs().max(1),
            first: unreported <= 1,
        }))
    }

    /// Records a failure; returns the throttled attempts to report with it.
    ///
    /// # Errors
    /// On a database error.
    pub async fn fail(&self, pool: &deadpool_postgres::Pool, keys: &Keys) -> Result<i64, ApiError> {
        db::throttle_fail(pool, &keys.all(), RESET_AFTER.as_secs_f64()).await
    }

    /// A success forgets the (address, user) counter; the address and user counters decay.
    ///
    /// # Errors
    /// On a database error.
    pub async fn succeed(
        &self,
        pool: &deadpool_postgres::Pool,
        keys: &Keys,
    ) -> Result<i64, ApiError> {
        db::throttle_clear(pool, &keys.pair).await
    }

    /// A slot for one password check, or 503 at once when all are busy.
    ///
    /// # Errors
    /// 503 `login_busy`.
    pub fn try_password_check(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.password_checks)
            .try_acquire_owned()
            .map_err(|_| {
                metrics::counter!("admin_api_logins_total", "outcome" => "busy").increment(1);
                ApiError::Unavailable {
                    code: "login_busy",
                    message: "too many sign-ins at once; retry in a moment".into(),
                }
            })
    }

    /// A slot for one password hash or check by a signed-in user, waiting for one.
    ///
    /// # Errors
    /// Only if the semaphore is closed (never).
    pub async fn password_check(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.password_checks)
            .acquire_owned()
            .await
            .map_err(ApiError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_and_is_capped() {
        let second = Duration::from_secs(1);
        assert_eq!(PAIR.delay(2, second), Duration::ZERO);
        assert_eq!(PAIR.delay(3, second), Duration::from_secs(1));
        assert_eq!(PAIR.delay(5, second), Duration::from_secs(4));
        assert_eq!(PAIR.delay(40, second), Duration::from_secs(300));
        assert_eq!(USER.delay(40, second), Duration::from_secs(60));
        assert_eq!(ADDRESS.delay(19, second), Duration::ZERO);
        let long = Duration::from_secs(600);
        assert_eq!(USER.delay(10, long), long);
    }

    #[test]
    fn unknown_usernames_are_recorded_only_as_keyed_hashes() {
        let guard = LoginGuard::new("p".repeat(32).as_str(), 1, Duration::from_secs(1))
            .unwrap_or_else(|_| unreachable!());
        let label = guard.unknown_user_label("Tr0ub4dor&3");
        assert!(label.starts_with("unknown-user#") && !label.contains("Tr0ub4dor"));
        let keys = guard.keys("127.0.0.1", "Tr0ub4dor&3");
        assert!(!keys.pair.contains("Tr0ub4dor") && !keys.user.contains("Tr0ub4dor"));
        assert_eq!(guard.username_hash("Alice"), guard.username_hash("alice"));
    }
}
