//! The catalog endpoints of `berth catalog`, and the ingress's route
//! table of `berth ingress routes`: reads of this node's replica, the same
//! the Consul API and the ingress answer from.

use crate::caller::Caller;
use crate::routes::ApiError;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use berth_agent::{Agent, AgentError};
use berth_api_types::bodies::Empty;
use berth_api_types::catalog::*;
use berth_kv::catalog::{self as cat, Health};
use std::collections::BTreeMap;
use std::sync::Arc;

type S = State<Arc<Agent>>;

/// This node's ingress, when it runs one.
pub type IngressSlot = Option<Arc<berth_ingress::Ingress>>;

fn io(e: std::io::Error) -> ApiError {
    ApiError::from(AgentError::Io(e))
}

/// Whether `by` sees a catalog entry (`Rights::sees_entry`).
fn seer(
    a: &Agent,
    by: &berth_cluster::UserRef,
) -> Result<impl Fn(&cat::Service) -> bool, ApiError> {
    let rights = a.cluster().rights(by).map_err(AgentError::from)?;
    Ok(move |s: &cat::Service| rights.sees_entry(s.berth_path()))
}

pub(crate) async fn services(
    State(a): S,
    Caller(by): Caller,
    Query(_): Query<Empty>,
) -> Result<Json<ServiceList>, ApiError> {
    let d = a.cluster().desired().as_ref();
    let sees = seer(&a, &by)?;
    let mut by_name: BTreeMap<String, ServiceSummary> = BTreeMap::new();
    let names: Vec<String> = cat::services(d, None)
        .map_err(io)?
        .into_iter()
        .filter(|s| sees(s))
        .map(|s| s.name)
        .collect();
    for name in names {
        if by_name.contains_key(&name) {
            continue;
        }
        let mut inst = cat::instances(d, &name, None).map_err(io)?;
        inst.retain(|i| sees(&i.service));
        let mut tags: Vec<String> = inst.iter().flat_map(|i| i.service.tags.clone()).collect();
        tags.sort();
        tags.dedup();
        by_name.insert(
            name.clone(),
            ServiceSummary {
                passing: inst
                    .iter()
                    .filter(|i| i.health() == Health::Passing)
                    .count(),
                instances: inst.len(),
                name,
                tags,
            },
        );
    }
    let index = cat::index_under(d, &[cat::SERVICES.to_string()]).map_err(io)?;
    Ok(Json(ServiceList {
        index,
        services: by_name.into_values().collect(),
    }))
}

pub(crate) async fn service(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<ServiceQuery>,
) -> Result<Json<ServiceInstances>, ApiError> {
    let d = a.cluster().desired().as_ref();
    let sees = seer(&a, &by)?;
    let mut found = cat::instances(d, &q.name, q.tag.as_deref()).map_err(io)?;
    found.retain(|i| sees(&i.service));
    if found.is_empty() {
        return Err(AgentError::NotFound(format!("service {}", q.name)).into());
    }
    let instances = found
        .iter()
        .map(|i| ServiceInstance {
            node: i.service.node.clone(),
            id: i.service.id.clone(),
            address: i.address().to_string(),
            port: i.service.port,
            tags: i.service.tags.clone(),
            health: i.health().as_str().to_string(),
            path: i.service.berth_path().map(str::to_string),
        })
        .collect();
    let prefix = format!("{}{}/", cat::SERVICES, q.name);
    let index = cat::index_under(d, &[prefix]).map_err(io)?;
    Ok(Json(ServiceInstances { index, instances }))
}

pub(crate) async fn routes(
    State(a): S,
    Extension(ingress): Extension<IngressSlot>,
    Query(_): Query<Empty>,
) -> Result<Json<RouteTable>, ApiError> {
    match ingress {
        Some(i) => Ok(Json(i.report())),
        None => Ok(Json(
            berth_ingress::routes_of(a.cluster().desired()).map_err(io)?,
        )),
    }
}
