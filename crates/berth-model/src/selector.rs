//! OpenSVC-style object selectors.
//!
//! Grammar: `expr := term ("," term)*` (union), `term := atom ("+" atom)*`
//! (intersection), `atom := "!"? (path-glob | keyword-filter)`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::glob::glob_match;
use crate::path::{Kind, ObjectPath, ROOT_NAMESPACE};

/// Something a [`Selector`] can be evaluated against.
pub trait Selectable {
    /// The object's path.
    fn object_path(&self) -> &ObjectPath;
    /// The value of a keyword, or `None` when it has no value.
    ///
    /// `kw` is always in `section.key` form: `DEFAULT.env`,
    /// `container#0.image`. A selector written as `env=x` asks for
    /// `DEFAULT.env`.
    fn keyword_value(&self, kw: &str) -> Option<String>;
}

/// Errors produced by [`Selector::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SelectorError {
    /// The selector is empty or only whitespace.
    #[error("empty selector")]
    Empty,
    /// An atom between separators is empty.
    #[error("empty element in selector {0:?}")]
    EmptyAtom(String),
    /// A keyword filter has no keyword before `=` or `:`.
    #[error("missing keyword in selector element {0:?}")]
    EmptyKeyword(String),
    /// A path glob has too many `/`-separated parts.
    #[error("invalid path pattern {0:?}: expected name, namespace/name or namespace/kind/name")]
    InvalidPath(String),
    /// A path glob has a `[` class that is never closed.
    #[error("unbalanced '[' in selector element {0:?}: a character class needs its ']'")]
    UnbalancedBracket(String),
    /// A path glob names an unknown kind.
    #[error("invalid kind {0:?} in selector: expected one of svc, sec, cfg, usr")]
    InvalidKind(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    All,
    Path {
        namespace: String,
        kind: String,
        name: String,
    },
    KeywordEquals {
        keyword: String,
        value: String,
    },
    KeywordExists {
        keyword: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Atom {
    negated: bool,
    matcher: Matcher,
}

/// A parsed object selector such as `prod/*,env=PRD+!*/db`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    raw: String,
    terms: Vec<Vec<Atom>>,
}

fn has_glob_chars(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `env` means `DEFAULT.env`; anything with a `.` is already qualified.
fn canonical_keyword(kw: &str) -> String {
    if kw.contains('.') {
        kw.to_string()
    } else {
        format!("DEFAULT.{kw}")
    }
}

fn parse_matcher(atom: &str) -> Result<Matcher, SelectorError> {
    if let Some((kw, value)) = atom.split_once('=') {
        let kw = kw.trim();
        if kw.is_empty() {
            return Err(SelectorError::EmptyKeyword(atom.to_string()));
        }
        return Ok(Matcher::KeywordEquals {
            keyword: canonical_keyword(kw),
            value: value.trim().to_string(),
        });
    }
    if let Some(kw) = atom.strip_suffix(':') {
        let kw = kw.trim();
        if kw.is_empty() {
            return Err(SelectorError::EmptyKeyword(atom.to_string()));
        }
        return Ok(Matcher::KeywordExists {
            keyword: canonical_keyword(kw),
        });
    }
    let parts: Vec<&str> = atom.split('/').collect();
    let (namespace, kind, name) = match parts.as_slice() {
        ["*"] | ["**"] => return Ok(Matcher::All),
        [name] => (ROOT_NAMESPACE, Kind::Svc.as_str(), *name),
        [ns, name] => (*ns, Kind::Svc.as_str(), *name),
        [ns, kind, name] => (*ns, *kind, *name),
        _ => return Err(SelectorError::InvalidPath(atom.to_string())),
    };
    if namespace.is_empty() || name.is_empty() || kind.is_empty() {
        return Err(SelectorError::InvalidPath(atom.to_string()));
    }
    if [namespace, kind, name]
        .iter()
        .any(|p| !crate::glob::classes_closed(p))
    {
        return Err(SelectorError::UnbalancedBracket(atom.to_string()));
    }
    if !has_glob_chars(kind) && kind.parse::<Kind>().is_err() {
        return Err(SelectorError::InvalidKind(kind.to_string()));
    }
    Ok(Matcher::Path {
        namespace: namespace.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
    })
}

impl Selector {
    /// Parses a selector expression.
    pub fn parse(s: &str) -> Result<Selector, SelectorError> {
        if s.trim().is_empty() {
            return Err(SelectorError::Empty);
        }
        let mut terms = Vec::new();
        for term in s.split(',') {
            let mut atoms = Vec::new();
            for atom in term.split('+') {
                let atom = atom.trim();
                let (negated, body) = match atom.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, atom),
                };
                if body.is_empty() {
                    return Err(SelectorError::EmptyAtom(s.to_string()));
                }
                atoms.push(Atom {
                    negated,
                    matcher: parse_matcher(body)?,
                });
            }
            terms.push(atoms);
        }
        Ok(Selector {
            raw: s.to_string(),
            terms,
        })
    }

    /// Returns true if the object is selected.
    pub fn matches(&self, obj: &dyn Selectable) -> bool {
        self.terms
            .iter()
            .any(|atoms| atoms.iter().all(|a| a.matches(obj)))
    }

    /// The paths this selector names exactly (`prod/db`, `a/x,b/y`: no
    /// glob, no keyword filter, no negation), so a caller can fetch them
    /// instead of scanning every object. `None` when it must scan.
    pub fn exact_paths(&self) -> Option<Vec<ObjectPath>> {
        self.terms
            .iter()
            .map(|atoms| match atoms.as_slice() {
                [Atom {
                    negated: false,
                    matcher:
                        Matcher::Path {
                            namespace,
                            kind,
                            name,
                        },
                }] if ![namespace, kind, name].iter().any(|p| has_glob_chars(p)) => {
                    format!("{namespace}/{kind}/{name}").parse().ok()
                }
                _ => None,
            })
            .collect()
    }

    /// Whether matching needs the objects' keyword values.
    pub fn reads_keywords(&self) -> bool {
        self.terms.iter().flatten().any(|a| {
            matches!(
                a.matcher,
                Matcher::KeywordEquals { .. } | Matcher::KeywordExists { .. }
            )
        })
    }

    /// Returns the selected objects, in input order.
    pub fn select<'a, T: Selectable>(&self, objs: &'a [T]) -> Vec<&'a T> {
        objs.iter().filter(|o| self.matches(*o)).collect()
    }

    /// The selector as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl Atom {
    fn matches(&self, obj: &dyn Selectable) -> bool {
        let hit = match &self.matcher {
            Matcher::All => true,
            Matcher::Path {
                namespace,
                kind,
                name,
            } => {
                let p = obj.object_path();
                glob_match(namespace, &p.namespace)
                    && glob_match(kind, p.kind.as_str())
                    && glob_match(name, &p.name)
            }
            Matcher::KeywordEquals { keyword, value } => obj
                .keyword_value(keyword)
                .is_some_and(|v| glob_match(value, &v)),
            Matcher::KeywordExists { keyword } => obj.keyword_value(keyword).is_some(),
        };
        hit != self.negated
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Obj {
        path: ObjectPath,
        kws: BTreeMap<String, String>,
    }

    impl Selectable for Obj {
        fn object_path(&self) -> &ObjectPath {
            &self.path
        }
        fn keyword_value(&self, kw: &str) -> Option<String> {
            self.kws.get(kw).cloned()
        }
    }

    fn obj(path: &str, kws: &[(&str, &str)]) -> Obj {
        Obj {
            path: path.parse().unwrap(),
            kws: kws
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn fleet() -> Vec<Obj> {
        vec![
            obj(
                "web",
                &[("DEFAULT.env", "PRD"), ("container#0.image", "local/web:1")],
            ),
            obj(
                "prod/api",
                &[("DEFAULT.env", "PRD"), ("container#0.image", "nginx")],
            ),
            obj("prod/db", &[("DEFAULT.env", "DEV")]),
            obj("test/api", &[]),
            obj("prod/cfg/api", &[]),
        ]
    }

    fn names(sel: &str) -> Vec<String> {
        let objs = fleet();
        let s = Selector::parse(sel).unwrap();
        s.select(&objs).iter().map(|o| o.path.to_string()).collect()
    }

    #[test]
    fn selection_table() {
        let cases: &[(&str, &[&str])] = &[
            (
                "*",
                &["web", "prod/api", "prod/db", "test/api", "prod/cfg/api"],
            ),
            (
                "**",
                &["web", "prod/api", "prod/db", "test/api", "prod/cfg/api"],
            ),
            ("web", &["web"]),
            ("w*", &["web"]),
            ("api", &[]),
            ("prod/*", &["prod/api", "prod/db"]),
            ("*/api", &["prod/api", "test/api"]),
            ("prod/cfg/*", &["prod/cfg/api"]),
            ("*/*/api", &["prod/api", "test/api", "prod/cfg/api"]),
            ("root/web", &["web"]),
            ("prod/api,test/api", &["prod/api", "test/api"]),
            ("prod/*+!prod/db", &["prod/api"]),
            ("!*/api", &["web", "prod/db", "prod/cfg/api"]),
            ("env=PRD", &["web", "prod/api"]),
            ("DEFAULT.env=PRD", &["web", "prod/api"]),
            ("env=P*", &["web", "prod/api"]),
            ("env=DEV,web", &["web", "prod/db"]),
            ("container#0.image=local/*", &["web"]),
            ("container#0.image:", &["web", "prod/api"]),
            ("!env:", &["test/api", "prod/cfg/api"]),
            ("prod/*+env=PRD", &["prod/api"]),
            (" prod/db , web ", &["web", "prod/db"]),
        ];
        for (sel, want) in cases {
            assert_eq!(names(sel), *want, "selector {sel:?}");
        }
    }

    #[test]
    fn exact_paths_only_for_plain_names() {
        let exact = |s: &str| {
            Selector::parse(s)
                .unwrap()
                .exact_paths()
                .map(|v| v.iter().map(|p| p.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(exact("prod/db"), Some(vec!["prod/db".to_string()]));
        assert_eq!(
            exact("web,prod/cfg/api"),
            Some(vec!["web".to_string(), "prod/cfg/api".to_string()])
        );
        for scan in [
            "prod/*",
            "*",
            "!prod/db",
            "prod/db+env=PRD",
            "env=PRD",
            "app[12]/x",
        ] {
            assert_eq!(exact(scan), None, "{scan}");
        }
        // Fetching the exact paths selects what a scan selects.
        for s in ["prod/db", "web,prod/api", "prod/cfg/api", "nosuch/x"] {
            let sel = Selector::parse(s).unwrap();
            let fleet = fleet();
            let scanned: Vec<String> = sel
                .select(&fleet)
                .iter()
                .map(|o| o.path.to_string())
                .collect();
            let mut fetched: Vec<String> = sel
                .exact_paths()
                .unwrap()
                .iter()
                .filter(|p| fleet.iter().any(|o| &o.path == *p))
                .map(|p| p.to_string())
                .collect();
            fetched.sort();
            let mut scanned_sorted = scanned.clone();
            scanned_sorted.sort();
            assert_eq!(fetched, scanned_sorted, "{s}");
        }
        assert!(Selector::parse("a/b+env:").unwrap().reads_keywords());
        assert!(!Selector::parse("a/*,!b/c").unwrap().reads_keywords());
    }

    #[test]
    fn parse_errors() {
        let cases = [
            ("", SelectorError::Empty),
            ("  ", SelectorError::Empty),
            ("a,", SelectorError::EmptyAtom("a,".into())),
            ("a++b", SelectorError::EmptyAtom("a++b".into())),
            ("!", SelectorError::EmptyAtom("!".into())),
            ("=x", SelectorError::EmptyKeyword("=x".into())),
            (":", SelectorError::EmptyKeyword(":".into())),
            ("a/b/c/d", SelectorError::InvalidPath("a/b/c/d".into())),
            ("a/", SelectorError::InvalidPath("a/".into())),
            ("ns/foo/x", SelectorError::InvalidKind("foo".into())),
            (
                "app[1-*/*",
                SelectorError::UnbalancedBracket("app[1-*/*".into()),
            ),
            ("a/b[", SelectorError::UnbalancedBracket("a/b[".into())),
        ];
        for (sel, want) in cases {
            assert_eq!(Selector::parse(sel), Err(want), "selector {sel:?}");
        }
    }

    #[test]
    fn as_str_keeps_input() {
        let s: Selector = "prod/*+env=PRD".parse().unwrap();
        assert_eq!(s.as_str(), "prod/*+env=PRD");
        assert_eq!(s.to_string(), "prod/*+env=PRD");
    }
}
