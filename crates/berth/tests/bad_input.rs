//! Bad input gets a clear error, a non-zero exit, and changes nothing.

mod common;
use common::*;
use std::time::Duration;

fn unchanged_after(env: &Env, ns: &str, args: &[&str], expect: &str) {
    let file = env.config_file(ns, "svc");
    let before = std::fs::read(&file).expect("config file");
    let err = env.fails(args);
    assert!(err.contains(expect), "expected {expect:?} in:\n{err}");
    assert_eq!(
        std::fs::read(&file).expect("config file"),
        before,
        "config changed by a refused edit"
    );
}

#[test]
fn refused_edits_name_the_problem_and_write_nothing() {
    let env = Env::start();
    env.create_svc("bad/svc", &[]);
    let p = "bad/svc";
    unchanged_after(&env, "bad", &[p, "set", "--kw", "nope=1"], "nope");
    unchanged_after(&env, "bad", &[p, "set", "--kw", "bogus#0.x=1"], "bogus");
    unchanged_after(
        &env,
        "bad",
        &[p, "set", "--kw", "container#0.restart=abc"],
        "restart",
    );
    unchanged_after(
        &env,
        "bad",
        &[p, "set", "--kw", "docker_data_dir=/srv/{nope}"],
        "{nope}",
    );
    // Bad input is a usage error: exit code 2.
    assert_eq!(
        env.berth(&[p, "set", "--kw", "nope=1"]).status.code(),
        Some(2)
    );
    // The error carries file:line.
    let err = env.fails(&[p, "set", "--kw", "container#0.restart=abc"]);
    let file = env.config_file("bad", "svc");
    assert!(err.contains(&format!("{}:", file.display())), "{err}");
}

#[test]
fn one_bad_object_in_a_selection_writes_none() {
    let env = Env::start();
    env.create_svc("multi/a", &[]);
    env.create_svc("multi/b", &[]);
    // Break b by hand so a valid-looking edit fails on it only.
    let fb = env.config_file("multi", "b");
    let fa = env.config_file("multi", "a");
    let broken = std::fs::read_to_string(&fb).expect("read") + "[container#1]\nrestart = lots\n";
    std::fs::write(&fb, &broken).expect("write");
    let a_before = std::fs::read(&fa).expect("read");
    env.fails(&["multi/*", "set", "--kw", "env=DEV"]);
    assert_eq!(std::fs::read(&fa).expect("read"), a_before);
    assert_eq!(std::fs::read_to_string(&fb).expect("read"), broken);
}

#[test]
fn invalid_names_and_empty_selections() {
    let env = Env::start();
    let err = env.fails(&["create", "App_1/x"]);
    assert!(err.contains("App_1") && err.contains("RFC 1123"), "{err}");
    assert!(!env.home().join("etc/namespaces/App_1").exists());
    let err = env.fails(&["nothing-*/*", "start"]);
    assert!(err.contains("matches no object"), "{err}");
    let err = env.fails(&["nothing-*/*", "print", "status", "--format", "json"]);
    assert!(err.contains("matches no object"), "{err}");
}

#[test]
fn missing_image_is_reported_on_the_resource() {
    let env = Env::start();
    env.ok(&[
        "create",
        "img/svc",
        "--kw",
        &format!("container#0.image={ABSENT_IMAGE}"),
    ]);
    let out = env.fails(&["img/svc", "start"]);
    assert!(out.contains(ABSENT_IMAGE), "{out}");
    let st = env.status("img/svc");
    assert_eq!(st["avail"], "down");
    let log = st["resources"][0]["log"].to_string();
    assert!(log.contains("does-not-exist"), "{st:#}");
}

#[test]
fn port_already_in_use() {
    let env = Env::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    env.create_svc(
        "port/svc",
        &[&format!("container#0.ports=127.0.0.1:{port}:80/tcp")],
    );
    let out = env.fails(&["port/svc", "start"]);
    assert!(
        out.to_lowercase().contains("address already in use")
            || out.contains("port is already allocated"),
        "{out}"
    );
    assert_eq!(env.status("port/svc")["avail"], "down");
    drop(listener);
}

#[test]
fn docker_data_dir_not_writable() {
    let env = Env::start();
    let file = env.home().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let dir = format!("{}/sub/docker", file.display());
    env.create_svc("ro/svc", &[&format!("docker_data_dir={dir}")]);
    let out = env.fails(&["ro/svc", "start"]);
    assert!(out.contains(&dir), "{out}");
    env.ok(&["daemon", "status"]);
}

#[test]
fn hand_edited_invalid_config_is_reported_and_not_applied() {
    let env = Env::start();
    env.create_svc("hand/svc", &[]);
    env.ok(&["hand/svc", "start"]);
    let file = env.config_file("hand", "svc");
    let good = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        good.replace(
            &format!("image = {IMAGE}"),
            &format!("image = {IMAGE}\nrestart = lots"),
        ),
    )
    .expect("write");
    // A status between passes may not have asked Docker yet (seen once in
    // CI as n/a); the last valid config must keep running once it has.
    let st = env.wait_status("hand/svc", 30, |s| {
        s["log"].to_string().contains("invalid") && s["avail"] == "up"
    });
    assert!(st["log"].to_string().contains("restart"), "{st:#}");
    // The running config is still the old one.
    let default = env.json(&["doc", "container.restart"])["default"]
        .as_str()
        .expect("restart has a default")
        .to_string();
    assert_eq!(
        env.ok(&["hand/svc", "get", "--kw", "container#0.restart", "--eval"])
            .trim(),
        default
    );
    // An edit through berth on top of the broken file is refused.
    env.fails(&["hand/svc", "set", "--kw", "env=DEV"]);
    // A valid hand edit is picked up.
    std::fs::write(
        &file,
        good.replace("[container#0]", "[container#0]\nrestart = 5"),
    )
    .expect("write");
    env.wait_status("hand/svc", 30, |s| {
        !s["log"].to_string().contains("invalid")
    });
    assert_eq!(
        env.ok(&["hand/svc", "get", "--kw", "container#0.restart"])
            .trim(),
        "5"
    );
}

#[test]
fn dockerd_down_makes_status_warn_and_the_daemon_survives() {
    let dead = tempfile::tempdir().expect("tempdir");
    let sock = dead.path().join("nobody.sock");
    let env = Env::start_with(&["--docker-socket", sock.to_str().expect("utf8")]);
    env.create_svc("down/svc", &[]);
    let out = env.fails(&["down/svc", "start"]);
    assert!(out.contains("not answering"), "{out}");
    let st = env.wait_status("down/svc", 15, |s| s["avail"] == "warn");
    assert!(
        st["resources"][0]["log"]
            .to_string()
            .contains("not answering"),
        "{st:#}"
    );
    std::thread::sleep(Duration::from_millis(300));
    env.ok(&["daemon", "status"]);
}

#[test]
fn no_daemon_gives_a_clear_message() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(BIN)
        .args(["ls"])
        .env("BERTH_HOME", home.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no berth daemon answers") && err.contains("berth daemon start"),
        "{err}"
    );
}
