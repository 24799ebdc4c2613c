//! Users, groups and tokens: their records go through Raft as
//! `Command::Auth`, passwords hashed on the node that received them
//! (the log never holds one in clear), and tokens are signed by a
//! manager with the key it derives from the seal key.

use crate::command::{AuthOp, Command, UserRef};
use crate::rbac::now_secs;
use crate::records::{ClusterRecord, CLUSTER_KEY};
use crate::{Cluster, ClusterError};
use berth_auth::records::{check_name, GroupRecord, Revocation, SignerRecord, SIGNER_KEY};
use berth_auth::LdapGroupMap;
use berth_auth::{Claims, Grant, Rights, Signer, Source, UserRecord};
use berth_model::cluster::NodeRole;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Longest a token may live.
pub const MAX_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// Failed logins of one name allowed in `LOCKOUT` before it is refused.
const FAILURES: u32 = 5;
const LOCKOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IssuedToken {
    pub token: String,
    pub id: String,
    pub user: String,
    pub grants: Vec<Grant>,
    pub expires: u64,
}

/// Failed logins per user name; the same answer whether or not it exists.
#[derive(Default)]
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    fn locked(&self, name: &str) -> bool {
        let map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name)
            .is_some_and(|(n, since)| *n >= FAILURES && since.elapsed() < LOCKOUT)
    }

    fn failed(&self, name: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| since.elapsed() < LOCKOUT);
        }
        let e = map.entry(name.to_string()).or_insert((0, Instant::now()));
        if e.1.elapsed() >= LOCKOUT {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }

    fn succeeded(&self, name: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }
}

fn bad(m: impl Into<String>) -> ClusterError {
    ClusterError::BadInput(m.into())
}

/// An LDAP mapping that can be searched: DNs that read as DNs, a filter
/// that parses.
fn check_ldap_map(m: &LdapGroupMap) -> Result<(), ClusterError> {
    if m.groups.is_empty() && m.filter.is_none() {
        return Err(bad("an LDAP mapping needs a group DN or a filter"));
    }
    if let Some(dn) = m.groups.iter().find(|d| !d.contains('=')) {
        return Err(bad(format!(
            "{dn:?} is not a DN (cn=devs,ou=groups,dc=example,dc=com)"
        )));
    }
    match &m.filter {
        Some(f) if !berth_ldap::filter_parses(f) => Err(bad(format!(
            "{f:?} is not an LDAP filter ((&(objectClass=groupOfNames)(cn=dev*)))"
        ))),
        _ => Ok(()),
    }
}

async fn hash(password: String) -> Result<String, ClusterError> {
    tokio::task::spawn_blocking(move || berth_auth::password::hash(&password))
        .await
        .map_err(|_| ClusterError::ShuttingDown)?
        .map_err(|e| bad(e.to_string()))
}

impl Cluster {
    /// What `by` may do, decided on this replica.
    pub fn rights(&self, by: &UserRef) -> Result<Rights, ClusterError> {
        self.authorizer.rights(by).map_err(|why| {
            self.record_refusal(by, "", "authenticate", &why.to_string());
            why.into()
        })
    }

    pub async fn auth_submit(&self, by: &UserRef, op: AuthOp) -> Result<(), ClusterError> {
        self.submit(Command::Auth { by: by.clone(), op })
            .await
            .map(|_| ())
    }

    pub fn user_record(&self, name: &str) -> Option<UserRecord> {
        self.authorizer.user(name)
    }

    pub fn group_record(&self, name: &str) -> Option<GroupRecord> {
        self.authorizer.group(name)
    }

    /// Every user without its password hash, and whether it has one.
    pub fn users(&self) -> Result<Vec<(UserRecord, bool)>, ClusterError> {
        let (users, _): (Vec<UserRecord>, _) =
            self.desired.list_json(berth_auth::records::USER_PREFIX)?;
        Ok(users
            .into_iter()
            .map(|mut u| {
                let has = u.password.take().is_some();
                (u, has)
            })
            .collect())
    }

    pub fn groups(&self) -> Result<Vec<GroupRecord>, ClusterError> {
        Ok(self.desired.list_json(berth_auth::records::GROUP_PREFIX)?.0)
    }

