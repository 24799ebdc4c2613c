//! `berth kv`: the KV store through the CLI, with the Consul API off.

mod common;

use common::{unique, Env};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn put_get_ls_cas_and_delete() {
    let env = Env::start();
    let p = unique("kv");
    let k = |s: &str| format!("{p}/{s}");
    assert_eq!(
        env.ok(&["kv", "put", &k("a"), "one"]).trim(),
        format!("written: {}", k("a"))
    );
    env.ok(&["kv", "put", &k("dir/b"), "two"]);
    assert_eq!(env.ok(&["kv", "get", &k("a")]), "one\n");
    let all = env.ok(&["kv", "get", &format!("{p}/"), "--recurse"]);
    assert_eq!(all, format!("{}:one\n{}:two\n", k("a"), k("dir/b")));
    let ls = env.ok(&["kv", "ls", &format!("{p}/")]);
    assert_eq!(ls, format!("{}\n{}\n", k("a"), k("dir/")));

    let got = env.json(&["kv", "get", &k("a")]);
    let index = got["entries"][0]["ModifyIndex"].as_u64().expect("index");
    // A stale cas writes nothing and fails; the current one writes.
    let stale = env.fails(&[
        "kv",
        "put",
        &k("a"),
        "lost",
        "--cas",
        &(index - 1).to_string(),
    ]);
    assert!(stale.contains("ModifyIndex"), "{stale}");
    assert_eq!(env.ok(&["kv", "get", &k("a")]), "one\n");
    env.ok(&["kv", "put", &k("a"), "won", "--cas", &index.to_string()]);
    assert_eq!(env.ok(&["kv", "get", &k("a")]), "won\n");
    assert!(env
        .fails(&["kv", "put", &k("a"), "x", "--cas", "0"])
        .contains("exists"));

    env.ok(&["kv", "del", &format!("{p}/"), "--recurse"]);
    let missing = env.fails(&["kv", "get", &k("a")]);
    assert!(missing.contains("no such key"), "{missing}");
    let bad = env.fails(&["kv", "put", &format!("{p}/../x"), "v"]);
    assert!(bad.contains("invalid key"), "{bad}");
}

#[test]
fn watch_prints_the_state_then_every_change() {
    let env = Env::start();
    let key = format!("{}/watched", unique("kv"));
    env.ok(&["kv", "put", &key, "first"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["kv", "watch", &key, "--format", "json"])
        .env("BERTH_HOME", env.home())
        .stdout(Stdio::piped())
        .spawn()
        .expect("watch");
    let out = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let wait = Duration::from_secs(20);
    let value = |line: &str| {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        v["entries"][0]["Value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let first = lines.recv_timeout(wait).expect("a first event");
    assert_eq!(value(&first), "Zmlyc3Q=", "{first}"); // "first"
    env.ok(&["kv", "put", &key, "second"]);
    let next = lines.recv_timeout(wait).expect("a second event");
    assert_eq!(value(&next), "c2Vjb25k", "{next}"); // "second"
    let _ = child.kill();
    let _ = child.wait();
}
