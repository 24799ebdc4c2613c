//! The decisions: may a holder of these grants do this, here? Roles follow
//! OpenSVC om3: `root` does everything; `squatter` may create namespaces;
//! per namespace glob, `admin` also manages secrets and grants, `operator`
//! acts and edits but neither decodes secrets nor grants, `guest` reads.

use crate::grant::{Grant, NsRole};
use berth_model::glob::glob_match;
use serde::{Deserialize, Serialize};

/// What is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Create,
    Set,
    Start,
    Stop,
    Delete,
    /// Read a secret's value.
    DecodeSecret,
    /// Add, change or remove a secret's keys.
    ManageSecret,
    /// Grant or revoke roles in a namespace.
    Grant,
    /// Node records: labels, drain, freeze, roles.
    NodeAdmin,
    /// The cluster: CA, join tokens, membership, users.
    ClusterAdmin,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Read,
        Action::Create,
        Action::Set,
        Action::Start,
        Action::Stop,
        Action::Delete,
        Action::DecodeSecret,
        Action::ManageSecret,
        Action::Grant,
        Action::NodeAdmin,
        Action::ClusterAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Set => "set",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Delete => "delete",
            Action::DecodeSecret => "decode",
            Action::ManageSecret => "manage_secret",
            Action::Grant => "grant",
            Action::NodeAdmin => "node_admin",
            Action::ClusterAdmin => "cluster_admin",
        }
    }
}

impl std::str::FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("{s:?} is not an action"))
    }
}

/// The least a namespace role must be for `action`; `None`: no namespace
/// role suffices (root only).
fn least_role(action: Action) -> Option<NsRole> {
    match action {
        Action::Read => Some(NsRole::Guest),
        Action::Set | Action::Start | Action::Stop => Some(NsRole::Operator),
        Action::Create
        | Action::Delete
        | Action::DecodeSecret
        | Action::ManageSecret
        | Action::Grant => Some(NsRole::Admin),
        Action::NodeAdmin | Action::ClusterAdmin => None,
    }
}

/// `a` is at least `b` (admin > operator > guest).
fn at_least(a: NsRole, b: NsRole) -> bool {
    let rank = |r: NsRole| match r {
        NsRole::Admin => 2,
        NsRole::Operator => 1,
        NsRole::Guest => 0,
    };
    rank(a) >= rank(b)
}

/// A set of grants, the ones a request is made with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rights {
    grants: Vec<Grant>,
}

impl Rights {
    pub fn new(grants: impl IntoIterator<Item = Grant>) -> Rights {
        let mut grants: Vec<Grant> = grants.into_iter().collect();
        grants.sort();
        grants.dedup();
        Rights { grants }
    }

    pub fn root() -> Rights {
        Rights::new([Grant::Root])
    }

    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    pub fn is_root(&self) -> bool {
        self.grants.contains(&Grant::Root)
    }

    /// Whether `action` is allowed in namespace `ns`. `ns_exists` says
    /// whether any object lives there yet: a squatter may create the
    /// first one.
    pub fn allows(&self, action: Action, ns: &str, ns_exists: bool) -> bool {
        if self.is_root() {
            return true;
        }
        if action == Action::Create && !ns_exists && self.grants.contains(&Grant::Squatter) {
            return true;
        }
        let Some(least) = least_role(action) else {
            return false;
        };
        self.grants.iter().any(|g| match g {
            Grant::Ns { role, glob, .. } => at_least(*role, least) && glob_match(glob, ns),
            _ => false,
        })
    }

    /// Whether anything in `ns` may be seen: listings keep only these.
    pub fn sees(&self, ns: &str) -> bool {
        self.allows(Action::Read, ns, true)
    }

    /// Whether a catalog entry is visible: the instance of an object
    /// (`berth_path`, from its `berth-path` meta) in a namespace it sees;
    /// an entry bound to no object (the Consul agent API's, a foreign
    /// container's) only to root.
    pub fn sees_entry(&self, berth_path: Option<&str>) -> bool {
        match berth_path.and_then(|p| p.parse::<berth_model::ObjectPath>().ok()) {
            Some(p) => self.sees(&p.namespace),
            None => self.is_root(),
        }
    }

    /// Whether edits in `ns` are under restricted control: no grant that
    /// allows editing there comes without the restriction.
    pub fn restricted_in(&self, ns: &str) -> bool {
        if self.is_root() {
            return false;
        }
        !self.grants.iter().any(|g| match g {
            Grant::Ns {
                role,
                glob,
                restricted: false,
            } => at_least(*role, NsRole::Operator) && glob_match(glob, ns),
            _ => false,
        })
    }

    /// Whether these rights may hand out `grant`. Root may grant anything;
    /// an admin may grant namespace roles within its own namespaces: the
    /// glob granted is one of its admin globs, or a namespace one of them
    /// matches, and the grant is restricted if its own is.
    pub fn may_grant(&self, grant: &Grant) -> bool {
        if self.is_root() {
            return true;
        }
        let Grant::Ns {
            glob: wanted,
            restricted: wanted_restricted,
            ..
        } = grant
        else {
            return false;
        };
        let literal = !wanted.contains(['*', '?', '[']);
        self.grants.iter().any(|g| match g {
            Grant::Ns {
                role: NsRole::Admin,
                glob,
                restricted,
            } => {
                (glob == wanted || (literal && glob_match(glob, wanted)))
                    && (!restricted || *wanted_restricted)
            }
            _ => false,
        })
    }

