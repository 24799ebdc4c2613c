//! The rotation loop: on the leader only, brings every instance that holds
//! an older version of a `sec` or `cfg` value than desired state to the
//! current one, one instance at a time in the whole cluster, and only while
//! every other instance of its service is up (design note:
//! `design/rotation.md`).

use crate::Cluster;
use berth_model::cluster::InstanceReport;
use berth_model::status::Avail;
use berth_model::{ActionKind, ObjectPath};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_secs(1);
/// How long a refreshed instance may take to report its new versions
/// before it is asked again; also the wait after a failed refresh.
const SETTLE: Duration = Duration::from_secs(30);
/// How long a refreshed instance must have been up with its new values
/// before the next instance of its service goes: a value that makes the
/// application fail shortly after it starts stops the rollout.
const STEADY: Duration = Duration::from_secs(10);

/// Instances by node, as heartbeats report them.
type Reports = BTreeMap<String, Vec<InstanceReport>>;

/// An instance refreshed and not yet seen with its new versions.
struct Pending {
    node: String,
    path: String,
    since: Instant,
}

pub(crate) async fn run(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Vec<Pending> = Vec::new();
    loop {
        tick.tick().await;
        if !cluster.desired.is_leader() {
            pending.clear();
            continue;
        }
        let reports = cluster.instance_reports();
        let current = |path: &str, name: &str| cluster.current_version(path, name);
        pending.retain(|p| {
            let age = p.since.elapsed();
            age < STEADY || (age < SETTLE && !settled(&reports, &p.node, &p.path, current))
        });
        let busy: Vec<&str> = pending.iter().map(|p| p.path.as_str()).collect();
        // Only objects meant to run; their placement.
        let placement = |path: &str| {
            cluster
                .desired
                .get(path)
                .ok()
                .flatten()
                .filter(|r| r.target == berth_model::status::Target::Started && !r.frozen)
                .map(|r| r.placement)
        };
        let Some((node, path)) = pick(&reports, &busy, current, placement) else {
            continue;
        };
        let out = cluster.refresh_instance(&node, &path).await;
        if !out.ok {
            // Asked again after SETTLE; meanwhile its service waits.
            tracing::warn!(
                "rotation: refreshing {path} on {node}: {}",
                out.error.unwrap_or_default()
            );
        }
        pending.push(Pending {
            node,
            path,
            since: Instant::now(),
        });
    }
}

fn report<'a>(reports: &'a Reports, node: &str, path: &str) -> Option<&'a InstanceReport> {
    reports
        .get(node)
        .and_then(|v| v.iter().find(|i| i.path == path))
}

/// Whether `node`'s instance of `path` is up again with current values.
fn settled(
    reports: &Reports,
    node: &str,
    path: &str,
    current: impl Fn(&str, &str) -> Option<u64>,
) -> bool {
    report(reports, node, path).is_some_and(|i| i.avail == Avail::Up && !holds_old(i, &current))
}

fn holds_old(i: &InstanceReport, current: &impl Fn(&str, &str) -> Option<u64>) -> bool {
    i.values
        .iter()
        .any(|(name, held)| current(&i.path, name).is_some_and(|now| now > *held))
}

/// The next instance to refresh: one that holds an old value, of a service
/// with no refresh under way and an instance up on every node of its
/// placement.
fn pick(
    reports: &Reports,
    busy: &[&str],
    current: impl Fn(&str, &str) -> Option<u64>,
    placement: impl Fn(&str) -> Option<Vec<String>>,
) -> Option<(String, String)> {
    let mut all_up: HashMap<&str, bool> = HashMap::new();
    reports.iter().find_map(|(node, instances)| {
        instances
            .iter()
            .find(|i| {
                // A stopped instance takes the new version when it starts.
                i.avail == Avail::Up
                    && !busy.contains(&i.path.as_str())
                    && holds_old(i, &current)
                    && *all_up.entry(i.path.as_str()).or_insert_with(|| {
                        placement(&i.path).is_some_and(|nodes| {
                            nodes.iter().all(|n| {
                                report(reports, n, &i.path).is_some_and(|r| r.avail == Avail::Up)
                            })
                        })
                    })
            })
            .map(|i| (node.clone(), i.path.clone()))
    })
}

