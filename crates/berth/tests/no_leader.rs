//! Without a leader, a write fails with the typed "no leader" error: the
//! API answers 503 with a Retry-After hint (as a real HTTP client sees it),
//! and the CLI says to retry.

mod common;
use common::testbed::Testbed;
use std::process::Command;

#[test]
fn a_write_without_a_quorum_is_a_503_with_a_retry_hint() {
    let mut bed = Testbed::new(2);
    bed.form_cluster(2);
    // Two managers, one gone: no quorum, so no leader can commit.
    bed.kill(1);
    let n0 = &bed.nodes[0];
    let dir = tempfile::tempdir().expect("tempdir");
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let out = Command::new("curl")
        .args(["-s", "--max-time", "60", "--unix-socket"])
        .arg(n0.home().join("berth.sock"))
        .arg("-D")
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "content-type: application/json"])
        .args(["-d", r#"{"path":"nl/x"}"#])
        .arg("http://berth/v1/objects/create")
        .output()
        .expect("curl");
    let code = String::from_utf8_lossy(&out.stdout).to_string();
    let headers = std::fs::read_to_string(&headers).unwrap_or_default();
    let body = std::fs::read_to_string(&body).unwrap_or_default();
    assert_eq!(code, "503", "{headers}\n{body}");
    assert!(
        headers.to_ascii_lowercase().contains("retry-after: 1"),
        "{headers}"
    );
    assert!(body.contains("no cluster leader"), "{body}");
    let cli = n0.berth(&["create", "nl/y"]);
    let said = String::from_utf8_lossy(&cli.stderr);
    assert_eq!(cli.status.code(), Some(1), "{said}");
    assert!(said.contains("retry"), "{said}");
}
