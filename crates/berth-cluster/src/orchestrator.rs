//! The orchestrator: on the leader only, decides which nodes run each
//! started object, and writes that placement with the object's record.
//!
//! Design note:
//! - Inputs: object records (target, frozen, placement, config), node
//!   records (labels, drain, frozen) and the leader's liveness view.
//!   Runs on every change to desired state (changes 10 ms apart make one
//!   pass) and every 500 ms.
//! - Outputs: `placement` patches, all decisions of a pass in one Raft
//!   entry. Agents act on them: an instance monitor runs its object only
//!   where it is placed.
//! - Never moves what runs for no reason: `placement::place` keeps
//!   instances on nodes that are still eligible.
//! - Failover safety (`design/failover.md`): an instance on a lost node is
//!   moved only once `Liveness::failover_allowed` (the node's lease plus
//!   the stop grace ran out); a failover object is placed anew only when no
//!   live node still reports its instance running.
//! - `orchestrate=ha` objects move when their node is lost or drained;
//!   others stay where they were placed until an operator acts.

use super::clock::boottime;
use super::records::{InstanceReport, NodeRecord};
use crate::agent::Agent;
use berth_manager::liveness::NodeState;
use berth_manager::placement::{place, NodeView, PlacementError, PlacementSpec};
use berth_model::glob_match;
use berth_model::status::{Avail, Target};
use berth_model::ConfigDoc;
use berth_store::{ObjectRecord, Request};
use openraft::async_runtime::WatchReceiver;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

const PERIOD: Duration = Duration::from_millis(500);
/// After a change, further changes this soon are taken in the same pass.
const COALESCE: Duration = Duration::from_millis(10);

/// What placement needs from an object's config.
#[derive(Clone, Debug)]
pub(crate) struct Topology {
    pub failover: bool,
    pub nodes: Vec<String>,
    pub flex_target: usize,
    pub ha: bool,
    pub priority: i64,
    pub hard_anti_affinity: Vec<String>,
    pub soft_anti_affinity: Vec<String>,
}

impl Topology {
    pub(crate) fn of(agent: &Agent, rec: &ObjectRecord) -> Option<Topology> {
        let path = rec.path.parse().ok()?;
        let doc = ConfigDoc::parse(&rec.config).ok()?;
        let eff = berth_model::resolve(&doc, &agent.registry, &path, agent.nodename()).ok()?;
        let d = &eff.default;
        Some(Topology {
            failover: d.get_str("topology").unwrap_or("failover") != "flex",
            nodes: d.get_list("nodes"),
            flex_target: d.get_int("flex_target").ok().flatten().unwrap_or(1).max(0) as usize,
            ha: d.get_str("orchestrate") == Some("ha"),
            priority: d.get_int("priority").ok().flatten().unwrap_or(100),
            hard_anti_affinity: d.get_list("hard_anti_affinity"),
            soft_anti_affinity: d.get_list("soft_anti_affinity"),
        })
    }

    fn want(&self) -> usize {
        if self.failover {
            1
        } else {
            self.flex_target
        }
    }
}

pub(crate) async fn run(agent: Arc<Agent>) {
    let mut changes = agent.desired.subscribe();
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cache: HashMap<String, (u64, Option<Topology>)> = HashMap::new();
    let mut complaints: HashMap<String, String> = HashMap::new();
    // When a lost node's instances become free to move, if sooner than the tick.
    let mut due: Option<Duration> = None;
    // Leadership changes too: the failover clock of a new leader starts
    // when it wins, so note that moment promptly. One receiver for the
    // whole loop: a fresh clone of the metrics watch reports a change at
    // once, and the loop would spin.
    let mut server = agent.desired.raft().server_metrics();
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
                    server = agent.desired.raft().server_metrics();
                }
                server.borrow_and_update();
            }
            r = changes.recv() => {
                if r.is_err() {
                    changes = agent.desired.subscribe();
                }
                // A burst of writes makes one pass, not one each.
                tokio::time::sleep(COALESCE).await;
                while changes.try_recv().is_ok() {}
            }
        }
        if !agent.desired.is_leader() {
            due = None;
            continue;
        }
        let (batch, next) = decide(&agent, &mut cache, &mut complaints);
        due = next;
        if batch.is_empty() {
            continue;
        }
        if let Err(e) = agent.desired.write(Request::Batch(batch)).await {
            tracing::warn!("orchestrator: writing placements: {e}");
        }
    }
}