    pub async fn user_create(
        &self,
        by: &UserRef,
        name: &str,
        password: Option<String>,
        groups: Vec<String>,
        grants: Vec<Grant>,
    ) -> Result<UserRecord, ClusterError> {
        check_name(name).map_err(bad)?;
        for g in &groups {
            check_name(g).map_err(bad)?;
            if self.group_record(g).is_none() {
                return Err(ClusterError::NotFound(format!("group {g}: no such group")));
            }
        }
        if self.user_record(name).is_some() {
            return Err(ClusterError::Conflict(format!("user {name} exists")));
        }
        let password = match password {
            Some(p) => Some(hash(p).await?),
            None => None,
        };
        let rec = UserRecord {
            name: name.into(),
            password,
            groups,
            grants,
            source: Source::Local,
            tokens_after: 0,
            created: now_secs(),
        };
        self.auth_submit(by, AuthOp::PutUser(rec.clone())).await?;
        Ok(UserRecord {
            password: None,
            ..rec
        })
    }

    fn existing_user(&self, name: &str) -> Result<UserRecord, ClusterError> {
        self.user_record(name)
            .ok_or_else(|| ClusterError::NotFound(format!("user {name}: no such user")))
    }

    /// A new password; every token issued before is void.
    pub async fn user_passwd(
        &self,
        by: &UserRef,
        name: &str,
        password: String,
    ) -> Result<(), ClusterError> {
        let mut rec = self.existing_user(name)?;
        if rec.source == Source::Ldap {
            return Err(ClusterError::Conflict(format!(
                "{name} is an LDAP user: its password is the directory's"
            )));
        }
        rec.password = Some(hash(password).await?);
        rec.tokens_after = now_secs();
        self.auth_submit(by, AuthOp::PutUser(rec)).await
    }

    /// Adds (or with `revoke`, removes) grants of a user or a group.
    pub async fn grant(
        &self,
        by: &UserRef,
        group: bool,
        name: &str,
        grants: Vec<Grant>,
        revoke: bool,
    ) -> Result<Vec<Grant>, ClusterError> {
        // What is asked, not only what changes: granting a grant already
        // held is refused alike to whoever may not grant it.
        let rights = self.rights(by)?;
        if let Some(g) = grants.iter().find(|g| !rights.may_grant(g)) {
            return Err(ClusterError::Forbidden(format!(
                "{} may not grant or revoke {g}",
                by.user
            )));
        }
        let apply = |current: &mut Vec<Grant>| {
            for g in grants.iter() {
                if revoke {
                    current.retain(|c| c != g);
                } else if !current.contains(g) {
                    current.push(g.clone());
                }
            }
            current.clone()
        };
        if group {
            let mut rec = self
                .group_record(name)
                .ok_or_else(|| ClusterError::NotFound(format!("group {name}: no such group")))?;
            let out = apply(&mut rec.grants);
            self.auth_submit(by, AuthOp::PutGroup(rec)).await?;
            Ok(out)
        } else {
            let mut rec = self.existing_user(name)?;
            let out = apply(&mut rec.grants);
            self.auth_submit(by, AuthOp::PutUser(rec)).await?;
            Ok(out)
        }
    }

    /// A new group; with `ldap`, its members are the LDAP sync's.
    pub async fn group_create(
        &self,
        by: &UserRef,
        name: &str,
        grants: Vec<Grant>,
        ldap: Option<LdapGroupMap>,
    ) -> Result<GroupRecord, ClusterError> {
        check_name(name).map_err(bad)?;
        if self.group_record(name).is_some() {
            return Err(ClusterError::Conflict(format!("group {name} exists")));
        }
        if let Some(m) = &ldap {
            check_ldap_map(m)?;
        }
        let rec = GroupRecord {
            name: name.into(),
            grants,
            source: Source::Local,
            ldap,
        };
        self.auth_submit(by, AuthOp::PutGroup(rec.clone())).await?;
        Ok(rec)
    }

