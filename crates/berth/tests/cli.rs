//! The CLI's own surface: version, help, completions, docs, JSON, events,
//! the API socket.

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::{Command, Stdio};

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(sock: &std::path::Path, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect");
    write!(s, "GET {path} HTTP/1.0\r\nHost: berth\r\n\r\n").expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    assert!(
        resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
        "{resp}"
    );
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().expect("run berth")
}

#[test]
fn version_help_completion_and_doc_work_without_a_daemon() {
    let v = run(&["--version"]);
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("berth "));
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).into_owned();
    assert!(
        help.contains("Examples:") && help.contains("berth daemon start"),
        "{help}"
    );
    for sub in ["create", "mon", "events", "doc", "ls"] {
        let h = String::from_utf8_lossy(&run(&[sub, "--help"]).stdout).into_owned();
        assert!(h.contains("Examples:"), "{sub}: {h}");
    }
    let h = String::from_utf8_lossy(&run(&["x/y", "set", "--help"]).stdout).into_owned();
    assert!(h.contains("Examples:") && h.contains("--kw"), "{h}");
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completion", shell]);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("berth"),
            "{shell}"
        );
    }
    let doc = String::from_utf8_lossy(&run(&["doc", "container.image"]).stdout).into_owned();
    assert!(
        doc.contains("container.image") && doc.contains("required:  true"),
        "{doc}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["doc", "container.restart", "--format", "json"]).stdout)
            .expect("json");
    assert_eq!(json["kind"], "int");
    assert!(!run(&["doc", "container.nope"]).status.success());
}

#[test]
fn api_socket_is_private_and_serves_openapi() {
    let env = Env::start();
    let sock = env.home().join("berth.sock");
    let meta = std::fs::metadata(&sock).expect("socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(meta.uid(), 0);
    let body = http_get(&sock, "/v1/openapi.json");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("openapi json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/v1/objects/action"].is_object());
    assert!(doc["components"]["schemas"]["Keywords"].is_object());
    // No TCP listener: the daemon's only socket is the unix one.
    let pid = env.json(&["daemon", "status"])["pid"]
        .as_u64()
        .expect("pid");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fds");
    let inodes: Vec<String> = fds
        .flatten()
        .filter_map(|f| std::fs::read_link(f.path()).ok())
        .map(|l| l.display().to_string())
        .filter(|l| l.starts_with("socket:["))
        .collect();
    let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default()
        + &std::fs::read_to_string(format!("/proc/{pid}/net/tcp6")).unwrap_or_default();
    for line in tcp.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // State 0A is LISTEN; column 9 is the inode.
        if cols.get(3) == Some(&"0A") {
            let inode = format!("socket:[{}]", cols.get(9).unwrap_or(&""));
            assert!(!inodes.contains(&inode), "daemon listens on TCP: {line}");
        }
    }
}

#[test]
fn events_stream_actions_and_docker_calls() {
    let env = Env::start();
    env.create_svc("ev/svc", &[]);
    env.ok(&["ev/svc", "start"]);
    // Replay what happened, then follow: no race with the subscription.
    let child = Command::new(BIN)
        .args(["events", "--last", "1000", "--format", "json"])
        .env("BERTH_HOME", env.home())
        .stdout(Stdio::piped())
        .spawn()
        .expect("events");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut saw_target = false;
    let mut saw_docker_start = false;
    while !(saw_target && saw_docker_start) {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(20)) else {
            break;
        };
        let ev: serde_json::Value = serde_json::from_str(&line).expect("event json");
        assert!(ev["time"].is_string() && ev["seq"].is_u64());
        if ev["object"] == "ev/svc" && ev["what"] == "target state set to started" {
            saw_target = true;
        }
        if ev["docker"].as_str().is_some_and(|d| d.contains(" start ")) {
            assert_eq!(ev["object"], "ev/svc");
            assert_eq!(ev["rid"], "container#0", "{ev}");
            saw_docker_start = true;
        }
    }
    // Live events arrive too.
    env.ok(&["ev/svc", "freeze"]);
    let mut saw_live = false;
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(20)) {
        if line.contains("\"frozen\"") {
            saw_live = true;
            break;
        }
    }
    assert!(saw_live, "the live freeze event never arrived");
    assert!(saw_target && saw_docker_start);
    // Events persist: a replay after the fact sees them too.
    let replay = env.ok(&["events", "--last", "100", "--no-follow", "--format", "json"]);
    assert!(replay.contains("target state set to started"), "{replay}");
}

