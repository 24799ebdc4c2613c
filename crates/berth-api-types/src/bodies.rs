//! Request and response bodies shared by the API and its client.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CreateRequest {
    pub path: String,
    #[serde(default)]
    pub kws: Vec<String>,
    #[serde(default)]
    pub config: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EditRequest {
    pub selector: String,
    #[serde(default)]
    pub set: Vec<String>,
    #[serde(default)]
    pub unset: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionRequest {
    pub path: String,
    pub action: berth_agent::ActionKind,
    /// Only on this node, even in a cluster.
    #[serde(default)]
    pub local: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SwitchRequest {
    pub path: String,
    /// The node to run on; `None` lets the scheduler choose (giveback).
    pub to: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitRequest {
    pub advertise: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    pub addr: String,
    pub token: String,
    pub advertise: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRequest {
    pub role: berth_agent::cluster::NodeRole,
    #[serde(default)]
    pub rotate: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenReply {
    pub role: berth_agent::cluster::NodeRole,
    pub token: String,
    pub rotated: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeOpRequest {
    pub node: String,
    #[serde(flatten)]
    pub op: berth_agent::cluster::NodeOp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeywordValue {
    pub path: String,
    pub keyword: String,
    pub value: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub version: String,
    pub nodename: String,
    pub pid: u32,
    pub home: String,
    pub host_docker_socket: String,
    pub objects: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageReply {
    pub message: String,
}
