//! LDAP against a real slapd (Debian's `slapd` and `ldap-utils`): each
//! test runs its own slapd on a free loopback port, its cn=config and
//! mdb database in a temporary directory, loaded from
//! `tests/ldap/directory.ldif` by slapadd, so tests run in parallel and
//! never touch the system's slapd. A berth daemon of a one-node cluster
//! with its remote API binds to it; users log in with `berth login` and
//! act with `--server`, as remote users do.

mod common;

use common::remote::{text, Remote};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BASE: &str = "dc=berth,dc=test";
const ADMIN_DN: &str = "cn=admin,dc=berth,dc=test";
const ADMIN_PW: &str = "admin secret";
const SERVICE_DN: &str = "cn=berth,ou=services,dc=berth,dc=test";
const SERVICE_PW: &str = "service secret";
const DEVS: &str = "cn=devs,ou=groups,dc=berth,dc=test";
const BACKEND: &str = "cn=backend,ou=groups,dc=berth,dc=test";
const OPS_FILTER: &str = "(&(objectClass=groupOfNames)(businessCategory=operations))";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ldap/directory.ldif")
}

/// slapd's own configuration (cn=config) for a database in `dir`, and
/// with `tls` its certificate there and TLS required of every client
/// (`olcSecurity: tls=1`: StartTLS, or ldaps).
fn config_ldif(dir: &Path, tls: bool) -> String {
    let tls = if tls {
        format!(
            "olcTLSCACertificateFile: {d}/ca.pem
olcTLSCertificateFile: {d}/server.pem
olcTLSCertificateKeyFile: {d}/server.key
olcSecurity: tls=1
",
            d = dir.display()
        )
    } else {
        String::new()
    };
    format!(
        "dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {dir}/slapd.pid
{tls}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {BASE}
olcRootDN: {ADMIN_DN}
olcRootPW: {ADMIN_PW}
olcDbDirectory: {dir}/db
olcDbMaxSize: 16777216
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by * read
",
        dir = dir.display()
    )
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it,
/// in `dir`.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["req", "-x509"])
        .args(ec)
        .args(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"])
        .args(["-subj", "/CN=berth-test-ldap-ca"]));
    run(Command::new("openssl")
        .current_dir(dir)
        .arg("req")
        .args(ec)
        .args(["-keyout", "server.key", "-out", "server.csr"])
        .args(["-subj", "/CN=127.0.0.1"]));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("server.ext");
    run(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]));
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run an LDAP tool");
    assert!(out.status.success(), "{cmd:?}: {}", text(&out));
    out
}

/// A slapd of this test's own, killed on drop.
struct Slapd {
    dir: tempfile::TempDir,
    child: Child,
    url: String,
    /// With TLS: its ldaps:// URL (its ldap:// one takes StartTLS).
    ldaps: Option<String>,
}

impl Slapd {
    fn start() -> Slapd {
        Slapd::start_with(false)
    }

