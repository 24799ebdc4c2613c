//! The replicated state machine: desired state as key/value, plus the last
//! applied log id, the last membership and the current snapshot.
//!
//! Applies are committed without an fsync of their own. They share the file
//! with the log, so the log's next fsynced append carries them, and a
//! snapshot is an fsynced commit before any log entry is purged. A crash
//! can lose the last applies, never the entries: openraft applies them
//! again from the log (`Desired::open` waits for that before the agent
//! reads).

use crate::codec::{decode, encode, io};
use crate::types::{Request, Response, TypeConfig};
use futures_util::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StoredMembership};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

const KV: TableDefinition<&str, &str> = TableDefinition::new("sm_kv");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");

const LAST_APPLIED: &str = "last_applied";
const MEMBERSHIP: &str = "membership";
const SNAPSHOT: &str = "snapshot";

type C = TypeConfig;

/// The snapshot payload: the whole state machine.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    kv: BTreeMap<String, String>,
}

/// The current snapshot, kept so a lagging follower can be sent one.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    last_log_id: Option<LogIdOf<C>>,
    last_membership: StoredMembershipOf<C>,
    data: Vec<u8>,
}

/// What an applied batch changed: the keys written, or `None` when a
/// snapshot replaced everything.
pub type Changes = Arc<Option<Vec<String>>>;

/// Cheap to clone: clones share the database, and serve as snapshot builder.
#[derive(Clone)]
pub struct StateMachine {
    db: Arc<Database>,
    changes: tokio::sync::broadcast::Sender<Changes>,
}

impl StateMachine {
    pub(crate) fn new(db: Arc<Database>) -> io::Result<StateMachine> {
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(KV).map_err(io)?;
        txn.open_table(META).map_err(io)?;
        txn.commit().map_err(io)?;
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        Ok(StateMachine { db, changes })
    }

    /// Announces every applied change. A receiver that lags must re-read
    /// everything.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Changes> {
        self.changes.subscribe()
    }

    /// A value of the replicated desired state.
    pub fn get(&self, key: &str) -> io::Result<Option<String>> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(KV).map_err(io)?;
        Ok(table.get(key).map_err(io)?.map(|v| v.value().to_string()))
    }

    /// Every key starting with `prefix`, with its value, in key order.
    pub fn list(&self, prefix: &str) -> io::Result<Vec<(String, String)>> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(KV).map_err(io)?;
        let mut out = Vec::new();
        for item in table.range(prefix..).map_err(io)? {
            let (k, v) = item.map_err(io)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    fn read_state(&self) -> io::Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>)> {
        let txn = self.db.begin_read().map_err(io)?;
        let meta = txn.open_table(META).map_err(io)?;
        let last = match meta.get(LAST_APPLIED).map_err(io)? {
            Some(v) => decode(v.value())?,
            None => None,
        };
        let membership = match meta.get(MEMBERSHIP).map_err(io)? {
            Some(v) => decode(v.value())?,
            None => StoredMembership::default(),
        };
        Ok((last, membership))
    }
}

/// Applies one request to the key/value table; returns the previous value.
fn apply_request(kv: &mut redb::Table<&str, &str>, req: Request) -> io::Result<Option<String>> {
    Ok(match req {
        Request::Put { key, value } => kv
            .insert(key.as_str(), value.as_str())
            .map_err(io)?
            .map(|v| v.value().to_string()),
        Request::Delete { key } => kv
            .remove(key.as_str())
            .map_err(io)?
            .map(|v| v.value().to_string()),
        Request::Patch { key, fields } => {
            let current = kv
                .get(key.as_str())
                .map_err(io)?
                .map(|v| v.value().to_string());
            let Some(text) = current else {
                return Ok(None);
            };
            // A value that is not a JSON object cannot be patched; it is kept
            // as is rather than failing the whole log.
            let Ok(serde_json::Value::Object(mut obj)) =
                serde_json::from_str::<serde_json::Value>(&text)
            else {
                return Ok(Some(text));
            };
            for (k, v) in fields {
                obj.insert(k, v);
            }
            let new = serde_json::Value::Object(obj).to_string();
            kv.insert(key.as_str(), new.as_str()).map_err(io)?;
            Some(text)
        }
        Request::Batch(reqs) => {
            let mut last = None;
            for r in reqs {
                last = apply_request(kv, r)?;
            }
            last
        }
    })
}

