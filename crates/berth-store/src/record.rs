use berth_model::status::Target;
use serde::{Deserialize, Serialize};

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
}
