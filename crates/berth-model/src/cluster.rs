//! The cluster as desired state records it and as the leader sees it:
//! node records, roles, liveness and the view `cluster status` prints.

use crate::status::Avail;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    Worker,
    Manager,
}

impl NodeRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Manager => "manager",
            NodeRole::Worker => "worker",
        }
    }
}

/// `node/<name>` in desired state: one member node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub name: String,
    pub id: u64,
    /// `host:port` of the node listener.
    pub addr: String,
    pub role: NodeRole,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Takes no new instances, and its instances move elsewhere.
    #[serde(default)]
    pub drain: bool,
    /// Takes no new instances; what runs stays.
    #[serde(default)]
    pub frozen: bool,
    /// Fingerprint of the CA that issued the node's current certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
}

/// One instance as a node reports it in its heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    pub path: String,
    pub avail: Avail,
    pub frozen: bool,
    /// The version of each `sec`/`cfg` value the instance holds, the
    /// oldest one when its containers differ.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub values: std::collections::BTreeMap<String, u64>,
    /// A container runs an older config ("config changed").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
    /// A resource's restart budget is spent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    /// The worst health of its containers that have a check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::health::HealthState>,
    /// What its check said when not healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// The config the report was made against (`ObjectStatus::config_hash`).
    #[serde(default)]
    pub config_hash: u64,
    /// The images its containers run where a deploy pinned them (digests).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

impl InstanceReport {
    pub fn of(s: &crate::status::ObjectStatus) -> InstanceReport {
        let mut values = std::collections::BTreeMap::new();
        for (name, v) in s.resources.iter().flat_map(|r| r.values.iter()) {
            values
                .entry(name.clone())
                .and_modify(|old: &mut u64| *old = (*old).min(*v))
                .or_insert(*v);
        }
        use crate::health::HealthState;
        let rank = |h: HealthState| match h {
            HealthState::Healthy => 0,
            HealthState::Starting => 1,
            HealthState::Unhealthy => 2,
        };
        InstanceReport {
            path: s.path.clone(),
            avail: s.avail,
            frozen: s.frozen,
            values,
            stale: s.resources.iter().any(|r| r.config_changed),
            failed: s.resources.iter().any(|r| r.failed),
            health: s
                .resources
                .iter()
                .filter_map(|r| r.health.as_ref().map(|h| h.state))
                .max_by_key(|h| rank(*h)),
            why: s
                .resources
                .iter()
                .filter_map(|r| r.health.as_ref())
                .filter(|h| h.state != HealthState::Healthy)
                .max_by_key(|h| rank(h.state))
                .map(|h| h.output.clone()),
            config_hash: s.config_hash,
            images: s.resources.iter().filter_map(|r| r.image.clone()).collect(),
        }
    }
}

/// Node liveness as the leader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Up,
    Down,
    Unknown,
}

/// One node in `cluster status` / `node ls`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeInfo {
    #[serde(flatten)]
    pub record: NodeRecord,
    pub state: NodeState,
    pub leader: bool,
    pub voter: bool,
    /// Milliseconds since the leader last heard from it.
    pub last_seen_ms: Option<u64>,
    /// Why the node cannot run failover instances, as it last reported
    /// (its fencing watchdog is unavailable, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence_problem: Option<String>,
}

/// The leader's view of the cluster: nodes, and what each reports running.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterView {
    pub cluster: Option<String>,
    pub cluster_id: Option<String>,
    /// Fingerprint of the current cluster CA.
    #[serde(default)]
    pub ca: Option<String>,
    /// A CA rotation is under way (some node still has an old certificate).
    #[serde(default)]
    pub ca_rotating: bool,
    pub leader: Option<String>,
    pub term: u64,
    pub nodes: Vec<NodeInfo>,
    /// node → instances it reported in its last heartbeat.
    pub instances: BTreeMap<String, Vec<InstanceReport>>,
}

/// What `cluster init`, `cluster join` and `cluster ca rotate` report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub cluster: String,
    pub cluster_id: String,
    pub node: String,
    pub node_id: u64,
    pub role: NodeRole,
    pub advertise: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_token: Option<String>,
}

/// `berth node <name> <op>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum NodeOp {
    /// Sets (`key=value`) and removes (`key`) labels.
    Label {
        #[serde(default)]
        set: Vec<String>,
        #[serde(default)]
        unset: Vec<String>,
    },
    Drain,
    Undrain,
    Freeze,
    Thaw,
    Promote,
    Demote,
    Remove,
}

impl NodeOp {
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeOp::Label { .. } => "label",
            NodeOp::Drain => "drain",
            NodeOp::Undrain => "undrain",
            NodeOp::Freeze => "freeze",
            NodeOp::Thaw => "thaw",
            NodeOp::Promote => "promote",
            NodeOp::Demote => "demote",
            NodeOp::Remove => "remove",
        }
    }
}
