//! Tokens: claims signed by the cluster with Ed25519.
//!
//! `berth1.<claims>.<signature>`, both parts base64url without padding;
//! the signature covers `berth1.<claims>` as sent, like a JWS. The claims
//! name the cluster, so a token of another cluster fails even before its
//! signature would.

use crate::grant::Grant;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const PREFIX: &str = "berth1.";
/// Longest token read: grants are few, and a header is not a buffer.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Unique: what a revocation names.
    pub id: String,
    pub cluster: String,
    pub user: String,
    /// The grants in force when it was issued (all of the user's, or the
    /// fewer a scoped token asked for).
    pub grants: Vec<Grant>,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not verify (tampered, or signed by another cluster)")]
    BadSignature,
    #[error("the token belongs to another cluster")]
    Foreign,
    #[error("the token expired")]
    Expired,
    #[error("the token was revoked")]
    Revoked,
}

/// The cluster's signing key, derived from a secret only managers hold.
pub struct Signer {
    key: SigningKey,
}

impl Signer {
    /// The key derived from `secret` (the managers' seal key): every
    /// manager derives the same one, and it is stored nowhere.
    pub fn derive(secret: &[u8]) -> Signer {
        let mut h = Sha256::new();
        h.update(b"berth token signing key v1\0");
        h.update(secret);
        let seed: [u8; 32] = h.finalize().into();
        Signer {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// The public key, hex, as desired state publishes it.
    pub fn public_hex(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let body = serde_json::to_vec(claims).unwrap_or_default();
        let signed = format!("{PREFIX}{}", B64.encode(body));
        let sig = self.key.sign(signed.as_bytes());
        format!("{signed}.{}", B64.encode(sig.to_bytes()))
    }
}

/// Checks tokens against the cluster's public key.
#[derive(Clone, Debug)]
pub struct Verifier {
    key: VerifyingKey,
    cluster: String,
}

impl Verifier {
    pub fn new(public_hex: &str, cluster: &str) -> Option<Verifier> {
        let bytes: [u8; 32] = unhex(public_hex)?.try_into().ok()?;
        Some(Verifier {
            key: VerifyingKey::from_bytes(&bytes).ok()?,
            cluster: cluster.into(),
        })
    }

    /// The claims of a valid token at `now` (seconds since the epoch).
    pub fn verify(
        &self,
        token: &str,
        now: u64,
        revoked: impl Fn(&str) -> bool,
    ) -> Result<Claims, TokenError> {
        let claims = self.verify_signature(token)?;
        if claims.cluster != self.cluster {
            return Err(TokenError::Foreign);
        }
        if now >= claims.exp {
            return Err(TokenError::Expired);
        }
        if revoked(&claims.id) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
        let (body, sig) = rest.split_once('.').ok_or(TokenError::Malformed)?;
        let sig: [u8; 64] = B64
            .decode(sig)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or(TokenError::Malformed)?;
        let signed = &token[..PREFIX.len() + body.len()];
        self.key
            .verify(signed.as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| TokenError::BadSignature)?;
        let json = B64.decode(body).map_err(|_| TokenError::Malformed)?;
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
    }
}

/// The claims of `token` without checking anything: what a client shows
/// about the token it holds (its user and expiry).
pub fn peek(token: &str) -> Option<Claims> {
    let rest = token.strip_prefix(PREFIX)?;
    let (body, _) = rest.split_once('.')?;
    serde_json::from_slice(&B64.decode(body).ok()?).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            id: "t1".into(),
            cluster: "c1".into(),
            user: "alice".into(),
            grants: vec!["admin:app1-*".parse().unwrap()],
            iat: 100,
            exp: 200,
        }
    }

    fn pair() -> (Signer, Verifier) {
        let s = Signer::derive(b"seal");
        let v = Verifier::new(&s.public_hex(), "c1").unwrap();
        (s, v)
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let (s, v) = pair();
        let t = s.sign(&claims());
        assert_eq!(v.verify(&t, 150, |_| false), Ok(claims()));
        assert_eq!(v.verify(&t, 200, |_| false), Err(TokenError::Expired));
        assert_eq!(v.verify(&t, 150, |id| id == "t1"), Err(TokenError::Revoked));
        assert_eq!(peek(&t), Some(claims()));
    }

    #[test]
    fn tampered_and_foreign_tokens_fail() {
        let (s, v) = pair();
        let t = s.sign(&claims());
        let mut more = claims();
        more.grants = vec![Grant::Root];
        let forged_body = s.sign(&more);
        let body = forged_body.split('.').nth(1).unwrap();
        let sig = t.rsplit('.').next().unwrap();
        let tampered = format!("berth1.{body}.{sig}");
        assert_eq!(
            v.verify(&tampered, 150, |_| false),
            Err(TokenError::BadSignature)
        );
        let other = Signer::derive(b"another cluster's seal").sign(&claims());
        assert_eq!(
            v.verify(&other, 150, |_| false),
            Err(TokenError::BadSignature)
        );
        let mut elsewhere = claims();
        elsewhere.cluster = "c2".into();
        assert_eq!(
            v.verify(&s.sign(&elsewhere), 150, |_| false),
            Err(TokenError::Foreign)
        );
        for junk in [
            "",
            "berth1.",
            "berth1.x.y",
            "abc",
            &"x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert_eq!(v.verify(junk, 150, |_| false), Err(TokenError::Malformed));
        }
    }

    #[test]
    fn every_manager_derives_the_same_key() {
        assert_eq!(
            Signer::derive(b"k").public_hex(),
            Signer::derive(b"k").public_hex()
        );
        assert_ne!(
            Signer::derive(b"k").public_hex(),
            Signer::derive(b"l").public_hex()
        );
    }
}
