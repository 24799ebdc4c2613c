use std::time::Duration;

use super::*;
use crate::test_fixtures::registry;

const DOC: &str = "\
[DEFAULT]
id = 67e55044-10b1-426f-9247-bb680e5fe0c8
app = shop
env = PRD
env@node2 = DEV

[volume#0]
name = {name}-data

[container#10]
image = busybox

[container#2]
image = registry/{env.app}:{env.env}
image@node2 = local/{namespace}/{name}
hostname = {nodename}.{id}
command = sleep   infinity
privileged = yes
";

fn resolve_on(node: &str) -> EffectiveConfig {
    let doc = ConfigDoc::parse(DOC).unwrap();
    let path: ObjectPath = "prod/web".parse().unwrap();
    resolve(&doc, &registry(), &path, node).unwrap()
}

#[test]
fn resources_sorted_and_typed() {
    let eff = resolve_on("node1");
    let names: Vec<&str> = eff.resources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["container#2", "container#10", "volume#0"]);
    let c = &eff.resources[0];
    assert_eq!(c.family, "container");
    assert_eq!(c.index, Some(2));
    assert_eq!(c.rtype.as_deref(), Some("docker"));
    assert_eq!(c.get_str("type"), Some("docker"));
    assert_eq!(eff.resources_of("container").count(), 2);
    assert_eq!(eff.default.name, "DEFAULT");
    assert_eq!(eff.default.index, None);
}

#[test]
fn values_per_node() {
    let cases = [
        ("node1", "DEFAULT", "env", Some("PRD")),
        ("node2", "DEFAULT", "env", Some("DEV")),
        ("node1", "DEFAULT", "orchestrate", Some("no")),
        ("node1", "DEFAULT", "nodes", None),
        ("node1", "container#2", "image", Some("registry/shop:PRD")),
        ("node2", "container#2", "image", Some("local/prod/web")),
        (
            "node1",
            "container#2",
            "hostname",
            Some("node1.67e55044-10b1-426f-9247-bb680e5fe0c8"),
        ),
        ("node1", "container#2", "restart", Some("0")),
        ("node1", "container#10", "hostname", None),
        ("node1", "volume#0", "name", Some("web-data")),
        ("node1", "volume#0", "size", Some("1g")),
        ("node1", "volume#1", "size", None),
    ];
    for (node, section, kw, want) in cases {
        assert_eq!(
            resolve_on(node).get(section, kw),
            want,
            "{node} {section}.{kw}"
        );
    }
}

#[test]
fn typed_getters() {
    let eff = resolve_on("node1");
    let c = eff.section("container#2").unwrap();
    assert_eq!(c.get_int("restart"), Ok(Some(0)));
    assert_eq!(c.get_int("nope"), Ok(None));
    assert_eq!(c.get_bool("privileged"), Ok(Some(true)));
    assert_eq!(
        c.get_duration("start_timeout"),
        Ok(Some(Duration::from_secs(30)))
    );
    assert_eq!(c.get_list("command").unwrap(), vec!["sleep", "infinity"]);
    assert!(c.get_list("nope").unwrap().is_empty());
    assert!(c.get_int("image").is_err());
    let err = c.get_bool("image").unwrap_err();
    assert!(err.contains("[container#2] image"), "{err}");
}

#[test]
fn invalid_documents_are_rejected() {
    let path: ObjectPath = "web".parse().unwrap();
    let cases = [
        ("[container#0]\nimage = x\nbogus = 1\n", "node1", 3),
        ("[container#0]\nimage = {env.missing}\n", "node1", 2),
        ("[container#0]\nimage@node2 = x\n", "node1", 1),
        ("[container#0]\nimage = x\nrestart = {name}\n", "node1", 3),
    ];
    for (text, node, line) in cases {
        let doc = ConfigDoc::parse(text).unwrap();
        let errs = resolve(&doc, &registry(), &path, node).unwrap_err();
        assert_eq!(errs.len(), 1, "{text:?}: {errs:?}");
        assert_eq!(errs[0].line, line, "{text:?}: {errs:?}");
    }
    let doc = ConfigDoc::parse("[container#0]\nimage@node2 = x\n").unwrap();
    assert!(resolve(&doc, &registry(), &path, "node2").is_ok());
}

#[test]
fn serializes() {
    let eff = resolve_on("node1");
    let v = serde_json::to_value(&eff).unwrap();
    assert_eq!(v["default"]["values"]["env"], "PRD");
    assert_eq!(v["resources"][0]["rtype"], "docker");
    assert_eq!(v["resources"][2]["index"], 0);
}
