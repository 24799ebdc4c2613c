//! The replicated key/value store and sessions behind berth's Consul API.
//!
//! Entries and sessions are desired state: each is a JSON value in the
//! Raft state machine, under its own key prefix ([`keys`]). Writes are
//! [`Op`]s, carried in the Raft log and applied by [`apply()`] at their log
//! index, so every replica computes the same `CreateIndex`, `ModifyIndex`
//! and `LockIndex`, and a compare-and-set or a lock acquire decides on the
//! state its entry finds, not on what the proposer saw.
//!
//! Architecture invariant: [`apply()`] depends only on the operation, its
//! log index and the table. Time comes in the operation (`now_ms`, stamped
//! by the leader that proposed it), never from a clock.
//!
//! Architecture invariant: a transaction applies all its writes or none;
//! it is evaluated against an overlay, then committed.

mod apply;
pub mod catalog;
mod catalog_apply;
mod entry;
pub mod keys;
#[cfg(test)]
mod mem_table;
mod op;
mod read;

pub use apply::{apply, Applied};
pub use entry::{Behavior, Entry, Session};
pub use op::{ErrorKind, Op, Outcome, TxnError, TxnOp};
pub use read::{entry, index_of, list, session, sessions, sessions_index, Read};

/// Consul's limit on a value.
pub const MAX_VALUE: usize = 512 * 1024;
/// Consul's limit on the operations of one transaction.
pub const MAX_TXN_OPS: usize = 128;

/// Storage the operations read and write: the state machine's table.
pub trait Table: Read {
    fn put(&mut self, key: &str, value: &str) -> std::io::Result<()>;
    fn delete(&mut self, key: &str) -> std::io::Result<()>;
}
