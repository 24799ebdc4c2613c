//! Deployments as data (`design/rollout.md`): how a change rolls out
//! (`update_*` keywords), the versions a service deployed, and the pure
//! decisions of a rollout: the batches, and whether an instance passed its
//! health gate.

use crate::health::HealthState;
use crate::settings::keyword_enum;
use crate::status::Avail;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How many deployed versions a service keeps.
pub const KEEP_VERSIONS: usize = 10;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// An instance is stopped before its replacement starts.
    #[default]
    StopFirst,
    /// The replacement starts first (flex services).
    StartFirst,
}
keyword_enum!(
    UpdateOrder,
    "update_order",
    StopFirst = "stop-first",
    StartFirst = "start-first"
);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    /// The whole service goes back to the previous deployed config.
    #[default]
    Rollback,
    /// The rollout stops where it is.
    Pause,
}
keyword_enum!(
    FailureAction,
    "update_failure_action",
    Rollback = "rollback",
    Pause = "pause"
);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateMode {
    /// A change waits for `deploy`.
    #[default]
    Manual,
    /// Every change that touches a container rolls out when written.
    Rolling,
}
keyword_enum!(UpdateMode, "update", Manual = "manual", Rolling = "rolling");

/// The `update_*` keywords of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdatePolicy {
    pub mode: UpdateMode,
    pub parallelism: u32,
    pub delay: Duration,
    pub order: UpdateOrder,
    pub monitor: Duration,
    pub failure: FailureAction,
}

impl Default for UpdatePolicy {
    fn default() -> Self {
        UpdatePolicy {
            mode: UpdateMode::Manual,
            parallelism: 1,
            delay: Duration::ZERO,
            order: UpdateOrder::StopFirst,
            monitor: Duration::from_secs(10),
            failure: FailureAction::Rollback,
        }
    }
}

/// How a deployed version ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Outcome {
    InProgress,
    Deployed,
    /// It failed, and the service went back to the version before.
    RolledBack {
        why: String,
    },
    /// It failed, and the rollout stopped where it was.
    Paused {
        why: String,
    },
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::InProgress => "in progress",
            Outcome::Deployed => "deployed",
            Outcome::RolledBack { .. } => "rolled back",
            Outcome::Paused { .. } => "paused",
        }
    }
}

/// One deployed config of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployVersion {
    pub version: u64,
    pub config: String,
    /// Who deployed it (`user@node`).
    pub by: String,
    pub at_ms: u64,
    /// Each container resource's image, pinned to a digest at deploy.
    #[serde(default)]
    pub digests: BTreeMap<String, String>,
    pub outcome: Outcome,
    /// What the rollout did, in order: one line per batch or failure.
    #[serde(default)]
    pub log: Vec<String>,
}

/// The versions a service deployed, oldest first; the last
/// [`KEEP_VERSIONS`] are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployHistory {
    pub versions: Vec<DeployVersion>,
}

impl DeployHistory {
    pub fn next_version(&self) -> u64 {
        self.versions.last().map_or(1, |v| v.version + 1)
    }

    /// Adds or replaces (same number) a version, and forgets the oldest
    /// beyond [`KEEP_VERSIONS`].
    pub fn record(&mut self, v: DeployVersion) {
        match self.versions.iter_mut().find(|o| o.version == v.version) {
            Some(old) => *old = v,
            None => self.versions.push(v),
        }
        let extra = self.versions.len().saturating_sub(KEEP_VERSIONS);
        self.versions.drain(..extra);
    }

    pub fn get(&self, version: u64) -> Option<&DeployVersion> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The newest version that deployed fully.
    pub fn current(&self) -> Option<&DeployVersion> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.outcome == Outcome::Deployed)
    }

    /// The newest fully deployed version older than `version`.
    pub fn before(&self, version: u64) -> Option<&DeployVersion> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.version < version && v.outcome == Outcome::Deployed)
    }
}

/// The nodes to update, `parallelism` at a time, in a stable order.
pub fn batches(nodes: &[String], parallelism: u32) -> Vec<Vec<String>> {
    let mut sorted = nodes.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
        .chunks(usize::try_from(parallelism.max(1)).unwrap_or(1))
        .map(<[String]>::to_vec)
        .collect()
}

/// What a new instance looks like at one look during its health gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Up, on the new config, and healthy (or with no check).
    Good,
    /// Not there yet: starting, or not reported on the new config.
    Waiting,
    /// Down, failed or unhealthy: the rollout fails.
    Bad,
}

/// One look at an instance: its availability, whether it still runs an
/// older config, and its health (when it has a check).
pub fn gate(avail: Avail, stale: bool, failed: bool, health: Option<HealthState>) -> Gate {
    if failed || avail == Avail::Down {
        return Gate::Bad;
    }
    if stale || !matches!(avail, Avail::Up | Avail::Warn) {
        return Gate::Waiting;
    }
    match health {
        Some(HealthState::Unhealthy) => Gate::Bad,
        Some(HealthState::Starting) => Gate::Waiting,
        Some(HealthState::Healthy) | None if avail == Avail::Up => Gate::Good,
        _ => Gate::Waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: u64, outcome: Outcome) -> DeployVersion {
        DeployVersion {
            version: n,
            config: format!("v{n}"),
            by: "root@n1".into(),
            at_ms: n,
            digests: BTreeMap::new(),
            outcome,
            log: Vec::new(),
        }
    }

    #[test]
    fn history_keeps_the_last_ten_and_finds_the_one_before() {
        let mut h = DeployHistory::default();
        for n in 1..=12 {
            h.record(version(n, Outcome::Deployed));
        }
        assert_eq!(h.versions.len(), KEEP_VERSIONS);
        assert_eq!(h.versions[0].version, 3);
        assert_eq!(h.next_version(), 13);
        h.record(version(13, Outcome::RolledBack { why: "x".into() }));
        assert_eq!(h.current().map(|v| v.version), Some(12));
        assert_eq!(h.before(13).map(|v| v.version), Some(12));
        assert_eq!(h.before(12).map(|v| v.version), Some(11));
        h.record(version(13, Outcome::Deployed));
        assert_eq!(h.versions.len(), KEEP_VERSIONS);
        assert_eq!(h.current().map(|v| v.version), Some(13));
    }

    #[test]
    fn batches_take_parallelism_nodes_at_a_time() {
        let nodes: Vec<String> = ["c", "a", "b", "a"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            batches(&nodes, 2),
            vec![
                vec!["a".to_string(), "b".to_string()],
                vec!["c".to_string()]
            ]
        );
        assert_eq!(batches(&nodes, 0).len(), 3);
    }

    #[test]
    fn the_gate_wants_up_current_and_healthy() {
        use HealthState::*;
        assert_eq!(gate(Avail::Up, false, false, None), Gate::Good);
        assert_eq!(gate(Avail::Up, false, false, Some(Healthy)), Gate::Good);
        assert_eq!(gate(Avail::Up, false, false, Some(Starting)), Gate::Waiting);
        assert_eq!(gate(Avail::Up, true, false, Some(Healthy)), Gate::Waiting);
        assert_eq!(gate(Avail::Warn, false, false, Some(Unhealthy)), Gate::Bad);
        assert_eq!(gate(Avail::Down, false, false, None), Gate::Bad);
        assert_eq!(gate(Avail::Up, false, true, None), Gate::Bad);
    }
}
