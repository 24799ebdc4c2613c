//! `/v1/kv/<key>`: GET (one key, `recurse`, `keys` with `separator`,
//! `raw`), PUT (`flags`, `cas`, `acquire`, `release`) and DELETE
//! (`recurse`, `cas`), as Consul's KV endpoint.

use crate::params::Params;
use crate::reply::{json, json_meta, not_found, ApiError, ApiResult};
use crate::store::Written;
use crate::watch::Interest;
use crate::{Replica, State};
use axum::body::{Body, Bytes};
use axum::extract::Path;
use axum::http::{header, HeaderValue, Uri};
use axum::response::Response;
use berth_kv::{keys, TxnOp};

fn key_of(path: Option<Path<String>>) -> Result<String, ApiError> {
    let key = path.map(|Path(k)| k).unwrap_or_default();
    berth_cluster::check_kv_key(&key).map_err(|e| ApiError::bad(e.to_string()))?;
    Ok(key)
}

fn interest(key: &str, prefix: bool) -> Interest {
    let both = vec![keys::kv(key), keys::tombstone(key)];
    if prefix {
        Interest::Prefixes(both)
    } else {
        Interest::Keys(both)
    }
}

pub async fn get(state: State, uri: Uri, path: Option<Path<String>>) -> ApiResult {
    let c = state.0;
    let p = Params::parse(uri.query())?;
    p.conflicting(&["recurse", "keys"])?;
    let key = key_of(path)?;
    crate::acl::check_kv_read(&c, &key)?;
    let opts = p.read_opts()?;
    if p.has("keys") {
        let sep = p
            .get("separator")
            .or(p.get("seperator"))
            .map(str::to_string);
        let (found, meta) = c
            .block(&opts, interest(&key, true), |d| {
                let r = Replica(d);
                let entries = berth_kv::list(&r, &key)?;
                let idx = berth_kv::index_of(&r, &key, true)?;
                Ok((crate::store::folded(&entries, &key, sep.as_deref()), idx))
            })
            .await?;
        return Ok(if found.is_empty() {
            not_found(meta)
        } else {
            json_meta(&found, meta)
        });
    }
    let recurse = p.has("recurse");
    let (found, meta) = c
        .block(&opts, interest(&key, recurse), |d| {
            let r = Replica(d);
            let entries = if recurse {
                berth_kv::list(&r, &key)?
            } else {
                berth_kv::entry(&r, &key)?.into_iter().collect()
            };
            Ok((entries, berth_kv::index_of(&r, &key, recurse)?))
        })
        .await?;
    if found.is_empty() {
        return Ok(not_found(meta));
    }
    if p.has("raw") {
        let value = found[0].value.clone().unwrap_or_default();
        let mut r = Response::new(Body::from(value));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        meta.apply(&mut r);
        return Ok(r);
    }
    Ok(json_meta(&found, meta))
}

/// Consul's answer to a body over its limit.
pub fn too_large(len: usize, max: usize) -> ApiError {
    ApiError::new(
        413,
        format!("Request body({len} bytes) too large, max size: {max} bytes"),
    )
}

pub async fn put(state: State, uri: Uri, path: Option<Path<String>>, body: Bytes) -> ApiResult {
    let c = state.0;
    let p = Params::parse(uri.query())?;
    p.conflicting(&["cas", "acquire", "release"])?;
    let key = key_of(path)?;
    if key.is_empty() {
        return Err(ApiError::bad("Missing key name"));
    }
    if body.len() > berth_kv::MAX_VALUE {
        return Err(too_large(body.len(), berth_kv::MAX_VALUE));
    }
    let flags = p.u64("flags", "flags")?.unwrap_or(0);
    let value = (!body.is_empty()).then(|| body.to_vec());
    let op = if let Some(session) = p.get("acquire") {
        TxnOp::Lock {
            key,
            value,
            flags,
            session: session.to_string(),
        }
    } else if let Some(session) = p.get("release") {
        TxnOp::Unlock {
            key,
            value,
            flags,
            session: session.to_string(),
        }
    } else if let Some(index) = p.u64("cas", "cas index")? {
        TxnOp::Cas {
            key,
            value,
            flags,
            index,
        }
    } else {
        TxnOp::Set { key, value, flags }
    };
    write_one(&c, op).await
}

pub async fn delete(state: State, uri: Uri, path: Option<Path<String>>) -> ApiResult {
    let c = state.0;
    let p = Params::parse(uri.query())?;
    p.conflicting(&["recurse", "cas"])?;
    let key = key_of(path)?;
    let op = if p.has("recurse") {
        TxnOp::DeleteTree { key }
    } else if let Some(index) = p.u64("cas", "cas index")? {
        TxnOp::DeleteCas { key, index }
    } else {
        TxnOp::Delete { key }
    };
    write_one(&c, op).await
}

/// One write, answered `true` or `false` as Consul does; a lock with a
/// session that does not exist is its 500.
async fn write_one(c: &crate::Consul, op: TxnOp) -> ApiResult {
    match crate::store::write(&c.cluster, c.user(), op)
        .await
        .map_err(crate::no_leader)?
    {
        Written::Done => Ok(json(&true)),
        Written::NotDone => Ok(json(&false)),
        Written::InvalidSession(what) => Err(ApiError::internal(what)),
    }
}
