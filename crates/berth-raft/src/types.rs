use serde::{Deserialize, Serialize};
use std::fmt;

/// A desired-state write, replicated through the Raft log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Put {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// Sets top-level fields of the JSON object stored at `key`, leaving the
    /// others as they are; nothing happens when the key is absent. This is
    /// how writers of different fields avoid undoing each other.
    Patch {
        key: String,
        fields: serde_json::Map<String, serde_json::Value>,
    },
    /// Sets (or, with `None`, removes) entry `entry` of the map in field
    /// `field` of the JSON object stored at `key`; the field goes when its
    /// map is empty. Nodes writing their own entry never undo each other's.
    /// Nothing happens when the key is absent.
    PatchEntry {
        key: String,
        field: String,
        entry: String,
        value: Option<serde_json::Value>,
    },
    /// Several requests applied in one entry: all or none.
    Batch(Vec<Request>),
    /// A write to the Consul-compatible KV store or its sessions, decided
    /// when applied (`berth_kv::apply`).
    Kv(berth_kv::Op),
}

impl Request {
    /// Appends the keys this request names (a KV operation's keys are
    /// known only once it is applied).
    pub fn keys(&self, out: &mut Vec<String>) {
        match self {
            Request::Put { key, .. }
            | Request::Delete { key }
            | Request::Patch { key, .. }
            | Request::PatchEntry { key, .. } => out.push(key.clone()),
            Request::Batch(v) => v.iter().for_each(|r| r.keys(out)),
            Request::Kv(_) => {}
        }
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Put { key, .. } => write!(f, "put {key}"),
            Request::Delete { key } => write!(f, "delete {key}"),
            Request::Patch { key, .. } => write!(f, "patch {key}"),
            Request::PatchEntry {
                key, field, entry, ..
            } => write!(f, "patch {key} {field}.{entry}"),
            Request::Batch(v) => write!(f, "batch of {}", v.len()),
            Request::Kv(_) => write!(f, "kv operation"),
        }
    }
}

/// What applying a [`Request`] returns: the previous value of the key (of
/// the last request of a batch).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub previous: Option<String>,
    /// What a KV operation returned (of the last one of a batch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<berth_kv::Outcome>,
}

openraft::declare_raft_types!(
    /// berth's Raft types: node ids are u64, nodes carry an address.
    pub TypeConfig:
        D = Request,
        R = Response,
);
