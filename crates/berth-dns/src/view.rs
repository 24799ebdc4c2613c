//! The DNS server's view of the catalog: built from the replica and
//! rebuilt when a catalog record changes, so a query is a map lookup, not
//! a scan of the store. A rebuild follows a change within milliseconds.

use berth_kv::catalog::{self as cat, Health};
use berth_kv::Read;
use berth_store::Desired;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// One instance, as DNS needs it.
#[derive(Clone, Debug)]
pub struct Inst {
    pub node: String,
    pub address: String,
    pub port: u16,
    /// Lowercased.
    pub tags: Vec<String>,
    pub critical: bool,
}

#[derive(Default)]
pub struct View {
    /// Lowercased service name → instances.
    pub services: HashMap<String, Vec<Inst>>,
    /// Lowercased node name → address.
    pub nodes: HashMap<String, String>,
    /// `namespace/name` → instances of berth's object.
    pub berth: HashMap<String, Vec<Inst>>,
}

impl View {
    pub fn build(t: &dyn Read) -> std::io::Result<View> {
        let nodes: HashMap<String, String> = cat::nodes(t)?
            .into_iter()
            .map(|n| (n.name, n.address))
            .collect();
        let mut node_critical: HashMap<String, bool> = HashMap::new();
        let mut svc_critical: HashMap<(String, String), bool> = HashMap::new();
        for c in cat::checks(t, None)? {
            let bad = c.status == Health::Critical;
            if c.service_id.is_empty() {
                *node_critical.entry(c.node).or_default() |= bad;
            } else {
                *svc_critical.entry((c.node, c.service_id)).or_default() |= bad;
            }
        }
        let mut v = View::default();
        for s in cat::services(t, None)? {
            let address = if s.address.is_empty() {
                nodes.get(&s.node).cloned().unwrap_or_default()
            } else {
                s.address.clone()
            };
            let critical = node_critical.get(&s.node).copied().unwrap_or(false)
                || svc_critical
                    .get(&(s.node.clone(), s.id.clone()))
                    .copied()
                    .unwrap_or(false);
            let inst = Inst {
                node: s.node.clone(),
                address,
                port: s.port,
                tags: s.tags.iter().map(|t| t.to_ascii_lowercase()).collect(),
                critical,
            };
            if let Some(path) = s.meta.get("berth-path") {
                v.berth
                    .entry(path.to_ascii_lowercase())
                    .or_default()
                    .push(inst.clone());
            }
            v.services
                .entry(s.name.to_ascii_lowercase())
                .or_default()
                .push(inst);
        }
        v.nodes = nodes
            .into_iter()
            .map(|(k, a)| (k.to_ascii_lowercase(), a))
            .collect();
        Ok(v)
    }
}

pub type Shared = Arc<RwLock<Arc<View>>>;

fn catalog_key(k: &str) -> bool {
    k.starts_with("catalog/") || k.starts_with(cat::TOMBSTONES)
}

/// Keeps `shared` current with the replica until the process ends.
pub async fn follow(desired: Arc<Desired>, shared: Shared) {
    let mut rx = desired.subscribe();
    loop {
        match View::build(desired.as_ref()) {
            Ok(v) => *shared.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(v),
            Err(e) => tracing::warn!("dns view: {e}"),
        }
        if !berth_store::next_change(&mut rx, catalog_key).await {
            return;
        }
    }
}
