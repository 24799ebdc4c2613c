//! The replicated state machine: desired state as key/value, plus the last
//! applied log id, the last membership and the current snapshot.
//!
//! Applies are committed without an fsync of their own; a snapshot (built
//! or installed) is an fsynced commit, and carries every apply before it,
//! before openraft purges any log entry it covers. A crash can lose the
//! applies since, never the entries: openraft applies them again from the
//! log when the node starts, up to the committed id the log keeps, and
//! `Desired::wait_recovered` waits for the rest before the agent reads.

use crate::codec::{decode, encode, io};
use crate::types::{Request, Response, TypeConfig};
use futures_util::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::type_config::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StoredMembership};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

const KV: TableDefinition<&str, &str> = TableDefinition::new("sm_kv");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("sm_meta");

const LAST_APPLIED: &str = "last_applied";
const MEMBERSHIP: &str = "membership";
const SNAPSHOT: &str = "snapshot";
/// The snapshot's payload, raw: inside the JSON of [`SNAPSHOT`] a byte
/// string is an array of numbers, four times its size.
const SNAPSHOT_DATA: &str = "snapshot_data";

type C = TypeConfig;

/// The snapshot payload: the whole state machine.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    kv: BTreeMap<String, String>,
}

/// The current snapshot, kept so a lagging follower can be sent one. Its
/// `data` is stored apart, under [`SNAPSHOT_DATA`]; files written before
/// that have it here.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    last_log_id: Option<LogIdOf<C>>,
    last_membership: StoredMembershipOf<C>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    data: Vec<u8>,
}

