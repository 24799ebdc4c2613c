use std::sync::Arc;

/// One mutating call made to a Docker Engine.
#[derive(Clone, Debug)]
pub struct DockerCall {
    /// The equivalent CLI command, e.g. `docker -H unix:///x.sock start 1f2e...`.
    pub command: String,
    /// `Some(error)` when the call failed.
    pub error: Option<String>,
}

/// Receives every mutating Docker call, to be logged and turned into events.
pub type CallSink = Arc<dyn Fn(DockerCall) + Send + Sync>;
