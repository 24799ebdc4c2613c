use super::*;

fn worker(name: &str) -> Caller {
    Caller {
        node: name.into(),
        role: NodeRole::Worker,
    }
}

fn manager(name: &str) -> Caller {
    Caller {
        node: name.into(),
        role: NodeRole::Manager,
    }
}

fn node_rec(name: &str, role: NodeRole) -> NodeRecord {
    NodeRecord {
        name: name.into(),
        id: 3,
        addr: "10.0.0.3:7946".into(),
        role,
        labels: Default::default(),
        drain: false,
        frozen: false,
        ca: None,
    }
}

fn own_edit(node: &str) -> Command {
    Command::Object {
        by: UserRef::root_on(node),
        op: ObjectOp::SetTarget {
            path: "app/web".into(),
            target: None,
            frozen: true,
        },
    }
}

fn keys(c: &Command) -> Vec<String> {
    let mut out = Vec::new();
    c.request().unwrap().keys(&mut out);
    out
}

#[test]
fn a_worker_forwards_its_own_users_commands_only() {
    own_edit("w1").authorize(&worker("w1"), &RootOnly).unwrap();
    let err = own_edit("m1")
        .authorize(&worker("w1"), &RootOnly)
        .unwrap_err();
    assert!(matches!(err, Refusal::Forbidden(_)), "{err}");
    // Managers cannot impersonate another node's users either.
    assert!(own_edit("w1").authorize(&manager("m1"), &RootOnly).is_err());
}

#[test]
fn the_authorizer_decides_what_a_user_may_do() {
    let by = UserRef::user_on("alice", "w1");
    let cmd = Command::Object {
        by,
        op: ObjectOp::Delete {
            path: "app/web".into(),
        },
    };
    assert!(cmd.authorize(&worker("w1"), &RootOnly).is_err());
}

#[test]
fn only_managers_change_nodes_the_cluster_or_placements() {
    let cmds = [
        Command::Node(NodeWrite::Put(node_rec("w1", NodeRole::Manager))),
        Command::Node(NodeWrite::Delete { name: "m1".into() }),
        Command::Cluster(ClusterWrite::Patch(ClusterPatch {
            worker_token_sealed: Some("x".into()),
            ..Default::default()
        })),
        Command::Cluster(ClusterWrite::Delete),
        Command::Place(vec![Placement {
            path: "app/web".into(),
            nodes: vec!["w1".into()],
        }]),
    ];
    for c in &cmds {
        assert!(
            matches!(
                c.authorize(&worker("w1"), &RootOnly),
                Err(Refusal::Forbidden(_))
            ),
            "{c:?}"
        );
        c.authorize(&manager("m1"), &RootOnly).unwrap();
    }
    // Smuggled inside an allowed one.
    let smuggled = Command::All(vec![
        own_edit("w1"),
        Command::Node(NodeWrite::Put(node_rec("w1", NodeRole::Manager))),
    ]);
    assert!(matches!(
        smuggled.authorize(&worker("w1"), &RootOnly),
        Err(Refusal::Forbidden(_))
    ));
    Command::All(vec![own_edit("w1")])
        .authorize(&worker("w1"), &RootOnly)
        .unwrap();
}

#[test]
fn paths_and_names_are_checked() {
    let bad = Command::Object {
        by: UserRef::root_on("w1"),
        op: ObjectOp::Delete {
            path: "../../etc".into(),
        },
    };
    assert!(matches!(
        bad.authorize(&worker("w1"), &RootOnly),
        Err(Refusal::BadInput(_))
    ));
    let odd = Command::Node(NodeWrite::Delete { name: "a/b".into() });
    assert!(matches!(
        odd.authorize(&manager("m1"), &RootOnly),
        Err(Refusal::BadInput(_))
    ));
}

