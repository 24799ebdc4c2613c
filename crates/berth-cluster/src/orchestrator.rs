//! The orchestrator loop: on the leader only, feeds the pure decisions of
//! `berth_manager::orchestrate` and writes the placements they choose
//! (design note: `design/orchestrator.md`).

use crate::command::{Command, Placement};
use crate::Cluster;
use berth_manager::orchestrate::{decide, next_release, node_facts, ObjectView};
use berth_model::cluster::{NodeRecord, NodeRole};
use berth_model::status::Target;
use berth_model::{ObjectPath, ObjectSettings};
use berth_store::ObjectRecord;
use berth_watchdog::boottime;
use openraft::async_runtime::WatchReceiver;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const PERIOD: Duration = Duration::from_millis(500);
/// After a change, further changes this soon are taken in the same pass.
const COALESCE: Duration = Duration::from_millis(10);

/// Settings parsed from each object's config, kept while the text is the same.
type SettingsCache = HashMap<String, (u64, Option<ObjectSettings>)>;

pub(crate) async fn run(cluster: Arc<Cluster>) {
    let mut changes = cluster.desired.subscribe();
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cache = SettingsCache::new();
    let mut complaints: HashMap<String, String> = HashMap::new();
    // When a lost node's instances become free to move, if sooner than the tick.
    let mut due: Option<Duration> = None;
    // Leadership changes too: the failover clock of a new leader starts
    // when it wins, so note that moment promptly. One receiver for the
    // whole loop: a fresh clone of the metrics watch reports a change at
    // once, and the loop would spin.
    let mut server = cluster.desired.raft().server_metrics();
    server.borrow_and_update();
    loop {
        let wait = due
            .map(|at| at.saturating_sub(boottime()) + Duration::from_millis(5))
            .unwrap_or(PERIOD);
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep(wait) => {}
            r = server.changed() => {
                if r.is_err() {
                    server = cluster.desired.raft().server_metrics();
                }
                server.borrow_and_update();
            }
            r = changes.recv() => {
                if r.is_err() {
                    changes = cluster.desired.subscribe();
                }
                // A burst of writes makes one pass, not one each.
                tokio::time::sleep(COALESCE).await;
                while changes.try_recv().is_ok() {}
            }
        }
        if !cluster.desired.is_leader() {
            due = None;
            continue;
        }
        let (placements, next) = pass(&cluster, &mut cache, &mut complaints);
        due = next;
        if placements.is_empty() {
            continue;
        }
        if let Err(e) = cluster.submit(Command::Place(placements)).await {
            tracing::warn!("orchestrator: writing placements: {e}");
        }
    }
}

/// One pass: the placements to write, and when the next lost node's
/// instances become free to move.
fn pass(
    cluster: &Cluster,
    cache: &mut SettingsCache,
    complaints: &mut HashMap<String, String>,
) -> (Vec<Placement>, Option<Duration>) {
    let Ok(local) = cluster.local() else {
        return (Vec::new(), None);
    };
    let now = boottime();
    let (liveness, leader_since, reports) = {
        let mut view = cluster.view.lock().unwrap_or_else(|e| e.into_inner());
        view.sync(true, cluster.desired.current_term(), now);
        let since = view
            .lease_origin()
            .unwrap_or(now.saturating_sub(berth_store::ELECTION_QUIET));
        (view.liveness.clone(), since, view.reports.clone())
    };
    let Ok(records) = cluster.desired.list() else {
        return (Vec::new(), None);
    };
    // Only objects that should run need their settings; the cache keeps
    // theirs, and is rebuilt each pass (no entry outlives its object).
    let mut fresh = SettingsCache::with_capacity(cache.len());
    let objects: Vec<ObjectView> = records
        .iter()
        .map(|rec| {
            let wanted = rec.target == Target::Started && !rec.frozen;
            ObjectView {
                path: rec.path.clone(),
                wanted,
                placement: rec.placement.clone(),
                unhealthy_on: rec.unhealthy_on.keys().cloned().collect(),
                settings: wanted
                    .then(|| settings_of(local.as_ref(), cache, &mut fresh, rec))
                    .flatten(),
            }
        })
        .collect();
    *cache = fresh;
    let me = cluster.nodename().to_string();
    let nodes = if cluster.is_clustered() {
        cluster.node_records()
    } else {
        vec![NodeRecord {
            name: me.clone(),
            id: cluster.desired.node_id(),
            addr: String::new(),
            role: NodeRole::Manager,
            labels: Default::default(),
            drain: false,
            frozen: false,
            ca: None,
        }]
    };
    let facts = node_facts(&nodes, &objects, &me, &liveness, now, leader_since);
    let next = next_release(&facts, &liveness, leader_since);
    let decided = decide(&objects, &facts, &reports);
    let said = decided
        .unplaced
        .into_iter()
        .map(|(path, why)| (path, format!("not placed: {why}")))
        .chain(decided.short);
    let mut now_said = HashMap::new();
    for (path, why) in said {
        if complaints.get(&path) != Some(&why) {
            cluster.events.emit(Some(&path), None, why.clone(), None);
        }
        now_said.insert(path, why);
    }
    *complaints = now_said;
    let placements = decided
        .placements
        .into_iter()
        .map(|(path, nodes)| {
            let on = if nodes.is_empty() {
                "no node".to_string()
            } else {
                nodes.join(", ")
            };
            cluster
                .events
                .emit(Some(&path), None, format!("placed on {on}"), None);
            Placement { path, nodes }
        })
        .collect();
    (placements, next)
}

/// The settings of `rec`, from last pass's cache while its config text is
/// the same; kept in `fresh` for the next pass.
fn settings_of(
    local: &dyn crate::LocalNode,
    cache: &mut SettingsCache,
    fresh: &mut SettingsCache,
    rec: &ObjectRecord,
) -> Option<ObjectSettings> {
    let hash = berth_model::fnv1a64(rec.config.as_bytes());
    let settings = match cache.remove(&rec.path) {
        Some((h, s)) if h == hash => s,
        _ => rec
            .path
            .parse::<ObjectPath>()
            .ok()
            .and_then(|p| local.settings(&p, &rec.config)),
    };
    fresh.insert(rec.path.clone(), (hash, settings.clone()));
    settings
}
