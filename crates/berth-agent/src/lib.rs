//! The node agent: owns the object configs, runs one instance monitor
//! (imon) per object that reconciles Docker against desired state, and
//! publishes what it finds on the status bus. Desired state is read from,
//! and changed through, the cluster (`berth-cluster`), which reaches back
//! into the agent only through `LocalNode`.
//!
//! Architecture invariant: the agent never talks to Docker except through
//! `berth-engine`, and never writes observed status to the store.

mod agent;
mod config_file;
mod create_origin;
mod engines;
mod error;
mod facade;
mod files;
mod health;
mod imon;
mod local_node;
mod objects;
mod privd;

pub use agent::{Agent, AgentOptions, ContainerDns};
pub use berth_manager::liveness::Timing;
pub use berth_store::{Home, StoreHealth};
pub use error::AgentError;
pub use health::{DockerHealth, NodeHealth};

/// Runs fsyncing work (config files, store transactions) without stalling
/// the runtime's other tasks on this worker thread.
pub(crate) fn durable<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}
