//! Split-brain safety: a failover service's owner is partitioned from the
//! cluster 20 times; every node's dockerd event log must show that no two
//! nodes ever ran the service at the same time.

mod common;
use common::testbed::Testbed;
use common::wait_until;
use common::IMAGE;
use std::time::{SystemTime, UNIX_EPOCH};

const NAME: &str = "split..db.container.0";
const ROUNDS: usize = 20;

fn runners(bed: &Testbed) -> Vec<usize> {
    (0..bed.nodes.len())
        .filter(|i| bed.nodes[*i].running().iter().any(|c| c == NAME))
        .collect()
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// `[start, end)` intervals in which node `i` ran the container, from its
/// dockerd's event log since `since` (Unix seconds).
fn intervals(bed: &Testbed, i: usize, since: u64, until: u128) -> Vec<(u128, u128)> {
    let events = bed.nodes[i].lifecycle(NAME, since, (until / 1_000_000_000 + 1) as u64);
    let mut spans = Vec::new();
    let mut open: Option<u128> = None;
    for (t, action) in events {
        match action.as_str() {
            "start" => open = Some(t),
            "die" => spans.push((open.take().unwrap_or(0), t)),
            _ => {}
        }
    }
    if let Some(t) = open {
        spans.push((t, until));
    }
    spans
}

#[test]
fn a_partitioned_owner_never_leaves_two_instances_running() {
    let bed = Testbed::new(3);
    bed.form_cluster(3);
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let n0 = &bed.nodes[0];
    n0.ok(&[
        "create",
        "split/db",
        "--kw",
        &format!("container#0.image={IMAGE}"),
        "--kw",
        "orchestrate=ha",
        "--kw",
        "container#0.stop_timeout=1s",
    ]);
    n0.ok(&["split/db", "start"]);
    wait_until("the service to run", 30, || runners(&bed).len() == 1);
    for round in 0..ROUNDS {
        let owner = runners(&bed);
        assert_eq!(owner.len(), 1, "round {round}: {owner:?}");
        let owner = owner[0];
        bed.partition(owner);
        // Sampled as well as checked from the event logs afterwards.
        wait_until("the service to move off the partitioned owner", 40, || {
            let r = runners(&bed);
            assert!(r.len() <= 1, "round {round}: running on {r:?} at once");
            r.len() == 1 && r[0] != owner
        });
        bed.heal(owner);
        let healed = &bed.nodes[owner].name;
        wait_until("the healed node back in the cluster", 30, || {
            let v = bed.nodes[(owner + 1) % 3].json(&["cluster", "status"]);
            v["nodes"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|n| n["name"] == healed.as_str() && n["state"] == "up")
            })
        });
        let r = runners(&bed);
        assert!(
            r.len() <= 1,
            "round {round}: running on {r:?} after the heal"
        );
    }
    let until = now_ns();
    let spans: Vec<(usize, u128, u128)> = (0..3)
        .flat_map(|i| {
            intervals(&bed, i, since, until)
                .into_iter()
                .map(move |(a, b)| (i, a, b))
        })
        .collect();
    // Every round moved the service: in start order, the node that runs it
    // changes at least once per round.
    let mut by_start = spans.clone();
    by_start.sort_by_key(|(_, a, _)| *a);
    let moves = by_start.windows(2).filter(|w| w[0].0 != w[1].0).count();
    assert!(
        moves >= ROUNDS,
        "the event logs show {moves} moves in {ROUNDS} rounds: {by_start:?}"
    );
    for (i, a0, a1) in &spans {
        for (j, b0, b1) in &spans {
            if i < j && a0 < b1 && b0 < a1 {
                panic!("node{i} ran it over [{a0}, {a1}) while node{j} ran it over [{b0}, {b1})");
            }
        }
    }
}
