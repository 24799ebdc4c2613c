//! Certificate renewal: a node asks a manager for a fresh certificate when
//! a random point between 50 % and 80 % of its certificate's lifetime has
//! passed, or at once when its role in desired state changed (promote,
//! demote). The node makes a new key and sends only its signing request;
//! the reply carries the role from desired state, and the seal key to a
//! manager only.

use super::records::{node_key, JoinReply, NodeRecord, NodeRole, RenewRequest, CLUSTER_KEY};
use super::server;
use crate::agent::Agent;
use crate::error::AgentError;
use berth_store::put_json;
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

pub(crate) async fn maybe_renew(agent: &Arc<Agent>) {
    let Some(me) = agent.cluster.identity() else {
        return;
    };
    let due = match berth_net::validity_pem(&me.cert_pem) {
        Ok((start, end)) => {
            unix_now() >= renew_at(start, end, berth_model::fnv1a64(me.cert_pem.as_bytes()))
        }
        Err(_) => true,
    };
    let ca_changed = agent
        .cluster_record()
        .is_some_and(|rec| rec.trust_bundle() != me.ca_pem);
    if !due && !ca_changed && !super::heartbeat::role_changed(agent) {
        return;
    }
    let now = super::clock::boottime();
    let failed_at = *agent
        .cluster
        .last_renewal
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if failed_at.is_some_and(|t| now < t + RETRY) {
        return;
    }
    let outcome = renew(agent).await;
    *agent
        .cluster
        .last_renewal
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = outcome.is_err().then_some(now);
    if let Err(e) = outcome {
        agent
            .events
            .emit(None, None, format!("certificate renewal failed: {e}"), None);
    }
}

async fn renew(agent: &Arc<Agent>) -> Result<(), AgentError> {
    let Some(mut me) = agent.cluster.identity() else {
        return Ok(());
    };
    // Any manager can issue; prefer the leader, which surely has the record.
    let (_, addr) = agent
        .desired
        .leader()
        .ok_or_else(|| AgentError::Cluster("no leader known".into()))?;
    // A new key each time; only its public half travels.
    let key = berth_net::NodeKey::generate(&me.node)?;
    let reply: JoinReply = agent
        .cluster
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
    me.seal_key = reply.seal_key;
    agent.reload_identity(me)?;
    agent.events.emit(
        None,
        None,
        format!("node certificate renewed ({})", reply.role.as_str()),
        None,
    );
    Ok(())
}

impl Agent {
    /// Saves a changed identity and puts its certificate to use.
    fn reload_identity(self: &Arc<Self>, id: super::Identity) -> Result<(), AgentError> {
        *self.cluster.tls.write().unwrap_or_else(|e| e.into_inner()) =
            Some(berth_net::client_config(&id.net())?);
        crate::durable(|| id.save(&self.opts.home))?;
        server::listen(self, &id)?;
        *self
            .cluster
            .identity
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(id);
        // Kept connections still present the old certificate.
        self.cluster.forget_clients();
        Ok(())
    }
}

/// A manager's side: a fresh certificate for `caller`, with the role
/// desired state gives it.
pub(crate) async fn issue(
    agent: &Arc<Agent>,
    caller: &str,
    req: RenewRequest,
) -> Result<JoinReply, AgentError> {
    let (rec, seal) = agent.manager_secrets()?;
    let node = agent
        .desired
        .get_json::<NodeRecord>(&node_key(caller))?
        .ok_or_else(|| AgentError::Forbidden(format!("{caller} is not a member")))?;
    let ca = rec.ca(&seal)?;
    let ip = node
        .addr
        .parse::<std::net::SocketAddr>()
        .map(|sa| sa.ip().to_string())
        .map_err(|_| AgentError::Cluster(format!("node {caller} has a bad address")))?;
    let cert_pem = ca
        .issue_for(
            caller,
            node.role.net(),
            &[ip],
            berth_net::DEFAULT_NODE_CERT_VALIDITY,
            &req.csr,
        )
        .map_err(|e| AgentError::BadInput(e.to_string()))?;
    // Record which CA the node's certificate now comes from; once every
    // node has one from the current CA, the previous one is dropped.
    let fingerprint = ca.fingerprint();
    if node.ca.as_deref() != Some(fingerprint.as_str()) {
        let mut updated = node.clone();
        updated.ca = Some(fingerprint.clone());
        agent
            .desired
            .write(put_json(&node_key(caller), &updated)?)
            .await?;
    }
    let bundle = if rec.ca_previous_pem.is_some()
        && agent
            .node_records()
            .iter()
            .all(|n| n.ca.as_deref() == Some(fingerprint.as_str()))
    {
        let mut fields = serde_json::Map::new();
        fields.insert("ca_previous_pem".into(), serde_json::Value::Null);
        agent
            .desired
            .write(berth_store::Request::Patch {
                key: CLUSTER_KEY.into(),
                fields,
            })
            .await?;
        agent.events.emit(
            None,
            None,
            "CA rotation complete: every node has a certificate from the new CA; the previous CA is no longer trusted".into(),
            None,
        );
        rec.ca_cert_pem.clone()
    } else {
        rec.trust_bundle()
    };
    Ok(JoinReply {
        cluster: rec.name,
        cluster_id: rec.id,
        node_id: node.id,
        role: node.role,
        cert_pem,
        ca_pem: bundle,
        seal_key: (node.role == NodeRole::Manager).then(|| seal.to_hex()),
    })
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
