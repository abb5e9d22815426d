//! Authentication from memory: the presented token is hashed with the deployment's pepper and
//! looked up through a quick_cache in front of the token view. Unknown tokens are cached
//! briefly (negative entries) so a flood of bad tokens costs one hash each; every token event
//! invalidates the entries for the hashes it touches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use quick_cache::sync::Cache;
use shared::config::UserToken;
use shared::token::{PlainToken, TokenHash, TokenHasher};

use crate::error::IngressError;
use crate::state::{OwnerRefusal, Snapshot};

const NEGATIVE_TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
enum Entry {
    Known(Arc<UserToken>),
    Unknown { until: Instant },
}

pub struct Authenticator {
    hasher: TokenHasher,
    cache: Cache<TokenHash, Entry>,
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())?
        .trim();
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

fn header_token<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

/// The token a request presented, from `Authorization: Bearer`, `x-api-key` or (Gemini's)
/// `x-goog-api-key` — the Gemini endpoints also move a `key=` query parameter there.
///
/// # Errors
/// 401 when two of them carry different tokens: which one would be billed is not the
/// gateway's to guess.
pub fn presented_token(headers: &HeaderMap) -> Result<Option<&str>, IngressError> {
    let mut presented = [
        bearer_token(headers),
        header_token(headers, "x-api-key"),
        header_token(headers, "x-goog-api-key"),
    ]
    .into_iter()
    .flatten();
    let Some(first) = presented.next() else {
        return Ok(None);
    };
    if presented.any(|other| other != first) {
        return Err(IngressError::Unauthorized(
            "`Authorization`, `x-api-key` and `x-goog-api-key` carry different API keys; send one"
                .into(),
        ));
    }
    Ok(Some(first))
}

impl Authenticator {
    #[must_use]
    pub fn new(hasher: TokenHasher) -> Self {
        Self {
            hasher,
            cache: Cache::new(100_000),
        }
    }

    /// Resolves the presented token to a usable user token.
    ///
    /// # Errors
    /// 401 when missing, unknown, disabled or expired.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        snapshot: &Snapshot,
    ) -> Result<Arc<UserToken>, IngressError> {
        let presented = presented_token(headers)?.ok_or_else(|| {
            IngressError::Unauthorized(
                "missing API key: send it as `Authorization: Bearer <token>`, `x-api-key` or `x-goog-api-key`".into(),
            )
        })?;
        let plain = PlainToken::from_presented(presented);
        if !plain.looks_valid() {
            return Err(IngressError::Unauthorized("invalid API key".into()));
        }
        let hash = self.hasher.hash(&plain);
        let token = match self.cache.get(&hash) {
            Some(Entry::Known(token)) => token,
            Some(Entry::Unknown { until }) if until > Instant::now() => {
                return Err(IngressError::Unauthorized("invalid API key".into()));
            }
            _ => match snapshot.tokens.get(&hash) {
                Some(token) => {
                    self.cache.insert(hash, Entry::Known(token.clone()));
                    token.clone()
                }
                None => {
                    self.cache.insert(
                        hash,
                        Entry::Unknown {
                            until: Instant::now() + NEGATIVE_TTL,
                        },
                    );
                    return Err(IngressError::Unauthorized("invalid API key".into()));
                }
            },
        };
        if !token.enabled {
            return Err(IngressError::Unauthorized(
                "this API key has been disabled".into(),
            ));
        }
        // Checked on every request against the current snapshot (not cached with the token),
        // so disabling or deleting a user takes effect with the config event that says so.
        match snapshot.owner_refusal(&token.owner_user_id) {
            Some(OwnerRefusal::Disabled) => {
                return Err(IngressError::Unauthorized(
                    "the user this API key belongs to has been disabled".into(),
                ));
            }
            Some(OwnerRefusal::Deleted) => {
                return Err(IngressError::Unauthorized(
                    "the user this API key belongs to has been deleted".into(),
                ));
            }
            None => {}
        }
        if token
            .expires_at
            .is_some_and(|expires_at| expires_at <= time::OffsetDateTime::now_utc())
        {
            return Err(IngressError::Unauthorized(
                "this API key has expired".into(),
            ));
        }
        Ok(token)
    }

    /// Drops cached entries for these hashes (called for every token event).
    pub fn invalidate(&self, hashes: &[TokenHash]) {
        for hash in hashes {
            self.cache.remove(hash);
        }
    }
}

