//! The node protocol as a node speaks it: a node's certificate and key
//! from its identity.json, and JSON POSTs with them (curl, HTTP/2).

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A node's certificate, key and CA as files, from its identity.json.
pub struct Creds {
    _dir: tempfile::TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn creds_of(home: &Path) -> Creds {
    let id: Value = serde_json::from_slice(
        &std::fs::read(home.join("cluster/identity.json")).expect("identity.json"),
    )
    .expect("identity json");
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, field: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, id[field].as_str().expect(field)).expect("write pem");
        p
    };
    Creds {
        cert: write("cert.pem", "cert_pem"),
        key: write("key.pem", "key_pem"),
        _dir: dir,
    }
}

/// POSTs `body` to `https://addr/path` with the worker's certificate;
/// returns the HTTP status and the body.
pub fn post(creds: &Creds, addr: &str, path: &str, body: &Value) -> (u16, String) {
    let out_file = tempfile::NamedTempFile::new().expect("tmp");
    let mut child = Command::new("curl")
        .args(["-sk", "--http2", "--max-time", "20"])
        .arg("--cert")
        .arg(&creds.cert)
        .arg("--key")
        .arg(&creds.key)
        .args(["-H", "content-type: application/json", "-X", "POST"])
        .args(["--data-binary", "@-", "-o"])
        .arg(out_file.path())
        .args(["-w", "%{http_code}"])
        .arg(format!("https://{addr}{path}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body.to_string().as_bytes())
        .expect("write body");
    let out = child.wait_with_output().expect("curl");
    let code = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (
        code,
        std::fs::read_to_string(out_file.path()).unwrap_or_default(),
    )
}
