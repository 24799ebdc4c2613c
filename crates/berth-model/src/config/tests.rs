use proptest::prelude::*;

use super::*;

const SAMPLE: &str = "# leading comment\n\n[DEFAULT]\nid = 1234\nenv=PRD\n\n[container#0]\ntype   =  docker\nimage = nginx\n; note\n[container#1]\nimage = redis\ncommand = a\n    b\n\tc\n";

#[test]
fn parse_queries() {
    let doc = ConfigDoc::parse(SAMPLE).unwrap();
    assert_eq!(doc.render(), SAMPLE);
    assert_eq!(
        doc.sections(),
        vec!["DEFAULT", "container#0", "container#1"]
    );
    assert!(doc.has_section("container#1"));
    assert!(!doc.has_section("container#2"));
    assert_eq!(doc.get("DEFAULT", "env").as_deref(), Some("PRD"));
    assert_eq!(doc.get("container#0", "type").as_deref(), Some("docker"));
    assert_eq!(
        doc.get("container#1", "command").as_deref(),
        Some("a\nb\nc")
    );
    assert_eq!(doc.get("container#0", "command"), None);
    let keys = doc.keys("container#0");
    assert_eq!(
        keys,
        vec![
            Entry {
                key: "type".into(),
                value: "docker".into(),
                line: 8
            },
            Entry {
                key: "image".into(),
                value: "nginx".into(),
                line: 9
            },
        ]
    );
    assert_eq!(doc.header_lines("container#1"), vec![11]);
}

#[test]
fn implicit_default_section() {
    let doc = ConfigDoc::parse("env = x\n[a#0]\nk = v\n").unwrap();
    assert_eq!(doc.sections(), vec!["DEFAULT", "a#0"]);
    assert_eq!(doc.get("DEFAULT", "env").as_deref(), Some("x"));
    let doc = ConfigDoc::parse("# only comment\n[a#0]\n").unwrap();
    assert_eq!(doc.sections(), vec!["a#0"]);
    assert!(!doc.has_section("DEFAULT"));
}

#[test]
fn duplicate_keys_last_wins() {
    let doc = ConfigDoc::parse("[a#0]\nk = 1\n[b#0]\n[a#0]\nk = 2\n").unwrap();
    assert_eq!(doc.sections(), vec!["a#0", "b#0"]);
    assert_eq!(doc.get("a#0", "k").as_deref(), Some("2"));
    assert_eq!(doc.keys("a#0").len(), 2);
}

#[test]
fn parse_errors() {
    let cases = [
        ("[a#0]\nthis is junk\n", 2),
        ("[a#0\n", 1),
        ("k = v\n[]\n", 2),
        ("\n\n= v\n", 3),
        ("# c\n  indented junk\n", 2),
        // A second byte-order mark would become the first on re-parse.
        ("\u{feff}\u{feff}[a]\r[b=\n", 1),
    ];
    for (text, line) in cases {
        let err = ConfigDoc::parse(text).unwrap_err();
        assert_eq!(err.line, line, "{text:?}: {err}");
    }
}

