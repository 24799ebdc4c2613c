//! Users, groups, grants and tokens: each handler is one cluster call,
//! made for the caller.

use crate::caller::Caller;
use crate::routes::ApiError;
use axum::extract::State;
use axum::Json;
use berth_agent::{Agent, AgentError};
use berth_api_types::auth::*;
use berth_api_types::bodies::MessageReply;
use berth_api_types::*;
use berth_auth::{Grant, GroupRecord, UserRecord};
use berth_cluster::{ClusterError, IssuedToken};
use std::sync::Arc;
use std::time::Duration;

type S = State<Arc<Agent>>;
type Reply<E> = Result<Json<<E as Endpoint>::Reply>, ApiError>;

fn err(e: ClusterError) -> ApiError {
    ApiError(AgentError::Cluster(e))
}

fn grants(texts: &[String]) -> Result<Vec<Grant>, ApiError> {
    texts
        .iter()
        .map(|t| {
            t.parse()
                .map_err(|e: berth_auth::GrantError| err(ClusterError::BadInput(e.to_string())))
        })
        .collect()
}

fn texts(gs: &[Grant]) -> Vec<String> {
    gs.iter().map(Grant::to_string).collect()
}

fn source(s: berth_auth::Source) -> String {
    match s {
        berth_auth::Source::Local => "local".into(),
        berth_auth::Source::Ldap => "ldap".into(),
    }
}

fn user_info(u: &UserRecord, has_password: bool) -> UserInfo {
    UserInfo {
        name: u.name.clone(),
        groups: u.groups.clone(),
        grants: texts(&u.grants),
        source: source(u.source),
        created: u.created,
        has_password,
    }
}

fn group_info(g: &GroupRecord) -> GroupInfo {
    GroupInfo {
        name: g.name.clone(),
        grants: texts(&g.grants),
        source: source(g.source),
        ldap_groups: g
            .ldap
            .as_ref()
            .map(|m| m.groups.clone())
            .unwrap_or_default(),
        ldap_filter: g.ldap.as_ref().and_then(|m| m.filter.clone()),
    }
}

fn token_info(t: IssuedToken) -> TokenInfo {
    TokenInfo {
        grants: texts(&t.grants),
        token: t.token,
        id: t.id,
        user: t.user,
        expires: t.expires,
    }
}

pub(crate) async fn whoami(State(a): S, Caller(by): Caller) -> Reply<WhoAmIEndpoint> {
    let rights = a.cluster().rights(&by).map_err(err)?;
    Ok(Json(WhoAmI {
        user: by.user,
        grants: texts(rights.grants()),
    }))
}

pub(crate) async fn list(State(a): S, by: Caller) -> Reply<UserList> {
    by.require_root(&a)?;
    let users = a.cluster().users().map_err(err)?;
    Ok(Json(
        users.iter().map(|(u, has)| user_info(u, *has)).collect(),
    ))
}

pub(crate) async fn create(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<UserCreateRequest>,
) -> Reply<UserCreate> {
    let gs = grants(&r.grants)?;
    let has = r.password.is_some();
    let u = a
        .cluster()
        .user_create(&by, &r.name, r.password, r.groups, gs)
        .await
        .map_err(err)?;
    Ok(Json(user_info(&u, has)))
}

pub(crate) async fn delete(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<NameRequest>,
) -> Reply<UserDelete> {
    a.cluster().user_delete(&by, &r.name).await.map_err(err)?;
    Ok(Json(MessageReply {
        message: format!("user {} deleted", r.name),
    }))
}

pub(crate) async fn passwd(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<PasswdRequest>,
) -> Reply<UserPasswd> {
    a.cluster()
        .user_passwd(&by, &r.name, r.password)
        .await
        .map_err(err)?;
    Ok(Json(MessageReply {
        message: format!(
            "password of {} changed; its earlier tokens no longer work",
            r.name
        ),
    }))
}

pub(crate) async fn grant(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<GrantRequest>,
) -> Reply<GrantChange> {
    let gs = grants(&r.grants)?;
    let now = a
        .cluster()
        .grant(&by, r.group, &r.name, gs, r.revoke)
        .await
        .map_err(err)?;
    Ok(Json(GrantsReply {
        name: r.name,
        grants: texts(&now),
    }))
}

