//! The cluster on the multi-node bed: join, status, mTLS refusal, token
//! rotation, failover after a node crash, leader loss, flex spread.

mod common;
use common::testbed::Testbed;
use common::wait_until;
use common::{Env, IMAGE};
use std::process::Command;
use std::time::Duration;

/// Creates `path` on `node` with the test image and `extra` keywords.
fn create(node: &common::testbed::Node, path: &str, extra: &[&str]) {
    let image = format!("container#0.image={IMAGE}");
    let mut args = vec!["create", path, "--kw", &image];
    for kw in extra {
        args.extend_from_slice(&["--kw", kw]);
    }
    node.ok(&args);
}

/// Creates and starts an `orchestrate=ha` failover service through node0
/// and waits until one node runs its container `name`: that node's name
/// and index.
fn start_failover(bed: &Testbed, path: &str, name: &str) -> (String, usize) {
    let n0 = &bed.nodes[0];
    create(n0, path, &["orchestrate=ha"]);
    n0.ok(&[path, "start"]);
    wait_until("the service to run on one node", 30, || {
        runners(bed, name).len() == 1
    });
    let owner = runners(bed, name)[0].clone();
    let idx = owner
        .trim_start_matches("node")
        .parse()
        .expect("node index");
    (owner, idx)
}

/// Where each node of the bed runs a container named `name`.
fn runners(bed: &Testbed, name: &str) -> Vec<String> {
    bed.nodes
        .iter()
        .filter(|n| n.running().iter().any(|c| c == name))
        .map(|n| n.name.clone())
        .collect()
}

#[test]
fn nodes_join_and_the_listener_refuses_strangers() {
    let bed = Testbed::new(3);
    bed.form_cluster(2);
    let v = bed.nodes[2].json(&["cluster", "status"]);
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 3, "{v:#}");
    assert_eq!(v["leader"], "node0", "{v:#}");
    let role = |name: &str| {
        nodes
            .iter()
            .find(|n| n["name"] == name)
            .map(|n| (n["role"].clone(), n["voter"].clone()))
            .expect("node listed")
    };
    assert_eq!(role("node1"), ("manager".into(), true.into()));
    assert_eq!(role("node2"), ("worker".into(), false.into()));

    let leader = bed.nodes[0].advertise();
    // Plaintext: no TLS, no answer.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            &format!("http://{leader}/node/v1/view"),
        ])
        .output()
        .expect("curl");
    assert!(!out.status.success(), "plaintext was answered");
    // TLS without a client certificate: only the join endpoints answer.
    let out = Command::new("curl")
        .args([
            "-sk",
            "--http2",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-d",
            "null",
            &format!("https://{leader}/node/v1/view"),
        ])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    // A certificate from another CA fails the handshake.
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("k.pem");
    let crt = dir.path().join("c.pem");
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-keyout",
            &key.display().to_string(),
            "-out",
            &crt.display().to_string(),
        ])
        .args(["-days", "1", "-subj", "/CN=intruder"])
        .output()
        .expect("openssl");
    assert!(made.status.success());
    let out = Command::new("curl")
        .args([
            "-sk",
            "--http2",
            "--max-time",
            "5",
            "--cert",
            &crt.display().to_string(),
        ])
        .args([
            "--key",
            &key.display().to_string(),
            "-X",
            "POST",
            "-d",
            "null",
        ])
        .arg(format!("https://{leader}/node/v1/view"))
        .output()
        .expect("curl");
    assert!(
        !out.status.success(),
        "a foreign-CA certificate was served: {out:?}"
    );

    // Token rotation: the old worker token is refused, the new one pins.
    let old = bed.nodes[0].ok(&["cluster", "token"]);
    let new = bed.nodes[1].ok(&["cluster", "token", "--rotate"]);
    assert_ne!(old.trim(), new.trim());
    let joiner = Env::start();
    let refused = joiner.fails(&[
        "cluster",
        "join",
        &leader,
        "--token",
        old.trim(),
        "--advertise",
        "127.0.0.1:7946",
    ]);
    assert!(refused.contains("not valid"), "{refused}");
    // A token pinning another CA is refused before it is sent.
    let mut forged = new.trim().to_string();
    let fp_at = "BERTH-1-".len();
    let flipped = if &forged[fp_at..fp_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    forged.replace_range(fp_at..fp_at + 1, flipped);
    let refused = joiner.fails(&[
        "cluster",
        "join",
        &leader,
        "--token",
        &forged,
        "--advertise",
        "127.0.0.1:7946",
    ]);
    assert!(refused.contains("does not match"), "{refused}");
    let st = joiner.json(&["cluster", "status"]);
    assert!(st["cluster"].is_null(), "a refused join left state: {st:#}");
}

