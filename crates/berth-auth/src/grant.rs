//! Grants: what a user, a group or a token holds, as text
//! (`root`, `squatter`, `admin:app1-*`, `operator:app*-dev:restricted`,
//! `guest:*`, `kv:service/pg/*:write`).

use berth_model::glob::{classes_closed, glob_match};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A role held in namespaces matched by a glob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NsRole {
    /// Reads, actions, config edits, create and delete, secrets, grants.
    Admin,
    /// Reads, actions and config edits.
    Operator,
    /// Reads.
    Guest,
}

impl NsRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NsRole::Admin => "admin",
            NsRole::Operator => "operator",
            NsRole::Guest => "guest",
        }
    }
}

/// One grant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grant {
    /// Everything.
    Root,
    /// May create namespaces, and becomes admin of those it creates.
    Squatter,
    /// A role in the namespaces `glob` matches. `restricted` is Docker
    /// Datacenter's "restricted control": no privileged containers, host
    /// paths, host network or docker socket group.
    Ns {
        role: NsRole,
        glob: String,
        restricted: bool,
    },
    /// Consul KV keys matched by `glob`: read, or read and write.
    Kv { glob: String, write: bool },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantError {
    #[error("{0:?} is not a role: the roles are root, squatter, admin, operator, guest and kv")]
    UnknownRole(String),
    #[error("{0:?}: {1}")]
    Malformed(String, &'static str),
}

impl Grant {
    /// Whether this grant's namespace glob matches `ns`.
    pub fn covers_ns(&self, ns: &str) -> bool {
        match self {
            Grant::Root => true,
            Grant::Ns { glob, .. } => glob_match(glob, ns),
            Grant::Squatter | Grant::Kv { .. } => false,
        }
    }
}

fn check_glob(text: &str, glob: &str, what: &'static str) -> Result<(), GrantError> {
    if glob.is_empty() {
        return Err(GrantError::Malformed(text.into(), what));
    }
    if !classes_closed(glob) {
        return Err(GrantError::Malformed(
            text.into(),
            "a [class] is not closed",
        ));
    }
    if glob.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(GrantError::Malformed(text.into(), "no spaces in a glob"));
    }
    Ok(())
}

impl FromStr for Grant {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(2, ':');
        let role = parts.next().unwrap_or_default();
        let rest = parts.next();
        let ns = |role: NsRole| -> Result<Grant, GrantError> {
            let rest = rest.ok_or(GrantError::Malformed(
                s.into(),
                "a namespace role needs a namespace glob: <role>:<glob>",
            ))?;
            let (glob, restricted) = match rest.strip_suffix(":restricted") {
                Some(g) => (g, true),
                None => (rest, false),
            };
            check_glob(s, glob, "the namespace glob is empty")?;
            if glob.contains(':') || glob.contains('/') {
                return Err(GrantError::Malformed(
                    s.into(),
                    "a namespace glob has no ':' or '/'",
                ));
            }
            Ok(Grant::Ns {
                role,
                glob: glob.into(),
                restricted,
            })
        };
        match role {
            "root" | "squatter" if rest.is_some() => Err(GrantError::Malformed(
                s.into(),
                "root and squatter take no namespace",
            )),
            "root" => Ok(Grant::Root),
            "squatter" => Ok(Grant::Squatter),
            "admin" => ns(NsRole::Admin),
            "operator" => ns(NsRole::Operator),
            "guest" => ns(NsRole::Guest),
            "kv" => {
                let rest = rest.ok_or(GrantError::Malformed(
                    s.into(),
                    "a KV grant reads kv:<key glob>:read or kv:<key glob>:write",
                ))?;
                let (glob, write) = match rest.rsplit_once(':') {
                    Some((g, "read")) => (g, false),
                    Some((g, "write")) => (g, true),
                    _ => {
                        return Err(GrantError::Malformed(
                            s.into(),
                            "a KV grant ends in :read or :write",
                        ))
                    }
                };
                check_glob(s, glob, "the key glob is empty")?;
                Ok(Grant::Kv {
                    glob: glob.into(),
                    write,
                })
            }
            other => Err(GrantError::UnknownRole(other.into())),
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::Root => f.write_str("root"),
            Grant::Squatter => f.write_str("squatter"),
            Grant::Ns {
                role,
                glob,
                restricted,
            } => {
                write!(f, "{}:{glob}", role.as_str())?;
                if *restricted {
                    f.write_str(":restricted")?;
                }
                Ok(())
            }
            Grant::Kv { glob, write } => {
                write!(f, "kv:{glob}:{}", if *write { "write" } else { "read" })
            }
        }
    }
}

impl Serialize for Grant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Grant {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_read_back_as_written() {
        for s in [
            "root",
            "squatter",
            "admin:app1-*",
            "operator:app*-dev",
            "operator:app*-dev:restricted",
            "guest:*",
            "kv:service/pg/*:write",
            "kv:*:read",
        ] {
            let g: Grant = s.parse().unwrap();
            assert_eq!(g.to_string(), s);
        }
    }

    #[test]
    fn bad_grants_are_refused() {
        assert!(matches!(
            "owner:app1".parse::<Grant>(),
            Err(GrantError::UnknownRole(_))
        ));
        for s in [
            "admin",
            "admin:",
            "root:x",
            "guest:a/b",
            "kv:x",
            "kv::write",
            "kv:x:delete",
            "admin:[ab",
            "admin:a b",
        ] {
            assert!(
                matches!(s.parse::<Grant>(), Err(GrantError::Malformed(..))),
                "{s}"
            );
        }
    }
}
