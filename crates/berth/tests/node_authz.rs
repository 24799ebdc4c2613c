//! The node protocol's authorization: a worker that holds its own
//! certificate and key may report about itself and forward its own users'
//! edits, nothing more. Every request that would change roles, other
//! nodes' records, tokens or the CA, and every raw store request, is
//! refused with 403, by the leader and by any other manager; a renewal
//! afterwards still yields a worker certificate.

mod common;
use common::node_client::{creds_of, post};
use common::testbed::Testbed;
use common::IMAGE;
use serde_json::{json, Value};
use std::process::Command;

fn node_record(bed: &Testbed, name: &str) -> Value {
    let v = bed.nodes[0].json(&["cluster", "status"]);
    let mut rec = v["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name).cloned())
        .unwrap_or_else(|| panic!("{name} listed: {v:#}"));
    // Only the record's own fields: what a raw write or a typed one carries.
    let obj = rec.as_object_mut().expect("object");
    obj.retain(|k, _| {
        matches!(
            k.as_str(),
            "name" | "id" | "addr" | "role" | "labels" | "drain" | "frozen" | "ca"
        )
    });
    rec
}

#[test]
fn a_worker_certificate_cannot_change_roles_records_tokens_or_the_ca() {
    let bed = Testbed::new(3);
    bed.form_cluster(2);
    let n0 = &bed.nodes[0];
    n0.ok(&[
        "create",
        "authz/victim",
        "--kw",
        &format!("container#0.image={IMAGE}"),
    ]);
    let worker = &bed.nodes[2];
    assert_eq!(node_record(&bed, "node2")["role"], "worker");
    let creds = creds_of(&worker.home());

    let mut as_manager = node_record(&bed, "node2");
    as_manager["role"] = json!("manager");
    let mut drained = node_record(&bed, "node1");
    drained["drain"] = json!(true);
    let raw_role = json!({"Put": {"key": "node/node2", "value": as_manager.to_string()}});
    let raw_other = json!({"Put": {"key": "node/node1", "value": drained.to_string()}});
    let raw_cluster = json!({"Delete": {"key": "cluster/info"}});
    let raw_obj = json!({"Delete": {"key": "obj/authz/victim"}});
    let raw_patch = json!({"Patch": {"key": "cluster/info", "fields": {"ca_previous_pem": "x"}}});
    let impersonated = json!({"object": {
        "by": {"user": "root", "node": "node0"},
        "op": {"delete": {"path": "authz/victim"}}
    }});
    let refused: Vec<(&str, Value)> = vec![
        // Raw store requests, on the retired raw endpoint and on the typed one.
        ("/node/v1/write", raw_role.clone()),
        ("/node/v1/write", raw_other.clone()),
        ("/node/v1/write", raw_cluster.clone()),
        ("/node/v1/write", raw_obj.clone()),
        ("/node/v1/write", raw_patch.clone()),
        ("/node/v1/command", raw_role),
        ("/node/v1/command", raw_other),
        ("/node/v1/command", raw_cluster),
        ("/node/v1/command", raw_obj),
        ("/node/v1/command", raw_patch),
        // Typed commands beyond a worker's role.
        ("/node/v1/command", json!({"node": {"put": as_manager}})),
        ("/node/v1/command", json!({"node": {"put": drained}})),
        (
            "/node/v1/command",
            json!({"node": {"delete": {"name": "node1"}}}),
        ),
        (
            "/node/v1/command",
            json!({"cluster": {"patch": {"worker_token_sealed": "forged"}}}),
        ),
        (
            "/node/v1/command",
            json!({"cluster": {"patch": {"ca_previous_pem": null}}}),
        ),
        (
            "/node/v1/command",
            json!({"place": [{"path": "authz/victim", "nodes": ["node2"]}]}),
        ),
        // A user edit claimed for another node's user.
        ("/node/v1/command", impersonated),
        // Administration, even by the worker's own root.
        (
            "/node/v1/command",
            json!({"admin": {"by": {"user": "root", "node": "node2"}, "action": "node remove",
                   "object": "node0", "change": {"node": {"delete": {"name": "node0"}}}}}),
        ),
        // Membership and roles.
        (
            "/node/v1/membership",
            json!({"op": "promote", "node": "node2"}),
        ),
        (
            "/node/v1/membership",
            json!({"op": "demote", "node": "node0"}),
        ),
        (
            "/node/v1/membership",
            json!({"op": "remove", "node": "node1"}),
        ),
        ("/node/v1/membership", json!({"op": "add", "node": "node1"})),
        // Reports about another node.
        (
            "/node/v1/heartbeat",
            json!({"node": "node1", "instances": []}),
        ),
        // An action for another node's user.
        (
            "/node/v1/action",
            json!({"path": "authz/victim", "action": "delete",
                   "by": {"user": "root", "node": "node0"}}),
        ),
        // Raft itself.
        ("/raft/v1/vote", json!({})),
        ("/raft/v1/append", json!({})),
    ];
    for target in [0, 1] {
        let addr = bed.nodes[target].advertise();
        for (path, body) in &refused {
            let (code, reply) = post(&creds, &addr, path, body);
            assert_eq!(
                code, 403,
                "node{target} {path} {body}: answered {code} {reply}"
            );
        }
    }
    // Nothing changed.
    assert_eq!(node_record(&bed, "node2")["role"], "worker");
    assert_eq!(node_record(&bed, "node1")["drain"], false);
    n0.ok(&["authz/victim", "print", "config"]);
    assert!(n0.berth(&["cluster", "token"]).status.success());

    // What a worker may do, at the leader: report about itself, forward
    // its own users' edits.
    let leader: usize = n0.json(&["cluster", "status"])["leader"]
        .as_str()
        .and_then(|l| l.trim_start_matches("node").parse().ok())
        .expect("a leader");
    let leader = bed.nodes[leader].advertise();
    let (code, reply) = post(
        &creds,
        &leader,
        "/node/v1/heartbeat",
        &json!({"node": "node2", "instances": []}),
    );
    assert_eq!(code, 200, "own heartbeat: {reply}");
    let own_edit = json!({"object": {
        "by": {"user": "root", "node": "node2"},
        "op": {"set_target": {"path": "authz/victim", "target": null, "frozen": true}}
    }});
    let (code, reply) = post(&creds, &leader, "/node/v1/command", &own_edit);
    assert_eq!(code, 200, "own user's edit: {reply}");

    // The next renewal still yields a worker certificate, without the seal key.
    let csr = worker.dir.join("renew.csr");
    let made = Command::new("openssl")
        .args(["req", "-new", "-subj", "/CN=node2", "-key"])
        .arg(&creds.key)
        .arg("-out")
        .arg(&csr)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    let csr_pem = std::fs::read_to_string(&csr).expect("csr");
    let (code, reply) = post(
        &creds,
        &leader,
        "/node/v1/renew",
        &json!({ "csr": csr_pem }),
    );
    assert_eq!(code, 200, "renewal: {reply}");
    let renewed: Value = serde_json::from_str(&reply).expect("renewal json");
    assert_eq!(renewed["role"], "worker", "{renewed:#}");
    assert!(renewed["seal_key"].is_null(), "{renewed:#}");
    let cert = worker.dir.join("renewed.pem");
    std::fs::write(&cert, renewed["cert_pem"].as_str().expect("cert")).expect("write");
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("berth://worker/node2"), "{text}");
    assert!(!text.contains("berth://manager/"), "{text}");
}
