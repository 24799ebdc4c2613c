//! Who a request comes from. On the unix socket (mode 0600) the peer is
//! root on this node; a request that carries `Authorization: Bearer
//! <token>` acts with that token's rights instead, which the cluster
//! checks (here for reads, at the leader for every change).

use crate::routes::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use berth_agent::{Agent, AgentError};
use berth_cluster::{ClusterError, UserRef};
use std::sync::Arc;

pub(crate) struct Caller(pub UserRef);

/// The unix peer of a socket connection: its uid, when the kernel says.
#[derive(Clone, Copy, Debug)]
pub struct PeerCred(pub Option<u32>);

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tokio::net::UnixListener>,
    > for PeerCred
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::UnixListener>) -> Self {
        PeerCred(stream.io().peer_cred().ok().map(|c| c.uid()))
    }
}

/// The berth user a unix peer is: its account's name; root is root.
fn unix_user(node: &str, uid: u32) -> Result<UserRef, String> {
    if uid == 0 {
        return Ok(UserRef::root_on(node));
    }
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .ok_or_else(|| format!("uid {uid} has no account name"))?;
    Ok(UserRef::user_on(&name, node))
}

/// Where a request came from: the socket peer's uid, or the remote
/// API's peer address.
fn source_of(parts: &Parts) -> String {
    if let Some(c) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return format!("https {}", c.0);
    }
    match parts
        .extensions
        .get::<axum::extract::ConnectInfo<PeerCred>>()
        .and_then(|c| c.0 .0)
    {
        Some(uid) => format!("unix uid {uid}"),
        None => "unix".into(),
    }
}

/// Where a request came from and its id, for requests that carry no user
/// yet (a login).
pub(crate) struct Source(pub(crate) String, pub(crate) String);

impl FromRequestParts<Arc<Agent>> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &Arc<Agent>,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Source(source_of(parts), uuid::Uuid::new_v4().to_string()))
    }
}

impl FromRequestParts<Arc<Agent>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, a: &Arc<Agent>) -> Result<Self, ApiError> {
        let request = uuid::Uuid::new_v4().to_string();
        match Caller::identify(parts, a) {
            Ok(by) => Ok(Caller(by.from(source_of(parts), request))),
            Err(e) => {
                let nobody = UserRef::user_on("?", a.nodename()).from(source_of(parts), request);
                a.cluster()
                    .record_refusal(&nobody, "", "authenticate", &e.0.to_string());
                Err(e)
            }
        }
    }
}

impl Caller {
    fn identify(parts: &Parts, a: &Agent) -> Result<UserRef, ApiError> {
        let node = a.nodename();
        let unauthenticated =
            |m: &str| ApiError(AgentError::Cluster(ClusterError::Unauthenticated(m.into())));
        let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            if parts.extensions.get::<crate::remote::Remote>().is_some() {
                return Err(unauthenticated(
                    "this API wants a token: `berth login`, or BERTH_TOKEN",
                ));
            }
            let peer = parts
                .extensions
                .get::<axum::extract::ConnectInfo<PeerCred>>()
                .map(|c| c.0 .0);
            return match peer {
                // A socket the kernel told nothing about is root's own
                // (tests mount the router without one).
                None => Ok(UserRef::root_on(node)),
                Some(None) => Err(unauthenticated("the socket's peer is unknown")),
                Some(Some(uid)) => unix_user(node, uid).map_err(|m| unauthenticated(&m)),
            };
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthenticated("the Authorization header is not \"Bearer <token>\""))?;
        let claims = berth_auth::token::peek(token)
            .ok_or_else(|| unauthenticated(&berth_auth::TokenError::Malformed.to_string()))?;
        Ok(UserRef::with_token(&claims.user, node, token))
    }

    /// Node and cluster administration: root's only.
    pub(crate) fn require_root(&self, a: &Agent) -> Result<(), ApiError> {
        let rights = a.cluster().rights(&self.0).map_err(AgentError::from)?;
        if rights.is_root() {
            return Ok(());
        }
        let why = format!("{} may not do this: it takes root", self.0.user);
        a.cluster().record_refusal(&self.0, "", "administer", &why);
        Err(ApiError(AgentError::Cluster(ClusterError::Forbidden(why))))
    }
}
