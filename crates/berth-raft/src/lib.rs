//! Raft storage for berth's replicated desired state.
//!
//! [`LogStore`] keeps the Raft log, vote and committed id; [`StateMachine`]
//! applies committed entries to a key/value table of desired state and
//! builds and installs snapshots. Both live in one redb file. A log append
//! is acknowledged to openraft only once its redb commit is fsynced; an
//! apply is durable with the next append or snapshot.
//!
//! Architecture invariant: only desired state goes through here; observed
//! status never does.

mod codec;
mod log_store;
mod network;
mod rpc;
mod server;
mod state_machine;
mod types;

pub use log_store::LogStore;
pub use network::{Network, Peer, TlsSlot};
pub use rpc::{CallError, RpcClient};
pub use server::{handle_rpc, serve, RaftNode, MAX_BODY};
pub use state_machine::{Changes, StateMachine};
pub use types::{Request, Response, TypeConfig};

use std::path::Path;
use std::sync::Arc;

/// Opens (or creates) the Raft storage file and returns both halves.
pub fn open(path: &Path) -> std::io::Result<(LogStore, StateMachine)> {
    // A small page cache: desired state is small, and RSS matters on every node.
    let db = Arc::new(
        redb::Database::builder()
            .set_cache_size(4 << 20)
            .create(path)
            .map_err(codec::io)?,
    );
    Ok((LogStore::new(db.clone())?, StateMachine::new(db)?))
}
