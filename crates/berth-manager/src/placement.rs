//! Placement: which nodes run the instances of a service.
//!
//! Inputs are the `nodes` keyword (names, globs, `key=value` label
//! selectors), a hard limit of instances per node (the seed's "only one
//! haproxy per node"), hard and soft anti-affinity with other services
//! (nodes to avoid, nodes to use last), and the cluster's nodes with their
//! load. The default
//! is to spread: fewest instances of this service first, then least-loaded
//! node, then name, so the result is deterministic. Instances already on an
//! eligible node stay there (a scheduler must not bounce what runs).

use berth_model::glob_match;
use std::collections::{BTreeMap, BTreeSet};

/// One node as placement sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeView {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Can take new instances: up, not drained, not frozen. For a failover
    /// service, a lost node must stay schedulable (keeping its instance)
    /// until `Liveness::failover_allowed` says its lease is over; being
    /// merely "down" is not enough (`design/failover.md`).
    pub schedulable: bool,
    /// Instances of every service already on the node.
    pub load: usize,
}

/// One word of the `nodes` keyword.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeSelector {
    /// A node name or a glob on it (`*`, `node[12]`).
    Name(String),
    /// `key=value`, the value a glob, on node labels.
    Label { key: String, value: String },
}

impl NodeSelector {
    pub fn parse(word: &str) -> NodeSelector {
        match word.split_once('=') {
            Some((k, v)) => NodeSelector::Label {
                key: k.to_string(),
                value: v.to_string(),
            },
            None => NodeSelector::Name(word.to_string()),
        }
    }

    pub fn matches(&self, node: &NodeView) -> bool {
        match self {
            NodeSelector::Name(g) => glob_match(g, &node.name),
            NodeSelector::Label { key, value } => {
                node.labels.get(key).is_some_and(|v| glob_match(value, v))
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementSpec {
    /// A node qualifies if any selector matches; empty means every node.
    pub nodes: Vec<NodeSelector>,
    /// Hard anti-affinity: at most this many instances on one node.
    pub max_per_node: Option<usize>,
    /// Hard anti-affinity with other services: never on these nodes.
    pub avoid: BTreeSet<String>,
    /// Soft anti-affinity: these nodes only when no other will do.
    pub prefer_not: BTreeSet<String>,
}

impl PlacementSpec {
    /// From the words of the `nodes` keyword.
    pub fn from_words(words: &[String], max_per_node: Option<usize>) -> PlacementSpec {
        PlacementSpec {
            nodes: words.iter().map(|w| NodeSelector::parse(w)).collect(),
            max_per_node,
            avoid: BTreeSet::new(),
            prefer_not: BTreeSet::new(),
        }
    }

    fn eligible(&self, n: &NodeView) -> bool {
        n.schedulable
            && !self.avoid.contains(&n.name)
            && (self.nodes.is_empty() || self.nodes.iter().any(|s| s.matches(n)))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("no schedulable node matches the placement")]
    NoEligibleNode,
    #[error("a limit of 0 instances per node places nothing")]
    ZeroLimit,
    #[error("only {possible} of {wanted} instances can be placed within the constraints")]
    NotEnoughRoom { wanted: usize, possible: usize },
}

/// The target assignment (node → instances) for `want` instances, keeping
/// `current` instances where their node is still eligible.
pub fn place(
    spec: &PlacementSpec,
    nodes: &[NodeView],
    current: &BTreeMap<String, usize>,
    want: usize,
) -> Result<BTreeMap<String, usize>, PlacementError> {
    if spec.max_per_node == Some(0) {
        return Err(PlacementError::ZeroLimit);
    }
    let eligible: Vec<&NodeView> = nodes.iter().filter(|n| spec.eligible(n)).collect();
    if want == 0 {
        return Ok(BTreeMap::new());
    }
    if eligible.is_empty() {
        return Err(PlacementError::NoEligibleNode);
    }
    let cap = spec.max_per_node.unwrap_or(usize::MAX);
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    for n in &eligible {
        let kept = current.get(&n.name).copied().unwrap_or(0).min(cap);
        if kept > 0 {
            out.insert(n.name.clone(), kept);
        }
    }
    let load = |name: &str| {
        eligible
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.load)
            .unwrap_or(0)
    };
    // Too many kept: remove from the most crowded nodes first.
    while out.values().sum::<usize>() > want {
        let victim = out
            .iter()
            .max_by(|a, b| {
                a.1.cmp(b.1)
                    .then(load(a.0).cmp(&load(b.0)))
                    .then(a.0.cmp(b.0))
            })
            .map(|(k, _)| k.clone());
        let Some(v) = victim else { break };
        match out.get_mut(&v) {
            Some(c) if *c > 1 => *c -= 1,
            _ => {
                out.remove(&v);
            }
        }
    }
    // Too few: add where this service has fewest, then away from soft
    // anti-affinity, then least load, then name.
    while out.values().sum::<usize>() < want {
        let next = eligible
            .iter()
            .filter(|n| out.get(&n.name).copied().unwrap_or(0) < cap)
            .min_by(|a, b| {
                let ca = out.get(&a.name).copied().unwrap_or(0);
                let cb = out.get(&b.name).copied().unwrap_or(0);
                ca.cmp(&cb)
                    .then(
                        spec.prefer_not
                            .contains(&a.name)
                            .cmp(&spec.prefer_not.contains(&b.name)),
                    )
                    .then(a.load.cmp(&b.load))
                    .then(a.name.cmp(&b.name))
            });
        match next {
            Some(n) => *out.entry(n.name.clone()).or_insert(0) += 1,
            None => {
                return Err(PlacementError::NotEnoughRoom {
                    wanted: want,
                    possible: out.values().sum(),
                })
            }
        }
    }
    Ok(out)
}

/// Failover restarts in `priority` order (lowest first), then by path.
pub fn restart_order<T>(items: &mut [(i64, String, T)]) {
    items.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
}

#[cfg(test)]
mod tests;