    /// The signer of this manager, its public key published in desired
    /// state if it is not yet.
    async fn signer(&self) -> Result<(Signer, String), ClusterError> {
        if !self.is_clustered() {
            return Err(ClusterError::Conflict(
                "tokens need a cluster: run `berth cluster init` first".into(),
            ));
        }
        // A locked manager says so; a worker sends its users to a manager.
        let seal = self.seal().map_err(|e| match e {
            ClusterError::Forbidden(_) => {
                ClusterError::Conflict("tokens are signed by managers: ask a manager".into())
            }
            e => e,
        })?;
        let cluster: ClusterRecord = self
            .desired
            .get_json(CLUSTER_KEY)?
            .ok_or_else(|| ClusterError::Conflict("the cluster record is missing".into()))?;
        let signer = Signer::derive(seal.to_hex().as_bytes());
        let public = signer.public_hex();
        let stored: Option<SignerRecord> = self.desired.get_json(SIGNER_KEY)?;
        if stored.as_ref().map(|s| &s.public) != Some(&public) {
            self.auth_submit(&self.local_user(), AuthOp::Signer(SignerRecord { public }))
                .await?;
        }
        Ok((signer, cluster.id))
    }

    /// A token for `user`, asked by `by`: root for anyone, or a user for
    /// themself. Its grants are the user's, or the fewer asked for.
    pub async fn issue_token(
        &self,
        by: &UserRef,
        user: &str,
        grants: Option<Vec<Grant>>,
        ttl: Duration,
    ) -> Result<IssuedToken, ClusterError> {
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(bad(format!(
                "a token lives from 1 s to {} days",
                MAX_TTL.as_secs() / 86400
            )));
        }
        let rights = self.rights(by)?;
        if !rights.is_root() && by.user != user {
            return Err(ClusterError::Forbidden(format!(
                "{} may not issue tokens for {user}: it takes root",
                by.user
            )));
        }
        let rec = self.existing_user(user)?;
        let held = rec.rights(|g| self.group_record(g));
        let grants = match grants {
            None => held.grants().to_vec(),
            Some(asked) => {
                if let Some(g) = asked
                    .iter()
                    .find(|g| !Rights::new([(*g).clone()]).within(&held))
                {
                    return Err(ClusterError::Forbidden(format!(
                        "{user} does not hold {g}: a token carries no more than its user's grants"
                    )));
                }
                asked
            }
        };
        let (signer, cluster) = self.signer().await?;
        let now = now_secs();
        let claims = Claims {
            id: uuid::Uuid::new_v4().to_string(),
            cluster,
            user: user.into(),
            grants,
            iat: now,
            exp: now + ttl.as_secs(),
        };
        Ok(IssuedToken {
            token: signer.sign(&claims),
            id: claims.id,
            user: claims.user,
            grants: claims.grants,
            expires: claims.exp,
        })
    }

    /// A password login: a token for the user, or the same refusal for a
    /// wrong password and an unknown name; a name that failed too often
    /// is refused for a minute. With LDAP set up, an LDAP user and a name
    /// unknown here log in by a bind to the directory (`ldap.rs`), with
    /// the same refusal and the same limit.
    pub async fn login(
        &self,
        node_user: &UserRef,
        name: &str,
        password: String,
        ttl: Duration,
    ) -> Result<IssuedToken, ClusterError> {
        let refused = || ClusterError::Unauthenticated("wrong user name or password".into());
        if self.identity().is_some_and(|i| i.role == NodeRole::Worker) {
            // The leader checks the password (its limiter counts every
            // node's attempts) and signs.
            // The leader records refusals under its own name: say where
            // the login came in.
            let source = format!(
                "{} on {}",
                node_user.source.as_deref().unwrap_or("remote api"),
                node_user.node
            );
            let fwd = crate::records::ForwardedLogin {
                by: UserRef {
                    source: Some(source),
                    ..node_user.clone()
                },
                user: name.into(),
                password,
                ttl_secs: ttl.as_secs(),
            };
            let addr = self.leader_addr()?;
            return self.call(&addr, crate::server::PATH_LOGIN, &fwd).await;
        }
        if self.login_limiter.locked(name) {
            let who = UserRef {
                user: name.into(),
                token: None,
                ..node_user.clone()
            };
            self.record_refusal(&who, "", "login", "too many failures: locked for a minute");
            return Err(refused());
        }
        let rec = self.user_record(name);
        let verdict = if self.ldap_serves(rec.as_ref()) {
            // An LDAP user, or a name unknown here: a bind as its entry.
            self.ldap_login(name, &password, rec).await
        } else {
            let known = rec.is_some();
            let stored = rec.and_then(|u| u.password);
            let ok = tokio::task::spawn_blocking(move || match stored {
                Some(h) => berth_auth::password::verify(&password, &h),
                None => {
                    berth_auth::password::verify_nobody(&password);
                    false
                }
            })
            .await
            .map_err(|_| ClusterError::ShuttingDown)?;
            match (ok, known) {
                (true, _) => Ok(()),
                (false, true) => Err("wrong password".to_string()),
                (false, false) => Err("no such user".to_string()),
            }
        };
        if let Err(why) = verdict {
            self.login_limiter.failed(name);
            let who = UserRef {
                user: name.into(),
                token: None,
                ..node_user.clone()
            };
            self.record_refusal(&who, "", "login", &why);
            return Err(refused());
        }
        self.login_limiter.succeeded(name);
        let me = UserRef {
            user: name.into(),
            token: None,
            ..node_user.clone()
        };
        self.issue_token(&me, name, None, ttl).await
    }

    /// Revokes a token, given whole or by its id, until it would have
    /// expired (by id: for the longest a token may live).
    pub async fn revoke_token(&self, by: &UserRef, token: &str) -> Result<String, ClusterError> {
        let r = match berth_auth::token::peek(token) {
            Some(c) => Revocation {
                id: c.id,
                user: c.user,
                exp: c.exp,
            },
            None if uuid::Uuid::parse_str(token).is_ok() => Revocation {
                id: token.into(),
                user: by.user.clone(),
                exp: now_secs() + MAX_TTL.as_secs(),
            },
            None => return Err(bad("give a berth token or a token id")),
        };
        let id = r.id.clone();
        self.auth_submit(by, AuthOp::Revoke(r)).await?;
        Ok(id)
    }

    pub async fn user_delete(&self, by: &UserRef, name: &str) -> Result<(), ClusterError> {
        self.existing_user(name)?;
        self.auth_submit(by, AuthOp::DeleteUser { name: name.into() })
            .await
    }
}

