use super::*;
use berth_model::Topology;

fn settings(topology: Topology, orchestrate: Orchestrate, flex: usize) -> ObjectSettings {
    ObjectSettings {
        topology,
        orchestrate,
        nodes: vec!["*".into()],
        flex_target: flex,
        priority: 100,
        hard_anti_affinity: vec![],
        soft_anti_affinity: vec![],
        update: Default::default(),
    }
}

fn obj(path: &str, placement: &[&str], s: ObjectSettings) -> ObjectView {
    ObjectView {
        path: path.into(),
        wanted: true,
        placement: placement.iter().map(|n| n.to_string()).collect(),
        unhealthy_on: Default::default(),
        settings: Some(s),
    }
}

/// Nodes n0..n{count}: `dead` ones are lost; `released` lost ones may
/// give up their instances.
fn nodes(count: usize, dead: &[usize], released: &[usize]) -> Vec<NodeFacts> {
    (0..count)
        .map(|i| NodeFacts {
            view: NodeView {
                name: format!("n{i}"),
                labels: Default::default(),
                schedulable: !dead.contains(&i),
                load: 0,
            },
            alive: !dead.contains(&i),
            released: released.contains(&i),
        })
        .collect()
}

fn ha() -> ObjectSettings {
    settings(Topology::Failover, Orchestrate::Ha, 1)
}

fn placements(p: &Pass) -> Vec<(&str, Vec<&str>)> {
    p.placements
        .iter()
        .map(|(o, n)| (o.as_str(), n.iter().map(String::as_str).collect()))
        .collect()
}

#[test]
fn an_unplaced_started_object_gets_one_node() {
    let objs = [obj("a/x", &[], ha())];
    let p = decide(&objs, &nodes(3, &[], &[]), &BTreeMap::new());
    assert_eq!(p.placements.len(), 1, "{p:?}");
    assert_eq!(p.placements[0].1.len(), 1);
}

#[test]
fn stopped_or_unresolved_objects_are_left_alone() {
    let mut stopped = obj("a/x", &[], ha());
    stopped.wanted = false;
    let mut broken = obj("a/y", &[], ha());
    broken.settings = None;
    let p = decide(&[stopped, broken], &nodes(2, &[], &[]), &BTreeMap::new());
    assert_eq!(p, Pass::default());
}

#[test]
fn a_lost_node_keeps_its_instance_until_released_then_ha_moves_it() {
    let objs = [obj("a/x", &["n0"], ha())];
    let kept = decide(&objs, &nodes(2, &[0], &[]), &BTreeMap::new());
    assert!(kept.placements.is_empty(), "{kept:?}");
    let moved = decide(&objs, &nodes(2, &[0], &[0]), &BTreeMap::new());
    assert_eq!(placements(&moved), vec![("a/x", vec!["n1"])]);
}

#[test]
fn without_ha_a_placed_failover_object_stays_even_on_a_released_node() {
    let objs = [obj(
        "a/x",
        &["n0"],
        settings(Topology::Failover, Orchestrate::No, 1),
    )];
    let p = decide(&objs, &nodes(2, &[0], &[0]), &BTreeMap::new());
    assert!(p.placements.is_empty(), "{p:?}");
}

#[test]
fn a_failover_move_waits_while_a_live_node_reports_it_running() {
    // n0 is drained (alive, unschedulable) and still runs the instance.
    let mut facts = nodes(2, &[], &[]);
    facts[0].view.schedulable = false;
    let objs = [obj("a/x", &["n0"], ha())];
    let reports = BTreeMap::from([(
        "n0".to_string(),
        vec![InstanceReport {
            path: "a/x".into(),
            avail: Avail::Up,
            frozen: false,
            values: Default::default(),
            stale: false,
            failed: false,
            health: None,
            why: None,
            config_hash: 0,
            images: vec![],
        }],
    )]);
    let first = decide(&objs, &facts, &reports);
    assert_eq!(placements(&first), vec![("a/x", vec![])], "unplaced first");
    let unplaced = [obj("a/x", &[], ha())];
    let still = decide(&unplaced, &facts, &reports);
    assert!(still.placements.is_empty(), "{still:?}");
    let stopped = decide(&unplaced, &facts, &BTreeMap::new());
    assert_eq!(placements(&stopped), vec![("a/x", vec!["n1"])]);
}

