//! The catalog: nodes, services and health checks, as Consul's catalog
//! holds them, replicated through Raft like the KV store.
//!
//! Each node writes its own registrations (its containers, the services
//! and checks registered through its agent API) and its checks' status
//! changes; the leader writes node health (`serfHealth`) and
//! deregistrations of critical services. Keys group records by service
//! name, so a query about one service depends on that service's keys
//! only: `catalog/node/<node>`, `catalog/svc/<name>/<node>/<id>`, and
//! `catalog/check/<service name, or _node>/<node>/<check id>`.

use crate::read::Read;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;

pub const NODES: &str = "catalog/node/";
pub const SERVICES: &str = "catalog/svc/";
pub const CHECKS: &str = "catalog/check/";
/// `catt/<key>`: the index a catalog record was removed at.
pub const TOMBSTONES: &str = "catt/";
/// The check group of node checks.
pub const NODE_GROUP: &str = "_node";
/// The node check that stands for berth's own node liveness.
pub const SERF_HEALTH: &str = "serfHealth";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    #[default]
    Passing,
    Warning,
    Critical,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Passing => "passing",
            Health::Warning => "warning",
            Health::Critical => "critical",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    pub address: String,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

/// Who registered a service: the registrator and berth's own instances
/// are resynced against what runs; the agent API's stay until removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Api,
    Berth,
    Registrator,
}

/// The meta key holding the object path of a berth instance's entry.
pub const PATH_META: &str = "berth-path";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub node: String,
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Empty: the node's address.
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl Service {
    /// The object a berth instance's entry stands for (its `berth-path`
    /// meta); `None` for entries bound to no object.
    pub fn berth_path(&self) -> Option<&str> {
        self.meta.get(PATH_META).map(String::as_str)
    }
}

/// How a check is run, by the node that registered it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckDef {
    #[serde(default)]
    pub http: String,
    #[serde(default)]
    pub tcp: String,
    /// A TTL check: critical unless updated within it.
    #[serde(default)]
    pub ttl_ms: u64,
    #[serde(default)]
    pub interval_ms: u64,
    #[serde(default)]
    pub timeout_ms: u64,
    /// The service is deregistered once this check has been critical
    /// this long (0: never).
    #[serde(default)]
    pub deregister_critical_after_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub node: String,
    pub id: String,
    pub name: String,
    pub status: Health,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub notes: String,
    /// Empty for a node check.
    #[serde(default)]
    pub service_id: String,
    #[serde(default)]
    pub service_name: String,
    #[serde(default)]
    pub def: CheckDef,
    /// When it turned critical (the writer's clock, ms).
    #[serde(default)]
    pub critical_since_ms: Option<u64>,
    #[serde(default)]
    pub create_index: u64,
    #[serde(default)]
    pub modify_index: u64,
}

impl Check {
    pub fn group(&self) -> &str {
        if self.service_name.is_empty() {
            NODE_GROUP
        } else {
            &self.service_name
        }
    }
}

pub fn node_key(node: &str) -> String {
    format!("{NODES}{node}")
}

pub fn service_key(name: &str, node: &str, id: &str) -> String {
    format!("{SERVICES}{name}/{node}/{id}")
}

pub fn check_key(group: &str, node: &str, id: &str) -> String {
    format!("{CHECKS}{group}/{node}/{id}")
}

/// A write to the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogOp {
    RegisterNode(Node),
    /// Creates or replaces the service `node`/`id`, and its checks.
    RegisterService {
        service: Service,
        checks: Vec<Check>,
    },
    RegisterCheck(Check),
    /// Removes the service and its checks.
    DeregisterService {
        node: String,
        id: String,
    },
    DeregisterCheck {
        node: String,
        id: String,
    },
    /// Removes the node, its services and its checks.
    DeregisterNode {
        node: String,
    },
    /// A check's new status; nothing is written if nothing changed.
    SetStatus {
        node: String,
        id: String,
        status: Health,
        output: String,
        now_ms: u64,
    },
}

