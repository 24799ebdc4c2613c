//! Reads of entries and sessions, and the index a blocking query waits on.

use crate::{keys, Entry, Session};
use serde::de::DeserializeOwned;
use std::io;

/// Read access to the state machine's table.
pub trait Read {
    fn get(&self, key: &str) -> io::Result<Option<String>>;
    /// Every key starting with `prefix`, in key order, with its value.
    fn scan(&self, prefix: &str) -> io::Result<Vec<(String, String)>>;
}

fn decode<T: DeserializeOwned>(key: &str, text: &str) -> io::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{key}: {e}")))
}

/// The entry of `key`.
pub fn entry(t: &dyn Read, key: &str) -> io::Result<Option<Entry>> {
    let k = keys::kv(key);
    t.get(&k)?.map(|v| decode(&k, &v)).transpose()
}

/// Every entry whose key starts with `prefix`, in key order.
pub fn list(t: &dyn Read, prefix: &str) -> io::Result<Vec<Entry>> {
    t.scan(&keys::kv(prefix))?
        .iter()
        .map(|(k, v)| decode(k, v))
        .collect()
}

/// The index a query on `key` (with `prefix`, on every key under it)
/// reports and blocks on: the highest `ModifyIndex` of its entries and of
/// their deletions; at least 1, as Consul's `X-Consul-Index` always is.
pub fn index_of(t: &dyn Read, key: &str, prefix: bool) -> io::Result<u64> {
    let mut best = 0;
    if prefix {
        for e in list(t, key)? {
            best = best.max(e.modify_index);
        }
        for (k, v) in t.scan(&keys::tombstone(key))? {
            best = best.max(decode::<u64>(&k, &v)?);
        }
    } else {
        if let Some(e) = entry(t, key)? {
            best = e.modify_index;
        } else if let Some(v) = t.get(&keys::tombstone(key))? {
            best = decode(key, &v)?;
        }
    }
    Ok(best.max(1))
}

pub fn session(t: &dyn Read, id: &str) -> io::Result<Option<Session>> {
    let k = keys::session(id);
    t.get(&k)?.map(|v| decode(&k, &v)).transpose()
}

pub fn sessions(t: &dyn Read) -> io::Result<Vec<Session>> {
    t.scan(keys::SESSION)?
        .iter()
        .map(|(k, v)| decode(k, v))
        .collect()
}

/// The index session queries report: the last create or destroy.
pub fn sessions_index(t: &dyn Read) -> io::Result<u64> {
    Ok(t.get(keys::SESSIONS_INDEX)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        .max(1))
}
