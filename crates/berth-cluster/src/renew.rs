//! Certificate renewal: a node asks a manager for a fresh certificate when
//! a random point between 50 % and 80 % of its certificate's lifetime has
//! passed, or at once when its role in desired state changed (promote,
//! demote). The node makes a new key and sends only its signing request.
//!
//! Only the leader issues, from its own records: the role in the node's
//! record, and manager only if Raft counts the node among its voters too.
//! Both change only through membership commands a manager sent, so no
//! renewal yields a role a manager did not give. The seal key goes to
//! managers only.

use crate::command::{Caller, ClusterWrite, Command, NodeWrite};
use crate::records::{net_role, ClusterPatch, JoinReply, RenewRequest};
use crate::{server, Cluster, ClusterError, Identity};
use berth_model::cluster::NodeRole;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// After a failed attempt, before the next.
const RETRY: Duration = Duration::from_secs(10);

/// When (seconds since the epoch) a certificate valid from `start` to
/// `end` renews: at a point in [50 %, 80 %] of its life that `seed` picks.
pub(crate) fn renew_at(start: i64, end: i64, seed: u64) -> i64 {
    let life = (end - start).max(0);
    let permille = 500 + (seed % 301) as i64;
    start + life * permille / 1000
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Cluster {
    /// Whether this node's role in desired state differs from its certificate's.
    fn role_changed(&self) -> bool {
        let Some(me) = self.identity() else {
            return false;
        };
        matches!(self.node_record(&me.node), Ok(Some(rec)) if rec.role != me.role)
    }

    pub(crate) async fn maybe_renew(self: &Arc<Self>) {
        let Some(me) = self.identity() else {
            return;
        };
        let due = match berth_net::validity_pem(&me.cert_pem) {
            Ok((start, end)) => {
                unix_now() >= renew_at(start, end, berth_model::fnv1a64(me.cert_pem.as_bytes()))
            }
            Err(_) => true,
        };
        let ca_changed = self
            .cluster_record()
            .is_some_and(|rec| rec.trust_bundle() != me.ca_pem);
        if !due && !ca_changed && !self.role_changed() {
            return;
        }
        let now = berth_watchdog::boottime();
        let failed_at = *self.last_renewal.lock().unwrap_or_else(|e| e.into_inner());
        if failed_at.is_some_and(|t| now < t + RETRY) {
            return;
        }
        let outcome = self.renew().await;
        *self.last_renewal.lock().unwrap_or_else(|e| e.into_inner()) =
            outcome.is_err().then_some(now);
        if let Err(e) = outcome {
            self.emit(format!("certificate renewal failed: {e}"));
        }
    }

    async fn renew(self: &Arc<Self>) -> Result<(), ClusterError> {
        let Some(mut me) = self.identity() else {
            return Ok(());
        };
        // A locked manager renews once unlocked: a renewal hands it the
        // seal key, which only the unlock key may give back.
        if me.is_locked() {
            return Ok(());
        }
        let addr = self.leader_addr()?;
        // A new key each time; only its public half travels.
        let key = berth_net::NodeKey::generate(&me.node)?;
        let reply: JoinReply = self
            .call(
                &addr,
                server::PATH_RENEW,
                &RenewRequest { csr: key.csr_pem },
            )
            .await?;
        me.cert_pem = reply.cert_pem;
        me.key_pem = key.key_pem;
        me.ca_pem = reply.ca_pem;
        me.role = reply.role;
        // A demoted manager forgets the seal key in every form; a promoted
        // one seals it at once when autolock is on.
        if reply.seal_key.is_none() {
            me.seal_key_locked = None;
        }
        me.seal_key = reply.seal_key;
        me.unlock_key = reply.unlock_key;
        self.reload_identity(me)?;
        self.emit(format!(
            "node certificate renewed ({})",
            reply.role.as_str()
        ));
        Ok(())
    }

    /// Saves a changed identity and puts its certificate to use.
    fn reload_identity(self: &Arc<Self>, id: Identity) -> Result<(), ClusterError> {
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) =
            Some(berth_net::client_config(&id.net())?);
        durable(|| id.save(&self.opts.home))?;
        server::listen(self, &id)?;
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Some(id);
        // Kept connections still present the old certificate.
        self.forget_clients();
        Ok(())
    }

    /// The role the leader's records give `node`: manager only when both
    /// its record and the Raft membership say so.
    fn recorded_role(&self, record_role: NodeRole, id: u64) -> NodeRole {
        if record_role == NodeRole::Manager && self.desired.membership().voters.contains(&id) {
            NodeRole::Manager
        } else {
            NodeRole::Worker
        }
    }

    /// The leader's side: a fresh certificate for the caller, with the
    /// role the leader's records give it.
    pub(crate) async fn issue(
        &self,
        caller: &Caller,
        req: RenewRequest,
    ) -> Result<JoinReply, ClusterError> {
        if !self.desired.is_leader() {
            return Err(ClusterError::NoLeader(Some(
                "certificates are renewed by the leader".into(),
            )));
        }
        let (rec, seal) = self.manager_secrets()?;
        let mut node = self
            .node_record(&caller.node)?
            .ok_or_else(|| ClusterError::Forbidden(format!("{} is not a member", caller.node)))?;
        let role = self.recorded_role(node.role, node.id);
        let ca = rec.ca(&seal)?;
        let ip = node
            .addr
            .parse::<std::net::SocketAddr>()
            .map(|sa| sa.ip().to_string())
            .map_err(|_| {
                ClusterError::Conflict(format!("node {} has a bad address", caller.node))
            })?;
        let cert_pem = ca
            .issue_for(
                &caller.node,
                net_role(role),
                &[ip],
                berth_net::DEFAULT_NODE_CERT_VALIDITY,
                &req.csr,
            )
            .map_err(|e| ClusterError::BadInput(e.to_string()))?;
        // Record which CA the node's certificate now comes from; once every
        // node has one from the current CA, the previous one is dropped.
        let fingerprint = ca.fingerprint();
        if node.ca.as_deref() != Some(fingerprint.as_str()) {
            node.ca = Some(fingerprint.clone());
            self.submit(Command::Node(NodeWrite::Put(node.clone())))
                .await?;
        }
        let rotated = rec.ca_previous_pem.is_some()
            && self
                .node_records()
                .iter()
                .all(|n| n.ca.as_deref() == Some(fingerprint.as_str()));
        let bundle = if rotated {
            let done = ClusterPatch {
                ca_previous_pem: Some(None),
                ..Default::default()
            };
            self.submit(Command::Cluster(ClusterWrite::Patch(done)))
                .await?;
            self.emit("CA rotation complete: every node has a certificate from the new CA; the previous CA is no longer trusted".into());
            rec.ca_cert_pem.clone()
        } else {
            rec.trust_bundle()
        };
        let unlock_key = self.unlock_key_for(role, &rec, &seal);
        Ok(JoinReply {
            cluster: rec.name,
            cluster_id: rec.id,
            node_id: node.id,
            role,
            cert_pem,
            ca_pem: bundle,
            seal_key: (role == NodeRole::Manager).then(|| seal.to_hex()),
            unlock_key,
        })
    }
}

/// Runs fsyncing work without stalling the runtime's other tasks.
pub(crate) fn durable<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[cfg(test)]
mod tests {
    use super::renew_at;

    #[test]
    fn renewal_falls_between_half_and_four_fifths_of_the_lifetime() {
        let (start, end) = (1_000, 1_000 + 90 * 86_400);
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..2_000u64 {
            let at = renew_at(start, end, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            assert!(at >= start + (end - start) / 2, "{at}");
            assert!(at <= start + (end - start) * 8 / 10, "{at}");
            seen.insert(at);
        }
        assert!(
            seen.len() > 100,
            "renewal points do not spread: {}",
            seen.len()
        );
    }
}
