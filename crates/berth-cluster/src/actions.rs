//! Actions in a cluster: start, stop and restart run on the nodes an
//! object is placed on, each node's instance monitor doing its own part;
//! the outcomes come back merged, line by line, with the node's name.

use super::records::{merge_outcomes, NodeRecord, RemoteAction};
use super::server;
use crate::agent::{ActionKind, ActionOutcome, Agent};
use crate::error::AgentError;
use berth_model::status::Target;
use berth_model::ObjectPath;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a start waits for the leader to place the object.
const PLACEMENT_WAIT: Duration = Duration::from_secs(15);
/// How long a remote node may take over its part of an action: queued
/// behind its other Docker work, then a stop timeout of its own.
const ACTION_TTL: Duration = Duration::from_secs(300);

pub(crate) async fn placed_action(
    agent: &Arc<Agent>,
    path: &ObjectPath,
    kind: ActionKind,
) -> Result<ActionOutcome, AgentError> {
    let key = path.to_string();
    let rec = agent
        .desired
        .get(&key)?
        .ok_or_else(|| AgentError::NotFound(key.clone()))?;
    let nodes = match kind {
        ActionKind::Stop => {
            // Desired first: even if a placed node cannot be reached, the
            // service must not be started anywhere else afterwards.
            agent
                .desired
                .set_target(&key, Some(Target::Stopped), true)
                .await?;
            if rec.placement.is_empty() {
                vec![agent.nodename().to_string()]
            } else {
                rec.placement.clone()
            }
        }
        _ => {
            if rec.target != Target::Started || rec.frozen || rec.placement.is_empty() {
                agent
                    .desired
                    .set_target(&key, Some(Target::Started), false)
                    .await?;
            }
            wait_placement(agent, &key).await?
        }
    };
    let mut outs = Vec::new();
    for node in nodes {
        let out = if node == agent.nodename() {
            agent.local_action(path, kind).await
        } else {
            remote(agent, &node, &key, kind).await
        };
        let out = out.unwrap_or_else(|e| ActionOutcome::failed(&key, e));
        outs.push((node, out));
    }
    Ok(merge_outcomes(&key, outs))
}

async fn wait_placement(agent: &Arc<Agent>, key: &str) -> Result<Vec<String>, AgentError> {
    let deadline = Instant::now() + PLACEMENT_WAIT;
    loop {
        let rec = agent
            .desired
            .get(key)?
            .ok_or_else(|| AgentError::NotFound(key.to_string()))?;
        if !rec.placement.is_empty() {
            return Ok(rec.placement);
        }
        if Instant::now() > deadline {
            return Err(AgentError::Cluster(format!(
                "{key}: no node was chosen to run it within {PLACEMENT_WAIT:?}; see `berth events` for why (nodes=, labels, drained or down nodes)"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn remote(
    agent: &Arc<Agent>,
    node: &str,
    key: &str,
    kind: ActionKind,
) -> Result<ActionOutcome, AgentError> {
    let rec = agent
        .desired
        .get_json::<NodeRecord>(&super::records::node_key(node))?
        .ok_or_else(|| AgentError::Cluster(format!("node {node} is not a member")))?;
    agent
        .cluster
        .call_within(
            &rec.addr,
            server::PATH_ACTION,
            &RemoteAction {
                path: key.to_string(),
                action: kind,
                applied: agent.desired.applied_index(),
            },
            ACTION_TTL,
        )
        .await
}

impl Agent {
    /// Moves a service: stops it where it runs, places it on `to` (or,
    /// with `None`, lets the scheduler choose), and starts it there.
    pub async fn switch(
        self: &Arc<Self>,
        path: &ObjectPath,
        to: Option<&str>,
    ) -> Result<ActionOutcome, AgentError> {
        if !self.cluster.is_clustered() {
            return Err(AgentError::Conflict(
                "switch, takeover and giveback need a cluster; this node is standalone".into(),
            ));
        }
        let key = path.to_string();
        let rec = self
            .desired
            .get(&key)?
            .ok_or_else(|| AgentError::NotFound(key.clone()))?;
        if let Some(node) = to {
            let n = self
                .desired
                .get_json::<NodeRecord>(&super::records::node_key(node))?
                .ok_or_else(|| AgentError::BadInput(format!("no node named {node}")))?;
            if n.drain || n.frozen {
                return Err(AgentError::Conflict(format!(
                    "node {node} is {}: it takes no new instances",
                    if n.drain { "drained" } else { "frozen" }
                )));
            }
            if rec.placement.len() == 1 && rec.placement[0] == node {
                return placed_action(self, path, ActionKind::Start).await;
            }
        }
        // Stop first: a failover service never runs in two places.
        let stopped = placed_action(self, path, ActionKind::Stop).await?;
        if !stopped.ok {
            return Ok(stopped);
        }
        let mut fields = serde_json::Map::new();
        fields.insert(
            "placement".into(),
            serde_json::json!(to.map(|n| vec![n.to_string()]).unwrap_or_default()),
        );
        fields.insert(
            "target".into(),
            serde_json::to_value(Target::Started).map_err(berth_store::StoreError::from)?,
        );
        fields.insert("frozen".into(), serde_json::Value::Bool(false));
        self.desired.write(berth_store::patch(&key, fields)).await?;
        let started = placed_action(self, path, ActionKind::Start).await?;
        let mut lines = stopped.lines;
        lines.extend(started.lines);
        Ok(ActionOutcome { lines, ..started })
    }
}
