//! Secrets end to end: sealed at rest (the node's files are scanned for
//! the plaintext), decoded only by admins, refused bad input, delivered
//! into a container on a tmpfs and gone when it stops.

mod common;

use common::remote::{text, Remote};
use common::*;
use std::process::Command;

/// `plain` as it may be found in a file: as is, and base64-encoded at
/// each of the three alignments it can take inside a longer base64 text
/// (less the partial groups at its ends).
fn disguises(plain: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = vec![plain.to_vec()];
    for pad in 0..3 {
        let mut v = vec![b'x'; pad];
        v.extend_from_slice(plain);
        let enc = b64.encode(&v);
        let enc = enc.trim_end_matches('=');
        out.push(enc.as_bytes()[4..enc.len() - 4].to_vec());
    }
    out
}

#[test]
fn a_secret_is_sealed_at_rest_decoded_only_by_admins_and_delivered_on_a_tmpfs() {
    let r = Remote::new();
    let ns = format!("app1-{}", r.tag);
    // A value no file of the node could hold by chance.
    let plain = format!("pw-{}-{}", r.tag, std::process::id() * 7919);
    r.env.ok(&["create", &format!("{ns}/sec/db")]);
    let mut add = Command::new(BIN);
    add.args([
        &format!("{ns}/sec/db"),
        "add",
        "--key",
        "password",
        "--from",
        "-",
    ])
    .env("BERTH_HOME", r.env.home());
    let out = run_with_stdin(add, &plain);
    assert!(out.status.success(), "{}", text(&out));
    let keys = r.env.ok(&[&format!("{ns}/sec/db"), "keys"]);
    assert!(
        keys.contains("password") && keys.contains("version 1"),
        "{keys}"
    );
    assert_eq!(
        r.env
            .ok(&[&format!("{ns}/sec/db"), "decode", "--key", "password"]),
        plain
    );

    // Bad input: refused, nothing written.
    for (args, why) in [
        (
            vec!["add", "--key", "a/b", "--value", "x"],
            "not a key name",
        ),
        (vec!["add", "--key", "..", "--value", "x"], "not a key name"),
        (
            vec!["add", "--key", "password", "--value", "x"],
            "already has key",
        ),
    ] {
        let mut all = vec![format!("{ns}/sec/db")];
        all.extend(args.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let said = r.env.fails(&all);
        assert!(said.contains(why), "{all:?}: {said}");
    }
    let big = r.env.home().join("big");
    std::fs::write(&big, vec![b'x'; 500 * 1024 + 1]).unwrap();
    let said = r.env.fails(&[
        &format!("{ns}/sec/db"),
        "add",
        "--key",
        "big",
        "--from",
        big.to_str().unwrap(),
    ]);
    assert!(said.contains("500 KiB"), "{said}");
    std::fs::remove_file(&big).unwrap();
    let keys = r.env.ok(&[&format!("{ns}/sec/db"), "keys"]);
    assert_eq!(keys.lines().count(), 1, "{keys}");

    // Decoding takes admin: an operator of the namespace may not.
    r.pin_ca();
    r.user("op", Some(&format!("operator:{ns}")), None);
    r.user("adm", Some(&format!("admin:{ns}")), None);
    let (op, adm) = (r.token("op", "1h"), r.token("adm", "1h"));
    let said = text(&r.remote(
        Some(&op),
        &[&format!("{ns}/sec/db"), "decode", "--key", "password"],
    ));
    assert!(said.contains("may not decode"), "{said}");
    assert!(!said.contains(&plain));
    let out = r.remote(
        Some(&adm),
        &[&format!("{ns}/sec/db"), "decode", "--key", "password"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        plain,
        "{}",
        text(&out)
    );

    // Delivered into a container, on a tmpfs, owned by its user.
    r.env.create_svc(
        &format!("{ns}/web"),
        &[
            "topology=flex",
            "container#0.user=1000:1000",
            "container#0.secrets=db/password:/run/secrets/db_password",
        ],
    );
    r.env.ok(&[&format!("{ns}/web"), "start"]);
    let name = format!("{ns}..web.container.0");
    let inside = docker(&["exec", &name, "cat", "/run/secrets/db_password"]);
    assert_eq!(String::from_utf8_lossy(&inside.stdout), plain, "{inside:?}");
    let mounts = docker(&["exec", &name, "cat", "/proc/mounts"]);
    let mounts = String::from_utf8_lossy(&mounts.stdout);
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/run/secrets/db_password"))
        .unwrap_or_else(|| panic!("no mount at the secret's path:\n{mounts}"));
    assert!(
        line.split(' ').nth(2) == Some("tmpfs") && line.contains("ro"),
        "{line}"
    );
    let inspect = docker(&["inspect", &name]);
    assert!(!String::from_utf8_lossy(&inspect.stdout).contains(&plain));

    // Nowhere on disk: the home (but the tmpfs), the Raft files, Docker's
    // files of the container.
    let files = r.env.home().join("run/files");
    let found = files_holding(r.env.home(), &disguises(plain.as_bytes()), Some(&files));
    assert!(found.is_empty(), "the plaintext is on disk: {found:?}");
    let id = String::from_utf8_lossy(&docker(&["inspect", "-f", "{{.Id}}", &name]).stdout)
        .trim()
        .to_string();
    let root = String::from_utf8_lossy(&docker(&["info", "-f", "{{.DockerRootDir}}"]).stdout)
        .trim()
        .to_string();
    let found = files_holding(
        &std::path::Path::new(&root).join("containers").join(&id),
        &disguises(plain.as_bytes()),
        Some(&files),
    );
    assert!(
        found.is_empty(),
        "the plaintext is in Docker's files: {found:?}"
    );
    let audit = r.env.ok(&["audit", "--format", "json"]);
    let events = r.env.ok(&["events", "--no-follow", "--last", "1000"]);
    for d in disguises(plain.as_bytes()) {
        let d = String::from_utf8_lossy(&d).into_owned();
        assert!(!audit.contains(&d) && !events.contains(&d));
    }

    // Stopped: the tmpfs is gone.
    r.env.ok(&[&format!("{ns}/web"), "stop"]);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&format!("run/files/{name}")),
        "the tmpfs outlived the stop"
    );
}

