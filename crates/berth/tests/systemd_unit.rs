//! The shipped systemd unit: valid, `Type=notify` with a watchdog, and its
//! stop never kills a private dockerd or a container. The machine has no
//! systemd as PID 1, so the test plays systemd: the daemon runs in a
//! cgroup of systemd's own hierarchy, hears on a `$NOTIFY_SOCKET`, and is
//! stopped the way the unit's `KillMode` says systemd stops it.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn unit() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/berth.service");
    std::fs::read_to_string(root).expect("contrib/berth.service")
}

fn unit_value(unit: &str, key: &str) -> Option<String> {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim().to_string())
}

#[test]
fn the_unit_is_valid_for_systemd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let man = dir.path().join("man/man1");
    let out = std::process::Command::new(BIN)
        .arg("manpages")
        .arg(&man)
        .output()
        .expect("manpages");
    assert!(out.status.success());
    assert!(man.join("berth.1").exists() && man.join("berth-daemon.1").exists());
    let file = dir.path().join("berth.service");
    std::fs::write(&file, unit().replace("/usr/local/bin/berth", BIN)).expect("write");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .env("MANPATH", dir.path().join("man"))
        .output()
        .expect("systemd-analyze");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let u = unit();
    assert_eq!(unit_value(&u, "Type").as_deref(), Some("notify"));
    assert!(unit_value(&u, "WatchdogSec").is_some());
}

/// A cgroup of systemd's hierarchy, as a service gets; removed on drop.
struct Cgroup(PathBuf);

impl Cgroup {
    /// In systemd's own hierarchy where cgroup v1 has one, else in the
    /// unified (v2) hierarchy, as systemd would use.
    fn new() -> Cgroup {
        let root = [
            "/sys/fs/cgroup/systemd",
            "/sys/fs/cgroup/unified",
            "/sys/fs/cgroup",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|r| r.join("cgroup.procs").exists())
        .expect("a cgroup hierarchy");
        let p = root.join(format!("{}.service", unique("berth-test-")));
        std::fs::create_dir(&p).expect("cgroup");
        Cgroup(p)
    }
    fn add(&self, pid: u32) {
        std::fs::write(self.0.join("cgroup.procs"), pid.to_string()).expect("join cgroup");
    }
    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.0.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let parent = self.0.parent().map(|p| p.join("cgroup.procs"));
        for pid in self.pids() {
            if let Some(parent) = &parent {
                let _ = std::fs::write(parent, pid.to_string());
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Waits for a notification whose text contains `want`.
fn heard(sock: &UnixDatagram, want: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {want:?} from the daemon");
        sock.set_read_timeout(Some(left)).expect("timeout");
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.contains(want) {
                return msg;
            }
        }
    }
}

/// What `systemctl stop` does to the unit's processes, by its KillMode.
fn systemctl_stop(env: &mut Env, cg: &Cgroup) {
    match unit_value(&unit(), "KillMode").as_deref() {
        Some("process") => env.stop_daemon(),
        _ => {
            for pid in cg.pids() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            env.stop_daemon();
        }
    }
}

#[test]
fn systemctl_restart_never_touches_private_daemons_or_containers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("notify socket");
    let mut env = Env::start();
    env.set_daemon_env("NOTIFY_SOCKET", notify_path.to_str().expect("utf8"));
    env.set_daemon_env("WATCHDOG_USEC", "1000000");
    env.kill_daemon();
    env.start_daemon();
    heard(&notify, "READY=1", 10);
    heard(&notify, "WATCHDOG=1", 5);
    let cg = Cgroup::new();
    cg.add(env.daemon_pid().expect("pid"));

    let p = "sysd/svc";
    let data = env.home().join("data/sysd");
    env.create_svc(
        p,
        &[
            &format!("docker_data_dir={}", data.display()),
            "container#0.pull_policy=host",
        ],
    );
    env.ok(&[p, "start"]);
    let pid_of_dockerd: i32 =
        std::fs::read_to_string(env.home().join("namespaces/sysd/svc/docker.pid"))
            .expect("pidfile")
            .trim()
            .parse()
            .expect("pid");
    assert!(
        cg.pids().contains(&pid_of_dockerd),
        "the private dockerd is in the unit's cgroup"
    );
    let sock = env.status(p)["docker_socket"]
        .as_str()
        .expect("socket")
        .to_string();
    let started = |sock: &str| {
        let out = docker_sock(
            sock,
            &[
                "inspect",
                "-f",
                "{{.Id}} {{.State.StartedAt}}",
                "sysd..svc.container.0",
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = started(&sock);
    assert!(!before.is_empty());

    systemctl_stop(&mut env, &cg);
    heard(&notify, "STOPPING=1", 5);
    assert!(
        berth_engine::process_alive(pid_of_dockerd),
        "systemctl stop killed the private dockerd"
    );
    assert_eq!(
        started(&sock),
        before,
        "systemctl stop touched the container"
    );

    env.start_daemon();
    cg.add(env.daemon_pid().expect("pid"));
    heard(&notify, "READY=1", 10);
    env.wait_status(p, 30, |s| s["avail"] == "up");
    assert_eq!(started(&sock), before, "the restart bounced the container");
}