#[test]
fn set_table() {
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // replace, keeping spacing
        ("[a#0]\nk=1\n", "a#0", "k", "2", "[a#0]\nk=2\n"),
        (
            "[a#0]\nk   =   1\n",
            "a#0",
            "k",
            "22",
            "[a#0]\nk   =   22\n",
        ),
        (
            "[a#0]\n  k = 1  \nx = y\n",
            "a#0",
            "k",
            "2",
            "[a#0]\n  k = 2\nx = y\n",
        ),
        ("[a#0]\nk =\n", "a#0", "k", "v", "[a#0]\nk = v\n"),
        ("[a#0]\nk=\n", "a#0", "k", "v", "[a#0]\nk=v\n"),
        ("[a#0]\nk = 1", "a#0", "k", "2", "[a#0]\nk = 2"),
        ("[a#0]\r\nk = 1\r\n", "a#0", "k", "2", "[a#0]\r\nk = 2\r\n"),
        // continuation lines replaced
        (
            "[a#0]\nk = a\n  b\nz = 1\n",
            "a#0",
            "k",
            "c",
            "[a#0]\nk = c\nz = 1\n",
        ),
        (
            "[a#0]\nk = a\n",
            "a#0",
            "k",
            "x\ny",
            "[a#0]\nk = x\n    y\n",
        ),
        (
            "[a#0]\nk = a\n\tb\n",
            "a#0",
            "k",
            "x\ny",
            "[a#0]\nk = x\n\ty\n",
        ),
        // insert after last key of the section
        (
            "[a#0]\nk = 1\n\n[b#0]\n",
            "a#0",
            "n",
            "2",
            "[a#0]\nk = 1\nn = 2\n\n[b#0]\n",
        ),
        (
            "[a#0]\n# c\n\n[b#0]\n",
            "a#0",
            "n",
            "2",
            "[a#0]\nn = 2\n# c\n\n[b#0]\n",
        ),
        ("[a#0]\nk = 1", "a#0", "n", "2", "[a#0]\nk = 1\nn = 2\n"),
        (
            "[a#0]\r\nk = 1\r\n",
            "a#0",
            "n",
            "2",
            "[a#0]\r\nk = 1\r\nn = 2\r\n",
        ),
        // new section appended
        (
            "[a#0]\nk = 1\n",
            "b#0",
            "n",
            "2",
            "[a#0]\nk = 1\n\n[b#0]\nn = 2\n",
        ),
        (
            "[a#0]\nk = 1",
            "b#0",
            "n",
            "2",
            "[a#0]\nk = 1\n\n[b#0]\nn = 2\n",
        ),
        (
            "[a#0]\nk = 1\n\n",
            "b#0",
            "n",
            "2",
            "[a#0]\nk = 1\n\n[b#0]\nn = 2\n",
        ),
        ("", "b#0", "n", "2", "[b#0]\nn = 2\n"),
        // DEFAULT
        (
            "[a#0]\nk = 1\n",
            "DEFAULT",
            "env",
            "x",
            "[DEFAULT]\nenv = x\n\n[a#0]\nk = 1\n",
        ),
        ("", "DEFAULT", "env", "x", "[DEFAULT]\nenv = x\n"),
        (
            "id = 1\n[a#0]\n",
            "DEFAULT",
            "env",
            "x",
            "id = 1\nenv = x\n[a#0]\n",
        ),
        (
            "[a#0]\n[DEFAULT]\n",
            "DEFAULT",
            "env",
            "x",
            "[a#0]\n[DEFAULT]\nenv = x\n",
        ),
        // an indented header after a section without keys must not become a continuation
        (
            "[a#0]\n  [b#0]\n",
            "a#0",
            "k",
            "v",
            "[a#0]\nk = v\n\n  [b#0]\n",
        ),
    ];
    for (input, section, key, value, want) in cases {
        let mut doc = ConfigDoc::parse(input).unwrap();
        doc.set(section, key, value);
        assert_eq!(doc.render(), *want, "set {section}.{key} on {input:?}");
        let reparsed = ConfigDoc::parse(want).unwrap();
        assert_eq!(reparsed.get(section, key).as_deref(), Some(*value));
        assert_eq!(doc.get(section, key).as_deref(), Some(*value));
    }
}

#[test]
fn set_rejects_unwritable() {
    let mut doc = ConfigDoc::parse("[a#0]\n").unwrap();
    assert!(doc.try_set("a#0", "k=x", "v").is_err());
    assert!(doc.try_set("a#0", "", "v").is_err());
    assert!(doc.try_set("a#0", "#k", "v").is_err());
    assert!(doc.try_set("a]", "k", "v").is_err());
    assert!(doc.try_set("a#0", "k", "x\n# y").is_err());
    doc.set("a#0", "k=x", "v");
    assert_eq!(doc.render(), "[a#0]\n");
}

