//! The audit trail, end to end: every change and every refusal recorded,
//! filtered, exported, relayed into the events, and compacted.

mod common;

use common::remote::Remote;
use common::*;
use std::time::Duration;

fn audit(env: &Env, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    env.json(&all).as_array().cloned().unwrap_or_default()
}

#[test]
fn every_change_and_every_refusal_is_in_the_audit_trail() {
    let r = Remote::new();
    let (app1, app2) = (format!("app1-{}", r.tag), format!("app2-{}", r.tag));
    r.env.create_svc(&format!("{app1}/web"), &[]);
    r.env.create_svc(&format!("{app2}/web"), &[]);
    r.pin_ca();
    r.user("alice", Some(&format!("operator:{app1}")), None);
    let token = r.token("alice", "1h");
    let id = berth_auth::token::peek(&token).unwrap().id;

    assert!(r
        .remote(
            Some(&token),
            &[&format!("{app1}/web"), "set", "--kw", "env=A"]
        )
        .status
        .success());
    assert!(!r
        .remote(
            Some(&token),
            &[&format!("{app2}/web"), "set", "--kw", "env=A"]
        )
        .status
        .success());
    assert!(!r
        .remote(Some(&token), &[&format!("{app1}/web"), "delete"])
        .status
        .success());
    assert!(!r.remote(Some(&token), &["user", "ls"]).status.success());
    assert!(!r.remote(Some("berth1.x.y"), &["ls"]).status.success());
    let bad = r.login("alice", "not a password", &[]);
    assert!(!bad.status.success());

    // Refusals are recorded in tasks of their own: wait for the last.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let records = loop {
        let all = audit(&r.env, &["--user", "alice"]);
        let logins = all.iter().filter(|x| x["action"] == "login").count();
        if logins > 0 || std::time::Instant::now() > deadline {
            break all;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let find = |action: &str, object: &str, outcome: &str| {
        records
            .iter()
            .find(|x| x["action"] == action && x["object"] == object && x["outcome"] == outcome)
    };
    let set = find("set", &format!("{app1}/web"), "allowed")
        .unwrap_or_else(|| panic!("no allowed set in {records:#?}"));
    assert_eq!(set["token"], id);
    assert!(
        set["source"]
            .as_str()
            .unwrap()
            .starts_with("https 127.0.0.1:"),
        "{set}"
    );
    let refused = find("set", &format!("{app2}/web"), "refused").expect("refused set");
    assert!(
        refused["reason"].as_str().unwrap().contains("may not"),
        "{refused}"
    );
    assert!(
        find("delete", &format!("{app1}/web"), "refused").is_some(),
        "{records:#?}"
    );
    assert!(find("administer", "", "refused").is_some(), "{records:#?}");
    let login = find("login", "", "refused").unwrap_or_else(|| panic!("{records:#?}"));
    assert!(
        login["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https 127.0.0.1:")),
        "a refused login says where it came from: {login}"
    );
    // A token that does not verify is recorded under the name it claims.
    assert!(audit(&r.env, &["--refused"])
        .iter()
        .any(|x| x["action"] == "authenticate"));
    // Filters: by object, refusals only.
    let only2 = audit(&r.env, &["--object", &format!("{app2}/*")]);
    assert!(
        !only2.is_empty()
            && only2
                .iter()
                .all(|x| x["object"].as_str().unwrap().starts_with(&app2))
    );
    assert!(audit(&r.env, &["--user", "alice", "--refused"])
        .iter()
        .all(|x| x["outcome"] == "refused"));
    // Root's own changes are there too, node and cluster administration
    // included, and the records reach the events.
    let node = r.env.node.clone();
    r.env.ok(&["node", &node, "label", "--kw", "zone=a"]);
    r.env.ok(&["cluster", "token", "--rotate"]);
    let root = audit(&r.env, &["--user", "root"]);
    assert!(root.iter().any(|x| x["action"] == "user put"));
    assert!(
        root.iter()
            .any(|x| x["action"] == "node label" && x["object"] == node.as_str()),
        "{root:#?}"
    );
    assert!(
        root.iter()
            .any(|x| x["action"] == "worker join token rotate" && x["object"] == "cluster"),
        "{root:#?}"
    );
    let events = r.env.ok(&["events", "--no-follow", "--last", "500"]);
    assert!(events.contains("audit: alice"), "{events}");
    // Export: one JSON object per line.
    let export = r.env.ok(&["audit", "--export", "--user", "alice"]);
    for line in export.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("a JSON line");
    }
    assert_eq!(export.lines().count(), records.len());
}

#[test]
fn audit_records_past_their_retention_are_compacted() {
    let env = Env::start_with(&["--audit-retention", "2s"]);
    env.ok(&["user", "create", "temp"]);
    assert!(!audit(&env, &[]).is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !audit(&env, &[]).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "records outlived their retention"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
