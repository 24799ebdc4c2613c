//! `/v1/session/*`: create, destroy, renew, info, list and node, as
//! Consul's session endpoints. Field names are matched
//! case-insensitively; `TTL` and `LockDelay` are Go durations.

use crate::duration;
use crate::params::Params;
use crate::reply::{json, json_meta, ApiError, ApiResult};
use crate::txn::field;
use crate::watch::Interest;
use crate::{Consul, Replica, State};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::Uri;
use berth_cluster::KvWrite;
use berth_kv::{keys, Behavior, Outcome, Session};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// The node check that stands for berth's own node liveness.
pub const SERF_HEALTH: &str = "serfHealth";
const DEFAULT_LOCK_DELAY: Duration = Duration::from_secs(15);
const MAX_LOCK_DELAY: Duration = Duration::from_secs(60);
const MIN_TTL: Duration = Duration::from_secs(10);
const MAX_TTL: Duration = Duration::from_secs(86400);

/// A session as Consul shows it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SessionOut {
    #[serde(rename = "ID")]
    id: String,
    name: String,
    node: String,
    lock_delay: u64,
    behavior: Behavior,
    #[serde(rename = "TTL")]
    ttl: String,
    node_checks: Vec<String>,
    service_checks: Option<Vec<Value>>,
    checks: Vec<String>,
    create_index: u64,
    modify_index: u64,
}

impl From<Session> for SessionOut {
    fn from(s: Session) -> SessionOut {
        SessionOut {
            ttl: if s.ttl_ms == 0 {
                String::new()
            } else {
                duration::format(Duration::from_millis(s.ttl_ms))
            },
            lock_delay: s.lock_delay_ms * 1_000_000,
            checks: s.node_checks.clone(),
            node_checks: s.node_checks,
            service_checks: None,
            behavior: s.behavior,
            name: s.name,
            node: s.node,
            id: s.id,
            create_index: s.create_index,
            modify_index: s.modify_index,
        }
    }
}

fn strings(obj: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                // ServiceChecks are objects with an ID.
                Value::Object(o) => match field(o, "ID") {
                    Some(Value::String(s)) => Ok(s.clone()),
                    _ => Err(ApiError::bad(format!("Request decode failed: {name}"))),
                },
                _ => Err(ApiError::bad(format!("Request decode failed: {name}"))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(ApiError::bad(format!("Request decode failed: {name}"))),
    }
}

fn string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match field(obj, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad(format!(
            "Request decode failed: {name} must be a string"
        ))),
    }
}

/// `LockDelay`: a duration string, or a number (seconds below 1000, as
/// Consul's fixup reads it, else nanoseconds).
fn lock_delay(obj: &Map<String, Value>) -> Result<Duration, ApiError> {
    let d = match field(obj, "LockDelay") {
        None => DEFAULT_LOCK_DELAY,
        Some(Value::String(s)) => duration::parse(s)
            .ok_or_else(|| ApiError::bad(format!("Request decode failed: LockDelay {s:?}")))?,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v < 1000 => Duration::from_secs(v),
            Some(v) => Duration::from_nanos(v),
            None => return Err(ApiError::bad("Request decode failed: LockDelay")),
        },
        Some(_) => return Err(ApiError::bad("Request decode failed: LockDelay")),
    };
    Ok(d.min(MAX_LOCK_DELAY))
}

/// Reads a create body into a session (its id and indexes unset).
pub fn decode_session(body: &[u8], default_node: &str) -> Result<Session, ApiError> {
    let obj: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad(format!("Request decode failed: {e}")))?
    };
    let behavior = match string(&obj, "Behavior")?.as_deref() {
        None | Some("") | Some("release") => Behavior::Release,
        Some("delete") => Behavior::Delete,
        Some(other) => return Err(ApiError::bad(format!("Invalid Behavior setting '{other}'"))),
    };
    let ttl = match string(&obj, "TTL")?.filter(|t| !t.is_empty()) {
        None => Duration::ZERO,
        Some(t) => {
            let d = duration::parse(&t)
                .ok_or_else(|| ApiError::bad(format!("Request decode failed: TTL {t:?}")))?;
            if !d.is_zero() && !(MIN_TTL..=MAX_TTL).contains(&d) {
                return Err(ApiError::bad(format!(
                    "Invalid Session TTL '{}', must be between [{}={}]",
                    d.as_nanos(),
                    duration::format(MIN_TTL),
                    duration::format(MAX_TTL)
                )));
            }
            d
        }
    };
    let checks = strings(&obj, "Checks")?;
    let node_checks = strings(&obj, "NodeChecks")?;
    let service_checks = strings(&obj, "ServiceChecks")?.unwrap_or_default();
    let node_checks = match (checks, node_checks) {
        (None, None) => vec![SERF_HEALTH.to_string()],
        (a, b) => {
            let mut all = a.unwrap_or_default();
            all.extend(b.unwrap_or_default());
            all.dedup();
            all
        }
    };
    Ok(Session {
        id: String::new(),
        name: string(&obj, "Name")?.unwrap_or_default(),
        node: string(&obj, "Node")?
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_node.to_string()),
        node_checks,
        service_checks,
        behavior,
        ttl_ms: ttl.as_millis() as u64,
        lock_delay_ms: lock_delay(&obj)?.as_millis() as u64,
        create_index: 0,
        modify_index: 0,
    })
}

