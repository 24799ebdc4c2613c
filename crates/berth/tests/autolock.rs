//! Autolock: once enabled, no file of a manager holds the seal key in
//! clear; a restarted manager serves no secret until `berth cluster
//! unlock` gets the current key (a rotated-out key and garbage are
//! refused); disabling writes the seal key back.

mod common;

use common::remote::{text, Remote};
use common::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn with_stdin(env: &Env, args: &[&str], input: &str) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).env("BERTH_HOME", env.home());
    run_with_stdin(c, input)
}

fn identity(env: &Env) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(env.home().join("cluster/identity.json")).unwrap())
        .unwrap()
}

#[test]
fn a_restarted_manager_serves_no_secret_until_unlocked() {
    let mut r = Remote::new();
    let sec = format!("lock-{}/sec/db", r.tag);
    r.env.ok(&["create", &sec]);
    r.env
        .ok(&[&sec, "add", "--key", "password", "--value", "locked-value"]);
    let seal = identity(&r.env)["seal_key"]
        .as_str()
        .expect("a manager's seal key")
        .to_string();

    let k1 = r.env.ok(&["cluster", "autolock", "enable"]);
    let k1 = k1.trim().to_string();
    assert!(k1.starts_with("BERTH-UNLOCK-"), "{k1}");
    let said = r.env.fails(&["cluster", "autolock", "enable"]);
    assert!(said.contains("already on"), "{said}");
    let k2 = r.env.ok(&["cluster", "autolock", "rotate"]);
    let k2 = k2.trim().to_string();
    assert_ne!(k1, k2);
    let id = identity(&r.env);
    assert!(
        id["seal_key"].is_null() && id["seal_key_locked"].is_string(),
        "{id}"
    );
    let leaks = files_holding(r.env.home(), &[seal.as_bytes().to_vec()], None);
    assert!(leaks.is_empty(), "the seal key is in clear in {leaks:?}");

    r.env.stop_daemon();
    r.env.start_daemon();
    let said = r.env.fails(&[&sec, "decode", "--key", "password"]);
    assert!(said.contains("locked"), "{said}");
    assert!(!said.contains("locked-value"));
    for (key, why) in [
        (k1.as_str(), "wrong unlock key"),
        ("BERTH-UNLOCK-00", "not an unlock key"),
        ("hunter2", "starts with BERTH-UNLOCK-"),
    ] {
        let out = with_stdin(&r.env, &["cluster", "unlock"], &format!("{key}\n"));
        assert!(!out.status.success(), "{key} unlocked it");
        assert!(text(&out).contains(why), "{key}: {}", text(&out));
    }
    let said = r.env.fails(&[&sec, "decode", "--key", "password"]);
    assert!(said.contains("locked"), "{said}");
    // Nor does it stand for election: a lone manager has no leader.
    let status = r.env.json(&["cluster", "status"]);
    assert!(status["leader"].is_null(), "{status}");

    let out = with_stdin(&r.env, &["cluster", "unlock"], &format!("{k2}\n"));
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = r.env.berth(&[&sec, "decode", "--key", "password"]);
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "locked-value");
            break;
        }
        assert!(Instant::now() < deadline, "still refused: {}", text(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
    let said = with_stdin(&r.env, &["cluster", "unlock"], &format!("{k2}\n"));
    assert!(text(&said).contains("not locked"), "{}", text(&said));

    r.env.ok(&["cluster", "autolock", "disable"]);
    let id = identity(&r.env);
    assert_eq!(id["seal_key"].as_str(), Some(seal.as_str()), "{id}");
    assert!(id["seal_key_locked"].is_null(), "{id}");
}
