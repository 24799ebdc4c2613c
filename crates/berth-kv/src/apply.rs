//! Applying an [`Op`] at its log index: deterministic, all or nothing.

use crate::op::{ErrorKind, Op, Outcome, TxnError, TxnOp};
use crate::read::{self, Read};
use crate::{keys, Behavior, Entry, Table};
use std::collections::BTreeMap;
use std::io;

/// What applying an operation returned, and the table keys it wrote (for
/// watchers).
#[derive(Debug)]
pub struct Applied {
    pub outcome: Outcome,
    pub touched: Vec<String>,
}

/// The table as a transaction sees it: its own writes over the base.
pub(crate) struct Overlay<'a> {
    base: &'a dyn Read,
    writes: BTreeMap<String, Option<String>>,
}

impl Read for Overlay<'_> {
    fn get(&self, key: &str) -> io::Result<Option<String>> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }

    fn scan(&self, prefix: &str) -> io::Result<Vec<(String, String)>> {
        let mut all: BTreeMap<String, Option<String>> = self
            .base
            .scan(prefix)?
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        for (k, v) in self.writes.range(prefix.to_string()..) {
            if !k.starts_with(prefix) {
                break;
            }
            all.insert(k.clone(), v.clone());
        }
        Ok(all
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect())
    }
}

impl Overlay<'_> {
    fn put_entry(&mut self, e: &Entry) -> io::Result<()> {
        let text = serde_json::to_string(e).map_err(io::Error::other)?;
        self.writes.insert(keys::kv(&e.key), Some(text));
        if self.get(&keys::tombstone(&e.key))?.is_some() {
            self.writes.insert(keys::tombstone(&e.key), None);
        }
        Ok(())
    }

    fn delete_entry(&mut self, key: &str, index: u64) {
        self.writes.insert(keys::kv(key), None);
        self.writes
            .insert(keys::tombstone(key), Some(index.to_string()));
    }

    pub(crate) fn put_raw(&mut self, key: String, value: String) {
        self.writes.insert(key, Some(value));
    }

    pub(crate) fn delete_raw(&mut self, key: String) {
        self.writes.insert(key, None);
    }
}

/// Writes a transaction's overlay to the table; returns the keys written.
fn commit(writes: BTreeMap<String, Option<String>>, t: &mut dyn Table) -> io::Result<Vec<String>> {
    {
        let mut touched = Vec::with_capacity(writes.len());
        for (k, v) in writes {
            match v {
                Some(v) => t.put(&k, &v)?,
                None => t.delete(&k)?,
            }
            touched.push(k);
        }
        Ok(touched)
    }
}

/// Applies `op`, the Raft entry at `index`, to `t`.
pub fn apply(op: &Op, index: u64, t: &mut dyn Table) -> io::Result<Applied> {
    let mut o = Overlay {
        base: &*t,
        writes: BTreeMap::new(),
    };
    let outcome = match op {
        Op::Txn { ops, now_ms } => {
            let mut results = Vec::new();
            let mut errors = Vec::new();
            for (i, txn_op) in ops.iter().enumerate() {
                match txn_step(&mut o, txn_op, index, *now_ms) {
                    Ok(found) => results.extend(found),
                    Err((kind, what)) => errors.push(TxnError {
                        op_index: i,
                        what,
                        kind,
                    }),
                }
            }
            if !errors.is_empty() {
                return Ok(Applied {
                    outcome: Outcome::Txn {
                        results: Vec::new(),
                        errors,
                    },
                    touched: Vec::new(),
                });
            }
            Outcome::Txn { results, errors }
        }
        Op::SessionCreate { session } => {
            if read::session(&o, &session.id)?.is_some() {
                Outcome::Session(None)
            } else {
                let mut s = session.clone();
                s.create_index = index;
                s.modify_index = index;
                let text = serde_json::to_string(&s).map_err(io::Error::other)?;
                o.put_raw(keys::session(&s.id), text);
                o.put_raw(keys::SESSIONS_INDEX.into(), index.to_string());
                Outcome::Session(Some(s))
            }
        }
        Op::SessionDestroy { id, now_ms } => Outcome::Session(destroy(&mut o, id, index, *now_ms)?),
        Op::Catalog(ops) => {
            for op in ops {
                crate::catalog_apply::step(&mut o, op, index)?;
            }
            Outcome::Catalog
        }
        Op::SessionRenew { id, now_ms } => {
            let s = read::session(&o, id)?;
            if s.is_some() {
                o.put_raw(keys::renew(id), now_ms.to_string());
            }
            Outcome::Session(s)
        }
    };
    let writes = o.writes;
    let touched = commit(writes, t)?;
    Ok(Applied { outcome, touched })
}

/// Invalidates session `id`: releases or deletes its keys, each locked for
/// the session's lock-delay.
fn destroy(
    o: &mut Overlay<'_>,
    id: &str,
    index: u64,
    now_ms: u64,
) -> io::Result<Option<crate::Session>> {
    let Some(s) = read::session(o, id)? else {
        return Ok(None);
    };
    for mut e in read::list(o, "")? {
        if e.session.as_deref() != Some(id) {
            continue;
        }
        match s.behavior {
            Behavior::Release => {
                e.session = None;
                e.modify_index = index;
                o.put_entry(&e)?;
            }
            Behavior::Delete => o.delete_entry(&e.key, index),
        }
        if s.lock_delay_ms > 0 {
            o.put_raw(
                keys::lock_delay(&e.key),
                (now_ms + s.lock_delay_ms).to_string(),
            );
        }
    }
    o.delete_raw(keys::session(id));
    o.delete_raw(keys::renew(id));
    o.put_raw(keys::SESSIONS_INDEX.into(), index.to_string());
    Ok(Some(s))
}

