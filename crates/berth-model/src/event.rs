//! Events: every action and state change, persisted in an append-only log.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number in the log, assigned by the store.
    #[serde(default)]
    pub seq: u64,
    /// RFC 3339 UTC timestamp.
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    /// What happened, in a short phrase: "target set to started", "container died".
    pub what: String,
    /// The Docker call made, spelled as the equivalent docker CLI command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<String>,
}