/// One node as the orchestrator sees it.
struct NodeFacts {
    view: NodeView,
    /// Up, or this very node.
    alive: bool,
    /// Lost long enough that its failover instances may restart elsewhere.
    released: bool,
}

/// One pass: the placement patches to write, and when the next lost node's
/// instances become free to move.
fn decide(
    agent: &Arc<Agent>,
    cache: &mut HashMap<String, (u64, Option<Topology>)>,
    complaints: &mut HashMap<String, String>,
) -> (Vec<Request>, Option<Duration>) {
    let now = boottime();
    let (liveness, leader_since, reports) = {
        let mut view = agent.cluster.view.lock().unwrap_or_else(|e| e.into_inner());
        view.sync(true, agent.desired.current_term(), now);
        // Every acknowledgement the previous leader gave was sent at least
        // one election quiet period before this leader won.
        let since = view
            .leader_since
            .unwrap_or(now)
            .saturating_sub(berth_store::ELECTION_QUIET);
        (view.liveness.clone(), since, view.reports.clone())
    };
    let Ok(records) = agent.desired.list() else {
        return (Vec::new(), None);
    };
    let me = agent.nodename().to_string();
    let node_records: Vec<NodeRecord> = if agent.cluster.is_clustered() {
        agent.node_records()
    } else {
        vec![NodeRecord {
            name: me.clone(),
            id: agent.desired.node_id(),
            addr: String::new(),
            role: super::records::NodeRole::Manager,
            labels: Default::default(),
            drain: false,
            frozen: false,
            ca: None,
        }]
    };
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &records {
        for n in &r.placement {
            *load.entry(n.as_str()).or_default() += 1;
        }
    }
    let facts: Vec<NodeFacts> = node_records
        .iter()
        .map(|n| {
            let alive = n.name == me || liveness.state(&n.name, now) == NodeState::Up;
            let released = !alive && liveness.failover_allowed(&n.name, now, leader_since);
            NodeFacts {
                view: NodeView {
                    name: n.name.clone(),
                    labels: n.labels.clone(),
                    schedulable: alive && !n.drain && !n.frozen,
                    load: load.get(n.name.as_str()).copied().unwrap_or(0),
                },
                alive,
                released,
            }
        })
        .collect();
    let next = node_records
        .iter()
        .zip(&facts)
        .filter(|(_, f)| !f.alive && !f.released)
        .map(|(n, _)| liveness.failover_at(&n.name, leader_since))
        .min();
    cache.retain(|p, _| records.iter().any(|r| &r.path == p));
    let mut decisions: Vec<(i64, String, Vec<String>)> = Vec::new();
    for rec in &records {
        if rec.target != Target::Started || rec.frozen {
            continue;
        }
        let hash = berth_model::fnv1a64(rec.config.as_bytes());
        let topo = match cache.get(&rec.path) {
            Some((h, t)) if *h == hash => t.clone(),
            _ => {
                let t = Topology::of(agent, rec);
                cache.insert(rec.path.clone(), (hash, t.clone()));
                t
            }
        };
        let Some(topo) = topo else { continue };
        // Nodes where the services this one keeps away from are placed.
        let near = |globs: &[String]| -> BTreeSet<String> {
            if globs.is_empty() {
                return BTreeSet::new();
            }
            records
                .iter()
                .filter(|o| o.path != rec.path && globs.iter().any(|g| glob_match(g, &o.path)))
                .flat_map(|o| o.placement.iter().cloned())
                .collect()
        };
        let avoid = near(&topo.hard_anti_affinity);
        let prefer_not = near(&topo.soft_anti_affinity);
        match placement_for(rec, &topo, &facts, &reports, avoid, prefer_not) {
            Ok(Some(nodes)) => {
                complaints.remove(&rec.path);
                decisions.push((topo.priority, rec.path.clone(), nodes));
            }
            Ok(None) => {
                complaints.remove(&rec.path);
            }
            Err(why) => {
                if complaints.get(&rec.path) != Some(&why) {
                    agent
                        .events
                        .emit(Some(&rec.path), None, format!("not placed: {why}"), None);
                    complaints.insert(rec.path.clone(), why);
                }
            }
        }
    }
    berth_manager::placement::restart_order(&mut decisions);
    let batch = decisions
        .into_iter()
        .map(|(_, path, nodes)| {
            agent.events.emit(
                Some(&path),
                None,
                format!(
                    "placed on {}",
                    if nodes.is_empty() {
                        "no node".to_string()
                    } else {
                        nodes.join(", ")
                    }
                ),
                None,
            );
            let mut fields = serde_json::Map::new();
            fields.insert("placement".into(), serde_json::json!(nodes));
            berth_store::patch(&path, fields)
        })
        .collect();
    (batch, next)
}

