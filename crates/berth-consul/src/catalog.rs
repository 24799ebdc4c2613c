//! `/v1/catalog/*` and `/v1/health/*`: the catalog as Consul serves it,
//! from this node's replica; blocking queries depend on the records of
//! the service (or the nodes) they ask about.

use crate::acl::CatalogView;
use crate::params::{Params, ReadOpts};
use crate::reply::{json, json_meta, ApiError, ApiResult};
use crate::watch::Interest;
use crate::{render, Consul, State};
use axum::extract::Path;
use axum::http::Uri;
use berth_kv::catalog::{self as cat, instances, Health};
use berth_store::Desired;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn prefixes_of(name: &str) -> Vec<String> {
    vec![
        format!("{}{name}/", cat::SERVICES),
        format!("{}{name}/", cat::CHECKS),
        format!("{}{}/", cat::CHECKS, cat::NODE_GROUP),
        cat::NODES.to_string(),
    ]
}

/// Tombstones count too: a deregistration wakes the query.
fn interest(prefixes: &[String]) -> Interest {
    let mut all = prefixes.to_vec();
    all.extend(prefixes.iter().map(|p| format!("{}{p}", cat::TOMBSTONES)));
    Interest::Prefixes(all)
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::internal(e.to_string())
}

impl Consul {
    async fn catalog_read(
        &self,
        opts: &ReadOpts,
        prefixes: Vec<String>,
        read: impl Fn(&Desired) -> std::io::Result<Value>,
    ) -> ApiResult {
        let (v, meta) = self
            .block(opts, interest(&prefixes), |d| {
                let v = read(d).map_err(io)?;
                Ok((v, cat::index_under(d, &prefixes).map_err(io)?))
            })
            .await?;
        Ok(json_meta(&v, meta))
    }

    pub fn dc(&self) -> &str {
        &self.opts.datacenter
    }
}

