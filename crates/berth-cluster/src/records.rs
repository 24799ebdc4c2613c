//! The cluster's own records in replicated desired state, and the messages
//! nodes exchange.

use crate::agent::{ActionKind, ActionOutcome};
use berth_model::status::Avail;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `cluster/info`: the cluster's identity, CA and join tokens. The CA key
/// and the tokens are sealed with the managers' key (`berth_net::SealKey`):
/// workers replicate this record too.
pub const CLUSTER_KEY: &str = "cluster/info";
/// `node/<name>`: one member node.
pub const NODE_PREFIX: &str = "node/";

pub fn node_key(name: &str) -> String {
    format!("{NODE_PREFIX}{name}")
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: String,
    pub id: String,
    pub ca_cert_pem: String,
    pub ca_key_sealed: String,
    pub worker_token_sealed: String,
    pub manager_token_sealed: String,
    pub created: String,
    /// During a CA rotation: the previous CA, still trusted until every
    /// node has a certificate from the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_previous_pem: Option<String>,
}

impl ClusterRecord {
    /// The CA, its key opened with the managers' seal key.
    pub fn ca(&self, seal: &berth_net::SealKey) -> Result<berth_net::ClusterCa, crate::AgentError> {
        let key = String::from_utf8(seal.open(&self.ca_key_sealed)?)
            .map_err(|_| crate::AgentError::Cluster("the stored CA key is not text".into()))?;
        Ok(berth_net::ClusterCa::from_pem(
            &self.name,
            &self.ca_cert_pem,
            &key,
        )?)
    }

    /// The CA certificates nodes trust: the current one first (what join
    /// tokens pin), then the previous one during a rotation.
    pub fn trust_bundle(&self) -> String {
        let mut b = self.ca_cert_pem.clone();
        if let Some(p) = &self.ca_previous_pem {
            if !b.ends_with('\n') {
                b.push('\n');
            }
            b.push_str(p);
        }
        b
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    Manager,
    Worker,
}

impl NodeRole {
    pub fn net(self) -> berth_net::Role {
        match self {
            NodeRole::Manager => berth_net::Role::Manager,
            NodeRole::Worker => berth_net::Role::Worker,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Manager => "manager",
            NodeRole::Worker => "worker",
        }
    }
}

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

/// `POST /join/v1/join`, sent once the joiner pinned the CA.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    pub token: String,
    pub node: String,
    pub advertise: String,
    /// The joiner's certificate signing request: its key stays with it.
    pub csr: String,
}

/// `POST /node/v1/renew`: a new key's signing request.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RenewRequest {
    pub csr: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinReply {
    pub cluster: String,
    pub cluster_id: String,
    pub node_id: u64,
    pub role: NodeRole,
    pub cert_pem: String,
    pub ca_pem: String,
    /// Managers only: the key that opens the CA key and the tokens.
    pub seal_key: Option<String>,
}

/// Asked of the leader.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum MembershipOp {
    /// A node that joined is listening: add it to Raft (learner, and voter
    /// for a manager).
    Add {
        node: String,
    },
    Promote {
        node: String,
    },
    Demote {
        node: String,
    },
    Remove {
        node: String,
    },
}

/// One instance as a node reports it in its heartbeat.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceReport {
    pub path: String,
    pub avail: Avail,
    pub frozen: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: String,
    pub instances: Vec<InstanceReport>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The lease the leader grants, in milliseconds from when the
    /// heartbeat was sent; the worker uses the smaller of this and its own.
    pub lease_ms: u64,
    /// The leader's last applied log index when it answered. The lease
    /// lets the node run failover instances only once its own replica
    /// applied as much: a node back from a partition must first learn
    /// where its services were moved.
    pub applied: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoteAction {
    pub path: String,
    pub action: ActionKind,
    /// The sender's applied index: the receiver acts once it applied as much.
    #[serde(default)]
    pub applied: u64,
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

/// Outcomes of one action fanned out to several nodes.
pub fn merge_outcomes(path: &str, outs: Vec<(String, ActionOutcome)>) -> ActionOutcome {
    let single = outs.len() == 1;
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (node, o) in outs {
        for l in o.lines {
            lines.push(if single { l } else { format!("{node}: {l}") });
        }
        if let Some(e) = o.error {
            errors.push(format!("{node}: {e}"));
        }
    }
    ActionOutcome {
        path: path.to_string(),
        ok: errors.is_empty(),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        lines,
    }
}
