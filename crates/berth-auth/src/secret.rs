//! Secret values at rest: each value sealed with XChaCha20-Poly1305 under
//! the cluster's data key (which the managers' seal key wraps), bound to
//! its object, key name and version as associated data, so a sealed value
//! cannot be moved to another key or replayed as another version.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

/// Largest value of one key.
pub const MAX_VALUE: usize = 500 * 1024;
/// `secret/<ns>/<kind>/<name>/<key>`: one sealed (or, for `cfg`, plain)
/// value.
pub const SECRET_PREFIX: &str = "secret/";
/// The data key, sealed with the managers' seal key.
pub const DATA_KEY: &str = "auth/datakey";

/// Where the values of the object at `path` are kept (a prefix).
pub fn values_prefix(path: &str) -> String {
    format!("{SECRET_PREFIX}{path}/")
}

pub fn value_key(path: &str, key: &str) -> String {
    format!("{SECRET_PREFIX}{path}/{key}")
}

/// The data key as desired state keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedDataKey {
    pub sealed: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a value is at most {MAX_VALUE} bytes (500 KiB); this one has {0}")]
    TooLarge(usize),
    #[error("{0:?} is not a key name: 1-255 of A-Z a-z 0-9 . _ -, not . or ..")]
    BadKeyName(String),
    #[error("the value does not open: wrong key, or tampered with")]
    Tampered,
}

/// The cluster's data key.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    pub fn generate() -> DataKey {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        DataKey(k)
    }

    pub fn from_bytes(b: &[u8]) -> Option<DataKey> {
        Some(DataKey(b.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// `base64(nonce || ciphertext)`, bound to `aad`.
    pub fn seal(&self, aad: &str, plain: &[u8]) -> Result<String, SecretError> {
        if plain.len() > MAX_VALUE {
            return Err(SecretError::TooLarge(plain.len()));
        }
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ct = XChaCha20Poly1305::new((&self.0).into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Tampered)?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(B64.encode(out))
    }

    pub fn open(&self, aad: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let raw = B64.decode(sealed).map_err(|_| SecretError::Tampered)?;
        if raw.len() < 24 + 16 {
            return Err(SecretError::Tampered);
        }
        let (nonce, ct) = raw.split_at(24);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Tampered)
    }
}

/// What a value is bound to.
pub fn aad(path: &str, key: &str, version: u64) -> String {
    format!("berth secret v1\0{path}\0{key}\0{version}")
}

pub fn check_key_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::BadKeyName(name.into()))
    }
}

/// One key's value: sealed for a `sec`, base64 for a `cfg`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredValue {
    pub version: u64,
    pub value: String,
    pub size: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_with_its_key_and_binding() {
        let k = DataKey::generate();
        let s = k.seal(&aad("a/sec/db", "password", 1), b"hunter2").unwrap();
        assert!(!s.contains("hunter2"));
        assert_eq!(
            k.open(&aad("a/sec/db", "password", 1), &s).unwrap(),
            b"hunter2"
        );
        for wrong in [
            aad("a/sec/db", "password", 2),
            aad("a/sec/db", "user", 1),
            aad("b/sec/db", "password", 1),
        ] {
            assert_eq!(k.open(&wrong, &s), Err(SecretError::Tampered));
        }
        assert_eq!(
            DataKey::generate().open(&aad("a/sec/db", "password", 1), &s),
            Err(SecretError::Tampered)
        );
    }

    #[test]
    fn limits_and_names() {
        let k = DataKey::generate();
        assert!(matches!(
            k.seal("x", &vec![0u8; MAX_VALUE + 1]),
            Err(SecretError::TooLarge(_))
        ));
        assert!(k.seal("x", &vec![0u8; MAX_VALUE]).is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", &"x".repeat(256)] {
            assert!(check_key_name(bad).is_err(), "{bad}");
        }
        for ok in ["password", "tls.crt", "a_b-c"] {
            assert!(check_key_name(ok).is_ok(), "{ok}");
        }
    }
}
