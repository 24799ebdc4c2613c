//! Request and response bodies, and query strings, of the API.

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
    /// What errors in `config` are reported against (the user's file).
    #[serde(default)]
    pub config_name: Option<String>,
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
    pub action: berth_model::ActionKind,
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
pub struct DeployRequest {
    pub path: String,
    /// Over `update_parallelism`.
    #[serde(default)]
    pub parallelism: Option<u32>,
    /// Over `update_delay`, in milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
    /// Over `update_order`: `stop-first` or `start-first`.
    #[serde(default)]
    pub order: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PathBody {
    pub path: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InitRequest {
    /// `ip:port` peers dial; the daemon's default route address when absent.
    #[serde(default)]
    pub advertise: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    pub addr: String,
    pub token: String,
    /// `ip:port` peers dial; the address the daemon reaches `addr` from
    /// when absent.
    #[serde(default)]
    pub advertise: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenRequest {
    pub role: berth_model::cluster::NodeRole,
    #[serde(default)]
    pub rotate: bool,
}

/// What `berth cluster autolock` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutolockOp {
    Enable,
    Rotate,
    Disable,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AutolockRequest {
    pub op: AutolockOp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AutolockReply {
    pub enabled: bool,
    /// The new unlock key: shown this once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unlock_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UnlockRequest {
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenReply {
    pub role: berth_model::cluster::NodeRole,
    pub token: String,
    pub rotated: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeOpRequest {
    pub node: String,
    #[serde(flatten)]
    pub op: berth_model::cluster::NodeOp,
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
    /// The host's dockerd, then each private daemon.
    #[serde(default)]
    pub docker: Vec<DockerReport>,
    #[serde(default)]
    pub store: StoreReport,
    #[serde(default)]
    pub cluster: ClusterReport,
}

/// One Docker daemon the node talks to, as the daemon reached it just now.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DockerReport {
    /// `host`, or the path of the object owning a private daemon.
    pub daemon: String,
    pub socket: String,
    pub ok: bool,
    #[serde(default)]
    pub error: Option<String>,
}

/// Whether desired state can be written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoreReport {
    /// `ok`, `degraded` (writes fail, reads are served) or `read-only`.
    pub state: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub since: Option<String>,
}

/// This node's place in the cluster.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterReport {
    /// `standalone`, `leader`, `manager` or `worker`.
    pub role: String,
    #[serde(default)]
    pub leader: Option<String>,
    pub term: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MessageReply {
    pub message: String,
}

/// `?selector=...`: which objects.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SelectorQuery {
    pub selector: String,
    /// An empty selection is an empty list rather than an error (`berth
    /// mon`, `berth ls` with no selector).
    #[serde(default)]
    pub allow_empty: bool,
}

/// `?path=ns/name`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PathQuery {
    pub path: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KeywordQuery {
    pub path: String,
    pub kw: String,
    #[serde(default)]
    pub eval: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventsQuery {
    /// Replay events with a sequence number above this one first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// How many past events to replay when `since` is absent.
    #[serde(default)]
    pub last: usize,
    #[serde(default = "yes")]
    pub follow: bool,
}

fn yes() -> bool {
    true
}

/// An object's config file text, as `print config` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConfigFile {
    pub path: String,
    pub text: String,
}

/// No query string, or no body.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Empty {}
