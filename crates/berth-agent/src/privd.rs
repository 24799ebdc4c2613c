//! Where an object's private dockerd lives, derived from its config.

use crate::home::Home;
use berth_engine::PrivateDaemonSpec;
use berth_model::{EffectiveConfig, ObjectPath};
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
