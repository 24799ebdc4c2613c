//! `/v1/agent/*` registrations and `/v1/catalog/register|deregister`:
//! written to the catalog through the leader, as this node's user's
//! commands. Checks registered here are run by this node (`checks.rs`).

use crate::catalog::done;
use crate::reply::{json, ApiError, ApiResult};
use crate::{register, render, Consul, State};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::Uri;
use berth_cluster::Command;
use berth_kv::catalog::{self as cat, CatalogOp, Health, Node};
use berth_model::cluster::NodeState;
use serde_json::{json, Map, Value};

impl Consul {
    pub async fn catalog(&self, ops: Vec<CatalogOp>) -> Result<(), ApiError> {
        self.cluster
            .submit(Command::Catalog {
                by: Some(self.user()),
                ops,
            })
            .await
            .map_err(crate::no_leader)?;
        Ok(())
    }

    fn me(&self) -> &str {
        self.cluster.nodename()
    }
}

pub async fn service_register(state: State, body: Bytes) -> ApiResult {
    let c = &state.0;
    let o = register::object(&body)?;
    let (service, checks) = register::service(&o, c.me(), "Name")?;
    c.catalog(vec![CatalogOp::RegisterService { service, checks }])
        .await?;
    Ok(json(&Value::Null))
}

pub async fn service_deregister(state: State, Path(id): Path<String>) -> ApiResult {
    let c = &state.0;
    let node = c.me().to_string();
    let exists = cat::services(c.desired().as_ref(), None)
        .map_err(ApiError::from)?
        .iter()
        .any(|s| s.node == node && s.id == id);
    if !exists {
        return Err(ApiError::new(404, format!("Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name.")));
    }
    c.catalog(vec![CatalogOp::DeregisterService { node, id }])
        .await?;
    Ok(json(&Value::Null))
}

pub async fn services(state: State) -> ApiResult {
    let c = &state.0;
    let view = crate::acl::CatalogView::of(c)?;
    let out: Map<String, Value> = cat::services(c.desired().as_ref(), None)
        .map_err(ApiError::from)?
        .iter()
        .filter(|s| s.node == c.me() && view.sees(s))
        .map(|s| (s.id.clone(), render::agent_service(s, c.dc())))
        .collect();
    Ok(json(&out))
}

pub async fn checks(state: State) -> ApiResult {
    let c = &state.0;
    let view = crate::acl::CatalogView::of(c)?;
    let hidden = view
        .hidden_ids(c.desired().as_ref())
        .map_err(ApiError::from)?;
    let out: Map<String, Value> = cat::checks(c.desired().as_ref(), None)
        .map_err(ApiError::from)?
        .iter()
        .filter(|ch| ch.node == c.me() && !hidden.contains(&ch.service_id))
        .map(|ch| (ch.id.clone(), render::check(ch)))
        .collect();
    Ok(json(&out))
}

pub async fn members(state: State) -> ApiResult {
    let c = &state.0;
    let view = c.cluster.view().await;
    let mut out: Vec<Value> = view
        .nodes
        .iter()
        .map(|n| {
            let host = n
                .record
                .addr
                .rsplit_once(':')
                .map_or(n.record.addr.as_str(), |(h, _)| h);
            json!({
                "Name": n.record.name,
                "Addr": host,
                "Port": 8301,
                "Tags": {"role": if n.voter { "consul" } else { "node" }, "dc": c.dc()},
                "Status": if n.state == NodeState::Down { 4 } else { 1 },
            })
        })
        .collect();
    if out.is_empty() {
        out.push(json!({"Name": c.me(), "Addr": "127.0.0.1", "Port": 8301, "Tags": {"role": "consul", "dc": c.dc()}, "Status": 1}));
    }
    Ok(json(&out))
}

pub async fn check_register(state: State, body: Bytes) -> ApiResult {
    let c = &state.0;
    let o = register::object(&body)?;
    let mut check = register::check(&o, c.me(), "", "")?;
    if check.name.is_empty() {
        return Err(ApiError::bad("Missing check name"));
    }
    if !check.service_id.is_empty() {
        let svc = cat::services(c.desired().as_ref(), None)
            .map_err(ApiError::from)?
            .into_iter()
            .find(|s| s.node == c.me() && s.id == check.service_id)
            .ok_or_else(|| {
                ApiError::internal(format!("ServiceID {:?} does not exist", check.service_id))
            })?;
        check.service_name = svc.name;
    }
    c.catalog(vec![CatalogOp::RegisterCheck(check)]).await?;
    Ok(json(&Value::Null))
}

