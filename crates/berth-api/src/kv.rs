//! The KV endpoints of `berth kv`: reads from this node's replica, writes
//! as typed commands through the leader, watches on the replica's change
//! notices. The same store the Consul API serves.

use crate::caller::Caller;
use crate::routes::{sse_of, ApiError};
use axum::extract::{Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use base64::Engine as _;
use berth_agent::{Agent, AgentError};
use berth_api_types::kv::*;
use berth_consul::store::Written;
use berth_kv::{Entry, TxnOp};
use futures_util::stream::Stream;
use std::convert::Infallible;
use std::sync::Arc;

type S = State<Arc<Agent>>;

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::from(AgentError::BadInput(e.to_string()))
}

fn item(e: Entry) -> KvItem {
    KvItem {
        value: e
            .value
            .map(|v| base64::engine::general_purpose::STANDARD.encode(v)),
        key: e.key,
        flags: e.flags,
        session: e.session,
        lock_index: e.lock_index,
        create_index: e.create_index,
        modify_index: e.modify_index,
    }
}

/// A token's KV grants must allow reading `key` (or the keys under it).
fn may_read(a: &Agent, by: &berth_cluster::UserRef, key: &str) -> Result<(), ApiError> {
    let rights = a.cluster().rights(by).map_err(AgentError::from)?;
    if rights.allows_kv(key, false) {
        return Ok(());
    }
    let why = format!("{} holds no KV grant to read {key:?}", by.user);
    a.cluster()
        .record_refusal(by, &format!("kv:{key}"), "kv read", &why);
    Err(ApiError::from(AgentError::Cluster(
        berth_cluster::ClusterError::Forbidden(why),
    )))
}

fn entries(a: &Agent, q: &KvQuery) -> Result<KvEntries, ApiError> {
    berth_cluster::check_kv_key(&q.key).map_err(bad)?;
    let d = a.cluster().desired().as_ref();
    let found = if q.recurse {
        berth_kv::list(d, &q.key)
    } else {
        berth_kv::entry(d, &q.key).map(|e| e.into_iter().collect())
    }
    .map_err(|e| ApiError::from(AgentError::Io(e)))?;
    Ok(KvEntries {
        index: berth_kv::index_of(d, &q.key, q.recurse)
            .map_err(|e| ApiError::from(AgentError::Io(e)))?,
        entries: found.into_iter().map(item).collect(),
    })
}

pub(crate) async fn get(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<KvQuery>,
) -> Result<Json<KvEntries>, ApiError> {
    may_read(&a, &by, &q.key)?;
    let found = entries(&a, &q)?;
    if found.entries.is_empty() {
        return Err(AgentError::NoKey(q.key).into());
    }
    Ok(Json(found))
}

pub(crate) async fn keys(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<KvKeysQuery>,
) -> Result<Json<KvKeys>, ApiError> {
    berth_cluster::check_kv_key(&q.prefix).map_err(bad)?;
    may_read(&a, &by, &q.prefix)?;
    let d = a.cluster().desired().as_ref();
    let io = |e| ApiError::from(AgentError::Io(e));
    let found = berth_kv::list(d, &q.prefix).map_err(io)?;
    Ok(Json(KvKeys {
        keys: berth_consul::store::folded(&found, &q.prefix, q.separator.as_deref()),
        index: berth_kv::index_of(d, &q.prefix, true).map_err(io)?,
    }))
}

async fn write(
    a: &Agent,
    by: berth_cluster::UserRef,
    op: TxnOp,
) -> Result<Json<KvWritten>, ApiError> {
    let cluster = a.cluster();
    match berth_consul::store::write(cluster, by, op)
        .await
        .map_err(AgentError::from)?
    {
        Written::Done => Ok(Json(KvWritten { ok: true })),
        Written::NotDone => Ok(Json(KvWritten { ok: false })),
        Written::InvalidSession(what) => Err(bad(what)),
    }
}

pub(crate) async fn put(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<KvPutRequest>,
) -> Result<Json<KvWritten>, ApiError> {
    let value = match r.value {
        None => None,
        Some(v) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|e| bad(format!("value: not base64: {e}")))?,
        ),
    };
    if r.key.is_empty() {
        return Err(bad("a key is needed"));
    }
    if value
        .as_ref()
        .is_some_and(|v| v.len() > berth_kv::MAX_VALUE)
    {
        return Err(bad("the value is over 512 KiB"));
    }
    let (key, flags) = (r.key, r.flags);
    let op = match r.cas {
        Some(index) => TxnOp::Cas {
            key,
            value,
            flags,
            index,
        },
        None => TxnOp::Set { key, value, flags },
    };
    write(&a, by, op).await
}

pub(crate) async fn delete(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<KvDeleteRequest>,
) -> Result<Json<KvWritten>, ApiError> {
    let key = r.key;
    let op = match (r.recurse, r.cas) {
        (true, Some(_)) => return Err(bad("--recurse and --cas do not go together")),
        (true, None) => TxnOp::DeleteTree { key },
        (false, Some(index)) => TxnOp::DeleteCas { key, index },
        (false, None) => TxnOp::Delete { key },
    };
    write(&a, by, op).await
}

/// The entries now, then again each time a write changes their index.
/// A watcher that falls behind the change notices re-reads: it gets the
/// current state and index, and never misses the last change.
pub(crate) async fn watch(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<KvQuery>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    may_read(&a, &by, &q.key)?;
    let changes = a.cluster().desired().subscribe();
    let first = entries(&a, &q)?;
    let feed = futures_util::stream::unfold(
        (a, changes, q, Some(first), 0u64),
        |(a, mut changes, q, next, last)| async move {
            if let Some(list) = next {
                let idx = list.index;
                return Some((sse_of(&list), (a, changes, q, None, idx)));
            }
            loop {
                match changes.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
                let list = entries(&a, &q).ok()?;
                if list.index != last {
                    let idx = list.index;
                    return Some((sse_of(&list), (a, changes, q, None, idx)));
                }
            }
        },
    );
    Ok(Sse::new(feed).keep_alive(KeepAlive::default()))
}
