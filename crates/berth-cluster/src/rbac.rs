//! The cluster's authorizer: who a request comes from (root on a node's
//! socket, a user, or a token's holder) and what their grants allow,
//! decided by `berth_auth` on this replica's users, groups and revoked
//! tokens. The leader decides every command; the node that serves a
//! request uses the same code to filter what it lists.

use crate::command::{AuthOp, Authorizer, KvWrite, ObjectOp, Refusal, SecretOp, UserRef};
use crate::records::{ClusterRecord, CLUSTER_KEY};
use berth_auth::records::{group_key, revoked_key, user_key, SIGNER_KEY};
use berth_auth::{
    restricted_violations, Action, GroupRecord, Rights, SignerRecord, UserRecord, Verifier,
};
use berth_model::status::Target;
use berth_store::Desired;
use std::sync::Arc;

pub struct Rbac {
    desired: Arc<Desired>,
    /// Tokens whose signature verified, with their claims: the signature
    /// is checked once per token, not per request. Expiry, revocation and
    /// the user's current grants are still checked every time.
    verified: std::sync::Mutex<std::collections::HashMap<String, berth_auth::Claims>>,
}

/// Verified tokens remembered at most.
const VERIFIED_CACHE: usize = 4096;

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Rbac {
    pub fn new(desired: Arc<Desired>) -> Rbac {
        Rbac {
            desired,
            verified: Default::default(),
        }
    }

    /// The claims of a token whose signature holds, by the cache or by
    /// `v`. Only a verified token enters the cache, keyed by its whole
    /// text, so a tampered one never matches.
    fn claims(
        &self,
        v: &Verifier,
        token: &str,
    ) -> Result<berth_auth::Claims, berth_auth::TokenError> {
        let now = now_secs();
        let cached = self
            .verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned();
        let claims = match cached {
            Some(c) => c,
            None => {
                let c = v.verify(token, now, |_| false)?;
                let mut map = self.verified.lock().unwrap_or_else(|e| e.into_inner());
                if map.len() >= VERIFIED_CACHE {
                    map.retain(|_, c| c.exp > now);
                    if map.len() >= VERIFIED_CACHE {
                        map.clear();
                    }
                }
                map.insert(token.to_string(), c.clone());
                c
            }
        };
        if now >= claims.exp {
            return Err(berth_auth::TokenError::Expired);
        }
        if self.revoked(&claims.id) {
            return Err(berth_auth::TokenError::Revoked);
        }
        Ok(claims)
    }

    pub fn user(&self, name: &str) -> Option<UserRecord> {
        self.desired.get_json(&user_key(name)).ok().flatten()
    }

    pub fn group(&self, name: &str) -> Option<GroupRecord> {
        self.desired.get_json(&group_key(name)).ok().flatten()
    }

    fn revoked(&self, id: &str) -> bool {
        !matches!(self.desired.get_raw(&revoked_key(id)), Ok(None))
    }

    pub(crate) fn verifier(&self) -> Option<Verifier> {
        let signer: SignerRecord = self.desired.get_json(SIGNER_KEY).ok().flatten()?;
        let cluster: ClusterRecord = self.desired.get_json(CLUSTER_KEY).ok().flatten()?;
        Verifier::new(&signer.public, &cluster.id)
    }

    pub(crate) fn ns_exists(&self, ns: &str) -> bool {
        self.desired
            .scan_raw(&format!("obj/{ns}/"))
            .map(|v| !v.is_empty())
            .unwrap_or(true)
    }

    /// The rights `by` holds now. A token's grants are cut down to what
    /// its user still holds.
    pub fn rights(&self, by: &UserRef) -> Result<Rights, Refusal> {
        let Some(token) = &by.token else {
            if by.user == "root" {
                return Ok(Rights::root());
            }
            let u = self
                .user(&by.user)
                .ok_or_else(|| Refusal::Forbidden(format!("{:?} is no berth user", by.user)))?;
            return Ok(u.rights(|g| self.group(g)));
        };
        let v = self
            .verifier()
            .ok_or_else(|| Refusal::Unauthenticated("this cluster has issued no tokens".into()))?;
        let claims = self
            .claims(&v, token)
            .map_err(|e| Refusal::Unauthenticated(e.to_string()))?;
        if claims.user != by.user {
            return Err(Refusal::Unauthenticated(
                "the token is another user's".into(),
            ));
        }
        let user = self
            .user(&claims.user)
            .ok_or_else(|| Refusal::Unauthenticated("the token's user no longer exists".into()))?;
        if claims.iat < user.tokens_after {
            return Err(Refusal::Unauthenticated(
                berth_auth::TokenError::Revoked.to_string(),
            ));
        }
        let current = user.rights(|g| self.group(g));
        Ok(Rights::new(
            claims
                .grants
                .into_iter()
                .filter(|g| Rights::new([g.clone()]).within(&current)),
        ))
    }

    pub(crate) fn check_object(
        &self,
        who: &str,
        rights: &Rights,
        path: &str,
        action: Action,
        config: Option<&str>,
    ) -> Result<(), Refusal> {
        let ns = path.split('/').next().unwrap_or_default();
        if !rights.allows(action, ns, self.ns_exists(ns)) {
            return Err(Refusal::Forbidden(format!(
                "{who} may not {} {path}: no grant of theirs allows it in namespace {ns}",
                action.as_str()
            )));
        }
        if let Some(text) = config {
            if rights.restricted_in(ns) {
                let found = restricted_violations(text).map_err(Refusal::BadInput)?;
                if !found.is_empty() {
                    return Err(Refusal::Forbidden(format!(
                        "{who} may not write this config: restricted control in {ns}: {}",
                        found.join("; ")
                    )));
                }
            }
        }
        Ok(())
    }

    /// A squatter adding `admin:<ns>` to itself for a namespace with no
    /// object yet: the grant it earns by creating the namespace's first
    /// object (in the same entry).
    fn squatter_claim(&self, rights: &Rights, old: &UserRecord, new: &UserRecord) -> bool {
        if !rights.grants().contains(&berth_auth::Grant::Squatter) {
            return false;
        }
        let added: Vec<&berth_auth::Grant> = new
            .grants
            .iter()
            .filter(|g| !old.grants.contains(g))
            .collect();
        let mut rest = new.clone();
        rest.grants = old.grants.clone();
        match added.as_slice() {
            [berth_auth::Grant::Ns {
                role: berth_auth::NsRole::Admin,
                glob,
                restricted: false,
            }] => rest == *old && !glob.contains(['*', '?', '[']) && !self.ns_exists(glob),
            _ => false,
        }
    }

    /// An admin's change to a user's or group's grants: each grant added
    /// or removed must be one it may hand out.
    fn check_grant_change(
        &self,
        who: &str,
        rights: &Rights,
        old: &[berth_auth::Grant],
        new: &[berth_auth::Grant],
    ) -> Result<(), Refusal> {
        let changed = new
            .iter()
            .filter(|g| !old.contains(g))
            .chain(old.iter().filter(|g| !new.contains(g)));
        for g in changed {
            if !rights.may_grant(g) {
                return Err(Refusal::Forbidden(format!(
                    "{who} may not grant or revoke {g}"
                )));
            }
        }
        Ok(())
    }
}

