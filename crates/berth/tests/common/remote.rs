//! A daemon of a one-node cluster with its remote API, and a CLI that
//! talks to it as a remote user would: what the security tests share.

use super::*;
use berth_auth::matrix::Where;
use std::process::{Command, Output, Stdio};

pub struct Remote {
    pub env: Env,
    pub tag: String,
    pub server: String,
    pub api_port: u16,
    /// BERTH_CONFIG_DIR: where the CLI keeps the pinned CA and tokens.
    pub cfg: tempfile::TempDir,
    pub fingerprint: String,
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Remote {
    pub fn new() -> Remote {
        Remote::with_daemon_args(&[])
    }

    /// A remote daemon started with `args` too (`--ldap-url ...`).
    pub fn with_daemon_args(args: &[&str]) -> Remote {
        let api_port = free_port();
        let api_addr = format!("127.0.0.1:{api_port}");
        let mut all = vec!["--api-addr", api_addr.as_str()];
        all.extend_from_slice(args);
        let env = Env::start_with(&all);
        env.ok(&[
            "cluster",
            "init",
            "--advertise",
            &format!("127.0.0.1:{}", free_port()),
        ]);
        let join = env.ok(&["cluster", "token"]);
        let fingerprint = join
            .trim()
            .strip_prefix("BERTH-1-")
            .and_then(|t| t.split('-').next())
            .expect("a join token")
            .to_string();
        Remote {
            env,
            tag: unique(""),
            server: format!("https://127.0.0.1:{api_port}"),
            api_port,
            cfg: tempfile::tempdir().expect("tempdir"),
            fingerprint,
        }
    }

    /// The CLI against the remote API, with `token` (else the login's).
    pub fn remote(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("--server")
            .arg(&self.server)
            .args(args)
            .env("BERTH_CONFIG_DIR", self.cfg.path())
            .env("BERTH_HOME", self.env.home())
            .env_remove("BERTH_TOKEN")
            .stdin(Stdio::null());
        if let Some(t) = token {
            c.env("BERTH_TOKEN", t);
        }
        c.output().expect("run berth")
    }

    pub fn login(&self, user: &str, password: &str, extra: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.args(["login", &self.server, "--user", user, "--password-stdin"])
            .args(extra)
            .env("BERTH_CONFIG_DIR", self.cfg.path())
            .env("BERTH_HOME", self.env.home());
        run_with_stdin(c, &format!("{password}\n"))
    }

    /// Pins the CA as a user does, by a first login (of a user `pinner`
    /// that may read nothing), so that later `--server` commands trust it.
    pub fn pin_ca(&self) {
        self.user("pinner", Some("guest:nothing"), Some("pinner password"));
        let out = self.login(
            "pinner",
            "pinner password",
            &["--ca-sha256", &self.fingerprint],
        );
        assert!(out.status.success(), "{}", text(&out));
    }

    pub fn user(&self, name: &str, grant: Option<&str>, password: Option<&str>) {
        let mut args = vec!["user", "create", name];
        if let Some(g) = grant {
            args.extend(["--grant", g]);
        }
        match password {
            None => {
                self.env.ok(&args);
            }
            Some(p) => {
                args.push("--password-stdin");
                let mut c = Command::new(BIN);
                c.args(&args).env("BERTH_HOME", self.env.home());
                let out = run_with_stdin(c, &format!("{p}\n"));
                assert!(out.status.success(), "{}", text(&out));
            }
        }
    }

    /// The token the last login kept.
    pub fn login_token(&self) -> String {
        let creds = std::fs::read_to_string(self.cfg.path().join("credentials.json"))
            .expect("credentials.json");
        let creds: serde_json::Value = serde_json::from_str(&creds).expect("credentials");
        creds["servers"]
            .as_object()
            .and_then(|s| s.values().find_map(|v| v["token"].as_str()))
            .expect("a kept token")
            .to_string()
    }

    pub fn token(&self, user: &str, ttl: &str) -> String {
        self.env
            .ok(&["token", "create", "--user", user, "--ttl", ttl, "--quiet"])
            .trim()
            .to_string()
    }

    pub fn ns(&self, w: Where, role: &str) -> String {
        match w {
            Where::In => format!("app1-{}", self.tag),
            Where::Out => format!("app2-{}", self.tag),
            Where::New => format!("sq-{role}-{}", self.tag),
            Where::Nowhere => String::new(),
        }
    }
}
