//! The Consul-compatible KV and sessions on the 3-node bed: replicated to
//! every node, through a leader kill.

mod common;

use common::testbed::{Node, Testbed};
use common::wait_until;
use serde_json::Value;
use std::time::{Duration, Instant};

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

/// One A query to `server`; the response code and the number of answers,
/// or `None` without an answer within a second.
fn query_a(sock: &std::net::UdpSocket, server: &str, name: &str, id: u16) -> Option<(u8, u16)> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    sock.send_to(&q, server).ok()?;
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        let (n, _) = sock.recv_from(&mut buf).ok()?;
        if n >= 12 && buf[..2] == id.to_be_bytes() {
            return Some((buf[3] & 0x0f, u16::from_be_bytes([buf[6], buf[7]])));
        }
    }
    None
}

fn dns_a(node: &Node, name: &str) -> Vec<String> {
    let out = std::process::Command::new("dig")
        .args([
            "@".to_string() + &node.addr,
            "-p".into(),
            "8600".into(),
            "+short".into(),
            "+time=1".into(),
            name.into(),
        ])
        .output()
        .expect("dig");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

fn register_service(node: &Node, name: &str) {
    let body = format!(
        r#"{{"Name":"{name}","ID":"{name}-{}","Port":80}}"#,
        node.name
    );
    let (code, text) = consul(node, "PUT", "/v1/agent/service/register", Some(&body));
    assert_eq!(code, 200, "{text}");
}

#[test]
fn dns_never_answers_nxdomain_for_a_running_service_through_a_leader_kill() {
    let mut bed = Testbed::new(3);
    bed.form_cluster(3);
    let lead = leader(&bed, 0);
    let survivors: Vec<usize> = (0..3).filter(|i| *i != lead).collect();
    let owner = survivors[0];
    register_service(&bed.nodes[owner], "steady");
    let asked = survivors[1];
    let server = format!("{}:8600", bed.nodes[asked].addr);
    wait_until("the service in the survivor's DNS", 10, || {
        dns_a(&bed.nodes[asked], "steady.service.berth").len() == 1
    });
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let (tx, rx) = std::sync::mpsc::channel();
    let loop_server = server.clone();
    let looper = std::thread::spawn(move || {
        let mut results = Vec::with_capacity(2000);
        let until = Instant::now() + Duration::from_secs(90);
        for i in 0..2000u16 {
            if i == 200 {
                let _ = tx.send(());
            }
            if Instant::now() > until {
                break;
            }
            results.push(query_a(&sock, &loop_server, "steady.service.berth", i));
            std::thread::sleep(Duration::from_millis(2));
        }
        results
    });
    rx.recv().expect("the loop started");
    kill_leader(&mut bed, asked);
    let results = looper.join().expect("the query loop");
    assert_eq!(results.len(), 2000, "the loop ran out of time");
    let nx = results.iter().filter(|r| matches!(r, Some((3, _)))).count();
    let empty = results.iter().filter(|r| matches!(r, Some((0, 0)))).count();
    let lost = results.iter().filter(|r| r.is_none()).count();
    assert_eq!(
        (nx, empty, lost),
        (0, 0, 0),
        "NXDOMAIN, empty and unanswered out of 2000"
    );
}

#[test]
fn a_killed_nodes_services_turn_critical_everywhere_and_its_sessions_end() {
    let mut bed = Testbed::new(3);
    bed.form_cluster(3);
    for i in 0..3 {
        register_service(&bed.nodes[i], "everywhere");
    }
    for i in 0..3 {
        wait_until("all three instances in DNS", 15, || {
            dns_a(&bed.nodes[i], "everywhere.service.berth").len() == 3
        });
    }
    let lead = leader(&bed, 0);
    let victim = (0..3).find(|i| *i != lead).expect("a follower");
    let survivors: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    let s = session(&bed.nodes[victim], "on-the-victim");
    let (_, ok) = consul(
        &bed.nodes[victim],
        "PUT",
        &format!("/v1/kv/held?acquire={s}"),
        Some("x"),
    );
    assert_eq!(ok.trim(), "true");
    let dead_addr = bed.nodes[victim].addr.clone();
    let t0 = Instant::now();
    bed.kill(victim);
    for &i in &survivors {
        wait_until("the dead node's instance out of DNS", 15, || {
            let a = dns_a(&bed.nodes[i], "everywhere.service.berth");
            a.len() == 2 && !a.contains(&dead_addr)
        });
    }
    eprintln!(
        "out of every survivor's DNS {:?} after the kill",
        t0.elapsed()
    );
    let (_, health) = consul(
        &bed.nodes[survivors[0]],
        "GET",
        "/v1/health/service/everywhere",
        None,
    );
    let v: Value = serde_json::from_str(&health).expect("json");
    let critical: Vec<&str> = v
        .as_array()
        .expect("a list")
        .iter()
        .filter(|e| {
            e["Checks"]
                .as_array()
                .is_some_and(|c| c.iter().any(|c| c["Status"] == "critical"))
        })
        .filter_map(|e| e["Node"]["Node"].as_str())
        .collect();
    assert_eq!(critical, [bed.nodes[victim].name.as_str()]);
    // Its session is invalidated: the lock is free again.
    wait_until("the dead node's session to end", 15, || {
        holder(&bed.nodes[survivors[0]], "held").is_none()
    });
}
