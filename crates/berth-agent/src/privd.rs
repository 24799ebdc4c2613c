//! Where an object's private dockerd lives, derived from its config.

use berth_engine::{BridgePool, PrivateDaemon, PrivateDaemonSpec};
use berth_model::{EffectiveConfig, ObjectPath};
use berth_store::Home;
use std::path::PathBuf;

/// `Some` when the object asks for a private daemon (`docker_data_dir`).
pub(crate) fn spec(
    home: &Home,
    path: &ObjectPath,
    eff: &EffectiveConfig,
    id: &str,
    bridge_pool: BridgePool,
) -> Option<PrivateDaemonSpec> {
    let data_root = eff
        .default
        .get_str("docker_data_dir")
        .filter(|d| !d.is_empty())?;
    let var = home.object_var(path);
    let socket = home.docker_socket(path);
    let link = home.docker_socket_link(path);
    Some(PrivateDaemonSpec {
        socket_link: (socket != link).then_some(link),
        socket,
        data_root: PathBuf::from(data_root),
        exec_root: home.docker_exec_root(if id.is_empty() { &path.name } else { id }),
        pidfile: var.join("docker.pid"),
        log_file: var.join("dockerd.log"),
        socket_group: eff
            .default
            .get_str("docker_socket_group")
            .filter(|g| !g.is_empty())
            .map(str::to_string),
        bridge_pool,
    })
}

/// The private daemon an object may have left running under an earlier
/// config; only its socket and pidfile matter, to find and stop it.
pub(crate) fn leftover(home: &Home, path: &ObjectPath) -> PrivateDaemonSpec {
    let var = home.object_var(path);
    let socket = home.docker_socket(path);
    let link = home.docker_socket_link(path);
    PrivateDaemonSpec {
        socket_link: (socket != link).then_some(link),
        socket,
        data_root: PathBuf::new(),
        exec_root: PathBuf::new(),
        pidfile: var.join("docker.pid"),
        log_file: var.join("dockerd.log"),
        socket_group: None,
        bridge_pool: BridgePool::default(),
    }
}

/// Why a private daemon of `spec` could not bind its sockets, if so: its
/// own, and containerd's under its exec-root.
pub(crate) fn unfit_paths(spec: &PrivateDaemonSpec) -> Option<String> {
    let containerd = spec.exec_root.join("containerd/containerd.sock");
    let long = [spec.socket.clone(), containerd]
        .into_iter()
        .find(|p| p.as_os_str().len() > berth_store::home::MAX_SOCKET_PATH);
    long.map(|p| {
            format!(
                "the private docker daemon's socket {} is over the {} bytes a unix socket path may have; use a shorter BERTH_HOME",
                p.display(),
                berth_store::home::MAX_SOCKET_PATH
            )
        })
}

/// Removes what an object's private daemon left on this node: the daemon
/// itself if it still runs, its bridge, its mounts, and its runtime
/// directories (socket, pidfile, log, exec-root). The data directory is
/// the operator's and stays.
pub(crate) async fn remove_runtime(
    home: &Home,
    path: &ObjectPath,
    spec: Option<PrivateDaemonSpec>,
) {
    let mut spec = spec.unwrap_or_else(|| leftover(home, path));
    if spec.exec_root.as_os_str().is_empty() {
        spec.exec_root = home.docker_exec_root(&path.name);
    }
    let daemon = PrivateDaemon::new(spec.clone());
    if let Err(e) = daemon.stop_and_clean().await {
        tracing::warn!("{path}: stopping its private dockerd: {e}");
    }
    let var = home.object_var(path);
    for dir in [var.as_path(), spec.exec_root.as_path()] {
        berth_engine::unmount_under(dir, true);
        let _ = std::fs::remove_dir_all(dir);
    }
    // The namespace's directory goes with its last object.
    if let Some(ns) = var.parent() {
        let _ = std::fs::remove_dir(ns);
    }
}

/// At start-up: removes what a crash left of objects that no longer exist
/// (`exists` says which do).
pub(crate) async fn sweep(home: &Home, exists: impl Fn(&ObjectPath) -> bool) {
    let root = home.root.join("namespaces");
    for ns in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for obj in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            let (ns, name) = (ns.file_name(), obj.file_name());
            let text = format!("{}/{}", ns.to_string_lossy(), name.to_string_lossy());
            let Ok(path) = text.parse::<ObjectPath>() else {
                continue;
            };
            if !exists(&path) {
                tracing::info!("{path}: removing what a crash left of this deleted object");
                remove_runtime(home, &path, None).await;
            }
        }
    }
}
