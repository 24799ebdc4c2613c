//! Heartbeats (`design/failover.md`).
//!
//! Design note:
//! - Every member heartbeats to the leader twice each `heartbeat` period
//!   ([`BEATS_PER_PERIOD`]), with the availability of its instances (read
//!   from the status bus) and, when it has one, the reason it cannot run failover instances. The
//!   leader answers only after a read barrier proves it still leads a
//!   quorum, and the answer renews the sender's lease from the moment the
//!   heartbeat was *sent* (`lease`).
//! - The leader heartbeats to itself through the same barrier, so a leader
//!   cut off from its quorum fences its own failover instances too.
//! - Certificates renew here too: when 50-80 % of their lifetime passed (a
//!   random point per node), or when the node's role changed.

use crate::records::{Heartbeat, HeartbeatAck};
use crate::{server, Cluster, ClusterError};
use berth_model::cluster::InstanceReport;
use berth_watchdog::boottime;
use std::sync::Arc;
use std::time::Duration;

/// After a failed heartbeat, the next one is sent this soon.
const RETRY: Duration = Duration::from_millis(200);

/// Heartbeats per `heartbeat` period. The lease counts from the last
/// acknowledged one, so when the leader dies a node has at least `lease -
/// period / BEATS_PER_PERIOD` left to reach the next one: 1.5 s with the
/// defaults. With one per period it had 1 s, and an election on busy
/// cores outlasted that: every failover instance of the cluster stopped
/// and started again (`losing_the_leader_bounces_nothing_and_writes_go_on`
/// in tests/cluster.rs, one run in four of that file).
const BEATS_PER_PERIOD: u32 = 2;

pub(crate) async fn run(cluster: Arc<Cluster>) {
    let period = cluster.opts.timing.heartbeat;
    let every = period / BEATS_PER_PERIOD;
    loop {
        if !cluster.is_clustered() {
            tokio::time::sleep(period).await;
            continue;
        }
        let started = tokio::time::Instant::now();
        let budget = period.max(Duration::from_millis(500));
        let ok = match tokio::time::timeout(budget, beat(&cluster)).await {
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
        cluster.maybe_renew().await;
        // A failed heartbeat (a leader just died, an election) is retried
        // soon: the lease tolerates about one lost period.
        let next = if ok { every } else { RETRY.min(every) };
        tokio::time::sleep_until(started + next).await;
    }
}

impl Cluster {
    fn heartbeat_now(&self, node: String) -> Heartbeat {
        Heartbeat {
            node,
            instances: self
                .status
                .instances()
                .iter()
                .map(|s| InstanceReport::of(s))
                .collect(),
            fence_problem: self.lease.problem(),
        }
    }

    fn record(&self, hb: Heartbeat) {
        let now = boottime();
        let mut view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        view.sync(true, self.desired.current_term(), now);
        view.record(hb.node, hb.instances, hb.fence_problem, now);
    }

    /// The leader's side: acknowledged only once a read barrier confirmed
    /// this node still leads a quorum of managers.
    pub(crate) async fn receive(&self, hb: Heartbeat) -> Result<HeartbeatAck, ClusterError> {
        if !self.desired.is_leader() {
            return Err(ClusterError::NoLeader(Some("not the leader".into())));
        }
        if self.node_record(&hb.node)?.is_none() {
            return Err(ClusterError::Forbidden(format!(
                "{} is not a member of this cluster",
                hb.node
            )));
        }
        self.desired.linearizable().await?;
        self.record(hb);
        Ok(HeartbeatAck {
            lease_ms: self.opts.timing.lease.as_millis() as u64,
            applied: self.desired.applied_index(),
        })
    }
}

async fn beat(cluster: &Arc<Cluster>) -> Result<(), ClusterError> {
    let Some(me) = cluster.identity() else {
        return Ok(());
    };
    let sent = boottime();
    if cluster.desired.is_leader() {
        cluster.desired.linearizable().await?;
        cluster.record(cluster.heartbeat_now(me.node));
        cluster.lease.renew(
            sent,
            cluster.opts.timing.lease,
            cluster.desired.applied_index(),
        );
        return Ok(());
    }
    let addr = cluster.leader_addr()?;
    let ack: HeartbeatAck = cluster
        .call(
            &addr,
            server::PATH_HEARTBEAT,
            &cluster.heartbeat_now(me.node),
        )
        .await?;
    cluster
        .lease
        .renew(sent, Duration::from_millis(ack.lease_ms), ack.applied);
    Ok(())
}