impl CatalogOp {
    /// The node whose records the operation writes.
    pub fn node(&self) -> &str {
        match self {
            CatalogOp::RegisterNode(n) => &n.name,
            CatalogOp::RegisterService { service, .. } => &service.node,
            CatalogOp::RegisterCheck(c) => &c.node,
            CatalogOp::DeregisterService { node, .. }
            | CatalogOp::DeregisterCheck { node, .. }
            | CatalogOp::DeregisterNode { node }
            | CatalogOp::SetStatus { node, .. } => node,
        }
    }
}

fn decode<T: serde::de::DeserializeOwned>(k: &str, v: &str) -> io::Result<T> {
    serde_json::from_str(v)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{k}: {e}")))
}

fn scan<T: serde::de::DeserializeOwned>(t: &dyn Read, prefix: &str) -> io::Result<Vec<T>> {
    t.scan(prefix)?.iter().map(|(k, v)| decode(k, v)).collect()
}

pub fn nodes(t: &dyn Read) -> io::Result<Vec<Node>> {
    scan(t, NODES)
}

pub fn node(t: &dyn Read, name: &str) -> io::Result<Option<Node>> {
    let k = node_key(name);
    t.get(&k)?.map(|v| decode(&k, &v)).transpose()
}

/// Every service; with `name`, the instances of that service.
pub fn services(t: &dyn Read, name: Option<&str>) -> io::Result<Vec<Service>> {
    match name {
        None => scan(t, SERVICES),
        Some(n) => scan(t, &format!("{SERVICES}{n}/")),
    }
}

/// Every check; with `group`, a service's checks (or `_node`'s).
pub fn checks(t: &dyn Read, group: Option<&str>) -> io::Result<Vec<Check>> {
    match group {
        None => scan(t, CHECKS),
        Some(g) => scan(t, &format!("{CHECKS}{g}/")),
    }
}

/// The highest index among the records under `prefixes` and their
/// removals; at least 1.
pub fn index_under(t: &dyn Read, prefixes: &[String]) -> io::Result<u64> {
    let mut best = 1;
    for p in prefixes {
        for (k, v) in t.scan(p)? {
            let rec: serde_json::Value = decode(&k, &v)?;
            best = best.max(rec["modify_index"].as_u64().unwrap_or(0));
        }
        for (k, v) in t.scan(&format!("{TOMBSTONES}{p}"))? {
            best = best.max(decode::<u64>(&k, &v)?);
        }
    }
    Ok(best)
}

/// One instance of a service with its node and its checks (the node's
/// and its own), as the health endpoint and DNS see it.
#[derive(Clone, Debug)]
pub struct Instance {
    pub service: Service,
    pub node: Option<Node>,
    pub checks: Vec<Check>,
}

impl Instance {
    /// The worst status of its checks; passing without any.
    pub fn health(&self) -> Health {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Health::Passing)
    }

    /// The address it is reached at: its own, else its node's.
    pub fn address(&self) -> &str {
        if self.service.address.is_empty() {
            self.node.as_ref().map_or("", |n| n.address.as_str())
        } else {
            &self.service.address
        }
    }
}

/// The instances of service `name`, with the tag when given (tags match
/// case-insensitively).
pub fn instances(t: &dyn Read, name: &str, tag: Option<&str>) -> io::Result<Vec<Instance>> {
    let nodes: BTreeMap<String, Node> =
        nodes(t)?.into_iter().map(|n| (n.name.clone(), n)).collect();
    let node_checks = checks(t, Some(NODE_GROUP))?;
    let own = checks(t, Some(name))?;
    Ok(services(t, Some(name))?
        .into_iter()
        .filter(|s| tag.is_none_or(|want| s.tags.iter().any(|x| x.eq_ignore_ascii_case(want))))
        .map(|s| {
            let checks = node_checks
                .iter()
                .filter(|c| c.node == s.node)
                .chain(
                    own.iter()
                        .filter(|c| c.node == s.node && c.service_id == s.id),
                )
                .cloned()
                .collect();
            Instance {
                node: nodes.get(&s.node).cloned(),
                checks,
                service: s,
            }
        })
        .collect())
}

#[cfg(test)]
#[path = "catalog_tests.rs"]
mod tests;
