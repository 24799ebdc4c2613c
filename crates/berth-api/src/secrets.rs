//! The keys and values of `sec` and `cfg` objects: one cluster call each.

use crate::caller::Caller;
use crate::routes::ApiError;
use axum::extract::{Query, State};
use axum::Json;
use base64::Engine;
use berth_agent::{Agent, AgentError};
use berth_api_types::auth::*;
use berth_api_types::bodies::MessageReply;
use berth_api_types::*;
use berth_cluster::ClusterError;
use std::sync::Arc;

type S = State<Arc<Agent>>;
type Reply<E> = Result<Json<<E as Endpoint>::Reply>, ApiError>;

fn err(e: ClusterError) -> ApiError {
    ApiError(AgentError::Cluster(e))
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) async fn keys(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<SecretQuery>,
) -> Reply<SecretKeys> {
    let keys = a.cluster().secret_keys(&by, &q.path).map_err(err)?;
    Ok(Json(
        keys.into_iter()
            .map(|k| SecretKeyInfo {
                key: k.key,
                version: k.version,
                size: k.size,
            })
            .collect(),
    ))
}

pub(crate) async fn put(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<SecretPutRequest>,
) -> Reply<SecretPut> {
    let value = B64.decode(&r.value).map_err(|e| {
        err(ClusterError::BadInput(format!(
            "the value is not base64: {e}"
        )))
    })?;
    let version = a
        .cluster()
        .secret_put(&by, &r.path, &r.key, value, r.change)
        .await
        .map_err(err)?;
    Ok(Json(SecretWritten {
        path: r.path,
        key: r.key,
        version,
    }))
}

pub(crate) async fn decode(
    State(a): S,
    Caller(by): Caller,
    Query(q): Query<SecretQuery>,
) -> Reply<SecretDecode> {
    let value = a
        .cluster()
        .secret_decode(&by, &q.path, &q.key)
        .await
        .map_err(err)?;
    Ok(Json(SecretValue {
        path: q.path,
        key: q.key,
        value: B64.encode(value),
    }))
}

pub(crate) async fn remove(
    State(a): S,
    Caller(by): Caller,
    Json(r): Json<SecretRemoveRequest>,
) -> Reply<SecretRemove> {
    a.cluster()
        .secret_remove(&by, &r.path, &r.key)
        .await
        .map_err(err)?;
    Ok(Json(MessageReply {
        message: format!("{}: key {} removed", r.path, r.key),
    }))
}
