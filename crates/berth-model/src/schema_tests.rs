use std::time::Duration;

use super::*;
use crate::test_fixtures::registry;

#[test]
fn bools() {
    let cases = [
        ("true", Some(true)),
        ("YES", Some(true)),
        ("On", Some(true)),
        ("1", Some(true)),
        ("false", Some(false)),
        ("no", Some(false)),
        ("OFF", Some(false)),
        ("0", Some(false)),
        ("", None),
        ("2", None),
        ("yep", None),
    ];
    for (s, want) in cases {
        assert_eq!(parse_bool(s), want, "{s:?}");
    }
}

#[test]
fn durations() {
    let ok = [
        ("10", Duration::from_secs(10)),
        ("10s", Duration::from_secs(10)),
        ("500ms", Duration::from_millis(500)),
        ("2m", Duration::from_secs(120)),
        ("1h", Duration::from_secs(3600)),
        ("1h30m", Duration::from_secs(5400)),
        ("1d", Duration::from_secs(86400)),
        ("1m500ms", Duration::from_millis(60_500)),
        ("0", Duration::ZERO),
    ];
    for (s, want) in ok {
        assert_eq!(parse_duration(s), Ok(want), "{s:?}");
    }
    for bad in ["", "s", "10x", "1.5s", "-1s", "h1", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn sizes() {
    let ok = [
        ("512", 512),
        ("10k", 10 * 1024),
        ("20m", 20 << 20),
        ("1g", 1 << 30),
        ("1G", 1 << 30),
        ("2KiB", 2048),
        ("3kb", 3072),
    ];
    for (s, want) in ok {
        assert_eq!(parse_size(s), Ok(want), "{s:?}");
    }
    for bad in ["", "k", "1x", "1.5g", "99999999999999t"] {
        assert!(parse_size(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn check_value_table() {
    let cases: &[(KwType, &str, bool)] = &[
        (KwType::String, "anything {x}", true),
        (KwType::List, "a b  c", true),
        (KwType::Int, "-42", true),
        (KwType::Int, "4.2", false),
        (KwType::Int, "", false),
        (KwType::Bool, "yes", true),
        (KwType::Bool, "maybe", false),
        (KwType::Duration, "1h30m", true),
        (KwType::Duration, "soon", false),
        (KwType::Uuid, "67e55044-10b1-426f-9247-bb680e5fe0c8", true),
        (KwType::Uuid, "not-a-uuid", false),
        (KwType::Enum(&["no", "ha"]), "ha", true),
        (KwType::Enum(&["no", "ha"]), "HA", false),
        (KwType::Size, "10k", true),
        (KwType::Size, "ten", false),
    ];
    for (kind, value, ok) in cases {
        assert_eq!(
            check_value(kind, value).is_ok(),
            *ok,
            "{} {value:?}",
            kind.name()
        );
    }
    let msg = check_value(&KwType::Enum(&["no", "ha"]), "x").unwrap_err();
    assert!(msg.contains("no, ha"), "{msg}");
}

#[test]
fn lists() {
    assert_eq!(split_list("  a b\n\tc ").unwrap(), vec!["a", "b", "c"]);
    assert!(split_list("   ").unwrap().is_empty());
}

#[test]
fn registry_tables() {
    let r = registry();
    assert_eq!(r.families(), vec!["DEFAULT", "container", "volume"]);
    assert_eq!(
        r.table("container", None).and_then(|t| t.rtype),
        Some("docker")
    );
    assert_eq!(
        r.table("container", Some("podman")).and_then(|t| t.rtype),
        Some("podman")
    );
    assert!(r.table("container", Some("lxc")).is_none());
    assert!(r.table("nope", None).is_none());
    assert_eq!(r.table("DEFAULT", None).map(|t| t.family), Some("DEFAULT"));
}

#[test]
fn registry_lookup() {
    let r = registry();
    let cases = [
        ("env", Some(("DEFAULT", None, "env"))),
        ("DEFAULT.env", Some(("DEFAULT", None, "env"))),
        (
            "container.image",
            Some(("container", Some("docker"), "image")),
        ),
        (
            "container#3.image",
            Some(("container", Some("docker"), "image")),
        ),
        (
            "container.userns",
            Some(("container", Some("podman"), "userns")),
        ),
        (
            "container.podman.image",
            Some(("container", Some("podman"), "image")),
        ),
        ("container.docker.userns", None),
        ("container.nope", None),
        // A bare name found in no DEFAULT keyword is looked up everywhere.
        ("image", Some(("container", Some("docker"), "image"))),
        ("userns", Some(("container", Some("podman"), "userns"))),
        ("nope", None),
        ("a.b.c.d", None),
    ];
    for (q, want) in cases {
        let got = r.lookup(q).map(|(t, k)| (t.family, t.rtype, k.name));
        assert_eq!(got, want, "{q}");
    }
}

#[test]
fn json_schema_shape() {
    let s = registry().json_schema();
    let tables = s["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 4);
    let docker = &tables[1];
    assert_eq!(docker["family"], "container");
    assert_eq!(docker["type"], "docker");
    assert_eq!(docker["section"], "container#N");
    assert_eq!(docker["properties"]["image"]["type"], "string");
    assert_eq!(docker["properties"]["image"]["required"], true);
    assert_eq!(docker["properties"]["image"]["examples"][0], "nginx:1");
    assert_eq!(docker["properties"]["restart"]["default"], "0");
    assert_eq!(docker["required"], serde_json::json!(["image"]));
    let default = &tables[0];
    assert_eq!(default["type"], serde_json::Value::Null);
    assert_eq!(
        default["properties"]["orchestrate"]["enum"],
        serde_json::json!(["no", "ha"])
    );
    assert_eq!(
        s["families"],
        serde_json::json!(["DEFAULT", "container", "volume"])
    );
}

#[test]
fn kwtype_serializes_as_name() {
    assert_eq!(
        serde_json::to_string(&KwType::Enum(&["a"])).unwrap(),
        "\"enum\""
    );
    assert_eq!(KwType::Enum(&["a", "b"]).candidates(), &["a", "b"]);
    assert!(KwType::Int.candidates().is_empty());
}
