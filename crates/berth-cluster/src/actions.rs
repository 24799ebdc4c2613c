//! Actions in a cluster: start, stop and restart run on the nodes an
//! object is placed on, each node's instance monitor doing its own part;
//! the outcomes come back merged, line by line, with the node's name.

use crate::command::{Command, ObjectOp, UserRef};
use crate::records::RemoteAction;
use crate::{server, Cluster, ClusterError};
use berth_model::status::Target;
use berth_model::{ActionKind, ActionOutcome, ObjectPath};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a start waits for the leader to place the object.
const PLACEMENT_WAIT: Duration = Duration::from_secs(15);
/// How long a remote node may take over its part of an action: queued
/// behind its other Docker work, then a stop timeout of its own.
const ACTION_TTL: Duration = Duration::from_secs(300);

fn no_such(key: &str) -> ClusterError {
    ClusterError::NotFound(format!("{key}: no such object"))
}

impl Cluster {
    fn set_target(&self, by: &UserRef, path: &str, target: Target, frozen: bool) -> Command {
        Command::Object {
            by: by.clone(),
            op: ObjectOp::SetTarget {
                path: path.to_string(),
                target: Some(target),
                frozen,
            },
        }
    }

    /// Runs `kind` on every node `path` is placed on, for user `by`.
    pub async fn placed_action(
        self: &Arc<Self>,
        path: &ObjectPath,
        kind: ActionKind,
        by: &UserRef,
    ) -> Result<ActionOutcome, ClusterError> {
        let key = path.to_string();
        let rec = self.desired.get(&key)?.ok_or_else(|| no_such(&key))?;
        let nodes = match kind {
            ActionKind::Stop => {
                // Desired first: even if a placed node cannot be reached, the
                // service must not be started anywhere else afterwards.
                self.submit(self.set_target(by, &key, Target::Stopped, true))
                    .await?;
                if rec.placement.is_empty() {
                    vec![self.nodename().to_string()]
                } else {
                    rec.placement.clone()
                }
            }
            _ => {
                if rec.target != Target::Started || rec.frozen || rec.placement.is_empty() {
                    self.submit(self.set_target(by, &key, Target::Started, false))
                        .await?;
                }
                self.wait_placement(&key).await?
            }
        };
        let mut outs = Vec::new();
        for node in nodes {
            let out = if node == self.nodename() {
                self.local()?.act(path.clone(), kind, by.clone()).await
            } else {
                self.remote(&node, &key, kind, by)
                    .await
                    .unwrap_or_else(|e| ActionOutcome::failed(&key, e))
            };
            outs.push((node, out));
        }
        Ok(ActionOutcome::merge(&key, outs))
    }

    async fn wait_placement(&self, key: &str) -> Result<Vec<String>, ClusterError> {
        let deadline = Instant::now() + PLACEMENT_WAIT;
        loop {
            let rec = self.desired.get(key)?.ok_or_else(|| no_such(key))?;
            if !rec.placement.is_empty() {
                return Ok(rec.placement);
            }
            if Instant::now() > deadline {
                return Err(ClusterError::Conflict(format!(
                    "{key}: no node was chosen to run it within {PLACEMENT_WAIT:?}; see `berth events` for why (nodes=, labels, drained or down nodes)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn remote(
        &self,
        node: &str,
        key: &str,
        kind: ActionKind,
        by: &UserRef,
    ) -> Result<ActionOutcome, ClusterError> {
        let rec = self
            .node_record(node)?
            .ok_or_else(|| ClusterError::Conflict(format!("node {node} is not a member")))?;
        self.call_within(
            &rec.addr,
            server::PATH_ACTION,
            &RemoteAction {
                path: key.to_string(),
                action: kind,
                by: by.clone(),
                applied: self.desired.applied_index(),
            },
            ACTION_TTL,
        )
        .await
    }

    /// The receiving side of a remote action: once this replica applied
    /// what the sender had, this node's instance does its part.
    pub(crate) async fn remote_action(
        &self,
        a: RemoteAction,
    ) -> Result<ActionOutcome, ClusterError> {
        let path: ObjectPath = a
            .path
            .parse()
            .map_err(|e| ClusterError::BadInput(format!("{e}")))?;
        self.desired
            .catch_up(a.applied, Duration::from_secs(10))
            .await;
        Ok(self.local()?.act(path, a.action, a.by).await)
    }

    /// Moves a service: stops it where it runs, places it on `to` (or,
    /// with `None`, lets the scheduler choose), and starts it there.
    pub async fn switch(
        self: &Arc<Self>,
        path: &ObjectPath,
        to: Option<&str>,
        by: &UserRef,
    ) -> Result<ActionOutcome, ClusterError> {
        if !self.is_clustered() {
            return Err(ClusterError::Conflict(
                "switch, takeover and giveback need a cluster; this node is standalone".into(),
            ));
        }
        let key = path.to_string();
        let rec = self.desired.get(&key)?.ok_or_else(|| no_such(&key))?;
        if let Some(node) = to {
            let n = self
                .node_record(node)?
                .ok_or_else(|| ClusterError::BadInput(format!("no node named {node}")))?;
            if n.drain || n.frozen {
                return Err(ClusterError::Conflict(format!(
                    "node {node} is {}: it takes no new instances",
                    if n.drain { "drained" } else { "frozen" }
                )));
            }
            if rec.placement.len() == 1 && rec.placement[0] == node {
                return self.placed_action(path, ActionKind::Start, by).await;
            }
        }
        // Stop first: a failover service never runs in two places.
        let stopped = self.placed_action(path, ActionKind::Stop, by).await?;
        if !stopped.ok {
            return Ok(stopped);
        }
        let moved = ObjectOp::Move {
            path: key.clone(),
            to: to.map(|n| vec![n.to_string()]).unwrap_or_default(),
        };
        self.submit(Command::Object {
            by: by.clone(),
            op: moved,
        })
        .await?;
        let started = self.placed_action(path, ActionKind::Start, by).await?;
        let mut lines = stopped.lines;
        lines.extend(started.lines);
        Ok(ActionOutcome { lines, ..started })
    }
}
