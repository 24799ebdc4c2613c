//! Validation of a configuration document against a keyword registry.

use std::collections::BTreeSet;
use std::fmt;

use crate::config::{is_scope_name, parse_section_name, ConfigDoc, Entry, DEFAULT_SECTION};
use crate::refs::check_refs;
use crate::schema::{check_keyword, KeywordTable, Registry};

/// The keyword selecting a resource's type.
pub const TYPE_KEYWORD: &str = "type";

/// One problem found in a configuration document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    /// 1-based line number (0 when the problem has no line).
    pub line: usize,
    /// The section concerned.
    pub section: String,
    /// The keyword concerned, if any (raw, with its `@node` suffix).
    pub keyword: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: [{}] ", self.line, self.section)?;
        if let Some(kw) = &self.keyword {
            write!(f, "{kw}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Splits `key@node` into the keyword and its scope.
pub fn split_scope(key: &str) -> (&str, Option<&str>) {
    match key.split_once('@') {
        Some((k, node)) => (k, Some(node)),
        None => (key, None),
    }
}

/// The line that represents a section: its first header, else its first key.
pub(crate) fn section_line(doc: &ConfigDoc, section: &str) -> usize {
    doc.header_lines(section)
        .first()
        .copied()
        .or_else(|| doc.keys(section).first().map(|e| e.line))
        .unwrap_or(0)
}

/// Chooses the keyword table of a section, or explains why none fits.
pub(crate) fn section_table<'r>(
    doc: &ConfigDoc,
    registry: &'r Registry,
    section: &str,
) -> Result<&'r KeywordTable, String> {
    let (family, _) = parse_section_name(section).ok_or_else(|| {
        format!("invalid section name {section:?}: expected DEFAULT or <family>#<index>, e.g. container#0")
    })?;
    if !registry.families().contains(&family.as_str()) {
        return Err(format!(
            "unknown section family {family:?} (known: {})",
            registry.families().join(", ")
        ));
    }
    let rtype = match family.as_str() {
        DEFAULT_SECTION => None,
        _ => doc.get(section, TYPE_KEYWORD),
    };
    registry.table(&family, rtype.as_deref()).ok_or_else(|| {
        let known: Vec<&str> = registry
            .tables
            .iter()
            .filter(|t| t.family == family)
            .filter_map(|t| t.rtype)
            .collect();
        format!(
            "unknown type {:?} for {family} (known: {})",
            rtype.unwrap_or_default(),
            known.join(", ")
        )
    })
}

/// Checks every section, keyword and value of `doc`. Returns all problems
/// found, in document order per section.
pub fn validate(doc: &ConfigDoc, registry: &Registry) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for section in doc.sections() {
        let mut err = |line: usize, keyword: Option<&str>, message: String| {
            errors.push(ConfigError {
                line,
                section: section.clone(),
                keyword: keyword.map(str::to_string),
                message,
            })
        };
        let header = section_line(doc, &section);
        for dup in doc.header_lines(&section).iter().skip(1) {
            err(*dup, None, "duplicate section header".to_string());
        }
        let table = match section_table(doc, registry, &section) {
            Ok(t) => t,
            Err(message) => {
                err(header, None, message);
                continue;
            }
        };
        let entries = doc.keys(&section);
        let mut seen = BTreeSet::new();
        for entry in &entries {
            if !seen.insert(entry.key.as_str()) {
                err(
                    entry.line,
                    Some(&entry.key),
                    "duplicate keyword".to_string(),
                );
            }
            if let Err(message) = check_entry(table, &section, entry) {
                err(entry.line, Some(&entry.key), message);
            }
        }
        for kw in table
            .keywords
            .iter()
            .filter(|k| k.required && k.default.is_none())
        {
            let present = entries.iter().any(|e| split_scope(&e.key).0 == kw.name);
            if !present {
                err(
                    header,
                    Some(kw.name),
                    "required keyword is missing".to_string(),
                );
            }
        }
    }
    errors
}

