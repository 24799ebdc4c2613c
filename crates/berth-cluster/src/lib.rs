//! The cluster side of the agent: membership, the node listener, heartbeats
//! and the failover lease, and the leader's orchestrator.
//!
//! Design note:
//! - Every node runs the same agent. Managers are Raft voters; workers are
//!   Raft learners, so every node reads desired state locally and the
//!   instance monitors work the same everywhere. Secrets in desired state
//!   (the CA key, the join tokens) are sealed with a key only managers hold.
//! - Node-to-node traffic is JSON over HTTP/2 with mutual TLS on one TCP
//!   listener per node (`server`). Only the join endpoints accept a client
//!   without a certificate; Raft endpoints want a manager's.
//! - Observed state (heartbeats, instance reports) lives in the leader's
//!   memory only (`LeaderView`); a new leader starts from nothing and waits
//!   a full failover period before moving anything (`design/failover.md`).
//! - A standalone node has no identity file, no listener and no peers: it
//!   is a one-member Raft cluster and its own leader.

mod actions;
mod admin;
pub(crate) mod clock;
mod heartbeat;
pub(crate) mod identity;
mod join;
mod orchestrator;
pub mod records;
mod renew;
mod server;
pub(crate) mod watchdog;

pub(crate) use actions::placed_action;
pub use admin::NodeOp;
pub use identity::Identity;
pub use join::ClusterSummary;
pub(crate) use orchestrator::Topology;
pub use records::{ClusterView, NodeInfo, NodeRecord, NodeRole, NodeState};

use crate::agent::Agent;
use crate::error::AgentError;
use berth_manager::liveness::{Lease, Liveness, Timing};
use berth_raft::{RpcClient, TlsSlot};
use records::InstanceReport;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How long one node-to-node request may take.
const RPC_TTL: Duration = Duration::from_secs(10);

/// Whether a node may run its failover instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fence {
    /// Not in a cluster: nothing to fence against.
    Standalone,
    /// The lease is valid.
    Valid,
    /// Just started, no lease yet: keep what runs, start nothing.
    Starting,
    /// The lease is valid but this replica has not yet applied what the
    /// leader had when it granted it: keep what runs, start nothing.
    CatchingUp,
    /// The lease ran out: failover instances must stop.
    Fenced,
}

/// The leader's soft state, rebuilt from heartbeats after every election.
#[derive(Default)]
pub(crate) struct LeaderView {
    pub liveness: Liveness,
    /// When (boot clock) this node became leader in `term`.
    pub leader_since: Option<Duration>,
    pub term: u64,
    pub reports: BTreeMap<String, Vec<InstanceReport>>,
}

struct LeaseState {
    lease: Lease,
    /// Whether any heartbeat was acknowledged since the agent started.
    granted: bool,
    /// The replica must have applied this index for the lease to count.
    required_index: u64,
    /// The last fence decision, to notice transitions.
    last: Fence,
}

pub struct Cluster {
    pub(crate) identity: RwLock<Option<Identity>>,
    /// Client TLS for peers; shared with the Raft network.
    pub(crate) tls: TlsSlot,
    pub timing: Timing,
    pub(crate) view: Mutex<LeaderView>,
    lease: Mutex<LeaseState>,
    started: Duration,
    clients: Mutex<HashMap<String, Arc<RpcClient>>>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
    server_tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
    last_renewal: Mutex<Option<Duration>>,
    pub(crate) watchdog: watchdog::WatchdogLink,
}

impl Cluster {
    pub(crate) fn new(
        identity: Option<Identity>,
        timing: Timing,
        watchdog: watchdog::WatchdogLink,
    ) -> Result<Cluster, AgentError> {
        let tls = TlsSlot::default();
        if let Some(id) = &identity {
            *tls.write().unwrap_or_else(|e| e.into_inner()) =
                Some(berth_net::client_config(&id.net())?);
        }
        Ok(Cluster {
            identity: RwLock::new(identity),
            tls,
            timing,
            view: Mutex::new(LeaderView {
                liveness: Liveness::new(timing),
                ..Default::default()
            }),
            lease: Mutex::new(LeaseState {
                lease: Lease::new(timing),
                granted: false,
                required_index: 0,
                last: Fence::Starting,
            }),
            started: clock::boottime(),
            clients: Mutex::new(HashMap::new()),
            listener: Mutex::new(None),
            server_tls: RwLock::new(None),
            last_renewal: Mutex::new(None),
            watchdog,
        })
    }

