use crate::types::*;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_agent::{Agent, AgentError};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

type S = State<Arc<Agent>>;

struct ApiError(AgentError);

impl From<AgentError> for ApiError {
    fn from(e: AgentError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            code,
            Json(ErrorBody {
                error: self.0.to_string(),
            }),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

pub fn router(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/v1/daemon", get(daemon_info))
        .route(
            "/v1/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route(
            "/v1/schema/keywords",
            get(|| async { Json(berth_drivers::registry().json_schema()) }),
        )
        .route("/v1/objects", get(list_objects))
        .route("/v1/objects/create", post(create))
        .route("/v1/objects/edit", post(edit))
        .route("/v1/objects/action", post(action))
        .route("/v1/objects/config", get(config))
        .route("/v1/objects/keyword", get(keyword))
        .route("/v1/objects/status", get(status))
        .route("/v1/objects/switch", post(switch))
        .route("/v1/events", get(events))
        .route("/v1/cluster/init", post(cluster_init))
        .route("/v1/cluster/join", post(cluster_join))
        .route("/v1/cluster/token", post(cluster_token))
        .route("/v1/cluster/leave", post(cluster_leave))
        .route("/v1/cluster/ca/rotate", post(cluster_ca_rotate))
        .route("/v1/cluster/status", get(cluster_status))
        .route("/v1/nodes/op", post(node_op))
        .with_state(agent)
}

async fn daemon_info(State(a): S) -> ApiResult<DaemonInfo> {
    Ok(Json(DaemonInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        nodename: a.nodename().to_string(),
        pid: std::process::id(),
        home: a.opts.home.root.display().to_string(),
        host_docker_socket: a.opts.host_docker_socket.clone(),
        objects: a.desired.list().map_err(AgentError::from)?.len(),
    }))
}

#[derive(Deserialize)]
struct SelectorQuery {
    selector: String,
    /// An empty selection is an empty list rather than an error (`berth mon`,
    /// `berth ls` with no selector).
    #[serde(default)]
    allow_empty: bool,
}

#[derive(Deserialize)]
struct PathQuery {
    path: String,
}

#[derive(Deserialize)]
struct KeywordQuery {
    path: String,
    kw: String,
    #[serde(default)]
    eval: bool,
}

async fn list_objects(
    State(a): S,
    Query(q): Query<SelectorQuery>,
) -> ApiResult<Vec<berth_agent::ObjectInfo>> {
    match a.select(&q.selector) {
        Err(AgentError::NoMatch(_)) if q.allow_empty => Ok(Json(Vec::new())),
        r => Ok(Json(r?)),
    }
}

async fn create(State(a): S, Json(r): Json<CreateRequest>) -> ApiResult<berth_agent::ObjectInfo> {
    Ok(Json(a.create(&r.path, &r.kws, r.config.as_deref()).await?))
}

async fn edit(State(a): S, Json(r): Json<EditRequest>) -> ApiResult<Vec<berth_agent::SetOutcome>> {
    Ok(Json(a.edit(&r.selector, &r.set, &r.unset).await?))
}

async fn action(
    State(a): S,
    Json(r): Json<ActionRequest>,
) -> ApiResult<berth_agent::ActionOutcome> {
    let path = r
        .path
        .parse()
        .map_err(|e: berth_model::PathError| AgentError::BadInput(e.to_string()))?;
    Ok(Json(a.action(&path, r.action, r.local).await?))
}

async fn switch(
    State(a): S,
    Json(r): Json<SwitchRequest>,
) -> ApiResult<berth_agent::ActionOutcome> {
    let path = r
        .path
        .parse()
        .map_err(|e: berth_model::PathError| AgentError::BadInput(e.to_string()))?;
    Ok(Json(a.switch(&path, r.to.as_deref()).await?))
}

async fn cluster_init(
    State(a): S,
    Json(r): Json<InitRequest>,
) -> ApiResult<berth_agent::cluster::ClusterSummary> {
    Ok(Json(a.cluster_init(&r.advertise, r.name.as_deref()).await?))
}

async fn cluster_join(
    State(a): S,
    Json(r): Json<JoinRequest>,
) -> ApiResult<berth_agent::cluster::ClusterSummary> {
    Ok(Json(a.cluster_join(&r.addr, &r.token, &r.advertise).await?))
}

async fn cluster_token(State(a): S, Json(r): Json<TokenRequest>) -> ApiResult<TokenReply> {
    let token = a.cluster_token(r.role, r.rotate).await?;
    Ok(Json(TokenReply {
        role: r.role,
        token,
        rotated: r.rotate,
    }))
}

async fn cluster_ca_rotate(State(a): S) -> ApiResult<berth_agent::cluster::ClusterSummary> {
    Ok(Json(a.cluster_ca_rotate().await?))
}

async fn cluster_leave(State(a): S) -> ApiResult<MessageReply> {
    Ok(Json(MessageReply {
        message: a.cluster_leave().await?,
    }))
}

async fn cluster_status(State(a): S) -> ApiResult<berth_agent::cluster::ClusterView> {
    Ok(Json(a.cluster_view().await?))
}

async fn node_op(
    State(a): S,
    Json(r): Json<NodeOpRequest>,
) -> ApiResult<berth_agent::cluster::NodeRecord> {
    Ok(Json(a.node_op(&r.node, r.op).await?))
}

async fn config(State(a): S, Query(q): Query<PathQuery>) -> Result<String, ApiError> {
    Ok(a.config_text(&q.path)?)
}

async fn keyword(State(a): S, Query(q): Query<KeywordQuery>) -> ApiResult<KeywordValue> {
    let value = a.get_keyword(&q.path, &q.kw, q.eval)?;
    Ok(Json(KeywordValue {
        path: q.path,
        keyword: q.kw,
        value,
    }))
}

async fn status(
    State(a): S,
    Query(q): Query<SelectorQuery>,
) -> ApiResult<Vec<berth_model::status::ObjectStatus>> {
    let selected = match a.select(&q.selector) {
        Err(AgentError::NoMatch(_)) if q.allow_empty => Vec::new(),
        other => other?,
    };
    let all = a.statuses();
    Ok(Json(
        selected
            .iter()
            .map(|o| {
                all.iter()
                    .find(|s| s.path == o.path)
                    .cloned()
                    .unwrap_or_else(|| pending_status(&a, o))
            })
            .collect(),
    ))
}

/// Status of an object whose monitor has not reported yet.
fn pending_status(a: &Agent, o: &berth_agent::ObjectInfo) -> berth_model::status::ObjectStatus {
    berth_model::status::ObjectStatus {
        path: o.path.clone(),
        node: a.nodename().to_string(),
        avail: berth_model::status::Avail::NotApplicable,
        frozen: o.frozen,
        target: o.target,
        topology: "failover".into(),
        orchestrate: "no".into(),
        log: vec!["status not evaluated yet".into()],
        resources: vec![],
        docker_socket: None,
        placement: vec![],
    }
}

struct LiveState {
    rx: tokio::sync::broadcast::Receiver<berth_model::event::Event>,
    last_seen: u64,
    backlog: VecDeque<berth_model::event::Event>,
    agent: Arc<Agent>,
}

#[derive(Deserialize)]
struct EventsQuery {
    /// Replay events with a sequence number above this one first.
    #[serde(default)]
    since: Option<u64>,
    /// How many past events to replay when `since` is absent.
    #[serde(default)]
    last: Option<usize>,
    #[serde(default = "yes")]
    follow: bool,
}

fn yes() -> bool {
    true
}

/// Server-sent events: past events first, then live ones.
async fn events(
    State(a): S,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let live = a.events.subscribe();
    let past = match q.since {
        Some(seq) => a.store.events_after(seq, 10_000),
        None => a.store.last_events(q.last.unwrap_or(0)),
    }
    .map_err(AgentError::from)?;
    let last_seen = past.last().map(|e| e.seq).unwrap_or(0);
    let to_sse = |e: &berth_model::event::Event| {
        Ok(SseEvent::default()
            .id(e.seq.to_string())
            .data(serde_json::to_string(e).unwrap_or_default()))
    };
    let past_stream = stream::iter(past.iter().map(to_sse).collect::<Vec<_>>());
    let state = LiveState {
        rx: live,
        last_seen,
        backlog: VecDeque::new(),
        agent: a.clone(),
    };
    let follow = q.follow;
    let live_stream = stream::unfold(state, move |mut st| async move {
        if !follow {
            return None;
        }
        loop {
            if let Some(e) = st.backlog.pop_front() {
                st.last_seen = e.seq;
                return Some((to_sse(&e), st));
            }
            match st.rx.recv().await {
                Ok(e) if e.seq > st.last_seen => {
                    st.last_seen = e.seq;
                    return Some((to_sse(&e), st));
                }
                Ok(_) => continue,
                // Fell behind the live feed: catch up from the log instead of
                // silently skipping events.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let store = st.agent.store.clone();
                    let after = st.last_seen;
                    let missed =
                        tokio::task::spawn_blocking(move || store.events_after(after, 10_000))
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .unwrap_or_default();
                    st.backlog.extend(missed);
                }
                Err(_) => return None,
            }
        }
    });
    Ok(Sse::new(past_stream.chain(live_stream)).keep_alive(KeepAlive::default()))
}
