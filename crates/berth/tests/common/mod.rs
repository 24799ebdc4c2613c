//! Test bed: one berth daemon per test, with its own BERTH_HOME and node
//! name, against the host's real dockerd. Containers are labelled with the
//! node name, so each test removes exactly its own, even when it fails.
#![allow(dead_code)]

pub mod node_client;
pub mod remote;
pub mod testbed;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const IMAGE: &str = "berth-test/pause:2";
/// An image no registry has. Its registry is a closed loopback port, so the
/// pull fails at once and no traffic leaves the machine (a bare name would
/// make dockerd look up Docker Hub).
pub const ABSENT_IMAGE: &str = "127.0.0.1:9/berth-test/does-not-exist:0";
pub const BIN: &str = env!("CARGO_BIN_EXE_berth");

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A TCP port free on 127.0.0.1 now (another process may take it before
/// the caller binds it; tests that need one retry or fail clearly).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `ok` every 100 ms until it holds; fails the test after `secs`.
pub fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every regular file under `dir` (but under `skip`) that holds one of
/// `needles`.
pub fn files_holding(dir: &Path, needles: &[Vec<u8>], skip: Option<&Path>) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        if skip.is_some_and(|s| d.starts_with(s)) {
            continue;
        }
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                todo.push(p);
            } else if meta.is_file() && meta.len() < 256 << 20 {
                let bytes = std::fs::read(&p).unwrap_or_default();
                if needles
                    .iter()
                    .any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice()))
                {
                    found.push(p.display().to_string());
                }
            }
        }
    }
    found
}

/// Builds `dockerfile` (read from stdin, no context) as `tag` on the
/// host's dockerd and returns the image id. `--no-cache`: the legacy
/// builder's cache probe reads every child of the `FROM` image, and fails
/// the build ("unable to find image") when a parallel test deletes its own
/// child of the same base in that moment.
pub fn build_image(tag: &str, dockerfile: &str) -> String {
    let mut c = Command::new("docker");
    c.args(["build", "--no-cache", "-q", "-t", tag, "-"]);
    let out = run_with_stdin(c, dockerfile);
    assert!(out.status.success(), "docker build {tag}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs `cmd` with `input` on its standard input.
pub fn run_with_stdin(mut cmd: Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// A unique, RFC 1123-safe token for names.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Imports the test image (busybox in a tarball) into the host dockerd once.
pub fn ensure_image() {
    if docker(&["image", "inspect", IMAGE]).status.success() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
    for app in [
        "sh", "sleep", "echo", "cat", "ls", "true", "false", "wget", "nc",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(app)).expect("symlink");
    }
    let tar = dir.path().join("img.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    let out = docker(&[
        "import",
        "-c",
        // PID 1 ignores SIGTERM unless it traps it; trap so stops are prompt.
        r#"CMD ["/bin/sh","-c","trap 'exit 0' TERM; sleep 2147483647 & wait"]"#,
        tar.to_str().expect("utf8"),
        IMAGE,
    ]);
    assert!(
        out.status.success(),
        "docker import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("docker client")
}

pub fn docker_sock(sock: &str, args: &[&str]) -> Output {
    let host = format!("unix://{sock}");
    let mut all = vec!["-H", host.as_str()];
    all.extend_from_slice(args);
    docker(&all)
}

const HOST_SOCK: &str = "/var/run/docker.sock";

/// `docker rm -f` of every container `docker ps -a <filter>` lists on `sock`.
fn remove_containers(sock: &str, filter: &[&str]) {
    let mut ps = vec!["ps", "-aq"];
    ps.extend_from_slice(filter);
    let out = docker_sock(sock, &ps);
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.iter().map(String::as_str));
        let _ = docker_sock(sock, &args);
    }
}

pub struct Env {
    pub home: tempfile::TempDir,
    pub node: String,
    daemon: Option<Child>,
    daemon_args: Vec<String>,
    daemon_env: Vec<(String, String)>,
}

impl Env {
    pub fn start() -> Env {
        Env::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Env {
        Env::start_as(&unique("n"), args)
    }

    /// A daemon whose home is a tmpfs of `size` (`2m`), for disk-full
    /// tests; the clean-up unmounts it.
    pub fn start_on_tmpfs(size: &str) -> Env {
        let home = new_home();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(home.path())
            .status()
            .expect("mount");
        assert!(
            st.success(),
            "mounting a tmpfs on {}",
            home.path().display()
        );
        Env::start_in(home, &unique("n"), &[])
    }

    /// A daemon whose node name is `node`: tests of name clashes only,
    /// since its clean-up removes the host's containers of that node name.
    pub fn start_as(node: &str, args: &[&str]) -> Env {
        Env::start_in(new_home(), node, args)
    }

    fn start_in(home: tempfile::TempDir, node: &str, args: &[&str]) -> Env {
        ensure_image();
        let mut env = Env {
            home,
            node: node.to_string(),
            daemon: None,
            daemon_args: args.iter().map(|s| s.to_string()).collect(),
            daemon_env: Vec::new(),
        };
        env.start_daemon();
        env
    }

    /// Restarts the daemon with an extra environment variable.
    pub fn restart_daemon_with_env(&mut self, key: &str, value: &str) {
        self.kill_daemon();
        self.daemon_env.retain(|(k, _)| k != key);
        self.daemon_env.push((key.to_string(), value.to_string()));
        self.start_daemon();
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The pid of the daemon this test started.
    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|c| c.id())
    }