#[test]
fn unset_table() {
    let cases: &[(&str, &str, &str, bool, &str)] = &[
        ("[a#0]\nk = 1\nz = 2\n", "a#0", "k", true, "[a#0]\nz = 2\n"),
        (
            "[a#0]\nk = 1\n  more\nz = 2\n",
            "a#0",
            "k",
            true,
            "[a#0]\nz = 2\n",
        ),
        (
            "[a#0]\nk = 1\n[b#0]\nk = 1\n",
            "b#0",
            "k",
            true,
            "[a#0]\nk = 1\n[b#0]\n",
        ),
        ("[a#0]\nk = 1\n", "a#0", "x", false, "[a#0]\nk = 1\n"),
        ("[a#0]\nk = 1\n", "b#0", "k", false, "[a#0]\nk = 1\n"),
        ("[a#0]\nk = 1\nk = 2\n", "a#0", "k", true, "[a#0]\n"),
        ("env = 1\n[a#0]\n", "DEFAULT", "env", true, "[a#0]\n"),
    ];
    for (input, section, key, removed, want) in cases {
        let mut doc = ConfigDoc::parse(input).unwrap();
        assert_eq!(doc.unset(section, key), *removed, "{input:?}");
        assert_eq!(doc.render(), *want, "unset {section}.{key} on {input:?}");
    }
}

#[test]
fn remove_section_table() {
    let cases: &[(&str, &str, bool, &str)] = &[
        (
            "[a#0]\nk = 1\n\n[b#0]\nx = 2\n\n[c#0]\n",
            "b#0",
            true,
            "[a#0]\nk = 1\n\n[c#0]\n",
        ),
        (
            "[a#0]\nk = 1\n\n[b#0]\nx = 2\n",
            "b#0",
            true,
            "[a#0]\nk = 1\n",
        ),
        ("[a#0]\nk = 1\n", "z#0", false, "[a#0]\nk = 1\n"),
        (
            "# top\nid = 1\n[a#0]\n[DEFAULT]\nenv = 2\n",
            "DEFAULT",
            true,
            "# top\n[a#0]\n",
        ),
        (
            "[a#0]\nk = 1\n[b#0]\n[a#0]\nj = 2\n",
            "a#0",
            true,
            "[b#0]\n",
        ),
        (
            "[a#0]\nk=v\n[b#0]\n  [c#0]\n",
            "b#0",
            true,
            "[a#0]\nk=v\n\n  [c#0]\n",
        ),
    ];
    for (input, section, removed, want) in cases {
        let mut doc = ConfigDoc::parse(input).unwrap();
        assert_eq!(doc.remove_section(section), *removed, "{input:?}");
        assert_eq!(doc.render(), *want, "remove {section} from {input:?}");
        assert!(!doc.has_section(section));
        assert_eq!(ConfigDoc::parse(want).unwrap().render(), *want);
    }
}

fn ws() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec![' ', '\t']), 0..3)
        .prop_map(|v| v.into_iter().collect())
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,6}(#[0-9])?"
}

fn value() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9/{}.:=@#;_ -]{0,12}"
}

/// One line body of an arbitrary (but parseable) document.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        (ws(), word(), ws(), ws()).prop_map(|(a, n, b, c)| format!("{a}[{b}{n}{b}]{c}")),
        (ws(), word(), ws(), ws(), value(), ws())
            .prop_map(|(a, k, b, c, v, d)| format!("{a}{k}{b}={c}{v}{d}")),
        (ws(), prop::sample::select(vec!['#', ';']), value())
            .prop_map(|(a, c, v)| format!("{a}{c}{v}")),
        ws(),
        (
            prop::sample::select(vec![" ", "\t", "   "]),
            "[a-z0-9]{1,8}"
        )
            .prop_map(|(a, v)| format!("{a}{v}")),
    ]
}

/// A document built from lines that parse; indented lines that would be
/// neither continuations nor key lines are dropped.
fn document() -> impl Strategy<Value = String> {
    (
        prop::collection::vec((line(), prop::sample::select(vec!["\n", "\r\n"])), 0..25),
        any::<bool>(),
    )
        .prop_map(|(lines, final_newline)| {
            let mut out = String::new();
            let n = lines.len();
            for (i, (l, eol)) in lines.into_iter().enumerate() {
                out.push_str(&l);
                if i + 1 < n || final_newline {
                    out.push_str(eol);
                }
            }
            out
        })
        .prop_filter("must parse", |d| ConfigDoc::parse(d).is_ok())
}

