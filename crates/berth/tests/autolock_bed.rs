//! Autolock across managers (netns bed): every manager's identity file
//! holds the seal key only sealed once autolock is on; a manager demoted
//! afterwards forgets the seal key in every form and, as a worker, still
//! gets the secrets its instances need from the leader.

mod common;
use common::testbed::{Node, Testbed};
use common::wait_until;
use common::{unique, IMAGE};

fn identity(node: &Node) -> serde_json::Value {
    std::fs::read(node.home().join("cluster/identity.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

#[test]
fn a_demoted_manager_forgets_the_sealed_seal_key_and_still_gets_its_secrets() {
    let bed = Testbed::new(2);
    bed.form_cluster(2);
    let (n0, n1) = (&bed.nodes[0], &bed.nodes[1]);
    let seal = identity(n1)["seal_key"]
        .as_str()
        .expect("node1 is a manager")
        .to_string();
    let key = n0.ok(&["cluster", "autolock", "enable"]);
    assert!(key.trim().starts_with("BERTH-UNLOCK-"));
    wait_until("node1's seal key sealed", 30, || {
        let id = identity(n1);
        id["seal_key"].is_null() && id["seal_key_locked"].is_string()
    });
    let file = std::fs::read_to_string(n1.home().join("cluster/identity.json")).unwrap();
    assert!(!file.contains(&seal));

    n0.ok(&["node", "node1", "demote"]);
    wait_until(
        "node1 renewed as a worker, without the seal key",
        90,
        || {
            let id = identity(n1);
            id["role"] == "worker" && id["seal_key"].is_null() && id["seal_key_locked"].is_null()
        },
    );

    let ns = unique("alb");
    let db = format!("{ns}/sec/db");
    n0.ok(&["create", &db]);
    n0.ok(&[&db, "add", "--key", "pw", "--value", "demoted-gets-it"]);
    let web = format!("{ns}/web");
    n0.ok(&[
        "create",
        &web,
        "--kw",
        "topology=flex",
        "--kw",
        "nodes=node1",
        "--kw",
        &format!("container#0.image={IMAGE}"),
        "--kw",
        "container#0.secrets=db/pw:/run/secrets/pw",
    ]);
    n0.ok(&[&web, "start"]);
    let name = format!("{ns}..web.container.0");
    wait_until("the secret in node1's container", 60, || {
        let out = n1.docker(&["exec", &name, "cat", "/run/secrets/pw"]);
        String::from_utf8_lossy(&out.stdout) == "demoted-gets-it"
    });
}