/// Records the snapshot `s` (meta and data) in `meta`.
fn put_snapshot(
    meta: &mut redb::Table<&str, &[u8]>,
    last_log_id: &Option<LogIdOf<C>>,
    last_membership: &StoredMembershipOf<C>,
    data: &[u8],
) -> io::Result<()> {
    let head = StoredSnapshot {
        last_log_id: *last_log_id,
        last_membership: last_membership.clone(),
        data: Vec::new(),
    };
    meta.insert(SNAPSHOT, encode(&head)?.as_slice())
        .map_err(io)?;
    meta.insert(SNAPSHOT_DATA, data).map_err(io)?;
    Ok(())
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

    /// Whether the file at `path` (this state machine's) is mostly free
    /// space.
    pub fn sparse(&self, path: &std::path::Path) -> bool {
        crate::sparse(&self.db, path).unwrap_or(false)
    }

    /// Whether the stored snapshot is much larger than the state is now
    /// (a large value came and went): a new snapshot frees its pages.
    pub fn stale_snapshot(&self) -> bool {
        let sizes = || -> io::Result<(usize, usize)> {
            let txn = self.db.begin_read().map_err(io)?;
            let meta = txn.open_table(META).map_err(io)?;
            let snap = meta
                .get(SNAPSHOT_DATA)
                .map_err(io)?
                .map(|v| v.value().len())
                .unwrap_or(0);
            let mut kv = 0;
            for item in txn.open_table(KV).map_err(io)?.iter().map_err(io)? {
                let (k, v) = item.map_err(io)?;
                kv += k.value().len() + v.value().len();
            }
            Ok((snap, kv))
        };
        sizes().is_ok_and(|(snap, kv)| snap > 2 * kv + (1 << 20))
    }

    /// Writes a compact copy of the state machine to a new file at `dst`,
    /// fsynced, for the caller to rename over the old one. The old handle
    /// keeps serving reads meanwhile: a new file is a new inode, with a
    /// lock of its own. Applies must be stopped (the Raft core shut down).
    pub fn rewrite(&self, dst: &std::path::Path) -> io::Result<()> {
        let _ = std::fs::remove_file(dst);
        let new = Database::create(dst).map_err(io)?;
        let old = self.db.begin_read().map_err(io)?;
        let txn = new.begin_write().map_err(io)?;
        {
            let mut kv = txn.open_table(KV).map_err(io)?;
            for item in old.open_table(KV).map_err(io)?.iter().map_err(io)? {
                let (k, v) = item.map_err(io)?;
                kv.insert(k.value(), v.value()).map_err(io)?;
            }
            let mut meta = txn.open_table(META).map_err(io)?;
            for item in old.open_table(META).map_err(io)?.iter().map_err(io)? {
                let (k, v) = item.map_err(io)?;
                meta.insert(k.value(), v.value()).map_err(io)?;
            }
        }
        txn.commit().map_err(io)
    }

    /// Whether the file still answers reads: after an I/O error, redb
    /// refuses every call on the handle until it is opened again.
    pub fn readable(&self) -> bool {
        self.get("").is_ok()
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

/// Moves a state machine from the log's file, where versions before the
/// split kept it, into its own file: copied with an fsynced commit first,
/// then dropped from the log's file, so a crash in between copies again.
pub(crate) fn move_from_log_file(log_db: &Database, sm_db: &Database) -> io::Result<()> {
    let old = log_db.begin_read().map_err(io)?;
    let (old_kv, old_meta) = match (old.open_table(KV), old.open_table(META)) {
        (Ok(kv), Ok(meta)) => (kv, meta),
        _ => return Ok(()),
    };
    let txn = sm_db.begin_write().map_err(io)?;
    {
        let mut meta = txn.open_table(META).map_err(io)?;
        if meta.is_empty().map_err(io)? {
            for item in old_meta.iter().map_err(io)? {
                let (k, v) = item.map_err(io)?;
                meta.insert(k.value(), v.value()).map_err(io)?;
            }
            let mut kv = txn.open_table(KV).map_err(io)?;
            for item in old_kv.iter().map_err(io)? {
                let (k, v) = item.map_err(io)?;
                kv.insert(k.value(), v.value()).map_err(io)?;
            }
        }
    }
    txn.commit().map_err(io)?;
    drop((old_kv, old_meta, old));
    let txn = log_db.begin_write().map_err(io)?;
    txn.delete_table(KV).map_err(io)?;
    txn.delete_table(META).map_err(io)?;
    txn.commit().map_err(io)
}

/// The state machine's table as the KV operations see it.
struct KvTable<'a, 't>(&'a mut redb::Table<'t, &'static str, &'static str>);

impl berth_kv::Read for KvTable<'_, '_> {
    fn get(&self, key: &str) -> io::Result<Option<String>> {
        Ok(self.0.get(key).map_err(io)?.map(|v| v.value().to_string()))
    }

    fn scan(&self, prefix: &str) -> io::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for item in self.0.range(prefix..).map_err(io)? {
            let (k, v) = item.map_err(io)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }
}

impl berth_kv::Table for KvTable<'_, '_> {
    fn put(&mut self, key: &str, value: &str) -> io::Result<()> {
        self.0.insert(key, value).map_err(io)?;
        Ok(())
    }

    fn delete(&mut self, key: &str) -> io::Result<()> {
        self.0.remove(key).map_err(io)?;
        Ok(())
    }
}

/// `text` with entry `entry` of map `field` set or removed; `None` when
/// `text` is no JSON object or `field` holds no map (kept as is rather
/// than failing the whole log).
fn patch_entry(
    text: &str,
    field: &str,
    entry: String,
    value: Option<serde_json::Value>,
) -> Option<String> {
    let serde_json::Value::Object(mut obj) = serde_json::from_str(text).ok()? else {
        return None;
    };
    let mut map = match obj.remove(field) {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => return None,
    };
    match value {
        Some(v) => {
            map.insert(entry, v);
        }
        None => {
            map.remove(&entry);
        }
    }
    if !map.is_empty() {
        obj.insert(field.to_string(), serde_json::Value::Object(map));
    }
    Some(serde_json::Value::Object(obj).to_string())
}

/// `text` with `fields` set; `None` when `text` is no JSON object.
fn patch_fields(text: &str, fields: serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let serde_json::Value::Object(mut obj) = serde_json::from_str(text).ok()? else {
        return None;
    };
    obj.extend(fields);
    Some(serde_json::Value::Object(obj).to_string())
}

/// The value at `key` rewritten by `edit`, returning the value before;
/// nothing happens when the key is absent, and a value `edit` cannot
/// rewrite (`None`) is kept as is rather than failing the whole log.
fn rewrite(
    kv: &mut redb::Table<&'static str, &'static str>,
    key: &str,
    edit: impl FnOnce(&str) -> Option<String>,
) -> io::Result<Option<String>> {
    let Some(text) = kv.get(key).map_err(io)?.map(|v| v.value().to_string()) else {
        return Ok(None);
    };
    if let Some(new) = edit(&text) {
        kv.insert(key, new.as_str()).map_err(io)?;
    }
    Ok(Some(text))
}

/// Applies one request, the log entry at `index`, to the key/value table;
/// returns what it returns, and appends the keys it wrote to `touched`.
fn apply_request(
    kv: &mut redb::Table<&'static str, &'static str>,
    req: Request,
    index: u64,
    touched: &mut Vec<String>,
) -> io::Result<Response> {
    // A batch's requests each name their own keys as they are applied.
    if !matches!(req, Request::Batch(_)) {
        req.keys(touched);
    }
    let previous = match req {
        Request::Put { key, value } => kv
            .insert(key.as_str(), value.as_str())
            .map_err(io)?
            .map(|v| v.value().to_string()),
        Request::Delete { key } => kv
            .remove(key.as_str())
            .map_err(io)?
            .map(|v| v.value().to_string()),
        Request::Patch { key, fields } => rewrite(kv, &key, |t| patch_fields(t, fields))?,
        Request::PatchEntry {
            key,
            field,
            entry,
            value,
        } => rewrite(kv, &key, |t| patch_entry(t, &field, entry, value))?,
        Request::Batch(reqs) => {
            let mut last = Response::default();
            for r in reqs {
                last = apply_request(kv, r, index, touched)?;
            }
            return Ok(last);
        }
        Request::Kv(op) => {
            let outcome = match berth_kv::apply(&op, index, &mut KvTable(kv)) {
                Ok(applied) => {
                    touched.extend(applied.touched);
                    applied.outcome
                }
                // A record that does not decode fails this operation, not
                // the log; the storage failing is fatal as for any entry.
                Err(e) if e.kind() == io::ErrorKind::InvalidData => berth_kv::Outcome::Txn {
                    results: Vec::new(),
                    errors: vec![berth_kv::TxnError {
                        op_index: 0,
                        what: e.to_string(),
                        kind: berth_kv::ErrorKind::Conflict,
                    }],
                },
                Err(e) => return Err(e),
            };
            return Ok(Response {
                previous: None,
                kv: Some(outcome),
            });
        }
    };
    Ok(Response { previous, kv: None })
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
                        apply_request(&mut kv, req, log_id.index, &mut touched)?
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
            put_snapshot(&mut m, &meta.last_log_id, &meta.last_membership, &snapshot)?;
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
        let mut s: StoredSnapshot = decode(v.value())?;
        if s.data.is_empty() {
            if let Some(d) = meta.get(SNAPSHOT_DATA).map_err(io)? {
                s.data = d.value().to_vec();
            }
        }
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
        let txn = self.db.begin_write().map_err(io)?;
        put_snapshot(
            &mut txn.open_table(META).map_err(io)?,
            &stored.last_log_id,
            &stored.last_membership,
            &stored.data,
        )?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Subscribers act once per touched key (the audit relay logs each
    /// record it sees): a batch names each of its keys once.
    #[test]
    fn a_batch_touches_each_key_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Database::create(dir.path().join("t.redb")).expect("create");
        let txn = db.begin_write().expect("txn");
        let mut touched = Vec::new();
        {
            let mut kv = txn.open_table(KV).expect("kv");
            let put = |k: &str| Request::Put {
                key: k.into(),
                value: "{}".into(),
            };
            let batch = Request::Batch(vec![put("a"), Request::Batch(vec![put("b")])]);
            apply_request(&mut kv, batch, 1, &mut touched).expect("apply");
        }
        assert_eq!(touched, ["a", "b"]);
    }

    #[test]
    fn a_map_entry_is_set_and_removed_and_the_empty_map_goes() {
        let rec = r#"{"path":"a/b","config":"x"}"#;
        let v = Some(serde_json::json!({"why": "404"}));
        let one = patch_entry(rec, "marks", "n1".into(), v.clone()).expect("set");
        let two = patch_entry(&one, "marks", "n2".into(), v).expect("set");
        let back: serde_json::Value = serde_json::from_str(&two).expect("json");
        assert_eq!(back["marks"]["n1"]["why"], "404");
        assert_eq!(back["marks"]["n2"]["why"], "404");
        assert_eq!(back["config"], "x");
        let one_left = patch_entry(&two, "marks", "n1".into(), None).expect("rm");
        let none_left = patch_entry(&one_left, "marks", "n2".into(), None).expect("rm");
        let back: serde_json::Value = serde_json::from_str(&none_left).expect("json");
        assert_eq!(back, serde_json::json!({"path": "a/b", "config": "x"}));
        assert_eq!(patch_entry(rec, "config", "n1".into(), None), None);
        assert_eq!(patch_entry("[1]", "marks", "n1".into(), None), None);
    }

    #[test]
    fn a_state_machine_kept_in_the_log_file_moves_to_its_own() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("raft.redb");
        // The layout before the split: the state machine's tables in the
        // log's file.
        {
            let db = Database::create(&path).expect("create");
            let txn = db.begin_write().expect("txn");
            {
                let mut kv = txn.open_table(KV).expect("kv");
                kv.insert("obj/a/b", "{\"config\":\"x\"}").expect("insert");
                let mut meta = txn.open_table(META).expect("meta");
                meta.insert(LAST_APPLIED, b"null".as_slice()).expect("meta");
            }
            txn.commit().expect("commit");
        }
        for round in 0..2 {
            let (_log, sm) = crate::open(&path).expect("open");
            assert_eq!(
                sm.get("obj/a/b").expect("get").as_deref(),
                Some("{\"config\":\"x\"}"),
                "round {round}"
            );
            drop((_log, sm));
            // The old file is gone once both halves moved out of it.
            assert!(!path.exists(), "round {round}: the old log file is kept");
            assert!(crate::log_dir(&path).is_dir(), "round {round}");
        }
    }
}
