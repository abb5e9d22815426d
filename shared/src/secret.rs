//! Provider-key encryption.
//!
//! Provider keys are encrypted with XChaCha20-Poly1305 before they enter an event, under a
//! versioned master key from the environment (`AXONGATE_MASTER_KEYS="1:<base64 32 bytes>,…"`,
//! the highest id encrypts). The key id travels with the ciphertext, so keys can be rotated:
//! add a new id, and old events still decrypt with the old one.
//!
//! The ciphertext is bound to where it may be used, as associated data, so it cannot be moved:
//! format 1 (events without `format`) binds the provider-key id only; format 2, which every new
//! secret gets, binds the provider-key id and the provider id, so a key moved to another
//! provider (whose base URL might be anyone's) no longer decrypts until its secret is entered
//! again or an admin re-seals it.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// A secret as stored in events: master-key id, nonce and ciphertext (base64), and the format
/// of its associated data (absent for format 1, the format of older events).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedSecret {
    pub key_id: u32,
    pub nonce: String,
    pub ciphertext: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<u16>,
}

/// Names of the fields that hold a secret (or what a secret is derived from or sealed in)
/// wherever they appear in a config entity or event: a provider key's `secret` (and the
/// `nonce` and `ciphertext` inside it), a token's `hash`, a user's `password_hash`, and a
/// `password` in a command. The one list both readers of stored state honour: the admin API
/// drops these fields from every entity it returns, and the projector's audit view redacts
/// them at any depth. A new secret-bearing field is added here, or it leaks.
pub const SECRET_FIELD_NAMES: &[&str] = &[
    "secret",
    "password_hash",
    "hash",
    "ciphertext",
    "nonce",
    "password",
];

/// The format every new secret is sealed in.
pub const CURRENT_FORMAT: u16 = 2;

/// Where a provider-key secret may be used: the key record and the provider it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBinding<'a> {
    pub key_id: &'a str,
    pub provider_id: &'a str,
}

impl KeyBinding<'_> {
    /// The associated data of `format`.
    fn associated_data(&self, format: u16) -> Result<Vec<u8>, SecretError> {
        match format {
            1 => Ok(self.key_id.as_bytes().to_vec()),
            2 => {
                let mut aad = b"axongate-provider-key/2\0".to_vec();
                aad.extend_from_slice(self.key_id.as_bytes());
                aad.push(0);
                aad.extend_from_slice(self.provider_id.as_bytes());
                Ok(aad)
            }
            other => Err(SecretError::UnknownFormat(other)),
        }
    }
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
    #[error("secret could not be decrypted (wrong key, wrong record or provider, or tampered)")]
    Undecryptable,
    #[error("secret has format {0}, which this version does not know")]
    UnknownFormat(u16),
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

    /// Encrypts `secret` bound to its key record and provider ([`CURRENT_FORMAT`]).
    ///
    /// # Errors
    /// Only if no key is configured, which `parse` prevents.
    pub fn encrypt(
        &self,
        secret: &SecretString,
        binding: KeyBinding<'_>,
    ) -> Result<EncryptedSecret, SecretError> {
        self.encrypt_format(secret, binding, CURRENT_FORMAT)
    }

    fn encrypt_format(
        &self,
        secret: &SecretString,
        binding: KeyBinding<'_>,
        format: u16,
    ) -> Result<EncryptedSecret, SecretError> {
        let aad = binding.associated_data(format)?;
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
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::Undecryptable)?;
        Ok(EncryptedSecret {
            key_id: *key_id,
            nonce: BASE64.encode(nonce),
            ciphertext: BASE64.encode(ciphertext),
            format: (format != 1).then_some(format),
        })
    }

    /// Decrypts a secret sealed for `binding` (format 1 checks the key id only).
    ///
    /// # Errors
    /// When its master key or format is unknown or the ciphertext does not authenticate for
    /// this key record and provider.
    pub fn decrypt(
        &self,
        encrypted: &EncryptedSecret,
        binding: KeyBinding<'_>,
    ) -> Result<SecretString, SecretError> {
        let aad = binding.associated_data(encrypted.format.unwrap_or(1))?;
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
                    aad: &aad,
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

    const KEY_1: KeyBinding<'static> = KeyBinding {
        key_id: "key-1",
        provider_id: "openai",
    };

    #[test]
    fn new_secrets_are_bound_to_their_provider_and_old_ones_still_open() -> Result<(), SecretError>
    {
        let keys = MasterKeys::parse(&MasterKeys::generate_entry(1))?;
        let secret = SecretString::new("sk-bound".into());
        let sealed = keys.encrypt(&secret, KEY_1)?;
        assert_eq!(sealed.format, Some(CURRENT_FORMAT));
        assert_eq!(keys.decrypt(&sealed, KEY_1)?, secret);
        let moved = KeyBinding {
            key_id: "key-1",
            provider_id: "attacker",
        };
        assert_eq!(
            keys.decrypt(&sealed, moved),
            Err(SecretError::Undecryptable)
        );
        // Format 1 (what older events hold, no `format` field) binds the key id only.
        let old = keys.encrypt_format(&secret, KEY_1, 1)?;
        assert_eq!(old.format, None);
        assert!(
            !serde_json::to_string(&old)
                .unwrap_or_default()
                .contains("format")
        );
        assert_eq!(keys.decrypt(&old, KEY_1)?, secret);
        assert_eq!(keys.decrypt(&old, moved)?, secret);
        let mut future = sealed;
        future.format = Some(9);
        assert_eq!(
            keys.decrypt(&future, KEY_1),
            Err(SecretError::UnknownFormat(9))
        );
        Ok(())
    }

    #[test]
    fn round_trip_and_rotation() -> Result<(), SecretError> {
        let old = MasterKeys::parse(&MasterKeys::generate_entry(1))?;
        let secret = SecretString::new("sk-live-abcdef1234".into());
        let sealed = old.encrypt(&secret, KEY_1)?;
        assert_eq!(sealed.key_id, 1);
        assert!(!sealed.ciphertext.contains("abcdef"));
        assert_eq!(old.decrypt(&sealed, KEY_1)?, secret);

        let rotated = MasterKeys::parse(&format!(
            "{},{}",
            MasterKeys::generate_entry(2),
            // Keep key 1 so old events still decrypt.
            format_args!("1:{}", old_key_base64(&old))
        ))?;
        assert_eq!(rotated.decrypt(&sealed, KEY_1)?, secret);
        assert_eq!(rotated.encrypt(&secret, KEY_1)?.key_id, 2);
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
        let sealed = keys.encrypt(&SecretString::new("sk-1".into()), KEY_1)?;
        let other_record = KeyBinding {
            key_id: "key-2",
            provider_id: "openai",
        };
        assert_eq!(
            keys.decrypt(&sealed, other_record),
            Err(SecretError::Undecryptable)
        );
        let mut tampered = sealed.clone();
        tampered.ciphertext = BASE64.encode(b"not the ciphertext at all!!");
        assert_eq!(
            keys.decrypt(&tampered, KEY_1),
            Err(SecretError::Undecryptable)
        );
        let mut unknown = sealed;
        unknown.key_id = 9;
        assert_eq!(
            keys.decrypt(&unknown, KEY_1),
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
