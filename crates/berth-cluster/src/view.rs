//! The leader's soft view of the cluster (liveness, instance reports, fence
//! problems), rebuilt from heartbeats after every election, and the
//! `cluster status` view built from it and from the node records.

use crate::records::{ClusterRecord, CLUSTER_KEY, NODE_PREFIX};
use crate::{server, Cluster, ClusterError};
use berth_manager::liveness::{Liveness, Timing};
use berth_model::cluster::{ClusterView, InstanceReport, NodeInfo, NodeRecord, NodeState};
use berth_watchdog::boottime;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub(crate) struct LeaderView {
    pub liveness: Liveness,
    /// When (boot clock) this node became leader in `term`.
    pub leader_since: Option<Duration>,
    pub term: u64,
    pub reports: BTreeMap<String, Vec<InstanceReport>>,
    /// node → why it cannot run failover instances, from its heartbeat.
    pub fence_problems: BTreeMap<String, String>,
}

impl LeaderView {
    pub(crate) fn new(timing: Timing) -> LeaderView {
        LeaderView {
            liveness: Liveness::new(timing),
            leader_since: None,
            term: 0,
            reports: BTreeMap::new(),
            fence_problems: BTreeMap::new(),
        }
    }

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
            self.fence_problems.clear();
        }
    }

    /// The earliest time a lease the previous leader acknowledged could
    /// still have run from: every acknowledgement it gave was sent at least
    /// one election quiet period before this leader won. Failover and the
    /// node states shown both count from here.
    pub(crate) fn lease_origin(&self) -> Option<Duration> {
        self.leader_since
            .map(|t| t.saturating_sub(berth_store::ELECTION_QUIET))
    }

    /// The state `cluster status` shows for `node`: never "unknown" once
    /// its failover instances may run elsewhere.
    pub(crate) fn shown_state(&self, node: &str, now: Duration) -> NodeState {
        self.liveness.shown_state(node, now, self.lease_origin())
    }

    /// A heartbeat from `node` arrived at `now`.
    pub(crate) fn record(
        &mut self,
        node: String,
        instances: Vec<InstanceReport>,
        fence_problem: Option<String>,
        now: Duration,
    ) {
        self.liveness.observe(&node, now);
        match fence_problem {
            Some(p) => self.fence_problems.insert(node.clone(), p),
            None => self.fence_problems.remove(&node),
        };
        self.reports.insert(node, instances);
    }
}

impl Cluster {
    pub fn node_records(&self) -> Vec<NodeRecord> {
        match self.desired.list_json::<NodeRecord>(NODE_PREFIX) {
            Ok((v, _)) => v,
            Err(_) => Vec::new(),
        }
    }

    pub(crate) fn node_record(&self, name: &str) -> Result<Option<NodeRecord>, ClusterError> {
        Ok(self
            .desired
            .get_json::<NodeRecord>(&crate::records::node_key(name))?)
    }

    pub(crate) fn cluster_record(&self) -> Option<ClusterRecord> {
        self.desired.get_json(CLUSTER_KEY).ok().flatten()
    }

    /// This node's view of the cluster: from the leader's memory when it
    /// can be reached, else from the local replica with states unknown.
    pub async fn view(self: &Arc<Self>) -> ClusterView {
        if self.desired.is_leader() || !self.is_clustered() {
            return self.local_view();
        }
        let Ok(addr) = self.leader_addr() else {
            return self.local_view();
        };
        match self.call(&addr, server::PATH_VIEW, &()).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("cluster view from the leader at {addr}: {e}");
                self.local_view()
            }
        }
    }

    /// The view from local state: exact on the leader.
    pub(crate) fn local_view(&self) -> ClusterView {
        let nodes = self.node_records();
        let membership = self.desired.membership();
        let leader = self.desired.leader();
        let is_leader = self.desired.is_leader();
        let now = boottime();
        let info = self.cluster_record();
        let me = self.identity().map(|i| i.node);
        let view = self.view.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = ClusterView {
            cluster: info.as_ref().map(|c| c.name.clone()),
            cluster_id: info.as_ref().map(|c| c.id.clone()),
            ca: info
                .as_ref()
                .and_then(|c| berth_net::fingerprint_pem(&c.ca_cert_pem).ok()),
            ca_rotating: info.as_ref().is_some_and(|c| c.ca_previous_pem.is_some()),
            leader: None,
            term: self.desired.current_term(),
            nodes: Vec::new(),
            instances: if is_leader {
                view.reports.clone()
            } else {
                BTreeMap::new()
            },
        };
        for rec in nodes {
            let is_self = me.as_deref() == Some(rec.name.as_str());
            let lead = leader.as_ref().is_some_and(|(id, _)| *id == rec.id);
            if lead {
                out.leader = Some(rec.name.clone());
            }
            let (state, seen) = if !is_leader {
                (NodeState::Unknown, None)
            } else if is_self {
                (NodeState::Up, Some(Duration::ZERO))
            } else {
                (
                    view.shown_state(&rec.name, now),
                    view.liveness.last_seen(&rec.name, now),
                )
            };
            let fence_problem = if is_self {
                self.lease.problem()
            } else {
                view.fence_problems.get(&rec.name).cloned()
            };
            out.nodes.push(NodeInfo {
                voter: membership.voters.contains(&rec.id),
                leader: lead,
                state,
                last_seen_ms: seen.map(|d| d.as_millis() as u64),
                fence_problem,
                record: rec,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_whose_services_may_fail_over_is_shown_down() {
        let mut v = LeaderView::new(Timing::default());
        v.sync(true, 2, Duration::from_secs(100));
        let origin = v.lease_origin().expect("leader");
        let at = v.liveness.failover_at("node0", origin);
        assert_eq!(v.shown_state("node0", at), NodeState::Down);
    }
}
