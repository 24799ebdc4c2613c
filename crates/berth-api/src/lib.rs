//! The daemon's HTTP/JSON API, versioned under `/v1/`, served on the unix
//! socket `$BERTH_HOME/berth.sock` (mode 0600). The CLI is its only client
//! for now; the OpenAPI document is at `/v1/openapi.json`. The routes, the
//! document's paths and the client's calls all come from the endpoint
//! table in `berth-api-types`.
//!
//! Architecture invariant: handlers only translate HTTP to agent calls
//! (and, for `berth kv`, to the KV store's reads and writes of
//! `berth-kv` and `berth-consul`); no business logic lives here.

mod caller;
mod catalog;
mod kv;
mod openapi;
mod remote;
mod routes;
mod secrets;
mod users;

use berth_agent::Agent;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

pub use catalog::IngressSlot;
pub use remote::serve_remote;
pub use routes::{router, router_with};

/// Serves the API on `socket` until `shutdown` resolves. The socket is
/// root's (0600), or, with `group`, also that group's (0660): a peer that
/// is not root is then the berth user of its unix name (SO_PEERCRED).
pub async fn serve(
    agent: Arc<Agent>,
    ingress: IngressSlot,
    socket: &Path,
    group: Option<nix::unistd::Gid>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // Bind under a restrictive umask so the socket is never briefly open to others.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let listener = tokio::net::UnixListener::bind(socket);
    nix::sys::stat::umask(old);
    let listener = listener?;
    if let Some(g) = group {
        nix::unistd::chown(socket, None, Some(g))?;
    }
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(mode))?;
    let app = router_with(agent, ingress).into_make_service_with_connect_info::<caller::PeerCred>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
