//! Each node's instance of an object, as `print status` and `mon` show
//! it: this node's from its own status, the others' from their
//! heartbeats, with the deployed version each runs.

use berth_model::cluster::{ClusterView, InstanceReport, NodeState};
use berth_model::deploy::DeployHistory;
use berth_model::status::{Avail, ObjectStatus};
use serde::Serialize;

/// One node's instance.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceView {
    pub node: String,
    /// What the node last said of it; `None` when the node is not up or
    /// said nothing of it.
    pub report: Option<InstanceReport>,
    /// The deployed version it runs, when its config is one of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl InstanceView {
    pub fn avail(&self) -> Option<Avail> {
        self.report.as_ref().map(|r| r.avail)
    }

    /// The values it holds, as `sec/db/password@2`.
    pub fn value_versions(&self) -> Vec<String> {
        self.report.as_ref().map_or_else(Vec::new, |r| {
            r.values.iter().map(|(k, v)| format!("{k}@{v}")).collect()
        })
    }

    /// Version, health and pinned images, for the status tree.
    pub fn details(&self) -> Vec<String> {
        let Some(r) = &self.report else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if r.stale {
            out.push("config changed".to_string());
        } else if let Some(v) = self.version {
            out.push(format!("version {v}"));
        }
        if let Some(h) = r.health {
            match &r.why {
                Some(why) if !why.is_empty() => out.push(format!("{} ({why})", h.as_str())),
                _ => out.push(h.as_str().to_string()),
            }
        }
        out.extend(r.images.iter().cloned());
        out
    }
}

/// The deployed version whose config an instance made against the
/// config hashed `hash` runs, if it is current there (the latest such).
fn version_of(history: &DeployHistory, report: &InstanceReport) -> Option<u64> {
    if report.stale || report.config_hash == 0 {
        return None;
    }
    history
        .versions
        .iter()
        .filter(|v| berth_model::fnv1a64(v.config.as_bytes()) == report.config_hash)
        .map(|v| v.version)
        .max()
}

/// The instances of `s`, one per node of the cluster (this node alone on
/// a standalone one).
pub fn of(s: &ObjectStatus, view: &ClusterView, history: &DeployHistory) -> Vec<InstanceView> {
    let local = InstanceReport::of(s);
    let make = |node: &str, report: Option<InstanceReport>| InstanceView {
        node: node.to_string(),
        version: report.as_ref().and_then(|r| version_of(history, r)),
        report,
    };
    if view.nodes.is_empty() {
        return vec![make(&s.node, Some(local))];
    }
    view.nodes
        .iter()
        .map(|n| {
            let name = &n.record.name;
            if *name == s.node {
                return make(name, Some(local.clone()));
            }
            if n.state != NodeState::Up {
                return make(name, None);
            }
            let report = view
                .instances
                .get(name)
                .and_then(|v| v.iter().find(|i| i.path == s.path))
                .cloned();
            make(name, report)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::deploy::{DeployVersion, Outcome};

    fn report(config: &str, stale: bool) -> InstanceReport {
        InstanceReport {
            path: "a/web".into(),
            avail: Avail::Up,
            frozen: false,
            values: Default::default(),
            stale,
            failed: false,
            health: None,
            why: None,
            config_hash: berth_model::fnv1a64(config.as_bytes()),
            images: vec![],
        }
    }

    fn version(n: u64, config: &str) -> DeployVersion {
        DeployVersion {
            version: n,
            config: config.into(),
            by: "root".into(),
            at_ms: 0,
            digests: Default::default(),
            outcome: Outcome::Deployed,
            log: vec![],
        }
    }

    #[test]
    fn the_version_is_the_latest_deployed_with_the_instances_config() {
        let h = DeployHistory {
            versions: vec![version(1, "a"), version(2, "b"), version(3, "a")],
        };
        assert_eq!(version_of(&h, &report("a", false)), Some(3));
        assert_eq!(version_of(&h, &report("b", false)), Some(2));
        assert_eq!(version_of(&h, &report("c", false)), None);
        // A container from an older config runs no version we can name.
        assert_eq!(version_of(&h, &report("b", true)), None);
    }
}