    /// Sets an environment variable for the next daemon start.
    pub fn set_daemon_env(&mut self, key: &str, value: &str) {
        self.daemon_env.retain(|(k, _)| k != key);
        self.daemon_env.push((key.to_string(), value.to_string()));
    }

    pub fn start_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home().join("test-daemon.log"))
            .expect("log");
        let child = Command::new(BIN)
            // A short resync keeps tests that wait on it (hand edits) quick.
            .args(["daemon", "run", "--nodename", &self.node, "--resync", "2s"])
            .args(&self.daemon_args)
            // Daemons of parallel tests share the host's loopback: none
            // serves the Consul API unless its test asks for one.
            .env("BERTH_CONSUL_ADDR", "none")
            .env("BERTH_DNS_ADDR", "none")
            .envs(self.daemon_env.iter().map(|(k, v)| (k, v)))
            .env("BERTH_HOME", self.home())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.berth(&["daemon", "status"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "daemon did not come up: {}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM and wait, as `berth daemon stop` does.
    pub fn stop_daemon(&mut self) {
        let out = self.berth(&["daemon", "stop"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(mut c) = self.daemon.take() {
            let _ = c.wait();
        }
    }

    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.home().join("test-daemon.log")).unwrap_or_default()
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("BERTH_HOME", self.home())
            .output()
            .expect("run berth")
    }

    /// Runs berth, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs berth, asserts failure, returns stdout + stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "berth {args:?} should have failed:\n{text}"
        );
        text
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--format", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad json from {args:?}: {e}\n{out}"))
    }

    pub fn status(&self, path: &str) -> Value {
        let v = self.json(&[path, "print", "status"]);
        v[0].clone()
    }

    /// Polls the status of `path` until `pred` holds, or panics after `secs`.
    pub fn wait_status(&self, path: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.status(path);
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {path}: {s:#}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn config_file(&self, ns: &str, name: &str) -> PathBuf {
        self.home()
            .join(format!("etc/namespaces/{ns}/svc/{name}.conf"))
    }

    /// Creates a one-container service running the test image.
    pub fn create_svc(&self, path: &str, extra: &[&str]) {
        let image = format!("container#0.image={IMAGE}");
        let mut args = vec!["create", path, "--kw", &image];
        for e in extra {
            args.push("--kw");
            args.push(e);
        }
        self.ok(&args);
    }

    fn cleanup(&mut self) {
        // Containers this daemon adopted (left by an earlier, killed run)
        // carry another node label: find them by the paths it manages.
        let paths: Vec<String> = self
            .daemon
            .as_ref()
            .and_then(|_| {
                serde_json::from_slice::<Value>(&self.berth(&["ls", "--format", "json"]).stdout)
                    .ok()
            })
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|o| o["path"].as_str().map(str::to_string))
            .collect();
        self.kill_daemon();
        let filter = format!("label=berth.node={}", self.node);
        remove_containers(HOST_SOCK, &["--filter", &filter]);
        for p in paths {
            remove_containers(HOST_SOCK, &["--filter", &format!("label=berth.path={p}")]);
        }
        // Remove private containers first, then stop every private dockerd
        // at once, then wait: sequential waits add up to minutes.
        let pidfiles = glob_pidfiles(&self.home().join("namespaces"));
        let mut pids = Vec::new();
        for pidfile in &pidfiles {
            let sock = pidfile.with_file_name("docker.sock");
            remove_containers(&sock.to_string_lossy(), &[]);
            if let Some(pid) = std::fs::read_to_string(pidfile)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                let pid = nix::unistd::Pid::from_raw(pid);
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                pids.push(pid);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while pids
            .iter()
            .any(|p| nix::sys::signal::kill(*p, None).is_ok())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        for pidfile in &pidfiles {
            let bridge = berth_engine::bridge_name(&pidfile.with_file_name("docker.sock"));
            let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        }
        // Private data roots may hold mounts; unmount before the temp dir goes.
        unmount_under(self.home());
    }
}

fn new_home() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-it-")
        .tempdir()
        .expect("tempdir")
}

/// Lazily unmounts everything mounted below `root`, and `root` itself.
pub fn unmount_under(root: &Path) {
    berth_engine::unmount_under(root, true);
}

fn glob_pidfiles(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for ns in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for obj in std::fs::read_dir(ns.path()).into_iter().flatten().flatten() {
            let p = obj.path().join("docker.pid");
            if p.exists() {
                out.push(p);
            }
        }
    }
    out
}

impl Drop for Env {
    fn drop(&mut self) {
        self.cleanup();
    }
}