/// The enabled model `alias` names, if this token may use it: the token's, its owner's and its
/// team's allowed models all admit it, and the token's team (if any) still has its owner as a
/// member.
///
/// # Errors
/// 404 when no enabled model has that alias, 403 when the token may not use it.
pub fn usable_model(
    snapshot: &Snapshot,
    token: &UserToken,
    alias: &str,
) -> Result<Arc<shared::config::Model>, IngressError> {
    let model = snapshot
        .models
        .get(alias)
        .filter(|model| model.enabled)
        .cloned()
        .ok_or_else(|| IngressError::ModelNotFound(alias.to_owned()))?;
    if let Some(refusal) = team_refusal(snapshot, token) {
        return Err(IngressError::Forbidden(refusal));
    }
    if let Some(whose) = model_refused_by(snapshot, token, &model.alias) {
        return Err(IngressError::Forbidden(format!(
            "{whose} may not use the model `{}`",
            model.alias
        )));
    }
    Ok(model)
}

/// Why a token charged to a team may not be used: the team is gone, or the owner is no longer
/// one of its members.
#[must_use]
pub fn team_refusal(snapshot: &Snapshot, token: &UserToken) -> Option<String> {
    let team_id = token.team_id.as_ref()?;
    match snapshot.teams.get(team_id) {
        None => Some("the team this API key is charged to no longer exists".into()),
        Some(team) if team.role_of(&token.owner_user_id).is_none() => Some(format!(
            "the owner of this API key is no longer a member of the team `{}`",
            team.name
        )),
        Some(_) => None,
    }
}

/// Whether the token, its owner and its team all allow `model` (each list of patterns, where
/// `*` matches any run; an empty list allows every model).
#[must_use]
pub fn model_allowed(snapshot: &Snapshot, token: &UserToken, model: &str) -> bool {
    model_refused_by(snapshot, token, model).is_none()
}

/// Whose allowed models leave `model` out, if any do: the token's first, then its owner's,
/// then its team's.
fn model_refused_by(snapshot: &Snapshot, token: &UserToken, model: &str) -> Option<String> {
    let allows = |patterns: &[String]| {
        patterns.is_empty() || patterns.iter().any(|pattern| glob_match(pattern, model))
    };
    if !allows(&token.allowed_models) {
        return Some("this API key".into());
    }
    if let Some(user) = snapshot.user(&token.owner_user_id)
        && !allows(&user.allowed_models)
    {
        return Some("the owner of this API key".into());
    }
    if let Some(team) = token
        .team_id
        .as_ref()
        .and_then(|team_id| snapshot.teams.get(team_id))
        && !allows(&team.allowed_models)
    {
        return Some(format!("the team `{}`", team.name));
    }
    None
}

/// `*`-only glob matching, linear time (the one rule, shared with admin-api).
pub use shared::glob::glob_match;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("claude-*", "claude-sonnet-4"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("gpt-4.1", "gpt-4.1"));
        assert!(!glob_match("gpt-4.1", "gpt-4.1-mini"));
        assert!(glob_match("*-mini", "gpt-4.1-mini"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn token_from_either_header() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer axg-abc".parse().unwrap());
        assert_eq!(presented_token(&headers).unwrap(), Some("axg-abc"));
        headers.insert("x-api-key", "axg-abc".parse().unwrap());
        assert_eq!(
            presented_token(&headers).unwrap(),
            Some("axg-abc"),
            "the same twice is fine"
        );
        headers.insert("x-api-key", "axg-other".parse().unwrap());
        assert!(
            presented_token(&headers).is_err(),
            "two different tokens are refused"
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "axg-def".parse().unwrap());
        assert_eq!(presented_token(&headers).unwrap(), Some("axg-def"));
        assert_eq!(presented_token(&HeaderMap::new()).unwrap(), None);
        let mut headers = HeaderMap::new();
        headers.insert("x-goog-api-key", "axg-ghi".parse().unwrap());
        assert_eq!(presented_token(&headers).unwrap(), Some("axg-ghi"));
        headers.insert("authorization", "Bearer axg-other".parse().unwrap());
        assert!(
            presented_token(&headers).is_err(),
            "a Gemini key and a different bearer are refused"
        );
    }
}