fn lines_of(doc: &ConfigDoc) -> Vec<String> {
    doc.render()
        .lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

proptest! {
    #[test]
    fn roundtrip_is_lossless(doc in document()) {
        let parsed = ConfigDoc::parse(&doc).unwrap();
        prop_assert_eq!(parsed.render(), doc);
    }

    #[test]
    fn roundtrip_any_text(text in "[\\[\\]a-z=#; \t\r\n]{0,80}") {
        if let Ok(parsed) = ConfigDoc::parse(&text) {
            prop_assert_eq!(parsed.render(), text);
        }
    }

    #[test]
    fn set_then_get(
        doc in document(),
        section in prop::sample::select(vec!["DEFAULT", "a#0", "container#1", "zz#9"]),
        key in "[a-z][a-z_]{0,5}(@n1)?",
        value in "[a-zA-Z0-9/{}.:=_-]([a-zA-Z0-9/{}.:= _-]{0,10}[a-zA-Z0-9/{}.:=_-])?",
    ) {
        let mut parsed = ConfigDoc::parse(&doc).unwrap();
        let before_other: Vec<(String, Vec<Entry>)> = parsed
            .sections()
            .into_iter()
            .filter(|s| s != section)
            .map(|s| { let k = parsed.keys(&s); (s, k) })
            .collect();
        let old_lines = lines_of(&parsed);
        parsed.set(section, &key, &value);
        prop_assert_eq!(parsed.get(section, &key), Some(value.clone()));
        let reparsed = ConfigDoc::parse(&parsed.render()).unwrap();
        prop_assert_eq!(reparsed.get(section, &key), Some(value.clone()));
        prop_assert_eq!(reparsed.render(), parsed.render());
        for (s, entries) in before_other {
            let now: Vec<(String, String)> =
                reparsed.keys(&s).into_iter().map(|e| (e.key, e.value)).collect();
            let was: Vec<(String, String)> =
                entries.into_iter().map(|e| (e.key, e.value)).collect();
            prop_assert_eq!(now, was);
        }
        // Every original line is still there, in order, except the edited ones.
        let new_lines = lines_of(&reparsed);
        let mut it = new_lines.iter();
        for l in old_lines.iter().filter(|l| !is_edited_line(l, &key)) {
            prop_assert!(it.any(|n| n == l), "line {:?} lost or reordered", l);
        }
    }

    #[test]
    fn unset_leaves_other_lines(
        doc in document(),
        section in prop::sample::select(vec!["DEFAULT", "a#0", "container#1"]),
        key in "[a-z][a-z_]{0,5}",
        value in "[a-z0-9]{1,8}",
    ) {
        let mut parsed = ConfigDoc::parse(&doc).unwrap();
        parsed.set(section, &key, &value);
        let before = parsed.render();
        let before_lines = lines_of(&parsed);
        prop_assert!(parsed.unset(section, &key));
        prop_assert_eq!(parsed.get(section, &key), None);
        prop_assert!(!parsed.unset(section, &key));
        let after_lines = lines_of(&parsed);
        prop_assert!(after_lines.len() < before_lines.len(), "{:?}", before);
        let mut it = after_lines.iter();
        for l in before_lines.iter().filter(|l| !is_edited_line(l, &key)) {
            prop_assert!(it.any(|n| n == l), "line {:?} lost or reordered", l);
        }
        prop_assert_eq!(ConfigDoc::parse(&parsed.render()).unwrap().render(), parsed.render());
    }
}

/// A key line of `key` or an indented line (possibly one of its
/// continuation lines) may legitimately change or disappear.
fn is_edited_line(line: &str, key: &str) -> bool {
    let trimmed = line.trim_start();
    let is_key_line = trimmed
        .split_once('=')
        .is_some_and(|(k, _)| k.trim() == key);
    is_key_line || (line.starts_with([' ', '\t']) && !trimmed.is_empty())
}
