//! Autolock, as Swarm has it. `enable` makes an unlock key, prints it once
//! and keeps it in the cluster record sealed with the seal key; every
//! manager then writes its seal key to its identity file only sealed with
//! the unlock key (the loop below, on each change of the record). A
//! manager that restarts is locked: it knows no seal key, so it opens no
//! secret, signs no certificate or token, and it neither listens for Raft
//! nor stands for election until `berth cluster unlock` gives it the key.
//! The record and the file each hold the other's key sealed, so a copy of
//! a manager's disk opens neither (`design/security.md`).

use crate::command::{ClusterWrite, Command, UserRef};
use crate::renew::durable;
use crate::{server, Cluster, ClusterError};
use berth_net::SealKey;
use std::sync::Arc;
use std::time::Duration;

pub const UNLOCK_PREFIX: &str = "BERTH-UNLOCK-";

/// What `berth cluster autolock` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutolockOp {
    Enable,
    Rotate,
    Disable,
}

fn parse_unlock_key(text: &str) -> Result<SealKey, ClusterError> {
    let hex = text.trim().strip_prefix(UNLOCK_PREFIX).ok_or_else(|| {
        ClusterError::BadInput(format!("an unlock key starts with {UNLOCK_PREFIX}"))
    })?;
    SealKey::from_hex(hex).map_err(|_| ClusterError::BadInput("this is not an unlock key".into()))
}

impl Cluster {
    /// The seal key, or why this node has none.
    pub(crate) fn seal(&self) -> Result<SealKey, ClusterError> {
        match self.identity() {
            None => Err(ClusterError::Conflict(
                "this node is not in a cluster; run `berth cluster init` first".into(),
            )),
            Some(id) if id.is_locked() => Err(ClusterError::Conflict(
                "this manager is locked: run `berth cluster unlock` first".into(),
            )),
            Some(id) => id.seal_key().ok_or_else(|| {
                ClusterError::Forbidden(
                    "only managers hold the cluster's secrets; run this on a manager".into(),
                )
            }),
        }
    }

    /// The unlock key a new or renewed manager gets with the seal key.
    pub(crate) fn unlock_key_for(
        &self,
        role: berth_model::cluster::NodeRole,
        rec: &crate::ClusterRecord,
        seal: &SealKey,
    ) -> Option<String> {
        if role != berth_model::cluster::NodeRole::Manager {
            return None;
        }
        let sealed = rec.unlock_key_sealed.as_ref()?;
        String::from_utf8(seal.open(sealed).ok()?).ok()
    }

    pub fn is_locked(&self) -> bool {
        self.identity().is_some_and(|id| id.is_locked())
    }

    /// Turns autolock on, rotates its key or turns it off; returns the new
    /// unlock key, the only time berth shows it.
    pub async fn autolock(
        &self,
        by: &UserRef,
        op: AutolockOp,
    ) -> Result<Option<String>, ClusterError> {
        let _guard = self.membership_lock.lock().await;
        let (rec, seal) = self.manager_secrets()?;
        let on = rec.unlock_key_sealed.is_some();
        let key = match (op, on) {
            (AutolockOp::Enable, true) => {
                return Err(ClusterError::Conflict(
                    "autolock is already on; `berth cluster autolock rotate` makes a new key"
                        .into(),
                ))
            }
            (AutolockOp::Rotate | AutolockOp::Disable, false) => {
                return Err(ClusterError::Conflict("autolock is off".into()))
            }
            (AutolockOp::Disable, true) => None,
            _ => Some(SealKey::generate()?),
        };
        let next = crate::ClusterRecord {
            unlock_key_sealed: key
                .as_ref()
                .map(|k| seal.seal(k.to_hex().as_bytes()))
                .transpose()?,
            ..rec
        };
        let action = match op {
            AutolockOp::Enable => "autolock enable",
            AutolockOp::Rotate => "autolock rotate",
            AutolockOp::Disable => "autolock disable",
        };
        let change = Command::Cluster(ClusterWrite::Put(Box::new(next)));
        self.administer(by, action, "cluster", Some(change)).await?;
        self.seal_identity()?;
        self.emit(match op {
            AutolockOp::Enable => {
                "autolock enabled: a restarted manager waits for `berth cluster unlock`".into()
            }
            AutolockOp::Rotate => {
                "autolock key rotated: running managers seal their seal key with the new key now; one that is down or locked opens with the previous key once, then takes the new one".into()
            }
            AutolockOp::Disable => "autolock disabled".into(),
        });
        Ok(key.map(|k| format!("{UNLOCK_PREFIX}{}", k.to_hex())))
    }