#[test]
fn a_failover_object_moves_off_the_nodes_it_was_unhealthy_on_while_it_can() {
    let facts = nodes(3, &[], &[]);
    let mut x = obj("a/x", &["n0"], ha());
    x.unhealthy_on = BTreeSet::from(["n0".to_string()]);
    let p = decide(std::slice::from_ref(&x), &facts, &BTreeMap::new());
    let moved = placements(&p);
    assert_eq!(moved.len(), 1, "{p:?}");
    assert_eq!(moved[0].1.len(), 1, "{p:?}");
    assert_ne!(moved[0].1, vec!["n0"], "{p:?}");
    // Unplaced (stopped on n0): placed on a node it was not unhealthy on.
    x.placement.clear();
    x.unhealthy_on.insert("n1".into());
    let p = decide(std::slice::from_ref(&x), &facts, &BTreeMap::new());
    assert_eq!(placements(&p), vec![("a/x", vec!["n2"])]);
    // Unhealthy everywhere: it stays where it is.
    x.placement = vec!["n2".into()];
    x.unhealthy_on.insert("n2".into());
    let p = decide(std::slice::from_ref(&x), &facts, &BTreeMap::new());
    assert!(p.placements.is_empty(), "{p:?}");
    // A flex object ignores the marks (on_unhealthy=failover restarts it).
    let mut f = obj("a/f", &["n0"], settings(Topology::Flex, Orchestrate::Ha, 1));
    f.unhealthy_on = BTreeSet::from(["n0".to_string()]);
    let p = decide(std::slice::from_ref(&f), &facts, &BTreeMap::new());
    assert!(p.placements.is_empty(), "{p:?}");
}

#[test]
fn flex_takes_as_many_nodes_as_there_is_room_for() {
    let flex = settings(Topology::Flex, Orchestrate::No, 5);
    let p = decide(
        &[obj("a/web", &[], flex.clone())],
        &nodes(3, &[], &[]),
        &BTreeMap::new(),
    );
    assert_eq!(placements(&p), vec![("a/web", vec!["n0", "n1", "n2"])]);
    // Said, not silent: 3 of 5.
    let short = p
        .short
        .get("a/web")
        .expect("a note on the missing instances");
    assert!(short.contains("3 of flex_target 5"), "{short}");
    // Placed already, nothing changes, and it is still said.
    let p = decide(
        &[obj("a/web", &["n0", "n1", "n2"], flex.clone())],
        &nodes(3, &[], &[]),
        &BTreeMap::new(),
    );
    assert!(p.placements.is_empty(), "{p:?}");
    assert!(p.short.contains_key("a/web"), "{p:?}");
    // Room for all: nothing to say.
    let p = decide(
        &[obj(
            "a/web",
            &[],
            settings(Topology::Flex, Orchestrate::No, 2),
        )],
        &nodes(3, &[], &[]),
        &BTreeMap::new(),
    );
    assert!(p.short.is_empty(), "{p:?}");
}

#[test]
fn hard_anti_affinity_keeps_away_from_the_other_services_nodes() {
    let mut far = settings(Topology::Flex, Orchestrate::No, 3);
    far.hard_anti_affinity = vec!["a/one".into()];
    let objs = [
        obj(
            "a/one",
            &["n1"],
            settings(Topology::Failover, Orchestrate::No, 1),
        ),
        obj("a/far", &[], far),
    ];
    let p = decide(&objs, &nodes(3, &[], &[]), &BTreeMap::new());
    assert_eq!(placements(&p), vec![("a/far", vec!["n0", "n2"])]);
}

#[test]
fn unplaceable_objects_say_why_and_placements_follow_priority() {
    let mut pinned = ha();
    pinned.nodes = vec!["nowhere".into()];
    let mut early = ha();
    early.priority = 1;
    let objs = [
        obj("b/late", &[], ha()),
        obj("c/early", &[], early),
        obj("a/pinned", &[], pinned),
    ];
    let p = decide(&objs, &nodes(2, &[], &[]), &BTreeMap::new());
    let order: Vec<&str> = p.placements.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(order, vec!["c/early", "b/late"]);
    assert!(
        p.unplaced
            .get("a/pinned")
            .is_some_and(|w| w.contains("no schedulable node")),
        "{p:?}"
    );
}

#[test]
fn node_facts_count_load_and_release_lost_nodes() {
    let t = crate::liveness::Timing::default();
    let mut live = Liveness::new(t);
    let s = Duration::from_secs;
    live.observe("n1", s(10));
    let recs: Vec<NodeRecord> = ["n0", "n1", "n2"]
        .iter()
        .map(|n| NodeRecord {
            name: n.to_string(),
            id: 1,
            addr: String::new(),
            role: berth_model::cluster::NodeRole::Worker,
            labels: Default::default(),
            drain: *n == "n2",
            frozen: false,
            ca: None,
        })
        .collect();
    let objs = [obj("a/x", &["n1"], ha()), obj("a/y", &["n1"], ha())];
    // A leader since 11 s: n2, never heard from, is not released before 14 s.
    let facts = node_facts(&recs, &objs, "n0", &live, s(12), s(11));
    let by = |f: &[NodeFacts], n: &str| f.iter().find(|x| x.view.name == n).cloned().unwrap();
    assert!(by(&facts, "n0").alive && by(&facts, "n0").view.schedulable);
    assert_eq!(by(&facts, "n1").view.load, 2);
    assert!(by(&facts, "n1").alive);
    assert!(!by(&facts, "n2").view.schedulable && !by(&facts, "n2").released);
    assert_eq!(next_release(&facts, &live, s(11)), Some(s(14)));
    // n1 silent since 10 s: down and released at 10 s + failover_after.
    let later = s(10) + t.failover_after();
    let facts = node_facts(&recs, &objs, "n0", &live, later, s(0));
    let n1 = by(&facts, "n1");
    assert!(!n1.alive && n1.released, "{n1:?}");
}
