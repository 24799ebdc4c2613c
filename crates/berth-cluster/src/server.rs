//! The node listener: one TCP port per cluster member, HTTP/2 over TLS.
//!
//! - `/raft/v1/*`: Raft RPCs, from managers only.
//! - `/join/v1/ca`, `/join/v1/join`: the only endpoints a client without a
//!   certificate reaches; the second one demands a valid join token.
//! - `/node/v1/*`: everything else, from any node the cluster CA certified;
//!   each endpoint checks what the caller's role and name allow it
//!   (`command` for desired-state changes).
//! - `/node/v1/write`, the raw store write of earlier versions, is refused.
//!
//! Architecture invariant: a request is served only after its connection's
//! certificate (or, for joins, its token) was checked for that endpoint,
//! and a desired-state change only after its command was authorized.

use crate::command::{Caller, Command};
use crate::records::{
    node_role, Heartbeat, HeartbeatAck, JoinRequest, MembershipOp, RemoteAction, RenewRequest,
};
use crate::{Cluster, ClusterError, Identity};
use berth_model::cluster::NodeRole;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, RwLock};

pub const PATH_CA: &str = "/join/v1/ca";
pub const PATH_JOIN: &str = "/join/v1/join";
/// Retired: refused with 403.
pub const PATH_WRITE: &str = "/node/v1/write";
pub const PATH_COMMAND: &str = "/node/v1/command";
pub const PATH_HEARTBEAT: &str = "/node/v1/heartbeat";
pub const PATH_ACTION: &str = "/node/v1/action";
pub const PATH_VIEW: &str = "/node/v1/view";
pub const PATH_MEMBERSHIP: &str = "/node/v1/membership";
pub const PATH_RENEW: &str = "/node/v1/renew";
pub const PATH_READ_INDEX: &str = "/node/v1/read-index";
pub const PATH_BACKEND_USE: &str = "/node/v1/backend-use";
pub const PATH_VALUE: &str = "/node/v1/value";
pub const PATH_LOGIN: &str = "/node/v1/login";
pub const PATH_DEPLOY: &str = "/node/v1/deploy";

/// Who is calling, from the connection's verified client certificate.
#[derive(Clone, Debug)]
enum Peer {
    Anonymous,
    Node(Caller),
}

/// The node listener's task and the certificate it serves with.
#[derive(Default)]
pub(crate) struct Listener {
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
}

impl Listener {
    pub(crate) fn stop(&self) {
        if let Some(h) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            h.abort();
        }
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Puts `id`'s certificate to use on the node listener, binding the
/// listener on the advertised address first if it is not bound yet. A
/// renewed certificate applies to the next connections.
pub(crate) fn listen(cluster: &Arc<Cluster>, id: &Identity) -> Result<(), ClusterError> {
    let tls = berth_net::node_server_config(&id.net())?;
    *cluster
        .listener
        .tls
        .write()
        .unwrap_or_else(|e| e.into_inner()) = Some(tls);
    let mut slot = cluster
        .listener
        .task
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return Ok(());
    }
    let std_listener = std::net::TcpListener::bind(&id.advertise)
        .map_err(|e| ClusterError::Conflict(format!("cannot listen on {}: {e}", id.advertise)))?;
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    *slot = Some(tokio::spawn(serve(cluster.clone(), listener)));
    Ok(())
}

async fn serve(cluster: Arc<Cluster>, listener: tokio::net::TcpListener) {
    loop {
        let (tcp, peer) = berth_raft::accept(&listener, "node listener").await;
        let Some(tls) = cluster
            .listener
            .tls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let Some(stream) = berth_raft::handshake(&acceptor, tcp, peer).await else {
                return;
            };
            let caller = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| berth_net::cert_identity(c.as_ref()))
                .map(|(role, name)| {
                    Peer::Node(Caller {
                        node: name,
                        role: node_role(role),
                    })
                })
                .unwrap_or(Peer::Anonymous);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let cluster = cluster.clone();
                let caller = caller.clone();
                async move { Ok::<_, Infallible>(handle(cluster, caller, req).await) }
            });
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
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

fn error(e: ClusterError) -> Response<Full<Bytes>> {
    let code = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(code, &e.to_string())
}

