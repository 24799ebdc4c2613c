//! The OpenAPI 3.1 document of `/v1`. The keyword schema is generated from
//! the drivers' keyword tables, like validation and `berth doc`.

use berth_api_types::{Answer, RouteInfo, ROUTES};
use serde_json::{json, Value};

fn errors() -> Value {
    let err = json!({"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let with = |d: &str| {
        let mut e = err.clone();
        e["description"] = d.into();
        e
    };
    json!({
        "400": with("bad input"),
        "403": with("refused: beyond this node's role"),
        "404": with("no such object or no match"),
        "409": with("conflicts with the current state"),
        "503": with("no cluster leader right now; see Retry-After"),
    })
}

fn operation(r: &RouteInfo) -> Value {
    let params: Vec<Value> = r
        .query
        .iter()
        .map(|(name, required, desc)| {
            json!({"name": name, "in": "query", "required": required, "description": desc, "schema": {"type": "string"}})
        })
        .collect();
    let mut responses = errors();
    let media = match r.answer {
        Answer::Json => "application/json",
        Answer::Stream => "text/event-stream",
    };
    responses["200"] = json!({"description": r.reply, "content": {media: {}}});
    let mut o = json!({"summary": r.summary, "parameters": params, "responses": responses});
    if let Some(b) = r.body {
        o["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
    }
    o
}

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for r in ROUTES {
        let method = r.method.as_str().to_ascii_lowercase();
        paths.insert(r.path.to_string(), json!({ method: operation(r) }));
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "berth daemon API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"schemas": {
            "Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
            "CreateRequest": {"type": "object", "properties": {"path": {"type": "string"}, "kws": {"type": "array", "items": {"type": "string"}}, "config": {"type": "string"}}, "required": ["path"]},
            "EditRequest": {"type": "object", "properties": {"selector": {"type": "string"}, "set": {"type": "array", "items": {"type": "string"}}, "unset": {"type": "array", "items": {"type": "string"}}}, "required": ["selector"]},
            "ActionRequest": {"type": "object", "properties": {"path": {"type": "string"}, "action": {"enum": ["start", "stop", "restart", "freeze", "thaw", "delete"]}, "local": {"type": "boolean"}}, "required": ["path", "action"]},
            "SwitchRequest": {"type": "object", "properties": {"path": {"type": "string"}, "to": {"type": ["string", "null"]}}, "required": ["path"]},
            "DeployRequest": {"type": "object", "properties": {"path": {"type": "string"}, "parallelism": {"type": ["integer", "null"], "minimum": 1}, "delay_ms": {"type": ["integer", "null"], "minimum": 0}, "order": {"enum": ["stop-first", "start-first", null]}}, "required": ["path"]},
            "PathBody": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
            "InitRequest": {"type": "object", "properties": {"advertise": {"type": ["string", "null"], "description": "ip:port peers dial; the default route's address when absent"}, "name": {"type": "string"}}},
            "JoinRequest": {"type": "object", "properties": {"addr": {"type": "string"}, "token": {"type": "string"}, "advertise": {"type": ["string", "null"], "description": "ip:port peers dial; the address that reaches addr when absent"}}, "required": ["addr", "token"]},
            "AutolockRequest": {"type": "object", "properties": {"op": {"enum": ["enable", "rotate", "disable"]}}, "required": ["op"]},
            "UnlockRequest": {"type": "object", "properties": {"key": {"type": "string", "description": "BERTH-UNLOCK-..."}}, "required": ["key"]},
            "TokenRequest": {"type": "object", "properties": {"role": {"enum": ["worker", "manager"]}, "rotate": {"type": "boolean"}}, "required": ["role"]},
            "NodeOpRequest": {"type": "object", "properties": {"node": {"type": "string"}, "op": {"enum": ["label", "drain", "undrain", "freeze", "thaw", "promote", "demote", "remove"]}, "set": {"type": "array", "items": {"type": "string"}}, "unset": {"type": "array", "items": {"type": "string"}}}, "required": ["node", "op"]},
            "KvPutRequest": {"type": "object", "properties": {"key": {"type": "string"}, "value": {"type": ["string", "null"], "contentEncoding": "base64"}, "flags": {"type": "integer"}, "cas": {"type": ["integer", "null"]}}, "required": ["key"]},
            "KvDeleteRequest": {"type": "object", "properties": {"key": {"type": "string"}, "recurse": {"type": "boolean"}, "cas": {"type": ["integer", "null"]}}, "required": ["key"]},
            "UserCreateRequest": {"type": "object", "properties": {"name": {"type": "string"}, "password": {"type": ["string", "null"]}, "groups": {"type": "array", "items": {"type": "string"}}, "grants": {"type": "array", "items": {"type": "string"}}}, "required": ["name"]},
            "NameRequest": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "PasswdRequest": {"type": "object", "properties": {"name": {"type": "string"}, "password": {"type": "string"}}, "required": ["name", "password"]},
            "GrantRequest": {"type": "object", "properties": {"name": {"type": "string"}, "group": {"type": "boolean"}, "grants": {"type": "array", "items": {"type": "string", "description": "root, squatter, admin:<ns glob>, operator:<ns glob>[:restricted], guest:<ns glob>, kv:<key glob>:read|write"}}, "revoke": {"type": "boolean"}}, "required": ["name", "grants"]},
            "GroupCreateRequest": {"type": "object", "properties": {"name": {"type": "string"}, "grants": {"type": "array", "items": {"type": "string"}}}, "required": ["name"]},
            "TokenCreateRequest": {"type": "object", "properties": {"user": {"type": "string"}, "ttl_secs": {"type": "integer"}, "grants": {"type": ["array", "null"], "items": {"type": "string"}}}, "required": ["user", "ttl_secs"]},
            "TokenRevokeRequest": {"type": "object", "properties": {"token": {"type": "string", "description": "a whole token or its id"}}, "required": ["token"]},
            "LoginRequest": {"type": "object", "properties": {"user": {"type": "string"}, "password": {"type": "string"}, "ttl_secs": {"type": "integer"}}, "required": ["user", "password", "ttl_secs"]},
            "SecretPutRequest": {"type": "object", "properties": {"path": {"type": "string"}, "key": {"type": "string"}, "value": {"type": "string", "contentEncoding": "base64", "description": "at most 500 KiB once decoded"}, "change": {"type": "boolean"}}, "required": ["path", "key", "value"]},
            "SecretRemoveRequest": {"type": "object", "properties": {"path": {"type": "string"}, "key": {"type": "string"}}, "required": ["path", "key"]},
            "Keywords": berth_drivers::registry().json_schema()
        }}
    })
}
