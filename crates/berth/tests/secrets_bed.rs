//! Secrets across nodes, on the netns bed (node0 a manager, node1 and node2
//! workers): a worker gets a secret from the leader over mTLS only for an
//! instance its placement gives it, a node that runs no instance never
//! holds the plaintext, and a `change` reaches every instance one at a
//! time, with no two instances down at once.

mod common;
use common::node_client::{creds_of, post};
use common::testbed::{Node, Testbed};
use common::wait_until;
use common::{files_holding, unique, IMAGE};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn file_in(node: &Node, container: &str, path: &str) -> Option<String> {
    let out = node.docker(&["exec", container, "cat", path]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// The (down since, up again) windows of a container, from docker's events.
fn down_windows(events: &[(u128, String)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut down = None;
    for (t, a) in events {
        match a.as_str() {
            "die" => down = Some(*t),
            "start" => {
                if let Some(d) = down.take() {
                    out.push((d, *t));
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn a_secret_reaches_only_the_nodes_running_it_and_a_change_rolls_one_instance_at_a_time() {
    let bed = Testbed::new(3);
    bed.form_cluster(1);
    let ns = unique("sbed");
    let plain = format!("sbed-v1-{}", std::process::id() * 7919);
    let n0 = &bed.nodes[0];
    let db = format!("{ns}/sec/db");
    n0.ok(&["create", &db]);
    n0.ok(&[&db, "add", "--key", "password", "--value", &plain]);
    n0.ok(&["create", &format!("{ns}/sec/other")]);
    n0.ok(&[
        &format!("{ns}/sec/other"),
        "add",
        "--key",
        "k",
        "--value",
        "other-value",
    ]);
    let web = format!("{ns}/web");
    n0.ok(&[
        "create",
        &web,
        "--kw",
        "topology=flex",
        "--kw",
        "flex_target=2",
        "--kw",
        "nodes=node0 node1",
        "--kw",
        &format!("container#0.image={IMAGE}"),
        "--kw",
        "container#0.secrets=db/password:/run/secrets/pw",
        "--kw",
        "container#0.stop_timeout=1s",
    ]);
    n0.ok(&[&web, "start"]);
    let name = format!("{ns}..web.container.0");
    for i in [0, 1] {
        let node = &bed.nodes[i];
        wait_until(&format!("the secret in node{i}'s container"), 60, || {
            file_in(node, &name, "/run/secrets/pw").as_deref() == Some(plain.as_str())
        });
        let mounts = file_in(node, &name, "/proc/mounts").unwrap_or_default();
        assert!(
            mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some("/run/secrets/pw")
                    && l.split(' ').nth(2) == Some("tmpfs")),
            "node{i}: /run/secrets/pw is no tmpfs mount:\n{mounts}"
        );
    }

    // node2 runs no instance: no file of its home, docker data-root or
    // Raft log holds the plaintext, and its certificate is refused it.
    let n2 = &bed.nodes[2];
    assert!(!n2.running().contains(&name));
    let leaked = files_holding(&n2.dir, &[plain.as_bytes().to_vec()], None);
    assert!(leaked.is_empty(), "node2 holds the plaintext: {leaked:?}");
    let leader = n0.advertise();
    let ask = |service: &str, from: &str, key: &str| json!({"service": service, "from": from, "key": key});
    let c2 = creds_of(&n2.home());
    let (code, reply) = post(&c2, &leader, "/node/v1/value", &ask(&web, &db, "password"));
    assert_eq!(code, 403, "node2 asked for web's secret: {code} {reply}");
    assert!(!reply.contains(&plain));
    // node1 runs web: it may have web's secret, not one web does not take.
    let c1 = creds_of(&bed.nodes[1].home());
    let (code, reply) = post(
        &c1,
        &leader,
        "/node/v1/value",
        &ask(&web, &format!("{ns}/sec/other"), "k"),
    );
    assert_eq!(
        code, 403,
        "node1 asked for a key web does not take: {reply}"
    );
    let (code, _) = post(&c1, &leader, "/node/v1/value", &ask(&web, &db, "password"));
    assert_eq!(code, 200, "node1 runs web and takes db/password");
    let audit = n0.ok(&["audit", "--format", "json"]);
    assert!(
        audit.contains("node:node2") && audit.contains("not placed"),
        "the refusal is audited: {audit}"
    );

    // Rotation: every instance gets version 2, restarted one at a time.
    let since = now();
    let v2 = format!("sbed-v2-{}", std::process::id() * 7919);
    n0.ok(&[&db, "change", "--key", "password", "--value", &v2]);
    for i in [0, 1] {
        let node = &bed.nodes[i];
        wait_until(&format!("version 2 in node{i}'s container"), 90, || {
            file_in(node, &name, "/run/secrets/pw").as_deref() == Some(v2.as_str())
        });
    }
    wait_until(
        "print status showing version 2 on both instances",
        30,
        || {
            let st = n0.ok(&[&web, "print", "status"]);
            st.matches("holds sec/db/password@2").count() == 2
        },
    );
    let until = now() + 1;
    let w0 = down_windows(&bed.nodes[0].lifecycle(&name, since, until));
    let w1 = down_windows(&bed.nodes[1].lifecycle(&name, since, until));
    assert_eq!(
        (w0.len(), w1.len()),
        (1, 1),
        "one restart each: {w0:?} {w1:?}"
    );
    let ((a0, a1), (b0, b1)) = (w0[0], w1[0]);
    assert!(
        a1 <= b0 || b1 <= a0,
        "both instances were down at once: node0 {w0:?}, node1 {w1:?}"
    );
}
