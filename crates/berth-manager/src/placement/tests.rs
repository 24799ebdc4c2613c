use super::*;
use proptest::prelude::*;

fn node(name: &str, load: usize, labels: &[(&str, &str)]) -> NodeView {
    NodeView {
        name: name.to_string(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        schedulable: true,
        load,
    }
}

fn all() -> PlacementSpec {
    PlacementSpec::from_words(&[], None)
}

#[test]
fn failover_goes_to_the_least_loaded_eligible_node_and_sticks() {
    let nodes = vec![node("n1", 5, &[]), node("n2", 1, &[]), node("n3", 3, &[])];
    let got = place(&all(), &nodes, &BTreeMap::new(), 1).expect("placed");
    assert_eq!(got, BTreeMap::from([("n2".to_string(), 1)]));
    // Already running on n3: stays there even though n2 is lighter.
    let current = BTreeMap::from([("n3".to_string(), 1)]);
    assert_eq!(place(&all(), &nodes, &current, 1).expect("placed"), current);
    // n3 down: moves to the lightest of the rest.
    let mut down = nodes.clone();
    down[2].schedulable = false;
    assert_eq!(
        place(&all(), &down, &current, 1).expect("placed"),
        BTreeMap::from([("n2".to_string(), 1)])
    );
}

#[test]
fn selectors_names_globs_and_labels() {
    let nodes = vec![
        node("web1", 0, &[("role", "app")]),
        node("web2", 0, &[("role", "app")]),
        node("db1", 0, &[("role", "db")]),
    ];
    let by_label = PlacementSpec::from_words(&["role=db".to_string()], None);
    assert_eq!(
        place(&by_label, &nodes, &BTreeMap::new(), 1)
            .expect("placed")
            .keys()
            .collect::<Vec<_>>(),
        vec!["db1"]
    );
    let by_glob = PlacementSpec::from_words(&["web*".to_string()], Some(1));
    let got = place(&by_glob, &nodes, &BTreeMap::new(), 2).expect("placed");
    assert_eq!(got.keys().collect::<Vec<_>>(), vec!["web1", "web2"]);
    // One haproxy per node: a third instance has nowhere to go.
    assert_eq!(
        place(&by_glob, &nodes, &BTreeMap::new(), 3),
        Err(PlacementError::NotEnoughRoom {
            wanted: 3,
            possible: 2
        })
    );
    let zero = PlacementSpec::from_words(&[], Some(0));
    assert_eq!(
        place(&zero, &nodes, &BTreeMap::new(), 1),
        Err(PlacementError::ZeroLimit)
    );
    let none = PlacementSpec::from_words(&["role=cache".to_string()], None);
    assert_eq!(
        place(&none, &nodes, &BTreeMap::new(), 1),
        Err(PlacementError::NoEligibleNode)
    );
}

#[test]
fn restart_order_follows_priority_then_path() {
    let mut v = vec![
        (100, "b".to_string(), ()),
        (10, "z".to_string(), ()),
        (100, "a".to_string(), ()),
    ];
    restart_order(&mut v);
    let order: Vec<&str> = v.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(order, vec!["z", "a", "b"]);
}

fn nodes_strategy() -> impl Strategy<Value = Vec<NodeView>> {
    prop::collection::vec((0usize..20, any::<bool>(), prop::bool::weighted(0.8)), 1..8).prop_map(
        |v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (load, app, up))| NodeView {
                    name: format!("n{i}"),
                    labels: BTreeMap::from([(
                        "role".to_string(),
                        if app { "app" } else { "db" }.to_string(),
                    )]),
                    schedulable: up,
                    load,
                })
                .collect()
        },
    )
}

proptest! {
    #[test]
    fn placements_respect_every_constraint(
        nodes in nodes_strategy(),
        want in 0usize..12,
        cap in prop::option::of(1usize..4),
        label_only in any::<bool>(),
        current_raw in prop::collection::vec((0usize..8, 0usize..4), 0..6),
    ) {
        let words = if label_only { vec!["role=app".to_string()] } else { vec![] };
        let spec = PlacementSpec::from_words(&words, cap);
        let current: BTreeMap<String, usize> = current_raw.into_iter().map(|(i, c)| (format!("n{i}"), c)).collect();
        let eligible: Vec<&NodeView> = nodes.iter().filter(|n| spec.eligible(n)).collect();
        match place(&spec, &nodes, &current, want) {
            Ok(got) => {
                prop_assert_eq!(got.values().sum::<usize>(), want);
                for (name, count) in &got {
                    prop_assert!(eligible.iter().any(|n| &n.name == name), "ineligible node {}", name);
                    prop_assert!(*count <= cap.unwrap_or(usize::MAX));
                    prop_assert!(*count > 0);
                }
                // Nothing kept is moved while the target still has room for it.
                let kept: usize = eligible.iter().map(|n| current.get(&n.name).copied().unwrap_or(0).min(cap.unwrap_or(usize::MAX))).sum();
                if kept <= want {
                    for n in &eligible {
                        let had = current.get(&n.name).copied().unwrap_or(0).min(cap.unwrap_or(usize::MAX));
                        prop_assert!(got.get(&n.name).copied().unwrap_or(0) >= had, "bounced an instance on {}", n.name);
                    }
                }
                // With nothing running yet, instances spread evenly.
                if current.is_empty() && !eligible.is_empty() {
                    let counts: Vec<usize> = eligible.iter().map(|n| got.get(&n.name).copied().unwrap_or(0)).collect();
                    let (lo, hi) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
                    prop_assert!(hi - lo <= 1, "uneven spread {:?}", counts);
                }
            }
            Err(PlacementError::NoEligibleNode) => prop_assert!(eligible.is_empty() && want > 0),
            Err(PlacementError::ZeroLimit) => prop_assert_eq!(cap, Some(0)),
            Err(PlacementError::NotEnoughRoom { wanted, possible }) => {
                prop_assert_eq!(wanted, want);
                prop_assert_eq!(possible, eligible.len() * cap.unwrap_or(usize::MAX).min(want));
                prop_assert!(possible < want);
            }
        }
    }
}

#[test]
fn anti_affinity_hard_excludes_and_soft_prefers_other_nodes() {
    let nodes = vec![node("n1", 0, &[]), node("n2", 5, &[]), node("n3", 9, &[])];
    let mut spec = all();
    spec.avoid.insert("n1".into());
    // n1 is lightest but excluded; n2 next.
    let got = place(&spec, &nodes, &BTreeMap::new(), 1).expect("placed");
    assert_eq!(got, BTreeMap::from([("n2".to_string(), 1)]));
    // Soft: n2 is used only once n3 is taken too.
    spec.prefer_not.insert("n2".into());
    let got = place(&spec, &nodes, &BTreeMap::new(), 1).expect("placed");
    assert_eq!(got, BTreeMap::from([("n3".to_string(), 1)]));
    spec.max_per_node = Some(1);
    let got = place(&spec, &nodes, &BTreeMap::new(), 2).expect("placed");
    assert_eq!(got.keys().cloned().collect::<Vec<_>>(), vec!["n2", "n3"]);
    // Hard exclusion of every node leaves nothing.
    spec.avoid.extend(["n2".to_string(), "n3".to_string()]);
    assert_eq!(
        place(&spec, &nodes, &BTreeMap::new(), 1),
        Err(PlacementError::NoEligibleNode)
    );
}
