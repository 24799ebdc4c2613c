//! Deploys across nodes, on the netns bed: a flex service of 3 instances
//! on 3 nodes goes from image v1 to v2 while POSTs (which the ingress
//! never retries) go through a node's ingress, and none fails, though the
//! v2 tag is moved to other content mid-rollout: every instance runs the
//! digest the deploy pinned. A failover service is updated stop-first and
//! never runs on two nodes, by a deploy asked on a worker (the leader runs
//! it).

mod common;
mod ingress_util;
use common::testbed::{Node, Testbed};
use common::{unique, wait_until, IMAGE};
use ingress_util as iu;
use std::process::Command;

const INGRESS: u16 = 8080;

/// Images `tags` built on the host from the test image (each with a
/// `/version` file) and loaded into every node's dockerd.
fn images(bed: &Testbed, tags: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, tag) in tags.iter().enumerate() {
        // The tag in the content: no other test shares the image.
        let dockerfile = format!("FROM {IMAGE}\nRUN echo v{} {tag} > /version\n", i + 1);
        ids.push(common::build_image(tag, &dockerfile));
        let tar = bed.dir.path().join(format!("img{i}.tar"));
        let tar = tar.display().to_string();
        let saved = common::docker(&["save", "-o", &tar, tag]);
        assert!(saved.status.success(), "{saved:?}");
        for n in &bed.nodes {
            let out = n.docker(&["load", "-i", &tar]);
            assert!(out.status.success(), "{out:?}");
        }
        common::docker(&["rmi", "-f", tag]);
    }
    ids
}

/// The image id of `name`'s container on `node`, if it runs there.
fn running_image(node: &Node, name: &str) -> Option<String> {
    let out = node.docker(&["inspect", "-f", "{{.State.Running}} {{.Image}}", name]);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    text.strip_prefix("true ").map(str::to_string)
}

/// `path`'s history as `node` tells it, and its newest version.
fn last_version(node: &Node, path: &str) -> (serde_json::Value, serde_json::Value) {
    let h = node.json(&[path, "history"]);
    let last = h[0]["versions"]
        .as_array()
        .and_then(|v| v.last().cloned())
        .unwrap_or_default();
    (h, last)
}

