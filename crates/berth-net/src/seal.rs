//! Secrets kept in replicated desired state, sealed with the cluster's key
//! (ChaCha20-Poly1305). Workers replicate desired state too (as Raft
//! learners), so the CA key and the join tokens are stored sealed, and only
//! managers hold the key that opens them.

use crate::error::NetError;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::fmt;

/// The key-encryption key that seals the cluster's secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct SealKey([u8; 32]);

fn random<const N: usize>() -> Result<[u8; N], NetError> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| NetError::Seal("no randomness available".into()))?;
    Ok(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, NetError> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NetError::Seal("not hex".into()));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| NetError::Seal(e.to_string())))
        .collect()
}

impl SealKey {
    pub fn generate() -> Result<SealKey, NetError> {
        Ok(SealKey(random()?))
    }

    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    pub fn from_hex(s: &str) -> Result<SealKey, NetError> {
        let v = unhex(s)?;
        let arr: [u8; 32] = v
            .try_into()
            .map_err(|_| NetError::Seal("a seal key is 32 bytes".into()))?;
        Ok(SealKey(arr))
    }

    /// `hex(nonce || ciphertext)`, with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, NetError> {
        let nonce: [u8; 12] = random()?;
        let ct = ChaCha20Poly1305::new(Key::from_slice(&self.0))
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .map_err(|_| NetError::Seal("encryption failed".into()))?;
        Ok(format!("{}{}", hex(&nonce), hex(&ct)))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, NetError> {
        let raw = unhex(sealed)?;
        if raw.len() < 12 + 16 {
            return Err(NetError::Seal("too short".into()));
        }
        let (nonce, ct) = raw.split_at(12);
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
            .decrypt(Nonce::from_slice(nonce), ct)
            .map_err(|_| NetError::Seal("wrong key, or the value was tampered with".into()))
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key() {
        let k = SealKey::generate().expect("key");
        let sealed = k.seal(b"ca private key").expect("seal");
        assert_eq!(k.open(&sealed).expect("open"), b"ca private key");
        assert_ne!(sealed, k.seal(b"ca private key").expect("seal again"));
        let other = SealKey::generate().expect("key");
        assert!(other.open(&sealed).is_err());
        let mut tampered = sealed.clone();
        let last = if tampered.ends_with('0') { "1" } else { "0" };
        tampered.replace_range(tampered.len() - 1.., last);
        assert!(k.open(&tampered).is_err());
        assert_eq!(SealKey::from_hex(&k.to_hex()).expect("hex"), k);
        assert!(!format!("{k:?}").contains(&k.to_hex()));
    }
}
