//! The architecture invariants that can be read off the workspace's
//! manifests and sources, checked as rust-analyzer's tidy tests check its
//! own (`ARCHITECTURE.md` states them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Crate name → its `[dependencies]` (names only, dev-dependencies apart).
fn manifests() -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(root().join("crates")).expect("crates/") {
        let dir = e.expect("entry").path();
        let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
            continue;
        };
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
            .expect("package name");
        let mut deps = Vec::new();
        let mut in_deps = false;
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                in_deps = line == "[dependencies]";
                continue;
            }
            if in_deps && !line.is_empty() && !line.starts_with('#') {
                let dep = line
                    .split(['.', '=', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string();
                deps.push(dep);
            }
        }
        out.insert(name, deps);
    }
    out
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "target") {
                    todo.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).expect("read source");
                out.push((p, text));
            }
        }
    }
    out
}

fn crate_sources(name: &str) -> Vec<(PathBuf, String)> {
    sources(&root().join("crates").join(name).join("src"))
}

/// Lines that are code, not comments.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| {
        let t = l.trim_start();
        !t.starts_with("//")
    })
}

#[test]
fn only_the_engine_depends_on_bollard() {
    for (name, deps) in manifests() {
        if deps.iter().any(|d| d == "bollard") {
            assert_eq!(name, "berth-engine", "{name} depends on bollard");
        }
    }
}

#[test]
fn the_model_and_the_manager_do_no_io() {
    let deps = manifests();
    for name in ["berth-model", "berth-auth", "berth-manager", "berth-kv"] {
        for d in &deps[name] {
            assert!(
                !["tokio", "redb", "hyper", "nix", "libc", "bollard"].contains(&d.as_str()),
                "{name} depends on {d}"
            );
        }
        for (file, text) in crate_sources(name) {
            for line in code_lines(&text) {
                for io in [
                    "std::fs",
                    "std::net",
                    "std::process",
                    "tokio::",
                    "Instant::now",
                    "SystemTime::now",
                ] {
                    assert!(
                        !line.contains(io),
                        "{}: {io} in {name}: {line}",
                        file.display()
                    );
                }
            }
        }
    }
}

#[test]
fn the_cli_client_knows_the_api_types_only() {
    let deps = manifests();
    for d in &deps["berth-cli"] {
        assert!(
            !["berth-agent", "berth-api", "berth-cluster", "berth-store"].contains(&d.as_str()),
            "berth-cli depends on {d}"
        );
    }
    for (file, text) in crate_sources("berth-cli") {
        assert!(
            !text.contains("berth_agent"),
            "{} names berth_agent",
            file.display()
        );
    }
    // The API's types stand alone: the model and serde.
    for d in &deps["berth-api-types"] {
        assert!(
            ["berth-model", "serde", "serde_json"].contains(&d.as_str()),
            "berth-api-types depends on {d}"
        );
    }
}

#[test]
fn the_watchdog_needs_no_other_berth_crate() {
    let deps = manifests();
    let berth: Vec<&String> = deps["berth-watchdog"]
        .iter()
        .filter(|d| d.starts_with("berth"))
        .collect();
    assert!(berth.is_empty(), "berth-watchdog depends on {berth:?}");
}

/// The LDAP client only talks to the directory: the cluster decides what
/// its answers change, through typed commands.
#[test]
fn the_ldap_client_needs_no_other_berth_crate() {
    let deps = manifests();
    let berth: Vec<&String> = deps["berth-ldap"]
        .iter()
        .filter(|d| d.starts_with("berth"))
        .collect();
    assert!(berth.is_empty(), "berth-ldap depends on {berth:?}");
    for (name, ds) in &deps {
        if ds.iter().any(|d| d == "ldap3") {
            assert_eq!(name, "berth-ldap", "{name} depends on ldap3");
        }
    }
}

/// `ARCHITECTURE.md` lists the crates so that each depends only on crates
/// listed before it.
#[test]
fn crates_depend_only_on_crates_listed_before_them() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let order: Vec<String> = arch
        .lines()
        .filter_map(|l| l.strip_prefix("### `crates/"))
        .map(|l| l.trim_end_matches('`').to_string())
        .collect();
    let deps = manifests();
    for name in deps.keys() {
        assert!(
            order.contains(name),
            "{name} has no section in ARCHITECTURE.md's code map"
        );
    }
    for (i, name) in order.iter().enumerate() {
        let Some(ds) = deps.get(name) else {
            panic!("ARCHITECTURE.md lists {name}, which is not a crate");
        };
        for d in ds.iter().filter(|d| d.starts_with("berth")) {
            let at = order.iter().position(|o| o == d);
            assert!(
                at.is_some_and(|j| j < i),
                "{name} depends on {d}, which ARCHITECTURE.md does not list before it"
            );
        }
    }
}

/// Desired state is written only by the cluster's typed commands.
#[test]
fn only_the_cluster_writes_desired_state() {
    for name in manifests().keys() {
        if name == "berth-store" {
            continue;
        }
        for (file, text) in crate_sources(name) {
            let rel = file
                .strip_prefix(root())
                .unwrap_or(&file)
                .display()
                .to_string();
            if code_lines(&text).any(|l| l.contains(".propose(")) {
                assert_eq!(
                    rel, "crates/berth-cluster/src/submit.rs",
                    "{rel} proposes to Raft directly"
                );
            }
        }
    }
}

#[test]
fn no_source_file_is_over_800_lines() {
    let mut long = Vec::new();
    for dir in ["crates", "bench"] {
        for (file, text) in sources(&root().join(dir)) {
            let n = text.lines().count();
            if n > 800 {
                long.push(format!("{} ({n} lines)", file.display()));
            }
        }
    }
    assert!(long.is_empty(), "split along a real seam: {long:?}");
}