fn object_actions(op: &ObjectOp) -> Vec<(&str, Action, Option<&str>)> {
    match op {
        ObjectOp::Create(recs) => recs
            .iter()
            .map(|r| (r.path.as_str(), Action::Create, Some(r.config.as_str())))
            .collect(),
        ObjectOp::SetConfigs(cs) => cs
            .iter()
            .map(|c| (c.path.as_str(), Action::Set, Some(c.config.as_str())))
            .collect(),
        ObjectOp::Delete { path } => vec![(path, Action::Delete, None)],
        ObjectOp::SetTarget { path, target, .. } => {
            let a = match target {
                Some(Target::Started) => Action::Start,
                Some(Target::Stopped) => Action::Stop,
                None => Action::Set,
            };
            vec![(path, a, None)]
        }
        ObjectOp::Move { path, .. }
        | ObjectOp::Deployed { path, .. }
        | ObjectOp::Unhealthy { path, .. } => vec![(path, Action::Start, None)],
    }
}

impl Authorizer for Rbac {
    fn object(&self, by: &UserRef, op: &ObjectOp) -> Result<(), Refusal> {
        let rights = self.rights(by)?;
        if rights.is_root() {
            return Ok(());
        }
        for (path, action, config) in object_actions(op) {
            self.check_object(&by.user, &rights, path, action, config)?;
        }
        Ok(())
    }

