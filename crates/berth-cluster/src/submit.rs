//! Submitting commands: on the leader they are authorized and proposed to
//! Raft here; elsewhere they go to the leader's node listener, which
//! authorizes them against this node's certificate. A write that finds no
//! leader retries for a while, then fails with the typed "no leader" error
//! the API answers with 503.
//!
//! Architecture invariant: this is the only place desired state is
//! written (`Desired::propose`); everything else submits commands.

use crate::command::{Caller, Command, Refusal};
use crate::{server, Cluster, ClusterError};
use berth_model::cluster::NodeRole;
use berth_store::ProposeError;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long a write may wait for a leader before it fails.
const WRITE_WAIT: Duration = Duration::from_secs(15);
const RETRY: Duration = Duration::from_millis(100);

/// What applying a command returned.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommandReply {
    /// The index of its Raft entry: a replica that applied it has it.
    pub index: u64,
    /// Whether a key it deleted or replaced existed before.
    pub existed: bool,
    /// What a KV command returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<berth_kv::Outcome>,
}

impl From<Refusal> for ClusterError {
    fn from(r: Refusal) -> ClusterError {
        match r {
            Refusal::Forbidden(m) => ClusterError::Forbidden(m),
            Refusal::BadInput(m) => ClusterError::BadInput(m),
            Refusal::Unauthenticated(m) => ClusterError::Unauthenticated(m),
        }
    }
}

impl Cluster {
    /// This node as a caller: its certificate's role, or a manager when
    /// standalone (it is its own cluster's only manager).
    pub(crate) fn self_caller(&self) -> Caller {
        Caller {
            node: self.nodename().to_string(),
            role: self.identity().map_or(NodeRole::Manager, |i| i.role),
        }
    }

    /// Applies `cmd` through the leader and waits until this replica has
    /// it, so the caller reads its own write.
    pub async fn submit(&self, cmd: Command) -> Result<CommandReply, ClusterError> {
        if let Err(why) = cmd.authorize(&self.self_caller(), &*self.authorizer) {
            self.record_refused_command(&cmd, &why);
            return Err(why.into());
        }
        let req = cmd.request()?;
        let deadline = Instant::now() + WRITE_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // A leader cut off from its quorum does not answer; bound it.
            let proposed = tokio::time::timeout(
                left,
                self.desired.propose(crate::audit::with_audit(&cmd, req.clone())?),
            )
                .await
                .map_err(|_| {
                    ClusterError::NoLeader(Some(format!(
                        "the leader did not reach a quorum of managers within {WRITE_WAIT:?}; the change may still apply once it does"
                    )))
                })?;
            let last = match proposed {
                Ok((resp, index)) => {
                    return Ok(CommandReply {
                        index,
                        existed: resp.previous.is_some(),
                        kv: resp.kv,
                    })
                }
                Err(ProposeError::NotLeader(Some((_, addr)))) if !addr.is_empty() => {
                    match self.call(&addr, server::PATH_COMMAND, &cmd).await {
                        Ok(r) => {
                            let r: CommandReply = r;
                            let left = deadline.saturating_duration_since(Instant::now());
                            self.desired.catch_up(r.index, left).await;
                            return Ok(r);
                        }
                        Err(e) if e.retryable() => e.to_string(),
                        Err(e) => return Err(e),
                    }
                }
                Err(ProposeError::NotLeader(_)) => "no leader known".to_string(),
                Err(ProposeError::Failed(e)) => return Err(e.into()),
            };
            if Instant::now() > deadline {
                return Err(ClusterError::NoLeader(Some(last)));
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// The leader's side of `/node/v1/command`: authorized against the
    /// sender's certificate, then proposed. A node that does not lead
    /// refuses (503), and the sender retries at the leader.
    pub(crate) async fn apply_from(
        &self,
        caller: &Caller,
        cmd: Command,
    ) -> Result<CommandReply, ClusterError> {
        if let Err(why) = cmd.authorize(caller, &*self.authorizer) {
            self.record_refused_command(&cmd, &why);
            return Err(why.into());
        }
        if !self.desired.is_leader() {
            return Err(ClusterError::NoLeader(Some(
                "this node is not the leader".into(),
            )));
        }
        let req = crate::audit::with_audit(&cmd, cmd.request()?)?;
        match self.desired.propose(req).await {
            Ok((resp, index)) => Ok(CommandReply {
                index,
                existed: resp.previous.is_some(),
                kv: resp.kv,
            }),
            Err(ProposeError::NotLeader(_)) => Err(ClusterError::NoLeader(Some(
                "leadership changed; retry at the new leader".into(),
            ))),
            Err(ProposeError::Failed(e)) => Err(e.into()),
        }
    }
}

impl Cluster {
    /// Waits until this replica holds everything the leader had committed
    /// when asked (a linearizable read, as Consul's `?consistent`). On a
    /// follower, the leader confirms its leadership with a quorum and says
    /// up to which index to catch up.
    pub async fn read_barrier(&self) -> Result<(), ClusterError> {
        if self.desired.is_leader() {
            return self.desired.linearizable().await.map_err(Into::into);
        }
        let addr = self.leader_addr()?;
        let index: u64 = self.call(&addr, server::PATH_READ_INDEX, &()).await?;
        self.desired.catch_up(index, WRITE_WAIT).await;
        if self.desired.applied_index() < index {
            return Err(ClusterError::NoLeader(Some(format!(
                "this replica did not reach the leader's index {index}"
            ))));
        }
        Ok(())
    }

    /// The leader's side of [`Cluster::read_barrier`]: its applied index
    /// once a quorum confirmed it still leads.
    pub(crate) async fn leader_read_index(&self) -> Result<u64, ClusterError> {
        if !self.desired.is_leader() {
            return Err(ClusterError::NoLeader(Some(
                "this node is not the leader".into(),
            )));
        }
        self.desired.linearizable().await?;
        Ok(self.desired.applied_index())
    }
}
