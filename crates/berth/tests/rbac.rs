//! Users, tokens and RBAC, end to end: every case of the permission
//! matrix (`crates/berth-auth/tests/permissions.txt`) sent through the
//! remote API by the CLI with `--server`, the login and its CA pinning,
//! and the tokens that must get 401.

mod common;

use berth_auth::matrix::{self, Where};
use common::remote::{text, Remote};
use common::*;
use std::process::{Command, Output};
use std::time::Duration;

/// The command a case is, or `None` for what berth cannot do yet.
fn case_args(r: &Remote, role: &str, action: &str, place: Where) -> Option<Vec<String>> {
    let ns = r.ns(place, role);
    let web = format!("{ns}/web");
    let v = |a: &[&str]| Some(a.iter().map(|s| s.to_string()).collect());
    let exists = place != Where::New;
    match action {
        "read" if exists => v(&[&web, "print", "config"]),
        "create" => v(&[
            "create",
            &format!("{ns}/c-{role}"),
            "--kw",
            &format!("container#0.image={IMAGE}"),
        ]),
        "set" if exists => v(&[&web, "set", "--kw", &format!("env={role}")]),
        "set_privileged" if exists => v(&[&web, "set", "--kw", "container#0.privileged=true"]),
        "start" if exists => v(&[&web, "start"]),
        "stop" if exists => v(&[&web, "stop"]),
        "delete" if exists => v(&[&format!("{ns}/del-{role}"), "delete"]),
        "grant" => v(&[
            "user",
            "grant",
            &format!("target-{}", r.tag),
            &format!("guest:{ns}"),
        ]),
        "node_admin" => v(&["node", &r.env.node, "label", "--kw", &format!("by={role}")]),
        "cluster_admin" => v(&["cluster", "token"]),
        "decode" if exists => v(&[&format!("{ns}/sec/s"), "decode", "--key", "k"]),
        "manage_secret" if exists => v(&[
            &format!("{ns}/sec/s"),
            "add",
            "--key",
            &format!("k-{role}"),
            "--value",
            "v",
        ]),
        _ => None,
    }
}

/// A Consul API request with curl: "<status> <body>".
fn consul_call(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-m", "10", "-w", "\n%{http_code}", "-X", method]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("X-Consul-Token: {t}")]);
    }
    if !body.is_empty() {
        cmd.args(["-d", body]);
    }
    let out = cmd
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (reply, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    format!("{} {reply}", code.trim())
}