fn result<T: Serialize>(r: Result<T, ClusterError>) -> Response<Full<Bytes>> {
    match r {
        Ok(v) => reply(StatusCode::OK, &v),
        Err(e) => error(e),
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ClusterError> {
    serde_json::from_slice(body).map_err(|e| ClusterError::BadInput(format!("bad request: {e}")))
}

fn forbidden(why: &str) -> Response<Full<Bytes>> {
    reply(StatusCode::FORBIDDEN, &why)
}

async fn handle(
    cluster: Arc<Cluster>,
    peer: Peer,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let body = match http_body_util::Limited::new(req.into_body(), berth_raft::MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return reply(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if path.starts_with("/raft/") {
        if !matches!(&peer, Peer::Node(c) if c.role == NodeRole::Manager) {
            return forbidden("raft endpoints are for managers");
        }
        let (status, bytes) = berth_raft::handle_rpc(&cluster.desired.raft(), &path, &body).await;
        let mut r = Response::new(Full::new(Bytes::from(bytes)));
        *r.status_mut() = status;
        return r;
    }
    match path.as_str() {
        PATH_CA => result(
            cluster
                .identity()
                .map(|i| i.ca_pem)
                .ok_or_else(|| ClusterError::Conflict("this node is not in a cluster".into())),
        ),
        PATH_JOIN => match decode::<JoinRequest>(&body) {
            Ok(r) => result(cluster.admit(r).await),
            Err(e) => error(e),
        },
        _ => {
            let Peer::Node(caller) = peer else {
                return reply(
                    StatusCode::UNAUTHORIZED,
                    &"this endpoint needs a node certificate from the cluster CA",
                );
            };
            node_endpoint(&cluster, &caller, &path, &body).await
        }
    }
}

async fn node_endpoint(
    cluster: &Arc<Cluster>,
    caller: &Caller,
    path: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    match path {
        PATH_WRITE => forbidden(
            "raw desired-state writes are not accepted over the node protocol; nodes send typed commands",
        ),
        PATH_COMMAND => match serde_json::from_slice::<Command>(body) {
            Ok(cmd) => result(cluster.apply_from(caller, cmd).await),
            Err(_) if serde_json::from_slice::<berth_raft::Request>(body).is_ok() => forbidden(
                "raw desired-state writes are not accepted; nodes send typed commands",
            ),
            Err(e) => error(ClusterError::BadInput(format!("bad command: {e}"))),
        },
        PATH_HEARTBEAT => match decode::<Heartbeat>(body) {
            Ok(hb) if hb.node == caller.node => result::<HeartbeatAck>(cluster.receive(hb).await),
            Ok(_) => forbidden("a node heartbeats for itself only"),
            Err(e) => error(e),
        },
        PATH_ACTION => match decode::<RemoteAction>(body) {
            Ok(a) if a.by.node != caller.node => {
                forbidden("a node forwards its own users' actions only")
            }
            Ok(a) => result(cluster.remote_action(a).await),
            Err(e) => error(e),
        },
        PATH_VIEW => result(Ok::<_, ClusterError>(cluster.local_view())),
        PATH_READ_INDEX => result(cluster.leader_read_index().await),
        PATH_BACKEND_USE => match decode::<std::net::SocketAddr>(body) {
            Ok(addr) => result(Ok::<_, ClusterError>(cluster.local_backend_use(addr))),
            Err(e) => error(e),
        },
        PATH_MEMBERSHIP => match decode::<MembershipOp>(body) {
            Ok(op) => result(cluster.apply_membership(caller, op).await),
            Err(e) => error(e),
        },
        PATH_VALUE => match decode::<crate::secrets::ValueRequest>(body) {
            Ok(r) => result(cluster.serve_value(caller, r).await),
            Err(e) => error(e),
        },
        PATH_DEPLOY => match decode::<crate::records::ForwardedDeploy>(body) {
            Ok(d) if d.by.node != caller.node => {
                forbidden("a node forwards its own users' deploys only")
            }
            Ok(d) => result(cluster.forwarded_deploy(d).await),
            Err(e) => error(e),
        },
        PATH_LOGIN => match decode::<crate::records::ForwardedLogin>(body) {
            Ok(l) if l.by.node != caller.node => {
                forbidden("a node forwards its own users' logins only")
            }
            Ok(l) => result(
                cluster
                    .login(
                        &l.by,
                        &l.user,
                        l.password,
                        std::time::Duration::from_secs(l.ttl_secs),
                    )
                    .await,
            ),
            Err(e) => error(e),
        },
        PATH_RENEW => match decode::<RenewRequest>(body) {
            Ok(r) => result(cluster.issue(caller, r).await),
            Err(e) => error(e),
        },
        _ => reply(StatusCode::NOT_FOUND, &"no such endpoint"),
    }
}