#[test]
fn json_exit_codes_follow_per_object_results() {
    let env = Env::start();
    env.create_svc("ex/good", &[]);
    env.ok(&[
        "create",
        "ex/bad",
        "--kw",
        &format!("container#0.image={ABSENT_IMAGE}"),
    ]);
    let out = env.berth(&["ex/*", "start", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let by_path = |p: &str| {
        v.as_array()
            .expect("array")
            .iter()
            .find(|o| o["path"] == p)
            .cloned()
            .expect("present")
    };
    assert_eq!(by_path("ex/good")["ok"], true);
    assert_eq!(by_path("ex/bad")["ok"], false);
    let st = env.json(&["ex/*", "print", "status"]);
    for s in st.as_array().expect("array") {
        for key in ["path", "avail", "frozen", "resources"] {
            assert!(!s[key].is_null(), "{key} missing in {s:#}");
        }
        assert!(s["resources"][0]["log"].is_array());
    }
    // unset and get round-trip.
    env.ok(&["ex/good", "set", "--kw", "app=APP1"]);
    assert_eq!(env.ok(&["ex/good", "get", "--kw", "app"]).trim(), "APP1");
    env.ok(&["ex/good", "unset", "--kw", "app"]);
    env.fails(&["ex/good", "get", "--kw", "app"]);
    env.ok(&["ex/good", "delete"]);
    assert!(docker(&["inspect", "ex..good.container.0"]).status.code() != Some(0));
    env.fails(&["ex/good", "ls"]);
}

#[test]
fn bulk_actions_show_a_progress_bar_on_a_terminal_only() {
    let env = Env::start();
    for i in 0..3 {
        env.create_svc(&format!("bar/s{i}"), &[]);
    }
    // `script` gives the command a pseudo-terminal.
    let cmd = format!("BERTH_HOME={} {BIN} 'bar/*' start", env.home().display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(
        tty.contains("start [") && tty.contains("/3"),
        "no progress bar on a tty:\n{tty}"
    );
    for i in 0..3 {
        assert!(tty.contains(&format!("bar/s{i}: ok")), "{tty}");
    }
    // Piped: per-object lines, no bar, no escape sequences.
    let piped = env.ok(&["bar/*", "stop"]);
    assert!(
        !piped.contains('\u{1b}') && !piped.contains("/3"),
        "{piped}"
    );
    assert_eq!(piped.matches(": ok").count(), 3, "{piped}");
    let json = env.ok(&["bar/*", "start", "--format", "json"]);
    assert!(!json.contains('\u{1b}'));
    serde_json::from_str::<serde_json::Value>(&json).expect("pure json on stdout");
}

#[test]
fn config_edits_keep_comments_order_and_spacing() {
    let env = Env::start();
    let original = format!(
        "# app1 production, owned by team1\n[DEFAULT]\nenv   =   PRD   \n; keep this\napp=APP1\n\n[container#0]\n# the main process\nimage = {IMAGE}\nrestart@{node} = 5\n",
        node = env.node
    );
    let file = env.home().join("in.conf");
    std::fs::write(&file, &original).expect("write");
    env.ok(&[
        "create",
        "lossless/svc",
        "--config",
        file.to_str().expect("utf8"),
    ]);
    let shown = env.ok(&["lossless/svc", "print", "config"]);
    // create adds the generated id and nothing else.
    let id_line = shown
        .lines()
        .find(|l| l.starts_with("id = "))
        .expect("id generated")
        .to_string();
    assert_eq!(shown.replacen(&format!("{id_line}\n"), "", 1), original);
    env.ok(&[
        "lossless/svc",
        "set",
        "--kw",
        "env=DEV",
        "--kw",
        "container#0.command=sleep 99",
    ]);
    env.ok(&["lossless/svc", "unset", "--kw", "app"]);
    let edited = env.ok(&["lossless/svc", "print", "config"]);
    let expected = shown
        .replace("env   =   PRD   ", "env   =   DEV")
        .replace("app=APP1\n", "")
        .replace(
            &format!("restart@{} = 5\n", env.node),
            &format!("restart@{} = 5\ncommand = sleep 99\n", env.node),
        );
    assert_eq!(edited, expected);
    // Node scoping: this node's value wins.
    assert_eq!(
        env.ok(&[
            "lossless/svc",
            "get",
            "--kw",
            "container#0.restart",
            "--eval"
        ])
        .trim(),
        "5"
    );
    // References expand in the effective config.
    env.ok(&[
        "lossless/svc",
        "set",
        "--kw",
        "container#0.hostname={name}-{namespace}",
    ]);
    assert_eq!(
        env.ok(&[
            "lossless/svc",
            "get",
            "--kw",
            "container#0.hostname",
            "--eval"
        ])
        .trim(),
        "svc-lossless"
    );
}