    fn start_with(tls: bool) -> Slapd {
        let mut last = String::new();
        // A free port may be taken before slapd binds it: a few tries.
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let conf = dir.path().join("slapd.d");
            std::fs::create_dir_all(&conf).expect("mkdir");
            std::fs::create_dir_all(dir.path().join("db")).expect("mkdir");
            if tls {
                make_certs(dir.path());
            }
            let config = dir.path().join("config.ldif");
            std::fs::write(&config, config_ldif(dir.path(), tls)).expect("config.ldif");
            run(Command::new("slapadd")
                .args(["-n", "0", "-F"])
                .arg(&conf)
                .arg("-l")
                .arg(&config));
            run(Command::new("slapadd")
                .arg("-F")
                .arg(&conf)
                .args(["-b", BASE, "-l"])
                .arg(fixture()));
            let url = format!("ldap://127.0.0.1:{}", free_port());
            let ldaps = tls.then(|| format!("ldaps://127.0.0.1:{}", free_port()));
            let mut listen = format!("{url}/");
            if let Some(l) = &ldaps {
                listen.push_str(&format!(" {l}/"));
            }
            let log = std::fs::File::create(dir.path().join("slapd.log")).expect("log");
            let mut child = Command::new("slapd")
                // -d keeps it in the foreground, a child of this test.
                .args(["-d", "0", "-h", &listen, "-F"])
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("slapd (apt-get install slapd ldap-utils)");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let mut search = Command::new("ldapsearch");
                search.args(["-x", "-H", &url, "-b", "", "-s", "base", "-LLL"]);
                if tls {
                    search
                        .arg("-ZZ")
                        .env("LDAPTLS_CACERT", dir.path().join("ca.pem"));
                }
                let up = search.output().is_ok_and(|o| o.status.success());
                if up {
                    return Slapd {
                        dir,
                        child,
                        url,
                        ldaps,
                    };
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last =
                        std::fs::read_to_string(dir.path().join("slapd.log")).unwrap_or_default();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!("slapd did not start: {last}");
    }

    /// ldapmodify as the directory's admin.
    fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(ldif.as_bytes()).expect("write ldif");
        }
        let out = child.wait_with_output().expect("ldapmodify");
        assert!(out.status.success(), "ldapmodify: {}", text(&out));
    }

    fn delete(&self, dn: &str) {
        run(Command::new("ldapdelete")
            .args(["-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PW, dn]));
    }

    /// The daemon options that point berth at this slapd.
    fn daemon_args(&self) -> Vec<String> {
        self.daemon_args_with(&["--ldap-url", &self.url])
    }

    /// The same, the server given by `server` (URLs, TLS options).
    fn daemon_args_with(&self, server: &[&str]) -> Vec<String> {
        let pw = self.dir.path().join("bind.pw");
        std::fs::write(&pw, format!("{SERVICE_PW}\n")).expect("bind.pw");
        let mut args: Vec<String> = server.iter().map(|s| s.to_string()).collect();
        args.extend(
            [
                "--ldap-bind-dn",
                SERVICE_DN,
                "--ldap-bind-password-file",
                pw.to_str().expect("utf8"),
                "--ldap-user-base",
                &format!("ou=people,{BASE}"),
                "--ldap-user-filter",
                "(&(objectClass=inetOrgPerson)(uid={user}))",
                "--ldap-group-base",
                &format!("ou=groups,{BASE}"),
            ]
            .iter()
            .map(|s| s.to_string()),
        );
        args
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A slapd, and a berth daemon that uses it.
fn start() -> (Slapd, Remote) {
    let ldap = Slapd::start();
    let args = ldap.daemon_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = Remote::with_daemon_args(&args);
    (ldap, r)
}

/// The berth group `devs`, with `grant`, mapped to the LDAP group DEVS.
fn map_devs(r: &Remote, grant: &str) {
    r.env.ok(&[
        "group",
        "create",
        "devs",
        "--grant",
        grant,
        "--ldap-group",
        DEVS,
    ]);
}

fn login(r: &Remote, user: &str, password: &str) -> Output {
    r.login(user, password, &["--ca-sha256", &r.fingerprint])
}

/// The HTTP status of `path` on the remote API with `token`.
fn status_with(r: &Remote, path: &str, token: &str) -> String {
    let out = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(format!("https://127.0.0.1:{}{path}", r.api_port))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn listed(out: &Output) -> Vec<String> {
    assert!(out.status.success(), "{}", text(out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v.as_array()
        .expect("a list")
        .iter()
        .filter_map(|o| o["path"].as_str().map(str::to_string))
        .collect()
}

fn names(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["name"].as_str().or_else(|| c.as_str()))
        .collect()
}

#[test]
fn an_ldap_user_logs_in_with_its_ldap_password_and_nobody_else_does() {
    let (_ldap, r) = start();
    let ns = format!("app1-{}", r.tag);
    r.env.create_svc(&format!("{ns}/web"), &[]);
    map_devs(&r, &format!("operator:{ns}"));
    // A local user with a password still logs in with it.
    r.user("local", Some("guest:nothing"), Some("local password"));
    let out = login(&r, "local", "local password");
    assert!(out.status.success(), "{}", text(&out));

    // alice, whom no sync has seen yet: her record is made at her login.
    let out = login(&r, "alice", "alice in ldap");
    assert!(out.status.success(), "{}", text(&out));
    let who = r.remote(None, &["whoami", "--format", "json"]);
    let who: serde_json::Value = serde_json::from_slice(&who.stdout).expect("whoami");
    assert_eq!(who["user"], "alice");
    assert_eq!(who["grants"], serde_json::json!([format!("operator:{ns}")]));
    assert_eq!(
        listed(&r.remote(None, &["ls", "--format", "json"])),
        [format!("{ns}/web")]
    );
    let users = r.env.json(&["user", "ls"]);
    let alice = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .expect("alice's record");
    assert_eq!(alice["source"], "ldap");
    assert_eq!(alice["groups"], serde_json::json!(["devs"]));
    assert_eq!(alice["has_password"], false);

    // A wrong password, a name LDAP does not know, and dave, who is in
    // LDAP but in no group berth maps: the same refusal, word for word.
    let wrong = login(&r, "alice", "not her password");
    let nobody = login(&r, "nobody", "not her password");
    let dave = login(&r, "dave", "dave in ldap");
    for out in [&wrong, &nobody, &dave] {
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&wrong.stderr)
        );
    }
    assert!(text(&wrong).contains("wrong user name or password"));
    // A name that tries to widen the user search is one escaped value.
    let star = login(&r, "*", "alice in ldap");
    assert!(!star.status.success());
    // An empty password would be an unauthenticated bind: refused.
    let empty = Command::new("curl")
        .args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"user":"alice","password":"","ttl_secs":60}"#)
        .arg(format!("https://127.0.0.1:{}/v1/login", r.api_port))
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&empty.stdout), "401");
    // An LDAP user's password is the directory's.
    let out = r.env.berth(&["user", "passwd", "alice"]);
    assert!(!out.status.success());
    // The audit trail says why, where the client was told nothing (the
    // node records its refusals as they happen, in a task of their own).
    let deadline = Instant::now() + Duration::from_secs(15);
    let whys = [
        "wrong password",
        "in no LDAP group",
        "finds no such user",
        "empty password",
    ];
    loop {
        let refused = r.env.json(&["audit", "--refused"]).to_string();
        if whys.iter().all(|w| refused.contains(w)) {
            break;
        }
        assert!(Instant::now() < deadline, "{whys:?} in {refused}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_user_of_a_nested_group_gets_the_mapped_groups_grants() {
    let (_ldap, r) = start();
    let (app1, app2) = (format!("app1-{}", r.tag), format!("app2-{}", r.tag));
    r.env.create_svc(&format!("{app1}/web"), &[]);
    r.env.create_svc(&format!("{app2}/web"), &[]);
    map_devs(&r, &format!("admin:{app1}"));
    r.env.ok(&[
        "group",
        "create",
        "ops",
        "--grant",
        &format!("guest:{app2}"),
        "--ldap-filter",
        OPS_FILTER,
    ]);
    let groups = r.env.json(&["group", "ls"]);
    assert_eq!(
        groups[0]["ldap_groups"],
        serde_json::json!([DEVS]),
        "{groups:#}"
    );
    assert_eq!(groups[1]["ldap_filter"], OPS_FILTER, "{groups:#}");

    let sync = r.env.json(&["ldap", "sync"]);
    assert_eq!(
        names(&sync["created"]),
        ["alice", "bob", "carol"],
        "{sync:#}"
    );
    // bob is a member of backend, which devs nests (and which nests devs
    // back: the cycle ends).
    assert_eq!(names(&sync["groups"]["devs"]), ["alice", "bob"]);
    assert_eq!(names(&sync["groups"]["ops"]), ["carol"]);
    let bob = &sync["created"][1];
    assert_eq!(bob["groups"], serde_json::json!(["devs"]));

    let out = login(&r, "bob", "bob in ldap");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        listed(&r.remote(None, &["ls", "--format", "json"])),
        [format!("{app1}/web")]
    );
    let image = format!("container#0.image={IMAGE}");
    let out = r.remote(None, &["create", &format!("{app1}/new"), "--kw", &image]);
    assert!(out.status.success(), "{}", text(&out));
    let out = r.remote(None, &["create", &format!("{app2}/new"), "--kw", &image]);
    assert!(!out.status.success());
    assert!(text(&out).contains("may not"), "{}", text(&out));
    let out = r.remote(None, &[&format!("{app2}/web"), "stop"]);
    assert!(!out.status.success());

    // carol: through the filter's group, a guest of app2 only.
    let out = login(&r, "carol", "carol in ldap");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        listed(&r.remote(None, &["ls", "--format", "json"])),
        [format!("{app2}/web")]
    );
    let out = r.remote(None, &[&format!("{app2}/web"), "set", "--kw", "env=x"]);
    assert!(text(&out).contains("may not"), "{}", text(&out));

    // Nothing changed: a second sync changes nothing.
    let again = r.env.json(&["ldap", "sync"]);
    assert_eq!(again["unchanged"], 3, "{again:#}");
    assert!(again["created"].as_array().unwrap().is_empty());
    assert!(again["removed"].as_array().unwrap().is_empty());
}

#[test]
fn a_user_removed_from_ldap_loses_access_and_tokens_at_the_next_sync() {
    let (ldap, r) = start();
    let ns = format!("app1-{}", r.tag);
    r.env.create_svc(&format!("{ns}/web"), &[]);
    map_devs(&r, &format!("operator:{ns}"));
    let sync = r.env.json(&["ldap", "sync"]);
    assert_eq!(names(&sync["created"]), ["alice", "bob"], "{sync:#}");
    let out = login(&r, "alice", "alice in ldap");
    assert!(out.status.success(), "{}", text(&out));
    let alice = r.login_token();
    let out = login(&r, "bob", "bob in ldap");
    assert!(out.status.success(), "{}", text(&out));
    let bob = r.login_token();
    let bob_issued = now_secs();
    let ls = "/v1/objects?selector=*";
    assert_eq!(status_with(&r, ls, &alice), "200");
    assert_eq!(status_with(&r, ls, &bob), "200");

    // alice leaves the directory; bob leaves backend, the nested group
    // that made him a member of devs.
    ldap.delete(&format!("uid=alice,ou=people,{BASE}"));
    ldap.modify(&format!(
        "dn: {BACKEND}\nchangetype: modify\ndelete: member\nmember: uid=bob,ou=people,{BASE}\n"
    ));
    let sync = r.env.json(&["ldap", "sync"]);
    assert_eq!(names(&sync["removed"]), ["alice", "bob"], "{sync:#}");
    // Their tokens: 401.
    assert_eq!(status_with(&r, ls, &alice), "401");
    assert_eq!(status_with(&r, ls, &bob), "401");
    let out = r.remote(Some(&alice), &["ls"]);
    assert!(text(&out).contains("no longer exists"), "{}", text(&out));
    // And no new login.
    for (user, pw) in [("alice", "alice in ldap"), ("bob", "bob in ldap")] {
        let out = login(&r, user, pw);
        assert!(!out.status.success(), "{user}: {}", text(&out));
        assert!(text(&out).contains("wrong user name or password"));
    }
    let users = r.env.json(&["user", "ls"]).to_string();
    assert!(
        !users.contains("\"alice\"") && !users.contains("\"bob\""),
        "{users}"
    );
    // The removals are in the audit trail, from the sync.
    let audit = r.env.json(&["audit", "--user", "root"]).to_string();
    assert!(
        audit.contains("user:alice") && audit.contains("user delete"),
        "{audit}"
    );

    // bob back in backend: a new record, and his old token stays void
    // (tokens_after is in seconds: his token is from an earlier one).
    while now_secs() <= bob_issued {
        std::thread::sleep(Duration::from_millis(50));
    }
    ldap.modify(&format!(
        "dn: {BACKEND}\nchangetype: modify\nadd: member\nmember: uid=bob,ou=people,{BASE}\n"
    ));
    let sync = r.env.json(&["ldap", "sync"]);
    assert_eq!(names(&sync["created"]), ["bob"], "{sync:#}");
    assert_eq!(status_with(&r, ls, &bob), "401");
    let out = login(&r, "bob", "bob in ldap");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(status_with(&r, ls, &r.login_token()), "200");
}

#[test]
fn ldap_options_are_checked_at_start() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["daemon", "run", "--ldap-url", "ldap://127.0.0.1:9"])
        .env("BERTH_HOME", home.path())
        .output()
        .expect("berth");
    assert!(!out.status.success());
    assert!(text(&out).contains("--ldap-user-base"), "{}", text(&out));
    let out = Command::new(BIN)
        .args([
            "daemon",
            "run",
            "--ldap-url",
            "ldap://127.0.0.1:9",
            "--ldap-user-base",
            BASE,
            "--ldap-user-filter",
            "(uid=alice)",
        ])
        .env("BERTH_HOME", home.path())
        .output()
        .expect("berth");
    assert!(!out.status.success());
    assert!(text(&out).contains("{user}"), "{}", text(&out));
}

