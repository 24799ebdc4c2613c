//! The Consul-compatible HTTP API, driven by a real Consul client library
//! (py-consul, from PyPI, in the venv `scripts/py-clients` makes) and by
//! curl for the bad-input cases.

mod common;

use common::{free_port, unique, Env};
use std::path::PathBuf;
use std::process::Command;

/// A daemon serving the Consul API on a port of its own.
fn consul_env() -> (Env, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    (Env::start_with(&["--consul-addr", &addr]), port)
}

fn python() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/py-clients/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/py-clients (scripts/test does)",
        p.display()
    );
    p
}

fn run_py(script: &str, port: u16) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = Command::new(python())
        .arg(&path)
        .args(["127.0.0.1", &port.to_string(), &unique("py")])
        .output()
        .expect("run python");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{script} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn py_consul_kv_cas_recurse_keys_and_transactions() {
    let (_env, port) = consul_env();
    run_py("consul_kv.py", port);
}

#[test]
fn py_consul_sessions_ttl_locks_and_lock_delay() {
    let (_env, port) = consul_env();
    run_py("consul_session.py", port);
}

#[test]
fn py_consul_blocking_query_wakes_on_its_own_key_only() {
    let (_env, port) = consul_env();
    run_py("consul_blocking.py", port);
}

/// `curl` with the status code on the last line.
fn curl(port: u16, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "--path-as-is", "-X", method, "-w", "\n%{http_code}"]);
    let file;
    if let Some(b) = body {
        file = tempfile::NamedTempFile::new().expect("temp");
        std::fs::write(file.path(), b).expect("write body");
        c.arg("--data-binary")
            .arg(format!("@{}", file.path().display()));
    }
    let out = c
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// Everything in the store, as a recursive read of the root shows it.
fn everything(port: u16) -> String {
    curl(port, "GET", "/v1/kv/?recurse", None).1
}

/// Method, path, body, expected status, and what the answer says.
type Case<'a> = (&'a str, &'a str, Option<&'a [u8]>, u16, &'a str);

#[test]
fn bad_input_gets_consuls_answer_and_changes_nothing() {
    let (_env, port) = consul_env();
    assert_eq!(curl(port, "PUT", "/v1/kv/k", Some(b"v")).0, 200);
    let before = everything(port);
    let big = vec![b'x'; 512 * 1024 + 1];
    let many: Vec<String> = (0..129)
        .map(|i| format!(r#"{{"KV":{{"Verb":"set","Key":"m{i}","Value":"eA=="}}}}"#))
        .collect();
    let many = format!("[{}]", many.join(","));
    let cases: Vec<Case> = vec![
        ("PUT", "/v1/kv/big", Some(&big), 413, "too large"),
        (
            "PUT",
            "/v1/txn",
            Some(br#"[{"KV":{"Verb":"set","Key":"b","Value":"!!"}}]"#),
            400,
            "Failed to parse",
        ),
        (
            "PUT",
            "/v1/txn",
            Some(many.as_bytes()),
            413,
            "too many operations",
        ),
        (
            "PUT",
            "/v1/kv/k?acquire=00000000-0000-0000-0000-000000000000",
            Some(b"x"),
            500,
            "invalid session",
        ),
        (
            "PUT",
            "/v1/kv/k?cas=1&acquire=x",
            Some(b"x"),
            400,
            "Conflicting flags",
        ),
        (
            "DELETE",
            "/v1/kv/k?recurse&cas=3",
            None,
            400,
            "Conflicting flags",
        ),
        ("GET", "/v1/kv/k?index=abc", None, 400, "Invalid index"),
        ("GET", "/v1/kv/k?index=1&wait=5", None, 400, "Invalid wait"),
        ("GET", "/v1/kv/k?stale&consistent", None, 400, "conflicting"),
        ("PUT", "/v1/kv/a/../k", Some(b"x"), 400, "invalid key"),
        ("PUT", "/v1/kv/a%00b", Some(b"x"), 400, "invalid key"),
        (
            "PUT",
            "/v1/session/renew/00000000-0000-0000-0000-000000000000",
            None,
            404,
            "not found",
        ),
        (
            "PUT",
            "/v1/session/create",
            Some(br#"{"TTL":"1s"}"#),
            400,
            "Invalid Session TTL",
        ),
    ];
    for (method, path, body, code, says) in cases {
        let (got, text) = curl(port, method, path, body);
        assert_eq!(got, code, "{method} {path}: {text}");
        assert!(
            text.contains(says),
            "{method} {path}: {text:?} lacks {says:?}"
        );
    }
    // A stale cas is a plain false.
    let (code, text) = curl(port, "PUT", "/v1/kv/k?cas=1", Some(b"x"));
    assert_eq!((code, text.trim()), (200, "false"));
    assert_eq!(
        everything(port),
        before,
        "a refused request changed the store"
    );
    let (code, text) = curl(
        port,
        "GET",
        "/v1/session/info/00000000-0000-0000-0000-000000000000",
        None,
    );
    assert_eq!((code, text.trim()), (200, "[]"));
}
