//! Durable desired state and the event log.
//!
//! [`Desired`] is the single interface through which desired state is read
//! and written: a Raft state machine, one member on a standalone node.
//! [`Store`] is this node's own redb file: the event log, and the objects
//! table earlier versions kept desired state in (migrated into Raft at
//! start-up). Every write is a committed, fsynced redb transaction, so a
//! crash leaves either the old or the new record, never a torn one.

mod desired;
mod health;
pub mod home;
mod maintenance;
mod record;

pub use berth_raft::{remove as remove_raft_file, Changes, Request, Response, TlsSlot};
pub use desired::{
    next_change, obj_key, patch_json, put_json, raft_file, Desired, Membership, ProposeError,
    ELECTION_QUIET, FIRST_ID, OBJ_PREFIX, RECOVERY_WAIT,
};
pub use health::StoreHealth;
pub use home::Home;
pub use record::{delete_object, ObjectPatch, ObjectRecord, UNHEALTHY_ON};

use berth_model::event::Event;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// path → hash of the config text berth last wrote to (or accepted from)
/// the object's file on this node.
const MIRROR: TableDefinition<&str, u64> = TableDefinition::new("mirror");

/// How many events the log keeps; older ones are trimmed on append.
pub const EVENT_RETENTION: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database: {0}")]
    Db(String),
    /// Desired state cannot be written for want of storage; the message
    /// names the file.
    #[error("{0}")]
    Degraded(String),
    #[error("store record {key}: {source}")]
    Decode {
        key: String,
        source: serde_json::Error,
    },
    #[error("store encode: {0}")]
    Encode(#[from] serde_json::Error),
}

macro_rules! db_err {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.to_string()) }
        }
    )*};
}
db_err!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store file.
    pub fn open(path: &Path) -> Result<Store> {
        // redb's default page cache is 1 GiB: an event log written hard
        // (bulk edits, many containers) would keep growing the daemon's
        // RSS up to it. A few MiB hold the pages that are read.
        let db = Database::builder().set_cache_size(4 << 20).create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(OBJECTS)?;
        txn.open_table(EVENTS)?;
        txn.open_table(MIRROR)?;
        txn.commit()?;
        Ok(Store { db })
    }

    /// The hash of the config text this node last put in (or accepted
    /// from) the object's file. A file whose hash differs was edited by hand.
    pub fn mirror_get(&self, path: &str) -> Result<Option<u64>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(MIRROR)?;
        Ok(table.get(path)?.map(|v| v.value()))
    }

    /// Records the file's hash; `None` forgets it.
    pub fn mirror_set(&self, path: &str, hash: Option<u64>) -> Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(MIRROR)?;
            match hash {
                Some(h) => {
                    table.insert(path, h)?;
                }
                None => {
                    table.remove(path)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub fn get(&self, path: &str) -> Result<Option<ObjectRecord>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OBJECTS)?;
        match table.get(path)? {
            Some(v) => Ok(Some(decode(path, v.value())?)),
            None => Ok(None),
        }
    }

    /// Every record. One that does not decode is skipped and reported in
    /// the second list, so a single bad record cannot block the rest.
    pub fn list(&self) -> Result<Vec<ObjectRecord>> {
        Ok(self.list_checked()?.0)
    }

    pub fn list_checked(&self) -> Result<(Vec<ObjectRecord>, Vec<StoreError>)> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OBJECTS)?;
        let mut out = Vec::new();
        let mut bad = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            match decode(k.value(), v.value()) {
                Ok(r) => out.push(r),
                Err(e) => bad.push(e),
            }
        }
        Ok((out, bad))
    }

    pub fn put(&self, rec: &ObjectRecord) -> Result<()> {
        let bytes = serde_json::to_vec(rec)?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(OBJECTS)?;
            table.insert(rec.path.as_str(), bytes.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    pub fn delete(&self, path: &str) -> Result<bool> {
        let txn = self.db.begin_write()?;
        let existed = {
            let mut table = txn.open_table(OBJECTS)?;
            let removed = table.remove(path)?;
            removed.is_some()
        };
        txn.commit()?;
        Ok(existed)
    }

    /// Appends events, assigning their sequence numbers, and returns them.
    /// With `durable` false the batch reaches the disk with the next
    /// durable commit (a later batch, or [`Store::flush`]).
    pub fn append_events(&self, events: Vec<Event>, durable: bool) -> Result<Vec<Event>> {
        let mut txn = self.db.begin_write()?;
        if !durable {
            txn.set_durability(redb::Durability::None)?;
        }
        let mut out = Vec::with_capacity(events.len());
        {
            let mut table = txn.open_table(EVENTS)?;
            let mut next = match table.last()? {
                Some((k, _)) => k.value() + 1,
                None => 1,
            };
            for mut ev in events {
                ev.seq = next;
                let bytes = serde_json::to_vec(&ev)?;
                table.insert(next, bytes.as_slice())?;
                out.push(ev);
                next += 1;
            }
            if table.len()? > EVENT_RETENTION {
                let cut = next.saturating_sub(EVENT_RETENTION);
                table.retain_in(..cut, |_, _| false)?;
            }
        }
        txn.commit()?;
        Ok(out)
    }

    /// Makes every earlier non-durable commit durable.
    pub fn flush(&self) -> Result<()> {
        self.db.begin_write()?.commit()?;
        Ok(())
    }

    /// Events with a sequence number above `after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<Event>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut out = Vec::new();
        for item in table.range(after.saturating_add(1)..)? {
            let (k, v) = item?;
            let ev: Event = serde_json::from_slice(v.value()).map_err(|e| StoreError::Decode {
                key: k.value().to_string(),
                source: e,
            })?;
            out.push(ev);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The last `n` events, oldest first.
    pub fn last_events(&self, n: usize) -> Result<Vec<Event>> {
        let last = {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(EVENTS)?;
            let last = table.last()?.map(|(k, _)| k.value()).unwrap_or(0);
            last
        };
        self.events_after(last.saturating_sub(n as u64), n)
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<ObjectRecord> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode {
        key: key.to_string(),
        source: e,
    })
}

#[cfg(test)]
mod tests;