#[test]
fn ldaps_and_starttls_trust_the_ca_given_and_no_other() {
    let ldap = Slapd::start_with(true);
    let ldaps = ldap.ldaps.clone().expect("an ldaps URL");
    let ca = ldap.ca();
    let with = |server: &[&str]| {
        let args = ldap.daemon_args_with(server);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = Remote::with_daemon_args(&args);
        r.env.ok(&[
            "group",
            "create",
            "devs",
            "--grant",
            "guest:*",
            "--ldap-group",
            DEVS,
        ]);
        r
    };

    // ldaps://, its CA given: a sync and a login.
    let r = with(&["--ldap-url", &ldaps, "--ldap-ca-file", &ca]);
    let sync = r.env.json(&["ldap", "sync"]);
    assert_eq!(names(&sync["created"]), ["alice", "bob"], "{sync:#}");
    let out = login(&r, "alice", "alice in ldap");
    assert!(out.status.success(), "{}", text(&out));

    // A server that does not answer, then StartTLS on ldap:// (slapd
    // wants TLS of every client here): the second one serves.
    let closed = format!("ldaps://127.0.0.1:{}", free_port());
    let r = with(&[
        "--ldap-url",
        &closed,
        "--ldap-url",
        &ldap.url,
        "--ldap-starttls",
        "--ldap-ca-file",
        &ca,
    ]);
    let out = login(&r, "bob", "bob in ldap");
    assert!(out.status.success(), "{}", text(&out));

    // Without StartTLS, this slapd refuses even the service bind.
    let r = with(&["--ldap-url", &ldap.url]);
    let out = r.env.berth(&["ldap", "sync"]);
    assert!(text(&out).contains("service bind"), "{}", text(&out));

    // The system's CAs do not know this one: no sync, and no login.
    let r = with(&["--ldap-url", &ldaps]);
    let out = r.env.berth(&["ldap", "sync"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no LDAP server answered"),
        "{}",
        text(&out)
    );
    let out = login(&r, "alice", "alice in ldap");
    assert!(!out.status.success(), "{}", text(&out));
}
