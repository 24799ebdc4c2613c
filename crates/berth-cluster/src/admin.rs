//! Node administration: labels, drain, freeze, and Raft membership
//! (add, promote, demote, remove), applied by the leader.

use super::records::{node_key, MembershipOp, NodeRecord, NodeRole};
use super::server;
use crate::agent::Agent;
use crate::error::AgentError;
use berth_net::Role;
use berth_store::{put_json, Request};
use openraft::{BasicNode, ChangeMembers};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// `berth node <name> <op>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum NodeOp {
    /// Sets (`key=value`) and removes (`key`) labels.
    Label {
        #[serde(default)]
        set: Vec<String>,
        #[serde(default)]
        unset: Vec<String>,
    },
    Drain,
    Undrain,
    Freeze,
    Thaw,
    Promote,
    Demote,
    Remove,
}

fn raft_err(e: impl std::fmt::Display) -> AgentError {
    AgentError::Cluster(format!("raft membership: {e}"))
}

impl Agent {
    fn node_record(&self, name: &str) -> Result<NodeRecord, AgentError> {
        if !self.cluster.is_clustered() {
            return Err(AgentError::Conflict(
                "this node is not in a cluster; run `berth cluster init` first".into(),
            ));
        }
        self.desired
            .get_json::<NodeRecord>(&node_key(name))?
            .ok_or_else(|| AgentError::NotFound(format!("node {name}")))
    }

    /// Applies one node operation and returns the node as it now is.
    pub async fn node_op(
        self: &Arc<Self>,
        name: &str,
        op: NodeOp,
    ) -> Result<NodeRecord, AgentError> {
        let mut rec = self.node_record(name)?;
        match op {
            NodeOp::Label { set, unset } => {
                for kv in &set {
                    let (k, v) = kv.split_once('=').ok_or_else(|| {
                        AgentError::BadInput(format!("label {kv:?}: expected key=value"))
                    })?;
                    if k.is_empty() || k.contains(char::is_whitespace) {
                        return Err(AgentError::BadInput(format!("label {kv:?}: bad key")));
                    }
                    rec.labels.insert(k.to_string(), v.to_string());
                }
                for k in &unset {
                    rec.labels.remove(k);
                }
            }
            NodeOp::Drain => rec.drain = true,
            NodeOp::Undrain => rec.drain = false,
            NodeOp::Freeze => rec.frozen = true,
            NodeOp::Thaw => rec.frozen = false,
            NodeOp::Promote | NodeOp::Demote | NodeOp::Remove => {
                let op = match op {
                    NodeOp::Promote => MembershipOp::Promote { node: name.into() },
                    NodeOp::Demote => MembershipOp::Demote { node: name.into() },
                    _ => MembershipOp::Remove { node: name.into() },
                };
                self.membership_via_leader(op).await?;
                return match self.desired.get_json::<NodeRecord>(&node_key(name))? {
                    Some(r) => Ok(r),
                    None => Ok(rec),
                };
            }
        }
        self.desired.write(put_json(&node_key(name), &rec)?).await?;
        self.events
            .emit(None, None, format!("node {name} updated"), None);
        Ok(rec)
    }

    async fn membership_via_leader(self: &Arc<Self>, op: MembershipOp) -> Result<(), AgentError> {
        let me = self
            .cluster
            .identity()
            .ok_or_else(|| AgentError::Conflict("this node is not in a cluster".into()))?;
        if self.desired.is_leader() {
            return apply_membership(self, me.role.net(), &me.node, op).await;
        }
        let (_, addr) = self
            .desired
            .leader()
            .ok_or_else(|| AgentError::Cluster("no leader is known right now; retry".into()))?;
        self.cluster.call(&addr, server::PATH_MEMBERSHIP, &op).await
    }
}

/// Applied on the leader (forwarded there otherwise). A node may ask for
/// its own addition; everything else needs a manager.
pub(crate) async fn apply_membership(
    agent: &Arc<Agent>,
    caller_role: Role,
    caller: &str,
    op: MembershipOp,
) -> Result<(), AgentError> {
    let allowed = match &op {
        MembershipOp::Add { node } | MembershipOp::Remove { node } => {
            node == caller || caller_role == Role::Manager
        }
        _ => caller_role == Role::Manager,
    };
    if !allowed {
        return Err(AgentError::Forbidden(format!(
            "{caller} may not change the membership"
        )));
    }
    if !agent.desired.is_leader() {
        let (_, addr) = agent
            .desired
            .leader()
            .ok_or_else(|| AgentError::Cluster("no leader is known right now; retry".into()))?;
        return agent
            .cluster
            .call(&addr, server::PATH_MEMBERSHIP, &op)
            .await;
    }
    let raft = agent.desired.raft();
    let membership = agent.desired.membership();
    match op {
        MembershipOp::Add { node } => {
            let rec = agent.node_record(&node)?;
            if !membership.nodes.contains_key(&rec.id) {
                raft.add_learner(
                    rec.id,
                    BasicNode {
                        addr: rec.addr.clone(),
                    },
                    true,
                )
                .await
                .map_err(raft_err)?;
            }
            if rec.role == NodeRole::Manager && !membership.voters.contains(&rec.id) {
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([rec.id])), false)
                    .await
                    .map_err(raft_err)?;
            }
            agent.events.emit(
                None,
                None,
                format!("node {node} added to the cluster as {}", rec.role.as_str()),
                None,
            );
        }
        MembershipOp::Promote { node } => {
            let mut rec = agent.node_record(&node)?;
            let managers = membership.voters.len();
            if rec.role == NodeRole::Manager {
                return Ok(());
            }
            if managers >= 7 {
                return Err(AgentError::Conflict(
                    "a cluster has at most 7 managers".into(),
                ));
            }
            rec.role = NodeRole::Manager;
            agent
                .desired
                .write(put_json(&node_key(&node), &rec)?)
                .await?;
            raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([rec.id])), false)
                .await
                .map_err(raft_err)?;
            agent
                .events
                .emit(None, None, format!("node {node} promoted to manager"), None);
        }
        MembershipOp::Demote { node } => {
            let mut rec = agent.node_record(&node)?;
            if rec.role == NodeRole::Worker {
                return Ok(());
            }
            if membership.voters.len() <= 1 {
                return Err(AgentError::Conflict(
                    "the last manager cannot be demoted".into(),
                ));
            }
            raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([rec.id])), true)
                .await
                .map_err(raft_err)?;
            rec.role = NodeRole::Worker;
            agent
                .desired
                .write(put_json(&node_key(&node), &rec)?)
                .await?;
            agent
                .events
                .emit(None, None, format!("node {node} demoted to worker"), None);
        }
        MembershipOp::Remove { node } => {
            let rec = agent.node_record(&node)?;
            if membership.voters.contains(&rec.id) {
                if membership.voters.len() <= 1 {
                    return Err(AgentError::Conflict(
                        "the last manager cannot be removed".into(),
                    ));
                }
                raft.change_membership(
                    ChangeMembers::RemoveVoters(BTreeSet::from([rec.id])),
                    false,
                )
                .await
                .map_err(raft_err)?;
            } else if membership.nodes.contains_key(&rec.id) {
                raft.change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([rec.id])), false)
                    .await
                    .map_err(raft_err)?;
            }
            agent
                .desired
                .write(Request::Delete {
                    key: node_key(&node),
                })
                .await?;
            agent.events.emit(
                None,
                None,
                format!("node {node} removed from the cluster"),
                None,
            );
        }
    }
    Ok(())
}