    /// Whether a Consul KV key may be read (`write` false) or written.
    pub fn allows_kv(&self, key: &str, write: bool) -> bool {
        self.is_root()
            || self.grants.iter().any(|g| match g {
                Grant::Kv { glob, write: w } => (*w || !write) && glob_match(glob, key),
                _ => false,
            })
    }

    /// What both sets allow: a token's grants are never more than its
    /// user's.
    pub fn within(&self, user: &Rights) -> bool {
        user.is_root()
            || self.grants.iter().all(|g| match g {
                Grant::Root => false,
                Grant::Squatter => user.grants.contains(&Grant::Squatter),
                Grant::Ns { .. } => user.grants.contains(g) || user.may_grant_as_owner(g),
                Grant::Kv { glob, write } => user.grants.iter().any(|u| {
                    matches!(u, Grant::Kv { glob: ug, write: uw } if (*uw || !write) && (ug == glob || glob_match(ug, glob)))
                }),
            })
    }

    /// A namespace grant no wider than one the user holds: the same role
    /// or less, on the same glob or a namespace that glob matches.
    fn may_grant_as_owner(&self, g: &Grant) -> bool {
        let Grant::Ns {
            role,
            glob,
            restricted,
        } = g
        else {
            return false;
        };
        let literal = !glob.contains(['*', '?', '[']);
        self.grants.iter().any(|u| match u {
            Grant::Ns {
                role: ur,
                glob: ug,
                restricted: urs,
            } => {
                at_least(*ur, *role)
                    && (ug == glob || (literal && glob_match(ug, glob)))
                    && (!urs || *restricted)
            }
            _ => false,
        })
    }
}

/// Keywords restricted control forbids, found in a config's text: each
/// problem as a sentence. A value that is a reference (`{...}`) to one of
/// them is refused too, since it could expand to anything.
pub fn restricted_violations(config: &str) -> Result<Vec<String>, String> {
    let doc = berth_model::config::ConfigDoc::parse(config).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for section in doc.sections() {
        for entry in doc.keys(&section) {
            let base = entry.key.split('@').next().unwrap_or_default();
            let value = entry.value.trim();
            let problem = match base {
                "privileged" if value.contains('{') || value_true(value) => {
                    Some("privileged containers")
                }
                "netns" if value.contains('{') || value == "host" => Some("the host's network"),
                "volume_mounts"
                    if value.contains('{')
                        || value
                            .split_whitespace()
                            .any(|m| m.trim_start_matches(['\'', '"']).starts_with('/')) =>
                {
                    Some("host paths in volume_mounts")
                }
                "docker_socket_group" => Some("the docker socket's group"),
                _ => None,
            };
            if let Some(p) = problem {
                found.push(format!(
                    "[{section}] {}: restricted control allows no {p}",
                    entry.key
                ));
            }
        }
    }
    Ok(found)
}

fn value_true(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "true" | "yes" | "y" | "1" | "on" | "t"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights(gs: &[&str]) -> Rights {
        Rights::new(gs.iter().map(|g| g.parse().unwrap()))
    }

    #[test]
    fn an_admin_grants_only_inside_its_namespaces() {
        let r = rights(&["admin:app1-*"]);
        assert!(r.may_grant(&"operator:app1-*".parse().unwrap()));
        assert!(r.may_grant(&"guest:app1-dev".parse().unwrap()));
        assert!(!r.may_grant(&"guest:app*".parse().unwrap()));
        assert!(!r.may_grant(&"guest:app2-dev".parse().unwrap()));
        assert!(!r.may_grant(&"root".parse().unwrap()));
        assert!(!r.may_grant(&"kv:*:read".parse().unwrap()));
        let restricted = rights(&["admin:app1-*:restricted"]);
        assert!(!restricted.may_grant(&"operator:app1-dev".parse().unwrap()));
        assert!(restricted.may_grant(&"operator:app1-dev:restricted".parse().unwrap()));
    }

    #[test]
    fn a_token_is_never_more_than_its_user() {
        let user = rights(&["admin:app1-*", "kv:service/*:write"]);
        assert!(rights(&["operator:app1-dev"]).within(&user));
        assert!(rights(&["kv:service/pg/*:read"]).within(&user));
        assert!(!rights(&["admin:app2-*"]).within(&user));
        assert!(!rights(&["root"]).within(&user));
        assert!(!rights(&["kv:*:read"]).within(&user));
        assert!(rights(&["root"]).within(&Rights::root()));
    }

    #[test]
    fn kv_grants_read_and_write_by_key_glob() {
        let r = rights(&["kv:service/pg/*:write", "kv:config/*:read"]);
        assert!(r.allows_kv("service/pg/leader", true));
        assert!(r.allows_kv("config/a", false));
        assert!(!r.allows_kv("config/a", true));
        assert!(!r.allows_kv("other", false));
    }

    #[test]
    fn restricted_control_finds_the_forbidden_keywords() {
        let cfg = "[container#0]\nimage = x\nprivileged = true\nnetns = host\nvolume_mounts = data:/d /etc:/x\n\n[container#1]\nprivileged@n1 = {env.p}\n";
        let v = restricted_violations(cfg).unwrap();
        assert_eq!(v.len(), 4, "{v:?}");
        let ok = "[container#0]\nimage = x\nprivileged = false\nvolume_mounts = data:/d\n";
        assert!(restricted_violations(ok).unwrap().is_empty());
    }
}
