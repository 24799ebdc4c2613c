//! The orchestrator's decisions: which nodes run each started object, as a
//! pure function of the objects, the nodes and what the nodes report.
//! The loop that feeds it and writes its placements lives in
//! `berth-cluster` (`design/orchestrator.md`).

use crate::liveness::{Liveness, NodeState};
use crate::placement::{place, restart_order, NodeView, PlacementError, PlacementSpec};
use berth_model::cluster::{InstanceReport, NodeRecord};
use berth_model::status::Avail;
use berth_model::{glob_match, ObjectSettings, Orchestrate};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One object as the orchestrator sees it.
#[derive(Clone, Debug)]
pub struct ObjectView {
    pub path: String,
    /// Target started and not frozen: it should run somewhere.
    pub wanted: bool,
    pub placement: Vec<String>,
    /// Nodes where it stayed unhealthy (`on_unhealthy=failover`): a
    /// failover object moves off them while another node can take it.
    pub unhealthy_on: BTreeSet<String>,
    /// `None` when its config does not resolve: it is left alone.
    pub settings: Option<ObjectSettings>,
}

/// One node as the orchestrator sees it.
#[derive(Clone, Debug)]
pub struct NodeFacts {
    pub view: NodeView,
    /// Up, or the leader itself.
    pub alive: bool,
    /// Lost long enough that its failover instances may restart elsewhere.
    pub released: bool,
}

/// The nodes, from their records and the leader's liveness view at `now`.
/// `leader_since` is when the leader's failover clock starts
/// (`design/failover.md`); `me` is the leader.
pub fn node_facts(
    records: &[NodeRecord],
    objects: &[ObjectView],
    me: &str,
    liveness: &Liveness,
    now: Duration,
    leader_since: Duration,
) -> Vec<NodeFacts> {
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for o in objects {
        for n in &o.placement {
            *load.entry(n.as_str()).or_default() += 1;
        }
    }
    records
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
        .collect()
}

/// When the next lost node's instances become free to move, if any node
/// is lost and not yet released.
pub fn next_release(
    facts: &[NodeFacts],
    liveness: &Liveness,
    leader_since: Duration,
) -> Option<Duration> {
    facts
        .iter()
        .filter(|f| !f.alive && !f.released)
        .map(|f| liveness.failover_at(&f.view.name, leader_since))
        .min()
}

/// What one pass decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    /// New placements, in restart order (`priority`, then path).
    pub placements: Vec<(String, Vec<String>)>,
    /// Objects that could not be placed, and why.
    pub unplaced: BTreeMap<String, String>,
    /// Flex objects placed on fewer nodes than `flex_target`, and why.
    pub short: BTreeMap<String, String>,
}

/// One pass over every object.
pub fn decide(
    objects: &[ObjectView],
    facts: &[NodeFacts],
    reports: &BTreeMap<String, Vec<InstanceReport>>,
) -> Pass {
    let mut pass = Pass::default();
    let mut decisions: Vec<(i64, String, Vec<String>)> = Vec::new();
    for o in objects {
        let Some(settings) = o.settings.as_ref().filter(|_| o.wanted) else {
            continue;
        };
        // Nodes where the services this one keeps away from are placed.
        let near = |globs: &[String]| -> BTreeSet<String> {
            objects
                .iter()
                .filter(|x| x.path != o.path && globs.iter().any(|g| glob_match(g, &x.path)))
                .flat_map(|x| x.placement.iter().cloned())
                .collect()
        };
        let avoid = near(&settings.hard_anti_affinity);
        let prefer_not = near(&settings.soft_anti_affinity);
        let placed = match placement_for(o, settings, facts, reports, avoid, prefer_not) {
            Ok(Some(nodes)) => {
                let n = nodes.len();
                decisions.push((settings.priority, o.path.clone(), nodes));
                n
            }
            Ok(None) => o.placement.len(),
            Err(why) => {
                pass.unplaced.insert(o.path.clone(), why);
                0
            }
        };
        let want = settings.instances();
        if !settings.is_failover() && placed > 0 && placed < want {
            pass.short.insert(
                o.path.clone(),
                format!(
                    "runs {placed} of flex_target {want} instances: a flex service runs at most one instance per node, and {placed} eligible node(s) can take one"
                ),
            );
        }
    }
    restart_order(&mut decisions);
    pass.placements = decisions.into_iter().map(|(_, p, n)| (p, n)).collect();
    pass
}

