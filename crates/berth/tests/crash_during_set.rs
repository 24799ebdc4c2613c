//! SIGKILL of the daemon in the middle of `set` leaves the old or the new
//! config, never a torn one.

mod common;
use common::*;
use std::time::Duration;

#[test]
fn sigkill_during_set_leaves_old_or_new_config() {
    let mut env = Env::start();
    env.create_svc("kill/svc", &[]);
    let file = env.config_file("kill", "svc");
    let original = std::fs::read_to_string(&file).expect("read");
    let mut seen_old = 0;
    let mut seen_new = 0;
    for round in 0..8u64 {
        let before = std::fs::read_to_string(&file).expect("read");
        let value = format!("v{round}{}", "x".repeat(4096));
        let child = std::process::Command::new(BIN)
            .args(["kill/svc", "set", "--kw", &format!("env={value}")])
            .env("BERTH_HOME", env.home())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn set");
        // Vary the kill point across rounds.
        std::thread::sleep(Duration::from_millis(round * 3));
        env.kill_daemon();
        let _ = child.wait_with_output();
        let after = std::fs::read_to_string(&file).expect("config still readable");
        let new = after.contains(&value);
        if new {
            seen_new += 1;
            assert!(
                after.contains("[container#0]") && after.ends_with('\n'),
                "torn write:\n{after}"
            );
        } else {
            seen_old += 1;
            assert_eq!(after, before, "neither old nor new");
        }
        env.start_daemon();
        // The daemon starts from a consistent state and accepts edits.
        let st = env.status("kill/svc");
        assert!(st["log"].to_string().find("invalid").is_none(), "{st:#}");
    }
    assert_eq!(seen_old + seen_new, 8);
    let image = env.ok(&["kill/svc", "get", "--kw", "container#0.image"]);
    assert_eq!(image.trim(), IMAGE);
    assert!(std::fs::read_to_string(&file)
        .expect("read")
        .starts_with(&original[..original.find('\n').unwrap_or(0)]));
}