impl RaftStateMachine<C> for StateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        self.read_state()
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + OptionalSend,
    {
        let mut batch = Vec::new();
        while let Some(item) = entries.next().await {
            batch.push(item?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut replies = Vec::with_capacity(batch.len());
        let mut touched = Vec::new();
        let mut txn = self.db.begin_write().map_err(io)?;
        txn.set_durability(redb::Durability::None).map_err(io)?;
        {
            let mut kv = txn.open_table(KV).map_err(io)?;
            let mut meta = txn.open_table(META).map_err(io)?;
            let mut last = None;
            for (entry, responder) in batch {
                let log_id = entry.log_id();
                let response = match entry.payload {
                    EntryPayload::Blank => Response::default(),
                    EntryPayload::Normal(req) => {
                        req.keys(&mut touched);
                        Response {
                            previous: apply_request(&mut kv, req)?,
                        }
                    }
                    EntryPayload::Membership(m) => {
                        let stored = StoredMembership::new(Some(log_id), m);
                        meta.insert(MEMBERSHIP, encode(&stored)?.as_slice())
                            .map_err(io)?;
                        Response::default()
                    }
                };
                last = Some(log_id);
                replies.push((responder, response));
            }
            meta.insert(LAST_APPLIED, encode(&last)?.as_slice())
                .map_err(io)?;
        }
        txn.commit().map_err(io)?;
        if !touched.is_empty() {
            let _ = self.changes.send(Arc::new(Some(touched)));
        }
        // The entries are committed, so in a majority's fsynced logs: the
        // answer does not wait for this commit to reach the disk.
        for (responder, response) in replies {
            if let Some(r) = responder {
                r.send(response);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<C>,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let body: SnapshotBody = decode(&snapshot)?;
        let stored = StoredSnapshot {
            last_log_id: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            data: snapshot,
        };
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut kv = txn.open_table(KV).map_err(io)?;
            kv.retain(|_, _| false).map_err(io)?;
            for (k, v) in &body.kv {
                kv.insert(k.as_str(), v.as_str()).map_err(io)?;
            }
            let mut m = txn.open_table(META).map_err(io)?;
            m.insert(LAST_APPLIED, encode(&meta.last_log_id)?.as_slice())
                .map_err(io)?;
            m.insert(MEMBERSHIP, encode(&meta.last_membership)?.as_slice())
                .map_err(io)?;
            m.insert(SNAPSHOT, encode(&stored)?.as_slice())
                .map_err(io)?;
        }
        txn.commit().map_err(io)?;
        let _ = self.changes.send(Arc::new(None));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, Vec<u8>>>, io::Error> {
        let txn = self.db.begin_read().map_err(io)?;
        let meta = txn.open_table(META).map_err(io)?;
        let Some(v) = meta.get(SNAPSHOT).map_err(io)? else {
            return Ok(None);
        };
        let s: StoredSnapshot = decode(v.value())?;
        Ok(Some(openraft::Snapshot {
            meta: openraft::SnapshotMeta {
                last_log_id: s.last_log_id,
                last_membership: s.last_membership,
            },
            snapshot: s.data,
        }))
    }
}

impl RaftSnapshotBuilder<C> for StateMachine {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, Vec<u8>>, io::Error> {
        // A read transaction is a consistent view and does not hold up log
        // writes while the state is serialized; a short write records it.
        let stored = {
            let txn = self.db.begin_read().map_err(io)?;
            let kv_table = txn.open_table(KV).map_err(io)?;
            let mut kv = BTreeMap::new();
            for item in kv_table.iter().map_err(io)? {
                let (k, v) = item.map_err(io)?;
                kv.insert(k.value().to_string(), v.value().to_string());
            }
            let meta = txn.open_table(META).map_err(io)?;
            let last_log_id: Option<LogIdOf<C>> = match meta.get(LAST_APPLIED).map_err(io)? {
                Some(v) => decode(v.value())?,
                None => None,
            };
            let last_membership: StoredMembershipOf<C> = match meta.get(MEMBERSHIP).map_err(io)? {
                Some(v) => decode(v.value())?,
                None => StoredMembership::default(),
            };
            StoredSnapshot {
                last_log_id,
                last_membership,
                data: encode(&SnapshotBody { kv })?,
            }
        };
        let bytes = encode(&stored)?;
        let txn = self.db.begin_write().map_err(io)?;
        txn.open_table(META)
            .map_err(io)?
            .insert(SNAPSHOT, bytes.as_slice())
            .map_err(io)?;
        txn.commit().map_err(io)?;
        Ok(openraft::Snapshot {
            meta: openraft::SnapshotMeta {
                last_log_id: stored.last_log_id,
                last_membership: stored.last_membership,
            },
            snapshot: stored.data,
        })
    }
}
