//! The remote API on a worker (netns bed): a login there is forwarded to
//! the leader, which checks the password and signs the token; a wrong
//! password gets the same refusal as on a manager, recorded by the leader
//! with the worker as the node it came through.

mod common;
use common::testbed::{Node, Testbed};
use common::{run_with_stdin, unique, BIN};
use std::process::{Command, Output};

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn login(server: &str, cfg: &std::path::Path, user: &str, pw: &str, fp: &str) -> Output {
    let mut c = Command::new(BIN);
    c.args(["login", server, "--user", user, "--password-stdin"])
        .args(["--ca-sha256", fp])
        .env("BERTH_CONFIG_DIR", cfg);
    run_with_stdin(c, &format!("{pw}\n"))
}

fn create_user(n0: &Node, name: &str, grant: &str, pw: &str) {
    let mut c = Command::new(BIN);
    c.args(["user", "create", name, "--grant", grant, "--password-stdin"])
        .env("BERTH_HOME", n0.home());
    let out = run_with_stdin(c, &format!("{pw}\n"));
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_login_on_a_workers_remote_api_is_checked_and_signed_by_the_leader() {
    let bed = Testbed::with_args(2, &["--api-addr", "{addr}:7947"]);
    bed.form_cluster(1);
    let n0 = &bed.nodes[0];
    let ns = unique("wl");
    let user = format!("alice{}", ns.replace('x', ""));
    create_user(n0, &user, &format!("guest:{ns}"), "alice password");
    let fp = n0
        .ok(&["cluster", "token"])
        .trim()
        .strip_prefix("BERTH-1-")
        .and_then(|t| t.split('-').next())
        .expect("a join token")
        .to_string();
    let cfg = tempfile::tempdir().expect("tempdir");
    let worker = format!("https://{}:7947", bed.nodes[1].addr);

    let bad = login(&worker, cfg.path(), &user, "not it", &fp);
    assert!(!bad.status.success());
    assert!(
        text(&bad).contains("wrong user name or password"),
        "{}",
        text(&bad)
    );
    let out = login(&worker, cfg.path(), &user, "alice password", &fp);
    assert!(out.status.success(), "{}", text(&out));
    let who = Command::new(BIN)
        .args(["--server", &worker, "whoami"])
        .env("BERTH_CONFIG_DIR", cfg.path())
        .output()
        .expect("whoami");
    assert!(
        who.status.success() && text(&who).contains(&user),
        "{}",
        text(&who)
    );
    // The leader recorded the refusal, saying it came in on the worker.
    let audit = n0.json(&["audit", "--user", &user, "--refused"]);
    assert!(
        audit
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["action"] == "login"
                && r["source"]
                    .as_str()
                    .is_some_and(|s| s.ends_with(&format!(" on {}", bed.nodes[1].name))))),
        "{audit}"
    );
}
