//! Cluster decisions, as pure functions of their inputs so they can be
//! tested exhaustively: where instances go ([`placement`]), when a node
//! counts as down and when its failover services may restart elsewhere
//! ([`liveness`]), what the orchestrator places where ([`orchestrate`]),
//! and what a node does with its instance ([`duty`]). The control loops that feed them live with the cluster
//! wiring; see `design/failover.md` for the timing.
//!
//! Architecture invariant: this crate does no I/O and reads no clock; time
//! is always an argument.

pub mod duty;
pub mod liveness;
pub mod orchestrate;
pub mod placement;
