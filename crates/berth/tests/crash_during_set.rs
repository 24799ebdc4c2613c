//! SIGKILL of the daemon in the middle of `set` leaves the old or the new
//! config, never a torn one, and the daemon comes back with file and
//! desired state agreeing.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn env_in_file(env: &Env) -> String {
    let text = std::fs::read_to_string(env.config_file("kill", "svc")).expect("config readable");
    text.lines()
        .find_map(|l| l.strip_prefix("env = ").map(str::to_string))
        .unwrap_or_default()
}

fn spawn_set(env: &Env, value: &str) -> std::process::Child {
    Command::new(BIN)
        .args(["kill/svc", "set", "--kw", &format!("env={value}")])
        .env("BERTH_HOME", env.home())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn set")
}

#[test]
fn sigkill_inside_the_write_window_keeps_the_old_config() {
    let mut env = Env::start();
    env.create_svc("kill/svc", &["env=OLD"]);
    let file = env.config_file("kill", "svc");
    let before = std::fs::read_to_string(&file).expect("read");
    // The daemon now pauses between staging the new file and renaming it.
    env.restart_daemon_with_env("BERTH_FAULT_COMMIT_DELAY_MS", "3000");
    let child = spawn_set(&env, "NEW");
    // Wait until the new text is staged: the kill then lands inside the window.
    let dir = file.parent().expect("dir").to_path_buf();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().contains(".tmp."))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the edit never staged its file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    env.kill_daemon();
    let out = child.wait_with_output().expect("set exits");
    assert!(
        !out.status.success(),
        "the interrupted set must not report success"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        before,
        "old config expected"
    );
    env.restart_daemon_with_env("BERTH_FAULT_COMMIT_DELAY_MS", "0");
    assert_eq!(env.ok(&["kill/svc", "get", "--kw", "env"]).trim(), "OLD");
    // The restarted daemon removed the staged file the killed one left.
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The leftover staged file does not confuse later edits.
    env.ok(&["kill/svc", "set", "--kw", "env=AFTER"]);
    assert_eq!(env_in_file(&env), "AFTER");
}

#[test]
fn sigkill_at_varying_points_leaves_old_or_new_and_file_and_store_agree() {
    let mut env = Env::start();
    env.create_svc("kill/svc", &["env=INIT"]);
    let file = env.config_file("kill", "svc");
    for round in 0..6u64 {
        let before = std::fs::read_to_string(&file).expect("read");
        let value = format!("v{round}{}", "x".repeat(4096));
        let child = spawn_set(&env, &value);
        std::thread::sleep(Duration::from_millis(round * 4));
        env.kill_daemon();
        let _ = child.wait_with_output();
        let after = std::fs::read_to_string(&file).expect("config still readable");
        if after.contains(&value) {
            assert!(
                after.contains("[container#0]") && after.ends_with('\n'),
                "torn write:\n{after}"
            );
        } else {
            assert_eq!(after, before, "neither old nor new");
        }
        let old_value = before
            .lines()
            .find_map(|l| l.strip_prefix("env = "))
            .unwrap_or_default()
            .to_string();
        env.start_daemon();
        // Desired state is the commit point: the file may still hold the
        // old text when the new one was committed, and then follows it.
        // Within one resync file and store agree, on the old or the new.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let stored = env
                .ok(&["kill/svc", "get", "--kw", "env"])
                .trim()
                .to_string();
            let on_disk = env_in_file(&env);
            if stored == on_disk {
                assert!(
                    stored == old_value || stored == value,
                    "neither old nor new: {stored:?}"
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "store {stored:?} != file {on_disk:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    env.ok(&["kill/svc", "set", "--kw", "env=FINAL"]);
    assert_eq!(env_in_file(&env), "FINAL");
}
