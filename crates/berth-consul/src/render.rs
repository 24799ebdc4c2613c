//! The catalog's records in the JSON shapes Consul's endpoints answer
//! with.

use berth_kv::catalog::{Check, Node, Service};
use serde_json::{json, Value};

pub fn node(n: &Node, dc: &str) -> Value {
    json!({
        "ID": "",
        "Node": n.name,
        "Address": n.address,
        "Datacenter": dc,
        "TaggedAddresses": {"lan": n.address, "wan": n.address},
        "Meta": n.meta,
        "CreateIndex": n.create_index,
        "ModifyIndex": n.modify_index,
    })
}

/// A service as `/v1/health/service` and `/v1/catalog/node` show it.
pub fn service(s: &Service) -> Value {
    json!({
        "ID": s.id,
        "Service": s.name,
        "Tags": s.tags,
        "Address": s.address,
        "Meta": s.meta,
        "Port": s.port,
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": false,
        "CreateIndex": s.create_index,
        "ModifyIndex": s.modify_index,
    })
}

/// A service as `/v1/agent/services` shows it.
pub fn agent_service(s: &Service, dc: &str) -> Value {
    json!({
        "ID": s.id,
        "Service": s.name,
        "Tags": s.tags,
        "Meta": s.meta,
        "Port": s.port,
        "Address": s.address,
        "Weights": {"Passing": 1, "Warning": 1},
        "EnableTagOverride": false,
        "Datacenter": dc,
    })
}

/// A service instance as `/v1/catalog/service` shows it: node and
/// service fields flattened.
pub fn catalog_service(s: &Service, n: Option<&Node>, dc: &str) -> Value {
    let address = n.map(|n| n.address.clone()).unwrap_or_default();
    json!({
        "ID": "",
        "Node": s.node,
        "Address": address,
        "Datacenter": dc,
        "TaggedAddresses": {"lan": address, "wan": address},
        "NodeMeta": n.map(|n| n.meta.clone()).unwrap_or_default(),
        "ServiceKind": "",
        "ServiceID": s.id,
        "ServiceName": s.name,
        "ServiceTags": s.tags,
        "ServiceAddress": s.address,
        "ServiceWeights": {"Passing": 1, "Warning": 1},
        "ServiceMeta": s.meta,
        "ServicePort": s.port,
        "ServiceEnableTagOverride": false,
        "CreateIndex": s.create_index,
        "ModifyIndex": s.modify_index,
    })
}

pub fn check(c: &Check) -> Value {
    let kind = if !c.def.http.is_empty() {
        "http"
    } else if !c.def.tcp.is_empty() {
        "tcp"
    } else if c.def.ttl_ms > 0 {
        "ttl"
    } else {
        ""
    };
    json!({
        "Node": c.node,
        "CheckID": c.id,
        "Name": c.name,
        "Status": c.status.as_str(),
        "Notes": c.notes,
        "Output": c.output,
        "ServiceID": c.service_id,
        "ServiceName": c.service_name,
        "ServiceTags": [],
        "Type": kind,
        "CreateIndex": c.create_index,
        "ModifyIndex": c.modify_index,
    })
}
