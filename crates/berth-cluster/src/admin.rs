//! Node administration: labels, drain, freeze, and Raft membership
//! (add, promote, demote, remove), applied by the leader.

use crate::command::{Caller, Command, NodeWrite, UserRef};
use crate::records::MembershipOp;
use crate::{server, Cluster, ClusterError};
use berth_model::cluster::{NodeOp, NodeRecord, NodeRole};
use openraft::{BasicNode, ChangeMembers};
use std::collections::BTreeSet;
use std::sync::Arc;

fn raft_err(e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Conflict(format!("raft membership: {e}"))
}

impl Cluster {
    fn member(&self, name: &str) -> Result<NodeRecord, ClusterError> {
        if !self.is_clustered() {
            return Err(ClusterError::Conflict(
                "this node is not in a cluster; run `berth cluster init` first".into(),
            ));
        }
        self.node_record(name)?
            .ok_or_else(|| ClusterError::NotFound(format!("node {name}: no such node")))
    }

    /// `change` as `by`'s administration, with its audit record in the
    /// same entry; without a change, the record alone (after a Raft
    /// membership change, which is no entry of ours).
    pub(crate) async fn administer(
        &self,
        by: &UserRef,
        action: &str,
        object: &str,
        change: Option<Command>,
    ) -> Result<(), ClusterError> {
        self.submit(Command::Admin {
            by: by.clone(),
            action: action.into(),
            object: object.into(),
            change: change.map(Box::new),
        })
        .await
        .map(|_| ())
    }

    /// Applies one node operation for `by` and returns the node as it now
    /// is. Managers only: a worker's request is refused by the command's
    /// rule.
    pub async fn node_op(
        self: &Arc<Self>,
        by: &UserRef,
        name: &str,
        op: NodeOp,
    ) -> Result<NodeRecord, ClusterError> {
        let action = format!("node {}", op.as_str());
        let mut rec = self.member(name)?;
        match op {
            NodeOp::Label { set, unset } => {
                for kv in &set {
                    let (k, v) = kv.split_once('=').ok_or_else(|| {
                        ClusterError::BadInput(format!("label {kv:?}: expected key=value"))
                    })?;
                    if k.is_empty() || k.contains(char::is_whitespace) {
                        return Err(ClusterError::BadInput(format!("label {kv:?}: bad key")));
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
                self.administer(by, &action, name, None).await?;
                return Ok(self.node_record(name)?.unwrap_or(rec));
            }
        }
        let change = Command::Node(NodeWrite::Put(rec.clone()));
        self.administer(by, &action, name, Some(change)).await?;
        self.emit(format!("node {name} updated"));
        Ok(rec)
    }

    pub(crate) async fn membership_via_leader(
        self: &Arc<Self>,
        op: MembershipOp,
    ) -> Result<(), ClusterError> {
        if !self.is_clustered() {
            return Err(ClusterError::Conflict(
                "this node is not in a cluster".into(),
            ));
        }
        self.apply_membership(&self.self_caller(), op).await
    }

    /// Applied on the leader (forwarded there otherwise). A node may ask for
    /// its own addition and removal; everything else needs a manager.
    pub(crate) async fn apply_membership(
        self: &Arc<Self>,
        caller: &Caller,
        op: MembershipOp,
    ) -> Result<(), ClusterError> {
        let allowed = match &op {
            MembershipOp::Add { node } | MembershipOp::Remove { node } => {
                *node == caller.node || caller.role == NodeRole::Manager
            }
            _ => caller.role == NodeRole::Manager,
        };
        if !allowed {
            return Err(ClusterError::Forbidden(format!(
                "{} may not change the membership or roles: managers only",
                caller.node
            )));
        }
        if !self.desired.is_leader() {
            let addr = self.leader_addr()?;
            return self.call(&addr, server::PATH_MEMBERSHIP, &op).await;
        }
        self.change_membership(op).await
    }

    /// The leader's part of a membership change.
    async fn change_membership(self: &Arc<Self>, op: MembershipOp) -> Result<(), ClusterError> {
        let raft = self.desired.raft();
        let membership = self.desired.membership();
        match op {
            MembershipOp::Add { node } => {
                let rec = self.member(&node)?;
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
                    raft.change_membership(
                        ChangeMembers::AddVoterIds(BTreeSet::from([rec.id])),
                        false,
                    )
                    .await
                    .map_err(raft_err)?;
                }
                self.emit(format!(
                    "node {node} added to the cluster as {}",
                    rec.role.as_str()
                ));
            }
            MembershipOp::Promote { node } => {
                let mut rec = self.member(&node)?;
                let managers = membership.voters.len();
                if rec.role == NodeRole::Manager {
                    return Ok(());
                }
                if managers >= 7 {
                    return Err(ClusterError::Conflict(
                        "a cluster has at most 7 managers".into(),
                    ));
                }
                rec.role = NodeRole::Manager;
                self.submit(Command::Node(NodeWrite::Put(rec.clone())))
                    .await?;
                raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([rec.id])), false)
                    .await
                    .map_err(raft_err)?;
                self.emit(format!("node {node} promoted to manager"));
            }
            MembershipOp::Demote { node } => {
                let mut rec = self.member(&node)?;
                if rec.role == NodeRole::Worker {
                    return Ok(());
                }
                if membership.voters.len() <= 1 {
                    return Err(ClusterError::Conflict(
                        "the last manager cannot be demoted".into(),
                    ));
                }
                raft.change_membership(ChangeMembers::RemoveVoters(BTreeSet::from([rec.id])), true)
                    .await
                    .map_err(raft_err)?;
                rec.role = NodeRole::Worker;
                self.submit(Command::Node(NodeWrite::Put(rec.clone())))
                    .await?;
                self.emit(format!("node {node} demoted to worker"));
            }
            MembershipOp::Remove { node } => {
                let rec = self.member(&node)?;
                if membership.voters.contains(&rec.id) {
                    if membership.voters.len() <= 1 {
                        return Err(ClusterError::Conflict(
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
                    raft.change_membership(
                        ChangeMembers::RemoveNodes(BTreeSet::from([rec.id])),
                        false,
                    )
                    .await
                    .map_err(raft_err)?;
                }
                self.submit(Command::Node(NodeWrite::Delete { name: node.clone() }))
                    .await?;
                self.emit(format!("node {node} removed from the cluster"));
            }
        }
        Ok(())
    }
}
