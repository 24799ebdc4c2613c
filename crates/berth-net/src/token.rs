//! Join tokens: `BERTH-1-<ca sha256>-<role>-<secret>`, like swarm's
//! SWMTKN. The CA fingerprint lets a joining node pin the CA; the secret
//! admits it with a role. Rotating a token changes its secret only.

use crate::error::NetError;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Worker,
    Manager,
}

#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub ca_fingerprint: String,
    pub role: Role,
    secret: String,
}

const PREFIX: &str = "BERTH-1";

impl JoinToken {
    /// A new token with a fresh 32-byte random secret.
    pub fn generate(ca_fingerprint: &str, role: Role) -> Result<JoinToken, NetError> {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| NetError::Token("no randomness available".into()))?;
        Ok(JoinToken {
            ca_fingerprint: ca_fingerprint.to_string(),
            role,
            secret: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        })
    }

    /// Whether `presented` is this token, compared in constant time.
    pub fn admits(&self, presented: &JoinToken) -> bool {
        self.role == presented.role
            && self.ca_fingerprint == presented.ca_fingerprint
            && constant_time_eq(self.secret.as_bytes(), presented.secret.as_bytes())
    }

    /// Checks a CA certificate sent by a manager against the pinned fingerprint.
    pub fn pins(&self, ca_pem: &str) -> Result<(), NetError> {
        let got = crate::ca::fingerprint_pem(ca_pem)?;
        if got == self.ca_fingerprint {
            Ok(())
        } else {
            Err(NetError::Token(format!(
                "the cluster CA does not match the token (token pins {}, got {got})",
                self.ca_fingerprint
            )))
        }
    }
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Never prints the secret, so tokens can be logged safely.
impl fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_fingerprint", &self.ca_fingerprint)
            .field("role", &self.role)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let role = match self.role {
            Role::Worker => "w",
            Role::Manager => "m",
        };
        write!(f, "{PREFIX}-{}-{role}-{}", self.ca_fingerprint, self.secret)
    }
}

impl FromStr for JoinToken {
    type Err = NetError;

    fn from_str(s: &str) -> Result<JoinToken, NetError> {
        let bad = |why: &str| NetError::Token(format!("malformed token: {why}"));
        let rest = s
            .trim()
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix('-'))
            .ok_or_else(|| bad("it does not start with BERTH-1-"))?;
        let parts: Vec<&str> = rest.split('-').collect();
        let [fp, role, secret] = parts.as_slice() else {
            return Err(bad("expected BERTH-1-<ca sha256>-<w|m>-<secret>"));
        };
        let hex = |t: &str, len: usize| t.len() == len && t.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(fp, 64) {
            return Err(bad("the CA fingerprint is not 64 hex digits"));
        }
        if !hex(secret, 64) {
            return Err(bad("the secret is not 64 hex digits"));
        }
        let role = match *role {
            "w" => Role::Worker,
            "m" => Role::Manager,
            _ => return Err(bad("the role is neither w nor m")),
        };
        Ok(JoinToken {
            ca_fingerprint: fp.to_ascii_lowercase(),
            role,
            secret: secret.to_ascii_lowercase(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_rotation_changes_the_secret() {
        let fp = "ab".repeat(32);
        let t = JoinToken::generate(&fp, Role::Manager).expect("token");
        let parsed: JoinToken = t.to_string().parse().expect("parse");
        assert!(t.admits(&parsed));
        let rotated = JoinToken::generate(&fp, Role::Manager).expect("token");
        assert!(
            !rotated.admits(&parsed),
            "an old token must not be admitted"
        );
        let worker = JoinToken::generate(&fp, Role::Worker).expect("token");
        assert!(!t.admits(&worker));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let fp = "ab".repeat(32);
        let good = JoinToken::generate(&fp, Role::Worker)
            .expect("token")
            .to_string();
        for bad in [
            "",
            "SWMTKN-1-x",
            &good.replace("-w-", "-x-"),
            &good[..good.len() - 2],
            &good.replacen(&fp, &"zz".repeat(32), 1),
        ] {
            assert!(bad.parse::<JoinToken>().is_err(), "{bad:?} parsed");
        }
    }
}
