//! Multi-node test bed: each node is a network namespace on a bridge the
//! bed creates, with its own dockerd (data-root, exec-root, socket) and its
//! own berth daemon and home. Nodes can be crashed (SIGKILL of the agent,
//! dockerd, containerd, the shims and their containers), partitioned (link
//! down) and healed. Everything is removed on drop, also when a test fails.
//!
//! Addresses stay inside 10.214.<bed>.0/24 on the bed's own bridge.
#![allow(dead_code)]

use super::{docker_sock, unique, BIN, IMAGE};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Node {
    pub name: String,
    pub netns: String,
    pub veth: String,
    pub addr: String,
    pub dir: PathBuf,
    agent: Option<Child>,
    dockerd: Option<Child>,
}

impl Node {
    pub fn home(&self) -> PathBuf {
        self.dir.join("berth")
    }
    pub fn docker_socket(&self) -> String {
        self.dir.join("docker.sock").display().to_string()
    }
    fn exec_root(&self) -> PathBuf {
        self.dir.join("x")
    }
    fn docker_pidfile(&self) -> PathBuf {
        self.dir.join("docker.pid")
    }
    fn netns_path(&self) -> String {
        format!("/var/run/netns/{}", self.netns)
    }

    /// Runs a command inside the node's network namespace.
    pub fn nsenter(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.netns_path())).arg(program);
        c
    }

    /// Runs the berth CLI against this node's daemon.
    pub fn berth(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .env("BERTH_HOME", self.home())
            .output()
            .expect("run berth")
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        docker_sock(&self.docker_socket(), args)
    }

    /// Runs berth, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "{}: berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--format", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bad json from {args:?}: {e}\n{out}"))
    }

    /// The node listener's address.
    pub fn advertise(&self) -> String {
        format!("{}:7946", self.addr)
    }

    /// Names of the running containers of this node's dockerd.
    pub fn running(&self) -> Vec<String> {
        let out = self.docker(&["ps", "--format", "{{.Names}}"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `(time in ns, action)` of container `name`'s start and die events in
    /// this node's dockerd log, from `since` to `until` (Unix seconds).
    pub fn lifecycle(&self, name: &str, since: u64, until: u64) -> Vec<(u128, String)> {
        let out = self.docker(&[
            "events",
            "--since",
            &since.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            &format!("container={name}"),
            "--filter",
            "event=start",
            "--filter",
            "event=die",
            "--format",
            "{{.TimeNano}} {{.Action}}",
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (t, a) = l.split_once(' ')?;
                Some((t.parse().ok()?, a.trim().to_string()))
            })
            .collect()
    }

    pub fn agent_running(&self) -> bool {
        self.berth(&["daemon", "status"]).status.success()
    }
}

pub struct Testbed {
    pub nodes: Vec<Node>,
    pub bridge: String,
    pub dir: tempfile::TempDir,
    /// More `daemon run` arguments for every node; `{addr}` is the node's
    /// bed address, `{gateway}` the host's.
    agent_args: Vec<String>,
    /// The host's address on the bed's bridge, where test clients come from.
    pub gateway: String,
    /// This bed's claim on its subnet, removed with the bed.
    subnet_claim: std::path::PathBuf,
}

/// Claims a 10.214.<n>.0/24 no other bed of any test process uses: a file
/// per subnet, made with create_new (a claim whose process is gone is
/// taken over), and no interface of the host already in it. Two beds on
/// one subnet make routes ambiguous ("no route to host").
fn claim_subnet(seed: u64) -> (u8, std::path::PathBuf) {
    let dir = std::path::Path::new("/run/berth-testbed");
    std::fs::create_dir_all(dir).expect("claims dir");
    for k in 0..240u64 {
        let subnet = 10 + ((seed + k) % 240) as u8;
        let in_use = Command::new("ip")
            .args(["-o", "addr", "show", "to", &format!("10.214.{subnet}.0/24")])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(true);
        if in_use {
            continue;
        }
        let path = dir.join(subnet.to_string());
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = write!(f, "{}", std::process::id());
                    return (subnet, path);
                }
                Err(_) => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = holder
                        .trim()
                        .parse::<u32>()
                        .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
                    if alive {
                        break;
                    }
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
    }
    panic!("no free 10.214.x.0/24 subnet for a bed");
}

fn sh(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn must(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Testbed {
    /// Builds `n` nodes, each with dockerd and a berth daemon running and
    /// the test image loaded.
    pub fn new(n: usize) -> Testbed {
        Testbed::with_args(n, &[])
    }

    /// [`Testbed::new`], each daemon also given `args` (`{addr}`: the
    /// node's bed address; `{gateway}`: the host's).
    pub fn with_args(n: usize, args: &[&str]) -> Testbed {
        super::ensure_image();
        let id = unique("");
        let dir = tempfile::Builder::new()
            .prefix("berth-bed-")
            .tempdir()
            .expect("tempdir");
        // Interface names are limited to 15 characters.
        let short = format!("{:x}", fnv(&id) & 0xff_ffff);
        let (subnet, subnet_claim) = claim_subnet(fnv(&id));
        let mut bed = Testbed {
            nodes: Vec::new(),
            bridge: format!("tb{short}"),
            dir,
            agent_args: args.iter().map(|a| a.to_string()).collect(),
            gateway: format!("10.214.{subnet}.1"),
            subnet_claim,
        };
        must("ip", &["link", "add", &bed.bridge, "type", "bridge"]);
        must(
            "ip",
            &[
                "addr",
                "add",
                &format!("{}/24", bed.gateway),
                "dev",
                &bed.bridge,
            ],
        );
        must("ip", &["link", "set", &bed.bridge, "up"]);
        // The host dockerd sets FORWARD to DROP and bridged frames pass
        // through iptables (br_netfilter): let the bed's own bridge forward.
        must("iptables", &bed.forward_rule("-I"));
        for i in 0..n {
            let node = Node {
                name: format!("node{i}"),
                netns: format!("tb{short}n{i}"),
                veth: format!("tv{short}n{i}"),
                addr: format!("10.214.{subnet}.{}", 11 + i),
                dir: bed.dir.path().join(format!("node{i}")),
                agent: None,
                dockerd: None,
            };
            bed.nodes.push(node);
            let node = bed.nodes.last().expect("just pushed");
            std::fs::create_dir_all(&node.dir).expect("node dir");
            must("ip", &["netns", "add", &node.netns]);
            must(
                "ip",
                &[
                    "link",
                    "add",
                    &node.veth,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    &node.netns,
                ],
            );
            must(
                "ip",
                &["link", "set", &node.veth, "master", &bed.bridge, "up"],
            );
            must(
                "ip",
                &[
                    "-n",
                    &node.netns,
                    "addr",
                    "add",
                    &format!("{}/24", node.addr),
                    "dev",
                    "eth0",
                ],
            );
            must("ip", &["-n", &node.netns, "link", "set", "eth0", "up"]);
            must("ip", &["-n", &node.netns, "link", "set", "lo", "up"]);
            // A host has a default route; the daemon finds its address by it.
            must(
                "ip",
                &[
                    "-n",
                    &node.netns,
                    "route",
                    "add",
                    "default",
                    "via",
                    &bed.gateway,
                ],
            );
        }
        for i in 0..n {
            bed.start_dockerd(i);
        }
        for i in 0..n {
            bed.load_image(i);
            bed.start_agent(i);
        }
        bed
    }

    fn start_dockerd(&mut self, i: usize) {
        let node = &self.nodes[i];
        let log = std::fs::File::create(node.dir.join("dockerd.log")).expect("log");
        let _ = std::fs::remove_file(node.docker_pidfile());
        let child = node
            .nsenter("dockerd")
            .args(["-H", &format!("unix://{}", node.docker_socket())])
            .args(["--data-root", &node.dir.join("data").display().to_string()])
            .args(["--exec-root", &node.exec_root().display().to_string()])
            .args(["--pidfile", &node.docker_pidfile().display().to_string()])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("dockerd");
        self.nodes[i].dockerd = Some(child);
        let sock = self.nodes[i].docker_socket();
        super::wait_until("node dockerd", 60, || {
            docker_sock(&sock, &["version"]).status.success()
        });
    }

    fn load_image(&self, i: usize) {
        let node = &self.nodes[i];
        let tar = node.dir.join("image.tar");
        must("docker", &["save", "-o", &tar.display().to_string(), IMAGE]);
        let out = node.docker(&["load", "-i", &tar.display().to_string()]);
        assert!(
            out.status.success(),
            "load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(tar);
    }

    pub fn start_agent(&mut self, i: usize) {
        let node = &self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("berth.log"))
            .expect("log");
        let child = node
            .nsenter(BIN)
            .args(["daemon", "run", "--nodename", &node.name, "--resync", "2s"])
            .args(["--docker-socket", &node.docker_socket()])
            // DNS on the node's bed address, so a test reaches it from the host.
            .args(["--dns-addr", &format!("{}:8600", node.addr)])
            .args(
                self.agent_args
                    .iter()
                    .map(|a| a.replace("{addr}", &node.addr))
                    .map(|a| a.replace("{gateway}", &self.gateway)),
            )
            .env("BERTH_HOME", node.home())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("agent");
        let node = &mut self.nodes[i];
        node.agent = Some(child);
        let node = &self.nodes[i];
        super::wait_until("node agent", 30, || node.agent_running());
    }

    /// Makes node0 the first manager and joins the others: the next
    /// `managers - 1` as managers, the rest as workers.
    pub fn form_cluster(&self, managers: usize) {
        let first = &self.nodes[0];
        first.ok(&["cluster", "init", "--advertise", &first.advertise()]);
        let mtoken = first.ok(&["cluster", "token", "--manager"]);
        let wtoken = first.ok(&["cluster", "token"]);
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            let token = if i < managers { &mtoken } else { &wtoken };
            node.ok(&[
                "cluster",
                "join",
                &first.advertise(),
                "--token",
                token.trim(),
                "--advertise",
                &node.advertise(),
            ]);
        }
        let n = self.nodes.len();
        super::wait_until("every node up in the leader's view", 30, || {
            let v = first.json(&["cluster", "status"]);
            v["nodes"]
                .as_array()
                .is_some_and(|a| a.len() == n && a.iter().all(|x| x["state"] == "up"))
        });
    }

    /// A node crash: SIGKILL for its agent, dockerd, containerd, shims and
    /// the shims' children (the containers).
    pub fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut a) = node.agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
        let node = &self.nodes[i];
        let mut victims = Vec::new();
        if let Some(pid) = read_pid(&node.docker_pidfile()) {
            victims.push(pid);
        }
        let marker = node.exec_root().display().to_string();
        let watchdog = format!("watchdog --home {}", node.home().display());
        for (pid, cmdline) in processes() {
            if cmdline.contains(&marker) || cmdline.contains(&watchdog) {
                victims.push(pid);
            }
        }
        let mut all = victims.clone();
        for v in &victims {
            all.extend(descendants(*v));
        }
        for pid in &all {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        super::wait_until("node processes to die", 10, || {
            all.iter().all(|p| !alive(*p))
        });
    }

    /// An agent crash alone: SIGKILL for the berth daemon; dockerd, the
    /// containers and the fencing watchdog live on.
    pub fn kill_agent(&mut self, i: usize) {
        if let Some(mut a) = self.nodes[i].agent.take() {
            let _ = a.kill();
            let _ = a.wait();
        }
    }

    /// Cuts the node's link: a partition.
    pub fn partition(&self, i: usize) {
        must("ip", &["link", "set", &self.nodes[i].veth, "down"]);
    }

    pub fn heal(&self, i: usize) {
        must("ip", &["link", "set", &self.nodes[i].veth, "up"]);
    }

    /// Whether node `from` reaches node `to` over TCP, through the bridge.
    pub fn reachable(&self, from: usize, to: usize) -> bool {
        let (a, b) = (&self.nodes[from], &self.nodes[to]);
        let port = "7979";
        let mut server = b
            .nsenter("busybox")
            .args(["nc", "-l", "-p", port])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nc -l");
        std::thread::sleep(Duration::from_millis(200));
        let ok = a
            .nsenter("busybox")
            .args(["nc", "-w", "2", &b.addr, port])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        let _ = server.kill();
        let _ = server.wait();
        ok
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What each agent said is the first thing a failure needs.
            for node in &self.nodes {
                let log = std::fs::read_to_string(node.dir.join("berth.log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = &lines[lines.len().saturating_sub(80)..];
                eprintln!("---- {} berth.log (last {} lines)", node.name, tail.len());
                for l in tail {
                    eprintln!("{l}");
                }
            }
        }
        for i in 0..self.nodes.len() {
            // Containers first, so the mounts they hold go with them.
            self.kill(i);
        }
        super::unmount_under(self.dir.path());
        for node in &self.nodes {
            let _ = sh("ip", &["link", "del", &node.veth]);
            let _ = sh("ip", &["netns", "del", &node.netns]);
        }
        let _ = sh("iptables", &self.forward_rule("-D"));
        let _ = sh("ip", &["link", "del", &self.bridge]);
        let _ = std::fs::remove_file(&self.subnet_claim);
    }
}

impl Testbed {
    fn forward_rule<'a>(&'a self, op: &'a str) -> [&'a str; 8] {
        [
            op,
            "FORWARD",
            "-i",
            &self.bridge,
            "-o",
            &self.bridge,
            "-j",
            "ACCEPT",
        ]
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn read_pid(p: &Path) -> Option<i32> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
}

/// Every process with its command line (NUL separators as spaces).
fn processes() -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd: String = String::from_utf8_lossy(&cmd).replace('\0', " ");
        out.push((pid, cmd));
    }
    out
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn descendants(root: i32) -> Vec<i32> {
    let all: Vec<(i32, Option<i32>)> = processes()
        .iter()
        .map(|(p, _)| (*p, parent_of(*p)))
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (c, parent) in &all {
            if *parent == Some(p) && !out.contains(c) {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}
