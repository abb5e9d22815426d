//! Provider-key encryption.
//!
//! Provider keys are encrypted with XChaCha20-Poly1305 before they enter an event, under a
//! versioned master key from the environment (`AXONGATE_MASTER_KEYS="1:<base64 32 bytes>,…"`,
//! the highest id encrypts). The key id travels with the ciphertext, so keys can be rotated:
//! add a new id, and old events still decrypt with the old one. The provider-key id is bound as
//! associated data, so a ciphertext cannot be moved to another key record.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A secret as stored in events: master-key id, nonce and ciphertext (base64).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedSecret {
    pub key_id: u32,
    pub nonce: String,
    pub ciphertext: String,
}

impl fmt::Debug for EncryptedSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "EncryptedSecret(key_id={})", self.key_id)
    }
}

/// A secret in clear, in memory only. `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    #[must_use]
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The last four characters, the only part ever displayed.
    #[must_use]
    pub fn last_four(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SecretString(redacted)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("master keys must look like `1:<base64 of 32 bytes>[,2:<…>]`; entry {0} is not valid")]
    BadMasterKeys(usize),
    #[error("no master key configured")]
    NoMasterKey,
    #[error("secret was encrypted with master key {0}, which is not configured")]
    UnknownKeyId(u32),
    #[error("secret could not be decrypted (wrong key, wrong record, or tampered)")]
    Undecryptable,
}

/// The configured master keys. The highest id is used to encrypt.
#[derive(Clone)]
pub struct MasterKeys {
    keys: BTreeMap<u32, [u8; 32]>,
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "MasterKeys(ids={:?})",
            self.keys.keys().collect::<Vec<_>>()
        )
    }
}

impl MasterKeys {
    /// Parses `1:<base64>,2:<base64>`.
    ///
    /// # Errors
    /// When an entry is malformed or no key is given.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let mut keys = BTreeMap::new();
        for (position, entry) in text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let bad = || SecretError::BadMasterKeys(position + 1);
            let (id, key) = entry.split_once(':').ok_or_else(bad)?;
            let id: u32 = id.trim().parse().map_err(|_| bad())?;
            let bytes = BASE64.decode(key.trim()).map_err(|_| bad())?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
            keys.insert(id, key);
        }
        if keys.is_empty() {
            return Err(SecretError::NoMasterKey);
        }
        Ok(Self { keys })
    }

    /// A fresh random key as `<id>:<base64>`, for `.env` files and first start.
    #[must_use]
    pub fn generate_entry(id: u32) -> String {
        let mut key = [0_u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        format!("{id}:{}", BASE64.encode(key))
    }

    /// Encrypts `secret` bound to `record_id` (the provider-key id).
    ///
    /// # Errors
    /// Only if no key is configured, which `parse` prevents.
    pub fn encrypt(
        &self,
        secret: &SecretString,
        record_id: &str,
    ) -> Result<EncryptedSecret, SecretError> {
        let (key_id, key) = self
            .keys
            .iter()
            .next_back()
            .ok_or(SecretError::NoMasterKey)?;
        let cipher = XChaCha20Poly1305::new(key.into());
        let mut nonce = [0_u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: record_id.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        Ok(EncryptedSecret {
            key_id: *key_id,
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
        })
    }

    /// Decrypts a secret encrypted for `record_id`.
    ///
    /// # Errors
    /// When its master key is not configured or the ciphertext does not authenticate.
    pub fn decrypt(
        &self,
        encrypted: &EncryptedSecret,
        record_id: &str,
    ) -> Result<SecretString, SecretError> {
        let key = self
            .keys
            .get(&encrypted.key_id)
            .ok_or(SecretError::UnknownKeyId(encrypted.key_id))?;
        let nonce = BASE64
            .decode(&encrypted.nonce)
            .map_err(|_| SecretError::Undecryptable)?;
        if nonce.len() != 24 {
            return Err(SecretError::Undecryptable);
        }
        let ciphertext = BASE64
            .decode(&encrypted.ciphertext)
            .map_err(|_| SecretError::Undecryptable)?;
        let plain = XChaCha20Poly1305::new(key.into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: record_id.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        String::from_utf8(plain)
            .map(SecretString)
            .map_err(|_| SecretError::Undecryptable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rotation() -> Result<(), SecretError> {
        let old = MasterKeys::parse(&MasterKeys::generate_entry(1))?;
        let secret = SecretString::new("sk-live-abcdef1234".into());
        let sealed = old.encrypt(&secret, "key-1")?;
        assert_eq!(sealed.key_id, 1);
        assert!(!sealed.ciphertext.contains("abcdef"));
        assert_eq!(old.decrypt(&sealed, "key-1")?, secret);

        let rotated = MasterKeys::parse(&format!(
            "{},{}",
            MasterKeys::generate_entry(2),
            // Keep key 1 so old events still decrypt.
            format_args!("1:{}", old_key_base64(&old))
        ))?;
        assert_eq!(rotated.decrypt(&sealed, "key-1")?, secret);
        assert_eq!(rotated.encrypt(&secret, "key-1")?.key_id, 2);
        Ok(())
    }

    fn old_key_base64(keys: &MasterKeys) -> String {
        keys.keys
            .get(&1)
            .map(|key| BASE64.encode(key))
            .unwrap_or_default()
    }

    #[test]
    fn wrong_record_or_tampering_is_refused() -> Result<(), SecretError> {
        let keys = MasterKeys::parse(&MasterKeys::generate_entry(1))?;
        let sealed = keys.encrypt(&SecretString::new("sk-1".into()), "key-1")?;
        assert_eq!(
            keys.decrypt(&sealed, "key-2"),
            Err(SecretError::Undecryptable)
        );
        let mut tampered = sealed.clone();
        tampered.ciphertext = BASE64.encode(b"not the ciphertext at all!!");
        assert_eq!(
            keys.decrypt(&tampered, "key-1"),
            Err(SecretError::Undecryptable)
        );
        let mut unknown = sealed;
        unknown.key_id = 9;
        assert_eq!(
            keys.decrypt(&unknown, "key-1"),
            Err(SecretError::UnknownKeyId(9))
        );
        Ok(())
    }

    #[test]
    fn bad_master_keys_are_named() {
        assert_eq!(MasterKeys::parse("").err(), Some(SecretError::NoMasterKey));
        assert_eq!(
            MasterKeys::parse("1:short").err(),
            Some(SecretError::BadMasterKeys(1))
        );
        assert!(matches!(
            MasterKeys::parse("x:AAAA"),
            Err(SecretError::BadMasterKeys(1))
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let secret = SecretString::new("sk-very-secret".into());
        assert!(!format!("{secret:?} {secret}").contains("very"));
        assert_eq!(secret.last_four(), "cret");
    }
}
