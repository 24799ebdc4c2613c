//! A full disk degrades the store: writes fail with the file and the
//! cause, reads go on, `daemon status` says so, and writes work again
//! once space is freed, with no restart.

mod common;
use common::*;
use std::io::Write;
use std::time::{Duration, Instant};

/// Writes zeros to `path` until the file system is full.
fn fill(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).expect("create filler");
    let block = vec![0u8; 64 << 10];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

fn code(out: &std::process::Output) -> Option<i32> {
    out.status.code()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_full_disk_degrades_the_store_until_space_is_freed() {
    let env = Env::start_on_tmpfs("2m");
    let p = "dfull/a";
    env.create_svc(p, &[]);
    let pid = env.json(&["daemon", "status"])["pid"].clone();
    let filler = env.home().join("filler");
    fill(&filler);

    // redb's files have room left inside: changes go on until the Raft
    // log must grow. Then a change fails clearly: exit code 1 (not bad
    // input), naming the file and the cause.
    let mut failed = None;
    for i in 0..2000 {
        let out = env.berth(&[p, if i % 2 == 0 { "freeze" } else { "thaw" }]);
        if !out.status.success() {
            failed = Some(out);
            break;
        }
    }
    let failed = failed.expect("a write to fail on a full disk");
    assert_eq!(code(&failed), Some(1), "{}", text(&failed));
    assert!(
        text(&failed).contains("raft log raft-")
            && text(&failed).contains("No space left on device"),
        "{}",
        text(&failed)
    );
    let set = env.berth(&[p, "set", "--kw", "env=DEV"]);
    assert_eq!(code(&set), Some(1), "{}", text(&set));
    assert!(
        text(&set).contains("No space left on device"),
        "{}",
        text(&set)
    );

    // A start on the full disk: what it reports is what happened. It
    // fails before any container exists, or says its outcome is unknown.
    let start = env.berth(&[p, "start"]);
    let running = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=berth.path={p}"),
        "--filter",
        &format!("label=berth.node={}", env.node),
    ]);
    let running = !String::from_utf8_lossy(&running.stdout).trim().is_empty();
    if start.status.success() {
        assert!(running, "start said it worked: {}", text(&start));
    } else {
        assert_eq!(code(&start), Some(1), "{}", text(&start));
        assert!(
            !running || text(&start).contains("outcome unknown"),
            "start failed, yet its container runs: {}",
            text(&start)
        );
    }

    // Reads are served.
    assert!(env.ok(&["ls"]).contains(p));
    assert!(env.ok(&[p, "print", "config"]).contains("container#0"));
    let status = env.berth(&["daemon", "status", "--format", "json"]);
    assert_eq!(code(&status), Some(1), "{}", text(&status));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(v["store"]["state"], "degraded", "{v:#}");
    assert!(
        v["store"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device")),
        "{v:#}"
    );

    // Free the space: writes work again, without a restart.
    std::fs::remove_file(&filler).expect("remove filler");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = env.berth(&[p, "set", "--kw", "env=DEV"]);
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not resume: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    env.ok(&[p, "start"]);
    env.wait_status(p, 30, |s| s["avail"] == "up");
    let after = env.json(&["daemon", "status"]);
    assert_eq!(after["store"]["state"], "ok", "{after:#}");
    assert_eq!(after["pid"], pid, "the daemon was restarted");
    assert_eq!(env.ok(&[p, "get", "--kw", "env"]).trim(), "DEV");
}
