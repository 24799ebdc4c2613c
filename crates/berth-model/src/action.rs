//! Actions on objects and what they report.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Start,
    Stop,
    Restart,
    Freeze,
    Thaw,
    Delete,
    /// Forget this node's warnings and failed states of the object.
    Clear,
    /// Bring the instance's `sec`/`cfg` values to their current versions:
    /// signalled where `secrets_reload` says so, restarted otherwise.
    Refresh,
    /// A deploy's start-first replacement: a container from the current
    /// config starts next to the old one and must be healthy before the
    /// old one is drained and stopped.
    Replace,
}

impl ActionKind {
    /// Whether the action runs where the object is placed (in a cluster),
    /// rather than only on the node that received it.
    pub fn runs_where_placed(self) -> bool {
        matches!(
            self,
            ActionKind::Start | ActionKind::Stop | ActionKind::Restart
        )
    }
}

/// The result of an action on one object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionOutcome {
    pub path: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was done, OpenSVC-style: Docker commands and notable steps.
    pub lines: Vec<String>,
}

impl ActionOutcome {
    /// An action on `path` that could not even run.
    pub fn failed(path: &str, error: impl std::fmt::Display) -> ActionOutcome {
        ActionOutcome {
            path: path.to_string(),
            ok: false,
            error: Some(error.to_string()),
            lines: vec![],
        }
    }

    /// Outcomes of one action fanned out to several nodes, line by line
    /// with the node's name when there is more than one.
    pub fn merge(path: &str, outs: Vec<(String, ActionOutcome)>) -> ActionOutcome {
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
}

/// An object as listed by selection.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub path: String,
    pub kind: String,
    pub target: crate::status::Target,
    pub frozen: bool,
}

/// The result of a `set`/`unset` on one object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetOutcome {
    pub path: String,
    pub changed: bool,
}
