//! The layout of `$BERTH_HOME`, and atomic file writes.

use berth_model::ObjectPath;
use std::path::{Path, PathBuf};

/// The layout of `$BERTH_HOME`.
#[derive(Clone, Debug)]
pub struct Home {
    pub root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("berth.sock")
    }
    pub fn store(&self) -> PathBuf {
        self.root.join("berth.redb")
    }
    /// The Raft storage of one cluster membership (`local` standalone).
    pub fn raft_file(&self, generation: &str) -> PathBuf {
        crate::raft_file(&self.root, generation)
    }
    /// The Raft file generation of a standalone node (and of the node
    /// that initialized its cluster from there): `local`, or what a node
    /// that left a cluster started afresh with (`cluster/standalone`).
    pub fn standalone_generation(&self) -> String {
        std::fs::read_to_string(self.standalone_marker())
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .unwrap_or_else(|| "local".to_string())
    }
    pub fn standalone_marker(&self) -> PathBuf {
        self.root.join("cluster").join("standalone")
    }
    /// This node's cluster membership: certificate, key, Raft id.
    pub fn identity_file(&self) -> PathBuf {
        self.root.join("cluster").join("identity.json")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.root.join("berth.pid")
    }
    pub fn log_file(&self) -> PathBuf {
        self.root.join("berth.log")
    }
    /// The object's config file: `etc/namespaces/<ns>/<kind>/<name>.conf`.
    /// Removes the staging files a crashed daemon left beside the config
    /// files (`.<name>.tmp.<pid>.<n>`). Only one daemon serves a home, so
    /// at start-up every one of them is stale.
    pub fn remove_stale_staging(&self) {
        let root = self.root.join("etc/namespaces");
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                match e.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(e.path()),
                    Ok(t) if t.is_file() && name.starts_with('.') && name.contains(".tmp.") => {
                        let _ = std::fs::remove_file(e.path());
                    }
                    _ => {}
                }
            }
        }
    }

    pub fn config_file(&self, p: &ObjectPath) -> PathBuf {
        self.root
            .join("etc/namespaces")
            .join(&p.namespace)
            .join(p.kind.as_str())
            .join(format!("{}.conf", p.name))
    }
    /// Runtime files of the object: private docker socket, pidfile, logs.
    pub fn object_var(&self, p: &ObjectPath) -> PathBuf {
        self.root
            .join("namespaces")
            .join(&p.namespace)
            .join(&p.name)
    }
    /// Where the object's private docker socket is shown:
    /// `namespaces/<ns>/<name>/docker.sock`.
    pub fn docker_socket_link(&self, p: &ObjectPath) -> PathBuf {
        self.object_var(p).join("docker.sock")
    }

    /// The object's private docker socket: the readable path when it fits
    /// a unix socket's address, else a short hashed one (`s/<hash>.sock`),
    /// with a symlink at the readable path. Valid namespace and name can be
    /// 63 characters each, too long together for the 108 bytes of
    /// `sun_path`.
    pub fn docker_socket(&self, p: &ObjectPath) -> PathBuf {
        let readable = self.docker_socket_link(p);
        if readable.as_os_str().len() <= MAX_SOCKET_PATH {
            return readable;
        }
        let h = berth_model::fnv1a64(readable.as_os_str().as_encoded_bytes());
        self.root.join("s").join(format!("{h:016x}.sock"))
    }
    pub fn docker_exec_root(&self, id: &str) -> PathBuf {
        self.root.join("dockerx").join(id)
    }
}

/// The longest path a unix socket can be bound at (`sun_path` is 108
/// bytes, with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Writes `data` to `path` atomically: temporary file, fsync, rename, fsync dir.
pub fn atomic_write(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = stage(path, data)?;
    commit(&tmp, path)
}

/// [`atomic_write`] of a secret: the file is mode 0600 from its creation.
pub fn atomic_write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = stage_with_mode(path, data, 0o600)?;
    commit(&tmp, path)
}

/// Writes `data` beside `path` in a fsynced temporary file, returned.
pub fn stage(path: &Path, data: &[u8]) -> std::io::Result<PathBuf> {
    stage_with_mode(path, data, 0o644)
}

fn stage_with_mode(path: &Path, data: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    use std::io::Write;
    let (mut f, tmp) = staging_file(path, mode)?;
    match f.write_all(data).and_then(|()| f.sync_all()) {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// A new, empty temporary file beside `path` (hidden, unique to this
/// process and call), for staging `path`'s next content.
pub fn staging_file(path: &Path, mode: u32) -> std::io::Result<(std::fs::File, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    Ok((f, tmp))
}

/// Renames a staged file over `path` and fsyncs the directory.
pub fn commit(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, path)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}
