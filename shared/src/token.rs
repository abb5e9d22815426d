//! User tokens: generation, keyed hashing and comparison.
//!
//! A token looks like `axg-` followed by 43 base62 characters (about 256 bits), so it is
//! recognisable in a leaked-secret scanner. Only `HMAC-SHA256(pepper, token)` is stored or
//! published; without the pepper (an environment secret of the deployment) a stolen view or
//! stream cannot be used to test guesses offline.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of every AxonGate user token.
pub const TOKEN_PREFIX: &str = "axg-";
const TOKEN_BODY_LEN: usize = 43;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A user token in clear. Shown to its owner once, never logged: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainToken(String);

impl PlainToken {
    /// A new random token from the operating system's generator.
    #[must_use]
    pub fn generate() -> Self {
        let mut rng = rand::rngs::OsRng;
        let body: String = (0..TOKEN_BODY_LEN)
            .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]))
            .collect();
        Self(format!("{TOKEN_PREFIX}{body}"))
    }

    /// Wraps a token a client presented.
    #[must_use]
    pub fn from_presented(token: &str) -> Self {
        Self(token.to_owned())
    }

    /// The secret itself, for showing it once to its owner.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The last four characters, safe to display.
    #[must_use]
    pub fn last_four(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    }

    /// Whether this has the shape of an AxonGate token at all (cheap pre-check before hashing).
    #[must_use]
    pub fn looks_valid(&self) -> bool {
        self.0.len() == TOKEN_PREFIX.len() + TOKEN_BODY_LEN
            && self.0.starts_with(TOKEN_PREFIX)
            && self.0[TOKEN_PREFIX.len()..]
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric())
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "PlainToken(axg-…{})", self.last_four())
    }
}

/// The keyed hash of a token, as hex. This is what views and events hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHash(pub String);

impl TokenHash {
    /// Compares two hashes in constant time.
    #[must_use]
    pub fn verify(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

/// Hashes tokens with the deployment's pepper.
#[derive(Clone)]
pub struct TokenHasher {
    mac: Hmac<Sha256>,
}

#[derive(Debug, thiserror::Error)]
#[error("the token pepper must be at least 32 bytes")]
pub struct WeakPepper;

impl TokenHasher {
    /// # Errors
    /// When the pepper is shorter than 32 bytes.
    pub fn new(pepper: &[u8]) -> Result<Self, WeakPepper> {
        if pepper.len() < 32 {
            return Err(WeakPepper);
        }
        let mac = Hmac::<Sha256>::new_from_slice(pepper).map_err(|_| WeakPepper)?;
        Ok(Self { mac })
    }

    #[must_use]
    pub fn hash(&self, token: &PlainToken) -> TokenHash {
        let mut mac = self.mac.clone();
        mac.update(token.0.as_bytes());
        TokenHash(hex::encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("TokenHasher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEPPER: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn generated_tokens_have_the_prefix_and_shape() {
        let token = PlainToken::generate();
        assert!(token.expose().starts_with("axg-"));
        assert!(token.looks_valid());
        assert_ne!(token, PlainToken::generate());
        assert!(!PlainToken::from_presented("sk-abc").looks_valid());
    }

    #[test]
    fn hash_is_keyed_and_stable() -> Result<(), WeakPepper> {
        let hasher = TokenHasher::new(PEPPER)?;
        let other = TokenHasher::new(b"another pepper of thirty-two bytes!!")?;
        let token = PlainToken::generate();
        assert!(hasher.hash(&token).verify(&hasher.hash(&token)));
        assert!(!hasher.hash(&token).verify(&other.hash(&token)));
        assert!(
            !hasher
                .hash(&token)
                .verify(&hasher.hash(&PlainToken::generate()))
        );
        Ok(())
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = PlainToken::generate();
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose()[4..20]));
        assert!(shown.ends_with(&format!("{})", token.last_four())));
    }

    #[test]
    fn weak_pepper_is_refused() {
        assert!(TokenHasher::new(b"short").is_err());
    }
}
