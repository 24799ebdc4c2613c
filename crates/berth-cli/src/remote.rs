//! `berth login`, `berth logout` and `--server`: the remote API's client
//! side. What a login yields (the pinned CA, the user, the token) is kept
//! in `~/.config/berth/credentials.json`, mode 0600, per server.

use crate::client::Client;
use crate::Ctx;
use anyhow::{bail, Context};
use berth_api_types::auth::{LoginRequest, TokenInfo};
use berth_api_types::bodies::Empty;
use berth_api_types::{CaBundle, Login};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Port of the remote API when a URL names none.
pub const DEFAULT_PORT: u16 = 7947;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub servers: BTreeMap<String, ServerCredentials>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServerCredentials {
    /// The CA bundle pinned at the first login.
    pub ca_pem: String,
    pub ca_sha256: String,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub expires: Option<u64>,
}

fn config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BERTH_CONFIG_DIR") {
        return PathBuf::from(d);
    }
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME") {
        return PathBuf::from(x).join("berth");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".config/berth"))
        .unwrap_or_else(|| PathBuf::from(".berth-config"))
}

fn credentials_file() -> PathBuf {
    config_dir().join("credentials.json")
}

pub fn load() -> anyhow::Result<Credentials> {
    let path = credentials_file();
    match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Written whole to a temporary file (0600) and renamed over the old one.
fn save(c: &Credentials) -> anyhow::Result<()> {
    let path = credentials_file();
    let dir = path.parent().map(PathBuf::from).unwrap_or_default();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(".credentials.json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.write_all(&serde_json::to_vec_pretty(c)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `https://host[:port]` (or `host[:port]`) as `host:port`, the key its
/// credentials are kept under.
pub fn authority(server: &str) -> anyhow::Result<String> {
    let rest = match server.split_once("://") {
        Some(("https", rest)) => rest,
        Some((scheme, _)) => bail!("{server}: the remote API speaks https, not {scheme}"),
        None => server,
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        bail!("{server}: give https://HOST[:PORT]");
    }
    let has_port = match rest.rsplit_once(':') {
        Some((h, p)) => !h.ends_with(':') && p.parse::<u16>().is_ok(),
        None => false,
    };
    Ok(if has_port {
        rest.to_string()
    } else {
        format!("{rest}:{DEFAULT_PORT}")
    })
}

/// The client for `--server`: the CA pinned at login; the token from
/// BERTH_TOKEN, or the login's.
pub fn client_for(server: &str) -> Client {
    let built = || -> anyhow::Result<Client> {
        let auth = authority(server)?;
        let creds = load()?;
        let Some(s) = creds.servers.get(&auth) else {
            bail!("no CA is pinned for {auth}: run `berth login https://{auth} --user NAME --ca-sha256 FINGERPRINT` first");
        };
        let tls = berth_net::pinned_ca_client_config(&s.ca_pem)?;
        let token = std::env::var("BERTH_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or_else(|| s.token.clone());
        Ok(Client::remote(&auth, tls).with_token(token))
    };
    built().unwrap_or_else(|e| Client::unusable(&format!("https://{server}"), format!("{e:#}")))
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if !from_stdin && !tty {
        bail!("no terminal to ask the password on: pass --password-stdin");
    }
    let saved = if tty {
        eprint!("Password: ");
        let _ = std::io::stderr().flush();
        let t = nix::sys::termios::tcgetattr(&stdin).ok();
        if let Some(t) = &t {
            let mut quiet = t.clone();
            quiet
                .local_flags
                .remove(nix::sys::termios::LocalFlags::ECHO);
            let _ =
                nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &quiet);
        }
        t
    } else {
        None
    };
    let mut line = String::new();
    let read = stdin.read_line(&mut line);
    if let Some(t) = saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &t);
        eprintln!();
    }
    read.context("reading the password")?;
    let p = line.trim_end_matches(['\n', '\r']).to_string();
    if p.is_empty() {
        bail!("no password given");
    }
    Ok(p)
}

/// The CA `authority` presents, checked against `pin` (or the one kept
/// from an earlier login).
async fn pin_ca(
    auth: &str,
    pin: Option<&str>,
    kept: Option<&ServerCredentials>,
) -> anyhow::Result<(String, String)> {
    let probe = Client::remote(auth, berth_net::unverified_api_client_config()?);
    let ca = probe.call::<CaBundle>(&Empty {}, &Empty {}).await?;
    // The fingerprint is computed here, not taken from the server's word.
    let sha = berth_net::fingerprint_pem(&ca.pem)?;
    let want = match (pin, kept) {
        (Some(p), _) => p.trim().to_ascii_lowercase(),
        (None, Some(k)) => k.ca_sha256.clone(),
        (None, None) => bail!(
            "{auth} presents a cluster CA with SHA-256 fingerprint {sha}. Check it (a join token carries it: BERTH-1-<fingerprint>-...) and run the login again with --ca-sha256 {sha}"
        ),
    };
    if want != sha {
        bail!("{auth} presents a CA with fingerprint {sha}, not the pinned {want}: refusing to send a password");
    }
    Ok((ca.pem, sha))
}

pub async fn login(
    ctx: &Ctx,
    server: &str,
    user: &str,
    password_stdin: bool,
    ca_sha256: Option<&str>,
    ttl: std::time::Duration,
) -> anyhow::Result<ExitCode> {
    let auth = authority(server)?;
    let mut creds = load()?;
    let (ca_pem, ca_sha256) = pin_ca(&auth, ca_sha256, creds.servers.get(&auth)).await?;
    let password = read_password(password_stdin)?;
    let client = Client::remote(&auth, berth_net::pinned_ca_client_config(&ca_pem)?);
    let t: TokenInfo = client
        .call::<Login>(
            &Empty {},
            &LoginRequest {
                user: user.into(),
                password,
                ttl_secs: ttl.as_secs().max(1),
            },
        )
        .await?;
    creds.servers.insert(
        auth.clone(),
        ServerCredentials {
            ca_pem,
            ca_sha256,
            user: Some(t.user.clone()),
            token: Some(t.token.clone()),
            expires: Some(t.expires),
        },
    );
    save(&creds)?;
    if ctx.json() {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "server": format!("https://{auth}"),
                "user": t.user,
                "grants": t.grants,
                "expires": t.expires,
            }))?
        );
    } else {
        println!(
            "logged in to https://{auth} as {} (grants: {}); the token expires at {} (unix time). Use `berth --server https://{auth} ...`",
            t.user,
            t.grants.join(" "),
            t.expires
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn logout(server: &str) -> anyhow::Result<ExitCode> {
    let auth = authority(server)?;
    let mut creds = load()?;
    match creds.servers.get_mut(&auth) {
        Some(s) => {
            s.token = None;
            s.expires = None;
            save(&creds)?;
            println!("logged out of https://{auth} (its CA stays pinned)");
        }
        None => println!("no login for https://{auth}"),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_kept_by_host_and_port() {
        assert_eq!(authority("https://node1:7000").unwrap(), "node1:7000");
        assert_eq!(authority("https://node1").unwrap(), "node1:7947");
        assert_eq!(authority("node1/").unwrap(), "node1:7947");
        assert_eq!(authority("10.0.0.1:8443").unwrap(), "10.0.0.1:8443");
        assert!(authority("http://node1").is_err());
        assert!(authority("https://node1/v1").is_err());
        assert!(authority("").is_err());
    }
}