pub(crate) async fn groups(State(a): S, by: Caller) -> Reply<GroupList> {
    by.require_root(&a)?;
    let gs = a.cluster().groups().map_err(err)?;
    Ok(Json(gs.iter().map(group_info).collect()))
}

pub(crate) async fn group_create(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<GroupCreateRequest>,
) -> Reply<GroupCreate> {
    let gs = grants(&r.grants)?;
    let mapped = !r.ldap_groups.is_empty() || r.ldap_filter.is_some();
    let ldap = mapped.then_some(berth_auth::LdapGroupMap {
        groups: r.ldap_groups,
        filter: r.ldap_filter,
    });
    let g = a
        .cluster()
        .group_create(&by, &r.name, gs, ldap)
        .await
        .map_err(err)?;
    Ok(Json(group_info(&g)))
}

pub(crate) async fn ldap_sync(State(a): S, Caller(by): Caller) -> Reply<LdapSync> {
    Ok(Json(a.cluster().ldap_sync(&by).await.map_err(err)?))
}

pub(crate) async fn group_delete(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<NameRequest>,
) -> Reply<GroupDelete> {
    if a.cluster().group_record(&r.name).is_none() {
        return Err(err(ClusterError::NotFound(format!(
            "group {}: no such group",
            r.name
        ))));
    }
    a.cluster()
        .auth_submit(
            &by,
            berth_cluster::AuthOp::DeleteGroup {
                name: r.name.clone(),
            },
        )
        .await
        .map_err(err)?;
    Ok(Json(MessageReply {
        message: format!("group {} deleted", r.name),
    }))
}

pub(crate) async fn token_create(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<TokenCreateRequest>,
) -> Reply<TokenCreate> {
    let gs = match &r.grants {
        Some(t) => Some(grants(t)?),
        None => None,
    };
    let t = a
        .cluster()
        .issue_token(&by, &r.user, gs, Duration::from_secs(r.ttl_secs))
        .await
        .map_err(err)?;
    Ok(Json(token_info(t)))
}

pub(crate) async fn token_revoke(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<TokenRevokeRequest>,
) -> Reply<TokenRevoke> {
    let id = a.cluster().revoke_token(&by, &r.token).await.map_err(err)?;
    Ok(Json(MessageReply {
        message: format!("token {id} revoked"),
    }))
}

/// Needs no token: a password gets one.
pub(crate) async fn login(
    State(a): S,
    crate::caller::Source(source, request): crate::caller::Source,
    Json(r): Json<LoginRequest>,
) -> Reply<Login> {
    let node = berth_cluster::UserRef::root_on(a.nodename()).from(source, request);
    let t = a
        .cluster()
        .login(&node, &r.user, r.password, Duration::from_secs(r.ttl_secs))
        .await
        .map_err(err)?;
    Ok(Json(token_info(t)))
}

/// Needs no token: what a client pins before it sends a password.
pub(crate) async fn ca(State(a): S) -> Reply<CaBundle> {
    let id = a.cluster().identity().ok_or_else(|| {
        err(ClusterError::Conflict(
            "this node is in no cluster and has no CA: run `berth cluster init`".into(),
        ))
    })?;
    let sha256 = berth_net::fingerprint_pem(&id.ca_pem).map_err(|e| err(ClusterError::Net(e)))?;
    Ok(Json(CaInfo {
        pem: id.ca_pem,
        sha256,
    }))
}

pub(crate) async fn audit(
    State(a): S,
    by: Caller,
    axum::extract::Query(q): axum::extract::Query<AuditQuery>,
) -> Reply<AuditList> {
    by.require_root(&a)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let filter = berth_auth::audit::Filter {
        user: q.user,
        object: q.object,
        since_ms: q
            .since_secs
            .map(|s| now_ms.saturating_sub(s.saturating_mul(1000))),
        refused_only: q.refused,
    };
    let records = a
        .cluster()
        .audit(&filter, q.limit.unwrap_or(1000))
        .map_err(err)?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| AuditEntry {
                request: r.request,
                time_ms: r.time_ms,
                user: r.user,
                token: r.token,
                node: r.node,
                source: r.source,
                object: r.object,
                action: r.action,
                outcome: match r.outcome {
                    berth_auth::audit::Outcome::Allowed => "allowed".into(),
                    berth_auth::audit::Outcome::Refused => "refused".into(),
                },
                reason: r.reason,
            })
            .collect(),
    ))
}
