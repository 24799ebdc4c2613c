//! Private daemons: images from a loopback registry, and moving a service
//! between the host's dockerd and its own.

mod common;
use common::*;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's docker-registry on a free loopback port, killed on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    /// Host image tags made for this registry, removed on drop.
    tags: Vec<String>,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .expect("config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "registry did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Registry {
            child,
            port,
            _dir: dir,
            tags: Vec::new(),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for t in &self.tags {
            let _ = docker(&["rmi", t]);
        }
    }
}

#[test]
fn private_daemon_pulls_from_a_loopback_registry() {
    let mut reg = Registry::start();
    let env = Env::start();
    let remote = format!("127.0.0.1:{}/{}", reg.port, IMAGE);
    reg.tags.push(remote.clone());
    assert!(docker(&["tag", IMAGE, &remote]).status.success());
    let push = docker(&["push", &remote]);
    assert!(
        push.status.success(),
        "push: {}",
        String::from_utf8_lossy(&push.stderr)
    );
    // The private daemon must get it from the registry, not the host.
    let _ = docker(&["rmi", &remote]);
    let data = format!("{}/srv/{{path}}/docker", env.home().display());
    env.ok(&[
        "create",
        "reg/svc",
        "--kw",
        &format!("docker_data_dir={data}"),
        "--kw",
        &format!("container#0.image={remote}"),
    ]);
    let out = env.ok(&["reg/svc", "start"]);
    assert!(out.contains(&format!("pull {remote}")), "{out}");
    let images = env.ok(&[
        "reg/svc",
        "docker",
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(images.trim(), remote);
    assert_eq!(env.status("reg/svc")["avail"], "up");
}

#[test]
fn never_policy_without_the_image_fails_clearly() {
    let env = Env::start();
    let data = format!("{}/srv/{{path}}/docker", env.home().display());
    env.create_svc(
        "never/svc",
        &[
            &format!("docker_data_dir={data}"),
            "container#0.pull_policy=never",
        ],
    );
    let out = env.fails(&["never/svc", "start"]);
    assert!(out.contains("pull_policy=never"), "{out}");
}

#[test]
fn a_service_moves_between_host_and_private_daemons_on_restart() {
    let env = Env::start();
    env.create_svc("mv/svc", &["container#0.pull_policy=host"]);
    env.ok(&["mv/svc", "start"]);
    let name = "mv..svc.container.0";
    let on_host = |running: bool| {
        let out = docker(&[
            "ps",
            "--filter",
            &format!("name=^{name}$"),
            "--format",
            "{{.Names}}",
        ]);
        String::from_utf8_lossy(&out.stdout).trim() == name && running
            || String::from_utf8_lossy(&out.stdout).trim().is_empty() && !running
    };
    assert!(on_host(true));
    let data = format!("{}/srv/{{path}}/docker", env.home().display());
    env.ok(&["mv/svc", "set", "--kw", &format!("docker_data_dir={data}")]);
    // The automatic pass does not bounce the running container...
    let st = env.wait_status("mv/svc", 30, |s| {
        s["log"].to_string().contains("earlier config")
    });
    assert!(on_host(true), "{st:#}");
    // ...an explicit restart moves it.
    let out = env.ok(&["mv/svc", "restart"]);
    assert!(
        out.contains("clearing containers left on /var/run/docker.sock"),
        "{out}"
    );
    assert!(on_host(false));
    let sock = env.status("mv/svc")["docker_socket"]
        .as_str()
        .expect("socket")
        .to_string();
    let ps = docker_sock(&sock, &["ps", "--format", "{{.Names}}"]);
    assert_eq!(String::from_utf8_lossy(&ps.stdout).trim(), name);
    // And back to the host: the private daemon is stopped.
    env.ok(&["mv/svc", "unset", "--kw", "docker_data_dir"]);
    env.ok(&["mv/svc", "restart"]);
    assert!(on_host(true));
    assert!(
        docker_sock(&sock, &["ps"]).status.code() != Some(0),
        "private daemon still answers"
    );
}

#[test]
fn a_killed_private_daemon_is_restarted_with_its_container() {
    let env = Env::start();
    let data = format!("{}/srv/{{path}}/docker", env.home().display());
    env.create_svc(
        "heal/svc",
        &[
            &format!("docker_data_dir={data}"),
            "container#0.pull_policy=host",
            "container#0.restart_delay=100ms",
        ],
    );
    env.ok(&["heal/svc", "start"]);
    let pidfile = env.home().join("namespaces/heal/svc/docker.pid");
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
    let sock = env.home().join("namespaces/heal/svc/docker.sock");
    let sock = sock.to_str().expect("utf8");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let new = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        let ps = docker_sock(sock, &["ps", "--format", "{{.Names}}"]);
        if new.is_some_and(|p| p != old)
            && String::from_utf8_lossy(&ps.stdout).trim() == "heal..svc.container.0"
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not healed: {:#}",
            env.status("heal/svc")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    env.wait_status("heal/svc", 30, |s| s["avail"] == "up");
    // Healed, its warnings go with the next passes that succeed.
    env.wait_status("heal/svc", 30, |s| {
        let quiet = |v: &serde_json::Value| v.as_array().is_none_or(|a| a.is_empty());
        quiet(&s["log"])
            && s["resources"]
                .as_array()
                .is_some_and(|rs| rs.iter().all(|r| quiet(&r["log"])))
    });
    let mon = env.ok(&["mon", "heal/svc"]);
    assert!(!mon.contains('!'), "{mon}");
}

#[test]
fn daemon_restarts_leave_private_daemons_and_their_containers_alone() {
    let mut env = Env::start();
    let data = format!("{}/srv/{{path}}/docker", env.home().display());
    env.create_svc(
        "keep/svc",
        &[
            &format!("docker_data_dir={data}"),
            "container#0.pull_policy=host",
        ],
    );
    env.ok(&["keep/svc", "start"]);
    let pidfile = env.home().join("namespaces/keep/svc/docker.pid");
    let sock = env.home().join("namespaces/keep/svc/docker.sock");
    let sock = sock.to_str().expect("utf8").to_string();
    let facts = || {
        let pid = std::fs::read_to_string(&pidfile).expect("pidfile");
        let out = docker_sock(
            &sock,
            &[
                "inspect",
                "--format",
                "{{.Id}} {{.State.StartedAt}} {{.State.Running}}",
                "keep..svc.container.0",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (pid, String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let before = facts();
    assert!(before.1.trim().ends_with("true"));
    for round in 0..3 {
        if round == 1 {
            env.kill_daemon();
        } else {
            env.stop_daemon();
        }
        assert_eq!(
            facts(),
            before,
            "round {round}: stopping berth touched the private daemon"
        );
        env.start_daemon();
        env.wait_status("keep/svc", 30, |s| s["avail"] == "up");
        assert_eq!(
            facts(),
            before,
            "round {round}: restarting berth bounced something"
        );
    }
}