type Step = Result<Vec<Entry>, (ErrorKind, String)>;

fn conflict(what: String) -> (ErrorKind, String) {
    (ErrorKind::Conflict, what)
}

fn io_err(e: io::Error) -> (ErrorKind, String) {
    (ErrorKind::Conflict, e.to_string())
}

/// One operation of a transaction: what it returns, or why it fails.
fn txn_step(o: &mut Overlay<'_>, op: &TxnOp, index: u64, now_ms: u64) -> Step {
    let key = op.key();
    let current = read::entry(o, key).map_err(io_err)?;
    let written = |o: &mut Overlay<'_>, e: Entry| -> Step {
        o.put_entry(&e).map_err(io_err)?;
        Ok(vec![Entry { value: None, ..e }])
    };
    match op {
        TxnOp::Set { value, flags, .. } => written(o, set(current, key, value, *flags, index)),
        TxnOp::Cas {
            value,
            flags,
            index: want,
            ..
        } => {
            let ok = match &current {
                None => *want == 0,
                Some(e) => *want != 0 && e.modify_index == *want,
            };
            if !ok {
                return Err(conflict(format!(
                    "failed to set key {key:?}, index is stale"
                )));
            }
            written(o, set(current, key, value, *flags, index))
        }
        TxnOp::Lock {
            value,
            flags,
            session,
            ..
        } => {
            if read::session(o, session).map_err(io_err)?.is_none() {
                return Err((
                    ErrorKind::InvalidSession,
                    format!("invalid session {session:?}"),
                ));
            }
            let held_by = current.as_ref().and_then(|e| e.session.clone());
            match held_by {
                Some(h) if h != *session => Err(conflict(format!(
                    "failed to lock key {key:?}, lock is already held"
                ))),
                Some(_) => written(o, set(current, key, value, *flags, index)),
                None => {
                    let delay = o.get(&keys::lock_delay(key)).map_err(io_err)?;
                    if delay.and_then(|d| d.parse::<u64>().ok()) > Some(now_ms) {
                        return Err(conflict(format!(
                            "failed to lock key {key:?}, lock-delay is in effect"
                        )));
                    }
                    o.delete_raw(keys::lock_delay(key));
                    let mut e = set(current, key, value, *flags, index);
                    e.lock_index += 1;
                    e.session = Some(session.clone());
                    written(o, e)
                }
            }
        }
        TxnOp::Unlock {
            value,
            flags,
            session,
            ..
        } => {
            if current.as_ref().and_then(|e| e.session.as_deref()) != Some(session) {
                return Err(conflict(format!(
                    "failed to unlock key {key:?}, lock isn't held, or is held by another session"
                )));
            }
            let mut e = set(current, key, value, *flags, index);
            e.session = None;
            written(o, e)
        }
        TxnOp::Get { .. } => match current {
            Some(e) => Ok(vec![e]),
            None => Err(conflict(format!("key {key:?} doesn't exist"))),
        },
        TxnOp::GetTree { .. } => read::list(o, key).map_err(io_err),
        TxnOp::CheckIndex { index: want, .. } => match current {
            Some(e) if e.modify_index == *want => Ok(vec![e]),
            Some(e) => Err(conflict(format!(
                "current modify index {} != {want}",
                e.modify_index
            ))),
            None => Err(conflict(format!("key {key:?} doesn't exist"))),
        },
        TxnOp::CheckSession { session, .. } => match current {
            Some(e) if e.session.as_deref() == Some(session) => Ok(vec![e]),
            Some(e) => Err(conflict(format!(
                "failed session check for key {key:?}, current session {:?} != {session:?}",
                e.session.unwrap_or_default()
            ))),
            None => Err(conflict(format!("key {key:?} doesn't exist"))),
        },
        TxnOp::CheckNotExists { .. } => match current {
            Some(_) => Err(conflict(format!("key {key:?} exists"))),
            None => Ok(Vec::new()),
        },
        TxnOp::Delete { .. } => {
            if current.is_some() {
                o.delete_entry(key, index);
            }
            Ok(Vec::new())
        }
        TxnOp::DeleteTree { .. } => {
            for e in read::list(o, key).map_err(io_err)? {
                o.delete_entry(&e.key, index);
            }
            Ok(Vec::new())
        }
        TxnOp::DeleteCas { index: want, .. } => match current {
            None => Ok(Vec::new()),
            Some(e) if e.modify_index == *want => {
                o.delete_entry(key, index);
                Ok(Vec::new())
            }
            Some(_) => Err(conflict(format!(
                "failed to delete key {key:?}, index is stale"
            ))),
        },
    }
}

/// `current` with a new value and flags, written at `index`.
fn set(
    current: Option<Entry>,
    key: &str,
    value: &Option<Vec<u8>>,
    flags: u64,
    index: u64,
) -> Entry {
    let mut e = current.unwrap_or_else(|| Entry {
        key: key.to_string(),
        create_index: index,
        ..Default::default()
    });
    e.value = value.clone();
    e.flags = flags;
    e.modify_index = index;
    e
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
