//! berth's LDAP client, on `ldap3`: what the cluster asks of a directory.
//!
//! - [`Directory::authenticate`]: a login. The service account (or an
//!   anonymous bind) searches the user's entry with the user filter, its
//!   name escaped (RFC 4515); then the connection binds as that entry's DN
//!   with the password given. An empty password is refused before any
//!   bind: LDAP takes a simple bind with a DN and no password as an
//!   unauthenticated bind, which succeeds without proving anything.
//! - [`Directory::snapshot`]: a sync. Every user the user filter finds
//!   (`{user}` as `*`), every group under the group base (entries with the
//!   member attribute), and for each mapping the users it holds, nested
//!   groups resolved ([`resolve`]).
//! - [`Directory::memberships`]: the mappings one user is in, for the
//!   first login of a user no sync has seen yet.
//!
//! Every operation is bounded by the configured timeout; servers are
//! tried in order until one answers. Entries are read from the wire
//! without panicking on what a server sends (`conn.rs`).

mod conn;
pub mod resolve;
pub mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

pub use resolve::{GroupGraph, Members};
pub use text::{escape_filter_value, filter_parses, normalize_dn};

/// How berth reaches the directory and reads users and groups in it.
#[derive(Clone)]
pub struct Config {
    /// `ldap://host[:port]` or `ldaps://host[:port]`, tried in order.
    pub urls: Vec<String>,
    /// The service account that searches; `None`: an anonymous search.
    pub bind_dn: Option<String>,
    pub bind_password: Option<String>,
    /// Where users are searched (subtree), each in turn.
    pub user_bases: Vec<String>,
    /// The user search, `{user}` standing for the name: `(uid={user})`.
    pub user_filter: String,
    /// The attribute that holds a user's berth name: `uid`.
    pub user_attr: String,
    /// Where groups are searched (subtree): nested groups are resolved
    /// among the groups found there.
    pub group_base: String,
    /// The attribute that lists a group's members: `member`.
    pub member_attr: String,
    /// StartTLS on `ldap://` URLs.
    pub starttls: bool,
    /// PEM certificates to trust for `ldaps://` and StartTLS instead of
    /// the system's.
    pub ca_pem: Option<String>,
    /// Bound of each connection and each operation.
    pub timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("urls", &self.urls)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &self.bind_password.as_ref().map(|_| "..."))
            .field("user_bases", &self.user_bases)
            .field("user_filter", &self.user_filter)
            .field("user_attr", &self.user_attr)
            .field("group_base", &self.group_base)
            .field("member_attr", &self.member_attr)
            .field("starttls", &self.starttls)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LdapError {
    #[error("LDAP configuration: {0}")]
    Config(String),
    /// No server could be reached (or none finished its TLS handshake).
    #[error("no LDAP server answered: {0}")]
    Unreachable(String),
    #[error("the LDAP service bind as {dn:?} was refused: {why}")]
    ServiceBind { dn: String, why: String },
    #[error("LDAP search under {base:?} with {filter} failed: {why}")]
    Search {
        base: String,
        filter: String,
        why: String,
    },
    /// A mapped group's DN names no entry: the sync changes nothing
    /// rather than take everyone's access away for a typo.
    #[error("berth group {group}: LDAP group {dn:?} does not exist")]
    NoSuchGroup { group: String, dn: String },
    /// The connection failed in the middle of an operation.
    #[error("LDAP: {0}")]
    Protocol(String),
}

/// One berth group's LDAP side: LDAP group DNs (their members, nested
/// groups resolved) and entries a filter selects (groups or users).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    pub name: String,
    pub groups: Vec<String>,
    pub filter: Option<String>,
}

/// What a login's bind says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// The password holds for this entry.
    Bound { dn: String, name: String },
    /// Why not, for the audit trail (never for the client).
    Refused(String),
}

/// A user the user search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub dn: String,
    /// Its `user_attr`, lowercase.
    pub name: String,
}

