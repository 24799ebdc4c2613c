//! Every subcommand takes `--help` and the global flags before or after
//! it; exit codes follow the README (0 ok, 1 failed, 2 bad input); output
//! meant for files and pipes carries no terminal codes.

mod common;
use clap::CommandFactory;
use common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every subcommand path of `cmd`, e.g. `["cluster", "ca", "rotate"]`.
fn paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let mut p = prefix.clone();
        p.push(sub.get_name().to_string());
        out.push(p.clone());
        paths(sub, p, out);
    }
}

fn code(env: &Env, args: &[&str]) -> Option<i32> {
    env.berth(args).status.code()
}

#[test]
fn every_subcommand_takes_help_and_the_global_flags_anywhere() {
    let env = Env::start();
    let home = env.home().to_str().expect("utf8").to_string();
    let mut all = Vec::new();
    paths(&berth_cli::Cli::command(), Vec::new(), &mut all);
    let mut objects = Vec::new();
    paths(
        &berth_cli::args::ObjectCli::command(),
        Vec::new(),
        &mut objects,
    );
    all.extend(
        objects
            .into_iter()
            .map(|p| [vec!["x/y".to_string()], p].concat()),
    );
    let mut nodes = Vec::new();
    paths(&berth_cli::args::NodeCli::command(), Vec::new(), &mut nodes);
    all.extend(
        nodes
            .into_iter()
            .map(|p| [vec!["node".into(), "n1".into()], p].concat()),
    );
    all.push(vec!["node".into(), "ls".into()]);
    assert!(all.len() > 40, "{all:?}");
    for p in &all {
        let p: Vec<&str> = p.iter().map(String::as_str).collect();
        fn join<'a>(p: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
            [p, extra].concat()
        }
        let with = |extra: &[&'static str]| join(&p, extra);
        assert_eq!(code(&env, &with(&["--help"])), Some(0), "{p:?} --help");
        assert_eq!(
            code(
                &env,
                &join(&p, &["--format", "json", "--home", &home, "--help"])
            ),
            Some(0),
            "{p:?}: global flags after the subcommand"
        );
        assert_eq!(
            code(
                &env,
                &[&["--format", "json"][..], &with(&["--help"])].concat()
            ),
            Some(0),
            "{p:?}: global flags before the subcommand"
        );
        // `docker` hands its arguments to the docker CLI.
        if p.last() != Some(&"docker") {
            assert_eq!(
                code(&env, &with(&["--no-such-flag"])),
                Some(2),
                "{p:?} --no-such-flag"
            );
        }
    }
    // Flags after a subcommand work for real, not only with --help.
    let out = env.ok(&["node", "ls", "--format", "json"]);
    assert!(out.trim_start().starts_with('['), "{out}");
    let out = env.ok(&["ls", "--format", "json"]);
    assert!(out.trim_start().starts_with('['), "{out}");
}

#[test]
fn bad_input_is_exit_code_2() {
    let env = Env::start();
    env.create_svc("cons/a", &[]);
    for (args, why) in [
        (&["app[1-*/*", "ls"][..], "unbalanced selector"),
        (&["doc", "nosuch"], "unknown keyword in doc"),
        (
            &["cons/a", "get", "--kw", "nosuch"],
            "unknown keyword in get",
        ),
        (
            &["cons/a", "set", "--kw", "nosuch=1"],
            "unknown keyword in set",
        ),
    ] {
        let out = env.berth(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{why}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let err = env.fails(&["app[1-*/*", "ls"]);
    assert!(err.contains("unbalanced"), "{err}");
    // A hand-edited config that is not UTF-8 is bad input too.
    let file = env.config_file("cons", "a");
    let mut bytes = std::fs::read(&file).expect("read");
    bytes.extend_from_slice(b"# \xff\xfe\n");
    std::fs::write(&file, bytes).expect("write");
    let out = env.berth(&["cons/a", "set", "--kw", "env=DEV"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("UTF-8"));
}

#[test]
fn help_texts_say_what_users_need() {
    let run = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().expect("run");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let usage = run(&["x/y", "--help"]);
    let line = usage
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .expect("usage line");
    assert_eq!(line.matches("SELECTOR").count(), 1, "{line}");
    assert!(run(&["x/y", "set", "--help"]).contains("KEYWORD=VALUE"));
    let mon = run(&["mon", "--help"]);
    for marker in ["O ", "X ", "^ ", "* ", "! ", "/ "] {
        assert!(
            mon.contains(&format!("\n  {marker}")),
            "{marker:?} in {mon}"
        );
    }
    let doc = run(&["doc", "restart"]);
    assert!(doc.starts_with("container.restart"), "{doc}");
}

#[test]
fn logs_and_pipes_get_no_terminal_codes() {
    let env = Env::start();
    env.create_svc("cons2/a", &[]);
    // The daemon's log is a file: no colour.
    env.ok(&["cons2/a", "start"]);
    assert!(
        !env.daemon_log().contains('\x1b'),
        "ANSI codes in the daemon log"
    );
    // Its events end with the state the start reached.
    let events = env.ok(&["events", "--last", "50", "--no-follow"]);
    let last = events
        .lines()
        .rfind(|l| l.contains("cons2/a"))
        .expect("events of the start");
    assert!(last.ends_with("cons2/a up"), "{events}");
    // mon --watch into a pipe: the grid, without clear-screen codes.
    let mut child = Command::new(BIN)
        .args(["mon", "--watch"])
        .env("BERTH_HOME", env.home())
        .stdout(Stdio::piped())
        .spawn()
        .expect("mon --watch");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match stdout.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if String::from_utf8_lossy(&buf).matches("Services").count() >= 2 {
                break;
            }
        }
        buf
    });
    let buf = reader.join().expect("reader");
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&buf);
    assert!(text.contains("cons2/a"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "terminal codes in piped mon --watch: {text:?}"
    );
}
