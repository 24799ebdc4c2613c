//! `/v1/status/*` and `/v1/agent/self`: who leads, the voters, and what
//! this agent is.

use crate::reply::{json, ApiResult};
use crate::State;
use serde_json::json;

/// A standalone node has no node address: it leads at its API's.
fn or_self(c: &crate::Consul, addr: String) -> String {
    if addr.is_empty() {
        c.opts.addr.map(|a| a.to_string()).unwrap_or_default()
    } else {
        addr
    }
}

/// The leader's address, or `""` when none is known (as Consul).
pub async fn leader(state: State) -> ApiResult {
    let c = &state.0;
    let addr = c
        .desired()
        .leader()
        .map(|(_, a)| or_self(c, a))
        .unwrap_or_default();
    Ok(json(&addr))
}

pub async fn peers(state: State) -> ApiResult {
    let c = &state.0;
    let m = c.desired().membership();
    let peers: Vec<String> = m
        .voters
        .iter()
        .filter_map(|id| m.nodes.get(id).cloned())
        .map(|a| or_self(c, a))
        .collect();
    Ok(json(&peers))
}

pub async fn agent_self(state: State) -> ApiResult {
    let c = &state.0;
    let node = c.cluster.nodename();
    let server = c
        .cluster
        .identity()
        .is_none_or(|i| i.role == berth_model::cluster::NodeRole::Manager);
    Ok(json(&json!({
        "Config": {
            "Datacenter": c.opts.datacenter,
            "NodeName": node,
            "Server": server,
            "Version": env!("CARGO_PKG_VERSION"),
            "Revision": "berth",
        },
        "Member": {
            "Name": node,
            "Status": 1,
        },
        "Meta": {},
    })))
}
