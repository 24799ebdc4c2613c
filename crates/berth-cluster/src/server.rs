//! The node listener: one TCP port per cluster member, HTTP/2 over TLS.
//!
//! - `/raft/v1/*`: Raft RPCs, from managers only.
//! - `/join/v1/ca`, `/join/v1/join`: the only endpoints a client without a
//!   certificate reaches; the second one demands a valid join token.
//! - `/node/v1/*`: everything else, from any node the cluster CA certified.
//!
//! Architecture invariant: a request is served only after its connection's
//! certificate (or, for joins, its token) was checked for that endpoint.

use super::records::{Heartbeat, HeartbeatAck, JoinRequest, MembershipOp, RemoteAction};
use super::Identity;
use crate::agent::Agent;
use crate::error::AgentError;
use berth_net::Role;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub const PATH_CA: &str = "/join/v1/ca";
pub const PATH_JOIN: &str = "/join/v1/join";
pub const PATH_WRITE: &str = "/node/v1/write";
pub const PATH_HEARTBEAT: &str = "/node/v1/heartbeat";
pub const PATH_ACTION: &str = "/node/v1/action";
pub const PATH_VIEW: &str = "/node/v1/view";
pub const PATH_MEMBERSHIP: &str = "/node/v1/membership";
pub const PATH_RENEW: &str = "/node/v1/renew";

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Who is calling, from the connection's verified client certificate.
#[derive(Clone, Debug)]
enum Caller {
    Anonymous,
    Node { role: Role, name: String },
}

/// Puts `id`'s certificate to use on the node listener, binding the
/// listener on the advertised address first if it is not bound yet. A
/// renewed certificate applies to the next connections.
pub(crate) fn listen(agent: &Arc<Agent>, id: &Identity) -> Result<(), AgentError> {
    let tls = berth_net::node_server_config(&id.net())?;
    *agent
        .cluster
        .server_tls
        .write()
        .unwrap_or_else(|e| e.into_inner()) = Some(tls);
    let mut slot = agent
        .cluster
        .listener
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return Ok(());
    }
    let std_listener = std::net::TcpListener::bind(&id.advertise)
        .map_err(|e| AgentError::Cluster(format!("cannot listen on {}: {e}", id.advertise)))?;
    std_listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    *slot = Some(tokio::spawn(serve(agent.clone(), listener)));
    Ok(())
}

async fn serve(agent: Arc<Agent>, listener: tokio::net::TcpListener) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("node listener: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(tls) = agent
            .cluster
            .server_tls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            continue;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let agent = agent.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!("refused a connection from {peer}: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!("refused a connection from {peer}: no TLS handshake");
                    return;
                }
            };
            let caller = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| berth_net::cert_identity(c.as_ref()))
                .map(|(role, name)| Caller::Node { role, name })
                .unwrap_or(Caller::Anonymous);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let agent = agent.clone();
                let caller = caller.clone();
                async move { Ok::<_, Infallible>(handle(agent, caller, req).await) }
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

fn error(e: AgentError) -> Response<Full<Bytes>> {
    let code = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply(code, &e.to_string())
}

fn result<T: Serialize>(r: Result<T, AgentError>) -> Response<Full<Bytes>> {
    match r {
        Ok(v) => reply(StatusCode::OK, &v),
        Err(e) => error(e),
    }
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AgentError> {
    serde_json::from_slice(body).map_err(|e| AgentError::BadInput(format!("bad request: {e}")))
}

async fn handle(
    agent: Arc<Agent>,
    caller: Caller,
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
        if !matches!(
            caller,
            Caller::Node {
                role: Role::Manager,
                ..
            }
        ) {
            return reply(StatusCode::FORBIDDEN, &"raft endpoints are for managers");
        }
        let (status, bytes) = berth_raft::handle_rpc(&agent.desired.raft(), &path, &body).await;
        let mut r = Response::new(Full::new(Bytes::from(bytes)));
        *r.status_mut() = status;
        return r;
    }
    match path.as_str() {
        PATH_CA => result(
            agent
                .cluster
                .identity()
                .map(|i| i.ca_pem)
                .ok_or_else(|| AgentError::Conflict("this node is not in a cluster".into())),
        ),
        PATH_JOIN => match decode::<JoinRequest>(&body) {
            Ok(r) => result(super::join::admit(&agent, r).await),
            Err(e) => error(e),
        },
        _ => {
            let Caller::Node { role, name } = caller else {
                return reply(
                    StatusCode::UNAUTHORIZED,
                    &"this endpoint needs a node certificate from the cluster CA",
                );
            };
            node_endpoint(&agent, role, &name, &path, &body).await
        }
    }
}

async fn node_endpoint(
    agent: &Arc<Agent>,
    role: Role,
    caller: &str,
    path: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    match path {
        PATH_WRITE => match decode::<berth_store::Request>(body) {
            Ok(req) => {
                if !agent.desired.is_leader() {
                    return error(AgentError::Cluster("not the leader".into()));
                }
                result(
                    agent
                        .desired
                        .write_here(req)
                        .await
                        .map_err(AgentError::from),
                )
            }
            Err(e) => error(e),
        },
        PATH_HEARTBEAT => match decode::<Heartbeat>(body) {
            Ok(hb) if hb.node == caller => {
                result::<HeartbeatAck>(super::heartbeat::receive(agent, hb).await)
            }
            Ok(_) => reply(StatusCode::FORBIDDEN, &"a node heartbeats for itself only"),
            Err(e) => error(e),
        },
        PATH_ACTION => match decode::<RemoteAction>(body) {
            Ok(a) => match a.path.parse() {
                Ok(p) => {
                    agent
                        .desired
                        .catch_up(a.applied, Duration::from_secs(10))
                        .await;
                    result(agent.local_action(&p, a.action).await)
                }
                Err(e) => error(AgentError::BadInput(format!("{e}"))),
            },
            Err(e) => error(e),
        },
        PATH_VIEW => result(Ok::<_, AgentError>(agent.local_view())),
        PATH_MEMBERSHIP => match decode::<MembershipOp>(body) {
            Ok(op) => result(super::admin::apply_membership(agent, role, caller, op).await),
            Err(e) => error(e),
        },
        PATH_RENEW => match decode::<super::records::RenewRequest>(body) {
            Ok(r) => result(super::renew::issue(agent, caller, r).await),
            Err(e) => error(e),
        },
        _ => reply(StatusCode::NOT_FOUND, &"no such endpoint"),
    }
}
