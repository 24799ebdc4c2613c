//! Private daemons fit every valid name, and leave nothing behind: delete
//! removes their bridge, mounts and runtime directories whatever state the
//! daemon is in, and a restarting agent removes what a crash left of
//! objects that no longer exist.

mod common;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn bridge_exists(name: &str) -> bool {
    std::process::Command::new("ip")
        .args(["link", "show", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&root))
        .map(str::to_string)
        .collect()
}

fn label(prefix: &str) -> String {
    let mut s = unique(prefix);
    while s.len() < 63 {
        s.push('a');
    }
    s
}

fn socket_of(env: &Env, p: &str) -> String {
    env.status(p)["docker_socket"]
        .as_str()
        .expect("docker_socket")
        .to_string()
}

#[test]
fn names_of_63_characters_run_a_private_daemon_and_delete_leaves_nothing() {
    let env = Env::start();
    let (ns, name) = (label("ln"), label("nm"));
    let p = format!("{ns}/{name}");
    let data = env.home().join("data/{namespace}");
    env.create_svc(
        &p,
        &[
            &format!("docker_data_dir={}", data.display()),
            "container#0.pull_policy=host",
        ],
    );
    env.ok(&[&p, "start"]);
    env.wait_status(&p, 60, |s| s["avail"] == "up");
    let sock = socket_of(&env, &p);
    assert!(sock.len() <= 107, "{sock}");
    let ps = env.ok(&[&p, "docker", "ps", "--format", "{{.Names}}"]);
    assert!(ps.contains(".container.0"), "{ps}");
    let link = env
        .home()
        .join(format!("namespaces/{ns}/{name}/docker.sock"));
    assert_eq!(
        std::fs::read_link(&link).expect("readable symlink"),
        Path::new(&sock)
    );
    let bridge = berth_engine::bridge_name(Path::new(&sock));
    assert!(bridge_exists(&bridge));
    env.ok(&[&p, "delete"]);
    assert!(!bridge_exists(&bridge), "bridge {bridge} left behind");
    assert!(!env.home().join(format!("namespaces/{ns}")).exists());
    assert!(!Path::new(&sock).exists());
    let data_root = env.home().join(format!("data/{ns}"));
    assert!(
        mounts_under(&data_root).is_empty(),
        "{:?}",
        mounts_under(&data_root)
    );
}

#[test]
fn delete_after_a_private_daemon_was_killed_and_healed_leaves_nothing() {
    let env = Env::start();
    let p = "kheal/svc";
    let data = env.home().join("data/kheal");
    env.create_svc(
        p,
        &[
            &format!("docker_data_dir={}", data.display()),
            "container#0.pull_policy=host",
        ],
    );
    env.ok(&[p, "start"]);
    let pidfile = env.home().join("namespaces/kheal/svc/docker.pid");
    let old: i32 = std::fs::read_to_string(&pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .is_none_or(|p| p == old)
    {
        assert!(Instant::now() < deadline, "not healed");
        std::thread::sleep(Duration::from_millis(200));
    }
    env.wait_status(p, 60, |s| s["avail"] == "up");
    let sock = socket_of(&env, p);
    let bridge = berth_engine::bridge_name(Path::new(&sock));
    env.ok(&[p, "delete"]);
    assert!(!bridge_exists(&bridge), "bridge {bridge} left behind");
    assert!(mounts_under(&data).is_empty(), "{:?}", mounts_under(&data));
    assert!(!env.home().join("namespaces/kheal").exists());
}

#[test]
fn a_restarting_agent_removes_what_a_crash_left_of_deleted_objects() {
    let mut env = Env::start();
    // What a crash during a delete leaves: the runtime directory and the
    // bridge of an object desired state no longer has.
    let dir = env.home().join("namespaces/ghost/svc");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("docker.pid"), "999999999\n").expect("pidfile");
    let bridge = berth_engine::bridge_name(&dir.join("docker.sock"));
    let st = std::process::Command::new("ip")
        .args(["link", "add", "name", &bridge, "type", "bridge"])
        .status()
        .expect("ip");
    assert!(st.success());
    env.kill_daemon();
    env.start_daemon();
    assert!(!bridge_exists(&bridge), "bridge {bridge} left behind");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn the_private_bridge_pool_is_an_option() {
    let env = Env::start_with(&["--private-bridge-pool", "10.231.0.0/16"]);
    let p = "pool/svc";
    let data = env.home().join("data/pool");
    env.create_svc(
        p,
        &[
            &format!("docker_data_dir={}", data.display()),
            "container#0.pull_policy=host",
        ],
    );
    env.ok(&[p, "start"]);
    let bridge = berth_engine::bridge_name(Path::new(&socket_of(&env, p)));
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", &bridge])
        .output()
        .expect("ip");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(" 10.231."), "{text}");
    env.ok(&[p, "delete"]);
    let bad = std::process::Command::new(BIN)
        .args(["daemon", "run", "--private-bridge-pool", "10.231.0.0/8"])
        .env("BERTH_HOME", env.home().join("unused"))
        .output()
        .expect("run");
    assert_eq!(bad.status.code(), Some(2));
}
