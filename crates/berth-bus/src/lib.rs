//! The daemon's in-process buses, as OpenSVC om3's daemon has one:
//! - [`EventBus`]: what happened (actions, Docker calls, cluster changes),
//!   persisted in the store's event log and fed live to `berth events`;
//! - [`StatusBus`]: what is, as typed changes (an instance's status on this
//!   node, the node's fence) with a snapshot for late or lagging readers.
//!
//! Loops talk through these and the store, never through a shared object.
//!
//! Architecture invariant: both buses are bounded and a publisher never
//! waits for a subscriber; a subscriber that falls behind is told so and
//! re-reads a snapshot (the status snapshot, or the event log).

mod events;
mod status;

pub use events::EventBus;
pub use status::{StatusBus, StatusChange, StatusSubscription, Update};

/// Current time as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
