//! Health that moves a service, on the netns bed: `on_unhealthy=failover`
//! on a failover service (orchestrate=ha) takes it off the node where it
//! stays unhealthy and starts it on another one, never on two at once;
//! the node keeps a mark the orchestrator avoids until `clear`.

mod common;
use common::testbed::{Node, Testbed};
use common::{unique, wait_until, IMAGE};
use serde_json::Value;

const HTTPD: &str = r#"container#0.command=/bin/sh -c "mkdir -p /www && echo ok > /www/health && exec /bin/busybox httpd -f -p 80 -h /www""#;

/// Which nodes run container `name`.
fn runs(bed: &Testbed, name: &str) -> Vec<usize> {
    (0..bed.nodes.len())
        .filter(|i| bed.nodes[*i].running().iter().any(|n| n == name))
        .collect()
}

/// What the events of `path` say, as node `n` tells them.
fn events(n: &Node, path: &str) -> Vec<String> {
    let out = n.ok(&["events", "--no-follow", "--last", "500", "--format", "json"]);
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["object"] == path)
        .filter_map(|e| e["what"].as_str().map(str::to_string))
        .collect()
}

/// When `action` happened, from [`Node::lifecycle`]'s events.
fn times<'a>(events: &'a [(u128, String)], action: &'a str) -> impl Iterator<Item = u128> + 'a {
    events
        .iter()
        .filter(move |(_, a)| a == action)
        .map(|(t, _)| *t)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[test]
fn on_unhealthy_failover_moves_the_service_to_another_node() {
    let bed = Testbed::new(3);
    bed.form_cluster(1);
    let ns = unique("hfo");
    let path = format!("{ns}/db");
    let n0 = &bed.nodes[0];
    n0.ok(&[
        "create",
        &path,
        "--kw",
        &format!("container#0.image={IMAGE}"),
        "--kw",
        HTTPD,
        "--kw",
        "orchestrate=ha",
        "--kw",
        "container#0.check=http://:80/health",
        "--kw",
        "container#0.health_interval=500ms",
        "--kw",
        "container#0.health_retries=1",
        "--kw",
        "container#0.health_grace=1s",
        "--kw",
        "container#0.on_unhealthy=failover",
        "--kw",
        "container#0.stop_timeout=1s",
    ]);
    let since = unix_now();
    n0.ok(&[&path, "start"]);
    let name = format!("{ns}..db.container.0");
    wait_until("the instance", 60, || runs(&bed, &name).len() == 1);
    let home = runs(&bed, &name)[0];
    let hn = &bed.nodes[home];
    wait_until("healthy", 30, || {
        let s = hn.json(&[&path, "print", "status"]);
        s[0]["resources"][0]["health"]["state"] == "healthy"
    });

    let rm = hn.docker(&["exec", &name, "/bin/busybox", "rm", "/www/health"]);
    assert!(rm.status.success(), "{rm:?}");
    wait_until("moved to another node", 90, || {
        let r = runs(&bed, &name);
        r.len() == 1 && r[0] != home
    });
    let away = runs(&bed, &name)[0];
    let said = events(hn, &path);
    let action = said
        .iter()
        .find(|m| m.contains("unhealthy for"))
        .unwrap_or_else(|| panic!("no event for the action: {said:#?}"));
    assert!(action.contains("404"), "no check output: {action}");
    assert!(action.contains("moving"), "{action}");

    // Never on two nodes: the new node's start comes after home's stop.
    let until = unix_now() + 1;
    let died = bed.nodes[home].lifecycle(&name, since, until);
    let last_die = times(&died, "die").max().expect("home's container died");
    let started = bed.nodes[away].lifecycle(&name, since, until);
    let first_start = times(&started, "start")
        .min()
        .expect("the new node started it");
    assert!(
        first_start > last_die,
        "it ran on two nodes at once: {died:?} {started:?}"
    );

    // The mark shows, and stays until `clear` on that node.
    let s = n0.json(&[&path, "print", "status"]);
    let mark = &s[0]["unhealthy_on"][&bed.nodes[home].name];
    assert!(mark.as_str().is_some_and(|m| m.contains("404")), "{s:#}");
    hn.ok(&[&path, "clear"]);
    wait_until("the mark cleared", 30, || {
        let s = n0.json(&[&path, "print", "status"]);
        s[0]["unhealthy_on"]
            .as_object()
            .is_none_or(|m| m.is_empty())
    });
    // Clearing does not move it back.
    assert_eq!(runs(&bed, &name), vec![away]);
}