/// The new placement of one object, `None` when it stays as it is.
/// A failover object keeps away from the nodes where it stayed unhealthy
/// as long as some other node can take it; then it stays where it is.
pub fn placement_for(
    o: &ObjectView,
    settings: &ObjectSettings,
    facts: &[NodeFacts],
    reports: &BTreeMap<String, Vec<InstanceReport>>,
    avoid: BTreeSet<String>,
    prefer_not: BTreeSet<String>,
) -> Result<Option<Vec<String>>, String> {
    if settings.is_failover() && !o.unhealthy_on.is_empty() {
        let mut away = avoid.clone();
        away.extend(o.unhealthy_on.iter().cloned());
        if let Ok(p) = placement_avoiding(o, settings, facts, reports, away, prefer_not.clone()) {
            return Ok(p);
        }
    }
    placement_avoiding(o, settings, facts, reports, avoid, prefer_not)
}

fn placement_avoiding(
    o: &ObjectView,
    settings: &ObjectSettings,
    facts: &[NodeFacts],
    reports: &BTreeMap<String, Vec<InstanceReport>>,
    avoid: BTreeSet<String>,
    prefer_not: BTreeSet<String>,
) -> Result<Option<Vec<String>>, String> {
    let fact = |name: &str| facts.iter().find(|f| f.view.name == name);
    let mut spec = PlacementSpec::from_words(&settings.nodes, Some(1));
    spec.avoid = avoid;
    spec.prefer_not = prefer_not;
    let want = settings.instances();
    let ha = settings.orchestrate == Orchestrate::Ha;
    let placed = !o.placement.is_empty();
    // Who keeps what: an unreleased lost node keeps its instance (it may
    // still run it); a drained or released one gives it up, for ha only.
    let mut views: Vec<NodeView> = facts.iter().map(|f| f.view.clone()).collect();
    let mut must_move = false;
    for name in &o.placement {
        match fact(name) {
            None => must_move = true,
            Some(f) if !f.alive && !f.released => {
                if let Some(v) = views.iter_mut().find(|v| &v.name == name) {
                    v.schedulable = true;
                }
            }
            Some(f) if !f.view.schedulable || spec.avoid.contains(name) => must_move = true,
            Some(_) => {}
        }
    }
    if placed && !ha && (settings.is_failover() || o.placement.len() == want) {
        return Ok(None);
    }
    if placed && !must_move && o.placement.len() == want {
        return Ok(None);
    }
    let current: BTreeMap<String, usize> = o
        .placement
        .iter()
        .filter(|n| views.iter().any(|v| &v.name == *n && v.schedulable))
        .map(|n| (n.clone(), 1))
        .collect();
    let chosen = match place(&spec, &views, &current, want) {
        // A flex service runs as many instances as there is room for.
        Err(PlacementError::NotEnoughRoom { possible, .. })
            if !settings.is_failover() && possible > 0 =>
        {
            place(&spec, &views, &current, possible).map_err(|e| e.to_string())?
        }
        r => r.map_err(|e| e.to_string())?,
    };
    let mut nodes: Vec<String> = chosen.into_keys().collect();
    nodes.sort();
    let mut old = o.placement.clone();
    old.sort();
    if nodes == old {
        return Ok(None);
    }
    if settings.is_failover() {
        // Never two: while a live node other than the chosen one still
        // reports the instance running, first take the placement away.
        let elsewhere = reports.iter().any(|(node, insts)| {
            !nodes.contains(node)
                && fact(node).is_some_and(|f| f.alive)
                && insts
                    .iter()
                    .any(|i| i.path == o.path && matches!(i.avail, Avail::Up | Avail::Warn))
        });
        if elsewhere {
            return Ok(if placed { Some(Vec::new()) } else { None });
        }
    }
    Ok(Some(nodes))
}

#[cfg(test)]
#[path = "orchestrate_tests.rs"]
mod tests;
