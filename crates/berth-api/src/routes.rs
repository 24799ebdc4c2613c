//! The router: every handler is mounted at its endpoint type's method and
//! path (`berth-api-types`), and translates HTTP to one agent call.

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use berth_agent::{Agent, AgentError};
use berth_api_types::bodies::*;
use berth_api_types::*;
use futures_util::stream::{Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;

use crate::caller::Caller;

type S = State<Arc<Agent>>;

pub(crate) struct ApiError(pub(crate) AgentError);

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Json(ErrorBody {
            error: self.0.to_string(),
        });
        match self.0.retry_after() {
            Some(secs) => (code, [(header::RETRY_AFTER, secs.to_string())], body).into_response(),
            None => (code, body).into_response(),
        }
    }
}

/// The reply of endpoint `E`.
type Reply<E> = Result<Json<<E as Endpoint>::Reply>, ApiError>;

fn at<E: Endpoint>(
    router: Router<Arc<Agent>>,
    handler: MethodRouter<Arc<Agent>>,
) -> Router<Arc<Agent>> {
    router.route(E::PATH, handler)
}

/// `get` or `post`, as endpoint `E` declares.
macro_rules! mount {
    ($router:expr, $($e:ty => $h:expr),* $(,)?) => {{
        let mut r = $router;
        $(
            r = at::<$e>(r, match <$e as Endpoint>::METHOD {
                Method::Get => get($h),
                Method::Post => post($h),
            });
        )*
        r
    }};
}

pub fn router(agent: Arc<Agent>) -> Router {
    router_with(agent, None)
}

/// [`router`], with this node's ingress for `berth ingress routes`.
pub fn router_with(agent: Arc<Agent>, ingress: crate::catalog::IngressSlot) -> Router {
    let r = mount!(Router::new(),
        DaemonStatus => daemon_info,
        OpenApi => |_: S| async { Json(crate::openapi::document()) },
        KeywordSchema => |_: S| async { Json(berth_drivers::registry().json_schema()) },
        ListObjects => list_objects,
        CreateObject => create,
        EditObjects => edit,
        ObjectAction => action,
        ObjectConfig => config,
        ObjectKeyword => keyword,
        ObjectStatuses => status,
        WatchStatuses => watch_status,
        SwitchObject => switch,
        DeployObject => deploy,
        RollbackObject => rollback,
        DeployHistory => history,
        Events => events,
        ClusterInit => cluster_init,
        ClusterJoin => cluster_join,
        ClusterToken => cluster_token,
        ClusterCaRotate => cluster_ca_rotate,
        ClusterAutolock => cluster_autolock,
        ClusterUnlock => cluster_unlock,
        ClusterLeave => cluster_leave,
        ClusterStatus => cluster_status,
        NodeOperation => node_op,
        KvGet => crate::kv::get,
        KvKeysList => crate::kv::keys,
        KvPut => crate::kv::put,
        KvDelete => crate::kv::delete,
        KvWatch => crate::kv::watch,
        CatalogServices => crate::catalog::services,
        CatalogService => crate::catalog::service,
        IngressRoutes => crate::catalog::routes,
        WhoAmIEndpoint => crate::users::whoami,
        UserList => crate::users::list,
        UserCreate => crate::users::create,
        UserDelete => crate::users::delete,
        UserPasswd => crate::users::passwd,
        GrantChange => crate::users::grant,
        GroupList => crate::users::groups,
        GroupCreate => crate::users::group_create,
        GroupDelete => crate::users::group_delete,
        LdapSync => crate::users::ldap_sync,
        TokenCreate => crate::users::token_create,
        TokenRevoke => crate::users::token_revoke,
        Login => crate::users::login,
        CaBundle => crate::users::ca,
        AuditList => crate::users::audit,
        SecretKeys => crate::secrets::keys,
        SecretPut => crate::secrets::put,
        SecretDecode => crate::secrets::decode,
        SecretRemove => crate::secrets::remove,
    );
    r.with_state(agent).layer(axum::Extension(ingress))
}

