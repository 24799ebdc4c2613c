//! Finding and killing a container's processes without Docker: every
//! process whose `/proc/PID/cgroup` names the container's id. That holds for
//! cgroup v1 and v2 and for the cgroupfs and systemd drivers alike
//! (`/docker/<id>`, `/system.slice/docker-<id>.scope`), and for containers
//! of private dockerds too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

/// Processes in the cgroups of `ids`: pid -> the id it belongs to.
pub fn members(proc_root: &Path, ids: &BTreeSet<String>) -> BTreeMap<i32, String> {
    let mut found = BTreeMap::new();
    if ids.is_empty() {
        return found;
    }
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cg) = std::fs::read_to_string(e.path().join("cgroup")) else {
            continue;
        };
        if let Some(id) = owner(&cg, ids) {
            found.insert(pid, id.to_string());
        }
    }
    found
}

/// The guarded id a `/proc/PID/cgroup` text names, if any.
fn owner<'a>(cgroup: &str, ids: &'a BTreeSet<String>) -> Option<&'a str> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        ids.iter()
            .find(|id| path.contains(id.as_str()))
            .map(String::as_str)
    })
}

/// SIGKILLs every process of `ids`, scanning again until a scan finds no
/// process it has not signalled yet (a process may fork between a scan and
/// the kill). Returns how many processes were signalled.
pub fn kill_all(proc_root: &Path, ids: &BTreeSet<String>) -> usize {
    const ROUNDS: usize = 50;
    let mut killed = BTreeSet::new();
    for _ in 0..ROUNDS {
        let fresh: Vec<i32> = members(proc_root, ids)
            .into_keys()
            .filter(|p| !killed.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for pid in fresh {
            kill_member(proc_root, pid, ids);
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    killed.len()
}

/// SIGKILLs `pid` if it is still in the cgroup of one of `ids`. The pid
/// is pinned first with a pidfd, then checked, then signalled through the
/// pidfd: a process that exited after the scan, its pid reused by an
/// unrelated one, is never signalled.
fn kill_member(proc_root: &Path, pid: i32, ids: &BTreeSet<String>) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: pidfd_open(2) takes a pid and flags and touches no memory of
    // ours; it returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if raw < 0 {
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            // A kernel before 5.3: no pinning, so the reuse race stays open.
            // SAFETY: kill(2) with a plain pid and signal has no memory effects.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        return;
    }
    // SAFETY: `raw` is a descriptor pidfd_open just returned, owned by no one else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
    let member = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))
        .map(|cg| owner(&cg, ids).is_some())
        .unwrap_or(false);
    if member {
        // SAFETY: pidfd_send_signal(2) with a valid pidfd, a signal, no
        // siginfo and no flags touches no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matches_cgroup_v1_v2_and_systemd_paths() {
        let id = "a".repeat(64);
        let set = ids(&[&id]);
        let v1 = format!("12:pids:/docker/{id}\n1:name=systemd:/docker/{id}\n");
        let v2 = format!("0::/system.slice/docker-{id}.scope\n");
        let other = "0::/user.slice/session-1.scope\n9:memory:/process_api/xyz\n";
        assert_eq!(owner(&v1, &set), Some(id.as_str()));
        assert_eq!(owner(&v2, &set), Some(id.as_str()));
        assert_eq!(owner(other, &set), None);
    }

    #[test]
    fn finds_processes_in_a_fake_proc_tree() {
        let dir = tempfile::tempdir().unwrap();
        let id = "b".repeat(64);
        for (pid, cg) in [
            ("101", format!("0::/docker/{id}\n")),
            ("102", "0::/init.scope\n".to_string()),
            ("self", format!("0::/docker/{id}\n")),
        ] {
            std::fs::create_dir_all(dir.path().join(pid)).unwrap();
            std::fs::write(dir.path().join(pid).join("cgroup"), cg).unwrap();
        }
        let found = members(dir.path(), &ids(&[&id]));
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), vec![101]);
    }

    #[test]
    fn only_a_process_still_in_a_guarded_cgroup_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let id = "c".repeat(64);
        let spawn = || {
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .expect("spawn sleep")
        };
        let (mut outside, mut inside) = (spawn(), spawn());
        for (child, cg) in [
            (&outside, "0::/user.slice/session-1.scope\n".to_string()),
            (&inside, format!("0::/docker/{id}\n")),
        ] {
            let d = dir.path().join(child.id().to_string());
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cgroup"), cg).unwrap();
        }
        kill_member(dir.path(), outside.id() as i32, &ids(&[&id]));
        kill_member(dir.path(), inside.id() as i32, &ids(&[&id]));
        let status = inside.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(
            outside.try_wait().expect("try_wait").is_none(),
            "a process outside the cgroup was killed"
        );
        let _ = outside.kill();
        let _ = outside.wait();
    }
}
