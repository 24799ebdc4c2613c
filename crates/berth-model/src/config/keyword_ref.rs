//! `section.key` keyword references such as `container#0.image@node1`.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::DEFAULT_SECTION;

/// An invalid keyword reference.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid keyword {input:?}: {message}")]
pub struct KeywordRefError {
    /// The text that failed to parse.
    pub input: String,
    /// What is wrong.
    pub message: String,
}

/// A reference to one keyword of one section.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeywordRef {
    /// `DEFAULT` or `<family>#<index>`.
    pub section: String,
    /// The raw key, possibly with an `@nodename` suffix.
    pub key: String,
}

/// Splits a section name into family and index: `DEFAULT` gives
/// `("DEFAULT", None)`, `container#0` gives `("container", Some(0))`.
/// Returns `None` for any other shape. The family must be a lowercase word
/// (`[a-z][a-z0-9_]*`).
pub fn parse_section_name(name: &str) -> Option<(String, Option<u32>)> {
    if name == DEFAULT_SECTION {
        return Some((DEFAULT_SECTION.to_string(), None));
    }
    let (family, index) = name.split_once('#')?;
    let mut chars = family.chars();
    let family_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    // u32::from_str accepts a leading '+', which is not an index.
    let index_ok = !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit());
    if !family_ok || !index_ok {
        return None;
    }
    let index = index.parse().ok()?;
    Some((family.to_string(), Some(index)))
}

fn is_key_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `s` can be the node name of an `@node` scope suffix.
pub fn is_scope_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

impl KeywordRef {
    /// Parses `key`, `DEFAULT.key`, `family#N.key`, optionally followed by
    /// `@nodename`.
    pub fn parse(s: &str) -> Result<KeywordRef, KeywordRefError> {
        let err = |message: &str| KeywordRefError {
            input: s.to_string(),
            message: message.to_string(),
        };
        // The section never contains '.', the scope may (node FQDNs).
        let (section, key) = match s.split_once('.') {
            Some((sec, key)) if !sec.contains('@') => (sec, key),
            _ => (DEFAULT_SECTION, s),
        };
        if parse_section_name(section).is_none() {
            return Err(err(
                "section must be DEFAULT or <family>#<index>, e.g. container#0",
            ));
        }
        let (name, scope) = match key.split_once('@') {
            Some((name, scope)) => (name, Some(scope)),
            None => (key, None),
        };
        if !is_key_name(name) {
            return Err(err("keyword must be made of letters, digits, '_' and '-'"));
        }
        if scope.is_some_and(|n| !is_scope_name(n)) {
            return Err(err("node name after '@' must be a non-empty host name"));
        }
        Ok(KeywordRef {
            section: section.to_string(),
            key: key.to_string(),
        })
    }

    /// The keyword name without its `@nodename` suffix.
    pub fn base_key(&self) -> &str {
        self.key.split_once('@').map_or(&self.key, |(k, _)| k)
    }

    /// The `@nodename` scope, if any.
    pub fn scope(&self) -> Option<&str> {
        self.key.split_once('@').map(|(_, n)| n)
    }
}

impl fmt::Display for KeywordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.section, self.key)
    }
}

impl FromStr for KeywordRef {
    type Err = KeywordRefError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeywordRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = [
            ("env", "DEFAULT", "env"),
            ("DEFAULT.env", "DEFAULT", "env"),
            ("container#0.image", "container#0", "image"),
            ("container#12.image@node1", "container#12", "image@node1"),
            (
                "volume#1.size@n1.example.com",
                "volume#1",
                "size@n1.example.com",
            ),
            ("env@node1.lan", "DEFAULT", "env@node1.lan"),
            ("run_args", "DEFAULT", "run_args"),
        ];
        for (input, section, key) in ok {
            let r = KeywordRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(
                (r.section.as_str(), r.key.as_str()),
                (section, key),
                "{input}"
            );
        }
        let bad = [
            "",
            "container.image",
            "container#.image",
            "container#x.image",
            "container#+1.image",
            "Container#0.image",
            "default.env",
            "container#0.",
            "container#0.image@",
            "a b",
            "DEFAULT.env.x",
        ];
        for input in bad {
            assert!(KeywordRef::parse(input).is_err(), "{input:?} should fail");
        }
    }

    #[test]
    fn helpers() {
        let r = KeywordRef::parse("container#0.image@node1").unwrap();
        assert_eq!(r.base_key(), "image");
        assert_eq!(r.scope(), Some("node1"));
        assert_eq!(r.to_string(), "container#0.image@node1");
        let r = KeywordRef::parse("env").unwrap();
        assert_eq!(r.scope(), None);
        assert_eq!(r.to_string(), "DEFAULT.env");
    }

    #[test]
    fn section_names() {
        assert_eq!(
            parse_section_name("container#3"),
            Some(("container".into(), Some(3)))
        );
        assert_eq!(
            parse_section_name("DEFAULT"),
            Some(("DEFAULT".into(), None))
        );
        assert_eq!(parse_section_name("env"), None);
        assert_eq!(parse_section_name("container#99999999999"), None);
    }
}
