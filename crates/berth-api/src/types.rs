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
