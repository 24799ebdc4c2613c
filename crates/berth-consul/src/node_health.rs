//! Node health in the catalog. Every node registers itself (its address
//! and its `serfHealth` check); the leader sets each member's
//! `serfHealth` from berth's own liveness (down within the failure
//! detection time), and deregisters the services whose checks stayed
//! critical past their `DeregisterCriticalServiceAfter`.

use crate::Consul;
use berth_cluster::Command;
use berth_kv::catalog::{self as cat, CatalogOp, Check, Health, Node};
use berth_model::cluster::NodeState;
use std::sync::Arc;
use std::time::Duration;

const TICK: Duration = Duration::from_millis(200);
const REREGISTER: Duration = Duration::from_secs(10);

async fn submit(c: &Consul, ops: Vec<CatalogOp>) {
    if ops.is_empty() {
        return;
    }
    if let Err(e) = c.cluster.submit(Command::Catalog { by: None, ops }).await {
        tracing::debug!("catalog: {e}");
    }
}

/// This node's catalog record and node check.
fn own_records(c: &Consul) -> Vec<CatalogOp> {
    let me = c.cluster.nodename().to_string();
    let address = c.cluster.advertised_host();
    vec![
        CatalogOp::RegisterNode(Node {
            name: me.clone(),
            address,
            ..Default::default()
        }),
        CatalogOp::RegisterCheck(Check {
            node: me,
            id: cat::SERF_HEALTH.into(),
            name: "Serf Health Status".into(),
            status: Health::Passing,
            output: "Agent alive and reachable".into(),
            ..Default::default()
        }),
    ]
}

pub(crate) async fn run(c: Arc<Consul>) {
    let mut last_own = None::<tokio::time::Instant>;
    loop {
        tokio::time::sleep(TICK).await;
        if last_own.is_none_or(|t| t.elapsed() >= REREGISTER) {
            submit(&c, own_records(&c)).await;
            last_own = Some(tokio::time::Instant::now());
        }
        if !c.desired().is_leader() {
            continue;
        }
        let mut ops = node_states(&c).await;
        ops.extend(expired(&c));
        submit(&c, ops).await;
    }
}

/// `serfHealth` of every member, as the leader's liveness has it.
async fn node_states(c: &Arc<Consul>) -> Vec<CatalogOp> {
    if !c.cluster.is_clustered() {
        return Vec::new();
    }
    let Ok(checks) = cat::checks(c.desired().as_ref(), Some(cat::NODE_GROUP)) else {
        return Vec::new();
    };
    let view = c.cluster.view().await;
    let mut ops = Vec::new();
    for n in &view.nodes {
        let want = match n.state {
            NodeState::Up => Health::Passing,
            NodeState::Down => Health::Critical,
            NodeState::Unknown => continue,
        };
        let Some(ch) = checks
            .iter()
            .find(|ch| ch.node == n.record.name && ch.id == cat::SERF_HEALTH)
        else {
            continue;
        };
        if ch.status != want {
            let output = match want {
                Health::Critical => "Agent not live or unreachable".to_string(),
                _ => "Agent alive and reachable".to_string(),
            };
            ops.push(CatalogOp::SetStatus {
                node: n.record.name.clone(),
                id: cat::SERF_HEALTH.into(),
                status: want,
                output,
                now_ms: crate::now_ms(),
            });
        }
    }
    ops
}

/// Services whose checks stayed critical past their limit.
fn expired(c: &Consul) -> Vec<CatalogOp> {
    let Ok(checks) = cat::checks(c.desired().as_ref(), None) else {
        return Vec::new();
    };
    let now = crate::now_ms();
    checks
        .into_iter()
        .filter(|ch| !ch.service_id.is_empty() && ch.def.deregister_critical_after_ms > 0)
        .filter(|ch| {
            ch.status == Health::Critical
                && ch
                    .critical_since_ms
                    .is_some_and(|t| now >= t + ch.def.deregister_critical_after_ms)
        })
        .map(|ch| CatalogOp::DeregisterService {
            node: ch.node,
            id: ch.service_id,
        })
        .collect()
}
