//! The Docker driver: every call berth makes to a Docker Engine goes through
//! this crate, and every mutating call is reported to a [`CallSink`] spelled
//! as the equivalent `docker` command, so operators can replay it by hand.
//!
//! Architecture invariant: no other berth crate depends on bollard.

mod calls;
mod client;
mod discovery;
mod dockerd;
mod error;

pub use calls::{CallSink, DockerCall};
pub use client::{
    split_image, ContainerSpec, ContainerState, Engine, EngineEvent, ManagedContainer, MountSpec,
    PortSpec, LABEL_PATH,
};
pub use discovery::{ContainerEvent, ContainerFacts, PortFact};
pub use dockerd::{
    bridge_name, ping_socket, process_alive, unmount_under, BridgePool, PrivateDaemon,
    PrivateDaemonSpec,
};
pub use error::EngineError;

/// Default socket of the host's Docker Engine.
pub const HOST_DOCKER_SOCKET: &str = "/var/run/docker.sock";
