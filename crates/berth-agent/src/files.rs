//! Secret and config files delivered to a container: written on a tmpfs
//! of the host (`$BERTH_HOME/run/files/<container>`, mode 0700, nodev,
//! nosuid, noexec), one per container, each file bind-mounted read-only
//! at its path in the container. Nothing is written to a disk; the tmpfs
//! is unmounted when the instance stops. A host mount outlives an agent
//! restart, so a running container keeps its files.

use crate::agent::Agent;
use berth_drivers::container_docker::files::FileSource;
use berth_drivers::container_docker::ContainerResource;
use berth_engine::MountSpec;
use berth_model::ObjectPath;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub(crate) fn dir(agent: &Agent, container: &str) -> PathBuf {
    agent.home().root.join("run/files").join(container)
}

fn is_mountpoint(dir: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = dir.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m.replace("\\040", " ") == want)
}

/// Mounts the container's tmpfs, sized for `bytes` of values, or resizes
/// the one there (a rewrite in place may need more room than the last).
fn mount_tmpfs(dir: &Path, bytes: usize) -> Result<(), String> {
    use nix::mount::MsFlags;
    let want = (bytes + (1 << 20)).next_multiple_of(4096);
    let size = format!("size={want},mode=0700");
    let flags = MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    if is_mountpoint(dir) {
        let have = nix::sys::statvfs::statvfs(dir)
            .map(|v| v.blocks() as usize * v.fragment_size() as usize)
            .unwrap_or(0);
        if have >= want {
            return Ok(());
        }
        return nix::mount::mount(
            None::<&str>,
            dir,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            Some(size.as_str()),
        )
        .map_err(|e| format!("resizing the tmpfs on {}: {e}", dir.display()));
    }
    let err = |e: std::io::Error| format!("{}: {e}", dir.display());
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    std::fs::create_dir_all(dir).map_err(err)?;
    nix::mount::mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        flags,
        Some(size.as_str()),
    )
    .map_err(|e| format!("mounting a tmpfs on {}: {e}", dir.display()))
}

/// `uid[:gid]` of `user` when numeric: who owns the files. A user name
/// means nothing on the host: the files are then readable by all in the
/// container (the tmpfs itself is root's only on the host).
fn owner(user: Option<&str>) -> Option<(u32, u32)> {
    let u = user?;
    let (uid, gid) = u.split_once(':').unwrap_or((u, u));
    Some((uid.parse().ok()?, gid.parse().ok()?))
}

/// What a container takes from `sec` and `cfg` objects, staged: mounts for
/// its files, variables for its environment, and the version of each value
/// (`sec/<object>/<key>` → version) for its status.
#[derive(Default)]
pub(crate) struct Staged {
    pub mounts: Vec<MountSpec>,
    pub env: Vec<String>,
    pub versions: BTreeMap<String, u64>,
}

fn value_name(source: FileSource, object: &str, key: &str) -> String {
    format!("{}/{object}/{key}", source.kind().as_str())
}

async fn fetch(
    agent: &Agent,
    path: &ObjectPath,
    source: FileSource,
    object: &str,
    key: &str,
) -> Result<(u64, Vec<u8>), String> {
    let from =
        ObjectPath::new(&path.namespace, source.kind(), object).map_err(|e| e.to_string())?;
    agent
        .cluster
        .deliver(path, &from, key)
        .await
        .map_err(|e| format!("{from}/{key}: {e}"))
}

/// Fetches the container's values, writes its files on its tmpfs (in
/// place, so a running container's bind mounts see a new version) and
/// returns what to create it with.
pub(crate) async fn stage(
    agent: &Agent,
    path: &ObjectPath,
    c: &ContainerResource,
) -> Result<Staged, String> {
    let mut staged = Staged::default();
    if c.files.is_empty() && c.env_values.is_empty() {
        return Ok(staged);
    }
    let mut values = Vec::new();
    for f in &c.files {
        let (version, value) = fetch(agent, path, f.source, &f.object, &f.key).await?;
        staged
            .versions
            .insert(value_name(f.source, &f.object, &f.key), version);
        values.push((f, value));
    }
    for e in &c.env_values {
        let (version, value) = fetch(agent, path, e.source, &e.object, &e.key).await?;
        let text = String::from_utf8(value).map_err(|_| {
            format!(
                "{}/{}: not UTF-8 text, so it cannot be an environment variable",
                e.object, e.key
            )
        })?;
        staged.env.push(format!("{}={text}", e.var));
        staged
            .versions
            .insert(value_name(e.source, &e.object, &e.key), version);
    }
    let dir = dir(agent, &c.spec.name);
    let total = values.iter().map(|(_, v)| v.len()).sum();
    mount_tmpfs(&dir, total)?;
    let own = owner(c.spec.user.as_deref());
    for (f, value) in values {
        let file = dir.join(format!(
            "{:016x}",
            berth_model::hash::fnv1a64(f.target.as_bytes())
        ));
        write_in_place(&file, &value, own).map_err(|e| format!("{}: {e}", file.display()))?;
        staged.mounts.push(MountSpec {
            source: file.to_string_lossy().into_owned(),
            target: f.target.clone(),
            read_only: true,
        });
    }
    let record = serde_json::to_vec(&staged.versions).unwrap_or_default();
    write_in_place(&dir.join(VERSIONS), &record, None)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(staged)
}

/// Where a container's tmpfs records the versions it holds, so that an
/// agent restart still knows them.
const VERSIONS: &str = ".versions";

/// The versions a running container's files hold, as its tmpfs records them.
pub(crate) fn held_versions(agent: &Agent, container: &str) -> Option<BTreeMap<String, u64>> {
    let bytes = std::fs::read(dir(agent, container).join(VERSIONS)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn write_in_place(file: &Path, value: &[u8], own: Option<(u32, u32)>) -> std::io::Result<()> {
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if own.is_some() { 0o400 } else { 0o444 })
        .open(file)?;
    out.write_all(value)?;
    if let Some((uid, gid)) = own {
        std::os::unix::fs::chown(file, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Unmounts a container's tmpfs, once its instance stopped.
pub(crate) fn release(agent: &Agent, container: &str) {
    let dir = dir(agent, container);
    if is_mountpoint(&dir) {
        if let Err(e) = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH) {
            tracing::warn!("unmounting {}: {e}", dir.display());
            return;
        }
    }
    let _ = std::fs::remove_dir(&dir);
}