pub async fn check_deregister(state: State, Path(id): Path<String>) -> ApiResult {
    let c = &state.0;
    c.catalog(vec![CatalogOp::DeregisterCheck {
        node: c.me().to_string(),
        id,
    }])
    .await?;
    Ok(json(&Value::Null))
}

/// `pass`, `warn` and `fail` of a TTL check.
pub async fn check_ttl(
    state: State,
    uri: Uri,
    Path((verb, id)): Path<(String, String)>,
) -> ApiResult {
    let c = &state.0;
    let status = match verb.as_str() {
        "pass" => Health::Passing,
        "warn" => Health::Warning,
        "fail" => Health::Critical,
        _ => return Err(ApiError::new(404, "no such endpoint")),
    };
    let note = crate::params::Params::parse(uri.query())?
        .get("note")
        .unwrap_or_default()
        .to_string();
    c.ttl_update(&id, status, note).await
}

pub async fn check_update(state: State, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let c = &state.0;
    let o = register::object(&body)?;
    let status = register::health(&register::text(&o, "Status")?)?;
    c.ttl_update(&id, status, register::text(&o, "Output")?)
        .await
}

impl Consul {
    async fn ttl_update(&self, id: &str, status: Health, output: String) -> ApiResult {
        let check = cat::checks(self.desired().as_ref(), None)
            .map_err(ApiError::from)?
            .into_iter()
            .find(|ch| ch.node == self.me() && ch.id == id)
            .ok_or_else(|| ApiError::new(404, format!("Unknown check ID {id:?}")))?;
        if check.def.ttl_ms == 0 {
            return Err(ApiError::internal(format!(
                "Check {id:?} is not a TTL check"
            )));
        }
        self.checks.ttl_touched(id);
        self.catalog(vec![CatalogOp::SetStatus {
            node: self.me().to_string(),
            id: id.to_string(),
            status,
            output,
            now_ms: crate::now_ms(),
        }])
        .await?;
        Ok(json(&Value::Null))
    }
}

pub async fn catalog_register(state: State, body: Bytes) -> ApiResult {
    let c = &state.0;
    let o = register::object(&body)?;
    let node = register::text(&o, "Node")?;
    if node.is_empty() {
        return Err(ApiError::bad("Must provide node"));
    }
    let address = register::text(&o, "Address")?;
    let mut ops = Vec::new();
    let skip = matches!(
        crate::txn::field(&o, "SkipNodeUpdate"),
        Some(Value::Bool(true))
    );
    if !skip {
        if address.is_empty() {
            return Err(ApiError::bad(
                "Must provide address if SkipNodeUpdate is not set",
            ));
        }
        ops.push(CatalogOp::RegisterNode(Node {
            name: node.clone(),
            address,
            meta: register::meta(&o, "NodeMeta")?,
            ..Default::default()
        }));
    }
    let mut service_name = None;
    if let Some(Value::Object(s)) = crate::txn::field(&o, "Service") {
        let (svc, _) = register::service(s, &node, "Service")?;
        service_name = Some((svc.id.clone(), svc.name.clone()));
        ops.push(CatalogOp::RegisterService {
            service: svc,
            checks: Vec::new(),
        });
    }
    let mut defs = Vec::new();
    if let Some(Value::Object(ch)) = crate::txn::field(&o, "Check") {
        defs.push(ch.clone());
    }
    if let Some(Value::Array(list)) = crate::txn::field(&o, "Checks") {
        defs.extend(list.iter().filter_map(|v| v.as_object().cloned()));
    }
    for d in defs {
        let mut ch = register::check(&d, &node, "", "")?;
        if let Some((id, name)) = &service_name {
            if ch.service_id.is_empty() || &ch.service_id == id {
                ch.service_id = id.clone();
                ch.service_name = name.clone();
            }
        }
        ops.push(CatalogOp::RegisterCheck(ch));
    }
    c.catalog(ops).await?;
    done()
}

pub async fn catalog_deregister(state: State, body: Bytes) -> ApiResult {
    let c = &state.0;
    let o = register::object(&body)?;
    let node = register::text(&o, "Node")?;
    if node.is_empty() {
        return Err(ApiError::bad("Must provide node"));
    }
    let service = register::text(&o, "ServiceID")?;
    let check = register::text(&o, "CheckID")?;
    let op = match (service.is_empty(), check.is_empty()) {
        (true, true) => CatalogOp::DeregisterNode { node },
        (false, _) => CatalogOp::DeregisterService { node, id: service },
        (true, false) => CatalogOp::DeregisterCheck { node, id: check },
    };
    c.catalog(vec![op]).await?;
    done()
}
