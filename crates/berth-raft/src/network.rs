//! Raft RPCs between managers: HTTP/2 over mutual TLS, JSON bodies.
//!
//! One connection per peer is kept and re-dialled after any failure; a
//! failure is reported to openraft as "unreachable", which backs off.

use crate::types::TypeConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use openraft::error::{
    NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::{SnapshotMetaOf, SnapshotOf, VoteOf};
use openraft::{BasicNode, RaftNetworkFactory, RaftNetworkV2};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

type C = TypeConfig;

pub(crate) const PATH_APPEND: &str = "/raft/v1/append";
pub(crate) const PATH_VOTE: &str = "/raft/v1/vote";
pub(crate) const PATH_SNAPSHOT: &str = "/raft/v1/snapshot";

const DIAL_TIMEOUT: Duration = Duration::from_secs(2);
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(300);

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
            addr: node.addr.clone(),
            tls: self.tls.clone(),
            conn: None,
        }
    }
}

/// One peer manager, reached at `addr` (`host:port`).
pub struct Peer {
    addr: String,
    tls: TlsSlot,
    conn: Option<SendRequest<Full<Bytes>>>,
}

/// Why an RPC failed: the peer could not be reached at all, or the
/// exchange itself went wrong (timeout, HTTP error, undecodable reply).
#[derive(Debug)]
enum CallError {
    Unreachable(String),
    Exchange(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(m) | CallError::Exchange(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CallError {}

/// The TLS server name of `host:port`, IPv6 `[::1]:port` included.
fn server_name(addr: &str) -> Option<rustls::pki_types::ServerName<'static>> {
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
        return Some(rustls::pki_types::ServerName::IpAddress(sa.ip().into()));
    }
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_string()).ok()
}

impl Peer {
    async fn dial(&self) -> Result<SendRequest<Full<Bytes>>, CallError> {
        let err = |what: &str, e: &dyn std::fmt::Display| {
            CallError::Unreachable(format!("{what} {}: {e}", self.addr))
        };
        let tcp = tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect(&self.addr))
            .await
            .map_err(|e| err("connect", &e))?
            .map_err(|e| err("connect", &e))?;
        let name = server_name(&self.addr).ok_or_else(|| err("server name", &"not a host:port"))?;
        let config = self
            .tls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| err("tls", &"this node has no cluster identity"))?;
        let tls = tokio::time::timeout(
            DIAL_TIMEOUT,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|e| err("tls", &e))?
        .map_err(|e| err("tls", &e))?;
        let mut h2 = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        // Half-open connections (a peer that rebooted) are noticed quickly.
        h2.timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(1))
            .keep_alive_timeout(Duration::from_secs(2));
        let (sender, conn) = h2
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| err("http2", &e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// One RPC, bounded by `ttl` from dial to decoded reply.
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        path: &str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, CallError> {
        match tokio::time::timeout(ttl, self.exchange(path, req)).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                Err(CallError::Exchange(format!(
                    "{}{path}: no answer within {ttl:?}",
                    self.addr
                )))
            }
        }
    }

    async fn exchange<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, CallError> {
        let bad = |m: String| CallError::Exchange(m);
        let body = serde_json::to_vec(req).map_err(|e| bad(e.to_string()))?;
        let mut sender = match self.conn.take() {
            Some(s) if !s.is_closed() => s,
            _ => self.dial().await?,
        };
        let request = hyper::Request::post(format!("https://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| bad(e.to_string()))?;
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| CallError::Unreachable(format!("{}: {e}", self.addr)))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| bad(e.to_string()))?
            .to_bytes();
        self.conn = Some(sender);
        if !status.is_success() {
            return Err(bad(format!(
                "{}: HTTP {status}: {}",
                self.addr,
                String::from_utf8_lossy(&bytes)
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{}: bad reply: {e}", self.addr)))
    }
}

fn rpc_error(e: CallError) -> RPCError<C> {
    match e {
        CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&e)),
        CallError::Exchange(_) => {
            tracing::warn!("raft rpc: {e}");
            RPCError::Network(NetworkError::new(&e))
        }
    }
}

impl RaftNetworkV2<C> for Peer {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        let r: Result<AppendEntriesResponse<C>, RaftError<C>> = self
            .call(PATH_APPEND, &rpc, option.hard_ttl())
            .await
            .map_err(rpc_error)?;
        r.map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        let r: Result<VoteResponse<C>, RaftError<C>> = self
            .call(PATH_VOTE, &rpc, option.hard_ttl())
            .await
            .map_err(rpc_error)?;
        r.map_err(|e| RPCError::Network(NetworkError::new(&e)))
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
            r = self.call::<_, Result<SnapshotResponse<C>, openraft::error::Fatal<C>>>(PATH_SNAPSHOT, &rpc, SNAPSHOT_TIMEOUT) => r,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        let r = sent.map_err(|e| match e {
            CallError::Unreachable(_) => StreamingError::Unreachable(Unreachable::new(&e)),
            CallError::Exchange(_) => StreamingError::Network(NetworkError::new(&e)),
        })?;
        r.map_err(|e| StreamingError::Network(NetworkError::new(&e)))
    }
}