/// The directory as a sync sees it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every user the user search found, by name.
    pub users: BTreeMap<String, User>,
    /// Each mapping's users, by name.
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// What was left out, and why: names found twice, entries without
    /// the name attribute.
    pub skipped: Vec<String>,
}

impl Snapshot {
    /// The mappings `name` is in.
    pub fn groups_of(&self, name: &str) -> Vec<String> {
        self.members
            .iter()
            .filter(|(_, m)| m.contains(name))
            .map(|(g, _)| g.clone())
            .collect()
    }
}

/// A configured directory. Cheap to share; each call opens its own
/// connection.
pub struct Directory {
    cfg: Config,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.cfg.fmt(f)
    }
}

impl Directory {
    /// Checks `cfg` (URLs, filters, bases) and prepares its TLS.
    pub fn new(cfg: Config) -> Result<Directory, LdapError> {
        let bad = |m: String| Err(LdapError::Config(m));
        if cfg.urls.is_empty() {
            return bad("no server URL (--ldap-url)".into());
        }
        for u in &cfg.urls {
            let scheme = u.split("://").next().unwrap_or_default();
            if !u.contains("://") || !["ldap", "ldaps"].contains(&scheme) {
                return bad(format!(
                    "{u:?}: a server URL is ldap://HOST[:PORT] or ldaps://HOST[:PORT]"
                ));
            }
        }
        if cfg.bind_dn.is_some() && cfg.bind_password.as_deref().unwrap_or("").is_empty() {
            return bad("a bind DN needs its password (--ldap-bind-password-file)".into());
        }
        if cfg.user_bases.is_empty() || cfg.user_bases.iter().any(|b| b.trim().is_empty()) {
            return bad("no user search base (--ldap-user-base)".into());
        }
        if !cfg.user_filter.contains(text::USER) {
            return bad(format!(
                "the user filter {:?} has no {} for the name",
                cfg.user_filter,
                text::USER
            ));
        }
        for f in [
            text::user_filter(&cfg.user_filter, "name"),
            text::all_users_filter(&cfg.user_filter),
        ] {
            if !filter_parses(&f) {
                return bad(format!(
                    "the user filter {:?} does not parse",
                    cfg.user_filter
                ));
            }
        }
        for (what, attr) in [("user", &cfg.user_attr), ("member", &cfg.member_attr)] {
            if attr.is_empty() || !attr.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return bad(format!("{attr:?} is not an attribute name ({what})"));
            }
        }
        let tls = match &cfg.ca_pem {
            None => None,
            Some(pem) => Some(conn::tls_config(pem)?),
        };
        Ok(Directory { cfg, tls })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Checks `name`'s `password` by a bind as its entry.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<Auth, LdapError> {
        if password.is_empty() {
            return Ok(Auth::Refused(
                "an empty password (an unauthenticated bind) proves nothing".into(),
            ));
        }
        let mut c = self.connect().await?;
        let filter = text::user_filter(&self.cfg.user_filter, name);
        let found = self.search_users(&mut c, &filter).await?;
        let entry = match found.as_slice() {
            [] => return Ok(Auth::Refused("the user search finds no such user".into())),
            [one] => one,
            many => {
                return Ok(Auth::Refused(format!(
                    "the user search finds {} entries for this name",
                    many.len()
                )))
            }
        };
        let Some(found_name) = entry.first(&self.cfg.user_attr) else {
            return Ok(Auth::Refused(format!(
                "{} has no {} attribute",
                entry.dn, self.cfg.user_attr
            )));
        };
        let found_name = found_name.to_lowercase();
        if found_name != name.to_lowercase() {
            return Ok(Auth::Refused(format!(
                "the user search finds {}, whose {} is {found_name:?}",
                entry.dn, self.cfg.user_attr
            )));
        }
        let dn = entry.dn.clone();
        Ok(match c.bind(&dn, password).await? {
            Ok(()) => Auth::Bound {
                dn,
                name: found_name,
            },
            Err(why) => Auth::Refused(why),
        })
    }

    /// Every user, every group and each mapping's members.
    pub async fn snapshot(&self, mappings: &[Mapping]) -> Result<Snapshot, LdapError> {
        let mut c = self.connect().await?;
        let mut snap = Snapshot::default();
        let all = text::all_users_filter(&self.cfg.user_filter);
        let found = self.search_users(&mut c, &all).await?;
        let mut twice = BTreeSet::new();
        for e in found {
            let Some(name) = e.first(&self.cfg.user_attr).map(str::to_lowercase) else {
                snap.skipped
                    .push(format!("{}: no {} attribute", e.dn, self.cfg.user_attr));
                continue;
            };
            if snap.users.contains_key(&name) {
                twice.insert(name);
                continue;
            }
            snap.users.insert(name.clone(), User { dn: e.dn, name });
        }
        for name in twice {
            snap.users.remove(&name);
            snap.skipped
                .push(format!("{name}: the user search finds several entries"));
        }
        let by_dn: BTreeMap<String, &str> = snap
            .users
            .values()
            .map(|u| (normalize_dn(&u.dn), u.name.as_str()))
            .collect();
        let resolved = self.resolve(&mut c, mappings).await?;
        for (group, m) in resolved {
            let mut names: BTreeSet<String> = m
                .dns
                .iter()
                .filter_map(|d| by_dn.get(d))
                .map(|n| n.to_string())
                .collect();
            names.extend(m.names.into_iter().filter(|n| snap.users.contains_key(n)));
            snap.members.insert(group, names);
        }
        Ok(snap)
    }

    /// The mappings the user `dn`, named `name`, is in.
    pub async fn memberships(
        &self,
        dn: &str,
        name: &str,
        mappings: &[Mapping],
    ) -> Result<Vec<String>, LdapError> {
        let mut c = self.connect().await?;
        Ok(self
            .resolve(&mut c, mappings)
            .await?
            .into_iter()
            .filter(|(_, m)| m.holds(dn, name))
            .map(|(g, _)| g)
            .collect())
    }

    /// The entries `filter` finds under every user base.
    async fn search_users(
        &self,
        c: &mut conn::Conn,
        filter: &str,
    ) -> Result<Vec<conn::Entry>, LdapError> {
        let mut out = Vec::new();
        for base in &self.cfg.user_bases {
            out.extend(c.search(base, filter, &[&self.cfg.user_attr]).await?);
        }
        Ok(out)
    }

    /// Each mapping's members: the groups under the group base in one
    /// search, the mapped DNs outside it read one by one, each filter's
    /// entries, then the nesting resolved in memory.
    async fn resolve(
        &self,
        c: &mut conn::Conn,
        mappings: &[Mapping],
    ) -> Result<BTreeMap<String, Members>, LdapError> {
        let mut out = BTreeMap::new();
        if mappings.is_empty() {
            return Ok(out);
        }
        let member = self.cfg.member_attr.as_str();
        let mut graph = GroupGraph::default();
        let groups_filter = format!("({member}=*)");
        for e in c
            .search(&self.cfg.group_base, &groups_filter, &[member])
            .await?
        {
            let values = e.values(member).to_vec();
            graph.insert(&e.dn, values);
        }
        for m in mappings {
            let mut roots: Vec<String> = Vec::new();
            for dn in &m.groups {
                if !graph.contains(dn) {
                    match c.read(dn, &[member]).await? {
                        Some(e) => graph.insert(dn, e.values(member).to_vec()),
                        None => {
                            return Err(LdapError::NoSuchGroup {
                                group: m.name.clone(),
                                dn: dn.clone(),
                            })
                        }
                    }
                }
                roots.push(dn.clone());
            }
            if let Some(f) = &m.filter {
                for e in c.search(&self.cfg.group_base, f, &[member]).await? {
                    let values = e.values(member);
                    if !values.is_empty() && !graph.contains(&e.dn) {
                        graph.insert(&e.dn, values.to_vec());
                    }
                    roots.push(e.dn);
                }
            }
            out.insert(
                m.name.clone(),
                graph.members(roots.iter().map(String::as_str)),
            );
        }
        Ok(out)
    }
}
