//! The seed's "Docker Hosting" walkthrough, end to end: six services with
//! env and app tags, each on its own private dockerd.

mod common;
use common::*;

#[test]
fn seed_walkthrough_with_private_daemons() {
    let env = Env::start();
    let paths: Vec<String> = ["app1", "app2"]
        .iter()
        .flat_map(|a| {
            ["dev", "int", "prd"]
                .iter()
                .map(move |e| format!("{a}-{e}/svc1"))
        })
        .collect();
    for p in &paths {
        env.ok(&["create", p]);
    }
    env.ok(&["app[12]-dev/*", "set", "--kw", "env=DEV"]);
    env.ok(&["app[12]-int/*", "set", "--kw", "env=INT"]);
    env.ok(&["app[12]-prd/*", "set", "--kw", "env=PRD"]);
    env.ok(&["app1-*/*", "set", "--kw", "app=APP1"]);
    env.ok(&["app2-*/*", "set", "--kw", "app=APP2"]);
    let data = format!("{}/srv/{{path}}/docker", env.home().display());
    env.ok(&[
        "app*-*/*",
        "set",
        "--kw",
        &format!("docker_data_dir={data}"),
    ]);
    env.ok(&[
        "app*-*/*",
        "set",
        "--kw",
        "container#0.type=docker",
        "--kw",
        &format!("container#0.image={IMAGE}"),
        "--kw",
        "container#0.pull_policy=host",
    ]);

    let cfg = env.ok(&["app1-prd/svc1", "print", "config"]);
    assert!(cfg.starts_with("[DEFAULT]\nid = "), "{cfg}");
    for want in [
        "env = PRD",
        "app = APP1",
        "docker_data_dir = ",
        "[container#0]",
        "type = docker",
    ] {
        assert!(cfg.contains(want), "missing {want:?} in\n{cfg}");
    }
    assert_eq!(env.ok(&["app1-prd/svc1", "config", "show"]), cfg);

    // Selection by keyword: only the PRD services.
    let prd = env.json(&["env=PRD", "ls"]);
    let prd: Vec<&str> = prd
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|o| o["path"].as_str())
        .collect();
    assert_eq!(prd, vec!["app1-prd/svc1", "app2-prd/svc1"]);

    let mon = env.ok(&["mon", "app[12]-*/*"]);
    assert_eq!(
        mon.matches("X*").count(),
        6,
        "created services are down and frozen:\n{mon}"
    );

    let started = env.json(&["app*-*/*", "start"]);
    assert_eq!(started.as_array().map(|a| a.len()), Some(6));
    assert!(
        started
            .as_array()
            .expect("array")
            .iter()
            .all(|o| o["ok"] == true),
        "{started:#}"
    );

    let mon = env.ok(&["mon", "app[12]-*/*"]);
    assert_eq!(mon.matches("O^").count(), 6, "{mon}");

    // Six segregated docker environments: each private daemon has the image.
    let images = env.ok(&[
        "app*-*/*",
        "docker",
        "images",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]);
    assert_eq!(images.matches(IMAGE).count(), 6, "{images}");

    let st = env.status("app1-prd/svc1");
    assert_eq!(st["avail"], "up");
    assert_eq!(st["frozen"], false);
    let sock = st["docker_socket"].as_str().expect("socket").to_string();
    assert!(
        sock.ends_with("namespaces/app1-prd/svc1/docker.sock"),
        "{sock}"
    );
    let ps = docker_sock(&sock, &["ps", "--format", "{{.Names}}"]);
    assert_eq!(
        String::from_utf8_lossy(&ps.stdout).trim(),
        "app1-prd..svc1.container.0"
    );
    let tree = env.ok(&["app1-prd/svc1", "print", "status"]);
    assert!(
        tree.contains(&format!(
            "docker container app1-prd..svc1.container.0@{IMAGE}"
        )),
        "{tree}"
    );

    // stop --local shows the docker calls and shuts the private daemon down.
    let out = env.ok(&["app1-prd/svc1", "stop", "--local"]);
    assert!(
        out.contains(&format!("docker -H unix://{sock} stop")),
        "{out}"
    );
    assert!(
        out.contains("no more container handled by docker daemon"),
        "{out}"
    );
    assert!(
        !std::path::Path::new(&sock).exists()
            || docker_sock(&sock, &["ps"]).status.code() != Some(0)
    );
    assert_eq!(env.status("app1-prd/svc1")["avail"], "down");

    let out = env.ok(&["app1-prd/svc1", "start", "--local"]);
    assert!(out.contains("starting docker daemon"), "{out}");
    assert!(out.contains("dockerd -H unix://"), "{out}");
    assert_eq!(env.status("app1-prd/svc1")["avail"], "up");

    // The other services were never touched.
    for p in paths.iter().filter(|p| *p != "app1-prd/svc1") {
        assert_eq!(env.status(p)["avail"], "up", "{p}");
    }
}