#[test]
fn a_flex_rollout_across_three_nodes_fails_no_request_and_runs_one_digest() {
    let bed = Testbed::with_args(3, &["--ingress-http", &format!("{{addr}}:{INGRESS}")]);
    bed.form_cluster(1);
    let ns = unique("dbed");
    let tags: Vec<String> = (1..=3).map(|n| format!("berth-test/{ns}:{n}")).collect();
    let ids = images(&bed, &tags);
    let host = format!("{ns}.test");
    let path = format!("{ns}/web");
    let n0 = &bed.nodes[0];
    let mut args = vec!["create".to_string(), path.clone()];
    for kw in [
        format!("container#0.image={}", tags[0]),
        "topology=flex".into(),
        "flex_target=3".into(),
        iu::slow_web("web", 1),
        format!("container#0.ingress_hosts={host}"),
        "container#0.ports=8081:80".into(),
        "container#0.check=http://:80/".into(),
        "container#0.health_interval=500ms".into(),
        "container#0.stop_timeout=5s".into(),
        "update_monitor=1s".into(),
        "update_delay=2s".into(),
    ] {
        args.extend(["--kw".to_string(), kw]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    n0.ok(&args);
    n0.ok(&[&path, "start"]);
    let name = format!("{ns}..web.container.0");
    wait_until("an instance on every node", 90, || {
        bed.nodes
            .iter()
            .all(|n| running_image(n, &name).as_deref() == Some(ids[0].as_str()))
    });
    wait_until("three instances in rotation", 60, || {
        iu::rotation_of(&iu::route_in(&n0.json(&["ingress", "routes"]), &host)) == 3
    });

    let load = iu::PostLoop::start(bed.nodes[1].addr.clone(), INGRESS, host.clone());
    n0.ok(&[
        &path,
        "set",
        "--kw",
        &format!("container#0.image={}", tags[1]),
    ]);
    let deploy = {
        let (home, path) = (n0.home(), path.clone());
        std::thread::spawn(move || {
            Command::new(common::BIN)
                .args([&path, "deploy"])
                .env("BERTH_HOME", home)
                .output()
                .expect("deploy")
        })
    };
    // Once the first instance runs v2, the tag moves to v3's content on
    // every node: the rest still get the digest the deploy pinned.
    wait_until("a first instance on v2", 60, || {
        bed.nodes
            .iter()
            .any(|n| running_image(n, &name).as_deref() == Some(ids[1].as_str()))
    });
    for n in &bed.nodes {
        let out = n.docker(&["tag", &tags[2], &tags[1]]);
        assert!(out.status.success(), "{out:?}");
    }
    let out = deploy.join().expect("deploy thread");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("pinned to"), "{said}");
    load.assert_none_failed();
    for n in &bed.nodes {
        assert_eq!(
            running_image(n, &name).as_deref(),
            Some(ids[1].as_str()),
            "{} runs another image",
            n.name
        );
    }
    let (h, last) = last_version(n0, &path);
    assert_eq!(last["outcome"]["state"], "deployed", "{h:#}");
    let batches = last["log"].as_array().map(|l| {
        l.iter()
            .filter(|x| x.as_str().is_some_and(|s| s.starts_with("batch")))
            .count()
    });
    assert_eq!(batches, Some(3), "one node at a time: {last:#}");

    // print status, from one node: every node's instance with the version
    // it runs, the digest the deploy pinned, and its health.
    let version = last["version"].as_u64().expect("version");
    let pinned = last["digests"]["container#0"]
        .as_str()
        .expect("a pinned digest")
        .to_string();
    wait_until("every instance reported on the new version", 30, || {
        let s = n0.json(&[&path, "print", "status"]);
        let all = s[0]["instances"].as_array().cloned().unwrap_or_default();
        all.len() == 3
            && all.iter().all(|i| {
                i["version"].as_u64() == Some(version)
                    && i["report"]["health"] == "healthy"
                    && i["report"]["images"][0].as_str() == Some(pinned.as_str())
            })
    });
    let text = n0.ok(&[&path, "print", "status"]);
    for n in &bed.nodes {
        let line = text
            .lines()
            .find(|l| l.contains(&n.name) && l.contains("version"))
            .unwrap_or_else(|| panic!("no line for {}: {text}", n.name));
        assert!(line.contains(&format!("version {version}")), "{line}");
        assert!(line.contains("healthy") && line.contains(&pinned), "{line}");
    }
}

#[test]
fn a_failover_service_is_updated_stop_first_and_never_runs_twice() {
    let bed = Testbed::new(3);
    bed.form_cluster(1);
    let ns = unique("dfo");
    let tags: Vec<String> = (1..=2).map(|n| format!("berth-test/{ns}:{n}")).collect();
    let ids = images(&bed, &tags);
    let path = format!("{ns}/db");
    let n0 = &bed.nodes[0];
    n0.ok(&[
        "create",
        &path,
        "--kw",
        &format!("container#0.image={}", tags[0]),
        "--kw",
        "orchestrate=ha",
        "--kw",
        "update_monitor=1s",
        "--kw",
        "container#0.stop_timeout=1s",
    ]);
    n0.ok(&[&path, "start"]);
    let name = format!("{ns}..db.container.0");
    let runs = |id: &str| -> Vec<usize> {
        (0..3)
            .filter(|i| running_image(&bed.nodes[*i], &name).as_deref() == Some(id))
            .collect()
    };
    wait_until("the instance", 60, || runs(&ids[0]).len() == 1);
    let home = runs(&ids[0])[0];
    let out = n0.berth(&[&path, "deploy", "--order", "start-first"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("never runs twice"),
        "{out:?}"
    );

    n0.ok(&[
        &path,
        "set",
        "--kw",
        &format!("container#0.image={}", tags[1]),
    ]);
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let w = watching.clone();
    let nodes: Vec<(String, String)> = bed
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.docker_socket()))
        .collect();
    let name_w = name.clone();
    let watcher = std::thread::spawn(move || {
        let mut most = 0;
        let t0 = std::time::Instant::now();
        while w.load(std::sync::atomic::Ordering::Relaxed)
            && t0.elapsed() < std::time::Duration::from_secs(120)
        {
            let running = nodes
                .iter()
                .filter(|(_, sock)| {
                    let out = Command::new("docker")
                        .args(["-H", &format!("unix://{sock}")])
                        .args(["inspect", "-f", "{{.State.Running}}", &name_w])
                        .output();
                    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
                })
                .count();
            most = most.max(running);
        }
        most
    });
    // Asked on a worker: the leader runs it, as the same user.
    let said = bed.nodes[2].ok(&[&path, "deploy"]);
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let most = watcher.join().expect("watcher");
    assert!(said.contains("deployed"), "{said}");
    assert_eq!(most, 1, "the failover service ran on {most} nodes at once");
    assert_eq!(runs(&ids[1]), vec![home], "updated in place, on its node");
    let (h, last) = last_version(n0, &path);
    assert_eq!(last["outcome"]["state"], "deployed", "{h:#}");
}
