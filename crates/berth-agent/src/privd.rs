//! Where an object's private dockerd lives, derived from its config.

use berth_engine::PrivateDaemonSpec;
use berth_model::{EffectiveConfig, ObjectPath};
use berth_store::Home;
use std::path::PathBuf;

/// `Some` when the object asks for a private daemon (`docker_data_dir`).
pub(crate) fn spec(
    home: &Home,
    path: &ObjectPath,
    eff: &EffectiveConfig,
    id: &str,
) -> Option<PrivateDaemonSpec> {
    let data_root = eff
        .default
        .get_str("docker_data_dir")
        .filter(|d| !d.is_empty())?;
    let var = home.object_var(path);
    Some(PrivateDaemonSpec {
        socket: home.docker_socket(path),
        data_root: PathBuf::from(data_root),
        exec_root: home.docker_exec_root(if id.is_empty() { &path.name } else { id }),
        pidfile: var.join("docker.pid"),
        log_file: var.join("dockerd.log"),
        socket_group: eff
            .default
            .get_str("docker_socket_group")
            .filter(|g| !g.is_empty())
            .map(str::to_string),
    })
}

/// The private daemon an object may have left running under an earlier
/// config; only its socket and pidfile matter, to find and stop it.
pub(crate) fn leftover(home: &Home, path: &ObjectPath) -> PrivateDaemonSpec {
    let var = home.object_var(path);
    PrivateDaemonSpec {
        socket: home.docker_socket(path),
        data_root: PathBuf::new(),
        exec_root: PathBuf::new(),
        pidfile: var.join("docker.pid"),
        log_file: var.join("dockerd.log"),
        socket_group: None,
    }
}
