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
            // SAFETY: kill(2) with a plain pid and signal has no memory
            // effects; a pid that exited meanwhile yields ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    killed.len()
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
}
