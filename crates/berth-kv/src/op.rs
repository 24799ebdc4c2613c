//! The writes, as the Raft log carries them, and what applying one gives.

use crate::{Entry, Session};
use serde::{Deserialize, Serialize};

/// One operation of a transaction (`PUT /v1/txn`); single-key writes of
/// the KV endpoint are transactions of one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verb")]
pub enum TxnOp {
    Set {
        key: String,
        value: Option<Vec<u8>>,
        flags: u64,
    },
    /// `index` 0: only if the key does not exist.
    Cas {
        key: String,
        value: Option<Vec<u8>>,
        flags: u64,
        index: u64,
    },
    Lock {
        key: String,
        value: Option<Vec<u8>>,
        flags: u64,
        session: String,
    },
    Unlock {
        key: String,
        value: Option<Vec<u8>>,
        flags: u64,
        session: String,
    },
    Get {
        key: String,
    },
    GetTree {
        key: String,
    },
    CheckIndex {
        key: String,
        index: u64,
    },
    CheckSession {
        key: String,
        session: String,
    },
    CheckNotExists {
        key: String,
    },
    Delete {
        key: String,
    },
    DeleteTree {
        key: String,
    },
    DeleteCas {
        key: String,
        index: u64,
    },
}

impl TxnOp {
    pub fn key(&self) -> &str {
        match self {
            TxnOp::Set { key, .. }
            | TxnOp::Cas { key, .. }
            | TxnOp::Lock { key, .. }
            | TxnOp::Unlock { key, .. }
            | TxnOp::Get { key }
            | TxnOp::GetTree { key }
            | TxnOp::CheckIndex { key, .. }
            | TxnOp::CheckSession { key, .. }
            | TxnOp::CheckNotExists { key }
            | TxnOp::Delete { key }
            | TxnOp::DeleteTree { key }
            | TxnOp::DeleteCas { key, .. } => key,
        }
    }

    /// Whether the operation writes (a read-only transaction needs no log
    /// entry).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            TxnOp::Get { .. }
                | TxnOp::GetTree { .. }
                | TxnOp::CheckIndex { .. }
                | TxnOp::CheckSession { .. }
                | TxnOp::CheckNotExists { .. }
        )
    }
}

/// A write to the KV store or its sessions. `now_ms` is the proposing
/// leader's wall clock, so that lock-delays apply alike on every replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Txn {
        ops: Vec<TxnOp>,
        now_ms: u64,
    },
    /// The id is chosen by the proposer; the indexes are set on apply.
    SessionCreate {
        session: Session,
    },
    /// Destroyed by a user, or invalidated (TTL, node down): its keys are
    /// released or deleted, and locked for its lock-delay.
    SessionDestroy {
        id: String,
        now_ms: u64,
    },
    SessionRenew {
        id: String,
        now_ms: u64,
    },
    /// Catalog writes, in order, in one entry.
    Catalog(Vec<crate::catalog::CatalogOp>),
}

/// Why an operation of a transaction failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// A check or a compare-and-set did not hold: the answer is `false`
    /// for a single write, a 409 for a transaction.
    Conflict,
    /// A lock with a session that does not exist: a 500 in Consul.
    InvalidSession,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnError {
    pub op_index: usize,
    pub what: String,
    pub kind: ErrorKind,
}

/// What an applied [`Op`] returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A transaction: the entries its operations return (for reads, and
    /// writes other than deletes), or the errors that rolled it back.
    Txn {
        results: Vec<Entry>,
        errors: Vec<TxnError>,
    },
    /// A session operation: the session, or `None` if it does not exist.
    Session(Option<Session>),
    Catalog,
}