async fn daemon_info(State(a): S) -> Reply<DaemonStatus> {
    let h = a.health().await;
    let (error, since) = match &h.store {
        berth_agent::StoreHealth::Ok => (None, None),
        berth_agent::StoreHealth::Degraded { error, since }
        | berth_agent::StoreHealth::ReadOnly { error, since } => {
            (Some(error.clone()), Some(since.clone()))
        }
    };
    Ok(Json(DaemonInfo {
        docker: h
            .docker
            .iter()
            .map(|d| DockerReport {
                daemon: d.daemon.clone(),
                socket: d.socket.clone(),
                ok: d.error.is_none(),
                error: d.error.clone(),
            })
            .collect(),
        store: StoreReport {
            state: h.store.as_str().to_string(),
            error,
            since,
        },
        cluster: ClusterReport {
            role: h.role.to_string(),
            leader: h.leader.clone(),
            term: h.term,
        },
        version: env!("CARGO_PKG_VERSION").to_string(),
        nodename: a.nodename().to_string(),
        pid: std::process::id(),
        home: a.home().root.display().to_string(),
        host_docker_socket: a.host_docker_socket().to_string(),
        objects: a.object_count()?,
    }))
}

fn parse_path(p: &str) -> Result<berth_model::ObjectPath, ApiError> {
    p.parse()
        .map_err(|e: berth_model::PathError| ApiError(AgentError::BadInput(e.to_string())))
}

async fn list_objects(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<SelectorQuery>,
) -> Reply<ListObjects> {
    Ok(Json(a.select_some(&by, &q.selector, q.allow_empty)?))
}

async fn create(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<CreateRequest>,
) -> Reply<CreateObject> {
    Ok(Json(
        a.create(
            &by,
            &r.path,
            &r.kws,
            r.config.as_deref(),
            r.config_name.as_deref(),
        )
        .await?,
    ))
}

async fn edit(State(a): S, Caller(by): Caller, Json(r): Json<EditRequest>) -> Reply<EditObjects> {
    Ok(Json(a.edit(&by, &r.selector, &r.set, &r.unset).await?))
}

async fn action(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<ActionRequest>,
) -> Reply<ObjectAction> {
    if r.action == berth_model::ActionKind::Replace {
        return Err(berth_agent::AgentError::BadInput(
            "replace is a deploy's start-first step: run `deploy` (update_order=start-first)"
                .into(),
        )
        .into());
    }
    Ok(Json(
        a.action(&by, &parse_path(&r.path)?, r.action, r.local)
            .await?,
    ))
}

async fn switch(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<SwitchRequest>,
) -> Reply<SwitchObject> {
    Ok(Json(
        a.switch(&by, &parse_path(&r.path)?, r.to.as_deref())
            .await?,
    ))
}

async fn deploy(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<DeployRequest>,
) -> Reply<DeployObject> {
    let order = r
        .order
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(berth_agent::AgentError::BadInput)?;
    let args = berth_cluster::DeployArgs {
        parallelism: r.parallelism,
        delay: r.delay_ms.map(std::time::Duration::from_millis),
        order,
        pins_of: None,
    };
    Ok(Json(a.deploy(&by, &parse_path(&r.path)?, args).await?))
}

async fn rollback(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<PathBody>,
) -> Reply<RollbackObject> {
    Ok(Json(a.rollback(&by, &parse_path(&r.path)?).await?))
}

async fn history(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<PathQuery>,
) -> Reply<DeployHistory> {
    a.check_read(&by, &q.path)?;
    Ok(Json(a.deploy_history(&q.path)?))
}

async fn cluster_init(State(a): S, by: Caller, Json(r): Json<InitRequest>) -> Reply<ClusterInit> {
    by.require_root(&a)?;
    Ok(Json(
        a.cluster_init(r.advertise.as_deref(), r.name.as_deref())
            .await?,
    ))
}

async fn cluster_join(State(a): S, by: Caller, Json(r): Json<JoinRequest>) -> Reply<ClusterJoin> {
    by.require_root(&a)?;
    Ok(Json(
        a.cluster_join(&r.addr, &r.token, r.advertise.as_deref())
            .await?,
    ))
}

async fn cluster_token(
    State(a): S,
    by: Caller,
    Json(r): Json<TokenRequest>,
) -> Reply<ClusterToken> {
    by.require_root(&a)?;
    let token = a.cluster_token(&by.0, r.role, r.rotate).await?;
    Ok(Json(TokenReply {
        role: r.role,
        token,
        rotated: r.rotate,
    }))
}