impl Consul {
    /// The nodes a session may be bound to: the cluster's, or this one.
    fn known_node(&self, node: &str) -> bool {
        node == self.cluster.nodename()
            || self.cluster.node_records().iter().any(|r| r.name == node)
    }
}

#[derive(Serialize)]
struct Created {
    #[serde(rename = "ID")]
    id: String,
}

pub async fn create(state: State, body: Bytes) -> ApiResult {
    let c = state.0;
    let mut s = decode_session(&body, c.cluster.nodename())?;
    if !c.known_node(&s.node) {
        return Err(ApiError::internal("Missing node registration"));
    }
    // Each check the session rests on must be registered on its node
    // (serfHealth is every member's).
    let registered =
        berth_kv::catalog::checks(c.desired().as_ref(), None).map_err(ApiError::from)?;
    if let Some(missing) = s.node_checks.iter().chain(&s.service_checks).find(|id| {
        id.as_str() != SERF_HEALTH
            && !registered
                .iter()
                .any(|ch| ch.node == s.node && &ch.id == *id)
    }) {
        return Err(ApiError::internal(format!(
            "Missing check '{missing}' registration"
        )));
    }
    s.id = uuid::Uuid::new_v4().to_string();
    match c.submit(KvWrite::SessionCreate(s)).await? {
        Outcome::Session(Some(s)) => Ok(json(&Created { id: s.id })),
        _ => Err(ApiError::internal("session id collision; retry")),
    }
}

fn session_id(id: &str) -> Result<(), ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| ApiError::bad(format!("Session id '{id}' invalid")))
}

pub async fn destroy(state: State, Path(id): Path<String>) -> ApiResult {
    session_id(&id)?;
    state.0.submit(KvWrite::SessionDestroy { id }).await?;
    Ok(json(&true))
}

pub async fn renew(state: State, Path(id): Path<String>) -> ApiResult {
    session_id(&id)?;
    match state
        .0
        .submit(KvWrite::SessionRenew { id: id.clone() })
        .await?
    {
        Outcome::Session(Some(s)) => Ok(json(&vec![SessionOut::from(s)])),
        _ => Err(ApiError::new(404, format!("Session id '{id}' not found"))),
    }
}

async fn query(c: &Consul, uri: &Uri, keep: impl Fn(&Session) -> bool) -> ApiResult {
    let opts = Params::parse(uri.query())?.read_opts()?;
    let interest = Interest::Keys(vec![keys::SESSIONS_INDEX.to_string()]);
    let (found, meta) = c
        .block(&opts, interest, |d| {
            let r = Replica(d);
            let all: Vec<SessionOut> = berth_kv::sessions(&r)?
                .into_iter()
                .filter(|s| keep(s))
                .map(SessionOut::from)
                .collect();
            Ok((all, berth_kv::sessions_index(&r)?))
        })
        .await?;
    Ok(json_meta(&found, meta))
}

pub async fn info(state: State, uri: Uri, Path(id): Path<String>) -> ApiResult {
    query(&state.0, &uri, |s| s.id == id).await
}

pub async fn list(state: State, uri: Uri) -> ApiResult {
    query(&state.0, &uri, |_| true).await
}

pub async fn node(state: State, uri: Uri, Path(node): Path<String>) -> ApiResult {
    query(&state.0, &uri, |s| s.node == node).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_create_body_is_read_as_consul_reads_it() {
        let s = decode_session(
            br#"{"name":"n","ttl":"15.0s","behavior":"delete","lockdelay":"1s"}"#,
            "me",
        )
        .unwrap();
        assert_eq!(
            (s.ttl_ms, s.lock_delay_ms, s.behavior),
            (15_000, 1_000, Behavior::Delete)
        );
        assert_eq!(
            (s.node.as_str(), s.node_checks.clone()),
            ("me", vec![SERF_HEALTH.to_string()])
        );
        let s = decode_session(b"", "me").unwrap();
        assert_eq!((s.ttl_ms, s.lock_delay_ms), (0, 15_000));
        let s = decode_session(br#"{"LockDelay": 5}"#, "me").unwrap();
        assert_eq!(s.lock_delay_ms, 5_000);
        let s = decode_session(br#"{"LockDelay": "5m"}"#, "me").unwrap();
        assert_eq!(s.lock_delay_ms, 60_000, "capped");
    }

    #[test]
    fn bad_create_bodies_are_400s() {
        for bad in [
            r#"{"TTL":"5s"}"#,
            r#"{"TTL":"25h"}"#,
            r#"{"Behavior":"x"}"#,
            r#"{"TTL":"abc"}"#,
            "{",
        ] {
            assert_eq!(
                decode_session(bad.as_bytes(), "me").unwrap_err().status,
                400,
                "{bad}"
            );
        }
    }
}
