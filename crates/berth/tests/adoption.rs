//! An agent restart adopts running containers and never restarts them.

mod common;
use common::*;

fn container_facts(node: &str) -> Vec<(String, String, String)> {
    let filter = format!("label=berth.node={node}");
    let ids = docker(&["ps", "-q", "--filter", &filter]);
    let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut args = vec![
        "inspect",
        "--format",
        "{{.Name}} {{.Id}} {{.State.StartedAt}}",
    ];
    args.extend(ids.iter().map(String::as_str));
    let out = docker(&args);
    let mut v: Vec<(String, String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((
                it.next()?.to_string(),
                it.next()?.to_string(),
                it.next()?.to_string(),
            ))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn five_daemon_restarts_leave_ten_services_untouched() {
    let mut env = Env::start();
    for i in 0..10 {
        env.create_svc(&format!("adopt/s{i}"), &[]);
    }
    env.ok(&["adopt/*", "start"]);
    let before = container_facts(&env.node);
    assert_eq!(before.len(), 10, "{before:?}");
    for round in 0..5 {
        if round % 2 == 0 {
            env.stop_daemon();
        } else {
            env.kill_daemon();
        }
        // Containers keep running while no daemon runs.
        assert_eq!(
            container_facts(&env.node),
            before,
            "round {round}: daemon stop touched containers"
        );
        env.start_daemon();
        for i in 0..10 {
            env.wait_status(&format!("adopt/s{i}"), 30, |s| s["avail"] == "up");
        }
        assert_eq!(
            container_facts(&env.node),
            before,
            "round {round}: restart bounced containers"
        );
    }
}

#[test]
fn crashed_container_is_restarted_then_marked_failed() {
    let env = Env::start();
    env.create_svc(
        "crash/svc",
        &[
            "container#0.command=sh -c 'sleep 1; exit 3'",
            "container#0.restart=2",
            "container#0.restart_delay=100ms",
        ],
    );
    env.ok(&["crash/svc", "start"]);
    let st = env.wait_status("crash/svc", 60, |s| s["resources"][0]["failed"] == true);
    assert_eq!(st["resources"][0]["restarts"], 2, "{st:#}");
    let log = st["resources"][0]["log"].to_string();
    assert!(log.contains("restart budget of 2 spent"), "{st:#}");
    assert!(log.contains("code 3"), "{st:#}");
    assert_eq!(st["avail"], "down");
    // Still failed after a later pass (a config change wakes the
    // monitor): the reason stays with it.
    let hash = st["config_hash"].clone();
    env.ok(&["crash/svc", "set", "--kw", "env=DEV"]);
    let st = env.wait_status("crash/svc", 30, |s| s["config_hash"] != hash);
    assert_eq!(st["resources"][0]["failed"], true, "{st:#}");
    let log = st["resources"][0]["log"].to_string();
    assert!(log.contains("restart budget of 2 spent"), "{st:#}");
    // An explicit start resets the budget.
    env.ok(&["crash/svc", "start"]);
    let st = env.status("crash/svc");
    assert_eq!(st["resources"][0]["failed"], false, "{st:#}");
}

#[test]
fn frozen_services_are_left_alone() {
    let env = Env::start();
    env.create_svc("frz/svc", &[]);
    env.ok(&["frz/svc", "start"]);
    env.ok(&["frz/svc", "freeze"]);
    assert_eq!(env.status("frz/svc")["frozen"], true);
    let name = "frz..svc.container.0";
    assert!(docker(&["kill", name]).status.success());
    std::thread::sleep(std::time::Duration::from_secs(3));
    let st = env.wait_status("frz/svc", 20, |s| s["avail"] == "down");
    assert_eq!(st["resources"][0]["restarts"], 0, "{st:#}");
    // Thawed, the reconciler brings it back.
    env.ok(&["frz/svc", "thaw"]);
    env.wait_status("frz/svc", 30, |s| s["avail"] == "up");
}

#[test]
fn stop_also_stops_containers_dropped_from_the_config() {
    let env = Env::start();
    env.create_svc("drop/svc", &[&format!("container#1.image={IMAGE}")]);
    env.ok(&["drop/svc", "start"]);
    let running = |name: &str| {
        let out = docker(&["inspect", "--format", "{{.State.Running}}", name]);
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    };
    assert!(running("drop..svc.container.1"));
    // Remove the section by hand; the daemon applies the valid edit.
    let file = env.config_file("drop", "svc");
    let text = std::fs::read_to_string(&file).expect("read");
    let cut = text.find("[container#1]").expect("section");
    let rest = &text[cut..];
    let end = rest[1..]
        .find("\n[")
        .map(|i| cut + 1 + i + 1)
        .unwrap_or(text.len());
    std::fs::write(&file, format!("{}{}", &text[..cut], &text[end..])).expect("write");
    env.wait_status("drop/svc", 30, |s| {
        s["resources"].as_array().is_some_and(|r| r.len() == 1)
    });
    assert!(
        running("drop..svc.container.1"),
        "an automatic pass must not stop it"
    );
    let out = env.ok(&["drop/svc", "stop"]);
    assert!(out.contains("no longer in the config"), "{out}");
    assert!(!running("drop..svc.container.1"));
    assert!(!running("drop..svc.container.0"));
}

#[test]
fn a_stop_acknowledged_just_before_a_sigkill_holds_after_the_restart() {
    // Applies are not fsynced on their own: a SIGKILL can lose the last one,
    // and the restarted daemon must apply it again from the log before it
    // acts, or it would start the service the user just stopped.
    let mut env = Env::start();
    env.create_svc("lastw/svc", &[]);
    env.ok(&["lastw/svc", "start"]);
    env.wait_status("lastw/svc", 30, |s| s["avail"] == "up");
    env.ok(&["lastw/svc", "set", "--kw", "env=LAST"]);
    env.ok(&["lastw/svc", "stop"]);
    env.kill_daemon();
    env.start_daemon();
    let st = env.status("lastw/svc");
    assert_eq!(st["target"], "stopped", "{st:#}");
    assert!(
        env.ok(&["lastw/svc", "print", "config"])
            .contains("env = LAST"),
        "the last set is lost"
    );
    // Several passes of the restarted agent (resync 2 s) leave it stopped.
    for _ in 0..4 {
        std::thread::sleep(std::time::Duration::from_secs(1));
        assert!(
            container_facts(&env.node).is_empty(),
            "the restarted agent started a stopped service"
        );
    }
}
