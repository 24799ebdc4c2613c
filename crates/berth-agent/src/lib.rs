//! The node agent: owns the object configs and the desired state, runs one
//! instance monitor (imon) per object that reconciles Docker against it, and
//! publishes events.
//!
//! Architecture invariant: the agent never talks to Docker except through
//! `berth-engine`, and never writes observed status to the store.

mod agent;
pub mod cluster;
mod config_file;
mod error;
mod events;
mod home;
mod imon;
mod objects;
mod privd;
pub mod watchdog;

pub use agent::{ActionKind, ActionOutcome, Agent, AgentOptions};
pub use berth_manager::liveness::Timing;
pub use error::AgentError;
pub use events::EventBus;
pub use home::Home;
pub use objects::{ObjectInfo, SetOutcome};

/// Runs fsyncing work (config files, store transactions) without stalling
/// the runtime's other tasks on this worker thread.
pub(crate) fn durable<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Current time as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
