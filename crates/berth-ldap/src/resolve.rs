//! Group membership, nested groups included, decided in memory on what
//! the searches returned: no I/O here.
//!
//! A group is an entry that has the member attribute. A member value is
//! a DN (`member`, `uniqueMember`), or a bare user name (a posixGroup's
//! `memberUid`). A member DN that names a known group contributes that
//! group's members, recursively; every group is visited once, so a cycle
//! (a group nested in itself, directly or not) ends.

use crate::text::{looks_like_dn, normalize_dn};
use std::collections::{BTreeSet, HashMap};

/// The groups the searches found: normalized DN → member values.
#[derive(Clone, Debug, Default)]
pub struct GroupGraph {
    groups: HashMap<String, Vec<String>>,
}

/// What a set of groups holds once nested groups are resolved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// Member DNs that are no group, normalized.
    pub dns: BTreeSet<String>,
    /// Bare names (`memberUid`), lowercase.
    pub names: BTreeSet<String>,
}

impl Members {
    /// Whether the user of DN `dn` and name `name` is in.
    pub fn holds(&self, dn: &str, name: &str) -> bool {
        self.dns.contains(&normalize_dn(dn)) || self.names.contains(&name.to_lowercase())
    }
}

impl GroupGraph {
    pub fn insert(&mut self, dn: &str, members: Vec<String>) {
        self.groups.insert(normalize_dn(dn), members);
    }

    pub fn contains(&self, dn: &str) -> bool {
        self.groups.contains_key(&normalize_dn(dn))
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The members reachable from `roots`: the members of each root that
    /// is a group, and each root that is not (a filter may select users
    /// directly).
    pub fn members<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> Members {
        let mut out = Members::default();
        let mut visited = BTreeSet::new();
        let mut todo: Vec<String> = roots.into_iter().map(normalize_dn).collect();
        while let Some(dn) = todo.pop() {
            let Some(values) = self.groups.get(&dn) else {
                out.dns.insert(dn);
                continue;
            };
            if !visited.insert(dn) {
                continue;
            }
            for v in values {
                if !looks_like_dn(v) {
                    out.names.insert(v.trim().to_lowercase());
                    continue;
                }
                let n = normalize_dn(v);
                if self.groups.contains_key(&n) {
                    if !visited.contains(&n) {
                        todo.push(n);
                    }
                } else {
                    out.dns.insert(n);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> GroupGraph {
        let mut g = GroupGraph::default();
        g.insert(
            "cn=devs,ou=groups,dc=t",
            vec![
                "uid=alice,ou=people,dc=t".into(),
                "CN=Backend, ou=groups,dc=t".into(),
            ],
        );
        // Nested, and nesting its parent back: a cycle.
        g.insert(
            "cn=backend,ou=groups,dc=t",
            vec![
                "uid=bob,ou=people,dc=t".into(),
                "cn=devs,ou=groups,dc=t".into(),
                "cn=backend,ou=groups,dc=t".into(),
            ],
        );
        g.insert("cn=posix,ou=groups,dc=t", vec!["Carol".into()]);
        g
    }

    #[test]
    fn nested_groups_contribute_their_members_and_cycles_end() {
        let m = graph().members(["cn=devs,ou=groups,dc=t"]);
        let dns: Vec<&str> = m.dns.iter().map(String::as_str).collect();
        assert_eq!(dns, ["uid=alice,ou=people,dc=t", "uid=bob,ou=people,dc=t"]);
        assert!(m.holds("UID=Bob, ou=people,dc=t", "bob"));
        // From the inner group, the outer one is reached through the cycle.
        assert_eq!(graph().members(["cn=backend,ou=groups,dc=t"]), m);
    }

    #[test]
    fn bare_names_and_users_selected_directly() {
        let m = graph().members(["cn=posix,ou=groups,dc=t", "uid=dave,ou=people,dc=t"]);
        assert!(m.holds("uid=x", "carol"));
        assert!(m.holds("uid=dave,ou=people,dc=t", "dave"));
        assert!(!m.holds("uid=alice,ou=people,dc=t", "alice"));
        assert_eq!(graph().members([]), Members::default());
    }
}
