use serde::{Deserialize, Serialize};
use std::fmt;

/// A desired-state write, replicated through the Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Put { key: String, value: String },
    Delete { key: String },
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Put { key, .. } => write!(f, "put {key}"),
            Request::Delete { key } => write!(f, "delete {key}"),
        }
    }
}

/// What applying a [`Request`] returns: the previous value of the key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub previous: Option<String>,
}

openraft::declare_raft_types!(
    /// berth's Raft types: node ids are u64, nodes carry an address.
    pub TypeConfig:
        D = Request,
        R = Response,
);