#[test]
fn a_failover_service_restarts_elsewhere_when_its_node_dies() {
    let mut bed = Testbed::new(3);
    bed.form_cluster(3);
    let name = "fo..db.container.0";
    let (owner, idx) = start_failover(&bed, "fo/db", name);
    bed.kill(idx);
    let survivor = bed
        .nodes
        .iter()
        .find(|n| n.name != owner)
        .expect("survivor");
    wait_until("the service to run on another node", 30, || {
        let r = runners(&bed, name);
        r.len() == 1 && r[0] != owner
    });
    let v = survivor.json(&["cluster", "status"]);
    let dead = v["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == owner.as_str()).cloned())
        .expect("dead node listed");
    assert_eq!(dead["state"], "down", "{v:#}");
}

#[test]
fn losing_the_leader_bounces_nothing_and_writes_go_on() {
    let mut bed = Testbed::new(3);
    bed.form_cluster(3);
    let n1 = &bed.nodes[1];
    create(n1, "lead/web", &["topology=flex", "flex_target=3"]);
    n1.ok(&["lead/web", "start"]);
    let name = "lead..web.container.0";
    wait_until("flex instances on all three nodes", 30, || {
        runners(&bed, name).len() == 3
    });
    // And a failover service, on a node that will not die: a leader
    // change must not fence it.
    create(n1, "lead/db", &["orchestrate=ha"]);
    n1.ok(&["lead/db", "start"]);
    let db = "lead..db.container.0";
    wait_until("the failover service", 30, || runners(&bed, db).len() == 1);
    let ids = |bed: &Testbed, i: usize| {
        let out =
            bed.nodes[i].docker(&["inspect", "--format", "{{.Id}} {{.State.StartedAt}}", name]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before: Vec<String> = (0..3).map(|i| ids(&bed, i)).collect();
    let leader = bed.nodes[1].json(&["cluster", "status"])["leader"]
        .as_str()
        .expect("a leader")
        .to_string();
    let idx: usize = leader.trim_start_matches("node").parse().expect("index");
    let db_owner = runners(&bed, db)[0].clone();
    if db_owner == leader {
        let to = if leader == "node1" { "node2" } else { "node1" };
        bed.nodes[1].ok(&["lead/db", "switch", "--to", to]);
    }
    let db_owner: usize = runners(&bed, db)[0]
        .trim_start_matches("node")
        .parse()
        .expect("index");
    let db_started = |bed: &Testbed| {
        let out = bed.nodes[db_owner].docker(&["inspect", "--format", "{{.State.StartedAt}}", db]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let db_before = db_started(&bed);
    bed.kill(idx);
    let alive: Vec<usize> = (0..3).filter(|i| *i != idx).collect();
    let a = &bed.nodes[alive[0]];
    wait_until("a new leader", 20, || {
        let v = a.json(&["cluster", "status"]);
        v["leader"].as_str().is_some_and(|l| l != leader)
    });
    // A config write through a survivor succeeds.
    a.ok(&["lead/web", "set", "--kw", "env=after-election"]);
    let b = &bed.nodes[alive[1]];
    wait_until("the write to replicate", 10, || {
        let out = b.berth(&["lead/web", "get", "--kw", "env"]);
        String::from_utf8_lossy(&out.stdout).trim() == "after-election"
    });
    // The survivors' containers were never restarted, the failover
    // service's included, through and well after the election.
    std::thread::sleep(Duration::from_secs(4));
    for i in alive {
        assert_eq!(ids(&bed, i), before[i], "node{i}'s container was bounced");
    }
    assert_eq!(
        db_started(&bed),
        db_before,
        "the failover service was bounced"
    );
    assert_eq!(runners(&bed, db), vec![format!("node{db_owner}")]);
}

#[test]
fn flex_spreads_and_scales() {
    let bed = Testbed::new(3);
    bed.form_cluster(1);
    let n0 = &bed.nodes[0];
    create(n0, "fx/api", &["topology=flex", "flex_target=2"]);
    n0.ok(&["fx/api", "start"]);
    let name = "fx..api.container.0";
    wait_until("two instances on two nodes", 30, || {
        runners(&bed, name).len() == 2
    });
    n0.ok(&["fx/api", "scale", "3"]);
    wait_until("three instances on three nodes", 30, || {
        runners(&bed, name).len() == 3
    });
    n0.ok(&["fx/api", "scale", "1"]);
    wait_until("one instance", 30, || runners(&bed, name).len() == 1);
    // Only flex services scale.
    create(n0, "fx/one", &[]);
    let out = n0.berth(&["fx/one", "scale", "2"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Hard anti-affinity: three instances wanted, but never next to fx/one.
    n0.ok(&["fx/one", "start"]);
    let one = "fx..one.container.0";
    wait_until("fx/one running", 30, || runners(&bed, one).len() == 1);
    let taken = runners(&bed, one)[0].clone();
    create(
        n0,
        "fx/far",
        &[
            "topology=flex",
            "flex_target=3",
            "hard_anti_affinity=fx/one",
        ],
    );
    n0.ok(&["fx/far", "start"]);
    let far = "fx..far.container.0";
    wait_until("fx/far on the two other nodes", 30, || {
        let r = runners(&bed, far);
        r.len() == 2 && !r.contains(&taken)
    });
}

fn node_entry(v: &serde_json::Value, name: &str) -> serde_json::Value {
    v["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name).cloned())
        .unwrap_or_default()
}

#[test]
fn promoted_workers_become_managers_that_can_lead() {
    let mut bed = Testbed::new(3);
    bed.form_cluster(1);
    let n0 = &bed.nodes[0];
    for w in ["node1", "node2"] {
        n0.ok(&["node", w, "promote"]);
    }
    // The promoted nodes get manager certificates and the seal key.
    for i in 1..3 {
        let n = &bed.nodes[i];
        wait_until("a manager certificate", 30, || {
            n.berth(&["cluster", "token", "--manager"]).status.success()
        });
    }
    let v = n0.json(&["cluster", "status"]);
    for w in ["node1", "node2"] {
        let e = node_entry(&v, w);
        assert_eq!(
            (e["role"].as_str(), e["voter"].as_bool()),
            (Some("manager"), Some(true)),
            "{v:#}"
        );
    }
    // Demoted, a node loses its vote and the managers' secrets; two
    // managers are an even group, which the operator is told about.
    let out = n0.berth(&["node", "node2", "demote"]);
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: 2 managers"), "{err}");
    let n2 = &bed.nodes[2];
    wait_until("node2 to lose the seal key", 30, || {
        !n2.berth(&["cluster", "token"]).status.success()
    });
    let e = node_entry(&n0.json(&["cluster", "status"]), "node2");
    assert_eq!(
        (e["role"].as_str(), e["voter"].as_bool()),
        (Some("worker"), Some(false))
    );
    // With node1 a manager, losing node0 still leaves a quorum... of two
    // voters out of two only if node2 votes again: promote it back first.
    n0.ok(&["node", "node2", "promote"]);
    wait_until("node2 a manager again", 30, || {
        n2.berth(&["cluster", "token", "--manager"])
            .status
            .success()
    });
    bed.kill(0);
    let n1 = &bed.nodes[1];
    wait_until("a new leader among the promoted nodes", 20, || {
        let v = n1.json(&["cluster", "status"]);
        v["leader"]
            .as_str()
            .is_some_and(|l| l == "node1" || l == "node2")
    });
    create(n1, "prom/after", &[]);
    let n2 = &bed.nodes[2];
    wait_until("the write to replicate", 10, || {
        n2.berth(&["prom/after", "print", "config"])
            .status
            .success()
    });
    // Removing the dead node leaves a cluster of two managers.
    let out = n1.berth(&["node", "node0", "remove"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: 2 managers"));
    let v = n1.json(&["cluster", "status"]);
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(2), "{v:#}");
}

#[test]
fn labels_place_switch_moves_and_drain_empties_a_node() {
    let bed = Testbed::new(3);
    bed.form_cluster(1);
    let n0 = &bed.nodes[0];
    n0.ok(&["node", "node1", "label", "--kw", "role=db"]);
    n0.ok(&["node", "node2", "label", "--kw", "role=db"]);
    create(n0, "lbl/pg", &["nodes=role=db", "orchestrate=ha"]);
    n0.ok(&["lbl/pg", "start"]);
    let name = "lbl..pg.container.0";
    wait_until("the service on a role=db node", 30, || {
        let r = runners(&bed, name);
        r.len() == 1 && r[0] != "node0"
    });
    let first = runners(&bed, name)[0].clone();
    let other = if first == "node1" { "node2" } else { "node1" };
    n0.ok(&["lbl/pg", "switch", "--to", other]);
    assert_eq!(runners(&bed, name), vec![other.to_string()]);
    // Draining its node moves it back, and the drained node runs nothing.
    n0.ok(&["node", other, "drain"]);
    wait_until("the service off the drained node", 30, || {
        runners(&bed, name) == vec![first.clone()]
    });
    let out = n0.berth(&["lbl/pg", "switch", "--to", other]);
    assert!(!out.status.success(), "a drained node took a switch");
    // A bad label is refused.
    let out = n0.berth(&["node", "node1", "label", "--kw", "novalue"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = n0.berth(&["node", "nosuch", "drain"]);
    assert!(!out.status.success());
}

#[test]
fn a_leaving_node_hands_its_services_over_and_ends_standalone() {
    let bed = Testbed::new(2);
    bed.form_cluster(1);
    let (n0, n1) = (&bed.nodes[0], &bed.nodes[1]);
    create(n0, "bye/app", &["orchestrate=ha"]);
    n0.ok(&["bye/app", "start"]);
    n0.ok(&["bye/app", "switch", "--to", "node1"]);
    let name = "bye..app.container.0";
    assert_eq!(runners(&bed, name), vec!["node1".to_string()]);
    // The only manager cannot leave a cluster that has other members.
    let out = n0.berth(&["cluster", "leave"]);
    assert!(!out.status.success(), "{out:?}");
    n1.ok(&["cluster", "leave"]);
    wait_until("the service back on node0 and gone from node1", 30, || {
        runners(&bed, name) == vec!["node0".to_string()]
    });
    let all = n1.docker(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !String::from_utf8_lossy(&all.stdout).contains(name),
        "node1 kept the container"
    );
    let v = n1.json(&["cluster", "status"]);
    assert!(v["cluster"].is_null(), "{v:#}");
    // No objects left: `ls` lists nothing and succeeds; a named
    // selector that matches nothing is still an error.
    assert_eq!(n1.ok(&["ls"]).trim(), "");
    assert_eq!(n1.json(&["ls"]), serde_json::json!([]));
    let ls = n1.berth(&["bye/*", "ls"]);
    assert!(
        !ls.status.success() && String::from_utf8_lossy(&ls.stderr).contains("matches no object"),
        "{ls:?}"
    );
    let v = n0.json(&["cluster", "status"]);
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(1), "{v:#}");
    // The last member dissolves the cluster and keeps its service.
    n0.ok(&["cluster", "leave"]);
    assert!(n0.json(&["cluster", "status"])["cluster"].is_null());
    assert_eq!(runners(&bed, name), vec!["node0".to_string()]);
    n0.ok(&["bye/app", "stop"]);
}

#[test]
fn rotating_the_ca_renews_every_node_and_restarts_nothing() {
    let bed = Testbed::new(3);
    bed.form_cluster(2);
    let n0 = &bed.nodes[0];
    create(n0, "rot/svc", &["topology=flex", "flex_target=3"]);
    n0.ok(&["rot/svc", "start"]);
    let name = "rot..svc.container.0";
    wait_until("three instances", 30, || runners(&bed, name).len() == 3);
    let started = |bed: &Testbed| -> Vec<String> {
        bed.nodes
            .iter()
            .map(|n| {
                let out = n.docker(&["inspect", "--format", "{{.Id}} {{.State.StartedAt}}", name]);
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            })
            .collect()
    };
    let before = started(&bed);
    let old_ca = n0.json(&["cluster", "status"])["ca"].clone();
    let old_token = n0.ok(&["cluster", "token"]);
    let rotated = n0.json(&["cluster", "ca", "rotate"]);
    let new_token = rotated["worker_token"]
        .as_str()
        .expect("new token")
        .to_string();
    assert_ne!(old_token.trim(), new_token);
    // Every node renews from the new CA, then the old one is dropped.
    wait_until("the rotation to complete", 60, || {
        let v = bed.nodes[1].json(&["cluster", "status"]);
        !v["ca_rotating"].as_bool().unwrap_or(true)
            && v["ca"] != old_ca
            && v["nodes"]
                .as_array()
                .is_some_and(|a| a.iter().all(|n| n["ca"] == v["ca"] && n["state"] == "up"))
    });
    // The cluster still works end to end: a write from a worker, and the
    // leader's view of every node.
    bed.nodes[2].ok(&["rot/svc", "set", "--kw", "env=rotated"]);
    assert_eq!(
        started(&bed),
        before,
        "a container restarted during the rotation"
    );
    let again = n0.berth(&["cluster", "ca", "rotate"]);
    assert!(again.status.success(), "{again:?}");
    // Old tokens pin the old CA and are refused.
    let joiner = Env::start();
    let refused = joiner.fails(&[
        "cluster",
        "join",
        &n0.advertise(),
        "--token",
        old_token.trim(),
        "--advertise",
        "127.0.0.1:7946",
    ]);
    assert!(refused.contains("does not match"), "{refused}");
}

#[test]
fn the_watchdog_fences_the_instances_of_a_dead_agent() {
    let mut bed = Testbed::new(3);
    bed.form_cluster(3);
    let name = "wd..db.container.0";
    let (owner, idx) = start_failover(&bed, "wd/db", name);
    let started = |bed: &Testbed| {
        let out = bed.nodes[idx].docker(&["inspect", "--format", "{{.State.StartedAt}}", name]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first = started(&bed);

    // A quick agent restart bounces nothing: the new agent renews the
    // lease the watchdog holds before it runs out.
    bed.kill_agent(idx);
    bed.start_agent(idx);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(started(&bed), first, "an agent restart bounced the service");
    assert_eq!(runners(&bed, name), vec![owner.clone()]);

    // An agent that stays dead: its dockerd keeps the container running,
    // so only the watchdog can stop it before the service moves.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().saturating_sub(1))
        .unwrap_or(0);
    bed.kill_agent(idx);
    wait_until("the service to start on another node", 30, || {
        runners(&bed, name).iter().any(|r| *r != owner)
    });
    let moved: usize = runners(&bed, name)
        .iter()
        .find(|r| **r != owner)
        .and_then(|r| r.trim_start_matches("node").parse().ok())
        .expect("index");
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 1)
        .unwrap_or(0);
    let died = bed.nodes[idx].lifecycle(name, since, until);
    let born = bed.nodes[moved].lifecycle(name, since, until);
    let died_at = died
        .iter()
        .find(|(_, a)| a == "die")
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("still running on {owner}, and on node{moved}: {died:?}"));
    let born_at = born
        .iter()
        .find(|(_, a)| a == "start")
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("no start event on node{moved}: {born:?}"));
    assert!(
        died_at < born_at,
        "two instances ran: died on {owner} at {died_at}, started on node{moved} at {born_at}"
    );
    let log =
        std::fs::read_to_string(bed.nodes[idx].home().join("watchdog.log")).unwrap_or_default();
    assert!(log.contains("killed"), "watchdog.log:\n{log}");
}
