//! LDAP users: logins that bind as the user, and the sync that makes
//! the berth users of LDAP follow the directory.
//!
//! A berth group maps LDAP groups (by DN) or a search filter
//! (`GroupRecord::ldap`). An LDAP user of berth is a user the user search
//! finds that is a member of at least one mapped group, nested groups
//! resolved: the sync creates its user record (`source: ldap`, no
//! password), sets its berth groups to the mapped groups it is in, and
//! deletes the record of every LDAP user that is no longer one (deleted
//! from the directory, no longer matching the user filter, or out of
//! every mapped group). A deleted user's tokens get 401 ("the token's user
//! no longer exists"), and a record made again later starts with
//! `tokens_after` at its creation, so tokens from before stay void. Its
//! berth groups are the mapped groups it is in, and no other; its own
//! grants (`berth user grant`) are kept while it stays.
//!
//! Every change is a `Command::Auth` with its audit records, made by
//! root on the node that syncs. The sync runs every `--ldap-sync` on the
//! leader, and at once by `berth ldap sync` (`POST /v1/ldap/sync`) on
//! the node asked. A failed search changes nothing.

use crate::command::{AuthOp, Command, UserRef};
use crate::rbac::now_secs;
use crate::{Cluster, ClusterError};
use berth_auth::records::check_name;
use berth_auth::{Source, UserRecord};
use berth_ldap::{Auth, Directory, Mapping, Snapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commands per Raft entry when a sync changes many users.
const BATCH: usize = 100;
/// How often the leader's loop looks whether a sync is due.
const TICK: Duration = Duration::from_secs(5);

pub(crate) struct LdapState {
    dir: Directory,
    /// One sync at a time on this node.
    running: tokio::sync::Mutex<()>,
}

pub use berth_model::ldap::{LdapSyncReport, LdapUserChange};

fn new_user(name: &str, groups: Vec<String>, now: u64) -> UserRecord {
    UserRecord {
        name: name.into(),
        password: None,
        groups,
        grants: Vec::new(),
        source: Source::Ldap,
        // Tokens from an earlier life of this name stay void.
        tokens_after: now,
        created: now,
    }
}

/// The changes that make the users of `existing` follow `snap`. An LDAP
/// user's berth groups are the mapped groups it is in, no other.
fn plan(snap: &Snapshot, existing: &[UserRecord], now: u64) -> (Vec<AuthOp>, LdapSyncReport) {
    let mut ops = Vec::new();
    let mut report = LdapSyncReport {
        skipped: snap.skipped.clone(),
        groups: snap
            .members
            .iter()
            .map(|(g, m)| (g.clone(), m.iter().cloned().collect()))
            .collect(),
        ..Default::default()
    };
    let by_name: BTreeMap<&str, &UserRecord> =
        existing.iter().map(|u| (u.name.as_str(), u)).collect();
    let mut members: BTreeSet<&str> = BTreeSet::new();
    for name in snap.members.values().flatten() {
        if !snap.users.contains_key(name) || !members.insert(name) {
            continue;
        }
        if let Err(why) = check_name(name) {
            report.skipped.push(why);
            continue;
        }
        let in_ldap = snap.groups_of(name);
        match by_name.get(name.as_str()) {
            None => {
                report.created.push(LdapUserChange {
                    name: name.clone(),
                    groups: in_ldap.clone(),
                });
                ops.push(AuthOp::PutUser(new_user(name, in_ldap, now)));
            }
            Some(u) if u.source != Source::Ldap => {
                report
                    .skipped
                    .push(format!("{name}: a local berth user has this name"));
            }
            Some(u) => {
                let groups = in_ldap;
                if groups == u.groups {
                    report.unchanged += 1;
                    continue;
                }
                report.updated.push(LdapUserChange {
                    name: name.clone(),
                    groups: groups.clone(),
                });
                ops.push(AuthOp::PutUser(UserRecord {
                    groups,
                    ..(*u).clone()
                }));
            }
        }
    }
    for u in existing {
        if u.source == Source::Ldap && !members.contains(u.name.as_str()) {
            report.removed.push(u.name.clone());
            ops.push(AuthOp::DeleteUser {
                name: u.name.clone(),
            });
        }
    }
    (ops, report)
}

impl Cluster {
    /// Logins of users unknown here, and of LDAP users, bind to `dir`;
    /// the LDAP sync reads it.
    pub fn set_ldap(&self, dir: Directory) -> Result<(), ClusterError> {
        self.ldap
            .set(LdapState {
                dir,
                running: tokio::sync::Mutex::new(()),
            })
            .map_err(|_| ClusterError::Conflict("LDAP is already set up".into()))
    }

    /// Whether a login of `rec` (`None`: a name unknown here) binds to
    /// the directory: LDAP users, and unknown names when LDAP is set up.
    pub(crate) fn ldap_serves(&self, rec: Option<&UserRecord>) -> bool {
        self.ldap.get().is_some() && rec.is_none_or(|u| u.source == Source::Ldap)
    }

    /// The mappings of the berth groups that have one.
    fn ldap_mappings(&self) -> Result<Vec<Mapping>, ClusterError> {
        Ok(self
            .groups()?
            .into_iter()
            .filter_map(|g| {
                let m = g.ldap?;
                Some(Mapping {
                    name: g.name,
                    groups: m.groups,
                    filter: m.filter,
                })
            })
            .collect())
    }

    /// A login through the directory: `Ok` once the password held in a
    /// bind as the user's entry. A user no sync has seen yet gets its
    /// record here, with the mapped groups it is in; one in none is
    /// refused. `Err` says why, for the audit trail only.
    pub(crate) async fn ldap_login(
        &self,
        name: &str,
        password: &str,
        rec: Option<UserRecord>,
    ) -> Result<(), String> {
        let state = self.ldap.get().ok_or("LDAP is not set up")?;
        check_name(name)?;
        let ldap_error = |e: berth_ldap::LdapError| {
            tracing::warn!("ldap: login of {name}: {e}");
            format!("LDAP: {e}")
        };
        let (dn, found) = match state.dir.authenticate(name, password).await {
            Ok(Auth::Bound { dn, name }) => (dn, name),
            Ok(Auth::Refused(why)) => return Err(why),
            Err(e) => return Err(ldap_error(e)),
        };
        if rec.is_some() {
            return Ok(());
        }
        let mappings = self.ldap_mappings().map_err(|e| e.to_string())?;
        let groups = state
            .dir
            .memberships(&dn, &found, &mappings)
            .await
            .map_err(ldap_error)?;
        if groups.is_empty() {
            return Err("in no LDAP group that a berth group maps".into());
        }
        let by = self.local_user().from(
            format!("ldap login of {name}"),
            uuid::Uuid::new_v4().to_string(),
        );
        self.auth_submit(&by, AuthOp::PutUser(new_user(name, groups, now_secs())))
            .await
            .map_err(|e| e.to_string())
    }

    /// `berth ldap sync`: the sync now, for root.
    pub async fn ldap_sync(&self, by: &UserRef) -> Result<LdapSyncReport, ClusterError> {
        if !self.rights(by)?.is_root() {
            let why = format!("{} may not sync LDAP: it takes root", by.user);
            self.record_refusal(by, "", "ldap sync", &why);
            return Err(ClusterError::Forbidden(why));
        }
        self.ldap_sync_as(by).await
    }

    async fn ldap_sync_as(&self, by: &UserRef) -> Result<LdapSyncReport, ClusterError> {
        let state = self.ldap.get().ok_or_else(|| {
            ClusterError::Conflict(
                "LDAP is not set up on this node: start its daemon with --ldap-url and --ldap-user-base".into(),
            )
        })?;
        let _one = state.running.lock().await;
        let mappings = self.ldap_mappings()?;
        let snap = if mappings.is_empty() {
            Snapshot::default()
        } else {
            state
                .dir
                .snapshot(&mappings)
                .await
                .map_err(|e| ClusterError::Unreachable(e.to_string()))?
        };
        let (existing, _): (Vec<UserRecord>, _) =
            self.desired.list_json(berth_auth::records::USER_PREFIX)?;
        let (ops, report) = plan(&snap, &existing, now_secs());
        let cmds: Vec<Command> = ops
            .into_iter()
            .map(|op| Command::Auth { by: by.clone(), op })
            .collect();
        for chunk in cmds.chunks(BATCH) {
            let cmd = match chunk {
                [one] => one.clone(),
                many => Command::All(many.to_vec()),
            };
            self.submit(cmd).await?;
        }
        Ok(report)
    }

    /// The leader's periodic sync: every `every`, and at once on a node
    /// that becomes the leader.
    pub fn spawn_ldap_sync(self: &Arc<Self>, every: Duration) {
        if self.ldap.get().is_none() {
            return;
        }
        let c = self.clone();
        tokio::spawn(async move {
            let mut last: Option<Instant> = None;
            loop {
                tokio::time::sleep(TICK.min(every)).await;
                if !c.desired.is_leader() {
                    last = None;
                    continue;
                }
                if last.is_some_and(|t| t.elapsed() < every) {
                    continue;
                }
                last = Some(Instant::now());
                let by = c
                    .local_user()
                    .from("ldap sync".into(), uuid::Uuid::new_v4().to_string());
                match c.ldap_sync_as(&by).await {
                    Ok(r) if r.changed() => tracing::info!(
                        "ldap sync: {} users created, {} updated, {} removed",
                        r.created.len(),
                        r.updated.len(),
                        r.removed.len()
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("ldap sync: {e}"),
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap() -> Snapshot {
        let mut s = Snapshot::default();
        for n in ["alice", "bob", "carol", "Bad Name"] {
            s.users.insert(
                n.into(),
                berth_ldap::User {
                    dn: format!("uid={n},dc=t"),
                    name: n.into(),
                },
            );
        }
        s.members.insert(
            "devs".into(),
            ["alice", "bob", "Bad Name", "ghost"]
                .map(String::from)
                .into(),
        );
        s.members
            .insert("ops".into(), ["bob", "carol"].map(String::from).into());
        s
    }

    fn user(name: &str, source: Source, groups: &[&str]) -> UserRecord {
        UserRecord {
            source,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..new_user(name, Vec::new(), 1)
        }
    }

    #[test]
    fn the_plan_creates_updates_keeps_and_removes() {
        let existing = vec![
            user("alice", Source::Ldap, &["devs"]),
            user("bob", Source::Ldap, &["devs", "gone-group"]),
            user("carol", Source::Local, &[]),
            user("gone", Source::Ldap, &["devs"]),
            user("robot", Source::Local, &[]),
        ];
        let (ops, r) = plan(&snap(), &existing, 7);
        assert_eq!(r.unchanged, 1, "alice");
        assert_eq!(
            r.updated,
            vec![LdapUserChange {
                name: "bob".into(),
                groups: vec!["devs".into(), "ops".into()],
            }]
        );
        assert!(r.created.is_empty());
        assert_eq!(r.removed, vec!["gone"]);
        assert!(r.skipped.iter().any(|s| s.contains("carol: a local")));
        assert!(r.skipped.iter().any(|s| s.contains("Bad Name")));
        assert_eq!(ops.len(), 2);
        assert!(matches!(&ops[1], AuthOp::DeleteUser { name } if name == "gone"));
    }

    #[test]
    fn new_members_get_records_whose_earlier_tokens_stay_void() {
        let (ops, r) = plan(&snap(), &[], 42);
        let names: Vec<&str> = r.created.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        let AuthOp::PutUser(bob) = &ops[1] else {
            panic!("{ops:?}")
        };
        assert_eq!(bob.groups, ["devs", "ops"]);
        assert_eq!(
            (bob.source, bob.tokens_after, bob.password.is_none()),
            (Source::Ldap, 42, true)
        );
        // No mapping at all: every LDAP user goes.
        let existing = vec![user("alice", Source::Ldap, &["devs"])];
        let (ops, r) = plan(&Snapshot::default(), &existing, 1);
        assert_eq!((ops.len(), r.removed.len()), (1, 1));
    }
}