impl Cluster {
    /// The leader's reports of the nodes it hears from, with this node's
    /// own instances fresh from the status bus (a standalone node has no
    /// heartbeats). A silent node's last report says nothing of now.
    pub(crate) fn instance_reports(&self) -> Reports {
        let now = berth_watchdog::boottime();
        let mut reports: Reports = {
            let view = self.view.lock().unwrap_or_else(|e| e.into_inner());
            view.reports
                .iter()
                .filter(|(n, _)| {
                    view.liveness.state(n, now) == berth_manager::liveness::NodeState::Up
                })
                .map(|(n, r)| (n.clone(), r.clone()))
                .collect()
        };
        let mine: Vec<InstanceReport> = self
            .status
            .instances()
            .iter()
            .map(|s| InstanceReport::of(s))
            .collect();
        reports.insert(self.nodename().to_string(), mine);
        reports
    }

    /// The current version of `name` (`sec/db/password`) for the
    /// instance of `path`, from desired state.
    fn current_version(&self, path: &str, name: &str) -> Option<u64> {
        let service: ObjectPath = path.parse().ok()?;
        let mut parts = name.splitn(3, '/');
        let (kind, object, key) = (parts.next()?, parts.next()?, parts.next()?);
        let from = format!("{}/{kind}/{object}", service.namespace);
        self.stored_value(&from, key)
            .ok()
            .flatten()
            .map(|v| v.version)
    }

    async fn refresh_instance(&self, node: &str, path: &str) -> berth_model::ActionOutcome {
        let by = self.local_user();
        self.emit(format!("rotation: refreshing {path} on {node}"));
        let out = match path.parse::<ObjectPath>() {
            Ok(_) if node != self.nodename() => self
                .remote(node, path, ActionKind::Refresh, &by)
                .await
                .unwrap_or_else(|e| berth_model::ActionOutcome::failed(path, e)),
            Ok(p) => match self.local() {
                Ok(local) => local.act(p, ActionKind::Refresh, by).await,
                Err(e) => berth_model::ActionOutcome::failed(path, e),
            },
            Err(e) => berth_model::ActionOutcome::failed(path, e),
        };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(path: &str, avail: Avail, v: u64) -> InstanceReport {
        InstanceReport {
            path: path.into(),
            avail,
            frozen: false,
            values: BTreeMap::from([("sec/db/password".to_string(), v)]),
            stale: false,
            failed: false,
            health: None,
            why: None,
            config_hash: 0,
            images: vec![],
        }
    }

    fn at_version(n: u64) -> impl Fn(&str, &str) -> Option<u64> {
        move |_: &str, _: &str| Some(n)
    }

    fn on_n1_n2(_: &str) -> Option<Vec<String>> {
        Some(vec!["n1".into(), "n2".into()])
    }

    #[test]
    fn one_instance_at_a_time_and_only_while_the_others_are_up() {
        let mut reports = Reports::new();
        reports.insert("n1".into(), vec![inst("a/web", Avail::Up, 1)]);
        reports.insert("n2".into(), vec![inst("a/web", Avail::Up, 1)]);
        // n3's instance is down: neither refreshed nor waited for.
        reports.insert("n3".into(), vec![inst("a/web", Avail::Down, 0)]);
        let v2 = at_version(2);
        assert_eq!(
            pick(&reports, &[], at_version(1), on_n1_n2),
            None,
            "nothing is old"
        );
        let first = pick(&reports, &[], &v2, on_n1_n2);
        assert_eq!(first, Some(("n1".into(), "a/web".into())));
        assert_eq!(
            pick(&reports, &["a/web"], &v2, on_n1_n2),
            None,
            "one under way"
        );
        // n1 restarted and is down: n2 waits.
        reports.insert("n1".into(), vec![inst("a/web", Avail::Down, 2)]);
        assert!(!settled(&reports, "n1", "a/web", &v2));
        assert_eq!(pick(&reports, &[], &v2, on_n1_n2), None);
        reports.insert("n1".into(), vec![inst("a/web", Avail::Up, 2)]);
        assert!(settled(&reports, "n1", "a/web", &v2));
        assert_eq!(
            pick(&reports, &[], &v2, on_n1_n2),
            Some(("n2".into(), "a/web".into()))
        );
        // Stopped or frozen: not refreshed.
        assert_eq!(pick(&reports, &[], &v2, |_: &str| None), None);
        // n1 went silent: its instance is not known up, n2 waits.
        reports.remove("n1");
        assert_eq!(pick(&reports, &[], &v2, on_n1_n2), None);
    }
}