    /// Unlocks this manager with the key `enable` or `rotate` printed.
    pub async fn unlock(self: &Arc<Self>, by: &UserRef, text: &str) -> Result<(), ClusterError> {
        let mut id = self
            .identity()
            .filter(|id| id.is_locked())
            .ok_or_else(|| ClusterError::Conflict("this node is not locked".into()))?;
        let key = parse_unlock_key(text)?;
        let sealed = id.seal_key_locked.clone().unwrap_or_default();
        let seal_hex = key
            .open(&sealed)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|h| SealKey::from_hex(h).is_ok())
            .ok_or_else(|| {
                let why = "wrong unlock key";
                self.record_refusal(by, "", "cluster unlock", why);
                ClusterError::Forbidden(why.into())
            })?;
        id.seal_key = Some(seal_hex);
        id.unlock_key = Some(key.to_hex());
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Some(id.clone());
        server::listen(self, &id)?;
        self.desired.set_elect(true);
        self.emit("this manager is unlocked".into());
        // Recorded once a leader takes it: maybe this node, after its
        // election.
        let (me, by) = (self.clone(), by.clone());
        tokio::spawn(async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let node = me.nodename().to_string();
                match me.administer(&by, "cluster unlock", &node, None).await {
                    Err(e) if e.retryable() && std::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => {
                        tracing::warn!("audit: the unlock went unrecorded: {e}");
                        return;
                    }
                    Ok(()) => return,
                }
            }
        });
        Ok(())
    }

    /// Writes this manager's identity file as the cluster record says:
    /// the seal key sealed with the current unlock key, or plain.
    fn seal_identity(&self) -> Result<(), ClusterError> {
        let Some(mut id) = self.identity() else {
            return Ok(());
        };
        let Some(seal) = id.seal_key() else {
            return Ok(());
        };
        let Some(rec) = self.cluster_record() else {
            return Ok(());
        };
        let want =
            match &rec.unlock_key_sealed {
                Some(s) => Some(String::from_utf8(seal.open(s)?).map_err(|_| {
                    ClusterError::Conflict("the stored unlock key is damaged".into())
                })?),
                None => None,
            };
        if id.unlock_key == want && (want.is_some() || id.seal_key_locked.is_none()) {
            return Ok(());
        }
        if want.is_none() {
            id.seal_key_locked = None;
        }
        id.unlock_key = want;
        durable(|| id.save(&self.opts.home))?;
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Some(id);
        Ok(())
    }
}

/// Keeps this manager's identity file sealed as the cluster record says.
pub(crate) async fn run(cluster: Arc<Cluster>) {
    let mut changes = cluster.desired.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = changes.recv() => match r {
                // Only a change of the cluster record matters (None: any
                // key may have changed).
                Ok(keys) if keys.as_ref().as_ref().is_some_and(|k| {
                    !k.iter().any(|k| k == crate::records::CLUSTER_KEY)
                }) => continue,
                Ok(_) => {}
                Err(_) => changes = cluster.desired.subscribe(),
            },
        }
        if let Err(e) = cluster.seal_identity() {
            tracing::warn!("autolock: sealing this manager's identity: {e}");
        }
    }
}
