//! Heartbeats and the failover lease (`design/failover.md`).
//!
//! Design note:
//! - Every member heartbeats to the leader each `heartbeat` period, with
//!   the availability of its instances. The leader answers only after a
//!   read barrier proves it still leads a quorum, and the answer renews the
//!   sender's lease from the moment the heartbeat was *sent*.
//! - The leader heartbeats to itself through the same barrier, so a leader
//!   cut off from its quorum fences its own failover instances too.
//! - A watcher checks the lease every 100 ms and wakes every instance
//!   monitor when it runs out or is granted again; monitors then stop or
//!   start failover instances.
//! - Certificates renew here too: when 50-80 % of their lifetime passed (a
//!   random point per node), or when the node's role changed.

use super::clock::boottime;
use super::records::{Heartbeat, HeartbeatAck, InstanceReport, NodeRecord};
use super::{server, Fence, LeaderView};
use crate::agent::Agent;
use crate::error::AgentError;
use std::sync::Arc;
use std::time::Duration;

const FENCE_CHECK: Duration = Duration::from_millis(100);
/// After a failed heartbeat, the next one is sent this soon.
const RETRY: Duration = Duration::from_millis(200);

impl LeaderView {
    /// Keeps the view tied to one leadership term: a new term starts empty.
    pub(crate) fn sync(&mut self, is_leader: bool, term: u64, now: Duration) {
        if !is_leader {
            self.leader_since = None;
            return;
        }
        if self.leader_since.is_none() || self.term != term {
            self.leader_since = Some(now);
            self.term = term;
            self.liveness.clear();
            self.reports.clear();
        }
    }
}

pub(crate) async fn run(agent: Arc<Agent>) {
    tokio::spawn(watch_fence(agent.clone()));
    let period = agent.cluster.timing.heartbeat;
    loop {
        if !agent.cluster.is_clustered() {
            tokio::time::sleep(period).await;
            continue;
        }
        let started = tokio::time::Instant::now();
        let budget = period.max(Duration::from_millis(500));
        let ok = match tokio::time::timeout(budget, beat(&agent)).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::debug!("heartbeat: {e}");
                false
            }
            Err(_) => {
                tracing::debug!("heartbeat: no answer within {budget:?}");
                false
            }
        };
        super::renew::maybe_renew(&agent).await;
        // A failed heartbeat (a leader just died, an election) is retried
        // soon: the lease tolerates about one lost period.
        let next = if ok { period } else { RETRY.min(period) };
        tokio::time::sleep_until(started + next).await;
    }
}

fn reports(agent: &Agent) -> Vec<InstanceReport> {
    agent
        .statuses()
        .into_iter()
        .map(|s| InstanceReport {
            path: s.path,
            avail: s.avail,
            frozen: s.frozen,
        })
        .collect()
}

async fn beat(agent: &Arc<Agent>) -> Result<(), AgentError> {
    let Some(me) = agent.cluster.identity() else {
        return Ok(());
    };
    let sent = boottime();
    if agent.desired.is_leader() {
        agent.desired.linearizable().await?;
        let hb = Heartbeat {
            node: me.node.clone(),
            instances: reports(agent),
        };
        record(agent, hb);
        agent.cluster.renew(
            sent,
            agent.cluster.timing.lease,
            agent.desired.applied_index(),
        );
        return Ok(());
    }
    let (_, addr) = agent
        .desired
        .leader()
        .ok_or_else(|| AgentError::Cluster("no leader known".into()))?;
    let ack: HeartbeatAck = agent
        .cluster
        .call(
            &addr,
            server::PATH_HEARTBEAT,
            &Heartbeat {
                node: me.node,
                instances: reports(agent),
            },
        )
        .await?;
    agent
        .cluster
        .renew(sent, Duration::from_millis(ack.lease_ms), ack.applied);
    Ok(())
}

fn record(agent: &Agent, hb: Heartbeat) {
    let now = boottime();
    let mut view = agent.cluster.view.lock().unwrap_or_else(|e| e.into_inner());
    view.sync(true, agent.desired.current_term(), now);
    view.liveness.observe(&hb.node, now);
    view.reports.insert(hb.node, hb.instances);
}

/// The leader's side: acknowledged only once a read barrier confirmed this
/// node still leads a quorum of managers.
pub(crate) async fn receive(agent: &Arc<Agent>, hb: Heartbeat) -> Result<HeartbeatAck, AgentError> {
    if !agent.desired.is_leader() {
        return Err(AgentError::Cluster("not the leader".into()));
    }
    let known = agent
        .desired
        .get_json::<NodeRecord>(&super::records::node_key(&hb.node))?
        .is_some();
    if !known {
        return Err(AgentError::Forbidden(format!(
            "{} is not a member of this cluster",
            hb.node
        )));
    }
    agent.desired.linearizable().await?;
    record(agent, hb);
    Ok(HeartbeatAck {
        lease_ms: agent.cluster.timing.lease.as_millis() as u64,
        applied: agent.desired.applied_index(),
    })
}

/// Wakes every monitor when the fence state changes.
async fn watch_fence(agent: Arc<Agent>) {
    loop {
        tokio::time::sleep(FENCE_CHECK).await;
        let (before, now) = agent.cluster.note_fence(agent.desired.applied_index());
        if before == now {
            continue;
        }
        let line = match (before, now) {
            (_, Fence::Fenced) => Some("failover lease lost: stopping failover instances here"),
            (Fence::Fenced | Fence::Starting, Fence::Valid | Fence::CatchingUp) => {
                Some("failover lease granted")
            }
            _ => None,
        };
        if let Some(line) = line {
            agent.events.emit(None, None, line.into(), None);
        }
        agent.wake_all();
    }
}

/// Whether this node's role in desired state differs from its certificate's.
pub(crate) fn role_changed(agent: &Agent) -> bool {
    let Some(me) = agent.cluster.identity() else {
        return false;
    };
    match agent
        .desired
        .get_json::<NodeRecord>(&super::records::node_key(&me.node))
    {
        Ok(Some(rec)) => rec.role != me.role,
        _ => false,
    }
}
