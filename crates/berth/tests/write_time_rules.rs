//! Values are checked against their keyword's rule when they are written
//! (`set`, `create`, `create --config`, hand edits), not at `start`; the
//! refusal has exit code 2 and names the keyword, the value and the rule.

mod common;
use common::*;

fn refused(env: &Env, path: &str, kw: &str, value: &str) -> String {
    let ns = path.split('/').next().expect("ns");
    let file = env.config_file(ns, "svc");
    let before = std::fs::read(&file).expect("config file");
    let arg = format!("{kw}={value}");
    let out = env.berth(&[path, "set", "--kw", &arg]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{arg}: {text}");
    let short = kw.rsplit('.').next().expect("keyword");
    assert!(text.contains(short), "{arg}: no keyword in {text}");
    assert!(
        value.is_empty() || text.contains(&format!("{value:?}")),
        "{arg}: no value in {text}"
    );
    assert!(
        text.contains("rule:") || text.contains("cannot be empty"),
        "{arg}: no rule in {text}"
    );
    assert_eq!(
        std::fs::read(&file).expect("read"),
        before,
        "{arg} was written"
    );
    text
}

#[test]
fn bad_values_are_refused_at_set_with_the_rule_they_break() {
    let env = Env::start();
    env.create_svc("rules/svc", &[]);
    let p = "rules/svc";
    for v in ["99999:80", "abc", "0:80", "80:0", "1.2.3.4:80"] {
        refused(&env, p, "container#0.ports", v);
    }
    refused(&env, p, "container#0.image", "local/pause 1");
    refused(&env, p, "container#0.image", "");
    refused(&env, p, "container#0.restart", "-1");
    refused(&env, p, "flex_target", "-1");
    refused(&env, p, "container#0.environment", "NOEQUALS");
    refused(&env, p, "container#0.environment", "A=1 =2");
    refused(&env, p, "container#0.volume_mounts", "data:relative");
    refused(&env, p, "container#0.service_port", "70000");
    refused(&env, p, "docker_data_dir", "relative/dir");
    // Good values of the same keywords pass.
    env.ok(&[
        p,
        "set",
        "--kw",
        "container#0.ports=127.0.0.1:18080:80/tcp 53/udp",
    ]);
    env.ok(&[p, "set", "--kw", "container#0.restart=0"]);
}

#[test]
fn create_refuses_bad_values_and_nul_bytes_naming_the_users_file() {
    let env = Env::start();
    let out = env.berth(&["create", "rules2/a", "--kw", "container#0.ports=abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!env.config_file("rules2", "a").exists());

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("svc.conf");
    std::fs::write(
        &file,
        format!("[container#0]\nimage = {IMAGE}\nhostname = a\0b\n"),
    )
    .expect("write");
    let f = file.to_str().expect("utf8");
    let err = env.fails(&["create", "rules2/b", "--config", f]);
    assert!(
        err.contains(&format!("{f}:3:")) && err.contains("NUL"),
        "{err}"
    );
    assert!(!env.config_file("rules2", "b").exists());

    // A byte-order mark is accepted; a file that is not UTF-8 is bad input.
    std::fs::write(&file, format!("\u{feff}[container#0]\nimage = {IMAGE}\n")).expect("write");
    env.ok(&["create", "rules2/c", "--config", f]);
    std::fs::write(&file, b"[container#0]\nimage = \xff\xfe\n").expect("write");
    let out = env.berth(&["create", "rules2/d", "--config", f]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(f));
}

#[test]
fn a_quoted_environment_value_stays_one_variable() {
    let env = Env::start();
    let p = "rules3/svc";
    env.create_svc(
        p,
        &[r#"container#0.environment=D="x y=z" E='a b' F=c\ d G=1"#],
    );
    env.ok(&[p, "start"]);
    let name = "rules3..svc.container.0";
    let out = docker(&["inspect", "-f", "{{json .Config.Env}}", name]);
    let vars: Vec<String> = serde_json::from_slice(&out.stdout).expect("env json");
    for want in ["D=x y=z", "E=a b", "F=c d", "G=1"] {
        assert!(vars.iter().any(|v| v == want), "{want} in {vars:?}");
    }
    assert!(!vars.iter().any(|v| v == "y=z\""), "{vars:?}");
    // The rule is documented where the keyword is.
    let doc = env.ok(&["doc", "container.environment"]);
    assert!(
        doc.contains("Quotes group words") && doc.contains("backslash"),
        "{doc}"
    );
    // And a value the rule cannot split is refused at write time.
    refused(&env, p, "container#0.environment", "D=\"unterminated");
}

#[test]
fn doc_and_the_json_schema_show_the_rules() {
    let env = Env::start();
    let v = env.json(&["doc", "container.ports"]);
    let text = v.to_string();
    assert!(text.contains("hostport"), "{text}");
    let schema = env.json(&["doc"]);
    let tables = schema["tables"].as_array().expect("tables");
    let docker = tables
        .iter()
        .find(|t| t["family"] == "container")
        .expect("container table");
    assert_eq!(docker["properties"]["restart"]["minimum"], 0);
    assert_eq!(docker["properties"]["service_port"]["maximum"], 65535);
    assert!(docker["properties"]["image"]["rule"]
        .as_str()
        .is_some_and(|r| r.contains("image reference")));
}