async fn cluster_ca_rotate(State(a): S, by: Caller) -> Reply<ClusterCaRotate> {
    by.require_root(&a)?;
    Ok(Json(a.cluster_ca_rotate(&by.0).await?))
}

async fn cluster_autolock(
    State(a): S,
    by: Caller,
    Json(r): Json<AutolockRequest>,
) -> Reply<ClusterAutolock> {
    by.require_root(&a)?;
    let op = match r.op {
        AutolockOp::Enable => berth_cluster::AutolockOp::Enable,
        AutolockOp::Rotate => berth_cluster::AutolockOp::Rotate,
        AutolockOp::Disable => berth_cluster::AutolockOp::Disable,
    };
    let unlock_key = a
        .cluster()
        .autolock(&by.0, op)
        .await
        .map_err(AgentError::from)?;
    Ok(Json(AutolockReply {
        enabled: r.op != AutolockOp::Disable,
        unlock_key,
    }))
}

async fn cluster_unlock(
    State(a): S,
    by: Caller,
    Json(r): Json<UnlockRequest>,
) -> Reply<ClusterUnlock> {
    by.require_root(&a)?;
    a.cluster()
        .unlock(&by.0, &r.key)
        .await
        .map_err(AgentError::from)?;
    Ok(Json(MessageReply {
        message: "this manager is unlocked".into(),
    }))
}

async fn cluster_leave(State(a): S, by: Caller) -> Reply<ClusterLeave> {
    by.require_root(&a)?;
    Ok(Json(MessageReply {
        message: a.cluster_leave().await?,
    }))
}

async fn cluster_status(State(a): S) -> Reply<ClusterStatus> {
    Ok(Json(a.cluster_view().await))
}

async fn node_op(State(a): S, by: Caller, Json(r): Json<NodeOpRequest>) -> Reply<NodeOperation> {
    by.require_root(&a)?;
    Ok(Json(a.node_op(&by.0, &r.node, r.op).await?))
}

async fn config(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<PathQuery>,
) -> Reply<ObjectConfig> {
    a.check_read(&by, &q.path)?;
    Ok(Json(ConfigFile {
        text: a.config_text(&q.path)?,
        path: q.path,
    }))
}

async fn keyword(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<KeywordQuery>,
) -> Reply<ObjectKeyword> {
    a.check_read(&by, &q.path)?;
    let value = a.get_keyword(&q.path, &q.kw, q.eval)?;
    Ok(Json(KeywordValue {
        path: q.path,
        keyword: q.kw,
        value,
    }))
}

async fn status(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<SelectorQuery>,
) -> Reply<ObjectStatuses> {
    Ok(Json(a.statuses_of(&by, &q.selector, q.allow_empty)?))
}

pub(crate) fn sse_of<T: serde::Serialize>(item: &T) -> Result<SseEvent, Infallible> {
    Ok(SseEvent::default().data(serde_json::to_string(item).unwrap_or_default()))
}

/// The selected statuses now, then again after every change on the
/// status bus (a lag re-reads them too, so nothing is missed).
async fn watch_status(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<SelectorQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let sub = a.subscribe_status();
    let first = a.statuses_of(&by, &q.selector, q.allow_empty)?;
    let feed = futures_util::stream::unfold(
        (a, by, sub, q, Some(first)),
        |(a, by, mut sub, q, next)| async move {
            if let Some(list) = next {
                return Some((sse_of(&list), (a, by, sub, q, None)));
            }
            a.status_changed(&mut sub).await?;
            // Changes come in bursts: take what else arrives in the meantime.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let list = a.statuses_of(&by, &q.selector, q.allow_empty).ok()?;
            Some((sse_of(&list), (a, by, sub, q, None)))
        },
    );
    Ok(Sse::new(feed).keep_alive(KeepAlive::default()))
}

/// Server-sent events: past events first, then live ones.
async fn events(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let feed = a.events(&by, q.since, q.last, q.follow)?.map(|e| {
        Ok(SseEvent::default()
            .id(e.seq.to_string())
            .data(serde_json::to_string(&e).unwrap_or_default()))
    });
    Ok(Sse::new(feed).keep_alive(KeepAlive::default()))
}
