//! Raft RPCs between managers: HTTP/2 over mutual TLS, JSON bodies
//! ([`crate::RpcClient`]).
//!
//! One connection per peer is kept and re-dialled after any failure; a
//! failure is reported to openraft as "unreachable", which backs off.

use crate::rpc::{CallError, RpcClient};
use crate::types::TypeConfig;
use openraft::error::{
    NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::{BasicNode, RaftNetworkFactory, RaftNetworkV2};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

type C = TypeConfig;

pub(crate) const PATH_APPEND: &str = "/raft/v1/append";
pub(crate) const PATH_VOTE: &str = "/raft/v1/vote";
pub(crate) const PATH_PRE_VOTE: &str = "/raft/v1/pre-vote";
pub(crate) const PATH_SNAPSHOT: &str = "/raft/v1/snapshot";

const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(300);
/// openraft bounds appends by its heartbeat interval; a loaded follower
/// answers later than that, and an answer dropped is an acknowledgement
/// lost (and the entries sent again). Heartbeats keep openraft's own bound.
const MIN_APPEND_TTL: Duration = Duration::from_secs(1);

/// A full snapshot on the wire.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotRpc {
    pub vote: VoteOf<C>,
    pub meta: SnapshotMetaOf<C>,
    pub data: Vec<u8>,
}

/// The client TLS configuration peers are dialled with; empty until the
/// node has a cluster identity, and replaced when its certificate renews.
pub type TlsSlot = Arc<RwLock<Option<Arc<rustls::ClientConfig>>>>;

/// Creates clients to peers; each presents this node's certificate.
#[derive(Clone)]
pub struct Network {
    tls: TlsSlot,
}

impl Network {
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Network {
        Network {
            tls: Arc::new(RwLock::new(Some(tls))),
        }
    }

    /// A network whose TLS configuration the caller fills in (or changes)
    /// later through the slot. A standalone node has an empty slot: it is a
    /// one-member cluster and never dials anyone.
    pub fn with_slot(tls: TlsSlot) -> Network {
        Network { tls }
    }
}

impl RaftNetworkFactory<C> for Network {
    type Network = Peer;

    async fn new_client(&mut self, _target: u64, node: &BasicNode) -> Peer {
        Peer {
            rpc: RpcClient::new(node.addr.clone(), self.tls.clone()),
        }
    }
}

/// One peer manager, reached at its node address (`host:port`).
pub struct Peer {
    rpc: RpcClient,
}

fn rpc_error(e: CallError) -> RPCError<C> {
    match e {
        CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&e)),
        CallError::Exchange(_) | CallError::Refused { .. } => {
            tracing::warn!("raft rpc: {e}");
            RPCError::Network(NetworkError::new(&e))
        }
    }
}

impl Peer {
    /// One Raft RPC whose reply is the peer's own `Result`.
    async fn ask<Req: Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        rpc: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<C>> {
        let r: Result<Resp, RaftError<C>> =
            self.rpc.call(path, rpc, ttl).await.map_err(rpc_error)?;
        r.map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetworkV2<C> for Peer {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        self.ask(PATH_APPEND, &rpc, option.hard_ttl().max(MIN_APPEND_TTL))
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.ask(PATH_VOTE, &rpc, option.hard_ttl()).await
    }

    /// Asked before a node raises its term: a node cut off from its peers
    /// gets no answer, counts no grant, and so comes back with the term it
    /// left with instead of deposing the leader (`design/failover.md`).
    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.ask(PATH_PRE_VOTE, &rpc, option.hard_ttl()).await
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, Vec<u8>>,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let rpc = SnapshotRpc {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        let sent = tokio::select! {
            r = self.rpc.call::<_, Result<SnapshotResponse<C>, openraft::error::Fatal<C>>>(PATH_SNAPSHOT, &rpc, SNAPSHOT_TIMEOUT) => r,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        let r = sent.map_err(|e| match e {
            CallError::Unreachable(_) => StreamingError::Unreachable(Unreachable::new(&e)),
            CallError::Exchange(_) | CallError::Refused { .. } => {
                StreamingError::Network(NetworkError::new(&e))
            }
        })?;
        r.map_err(|e| StreamingError::Network(NetworkError::new(&e)))
    }
}