#[test]
fn the_permission_matrix_holds_through_the_remote_api() {
    let consul_port = free_port();
    let consul = format!("127.0.0.1:{consul_port}");
    let r = Remote::with_daemon_args(&["--consul-addr", &consul]);
    let m = matrix::parse(include_str!("../../berth-auth/tests/permissions.txt")).unwrap();
    // Root prepares the namespaces over the socket.
    for w in [Where::In, Where::Out] {
        let ns = r.ns(w, "");
        // Flex: a failover instance would first wait for the new
        // cluster's first lease.
        r.env.create_svc(&format!("{ns}/web"), &["topology=flex"]);
        for role in m.roles.keys() {
            r.env.create_svc(&format!("{ns}/del-{role}"), &[]);
        }
        r.env.ok(&["create", &format!("{ns}/sec/s")]);
        r.env.ok(&[
            &format!("{ns}/sec/s"),
            "add",
            "--key",
            "k",
            "--value",
            "secret",
        ]);
    }
    r.user(&format!("target-{}", r.tag), None, None);
    // The CA is pinned by a login, as a user does it.
    r.pin_ca();

    let mut wrong = Vec::new();
    let mut ran = 0;
    for (role, grant) in &m.roles {
        let user = format!("u-{role}");
        r.user(&user, Some(&grant.to_string()), None);
        let token = r.token(&user, "1h");
        for c in m.cases.iter().filter(|c| &c.role == role) {
            let Some(args) = case_args(&r, role, &c.action, c.place) else {
                continue;
            };
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = r.remote(Some(&token), &args);
            ran += 1;
            let said = text(&out);
            // A refusal says so; an object the caller may not even see
            // is hidden from its selection instead.
            let ok = if c.allow {
                out.status.success()
            } else {
                !out.status.success()
                    && (said.contains("may not") || said.contains("matches no object"))
            };
            if !ok {
                wrong.push(format!(
                    "line {}: {role} {} {:?} expected {}: berth {args:?} exited {}: {said}",
                    c.line,
                    c.action,
                    c.place,
                    if c.allow { "allow" } else { "deny" },
                    out.status
                ));
            }
            if c.allow && c.action == "set_privileged" {
                r.env.ok(&[
                    &format!("{}/web", r.ns(c.place, role)),
                    "unset",
                    "--kw",
                    "container#0.privileged",
                ]);
            }
        }
    }
    // The read cases through the Consul API: a token sees the catalog
    // entry of an object exactly where the matrix lets it read.
    for w in [Where::In, Where::Out] {
        let entry = serde_json::json!({
            "Name": format!("mx-{}", r.ns(w, "")),
            "Meta": {"berth-path": format!("{}/web", r.ns(w, ""))},
        });
        let code = consul_call(
            &consul,
            "PUT",
            "/v1/agent/service/register",
            None,
            &entry.to_string(),
        );
        assert!(code.starts_with("200"), "register: {code}");
    }
    for c in m
        .cases
        .iter()
        .filter(|c| c.action == "read" && c.place != Where::New)
    {
        let token = r.token(&format!("u-{}", c.role), "1h");
        let path = format!("/v1/catalog/service/mx-{}", r.ns(c.place, ""));
        let reply = consul_call(&consul, "GET", &path, Some(&token), "");
        let seen = reply.starts_with("200") && reply.contains("berth-path");
        ran += 1;
        if seen != c.allow {
            wrong.push(format!(
                "line {}: {} read {:?} expected {} on the Consul API: {reply}",
                c.line,
                c.role,
                c.place,
                if c.allow { "allow" } else { "deny" },
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every case but those in a namespace with nothing in it yet, and the
    // read cases once more through the Consul API.
    let expected = m
        .cases
        .iter()
        .filter(|c| c.place != Where::New || ["create", "grant"].contains(&c.action.as_str()))
        .count()
        + m.cases
            .iter()
            .filter(|c| c.action == "read" && c.place != Where::New)
            .count();
    assert_eq!(ran, expected, "cases skipped");
}

#[test]
fn a_login_pins_the_ca_and_gives_a_token_that_lists_only_granted_objects() {
    let r = Remote::new();
    r.env.create_svc(&format!("app1-{}/web", r.tag), &[]);
    r.env.create_svc(&format!("app2-{}/web", r.tag), &[]);
    r.user(
        "alice",
        Some(&format!("operator:app1-{}", r.tag)),
        Some("alice password"),
    );

    // No pin: refused, naming the fingerprint to check.
    let out = r.login("alice", "alice password", &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains(&r.fingerprint), "{}", text(&out));
    // A wrong pin: refused before any password is sent.
    let out = r.login("alice", "alice password", &["--ca-sha256", &"0".repeat(64)]);
    assert!(
        text(&out).contains("refusing to send a password"),
        "{}",
        text(&out)
    );
    // A wrong password and an unknown user say the same.
    let bad = r.login(
        "alice",
        "not her password",
        &["--ca-sha256", &r.fingerprint],
    );
    let nobody = r.login(
        "nobody",
        "not her password",
        &["--ca-sha256", &r.fingerprint],
    );
    assert!(!bad.status.success() && !nobody.status.success());
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr),
        String::from_utf8_lossy(&nobody.stderr)
    );

    let out = r.login("alice", "alice password", &["--ca-sha256", &r.fingerprint]);
    assert!(out.status.success(), "{}", text(&out));
    let creds = r.cfg.path().join("credentials.json");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&creds).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "credentials readable by others: {mode:o}");
    let stored = std::fs::read_to_string(&creds).unwrap();
    assert!(!stored.contains("alice password"));

    let out = r.remote(None, &["ls", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["path"].as_str())
        .collect();
    assert_eq!(paths, vec![format!("app1-{}/web", r.tag)]);
    // Root's own listing on the socket still sees both.
    assert_eq!(r.env.json(&["ls"]).as_array().unwrap().len(), 2);
    let who = r.remote(None, &["whoami", "--format", "json"]);
    let who: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(who["user"], "alice");

    // Only TLS 1.3 is spoken.
    let old = Command::new("curl")
        .args([
            "-sk",
            "--tls-max",
            "1.2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("{}/v1/ca", r.server))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&old.stdout),
        "000",
        "TLS 1.2 was accepted"
    );
    // Without a token: 401; the CA needs none.
    let code = |path: &str, auth: Option<&str>| {
        let mut c = Command::new("curl");
        c.args(["-sk", "-o", "/dev/null", "-w", "%{http_code}"]);
        if let Some(t) = auth {
            c.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        let out = c
            .arg(format!("https://127.0.0.1:{}{path}", r.api_port))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(code("/v1/objects?selector=*", None), "401");
    assert_eq!(code("/v1/ca", None), "200");
    // Every route wants a token there, even those that do not ask who calls.
    for path in [
        "/v1/daemon",
        "/v1/kv?key=x",
        "/v1/catalog/services",
        "/v1/schema/keywords",
    ] {
        assert_eq!(code(path, None), "401", "{path}");
    }
    // And a token's rights hold on berth's own KV commands too.
    let out = r.remote(None, &["kv", "put", "some/key", "v"]);
    assert!(text(&out).contains("KV grant"), "{}", text(&out));
    let out = r.remote(None, &["kv", "get", "some/key"]);
    assert!(text(&out).contains("KV grant"), "{}", text(&out));
}

#[test]
fn expired_revoked_tampered_foreign_and_orphaned_tokens_get_401() {
    let r = Remote::new();
    r.env.create_svc(&format!("app1-{}/web", r.tag), &[]);
    r.pin_ca();
    r.user("bot", Some(&format!("guest:app1-{}", r.tag)), None);
    let reads = |t: &str| r.remote(Some(t), &["ls"]);

    let good = r.token("bot", "1h");
    assert!(reads(&good).status.success());

    // Tampered: another token's claims under this one's signature.
    let other = r.token("pinner", "1h");
    let sig = good.rsplit('.').next().unwrap();
    let body = other.split('.').nth(1).unwrap();
    let tampered = format!("berth1.{body}.{sig}");
    assert!(text(&reads(&tampered)).contains("does not verify"));

    // Foreign: signed by another cluster.
    let foreign = {
        let f = Remote::new();
        f.user("bot", Some("root"), None);
        f.token("bot", "1h")
    };
    assert!(text(&reads(&foreign)).contains("does not verify"));

    // Expired.
    let short = r.token("bot", "1s");
    std::thread::sleep(Duration::from_millis(2100));
    assert!(text(&reads(&short)).contains("expired"));

    // Revoked.
    let revoked = r.token("bot", "1h");
    r.env.ok(&["token", "revoke", &revoked]);
    assert!(text(&reads(&revoked)).contains("revoked"));
    assert!(
        reads(&good).status.success(),
        "another token of the user still works"
    );

    // A user's deletion ends its tokens.
    r.env.ok(&["user", "delete", "bot"]);
    assert!(text(&reads(&good)).contains("no longer exists"));

    // A token never carries more than its user holds.
    r.user("small", Some(&format!("guest:app1-{}", r.tag)), None);
    let out = r
        .env
        .berth(&["token", "create", "--user", "small", "--grant", "root"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("does not hold root"), "{}", text(&out));
    // A grant naming a role that does not exist is refused, and nothing changes.
    let out = r.env.berth(&["user", "grant", "small", "owner:app1"]);
    assert!(text(&out).contains("is not a role"), "{}", text(&out));
    let users = r.env.json(&["user", "ls"]);
    let small = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "small")
        .unwrap();
    assert_eq!(
        small["grants"],
        serde_json::json!([format!("guest:app1-{}", r.tag)])
    );
}

#[test]
fn berth_tokens_grant_consul_kv_prefixes_to_py_consul() {
    let port = free_port();
    let env = Env::start_with(&["--consul-addr", &format!("127.0.0.1:{port}")]);
    env.ok(&[
        "cluster",
        "init",
        "--advertise",
        &format!("127.0.0.1:{}", free_port()),
    ]);
    env.ok(&[
        "user",
        "create",
        "kvbot",
        "--grant",
        "kv:service/pg/*:write",
        "--grant",
        "kv:config/*:read",
    ]);
    let token = env.ok(&["token", "create", "--user", "kvbot", "--quiet"]);
    let ns = unique("cat");
    env.ok(&[
        "user",
        "create",
        "catreader",
        "--grant",
        &format!("guest:{ns}-a"),
    ]);
    let reader = env.ok(&["token", "create", "--user", "catreader", "--quiet"]);
    let py = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/py-clients/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/py-clients",
        py.display()
    );
    let out = Command::new(py)
        .arg(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/consul_acl.py"))
        .args([
            "127.0.0.1",
            &port.to_string(),
            token.trim(),
            reader.trim(),
            &ns,
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{}",
        text(&out)
    );
    // A transaction is all or nothing: one key outside the grant refuses
    // the whole of it, and nothing is written.
    let txn = |body: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"])
            .args([
                "-H",
                &format!("X-Consul-Token: {}", token.trim()),
                "-d",
                body,
            ])
            .arg(format!("http://127.0.0.1:{port}/v1/txn"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let set = |k: &str| format!(r#"{{"KV":{{"Verb":"set","Key":"{k}","Value":"YQ=="}}}}"#);
    assert_eq!(
        txn(&format!("[{},{}]", set("service/pg/a"), set("elsewhere"))),
        "403"
    );
    assert_eq!(txn(&format!("[{}]", set("service/pg/b"))), "200");
    let get = |k: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("http://127.0.0.1:{port}/v1/kv/{k}"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(get("service/pg/a"), "404");
    assert_eq!(get("service/pg/b"), "200");
}

/// A unix group and a member, removed on drop.
struct UnixAccount {
    group: String,
    user: String,
}

impl UnixAccount {
    fn create() -> UnixAccount {
        let tag = unique("");
        let a = UnixAccount {
            group: format!("bg{tag}"),
            user: format!("bu{tag}"),
        };
        assert!(Command::new("groupadd")
            .arg(&a.group)
            .status()
            .expect("groupadd")
            .success());
        assert!(Command::new("useradd")
            .args(["-M", "-s", "/bin/sh", "-G", &a.group, &a.user])
            .status()
            .expect("useradd")
            .success());
        a
    }

    fn berth(&self, home: &std::path::Path, args: &[&str]) -> Output {
        Command::new("setpriv")
            .args([
                "--reuid",
                &self.user,
                "--regid",
                &self.user,
                "--init-groups",
                BIN,
            ])
            .args(args)
            .env("BERTH_HOME", home)
            .env_remove("BERTH_TOKEN")
            .output()
            .expect("setpriv")
    }
}

impl Drop for UnixAccount {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.user).status();
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

#[test]
fn a_socket_group_member_acts_as_the_berth_user_of_its_name() {
    let acct = UnixAccount::create();
    let env = Env::start_with(&["--socket-group", &acct.group]);
    let tag = unique("");
    env.create_svc(&format!("app1-{tag}/web"), &[]);
    env.create_svc(&format!("app2-{tag}/web"), &[]);
    // Not a berth user yet: refused, though the socket is open to it.
    let out = acct.berth(env.home(), &["ls"]);
    assert!(text(&out).contains("is no berth user"), "{}", text(&out));
    env.ok(&[
        "user",
        "create",
        &acct.user,
        "--grant",
        &format!("operator:app1-{tag}"),
    ]);
    let out = acct.berth(env.home(), &["ls", "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["path"], format!("app1-{tag}/web"));
    let out = acct.berth(
        env.home(),
        &[&format!("app1-{tag}/web"), "set", "--kw", "env=x"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = acct.berth(
        env.home(),
        &["user", "create", "mallory", "--grant", "root"],
    );
    assert!(text(&out).contains("may not"), "{}", text(&out));
    assert!(!env.ok(&["user", "ls"]).contains("mallory"));
}

#[test]
fn a_squatter_becomes_admin_of_the_namespace_it_creates() {
    let r = Remote::new();
    r.env.create_svc(&format!("app2-{}/web", r.tag), &[]);
    r.pin_ca();
    r.user("sq", Some("squatter"), None);
    let before = r.token("sq", "1h");
    let ns = format!("sq-{}", r.tag);
    let image = format!("container#0.image={IMAGE}");
    let out = r.remote(
        Some(&before),
        &["create", &format!("{ns}/web"), "--kw", &image],
    );
    assert!(out.status.success(), "{}", text(&out));
    let users = r.env.json(&["user", "ls"]);
    let sq = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "sq")
        .unwrap()
        .clone();
    assert_eq!(
        sq["grants"],
        serde_json::json!(["squatter", format!("admin:{ns}")])
    );
    // The grant came with the namespace's first object, not with later ones,
    // nor with a namespace that has objects already.
    let out = r.remote(
        Some(&before),
        &["create", &format!("app2-{}/mine", r.tag), "--kw", &image],
    );
    assert!(text(&out).contains("may not"), "{}", text(&out));
    // A token carries the grants of its issue: a new one holds the admin grant.
    let out = r.remote(Some(&before), &[&format!("{ns}/web"), "delete"]);
    assert!(!out.status.success(), "{}", text(&out));
    let after = r.token("sq", "1h");
    let out = r.remote(Some(&after), &[&format!("{ns}/web"), "delete"]);
    assert!(out.status.success(), "{}", text(&out));
}