#[test]
fn each_command_touches_only_its_own_keys() {
    assert_eq!(keys(&own_edit("w1")), vec!["obj/app/web"]);
    let moved = Command::Object {
        by: UserRef::root_on("w1"),
        op: ObjectOp::Move {
            path: "app/db".into(),
            to: vec!["n2".into()],
        },
    };
    assert_eq!(keys(&moved), vec!["obj/app/db"]);
    let node = Command::Node(NodeWrite::Put(node_rec("w1", NodeRole::Worker)));
    assert_eq!(keys(&node), vec!["node/w1"]);
    let cluster = Command::Cluster(ClusterWrite::Delete);
    assert_eq!(keys(&cluster), vec!["cluster/info"]);
    let placed = Command::Place(vec![Placement {
        path: "app/web".into(),
        nodes: vec![],
    }]);
    assert_eq!(keys(&placed), vec!["obj/app/web"]);
}

#[test]
fn the_wire_format_is_stable() {
    let cmd: Command = serde_json::from_str(
        r#"{"object":{"by":{"user":"root","node":"node2"},
            "op":{"set_target":{"path":"a/b","target":null,"frozen":true}}}}"#,
    )
    .unwrap();
    assert_eq!(cmd, {
        let mut c = own_edit("node2");
        if let Command::Object {
            op: ObjectOp::SetTarget { path, .. },
            ..
        } = &mut c
        {
            *path = "a/b".into();
        }
        c
    });
    let put: Command = serde_json::from_str(
        r#"{"node":{"put":{"name":"n","id":1,"addr":"1.2.3.4:1","role":"manager"}}}"#,
    )
    .unwrap();
    assert!(matches!(put, Command::Node(NodeWrite::Put(_))));
    // A raw store request is not a command.
    assert!(serde_json::from_str::<Command>(r#"{"Delete":{"key":"cluster/info"}}"#).is_err());
}

#[test]
fn a_worker_writes_its_own_catalog_records_only() {
    use berth_kv::catalog::{CatalogOp, Health};
    let status = |node: &str| Command::Catalog {
        by: None,
        ops: vec![CatalogOp::SetStatus {
            node: node.into(),
            id: "serfHealth".into(),
            status: Health::Critical,
            output: String::new(),
            now_ms: 0,
        }],
    };
    assert!(status("w1").authorize(&worker("w1"), &RootOnly).is_ok());
    assert!(matches!(
        status("m1").authorize(&worker("w1"), &RootOnly),
        Err(Refusal::Forbidden(_))
    ));
    // The leader marks other nodes' health.
    assert!(status("w1").authorize(&manager("m1"), &RootOnly).is_ok());
    // A user's registration is forwarded by the user's own node only.
    let user = |node: &str| Command::Catalog {
        by: Some(UserRef::root_on(node)),
        ops: vec![CatalogOp::DeregisterNode {
            node: "external".into(),
        }],
    };
    assert!(user("w1").authorize(&worker("w1"), &RootOnly).is_ok());
    assert!(user("w2").authorize(&worker("w1"), &RootOnly).is_err());
}

#[test]
fn a_worker_marks_itself_unhealthy_only_and_the_mark_is_one_entry() {
    let mark = |by: &str, node: &str| Command::Object {
        by: UserRef::root_on(by),
        op: ObjectOp::Unhealthy {
            path: "app/db".into(),
            node: node.into(),
            why: Some("GET /health: 404".into()),
        },
    };
    assert!(mark("w1", "w1").authorize(&worker("w1"), &RootOnly).is_ok());
    assert!(matches!(
        mark("w1", "w2").authorize(&worker("w1"), &RootOnly),
        Err(Refusal::Forbidden(_))
    ));
    assert!(mark("m1", "w2")
        .authorize(&manager("m1"), &RootOnly)
        .is_ok());
    assert!(matches!(
        mark("w1", "bad name/").authorize(&worker("w1"), &RootOnly),
        Err(Refusal::BadInput(_))
    ));
    assert_eq!(
        keys(&mark("w1", "w1")),
        vec![berth_store::obj_key("app/db")]
    );
    let Ok(Request::PatchEntry { field, entry, .. }) = mark("w1", "w1").request() else {
        panic!("not an entry patch");
    };
    assert_eq!((field.as_str(), entry.as_str()), ("unhealthy_on", "w1"));
}
