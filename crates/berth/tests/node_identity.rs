//! Node identity: the daemon, not the CLI, finds the address a node
//! advertises; a join under a live node's name is refused; `daemon run`
//! honours DOCKER_HOST as the docker CLI does.

mod common;
use common::testbed::Testbed;
use common::wait_until;
use common::Env;

fn addr_of(v: &serde_json::Value, name: &str) -> String {
    v["nodes"]
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == name))
        .and_then(|n| n["addr"].as_str())
        .unwrap_or_else(|| panic!("{name} listed: {v:#}"))
        .to_string()
}

#[test]
fn the_daemon_chooses_the_advertised_address_and_names_stay_unique() {
    let bed = Testbed::new(2);
    let (n0, n1) = (&bed.nodes[0], &bed.nodes[1]);
    // The CLI runs outside the nodes' network namespaces, as an operator's
    // shell on another namespace would: the address must be the daemon's.
    let init = n0.json(&["cluster", "init"]);
    assert_eq!(init["advertise"], n0.advertise(), "{init:#}");
    let token = n0.ok(&["cluster", "token"]);
    let joined = n1.json(&["cluster", "join", &n0.advertise(), "--token", token.trim()]);
    assert_eq!(joined["advertise"], n1.advertise(), "{joined:#}");
    wait_until("both nodes up", 30, || {
        let v = n0.json(&["cluster", "status"]);
        v["nodes"]
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|n| n["state"] == "up"))
    });
    let v = n0.json(&["cluster", "status"]);
    assert_eq!(addr_of(&v, "node0"), n0.advertise());
    assert_eq!(addr_of(&v, "node1"), n1.advertise());
}

#[test]
fn a_join_under_a_live_nodes_name_is_refused() {
    let bed = Testbed::new(2);
    bed.form_cluster(1);
    let (n0, n1) = (&bed.nodes[0], &bed.nodes[1]);
    let token = n0.ok(&["cluster", "token"]);
    // Another daemon calling itself node1 may not join while node1 lives.
    let impostor = Env::start_as("node1", &[]);
    let port = 20_000 + (std::process::id() % 20_000);
    let refused = impostor.fails(&[
        "cluster",
        "join",
        &n0.advertise(),
        "--token",
        token.trim(),
        "--advertise",
        &format!("127.0.0.1:{port}"),
    ]);
    assert!(refused.contains("--nodename"), "{refused}");
    assert!(refused.contains("node1"), "{refused}");
    let after = n0.json(&["cluster", "status"]);
    assert_eq!(addr_of(&after, "node1"), n1.advertise(), "{after:#}");
    assert!(impostor.json(&["cluster", "status"])["cluster"].is_null());
}

#[test]
fn daemon_run_uses_docker_host_without_docker_socket() {
    let bed = Testbed::new(1);
    let sock = bed.nodes[0].docker_socket();
    let mut env = Env::start();
    env.restart_daemon_with_env("DOCKER_HOST", &format!("unix://{sock}"));
    let info = env.json(&["daemon", "status"]);
    assert_eq!(info["host_docker_socket"], sock.as_str(), "{info:#}");
    env.create_svc("dh/web", &[]);
    env.ok(&["dh/web", "start"]);
    let name = "dh..web.container.0";
    assert!(
        bed.nodes[0].running().iter().any(|c| c == name),
        "not started on DOCKER_HOST's daemon"
    );
    let host = common::docker(&["ps", "-q", "--filter", &format!("name=^{name}$")]);
    assert!(
        String::from_utf8_lossy(&host.stdout).trim().is_empty(),
        "started on the default socket instead"
    );
}