fn check_entry(table: &KeywordTable, section: &str, entry: &Entry) -> Result<(), String> {
    let (name, scope) = split_scope(&entry.key);
    if entry.value.contains('\0') {
        return Err("NUL bytes are not allowed in a value".to_string());
    }
    if name == TYPE_KEYWORD && section != DEFAULT_SECTION && table.get(name).is_none() {
        // `type` selects the table; section_table already vetted its value.
        return match scope {
            Some(_) => Err("keyword is not scopable".to_string()),
            None => Ok(()),
        };
    }
    let kw = table.get(name).ok_or_else(|| match table.rtype {
        Some(rtype) => format!("unknown keyword {name:?} for {} type {rtype}", table.family),
        None => format!("unknown keyword {name:?} in {}", table.family),
    })?;
    if let Some(node) = scope {
        if !kw.scopable {
            return Err("keyword is not scopable".to_string());
        }
        if !is_scope_name(node) {
            return Err(format!("invalid node name {node:?} after '@'"));
        }
    }
    check_refs(&entry.value).map_err(|e| e.to_string())?;
    if !entry.value.contains('{') {
        check_keyword(kw, &entry.value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fixtures::registry;

    fn errors(text: &str) -> Vec<(usize, String, Option<String>)> {
        let doc = ConfigDoc::parse(text).unwrap();
        validate(&doc, &registry())
            .into_iter()
            .map(|e| (e.line, e.section, e.keyword))
            .collect()
    }

    fn one(line: usize, section: &str, kw: Option<&str>) -> Vec<(usize, String, Option<String>)> {
        vec![(line, section.to_string(), kw.map(str::to_string))]
    }

    #[test]
    fn valid_documents() {
        let docs = [
            "",
            "[DEFAULT]\nid = 67e55044-10b1-426f-9247-bb680e5fe0c8\nenv = PRD\nenv@node1 = DEV\n",
            "[container#0]\nimage = nginx\nrestart = 3\nstart_timeout = 1m\n",
            "[container#0]\ntype = podman\nimage = x\nuserns = keep-id\n",
            "[container#0]\nimage@n1 = a\n[volume#2]\nsize = 10g\n",
            "[container#0]\nimage = {env.app}\nrestart = {id}\n",
        ];
        for d in docs {
            let errs = errors(d);
            assert!(errs.is_empty(), "{d:?}: {errs:?}");
        }
    }

    #[test]
    fn invalid_documents() {
        type Case<'a> = (&'a str, (usize, &'a str, Option<&'a str>));
        let cases: &[Case] = &[
            ("[foo]\n", (1, "foo", None)),
            ("[disk#0]\n", (1, "disk#0", None)),
            (
                "[container#0]\ntype = lxc\nimage = x\n",
                (1, "container#0", None),
            ),
            (
                "[container#0]\nimage = x\nbogus = 1\n",
                (3, "container#0", Some("bogus")),
            ),
            (
                "[container#0]\nimage = x\nuserns = 1\n",
                (3, "container#0", Some("userns")),
            ),
            (
                "[container#0]\nimage = x\nrestart = many\n",
                (3, "container#0", Some("restart")),
            ),
            (
                "[container#0]\nimage = x\nrestart@n1 = 1\n",
                (3, "container#0", Some("restart@n1")),
            ),
            (
                "[container#0]\nimage@ = x\n",
                (2, "container#0", Some("image@")),
            ),
            (
                "[container#0]\nimage@a b = x\n",
                (2, "container#0", Some("image@a b")),
            ),
            (
                "[container#0]\nrestart = 1\n",
                (1, "container#0", Some("image")),
            ),
            (
                "[container#0]\nimage = {nope}\n",
                (2, "container#0", Some("image")),
            ),
            (
                "[container#0]\nimage = {name\n",
                (2, "container#0", Some("image")),
            ),
            (
                "[DEFAULT]\norchestrate = maybe\n",
                (2, "DEFAULT", Some("orchestrate")),
            ),
            ("id = nope\n", (1, "DEFAULT", Some("id"))),
            ("[DEFAULT]\nenv = a\nenv = b\n", (3, "DEFAULT", Some("env"))),
            ("[volume#0]\n[volume#0]\n", (2, "volume#0", None)),
            (
                "[container#0]\nimage = x\ntype@n1 = docker\n",
                (3, "container#0", Some("type@n1")),
            ),
        ];
        for (text, (line, section, kw)) in cases {
            assert_eq!(errors(text), one(*line, section, *kw), "{text:?}");
        }
    }

    #[test]
    fn messages() {
        let doc = ConfigDoc::parse("[container#0]\nimage = x\nbogus = 1\n").unwrap();
        let errs = validate(&doc, &registry());
        assert_eq!(
            errs[0].to_string(),
            "line 3: [container#0] bogus: unknown keyword \"bogus\" for container type docker"
        );
        let doc = ConfigDoc::parse("[container#0]\ntype = lxc\n").unwrap();
        let errs = validate(&doc, &registry());
        assert_eq!(
            errs[0].to_string(),
            "line 1: [container#0] unknown type \"lxc\" for container (known: docker, podman)"
        );
    }
}