    pub fn identity(&self) -> Option<Identity> {
        self.identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn is_clustered(&self) -> bool {
        self.identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Whether failover instances may run here now, given the index the
    /// local replica has applied.
    pub fn fence(&self, applied: u64) -> Fence {
        if !self.is_clustered() {
            return Fence::Standalone;
        }
        let now = clock::boottime();
        let st = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        if st.lease.valid(now) {
            if applied >= st.required_index {
                Fence::Valid
            } else {
                Fence::CatchingUp
            }
        } else if !st.granted && now < self.started + self.timing.lease {
            Fence::Starting
        } else {
            Fence::Fenced
        }
    }

    /// A heartbeat sent at `sent` (boot clock) was acknowledged, granting
    /// `granted`; the shorter of that and the local lease applies.
    /// `applied` is the leader's applied index when it answered.
    ///
    /// The watchdog learns the new deadline first, so it never holds an
    /// older one while the agent believes its lease runs.
    fn renew(&self, sent: Duration, granted: Duration, applied: u64) {
        let shorten = self.timing.lease.saturating_sub(granted);
        let from = sent.saturating_sub(shorten);
        let kill_at = from + self.timing.lease + self.timing.stop_grace * 3 / 4;
        let _ = self.watchdog.lease(kill_at);
        let mut st = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        st.lease.renewed(from);
        st.granted = true;
        st.required_index = st.required_index.max(applied);
    }

    /// The fence state at the last call, and now.
    fn note_fence(&self, applied: u64) -> (Fence, Fence) {
        let f = self.fence(applied);
        let mut st = self.lease.lock().unwrap_or_else(|e| e.into_inner());
        let before = std::mem::replace(&mut st.last, f);
        (before, f)
    }

    /// One JSON request to the node listening at `addr`.
    pub(crate) async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
    ) -> Result<Resp, AgentError> {
        self.call_within(addr, path, req, RPC_TTL).await
    }

    /// [`Cluster::call`] with its own time limit, for requests that wait
    /// on Docker (an action's stop timeout alone can exceed `RPC_TTL`). A
    /// dead peer is still noticed within seconds: dialling is bounded, and
    /// the connection's HTTP/2 keep-alive fails a silent one.
    pub(crate) async fn call_within<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, AgentError> {
        let client = self
            .clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(addr.to_string())
            .or_insert_with(|| Arc::new(RpcClient::new(addr.to_string(), self.tls.clone())))
            .clone();
        client
            .call(path, req, ttl)
            .await
            .map_err(|e| AgentError::Cluster(e.to_string()))
    }

    fn stop_listener(&self) {
        if let Some(h) = self
            .listener
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            h.abort();
        }
        *self.server_tls.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn forget_clients(&self) {
        self.clients
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Sends writes a non-leader receives to the leader's node listener.
struct LeaderForward(std::sync::Weak<Agent>);

impl berth_store::Forward for LeaderForward {
    fn forward(
        &self,
        addr: String,
        req: berth_store::Request,
    ) -> berth_store::BoxFuture<'static, Result<(berth_store::Response, u64), String>> {
        let agent = self.0.clone();
        Box::pin(async move {
            let agent = agent.upgrade().ok_or("the daemon is shutting down")?;
            agent
                .cluster
                .call(&addr, server::PATH_WRITE, &req)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// Starts the cluster loops: the node listener (when a member), the
/// heartbeat sender and the orchestrator. Called once at agent start.
pub(crate) fn start(agent: &Arc<Agent>) -> Result<(), AgentError> {
    agent
        .desired
        .set_forwarder(Arc::new(LeaderForward(Arc::downgrade(agent))));
    if let Some(id) = agent.cluster.identity() {
        server::listen(agent, &id)?;
    }
    tokio::spawn(heartbeat::run(agent.clone()));
    tokio::spawn(orchestrator::run(agent.clone()));
    Ok(())
}

impl Agent {
    /// Whether failover instances may run on this node now.
    pub fn fence(&self) -> Fence {
        self.cluster.fence(self.desired.applied_index())
    }

    /// This node's view of the cluster: from the leader's memory when it
    /// can be reached, else from the local replica with states unknown.
    pub async fn cluster_view(self: &Arc<Self>) -> Result<ClusterView, AgentError> {
        if self.desired.is_leader() || !self.cluster.is_clustered() {
            return Ok(self.local_view());
        }
        let Some((_, addr)) = self.desired.leader() else {
            return Ok(self.local_view());
        };
        match self.cluster.call(&addr, server::PATH_VIEW, &()).await {
            Ok(v) => Ok(v),
            Err(e) => {
                tracing::warn!("cluster view from the leader at {addr}: {e}");
                Ok(self.local_view())
            }
        }
    }

    /// The view from local state: exact on the leader.
    pub(crate) fn local_view(&self) -> ClusterView {
        let nodes = self.node_records();
        let membership = self.desired.membership();
        let leader = self.desired.leader();
        let is_leader = self.desired.is_leader();
        let now = clock::boottime();
        let view = self.cluster.view.lock().unwrap_or_else(|e| e.into_inner());
        let info = self.cluster_record();
        let identity = self.cluster.identity();
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
            let is_self = identity.as_ref().is_some_and(|i| i.node == rec.name);
            let lead = leader.as_ref().is_some_and(|(id, _)| *id == rec.id);
            if lead {
                out.leader = Some(rec.name.clone());
            }
            let (state, seen) = if !is_leader {
                (NodeState::Unknown, None)
            } else if is_self {
                (NodeState::Up, Some(Duration::ZERO))
            } else {
                match view.liveness.state(&rec.name, now) {
                    berth_manager::liveness::NodeState::Up => {
                        (NodeState::Up, view.liveness.last_seen(&rec.name, now))
                    }
                    berth_manager::liveness::NodeState::Down { .. } => {
                        (NodeState::Down, view.liveness.last_seen(&rec.name, now))
                    }
                    // Silent for as long as this node has led: as good as down.
                    berth_manager::liveness::NodeState::Unknown
                        if view
                            .leader_since
                            .is_some_and(|t| now >= t + self.cluster.timing.down_after) =>
                    {
                        (NodeState::Down, None)
                    }
                    berth_manager::liveness::NodeState::Unknown => (NodeState::Unknown, None),
                }
            };
            out.nodes.push(NodeInfo {
                voter: membership.voters.contains(&rec.id),
                leader: lead,
                state,
                last_seen_ms: seen.map(|d| d.as_millis() as u64),
                record: rec,
            });
        }
        out
    }

    pub(crate) fn node_records(&self) -> Vec<NodeRecord> {
        match self.desired.list_json::<NodeRecord>(records::NODE_PREFIX) {
            Ok((v, _)) => v,
            Err(_) => Vec::new(),
        }
    }

    pub(crate) fn cluster_record(&self) -> Option<records::ClusterRecord> {
        self.desired.get_json(records::CLUSTER_KEY).ok().flatten()
    }
}
