//! The Consul-compatible KV and sessions on the 3-node bed: replicated to
//! every node, through a leader kill.

mod common;

use common::testbed::{Node, Testbed};
use serde_json::Value;
use std::time::{Duration, Instant};

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// curl against the node's own Consul API (its default address, in its
/// namespace): the status code and the body.
fn consul(node: &Node, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut c = node.nsenter("curl");
    c.args(["-s", "-m", "20", "-X", method, "-w", "\n%{http_code}"]);
    if let Some(b) = body {
        c.args(["--data-binary", b]);
    }
    let out = c
        .arg(format!("http://127.0.0.1:8500{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn leader(bed: &Testbed, ask: usize) -> usize {
    let v = bed.nodes[ask].json(&["cluster", "status"]);
    v["leader"]
        .as_str()
        .and_then(|l| l.trim_start_matches("node").parse().ok())
        .expect("a leader")
}

fn kv_get(node: &Node, key: &str) -> Option<String> {
    let out = node.berth(&["kv", "get", key]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Kills the leader; returns its index once a survivor leads.
fn kill_leader(bed: &mut Testbed, ask: usize) -> usize {
    let old = leader(bed, ask);
    bed.kill(old);
    wait_until("a new leader", 20, || {
        let v = bed.nodes[ask].json(&["cluster", "status"]);
        v["leader"]
            .as_str()
            .is_some_and(|l| l != format!("node{old}"))
    });
    old
}

#[test]
fn a_kv_write_on_a_follower_is_read_everywhere_and_survives_a_leader_kill() {
    let mut bed = Testbed::new(3);
    bed.form_cluster(3);
    let lead = leader(&bed, 0);
    let follower = (0..3).find(|i| *i != lead).expect("a follower");
    // Through the CLI on the follower, and through Consul's API on it.
    bed.nodes[follower].ok(&["kv", "put", "cfg/a", "from-a-follower"]);
    let (code, body) = consul(
        &bed.nodes[follower],
        "PUT",
        "/v1/kv/cfg/b",
        Some("over-http"),
    );
    assert_eq!((code, body.trim()), (200, "true"));
    for i in 0..3 {
        wait_until("the write on every node", 10, || {
            kv_get(&bed.nodes[i], "cfg/a").as_deref() == Some("from-a-follower")
                && consul(&bed.nodes[i], "GET", "/v1/kv/cfg/b?raw", None).1 == "over-http"
        });
    }
    let ask = follower;
    let old = kill_leader(&mut bed, ask);
    let alive: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    for &i in &alive {
        assert_eq!(
            kv_get(&bed.nodes[i], "cfg/a").as_deref(),
            Some("from-a-follower")
        );
        // A linearizable read goes through the new leader.
        let (code, body) = consul(&bed.nodes[i], "GET", "/v1/kv/cfg/b?raw&consistent", None);
        assert_eq!((code, body.as_str()), (200, "over-http"));
    }
    bed.nodes[alive[0]].ok(&["kv", "put", "cfg/c", "after"]);
    wait_until("a write after the election", 10, || {
        kv_get(&bed.nodes[alive[1]], "cfg/c").as_deref() == Some("after")
    });
}

fn session(node: &Node, name: &str) -> String {
    let body = format!(r#"{{"Name":"{name}","TTL":"10s","LockDelay":"1s"}}"#);
    let (code, text) = consul(node, "PUT", "/v1/session/create", Some(&body));
    assert_eq!(code, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    v["ID"].as_str().expect("an ID").to_string()
}

fn holder(node: &Node, key: &str) -> Option<String> {
    let (code, text) = consul(node, "GET", &format!("/v1/kv/{key}"), None);
    if code != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&text).ok()?;
    v[0]["Session"].as_str().map(str::to_string)
}

#[test]
fn a_lock_has_exactly_one_holder_across_a_leader_kill() {
    let mut bed = Testbed::new(3);
    bed.form_cluster(3);
    let lead = leader(&bed, 0);
    let others: Vec<usize> = (0..3).filter(|i| *i != lead).collect();
    let (a, b) = (&bed.nodes[others[0]], &bed.nodes[others[1]]);
    let sa = session(a, "a");
    let sb = session(b, "b");
    let acquire =
        |n: &Node, s: &str| consul(n, "PUT", &format!("/v1/kv/svc/leader?acquire={s}"), Some(s)).1;
    assert_eq!(acquire(a, &sa).trim(), "true");
    assert_eq!(acquire(b, &sb).trim(), "false");
    let (a_idx, b_idx) = (others[0], others[1]);
    kill_leader(&mut bed, a_idx);
    let (a, b) = (&bed.nodes[a_idx], &bed.nodes[b_idx]);
    // The holder keeps it, and the other session still cannot take it,
    // on either survivor, for longer than the lock-delay.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        for n in [a, b] {
            assert_eq!(holder(n, "svc/leader").as_deref(), Some(sa.as_str()));
        }
        assert_eq!(acquire(b, &sb).trim(), "false", "two holders");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The leader change did not expire the sessions.
    let (_, info) = consul(a, "GET", &format!("/v1/session/info/{sa}"), None);
    assert!(info.contains(&sa), "{info}");
    // Released by its holder, the lock goes to the other.
    let (_, r) = consul(a, "PUT", &format!("/v1/kv/svc/leader?release={sa}"), None);
    assert_eq!(r.trim(), "true");
    assert_eq!(acquire(b, &sb).trim(), "true");
    assert_eq!(
        holder(a, "svc/leader").as_deref().map(|h| h == sb),
        Some(true)
    );
}