    fn kv(&self, by: &UserRef, write: &KvWrite) -> Result<(), Refusal> {
        if by.token.is_none() {
            return Ok(());
        }
        let rights = self.rights(by)?;
        let ok = match write {
            KvWrite::Txn(ops) => ops.iter().all(|o| rights.allows_kv(o.key(), o.writes())),
            KvWrite::SessionCreate(_)
            | KvWrite::SessionDestroy { .. }
            | KvWrite::SessionRenew { .. } => {
                rights.is_root()
                    || rights
                        .grants()
                        .iter()
                        .any(|g| matches!(g, berth_auth::Grant::Kv { write: true, .. }))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "{} holds no KV grant for this",
                by.user
            )))
        }
    }

    fn catalog(&self, by: &UserRef, _ops: &[berth_kv::catalog::CatalogOp]) -> Result<(), Refusal> {
        if by.token.is_none() || self.rights(by)?.is_root() {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "{} may not register in the catalog: it takes root",
                by.user
            )))
        }
    }

    fn secret(&self, by: &UserRef, op: &SecretOp) -> Result<(), Refusal> {
        let rights = self.rights(by)?;
        let path = op.path();
        let action = if path.split('/').nth(1) == Some("sec") {
            Action::ManageSecret
        } else {
            Action::Set
        };
        if self.desired.get(path).ok().flatten().is_none() {
            return Err(Refusal::BadInput(format!("{path}: no such object")));
        }
        self.check_object(&by.user, &rights, path, action, None)
    }

    fn admin(&self, by: &UserRef) -> Result<(), Refusal> {
        if self.rights(by)?.is_root() {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!(
                "{} may not do this: it takes root",
                by.user
            )))
        }
    }

    fn auth(&self, by: &UserRef, op: &AuthOp) -> Result<(), Refusal> {
        let rights = self.rights(by)?;
        if rights.is_root() {
            return Ok(());
        }
        let root_only = || {
            Err(Refusal::Forbidden(format!(
                "{} may not do this: it takes root",
                by.user
            )))
        };
        match op {
            AuthOp::PutUser(new) => {
                let Some(old) = self.user(&new.name) else {
                    return root_only();
                };
                let same_but = |password: bool, grants: bool| {
                    let mut a = old.clone();
                    if password {
                        a.password = new.password.clone();
                        a.tokens_after = new.tokens_after;
                    }
                    if grants {
                        a.grants = new.grants.clone();
                    }
                    &a == new
                };
                if by.user == new.name && same_but(true, false) {
                    return Ok(());
                }
                if by.user == new.name && self.squatter_claim(&rights, &old, new) {
                    return Ok(());
                }
                if !same_but(false, true) {
                    return root_only();
                }
                self.check_grant_change(&by.user, &rights, &old.grants, &new.grants)
            }
            AuthOp::PutGroup(new) => {
                let Some(old) = self.group(&new.name) else {
                    return root_only();
                };
                // Its LDAP mapping decides who is a member: root's.
                if old.source != new.source || old.ldap != new.ldap {
                    return root_only();
                }
                self.check_grant_change(&by.user, &rights, &old.grants, &new.grants)
            }
            AuthOp::Revoke(r) if r.user == by.user => Ok(()),
            _ => root_only(),
        }
    }
}
