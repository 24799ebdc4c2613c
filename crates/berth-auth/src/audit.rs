//! Audit records: who did what to which object, from where, and whether
//! it was allowed. Desired state keeps them under `audit/<time>-<id>`, so
//! a scan of the prefix reads them in time order.

use berth_model::glob::glob_match;
use serde::{Deserialize, Serialize};

pub const AUDIT_PREFIX: &str = "audit/";

/// The key of a record: its time in ms, zero-padded, then its id.
pub fn audit_key(time_ms: u64, id: &str) -> String {
    format!("{AUDIT_PREFIX}{time_ms:015}-{id}")
}

/// The time in a record's key, for compaction without decoding it.
pub fn key_time(key: &str) -> Option<u64> {
    key.strip_prefix(AUDIT_PREFIX)?.get(..15)?.parse().ok()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allowed,
    Refused,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The request's id (one request may make several records).
    pub request: String,
    /// Milliseconds since the epoch, by the leader's clock for changes.
    pub time_ms: u64,
    pub user: String,
    /// The token's id, when the request had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The node that received the request.
    pub node: String,
    /// Where it came from there: `unix uid 0`, `https 10.0.0.7:51234`.
    pub source: String,
    /// The object, key, user or group acted on; empty for none.
    pub object: String,
    pub action: String,
    pub outcome: Outcome,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What `berth audit` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub user: Option<String>,
    /// A glob on the object (`app1-*/*`).
    #[serde(default)]
    pub object: Option<String>,
    /// Records at or after this time, ms since the epoch.
    #[serde(default)]
    pub since_ms: Option<u64>,
    #[serde(default)]
    pub refused_only: bool,
}

impl Filter {
    pub fn matches(&self, r: &AuditRecord) -> bool {
        self.user.as_ref().is_none_or(|u| *u == r.user)
            && self
                .object
                .as_ref()
                .is_none_or(|g| glob_match(g, &r.object))
            && self.since_ms.is_none_or(|t| r.time_ms >= t)
            && (!self.refused_only || r.outcome == Outcome::Refused)
    }
}

impl std::fmt::Display for AuditRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "audit: {} ({}, {} on {}) {} {}: {}",
            self.user,
            self.token
                .as_deref()
                .map_or("no token".into(), |t| format!("token {t}")),
            self.source,
            self.node,
            self.action,
            if self.object.is_empty() {
                "-"
            } else {
                &self.object
            },
            match (&self.outcome, &self.reason) {
                (Outcome::Allowed, _) => "allowed".to_string(),
                (Outcome::Refused, Some(r)) => format!("refused: {r}"),
                (Outcome::Refused, None) => "refused".to_string(),
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: u64) -> AuditRecord {
        AuditRecord {
            request: "r".into(),
            time_ms: t,
            user: "alice".into(),
            token: None,
            node: "n1".into(),
            source: "unix uid 0".into(),
            object: "app1-dev/web".into(),
            action: "set".into(),
            outcome: Outcome::Allowed,
            reason: None,
        }
    }

    #[test]
    fn keys_sort_by_time_and_give_it_back() {
        let (a, b) = (audit_key(999, "x"), audit_key(1000, "a"));
        assert!(a < b);
        assert_eq!(key_time(&b), Some(1000));
        assert_eq!(key_time("audit/x"), None);
    }

    #[test]
    fn filters_combine() {
        let f = Filter {
            user: Some("alice".into()),
            object: Some("app1-*/*".into()),
            since_ms: Some(10),
            refused_only: false,
        };
        assert!(f.matches(&rec(10)));
        assert!(!f.matches(&rec(9)));
        let mut other = rec(10);
        other.object = "app2-dev/web".into();
        assert!(!f.matches(&other));
        assert!(!Filter {
            refused_only: true,
            ..Default::default()
        }
        .matches(&rec(1)));
    }
}
