//! The multi-node test bed itself: nodes in network namespaces with their
//! own dockerd and berth daemon; crash, partition and heal do what they say.

mod common;
use common::testbed::Testbed;
use common::IMAGE;

fn container_pid(out: std::process::Output) -> i32 {
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[test]
fn nodes_are_isolated_and_a_crash_kills_the_whole_node() {
    let mut bed = Testbed::new(2);
    for node in &bed.nodes {
        let out = node.berth(&[
            "create",
            "bed/svc",
            "--kw",
            &format!("container#0.image={IMAGE}"),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = node.berth(&["bed/svc", "start"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let ps = node.docker(&["ps", "--format", "{{.Names}}"]);
        assert_eq!(
            String::from_utf8_lossy(&ps.stdout).trim(),
            "bed..svc.container.0"
        );
    }
    let pids: Vec<i32> = bed
        .nodes
        .iter()
        .map(|n| {
            container_pid(n.docker(&[
                "inspect",
                "--format",
                "{{.State.Pid}}",
                "bed..svc.container.0",
            ]))
        })
        .collect();
    assert!(pids.iter().all(|p| *p > 0 && alive(*p)), "{pids:?}");

    assert!(bed.reachable(0, 1));
    bed.partition(1);
    assert!(
        !bed.reachable(0, 1),
        "a partitioned node is still reachable"
    );
    bed.heal(1);
    assert!(bed.reachable(0, 1));

    bed.kill(1);
    assert!(!alive(pids[1]), "the crashed node's container survived");
    assert!(!bed.nodes[1].agent_running());
    assert!(alive(pids[0]), "the other node's container died");
    assert!(bed.nodes[0].agent_running());
}