fn docker_text(args: &[&str]) -> String {
    String::from_utf8_lossy(&docker(args).stdout).to_string()
}

/// The environment of a container's main process.
fn environ(container: &str) -> Vec<String> {
    docker_text(&["exec", container, "cat", "/proc/1/environ"])
        .split('\0')
        .map(str::to_string)
        .collect()
}

#[test]
fn a_change_reaches_variables_by_a_restart_and_signalled_files_in_place() {
    let r = Remote::new();
    let env = &r.env;
    let ns = format!("rot-{}", r.tag);
    let db = format!("{ns}/sec/db");
    let app = format!("{ns}/cfg/app");
    env.ok(&["create", &db]);
    env.ok(&[&db, "add", "--key", "password", "--value", "first-pw"]);
    env.ok(&["create", &app]);
    env.ok(&[&app, "add", "--key", "level", "--value", "debug"]);
    // Variables: the value is in the container's environment.
    let envy = format!("{ns}/envy");
    env.create_svc(
        &envy,
        &[
            "topology=flex",
            "container#0.secrets_environment=DB_PW=db/password",
            "container#0.configs_environment=LEVEL=app/level",
        ],
    );
    // Files, re-read on SIGHUP: the trap copies the file where we look.
    let hup = format!("{ns}/hup");
    env.create_svc(
        &hup,
        &[
            "topology=flex",
            "container#0.secrets=db/password:/run/secrets/pw",
            "container#0.secrets_reload=signal:HUP",
            r#"container#0.command=/bin/sh -c "trap 'cat /run/secrets/pw > /seen' HUP; while true; do sleep 1 & wait; done""#,
        ],
    );
    env.ok(&[&envy, "start"]);
    env.ok(&[&hup, "start"]);
    let envy_c = format!("{ns}..envy.container.0");
    let hup_c = format!("{ns}..hup.container.0");
    let vars = environ(&envy_c);
    assert!(
        vars.iter().any(|l| l == "DB_PW=first-pw") && vars.iter().any(|l| l == "LEVEL=debug"),
        "{vars:?}"
    );
    let st = env.ok(&[&envy, "print", "status"]);
    assert!(
        st.contains("holds cfg/app/level@1 sec/db/password@1"),
        "{st}"
    );
    // The docker create berth records (events, the daemon's log) names
    // the variable, not its value.
    let events = env.ok(&["events", "--no-follow", "--last", "1000"]);
    assert!(events.contains("-e DB_PW=<secret>"), "{events}");
    assert!(!events.contains("first-pw") && !env.daemon_log().contains("first-pw"));
    let json = env.json(&[&envy, "print", "status"]);
    assert_eq!(
        json[0]["resources"][0]["values"]["sec/db/password"], 1,
        "{json}"
    );
    let started = docker_text(&["inspect", "-f", "{{.State.StartedAt}}", &hup_c]);

    env.ok(&[&db, "change", "--key", "password", "--value", "second-pw"]);
    wait_until("the signalled container to re-read its file", 60, || {
        docker_text(&["exec", &hup_c, "cat", "/seen"]) == "second-pw"
    });
    assert_eq!(
        docker_text(&["inspect", "-f", "{{.State.StartedAt}}", &hup_c]),
        started,
        "a signal:HUP container is not restarted"
    );
    wait_until("the variable's new version", 60, || {
        environ(&envy_c).iter().any(|l| l == "DB_PW=second-pw")
    });
    for svc in [&envy, &hup] {
        wait_until("print status showing version 2", 30, || {
            env.ok(&[svc, "print", "status"])
                .contains("sec/db/password@2")
        });
    }
    env.ok(&[&envy, "stop"]);
    env.ok(&[&hup, "stop"]);
}
