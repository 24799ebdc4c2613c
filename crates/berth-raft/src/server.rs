//! The managers' Raft endpoint: HTTP/2 over mutual TLS, answering the RPCs
//! [`crate::network::Peer`] sends.

use crate::network::{SnapshotRpc, PATH_APPEND, PATH_PRE_VOTE, PATH_SNAPSHOT, PATH_VOTE};
use crate::{StateMachine, TypeConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use openraft::Raft;
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub type RaftNode = Raft<TypeConfig, StateMachine>;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest RPC body accepted: a full snapshot of desired state fits easily.
pub const MAX_BODY: usize = 256 << 20;

/// Serves Raft RPCs on `listener` until the task is dropped. Connections
/// that fail the TLS handshake (plaintext, no or foreign certificate) are
/// closed before any request is read.
/// The next TCP connection on `listener`, with Nagle off. A failing
/// accept (out of file descriptors and the like) is logged, not spun on.
pub async fn accept(
    listener: &tokio::net::TcpListener,
    what: &str,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let _ = tcp.set_nodelay(true);
                return (tcp, peer);
            }
            Err(e) => {
                tracing::warn!("{what}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The TLS handshake of a connection from `peer`, bounded in time; `None`
/// (logged) when it fails.
pub async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(t)) => Some(t),
        Ok(Err(e)) => {
            tracing::warn!("refused a connection from {peer}: {e}");
            None
        }
        Err(_) => {
            tracing::warn!(
                "refused a connection from {peer}: no TLS handshake within {HANDSHAKE_TIMEOUT:?}"
            );
            None
        }
    }
}

pub async fn serve(
    raft: RaftNode,
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (tcp, peer) = accept(&listener, "raft listener").await;
        let acceptor = acceptor.clone();
        let raft = raft.clone();
        tokio::spawn(async move {
            let Some(tls) = handshake(&acceptor, tcp, peer).await else {
                return;
            };
            // Only managers take part in Raft; workers' certificates are
            // from the same CA but carry the worker role.
            let is_manager = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .is_some_and(|c| berth_net::has_role(c.as_ref(), berth_net::Role::Manager));
            if !is_manager {
                tracing::warn!("refused raft connection from {peer}: not a manager certificate");
                return;
            }
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let raft = raft.clone();
                async move {
                    let path = req.uri().path().to_string();
                    let body = match http_body_util::Limited::new(req.into_body(), MAX_BODY)
                        .collect()
                        .await
                    {
                        Ok(b) => b.to_bytes(),
                        Err(e) => {
                            return Ok::<_, Infallible>(reply(
                                StatusCode::BAD_REQUEST,
                                &e.to_string(),
                            ))
                        }
                    };
                    let (status, body) = handle_rpc(&raft, &path, &body).await;
                    let mut r = Response::new(Full::new(Bytes::from(body)));
                    *r.status_mut() = status;
                    Ok(r)
                }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn reply<T: Serialize>(status: StatusCode, v: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

/// Answers one Raft RPC (`path` is `/raft/v1/...`, `body` its JSON). The
/// caller has checked that the peer presented a manager certificate.
pub async fn handle_rpc(raft: &RaftNode, path: &str, body: &[u8]) -> (StatusCode, Vec<u8>) {
    fn ok<T: Serialize>(v: &T) -> (StatusCode, Vec<u8>) {
        (StatusCode::OK, serde_json::to_vec(v).unwrap_or_default())
    }
    let bad = |e: serde_json::Error| {
        (
            StatusCode::BAD_REQUEST,
            serde_json::to_vec(&e.to_string()).unwrap_or_default(),
        )
    };
    match path {
        PATH_APPEND => match serde_json::from_slice(body) {
            Ok(rpc) => ok(&raft.append_entries(rpc).await),
            Err(e) => bad(e),
        },
        PATH_VOTE => match serde_json::from_slice(body) {
            Ok(rpc) => ok(&raft.vote(rpc).await),
            Err(e) => bad(e),
        },
        PATH_PRE_VOTE => match serde_json::from_slice(body) {
            Ok(rpc) => ok(&raft.pre_vote(rpc).await),
            Err(e) => bad(e),
        },
        PATH_SNAPSHOT => match serde_json::from_slice::<SnapshotRpc>(body) {
            Ok(s) => {
                let snapshot = openraft::Snapshot {
                    meta: s.meta,
                    snapshot: s.data,
                };
                ok(&raft.install_full_snapshot(s.vote, snapshot).await)
            }
            Err(e) => bad(e),
        },
        _ => (
            StatusCode::NOT_FOUND,
            serde_json::to_vec("no such raft endpoint").unwrap_or_default(),
        ),
    }
}
