//! Warnings do not outlive their cause: `clear` removes them by hand, and
//! one whose condition is never seen again ages out after --warn-ttl.

mod common;
use common::*;

fn warned(s: &serde_json::Value) -> bool {
    let some = |v: &serde_json::Value| v.as_array().is_some_and(|a| !a.is_empty());
    some(&s["log"])
        || s["resources"]
            .as_array()
            .is_some_and(|rs| rs.iter().any(|r| some(&r["log"]) || r["failed"] == true))
}

/// Starts `p` on an image no registry has, so it warns, then freezes it:
/// no pass tries again, so nothing clears or renews the warning.
fn warn_then_freeze(env: &Env, p: &str) {
    let image = format!("container#0.image={ABSENT_IMAGE}");
    env.ok(&[
        "create",
        p,
        "--kw",
        &image,
        "--kw",
        "container#0.pull_policy=missing",
    ]);
    env.fails(&[p, "start"]);
    env.wait_status(p, 30, warned);
    env.ok(&[p, "freeze"]);
}

#[test]
fn clear_removes_warnings_by_hand() {
    let env = Env::start();
    let p = "warn1/svc";
    warn_then_freeze(&env, p);
    assert!(env.ok(&["mon", p]).contains('!'));
    env.ok(&[p, "clear"]);
    let s = env.status(p);
    assert!(!warned(&s), "{s:#}");
    let mon = env.ok(&["mon", p]);
    assert!(!mon.contains('!'), "{mon}");
}

#[test]
fn a_warning_ages_out_after_the_warn_ttl() {
    let env = Env::start_with(&["--warn-ttl", "3s"]);
    let p = "warn2/svc";
    warn_then_freeze(&env, p);
    // The resync (2 s in tests) rebuilds the status; the warning is gone
    // once it is older than 3 s.
    env.wait_status(p, 30, |s| !warned(s));
}
