//! The OpenAPI 3.1 document of `/v1`. The keyword schema is generated from
//! the drivers' keyword tables, like validation and `berth doc`.

use serde_json::{json, Value};

fn op(summary: &str, params: Value, body: Option<&str>, response: &str) -> Value {
    let mut o = json!({
        "summary": summary,
        "parameters": params,
        "responses": {
            "200": {"description": response},
            "400": {"description": "bad input", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            "404": {"description": "no such object or no match", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
    });
    if let Some(b) = body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
    }
    o
}

fn q(name: &str, required: bool, desc: &str) -> Value {
    json!({"name": name, "in": "query", "required": required, "description": desc, "schema": {"type": "string"}})
}

pub fn document() -> Value {
    let sel = q(
        "selector",
        true,
        "Object selector: globs, ',' union, '+' intersection, '!' negation, kw=value filters",
    );
    let allow_empty = q(
        "allow_empty",
        false,
        "true: a selection matching nothing is an empty list, not a 404",
    );
    let path = q("path", true, "Object path, ns/name");
    json!({
        "openapi": "3.1.0",
        "info": {"title": "berth daemon API", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/v1/daemon": {"get": op("Daemon identity and version", json!([]), None, "daemon info")},
            "/v1/openapi.json": {"get": op("This document", json!([]), None, "OpenAPI document")},
            "/v1/schema/keywords": {"get": op("Keyword schema of every section type", json!([]), None, "keyword schema")},
            "/v1/objects": {"get": op("Objects matching a selector", json!([sel.clone(), allow_empty.clone()]), None, "object list")},
            "/v1/objects/create": {"post": op("Create an object", json!([]), Some("CreateRequest"), "created object")},
            "/v1/objects/edit": {"post": op("Set and unset keywords on selected objects, all or nothing", json!([]), Some("EditRequest"), "per-object outcome")},
            "/v1/objects/action": {"post": op("Run start, stop, restart, freeze, thaw or delete on one object and wait for it", json!([]), Some("ActionRequest"), "action outcome with the Docker commands run")},
            "/v1/objects/config": {"get": op("The object's config file text", json!([path.clone()]), None, "text/plain config")},
            "/v1/objects/keyword": {"get": op("One keyword's value", json!([path.clone(), q("kw", true, "section.keyword"), q("eval", false, "true for the effective value")]), None, "keyword value")},
            "/v1/objects/status": {"get": op("Status of selected objects", json!([sel, allow_empty]), None, "object status list")},
            "/v1/objects/switch": {"post": op("Move a service to a node (switch, takeover), or let the scheduler place it again (giveback)", json!([]), Some("SwitchRequest"), "action outcome")},
            "/v1/cluster/init": {"post": op("Make this node the first manager of a new cluster", json!([]), Some("InitRequest"), "cluster summary with join tokens")},
            "/v1/cluster/join": {"post": op("Join the cluster of the manager at addr with a join token", json!([]), Some("JoinRequest"), "cluster summary")},
            "/v1/cluster/token": {"post": op("Show or rotate a join token (managers only)", json!([]), Some("TokenRequest"), "token")},
            "/v1/cluster/ca/rotate": {"post": op("Replace the cluster CA without downtime; returns the new join tokens (managers only)", json!([]), None, "cluster summary with join tokens")},
            "/v1/cluster/leave": {"post": op("Leave the cluster: services move elsewhere, the node becomes standalone and empty; the last member dissolves the cluster and keeps its objects", json!([]), None, "message")},
            "/v1/cluster/status": {"get": op("Nodes, roles, leader, liveness and the instances each node reports", json!([]), None, "cluster view")},
            "/v1/nodes/op": {"post": op("Label, drain, undrain, freeze, thaw, promote, demote or remove a node", json!([]), Some("NodeOpRequest"), "node record")},
            "/v1/events": {"get": op("Server-sent event stream", json!([q("since", false, "replay events after this sequence number"), q("last", false, "replay the last N events"), q("follow", false, "keep streaming (default true)")]), None, "text/event-stream of Event JSON")}
        },
        "components": {"schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
            "CreateRequest": {"type": "object", "properties": {"path": {"type": "string"}, "kws": {"type": "array", "items": {"type": "string"}}, "config": {"type": "string"}}, "required": ["path"]},
            "EditRequest": {"type": "object", "properties": {"selector": {"type": "string"}, "set": {"type": "array", "items": {"type": "string"}}, "unset": {"type": "array", "items": {"type": "string"}}}, "required": ["selector"]},
            "ActionRequest": {"type": "object", "properties": {"path": {"type": "string"}, "action": {"enum": ["start", "stop", "restart", "freeze", "thaw", "delete"]}, "local": {"type": "boolean"}}, "required": ["path", "action"]},
            "SwitchRequest": {"type": "object", "properties": {"path": {"type": "string"}, "to": {"type": ["string", "null"]}}, "required": ["path"]},
            "InitRequest": {"type": "object", "properties": {"advertise": {"type": "string", "description": "ip:port peers dial"}, "name": {"type": "string"}}, "required": ["advertise"]},
            "JoinRequest": {"type": "object", "properties": {"addr": {"type": "string"}, "token": {"type": "string"}, "advertise": {"type": "string"}}, "required": ["addr", "token", "advertise"]},
            "TokenRequest": {"type": "object", "properties": {"role": {"enum": ["worker", "manager"]}, "rotate": {"type": "boolean"}}, "required": ["role"]},
            "NodeOpRequest": {"type": "object", "properties": {"node": {"type": "string"}, "op": {"enum": ["label", "drain", "undrain", "freeze", "thaw", "promote", "demote", "remove"]}, "set": {"type": "array", "items": {"type": "string"}}, "unset": {"type": "array", "items": {"type": "string"}}}, "required": ["node", "op"]},
            "Keywords": berth_drivers::registry().json_schema()
        }}
    })
}