/// The new placement of one object, `None` when it stays as it is.
fn placement_for(
    rec: &ObjectRecord,
    topo: &Topology,
    facts: &[NodeFacts],
    reports: &BTreeMap<String, Vec<InstanceReport>>,
    avoid: BTreeSet<String>,
    prefer_not: BTreeSet<String>,
) -> Result<Option<Vec<String>>, String> {
    let fact = |name: &str| facts.iter().find(|f| f.view.name == name);
    let mut spec = PlacementSpec::from_words(&topo.nodes, Some(1));
    spec.avoid = avoid;
    spec.prefer_not = prefer_not;
    let spec_avoids = |name: &str| spec.avoid.contains(name);
    let placed = !rec.placement.is_empty();
    // Who keeps what: an unreleased lost node keeps its instance (it may
    // still run it); a drained or released one gives it up, for ha only.
    let mut views: Vec<NodeView> = facts.iter().map(|f| f.view.clone()).collect();
    let mut must_move = false;
    for name in &rec.placement {
        match fact(name) {
            None => must_move = true,
            Some(f) if !f.alive && !f.released => {
                if let Some(v) = views.iter_mut().find(|v| &v.name == name) {
                    v.schedulable = true;
                }
            }
            Some(f) if !f.view.schedulable || spec_avoids(name) => must_move = true,
            Some(_) => {}
        }
    }
    if placed && !topo.ha && (topo.failover || rec.placement.len() == topo.want()) {
        return Ok(None);
    }
    if placed && !must_move && rec.placement.len() == topo.want() {
        return Ok(None);
    }
    let current: BTreeMap<String, usize> = rec
        .placement
        .iter()
        .filter(|n| views.iter().any(|v| &v.name == *n && v.schedulable))
        .map(|n| (n.clone(), 1))
        .collect();
    let chosen = match place(&spec, &views, &current, topo.want()) {
        // A flex service runs as many instances as there is room for.
        Err(PlacementError::NotEnoughRoom { possible, .. }) if !topo.failover && possible > 0 => {
            place(&spec, &views, &current, possible).map_err(|e| e.to_string())?
        }
        r => r.map_err(|e| e.to_string())?,
    };
    let mut nodes: Vec<String> = chosen.into_keys().collect();
    nodes.sort();
    let mut old = rec.placement.clone();
    old.sort();
    if nodes == old {
        return Ok(None);
    }
    if topo.failover {
        // Never two: while a live node other than the chosen one still
        // reports the instance running, first take the placement away.
        let elsewhere = reports.iter().any(|(node, insts)| {
            !nodes.contains(node)
                && fact(node).is_some_and(|f| f.alive)
                && insts
                    .iter()
                    .any(|i| i.path == rec.path && matches!(i.avail, Avail::Up | Avail::Warn))
        });
        if elsewhere {
            return Ok(if rec.placement.is_empty() {
                None
            } else {
                Some(Vec::new())
            });
        }
    }
    Ok(Some(nodes))
}
