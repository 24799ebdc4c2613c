//! The lifecycle of a service's private `dockerd`.
//!
//! A private daemon is started detached, in its own process group, so it and
//! its containers outlive `berth daemon` restarts. Whether it runs is read
//! back from its pidfile and socket, never remembered in memory.

use crate::error::EngineError;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Where a private daemon keeps its files and how it is reached.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivateDaemonSpec {
    pub socket: PathBuf,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub pidfile: PathBuf,
    pub log_file: PathBuf,
    /// Group owning the socket (mode 0660). `None` leaves it root-only.
    pub socket_group: Option<String>,
    /// The /16 private bridges take their /24 from.
    pub bridge_pool: BridgePool,
    /// A symlink to `socket` at a readable path, when `socket` had to be
    /// shortened.
    pub socket_link: Option<PathBuf>,
}

pub use berth_model::settings::BridgePool;

pub struct PrivateDaemon {
    pub spec: PrivateDaemonSpec,
}

const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl PrivateDaemon {
    pub fn new(spec: PrivateDaemonSpec) -> PrivateDaemon {
        PrivateDaemon { spec }
    }

    /// The command line that starts this daemon, as logged and run.
    pub fn argv(&self) -> Vec<String> {
        let s = &self.spec;
        let mut v = vec![
            "dockerd".to_string(),
            "-H".into(),
            format!("unix://{}", s.socket.display()),
            "--data-root".into(),
            s.data_root.display().to_string(),
            "--exec-root".into(),
            s.exec_root.display().to_string(),
            "-p".into(),
            s.pidfile.display().to_string(),
            "--exec-opt".into(),
            "native.cgroupdriver=cgroupfs".into(),
            // The host daemon owns docker0 and the iptables chains; a private
            // daemon gets its own bridge and touches no iptables. Never
            // --bridge=none: dockerd then deletes docker0 from the host.
            "--bridge".into(),
            bridge_name(&s.socket),
            "--iptables=false".into(),
            "--ip6tables=false".into(),
            "--ip-forward=false".into(),
            "--ip-masq=false".into(),
        ];
        v.push("--group".into());
        v.push(s.socket_group.clone().unwrap_or_else(|| "root".into()));
        v
    }

    /// The pid of the running daemon, if its pidfile names a live process.
    pub fn running_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(&self.spec.pidfile).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        // A zombie still answers kill(0); it is dead all the same.
        let alive = process_alive(pid);
        let is_dockerd = std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim() == "dockerd")
            .unwrap_or(false);
        (alive && is_dockerd).then_some(pid)
    }

    /// Starts the daemon and waits until its socket answers `/_ping`.
    pub async fn start(&self) -> Result<i32, EngineError> {
        let s = &self.spec;
        for dir in [
            s.data_root.as_path(),
            s.exec_root.as_path(),
            parent(&s.socket),
            parent(&s.pidfile),
        ] {
            std::fs::create_dir_all(dir).map_err(|e| {
                EngineError::PrivateDaemon(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        check_writable(&s.data_root)?;
        if let Some(link) = &s.socket_link {
            std::fs::create_dir_all(parent(link))?;
            let _ = std::fs::remove_file(link);
            std::os::unix::fs::symlink(&s.socket, link).map_err(|e| {
                EngineError::PrivateDaemon(format!("cannot link {}: {e}", link.display()))
            })?;
        }
        ensure_bridge(&bridge_name(&s.socket), s.bridge_pool).await?;
        reap_orphan_containerd(&s.exec_root).await;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&s.log_file)
            .map_err(|e| {
                EngineError::PrivateDaemon(format!("cannot open {}: {e}", s.log_file.display()))
            })?;
        let log2 = log.try_clone()?;
        let argv = self.argv();
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0);
        let mut child = tokio::process::Command::from(cmd)
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| EngineError::PrivateDaemon(format!("cannot run dockerd: {e}")))?;
        let pid = child.id().map(|p| p as i32).unwrap_or(0);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(EngineError::PrivateDaemon(format!(
                    "dockerd exited with {status} during start-up; see {}",
                    s.log_file.display()
                )));
            }
            if ping_socket(&s.socket).await {
                // Reap in the background when it eventually exits.
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
                return Ok(pid);
            }
            if Instant::now() > deadline {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                return Err(EngineError::PrivateDaemon(format!(
                    "dockerd did not answer on {} within {}s; see {}",
                    s.socket.display(),
                    START_TIMEOUT.as_secs(),
                    s.log_file.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the daemon with SIGTERM and waits for it to exit.
    pub async fn stop(&self) -> Result<(), EngineError> {
        let Some(pid) = self.running_pid() else {
            return Ok(());
        };
        let pid = Pid::from_raw(pid);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_TIMEOUT;
        while process_alive(pid.as_raw()) {
            if Instant::now() > deadline {
                let _ = kill(pid, Signal::SIGKILL);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.clean_up().await;
        Ok(())
    }

    /// Stops the daemon if it runs, then removes what it leaves behind when
    /// it dies without cleaning up: its bridge, the mounts under its
    /// exec-root and below its data-root, its socket and pidfile. Safe
    /// whatever state the daemon is in, and when it never ran.
    pub async fn stop_and_clean(&self) -> Result<(), EngineError> {
        if self.running_pid().is_some() {
            return self.stop().await;
        }
        self.clean_up().await;
        Ok(())
    }

    async fn clean_up(&self) {
        let s = self.spec.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if ip(&["link", "show", &bridge_name(&s.socket)]).is_ok() {
                let _ = ip(&["link", "del", &bridge_name(&s.socket)]);
            }
            if !s.exec_root.as_os_str().is_empty() {
                unmount_under(&s.exec_root, true);
            }
            // The data-root itself may be the operator's own mount point.
            if !s.data_root.as_os_str().is_empty() {
                unmount_under(&s.data_root, false);
            }
            let _ = std::fs::remove_file(&s.socket);
            let _ = std::fs::remove_file(&s.pidfile);
            if let Some(link) = &s.socket_link {
                let _ = std::fs::remove_file(link);
            }
        })
        .await;
    }
}

/// Lazily unmounts every mount below `root` (and `root` itself with
/// `itself`), deepest first. `root` itself is also unmounted when it is a
/// bind mount within its parent's file system, as dockerd makes of its
/// data-root; a file system of its own there is the operator's and stays.
pub fn unmount_under(root: &Path, itself: bool) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mounts: Vec<Mount> = info.lines().filter_map(Mount::parse).collect();
    let is_bind = |m: &Mount| {
        mounts
            .iter()
            .any(|p| p.id == m.parent && p.dev == m.dev && p.point != m.point)
    };
    let mut points: Vec<&Mount> = mounts
        .iter()
        .filter(|m| m.point.starts_with(root))
        .filter(|m| m.point != root || itself || is_bind(m))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.point.as_os_str().len()));
    for m in points {
        let _ = nix::mount::umount2(&m.point, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// One line of `/proc/self/mountinfo`.
struct Mount {
    id: u64,
    parent: u64,
    dev: String,
    point: PathBuf,
}

impl Mount {
    fn parse(line: &str) -> Option<Mount> {
        let f: Vec<&str> = line.split_whitespace().collect();
        Some(Mount {
            id: f.first()?.parse().ok()?,
            parent: f.get(1)?.parse().ok()?,
            dev: f.get(2)?.to_string(),
            // Spaces and the like are escaped as octal.
            point: PathBuf::from(f.get(4)?.replace("\\040", " ")),
        })
    }
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

/// Whether `pid` is a live process. A zombie answers `kill(pid, 0)` but
/// has exited; only its parent has not collected it yet.
pub fn process_alive(pid: i32) -> bool {
    let zombie_or_gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .map(|rest| rest.trim_start().starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(true);
    kill(Pid::from_raw(pid), None).is_ok() && !zombie_or_gone
}

fn check_writable(dir: &Path) -> Result<(), EngineError> {
    let probe = dir.join(".berth-write-probe");
    std::fs::write(&probe, b"")
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            EngineError::PrivateDaemon(format!(
                "docker_data_dir {} is not writable: {e}",
                dir.display()
            ))
        })
}

/// True when something answers Docker's `/_ping` on the socket.
pub async fn ping_socket(socket: &Path) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::UnixStream::connect(socket),
    )
    .await
    else {
        return false;
    };
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await,
        Ok(Ok(n)) if n > 12 && buf.starts_with(b"HTTP/1.") && &buf[9..12] == b"200"
    )
}

/// The private daemon's bridge: `bb` + 12 hex digits of its socket path,
/// within the 15 characters Linux allows.
pub fn bridge_name(socket: &Path) -> String {
    let h = berth_model::fnv1a64(socket.as_os_str().as_encoded_bytes());
    format!("bb{:012x}", h & 0xffff_ffff_ffff)
}

fn ip(args: &[&str]) -> Result<String, EngineError> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| EngineError::PrivateDaemon(format!("cannot run ip: {e}")))?;
    if !out.status.success() {
        return Err(EngineError::PrivateDaemon(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Lock file serializing bridge creation across every berth agent on the
/// host, so two daemons starting at once do not pick the same free /24.
const BRIDGE_LOCK_FILE: &str = "/run/berth-bridges.lock";

/// Creates the bridge with a free /24 from the pool, unless it exists.
async fn ensure_bridge(name: &str, pool: BridgePool) -> Result<(), EngineError> {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || ensure_bridge_locked(&name, pool))
        .await
        .map_err(|e| EngineError::PrivateDaemon(format!("bridge set-up: {e}")))?
}

fn ensure_bridge_locked(name: &str, pool: BridgePool) -> Result<(), EngineError> {
    let prefix = pool.prefix();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(BRIDGE_LOCK_FILE)
        .map_err(|e| EngineError::PrivateDaemon(format!("{BRIDGE_LOCK_FILE}: {e}")))?;
    let _lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| EngineError::PrivateDaemon(format!("{BRIDGE_LOCK_FILE}: {e}")))?;
    if ip(&["link", "show", name]).is_ok() {
        return Ok(());
    }
    let used = ip(&["-o", "-4", "addr", "show"])?;
    let free = (0..=255u32).find(|k| !used.contains(&format!(" {prefix}.{k}.")));
    let Some(k) = free else {
        return Err(EngineError::PrivateDaemon(format!(
            "no free /24 left in {pool} for a private bridge (see --private-bridge-pool)"
        )));
    };
    ip(&["link", "add", "name", name, "type", "bridge"])?;
    ip(&["addr", "add", &format!("{prefix}.{k}.1/24"), "dev", name])?;
    ip(&["link", "set", name, "up"])?;
    Ok(())
}

/// A dockerd that died by SIGKILL can leave its containerd running for a
/// while, holding the exec-root; a new dockerd then waits 15 s for its own
/// containerd and gives up. Kill such an orphan before starting.
async fn reap_orphan_containerd(exec_root: &Path) {
    let marker = exec_root.join("containerd").join("containerd.toml");
    let marker = marker.as_os_str().as_encoded_bytes().to_vec();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let mut victims = Vec::new();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let is_containerd = std::fs::read_to_string(p.path().join("comm"))
            .map(|c| c.trim() == "containerd")
            .unwrap_or(false);
        if !is_containerd {
            continue;
        }
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        if cmdline
            .windows(marker.len())
            .any(|w| w == marker.as_slice())
        {
            victims.push(Pid::from_raw(pid));
        }
    }
    for pid in &victims {
        let _ = kill(*pid, Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while victims.iter().any(|p| process_alive(p.as_raw())) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // dockerd trusts containerd's pidfile when its pid answers kill(0), as
    // an unreaped zombie does, and then waits for a containerd that is gone.
    let pidfile = exec_root.join("containerd").join("containerd.pid");
    if let Some(pid) = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok())
    {
        let pid = Pid::from_raw(pid);
        if !process_alive(pid.as_raw()) {
            let _ = std::fs::remove_file(&pidfile);
        }
    }
}
