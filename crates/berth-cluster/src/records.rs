//! The cluster's own records in replicated desired state, and the messages
//! nodes exchange.

use crate::command::UserRef;
use crate::ClusterError;
use berth_model::cluster::{InstanceReport, NodeRole};
use berth_model::ActionKind;
use serde::{Deserialize, Serialize};

/// `cluster/info`: the cluster's identity, CA and join tokens. The CA key
/// and the tokens are sealed with the managers' key (`berth_net::SealKey`):
/// workers replicate this record too.
pub const CLUSTER_KEY: &str = "cluster/info";
/// `node/<name>`: one member node.
pub const NODE_PREFIX: &str = "node/";

pub fn node_key(name: &str) -> String {
    format!("{NODE_PREFIX}{name}")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Autolock: the unlock key, sealed with the seal key, so that every
    /// manager seals its own copy of the seal key with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_key_sealed: Option<String>,
}

impl ClusterRecord {
    /// The CA, its key opened with the managers' seal key.
    pub fn ca(&self, seal: &berth_net::SealKey) -> Result<berth_net::ClusterCa, ClusterError> {
        let key = String::from_utf8(seal.open(&self.ca_key_sealed)?)
            .map_err(|_| ClusterError::Conflict("the stored CA key is not text".into()))?;
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

/// A change to some fields of the cluster record; the others stay.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_token_sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_token_sealed: Option<String>,
    /// `Some(None)` ends a CA rotation: the previous CA is trusted no more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_previous_pem: Option<Option<String>>,
}

/// The Raft role matching a node role.
pub fn net_role(role: NodeRole) -> berth_net::Role {
    match role {
        NodeRole::Manager => berth_net::Role::Manager,
        NodeRole::Worker => berth_net::Role::Worker,
    }
}

pub fn node_role(role: berth_net::Role) -> NodeRole {
    match role {
        berth_net::Role::Manager => NodeRole::Manager,
        berth_net::Role::Worker => NodeRole::Worker,
    }
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

/// `POST /node/v1/login`: a login a worker received, for the leader to
/// check and sign (workers hold no signing key). `by` is the worker's
/// view of the request: its node, source and request id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardedLogin {
    pub by: crate::command::UserRef,
    pub user: String,
    pub password: String,
    pub ttl_secs: u64,
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
    /// Managers only, with autolock: the unlock key, so that the seal key
    /// is never written in clear, not even before the cluster record
    /// reaches the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_key: Option<String>,
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

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Heartbeat {
    pub node: String,
    pub instances: Vec<InstanceReport>,
    /// Why the node cannot run failover instances, if it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence_problem: Option<String>,
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

/// `POST /node/v1/deploy`: a deploy asked on another node, run by the
/// leader, which reads every node's reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ForwardedDeploy {
    pub path: String,
    pub args: crate::deploy::DeployArgs,
    /// Whom it is for: a user of the sending node.
    pub by: UserRef,
    /// The sender's applied index: the leader deploys once it applied as
    /// much (the config the user just wrote).
    pub applied: u64,
}

/// `POST /node/v1/action`: run `action` on the receiver's instance.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoteAction {
    pub path: String,
    pub action: ActionKind,
    /// Whom the action is for: a user of the sending node.
    pub by: UserRef,
    /// The sender's applied index: the receiver acts once it applied as much.
    #[serde(default)]
    pub applied: u64,
}
