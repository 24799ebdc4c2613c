//! Tokens on the Consul API. A request may carry a berth token as
//! Consul's clients send theirs (`X-Consul-Token`, `?token=`, or
//! `Authorization: Bearer`); its KV grants then decide what it reads and
//! writes, at the leader like every write. Without one, the API behaves
//! as Consul without ACLs, for loopback clients only, and not at all
//! with `--consul-anonymous none` (`any` serves every client, as before). A token that does not hold is Consul's
//! 403 "ACL not found".

use crate::reply::ApiError;
use crate::State;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use berth_cluster::{ClusterError, UserRef};
use std::net::SocketAddr;

tokio::task_local! {
    /// Who the request being served is from.
    static CALLER: UserRef;
}

fn token_of(req: &Request) -> Option<String> {
    let h = req.headers();
    if let Some(t) = h.get("x-consul-token").and_then(|v| v.to_str().ok()) {
        return Some(t.trim().to_string()).filter(|t| !t.is_empty());
    }
    if let Some(t) = h
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().to_string()).filter(|t| !t.is_empty());
    }
    crate::params::Params::parse(req.uri().query())
        .ok()
        .and_then(|p| p.get("token").map(str::to_string))
        .filter(|t| !t.is_empty())
}

/// The caller of the request being served: a token's holder, or
/// `anonymous`.
pub(crate) fn caller(node: &str) -> UserRef {
    CALLER
        .try_with(Clone::clone)
        .unwrap_or_else(|_| UserRef::user_on("anonymous", node))
}

fn denied(why: &str) -> Response {
    ApiError::new(403, why).into_response()
}

pub(crate) async fn layer(
    state: State,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let c = state.0;
    let node = c.cluster.nodename();
    let source = format!("consul {peer}");
    let request = uuid::Uuid::new_v4().to_string();
    let anonymous = UserRef::user_on("anonymous", node).from(source.clone(), request.clone());
    let refuse = |why: &str| {
        c.cluster
            .record_refusal(&anonymous, "", "consul request", why);
        denied(why)
    };
    let by = match token_of(&req) {
        None if c.opts.anonymous == crate::Anonymous::Nobody => {
            return refuse("Permission denied: this API wants a token (X-Consul-Token)")
        }
        None if c.opts.anonymous == crate::Anonymous::Loopback && !peer.ip().is_loopback() => {
            return refuse("Permission denied: without a token, only loopback clients are served")
        }
        None => anonymous.clone(),
        Some(t) => {
            let user = berth_auth::token::peek(&t).map_or_else(|| "?".to_string(), |c| c.user);
            let by = UserRef::with_token(&user, node, &t).from(source, request);
            match c.cluster.rights(&by) {
                Ok(_) => by,
                Err(ClusterError::Unauthenticated(_)) => return denied("ACL not found"),
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    };
    CALLER.scope(by, next.run(req)).await
}

/// Which catalog entries the caller sees: every one without a token (as
/// Consul without ACLs); with one, those its rights see
/// (`Rights::sees_entry`).
pub(crate) struct CatalogView(Option<berth_auth::Rights>);

impl CatalogView {
    pub(crate) fn of(c: &crate::Consul) -> Result<CatalogView, ApiError> {
        let by = caller(c.cluster.nodename());
        if by.token.is_none() {
            return Ok(CatalogView(None));
        }
        Ok(CatalogView(Some(c.cluster.rights(&by)?)))
    }

    pub(crate) fn sees(&self, s: &berth_kv::catalog::Service) -> bool {
        self.0.as_ref().is_none_or(|r| r.sees_entry(s.berth_path()))
    }

    /// The ids of the service instances the caller does not see, whose
    /// checks are hidden too.
    pub(crate) fn hidden_ids(
        &self,
        d: &dyn berth_kv::Read,
    ) -> std::io::Result<std::collections::HashSet<String>> {
        if self.0.is_none() {
            return Ok(Default::default());
        }
        Ok(berth_kv::catalog::services(d, None)?
            .into_iter()
            .filter(|s| !self.sees(s))
            .map(|s| s.id)
            .collect())
    }
}

/// A KV read of `key` (or of the keys under it): with a token, its KV
/// grants must allow it.
pub(crate) fn check_kv_read(c: &crate::Consul, key: &str) -> Result<(), ApiError> {
    let by = caller(c.cluster.nodename());
    if by.token.is_none() {
        return Ok(());
    }
    let rights = c.cluster.rights(&by)?;
    if rights.allows_kv(key, false) {
        Ok(())
    } else {
        Err(ApiError::new(403, "Permission denied"))
    }
}
