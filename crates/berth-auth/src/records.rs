//! Users, groups and revoked tokens as desired state keeps them, under
//! `auth/`. A user's password is an argon2id hash; its rights are its own
//! grants and its groups'.

use crate::grant::Grant;
use crate::rbac::Rights;
use serde::{Deserialize, Serialize};

pub const USER_PREFIX: &str = "auth/usr/";
pub const GROUP_PREFIX: &str = "auth/grp/";
pub const REVOKED_PREFIX: &str = "auth/revoked/";
/// The token verification key: `{ "public": hex }`.
pub const SIGNER_KEY: &str = "auth/signer";

pub fn user_key(name: &str) -> String {
    format!("{USER_PREFIX}{name}")
}

pub fn group_key(name: &str) -> String {
    format!("{GROUP_PREFIX}{name}")
}

pub fn revoked_key(id: &str) -> String {
    format!("{REVOKED_PREFIX}{id}")
}

/// Where a user or group comes from: LDAP's are replaced at each sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Local,
    Ldap,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// The argon2id PHC string; `None` for LDAP users and token-only
    /// robots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub source: Source,
    /// Tokens issued before this second are void: a password change, a
    /// removal from LDAP.
    #[serde(default)]
    pub tokens_after: u64,
    pub created: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub name: String,
    #[serde(default)]
    pub grants: Vec<Grant>,
    #[serde(default)]
    pub source: Source,
    /// Its members in LDAP: the LDAP sync makes each LDAP user this
    /// mapping holds a member, and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapGroupMap>,
}

/// A berth group's LDAP side: LDAP groups by DN (their members through
/// `--ldap-group-member-attr`, nested groups resolved) and the entries a
/// search filter selects under `--ldap-group-base` (groups, whose
/// members count, or users).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapGroupMap {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// A token revoked before its expiry; dropped once it would have expired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub id: String,
    pub user: String,
    pub exp: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignerRecord {
    pub public: String,
}

/// Names of users and groups: what a unix account would accept, lowercase.
/// `root` is the node's own superuser and is nobody's name here.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !ok {
        return Err(format!(
            "{name:?} is not a valid name: 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        ));
    }
    if name == "root" {
        return Err("\"root\" is the node's superuser, not a berth user".into());
    }
    Ok(())
}

impl UserRecord {
    /// The user's rights: its grants and its groups'.
    pub fn rights(&self, group: impl Fn(&str) -> Option<GroupRecord>) -> Rights {
        let from_groups = self
            .groups
            .iter()
            .filter_map(|g| group(g))
            .flat_map(|g| g.grants);
        Rights::new(self.grants.iter().cloned().chain(from_groups))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["alice", "ci-bot", "a.b_c", "7up"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "root",
            "Alice",
            "-x",
            "a/b",
            "..",
            "a b",
            &"x".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rights_include_the_groups_grants() {
        let u = UserRecord {
            name: "alice".into(),
            password: None,
            groups: vec!["devs".into(), "gone".into()],
            grants: vec!["guest:*".parse().unwrap()],
            source: Source::Local,
            tokens_after: 0,
            created: 0,
        };
        let r = u.rights(|g| {
            (g == "devs").then(|| GroupRecord {
                name: "devs".into(),
                grants: vec!["operator:app*-dev".parse().unwrap()],
                source: Source::Local,
                ldap: None,
            })
        });
        assert_eq!(r.grants().len(), 2);
        assert!(r.allows(crate::Action::Start, "app1-dev", true));
        assert!(!r.allows(crate::Action::Start, "app1-prd", true));
    }
}
