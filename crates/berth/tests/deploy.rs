//! Deploys on one node, through the CLI: a changed image marks the
//! service "config changed", `deploy` rolls it out behind the health gate,
//! a broken version is rolled back on its own with the failing instance
//! and its check output named, `rollback` returns the previous version,
//! `update=rolling` deploys at `set`, and the history keeps each version.

mod common;

use common::{unique, wait_until, Env};
use serde_json::Value;

/// Builds `tag` from the test image: an httpd root saying `version`, with
/// a health file unless `healthy` is false. Returns its image id.
fn image(tag: &str, version: &str, healthy: bool) -> String {
    let health = if healthy {
        " && echo ok > /www/health"
    } else {
        ""
    };
    // The tag in the content: tests building the same version must not
    // share an image (one's cleanup would delete the other's).
    let dockerfile = format!(
        "FROM {}\nRUN mkdir -p /www && echo {version} {tag} > /www/index.html{health}\n",
        common::IMAGE
    );
    common::build_image(tag, &dockerfile)
}

fn remove_images(tags: &[String]) {
    for t in tags {
        common::docker(&["rmi", "-f", t]);
    }
}

/// The id of the image the container runs.
fn running_image(ctr: &str) -> String {
    let out = common::docker(&["inspect", "-f", "{{.Image}}", ctr]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn history(env: &Env, path: &str) -> Vec<Value> {
    let v = env.json(&[path, "history"]);
    v[0]["versions"].as_array().cloned().unwrap_or_default()
}

struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        remove_images(&self.0);
    }
}

/// Creates `path` as busybox httpd from `image` with a check on
/// /health every 300 ms, a 1 s stop timeout and `extra` keywords, starts
/// it, waits until it is healthy, and returns its container's name.
fn start_web(env: &Env, path: &str, image: &str, extra: &[&str]) -> String {
    let image_kw = format!("container#0.image={image}");
    let mut args = vec!["create", path];
    for kw in [
        image_kw.as_str(),
        "container#0.command=/bin/busybox httpd -f -p 80 -h /www",
        "container#0.check=http://:80/health",
        "container#0.health_interval=300ms",
        // busybox httpd as PID 1 ignores SIGTERM: no 10 s wait per stop.
        "container#0.stop_timeout=1s",
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        args.extend(["--kw", kw]);
    }
    env.ok(&args);
    env.ok(&[path, "start"]);
    env.wait_status(path, 30, |s| {
        s["resources"][0]["health"]["state"] == "healthy"
    });
    let p: Vec<&str> = path.splitn(2, '/').collect();
    format!("{}..{}.container.0", p[0], p[1])
}

