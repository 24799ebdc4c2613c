//! `PUT /v1/txn`: Consul's KV transactions. All operations apply or none
//! do; a rollback is a 409 that names each failed operation. A
//! transaction that only reads is answered from the replica, as a read.

use crate::kv::too_large;
use crate::params::Params;
use crate::reply::{json, ApiError, ApiResult};
use crate::{Replica, State};
use axum::body::Bytes;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use berth_cluster::KvWrite;
use berth_kv::{Entry, Outcome, TxnError, TxnOp};
use serde::Serialize;
use serde_json::{Map, Value};

/// The field `name` of a JSON object, matched case-insensitively as Go's
/// decoder does.
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn text(obj: &Map<String, Value>, name: &str, i: usize) -> Result<String, ApiError> {
    match field(obj, name) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(ApiError::bad(format!(
            "Failed to parse body: operation {i}: {name} must be a string, not {v}"
        ))),
    }
}

fn number(obj: &Map<String, Value>, name: &str, i: usize) -> Result<u64, ApiError> {
    match field(obj, name) {
        None => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            ApiError::bad(format!(
                "Failed to parse body: operation {i}: {name} must be an unsigned number, not {v}"
            ))
        }),
    }
}

fn value(obj: &Map<String, Value>, i: usize) -> Result<Option<Vec<u8>>, ApiError> {
    let t = text(obj, "Value", i)?;
    if t.is_empty() {
        return Ok(None);
    }
    base64::engine::general_purpose::STANDARD
        .decode(t.as_bytes())
        .map(Some)
        .map_err(|e| ApiError::bad(format!("Failed to parse body: operation {i}: Value: {e}")))
}

/// Decodes a transaction body: a JSON list of `{"KV": {...}}`.
pub fn decode_txn(body: &[u8]) -> Result<Vec<TxnOp>, ApiError> {
    let list: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad(format!("Failed to parse body: {e}")))?;
    if list.len() > berth_kv::MAX_TXN_OPS {
        return Err(ApiError::new(
            413,
            format!(
                "Transaction contains too many operations ({} > {})",
                list.len(),
                berth_kv::MAX_TXN_OPS
            ),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, v)| decode_op(v, i))
        .collect()
}

fn decode_op(v: &Value, i: usize) -> Result<TxnOp, ApiError> {
    let bad = |what: &str| ApiError::bad(format!("Failed to parse body: operation {i}: {what}"));
    let outer = v.as_object().ok_or_else(|| bad("not an object"))?;
    let Some(Value::Object(kv)) = field(outer, "KV") else {
        return Err(bad("only KV operations are supported"));
    };
    let verb = text(kv, "Verb", i)?;
    let key = text(kv, "Key", i)?;
    berth_cluster::check_kv_key(&key).map_err(|e| bad(&e.to_string()))?;
    let flags = number(kv, "Flags", i)?;
    let index = number(kv, "Index", i)?;
    let session = text(kv, "Session", i)?;
    let val = value(kv, i)?;
    if val.as_ref().is_some_and(|v| v.len() > berth_kv::MAX_VALUE) {
        return Err(too_large(val.map_or(0, |v| v.len()), berth_kv::MAX_VALUE));
    }
    Ok(match verb.as_str() {
        "set" => TxnOp::Set {
            key,
            value: val,
            flags,
        },
        "cas" => TxnOp::Cas {
            key,
            value: val,
            flags,
            index,
        },
        "lock" => TxnOp::Lock {
            key,
            value: val,
            flags,
            session,
        },
        "unlock" => TxnOp::Unlock {
            key,
            value: val,
            flags,
            session,
        },
        "get" => TxnOp::Get { key },
        "get-tree" => TxnOp::GetTree { key },
        "check-index" => TxnOp::CheckIndex { key, index },
        "check-session" => TxnOp::CheckSession { key, session },
        "check-not-exists" => TxnOp::CheckNotExists { key },
        "delete" => TxnOp::Delete { key },
        "delete-tree" => TxnOp::DeleteTree { key },
        "delete-cas" => TxnOp::DeleteCas { key, index },
        other => return Err(bad(&format!("unknown KV verb {other:?}"))),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TxnResult {
    #[serde(rename = "KV")]
    kv: Entry,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TxnErrorOut {
    op_index: usize,
    what: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct TxnReply {
    results: Option<Vec<TxnResult>>,
    errors: Option<Vec<TxnErrorOut>>,
}

pub async fn txn(state: State, uri: Uri, body: Bytes) -> ApiResult {
    let c = state.0;
    let p = Params::parse(uri.query())?;
    let ops = decode_txn(&body)?;
    let outcome = if ops.iter().any(TxnOp::writes) {
        c.submit(KvWrite::Txn(ops)).await?
    } else {
        let opts = p.read_opts()?;
        c.ready(opts.mode).await?;
        let op = berth_kv::Op::Txn { ops, now_ms: 0 };
        berth_kv::apply(&op, 0, &mut Replica(c.desired()))?.outcome
    };
    let Outcome::Txn { results, errors } = outcome else {
        return Err(ApiError::internal("unexpected outcome"));
    };
    Ok(answer(results, errors))
}

fn answer(results: Vec<Entry>, errors: Vec<TxnError>) -> axum::response::Response {
    if errors.is_empty() {
        return json(&TxnReply {
            results: Some(results.into_iter().map(|kv| TxnResult { kv }).collect()),
            errors: None,
        });
    }
    let body = TxnReply {
        results: None,
        errors: Some(
            errors
                .into_iter()
                .map(|e| TxnErrorOut {
                    op_index: e.op_index,
                    what: e.what,
                })
                .collect(),
        ),
    };
    (StatusCode::CONFLICT, json(&body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_consul_bodies_case_insensitively() {
        let body = br#"[{"KV":{"Verb":"set","Key":"a","Value":"aGk=","Flags":3}},
                        {"kv":{"verb":"delete-cas","key":"b","index":7}}]"#;
        let ops = decode_txn(body).unwrap();
        assert_eq!(
            ops[0],
            TxnOp::Set {
                key: "a".into(),
                value: Some(b"hi".to_vec()),
                flags: 3
            }
        );
        assert_eq!(
            ops[1],
            TxnOp::DeleteCas {
                key: "b".into(),
                index: 7
            }
        );
    }

    #[test]
    fn bad_bodies_are_consuls_errors() {
        let status = |b: &[u8]| decode_txn(b).unwrap_err().status;
        assert_eq!(
            status(br#"[{"KV":{"Verb":"set","Key":"a","Value":"***"}}]"#),
            400
        );
        assert_eq!(status(br#"[{"KV":{"Verb":"nope","Key":"a"}}]"#), 400);
        assert_eq!(status(br#"[{"KV":{"Verb":"get","Key":"a/../b"}}]"#), 400);
        assert_eq!(status(b"{"), 400);
        let many = format!(
            "[{}]",
            vec![r#"{"KV":{"Verb":"get","Key":"a"}}"#; 129].join(",")
        );
        assert_eq!(status(many.as_bytes()), 413);
    }
}