pub async fn services(state: State, uri: Uri) -> ApiResult {
    let c = &state.0;
    let opts = Params::parse(uri.query())?.read_opts()?;
    let prefixes = vec![cat::SERVICES.to_string()];
    let view = CatalogView::of(c)?;
    c.catalog_read(&opts, prefixes, |d| {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in cat::services(d, None)?.into_iter().filter(|s| view.sees(s)) {
            let tags = out.entry(s.name).or_default();
            for t in s.tags {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
        }
        Ok(serde_json::to_value(out).unwrap_or_default())
    })
    .await
}

pub async fn service(state: State, uri: Uri, Path(name): Path<String>) -> ApiResult {
    let c = &state.0;
    let p = Params::parse(uri.query())?;
    let opts = p.read_opts()?;
    let tag = p.get("tag").map(str::to_string);
    let dc = c.dc().to_string();
    let view = CatalogView::of(c)?;
    c.catalog_read(&opts, prefixes_of(&name), |d| {
        let list: Vec<Value> = instances(d, &name, tag.as_deref())?
            .iter()
            .filter(|i| view.sees(&i.service))
            .map(|i| render::catalog_service(&i.service, i.node.as_ref(), &dc))
            .collect();
        Ok(Value::Array(list))
    })
    .await
}

pub async fn nodes(state: State, uri: Uri) -> ApiResult {
    let c = &state.0;
    let opts = Params::parse(uri.query())?.read_opts()?;
    let dc = c.dc().to_string();
    c.catalog_read(&opts, vec![cat::NODES.to_string()], |d| {
        Ok(Value::Array(
            cat::nodes(d)?
                .iter()
                .map(|n| render::node(n, &dc))
                .collect(),
        ))
    })
    .await
}

pub async fn node(state: State, uri: Uri, Path(name): Path<String>) -> ApiResult {
    let c = &state.0;
    let opts = Params::parse(uri.query())?.read_opts()?;
    let dc = c.dc().to_string();
    let prefixes = vec![cat::NODES.to_string(), cat::SERVICES.to_string()];
    let view = CatalogView::of(c)?;
    c.catalog_read(&opts, prefixes, |d| {
        let Some(n) = cat::node(d, &name)? else {
            return Ok(Value::Null);
        };
        let services: Map<String, Value> = cat::services(d, None)?
            .iter()
            .filter(|s| s.node == name && view.sees(s))
            .map(|s| (s.id.clone(), render::service(s)))
            .collect();
        Ok(serde_json::json!({"Node": render::node(&n, &dc), "Services": services}))
    })
    .await
}

pub async fn health_service(state: State, uri: Uri, Path(name): Path<String>) -> ApiResult {
    let c = &state.0;
    let p = Params::parse(uri.query())?;
    let opts = p.read_opts()?;
    let tag = p.get("tag").map(str::to_string);
    let passing = p.has("passing") && p.get("passing") != Some("false");
    let dc = c.dc().to_string();
    let view = CatalogView::of(c)?;
    c.catalog_read(&opts, prefixes_of(&name), |d| {
        let list: Vec<Value> = instances(d, &name, tag.as_deref())?
            .iter()
            .filter(|i| view.sees(&i.service))
            .filter(|i| !passing || i.health() == Health::Passing)
            .map(|i| {
                serde_json::json!({
                    "Node": i.node.as_ref().map(|n| render::node(n, &dc)),
                    "Service": render::service(&i.service),
                    "Checks": i.checks.iter().map(render::check).collect::<Vec<_>>(),
                })
            })
            .collect();
        Ok(Value::Array(list))
    })
    .await
}

pub async fn health_checks(state: State, uri: Uri, Path(name): Path<String>) -> ApiResult {
    let c = &state.0;
    let opts = Params::parse(uri.query())?.read_opts()?;
    let prefixes = vec![format!("{}{name}/", cat::CHECKS)];
    let view = CatalogView::of(c)?;
    c.catalog_read(&opts, prefixes, |d| {
        let hidden = view.hidden_ids(d)?;
        Ok(Value::Array(
            cat::checks(d, Some(&name))?
                .iter()
                .filter(|ch| !hidden.contains(&ch.service_id))
                .map(render::check)
                .collect(),
        ))
    })
    .await
}

pub async fn health_state(state: State, uri: Uri, Path(want): Path<String>) -> ApiResult {
    let c = &state.0;
    let opts = Params::parse(uri.query())?.read_opts()?;
    let filter: Option<Health> = match want.as_str() {
        "any" => None,
        "passing" => Some(Health::Passing),
        "warning" => Some(Health::Warning),
        "critical" => Some(Health::Critical),
        _ => return Err(ApiError::bad(format!("Invalid check state: {want:?}"))),
    };
    let view = CatalogView::of(c)?;
    c.catalog_read(&opts, vec![cat::CHECKS.to_string()], |d| {
        let hidden = view.hidden_ids(d)?;
        Ok(Value::Array(
            cat::checks(d, None)?
                .iter()
                .filter(|ch| !hidden.contains(&ch.service_id))
                .filter(|ch| filter.is_none_or(|f| ch.status == f))
                .map(render::check)
                .collect(),
        ))
    })
    .await
}

pub async fn health_node(state: State, uri: Uri, Path(name): Path<String>) -> ApiResult {
    let c = &state.0;
    let opts = Params::parse(uri.query())?.read_opts()?;
    let view = CatalogView::of(c)?;
    c.catalog_read(&opts, vec![cat::CHECKS.to_string()], |d| {
        let hidden = view.hidden_ids(d)?;
        Ok(Value::Array(
            cat::checks(d, None)?
                .iter()
                .filter(|ch| ch.node == name && !hidden.contains(&ch.service_id))
                .map(render::check)
                .collect(),
        ))
    })
    .await
}

/// `true`, as Consul answers a registration.
pub fn done() -> ApiResult {
    Ok(json(&true))
}
