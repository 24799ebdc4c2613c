use crate::desired::{obj_key, patch_json, put_json};
use crate::StoreError;
use berth_model::status::Target;
use berth_raft::Request;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The desired state of one object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Canonical path string (`ns/name`).
    pub path: String,
    /// The last config text that passed validation. The agent runs this one,
    /// even when the file on disk was since edited into an invalid state.
    pub config: String,
    pub target: Target,
    pub frozen: bool,
    /// The nodes chosen to run the object's instances, written by the
    /// leader with the target. Empty until the object is first started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub placement: Vec<String>,
    /// Nodes where the instance stayed unhealthy under
    /// `on_unhealthy=failover`, with why: the orchestrator places it
    /// elsewhere while it can. Each node writes its own entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub unhealthy_on: BTreeMap<String, String>,
}

/// The field of [`ObjectRecord::unhealthy_on`], for entry patches.
pub const UNHEALTHY_ON: &str = "unhealthy_on";

impl ObjectRecord {
    /// Puts the whole record.
    pub fn put(&self) -> Result<Request, StoreError> {
        put_json(&obj_key(&self.path), self)
    }
}

/// Removes object `path`'s record.
pub fn delete_object(path: &str) -> Request {
    Request::Delete { key: obj_key(path) }
}

/// A change to some fields of an object's record; the others stay as they
/// are, so an action and an edit racing each other never undo one another.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ObjectPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frozen: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Vec<String>>,
}

impl ObjectPatch {
    /// The patch as a request on object `path` (nothing happens if absent).
    pub fn request(&self, path: &str) -> Result<Request, StoreError> {
        patch_json(&obj_key(path), self)
    }
}
