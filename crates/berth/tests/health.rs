//! The one health model on one node: a check berth runs itself
//! (`check=http://...`) and Docker's healthcheck, both shown in the
//! status and the catalog, and `on_unhealthy=restart` acting on a
//! container made unhealthy from inside, with an event that carries the
//! check's output. Bad values are refused at `set`.

mod common;

use common::{unique, wait_until, Env};
use serde_json::Value;

const HTTPD: &str = r#"container#0.command=/bin/sh -c "mkdir -p /www && echo ok > /www/health && exec /bin/busybox httpd -f -p 80 -h /www""#;

fn health(s: &Value) -> Value {
    s["resources"][0]["health"].clone()
}

fn started_at(ctr: &str) -> String {
    let out = common::docker(&["inspect", "-f", "{{.State.StartedAt}}", ctr]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The catalog's health of each of `service`'s instances.
fn catalog_checks(env: &Env, service: &str) -> Vec<String> {
    let v = env.json(&["catalog", "service", service]);
    v["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["health"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// py-consul's `health.service(service, passing=True)`: how many
/// instances, and their checks' outputs.
fn py_consul_passing(port: u16, service: &str) -> String {
    let python = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/py-clients/bin/python");
    assert!(python.exists(), "run scripts/py-clients");
    let script = "import sys, consul\n\
        c = consul.Consul(host='127.0.0.1', port=int(sys.argv[1]))\n\
        _, nodes = c.health.service(sys.argv[2], passing=True)\n\
        outs = [ch['Output'] for n in nodes for ch in n['Checks']]\n\
        print(len(nodes), 'passing', outs)\n";
    let out = std::process::Command::new(python)
        .args(["-c", script, &port.to_string(), service])
        .output()
        .expect("python");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// What the events of `path` say, one JSON object per line.
fn events(env: &Env, path: &str) -> Vec<String> {
    let out = env.ok(&["events", "--no-follow", "--last", "500", "--format", "json"]);
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["object"] == path)
        .filter_map(|e| e["what"].as_str().map(str::to_string))
        .collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Restarts of the container: Docker's start time changes.
fn restarted(ctr: &str, before: &str) -> bool {
    let now = started_at(ctr);
    !now.is_empty() && now != before
}

#[test]
fn a_berth_check_feeds_status_and_catalog_and_restarts_an_unhealthy_container() {
    let http = common::free_port();
    let mut env = Env::start_with(&["--consul-addr", &format!("127.0.0.1:{http}")]);
    let ns = unique("hc");
    let path = format!("{ns}/web");
    let service = unique("checked");
    env.create_svc(
        &path,
        &[
            HTTPD,
            &format!("container#0.service_name={service}"),
            "container#0.check=http://:80/health",
            "container#0.health_interval=300ms",
            "container#0.health_retries=2",
            "container#0.health_grace=1s",
            "container#0.on_unhealthy=restart",
        ],
    );
    env.ok(&[&path, "start"]);
    let s = env.wait_status(&path, 30, |s| health(s)["state"] == "healthy");
    assert_eq!(health(&s)["source"], "berth", "{s:#}");
    wait_until("a passing check in the catalog", 20, || {
        catalog_checks(&env, &service) == ["passing"]
    });
    let text = env.ok(&[&path, "print", "status"]);
    assert!(text.contains("healthy (check): GET http://"), "{text}");
    // A real Consul client reads the same verdict.
    let said = py_consul_passing(http, &service);
    assert!(said.starts_with("1 passing"), "{said}");
    assert!(said.contains("200"), "no check output: {said}");

    // An agent restart adopts the container: checked again at once, and
    // never critical in the catalog meanwhile. (Right after a SIGKILL the
    // replica may still be replaying its log, so a read can miss the
    // service for a moment; that is not a health verdict.)
    env.kill_daemon();
    env.start_daemon();
    let mut seen = Vec::new();
    let look = |seen: &mut Vec<String>| {
        let out = env.berth(&["catalog", "service", &service, "--format", "json"]);
        if let Ok(v) = serde_json::from_slice::<Value>(&out.stdout) {
            for i in v["instances"].as_array().into_iter().flatten() {
                seen.push(i["health"].as_str().unwrap_or_default().to_string());
            }
        }
    };
    wait_until("healthy after the agent restart", 30, || {
        look(&mut seen);
        health(&env.status(&path))["state"] == "healthy"
    });
    wait_until("passing in the catalog after the restart", 20, || {
        look(&mut seen);
        seen.last().is_some_and(|h| h == "passing")
    });
    assert!(
        seen.iter().all(|h| h == "passing"),
        "the catalog saw {seen:?}"
    );

    let ctr = format!("{ns}..web.container.0");
    let before = started_at(&ctr);
    let rm = common::docker(&["exec", &ctr, "/bin/busybox", "rm", "/www/health"]);
    assert!(rm.status.success(), "{rm:?}");
    // The check fails: unhealthy in the status and critical in the
    // catalog, then restarted once the grace has passed.
    let s = env.wait_status(&path, 20, |s| {
        health(s)["state"] == "unhealthy" || restarted(&ctr, &before)
    });
    if health(&s)["state"] == "unhealthy" {
        assert!(
            health(&s)["output"]
                .as_str()
                .unwrap_or_default()
                .contains("404"),
            "{s:#}"
        );
    }
    wait_until("the unhealthy container restarted", 30, || {
        restarted(&ctr, &before)
    });
    let said = events(&env, &path);
    let action = said
        .iter()
        .find(|m| m.contains("unhealthy for"))
        .unwrap_or_else(|| panic!("no event for the action: {said:#?}"));
    assert!(
        action.contains("404"),
        "the check output is missing: {action}"
    );
    assert!(action.contains("restarting (1/"), "{action}");
    // The new container creates its health file again: healthy, and
    // passing in the catalog.
    let s = env.wait_status(&path, 30, |s| health(s)["state"] == "healthy");
    assert_eq!(s["resources"][0]["restarts"], 1, "{s:#}");
    wait_until("passing again in the catalog", 20, || {
        catalog_checks(&env, &service) == ["passing"]
    });
}

#[test]
fn dockers_healthcheck_is_the_same_health_and_with_none_only_reports() {
    let env = Env::start();
    let ns = unique("hd");
    let path = format!("{ns}/web");
    let service = unique("docked");
    env.create_svc(
        &path,
        &[
            HTTPD,
            &format!("container#0.service_name={service}"),
            "container#0.healthcheck=test -f /www/health",
            "container#0.health_interval=300ms",
            "container#0.health_retries=1",
            "container#0.health_grace=1s",
        ],
    );
    env.ok(&[&path, "start"]);
    let s = env.wait_status(&path, 30, |s| health(s)["state"] == "healthy");
    assert_eq!(health(&s)["source"], "docker", "{s:#}");
    let ctr = format!("{ns}..web.container.0");
    let before = started_at(&ctr);
    common::docker(&["exec", &ctr, "/bin/busybox", "rm", "/www/health"]);
    env.wait_status(&path, 20, |s| health(s)["state"] == "unhealthy");
    wait_until("critical in the catalog", 20, || {
        catalog_checks(&env, &service) == ["critical"]
    });
    // on_unhealthy=none (the default): reported, never acted on, even
    // when unhealthy for three times the grace.
    env.wait_status(&path, 20, |s| {
        let since = health(s)["since_ms"].as_u64().unwrap_or(u64::MAX);
        health(s)["state"] == "unhealthy" && now_ms().saturating_sub(since) > 3000
    });
    assert_eq!(started_at(&ctr), before);
    assert!(!events(&env, &path)
        .iter()
        .any(|m| m.contains("unhealthy for")));
}

#[test]
fn bad_health_values_are_refused_at_set() {
    let env = Env::start();
    let path = format!("{}/web", unique("hb"));
    env.create_svc(&path, &[]);
    let before =
        std::fs::read_to_string(env.config_file(path.split('/').next().unwrap_or_default(), "web"))
            .expect("config");
    for (kw, says) in [
        ("container#0.check=http:///health", "no port"),
        (
            "container#0.check=http://db:80/health",
            "container's own address",
        ),
        ("container#0.check=ftp://:21", "scheme"),
        ("container#0.health_retries=0", "out of range"),
        ("container#0.on_unhealthy=reboot", "reboot"),
        ("container#0.health_grace=-5s", "health_grace"),
    ] {
        let out = env.berth(&[&path, "set", "--kw", kw]);
        assert_eq!(out.status.code(), Some(2), "{kw}: {out:?}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains(says), "{kw}: {text}");
    }
    let after =
        std::fs::read_to_string(env.config_file(path.split('/').next().unwrap_or_default(), "web"))
            .expect("config");
    assert_eq!(before, after, "a refused set wrote the config");
}