impl Cluster {
    /// The command that creates `recs` for `by`. A squatter creating the
    /// first object of a namespace also becomes its admin, in the same
    /// entry: `admin:<ns>` added to its user record. Tokens carry the
    /// grants of their issue, so its token needs renewing (a new login)
    /// to use that grant.
    pub fn create_command(&self, by: &UserRef, recs: Vec<berth_store::ObjectRecord>) -> Command {
        let create = Command::Object {
            by: by.clone(),
            op: crate::command::ObjectOp::Create(recs.clone()),
        };
        let Some(ns) = recs.first().and_then(|r| r.path.split('/').next()) else {
            return create;
        };
        let Ok(rights) = self.authorizer.rights(by) else {
            return create;
        };
        let claim: Grant = match format!("admin:{ns}").parse() {
            Ok(g) => g,
            Err(_) => return create,
        };
        let squats = !rights.is_root()
            && rights.grants().contains(&Grant::Squatter)
            && !rights.allows(berth_auth::Action::Create, ns, true)
            && !self.authorizer.ns_exists(ns);
        let Some(mut user) = self.user_record(&by.user).filter(|_| squats) else {
            return create;
        };
        if !user.grants.contains(&claim) {
            user.grants.push(claim);
        }
        Command::All(vec![
            create,
            Command::Auth {
                by: by.clone(),
                op: AuthOp::PutUser(user),
            },
        ])
    }

    /// Whether `by` may do `action` to `path`, decided on this replica:
    /// for what runs on this node without a command of its own (an
    /// action's first check, a read).
    pub fn authorize(
        &self,
        by: &UserRef,
        path: &str,
        action: berth_auth::Action,
    ) -> Result<(), ClusterError> {
        let rights = self.rights(by)?;
        self.authorizer
            .check_object(&by.user, &rights, path, action, None)
            .map_err(|why| {
                self.record_refusal(by, path, action.as_str(), &why.to_string());
                why.into()
            })
    }
}
