//! The Raft files do not only grow: a large value set and removed again
//! leaves them small, once the log is snapshotted and purged (its
//! segments deleted) and the state machine's file compacted.

mod common;
use common::*;
use std::time::{Duration, Instant};

/// The bytes of the Raft log (its segment files, or an older version's
/// log file) and of the state machine's file.
fn raft_bytes(env: &Env) -> (u64, u64) {
    let mut log = 0;
    let mut sm = 0;
    for e in std::fs::read_dir(env.home()).expect("home").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        if !name.starts_with("raft-") {
            continue;
        }
        if name.ends_with(".sm.redb") {
            sm += len;
        } else if name.ends_with(".redb") {
            log += len;
        } else if name.ends_with(".wal") {
            log += std::fs::read_dir(e.path())
                .expect("log dir")
                .flatten()
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
        }
    }
    (log, sm)
}

#[test]
fn a_large_value_set_and_removed_leaves_the_raft_files_small() {
    let env = Env::start();
    let p = "rfiles/svc";
    env.create_svc(p, &[]);
    let file = env.config_file("rfiles", "svc");
    let original = std::fs::read_to_string(&file).expect("config");
    // A 10 MB value, by hand: the CLI's arguments and the API's bodies
    // are smaller.
    let big = "x".repeat(10_000_000);
    let edited = original.replacen("[DEFAULT]\n", &format!("[DEFAULT]\nenv = {big}\n"), 1);
    assert_ne!(edited, original);
    std::fs::write(&file, &edited).expect("hand edit");
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.berth(&[p, "get", "--kw", "env"]).stdout.len() < big.len() {
        assert!(Instant::now() < deadline, "the hand edit was not applied");
        std::thread::sleep(Duration::from_millis(300));
    }
    let (log, sm) = raft_bytes(&env);
    assert!(
        log > 10_000_000 && sm > 10_000_000,
        "log {log}, state machine {sm}"
    );
    std::fs::write(&file, &original).expect("revert");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (log, sm) = raft_bytes(&env);
        if log < 4 << 20 && sm < 4 << 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "raft files still log {log}, state machine {sm} bytes"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Nothing was lost on the way.
    assert!(env.berth(&[p, "get", "--kw", "env"]).stdout.is_empty());
    assert!(env.ok(&[p, "print", "config"]).contains("container#0"));
    env.ok(&[p, "start"]);
    env.wait_status(p, 30, |s| s["avail"] == "up");
}