#[test]
fn deploy_rolls_out_rolls_back_a_broken_version_and_keeps_the_history() {
    let env = Env::start();
    let ns = unique("dp");
    let path = format!("{ns}/web");
    let repo = format!("berth-test/{ns}");
    let tags: Vec<String> = (1..=3).map(|n| format!("{repo}:{n}")).collect();
    let _images = Images(tags.clone());
    let ids = [
        image(&tags[0], "v1", true),
        image(&tags[1], "v2", true),
        image(&tags[2], "v3", false),
    ];
    let ctr = start_web(
        &env,
        &path,
        &tags[0],
        &["container#0.health_retries=2", "update_monitor=1s"],
    );

    // Nothing changed: said, exit 0, and the config is version 1.
    let said = env.ok(&[&path, "deploy"]);
    assert!(said.contains("version 1 recorded"), "{said}");
    let said = env.ok(&[&path, "deploy"]);
    assert!(said.contains("nothing to deploy"), "{said}");
    // Nothing to roll back to yet: exit 2.
    let out = env.berth(&[&path, "rollback"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to roll back to"),
        "{out:?}"
    );

    // v2: config changed until deployed; the deploy replaces the container.
    env.ok(&[
        &path,
        "set",
        "--kw",
        &format!("container#0.image={}", tags[1]),
    ]);
    env.wait_status(&path, 20, |s| s["resources"][0]["config_changed"] == true);
    assert_eq!(running_image(&ctr), ids[0]);
    let said = env.ok(&[&path, "deploy"]);
    assert!(said.contains("deployed"), "{said}");
    assert_eq!(running_image(&ctr), ids[1]);
    let s = env.status(&path);
    assert!(s["resources"][0]["config_changed"].is_null(), "{s:#}");

    // v3 fails its check: rolled back to v2 by itself, the deploy fails
    // and says which instance failed and why.
    env.ok(&[
        &path,
        "set",
        "--kw",
        &format!("container#0.image={}", tags[2]),
    ]);
    let out = env.berth(&[&path, "deploy"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains(&format!("{path} on {}", env.node)), "{text}");
    assert!(text.contains("404"), "no check output: {text}");
    assert!(text.contains("rolled back to version 2"), "{text}");
    assert_eq!(running_image(&ctr), ids[1]);
    let cfg = env.ok(&[&path, "get", "--kw", "container#0.image"]);
    assert_eq!(cfg.trim(), tags[1], "the config is back at v2");
    env.wait_status(&path, 30, |s| {
        s["resources"][0]["health"]["state"] == "healthy"
    });

    let h = history(&env, &path);
    let outcomes: Vec<(u64, String)> = h
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap_or(0),
                v["outcome"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            (1, "deployed".to_string()),
            (2, "deployed".to_string()),
            (3, "rolled-back".to_string())
        ],
        "{h:#?}"
    );
    let cfg3 = env.ok(&[&path, "print", "config", "--version", "3"]);
    assert!(cfg3.contains(&tags[2]), "{cfg3}");
    let out = env.berth(&[&path, "print", "config", "--version", "99"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    diff_versions(&env, &path, &tags);

    // rollback after a successful deploy: back to v1's digest, though the
    // v1 tag names other content by now.
    let moved = common::docker(&["tag", &tags[2], &tags[0]]);
    assert!(moved.status.success(), "{moved:?}");
    env.ok(&[&path, "rollback"]);
    assert_eq!(running_image(&ctr), ids[0]);
    let text = env.ok(&[&path, "history"]);
    assert!(text.contains("version 4"), "{text}");
}

/// `diff --version`: the rolled-back v3 against v2 reads as `diff -u`
/// reads it; the current config (back at v2) equals version 2.
fn diff_versions(env: &Env, path: &str, tags: &[String]) {
    let d = env.ok(&[path, "diff", "--version", "2", "--to", "3"]);
    assert!(
        d.contains(&format!("-image = {}\n+image = {}\n", tags[1], tags[2])),
        "{d}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    for v in ["2", "3"] {
        let text = env.ok(&[path, "print", "config", "--version", v]);
        std::fs::write(dir.path().join(v), text).expect("write");
    }
    let real = std::process::Command::new("diff")
        .args(["-u", "2", "3"])
        .current_dir(dir.path())
        .output()
        .expect("diff");
    let body = |s: &str| -> String {
        s.lines()
            .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(body(&d), body(&String::from_utf8_lossy(&real.stdout)));

    let same = env.berth(&[path, "diff", "--version", "2", "--exit-code"]);
    assert!(same.status.success(), "{same:?}");
    assert!(same.stdout.is_empty(), "{same:?}");
    let differs = env.berth(&[path, "diff", "--version", "3", "--exit-code"]);
    assert_eq!(differs.status.code(), Some(1), "{differs:?}");
    let missing = env.berth(&[path, "diff", "--version", "99"]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
}

#[test]
fn update_rolling_deploys_a_change_when_it_is_written() {
    let env = Env::start();
    let ns = unique("dr");
    let path = format!("{ns}/web");
    let repo = format!("berth-test/{ns}");
    let tags: Vec<String> = (1..=2).map(|n| format!("{repo}:{n}")).collect();
    let _images = Images(tags.clone());
    let ids = [image(&tags[0], "v1", true), image(&tags[1], "v2", true)];
    env.ok(&[
        "create",
        &path,
        "--kw",
        &format!("container#0.image={}", tags[0]),
        "--kw",
        "container#0.command=/bin/busybox httpd -f -p 80 -h /www",
        "--kw",
        "update=rolling",
        "--kw",
        "update_monitor=500ms",
        "--kw",
        "container#0.stop_timeout=1s",
    ]);
    env.ok(&[&path, "start"]);
    let ctr = format!("{ns}..web.container.0");
    // A tag only (env) is no container change: nothing rolls.
    let before = common::docker(&["inspect", "-f", "{{.Id}}", &ctr]).stdout;
    env.ok(&[&path, "set", "--kw", "env=TST"]);
    env.ok(&[
        &path,
        "set",
        "--kw",
        &format!("container#0.image={}", tags[1]),
    ]);
    wait_until("v2 rolled out by itself", 60, || {
        running_image(&ctr) == ids[1]
    });
    assert_ne!(
        common::docker(&["inspect", "-f", "{{.Id}}", &ctr]).stdout,
        before
    );
    wait_until("the rollout recorded", 30, || {
        history(&env, &path).iter().any(|v| {
            v["outcome"]["state"] == "deployed"
                && v["config"].as_str().is_some_and(|c| c.contains(&tags[1]))
        })
    });
    // The config before the first change is version 1, rollback's target.
    let h = history(&env, &path);
    assert!(
        h[0]["config"]
            .as_str()
            .unwrap_or_default()
            .contains(&tags[0]),
        "{h:#?}"
    );
}

#[test]
fn bad_update_values_are_refused_at_set() {
    let env = Env::start();
    let path = format!("{}/web", unique("du"));
    env.create_svc(&path, &[]);
    for (kw, says) in [
        ("update_parallelism=0", "out of range"),
        ("update_order=sideways", "sideways"),
        ("update_delay=-1s", "update_delay"),
        ("update=sometimes", "sometimes"),
        ("update_failure_action=panic", "panic"),
    ] {
        let out = env.berth(&[&path, "set", "--kw", kw]);
        assert_eq!(out.status.code(), Some(2), "{kw}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{kw}: {out:?}"
        );
    }
    let out = env.berth(&[&path, "deploy", "--parallelism", "0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn an_agent_restart_mid_rollout_resumes_it_without_a_bounce() {
    let mut env = Env::start();
    let ns = unique("dz");
    let path = format!("{ns}/web");
    let repo = format!("berth-test/{ns}");
    let tags: Vec<String> = (1..=2).map(|n| format!("{repo}:{n}")).collect();
    let _images = Images(tags.clone());
    let ids = [image(&tags[0], "v1", true), image(&tags[1], "v2", true)];
    // A long gate, for the agent to die in.
    let ctr = start_web(&env, &path, &tags[0], &["update_monitor=20s"]);
    env.ok(&[
        &path,
        "set",
        "--kw",
        &format!("container#0.image={}", tags[1]),
    ]);
    let deploy = {
        let (home, path) = (env.home().to_path_buf(), path.clone());
        std::thread::spawn(move || {
            std::process::Command::new(common::BIN)
                .args([&path, "deploy"])
                .env("BERTH_HOME", home)
                .output()
                .expect("deploy")
        })
    };
    wait_until("the instance replaced", 30, || {
        running_image(&ctr) == ids[1]
    });
    let started = common::docker(&["inspect", "-f", "{{.State.StartedAt}}", &ctr]).stdout;
    wait_until("the rollout in its gate", 30, || {
        history(&env, &path)
            .last()
            .is_some_and(|v| v["outcome"]["state"] == "in-progress")
    });
    env.kill_daemon();
    let out = deploy.join().expect("deploy thread");
    assert!(!out.status.success(), "the deploy outlived its daemon");
    env.start_daemon();
    wait_until("the rollout finished after the restart", 90, || {
        history(&env, &path)
            .last()
            .is_some_and(|v| v["outcome"]["state"] == "deployed")
    });
    let h = history(&env, &path);
    let last = h.last().cloned().unwrap_or_default();
    assert!(
        last["log"].as_array().is_some_and(|l| l
            .iter()
            .any(|x| x.as_str().is_some_and(|s| s.starts_with("resumed")))),
        "{last:#}"
    );
    assert_eq!(running_image(&ctr), ids[1]);
    assert_eq!(
        common::docker(&["inspect", "-f", "{{.State.StartedAt}}", &ctr]).stdout,
        started,
        "the instance was bounced"
    );
}

fn container_field(ctr: &str, field: &str) -> String {
    let out = common::docker(&["inspect", "-f", field, ctr]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Unix ns of the first `event` of container `id` since `since` (s).
fn event_ns(id: &str, event: &str, since: u64) -> Option<u128> {
    let until = (now_ms() / 1000 + 1).to_string();
    let out = common::docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &until,
        "--filter",
        &format!("container={id}"),
        "--filter",
        &format!("event={event}"),
        "--format",
        "{{.TimeNano}}",
    ]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .min()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[test]
fn start_first_starts_the_new_container_before_the_old_stops_and_keeps_the_old_on_failure() {
    let mut env = Env::start();
    let ns = unique("sf");
    let path = format!("{ns}/web");
    let repo = format!("berth-test/{ns}");
    let tags: Vec<String> = (1..=3).map(|n| format!("{repo}:{n}")).collect();
    let _images = Images(tags.clone());
    let ids = [
        image(&tags[0], "v1", true),
        image(&tags[1], "v2", true),
        image(&tags[2], "v3", false),
    ];
    let ctr = start_web(
        &env,
        &path,
        &tags[0],
        &[
            "topology=flex",
            "update_order=start-first",
            "update_monitor=1s",
        ],
    );
    let twin = format!("{ctr}.next");
    let old_id = container_field(&ctr, "{{.Id}}");
    let since = now_ms() / 1000;

    env.ok(&[
        &path,
        "set",
        "--kw",
        &format!("container#0.image={}", tags[1]),
    ]);
    let said = env.ok(&[&path, "deploy"]);
    assert!(said.contains("deployed"), "{said}");
    let new_id = container_field(&ctr, "{{.Id}}");
    assert_ne!(new_id, old_id);
    assert_eq!(running_image(&ctr), ids[1]);
    let started = event_ns(&new_id, "start", since).expect("the new container's start");
    let died = event_ns(&old_id, "die", since).expect("the old container's stop");
    assert!(
        started < died,
        "the old container stopped before the new one started"
    );
    assert!(container_field(&twin, "{{.Id}}").is_empty(), "{twin} left");

    // v3 never becomes healthy: the running v2 container is not touched.
    let v2_started = container_field(&ctr, "{{.State.StartedAt}}");
    env.ok(&[
        &path,
        "set",
        "--kw",
        &format!("container#0.image={}", tags[2]),
    ]);
    let out = env.berth(&[&path, "deploy"]);
    assert!(!out.status.success(), "{out:?}");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("did not become healthy"), "{text}");
    assert_eq!(container_field(&ctr, "{{.Id}}"), new_id);
    assert_eq!(container_field(&ctr, "{{.State.StartedAt}}"), v2_started);
    assert_eq!(running_image(&ctr), ids[1]);
    assert!(container_field(&twin, "{{.Id}}").is_empty(), "{twin} left");
    let last = history(&env, &path).last().cloned().unwrap_or_default();
    assert_eq!(last["outcome"]["state"], "rolled-back", "{last:#}");
    leftover_twins_are_settled(&mut env, &ctr, &twin, &new_id);
}

/// An agent that died mid-replacement: a twin alone is adopted (the same
/// container, not a new one); a twin next to the container goes.
fn leftover_twins_are_settled(env: &mut Env, ctr: &str, twin: &str, id: &str) {
    env.stop_daemon();
    let out = common::docker(&["rename", ctr, twin]);
    assert!(out.status.success(), "{out:?}");
    env.start_daemon();
    wait_until("the twin adopted under the name", 30, || {
        container_field(ctr, "{{.Id}}") == id
    });
    assert!(container_field(twin, "{{.Id}}").is_empty(), "{twin} left");
    assert_eq!(container_field(ctr, "{{.State.Running}}"), "true");

    env.stop_daemon();
    let out = common::docker(&[
        "run",
        "-d",
        "--name",
        twin,
        common::IMAGE,
        "/bin/busybox",
        "sleep",
        "300",
    ]);
    assert!(out.status.success(), "{out:?}");
    env.start_daemon();
    wait_until("the stray twin removed", 30, || {
        container_field(twin, "{{.Id}}").is_empty()
    });
    assert_eq!(container_field(ctr, "{{.Id}}"), id);
}
