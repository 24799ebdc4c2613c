//! Object paths: `namespace/kind/name`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The namespace used when a path does not name one.
pub const ROOT_NAMESPACE: &str = "root";

/// The kind of a managed object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A service.
    Svc,
    /// A secret.
    Sec,
    /// A configuration map.
    Cfg,
    /// A user.
    Usr,
}

impl Kind {
    /// All kinds, in declaration order.
    pub const ALL: [Kind; 4] = [Kind::Svc, Kind::Sec, Kind::Cfg, Kind::Usr];

    /// The lowercase name of the kind (`svc`, `sec`, `cfg`, `usr`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Svc => "svc",
            Kind::Sec => "sec",
            Kind::Cfg => "cfg",
            Kind::Usr => "usr",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| PathError::InvalidKind(s.to_string()))
    }
}

/// Errors produced when parsing an [`ObjectPath`] or a [`Kind`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PathError {
    /// The path string is empty.
    #[error("empty object path")]
    Empty,
    /// The path has more than three `/`-separated parts.
    #[error("invalid object path {0:?}: expected name, namespace/name or namespace/kind/name")]
    TooManyParts(String),
    /// The kind part is not a known kind.
    #[error("invalid kind {0:?}: expected one of svc, sec, cfg, usr")]
    InvalidKind(String),
    /// The namespace is not an RFC 1123 label.
    #[error("invalid namespace {0:?}: must be an RFC 1123 label (lowercase letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit)")]
    InvalidNamespace(String),
    /// The name is not an RFC 1123 label.
    #[error("invalid name {0:?}: must be an RFC 1123 label (lowercase letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit)")]
    InvalidName(String),
}

/// Returns true if `s` is an RFC 1123 label: 1 to 63 characters of
/// lowercase ASCII letters, digits and `-`, starting and ending with a
/// letter or digit.
pub fn is_rfc1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let ok_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            bytes.len() <= 63 && alnum(first) && alnum(last) && bytes.iter().all(ok_char)
        }
        _ => false,
    }
}

/// The identity of a managed object: namespace, kind and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectPath {
    /// The namespace (`root` when not given).
    pub namespace: String,
    /// The kind of object.
    pub kind: Kind,
    /// The object name.
    pub name: String,
}

impl ObjectPath {
    /// Builds a validated path.
    pub fn new(namespace: &str, kind: Kind, name: &str) -> Result<Self, PathError> {
        if !is_rfc1123_label(namespace) {
            return Err(PathError::InvalidNamespace(namespace.to_string()));
        }
        if !is_rfc1123_label(name) {
            return Err(PathError::InvalidName(name.to_string()));
        }
        Ok(ObjectPath {
            namespace: namespace.to_string(),
            kind,
            name: name.to_string(),
        })
    }

    /// Builds a validated service path.
    pub fn svc(namespace: &str, name: &str) -> Result<Self, PathError> {
        Self::new(namespace, Kind::Svc, name)
    }
}

impl fmt::Display for ObjectPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.namespace.as_str(), self.kind) {
            (ROOT_NAMESPACE, Kind::Svc) => f.write_str(&self.name),
            (ns, Kind::Svc) => write!(f, "{ns}/{}", self.name),
            (ns, kind) => write!(f, "{ns}/{kind}/{}", self.name),
        }
    }
}

impl FromStr for ObjectPath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [name] => ObjectPath::new(ROOT_NAMESPACE, Kind::Svc, name),
            [ns, name] => ObjectPath::new(ns, Kind::Svc, name),
            [ns, kind, name] => ObjectPath::new(ns, kind.parse()?, name),
            _ => Err(PathError::TooManyParts(s.to_string())),
        }
    }
}

impl Serialize for ObjectPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1123_labels() {
        let cases: &[(&str, bool)] = &[
            ("a", true),
            ("app-1", true),
            ("0abc", true),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("App", false),
            ("a_b", false),
            ("a.b", false),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
        ];
        for (s, want) in cases {
            assert_eq!(is_rfc1123_label(s), *want, "{s:?}");
        }
    }

    #[test]
    fn parse_and_display() {
        let cases = [
            ("web", "root", Kind::Svc, "web", "web"),
            ("prod/web", "prod", Kind::Svc, "web", "prod/web"),
            ("root/web", "root", Kind::Svc, "web", "web"),
            ("prod/svc/web", "prod", Kind::Svc, "web", "prod/web"),
            ("prod/cfg/web", "prod", Kind::Cfg, "web", "prod/cfg/web"),
            ("root/sec/x", "root", Kind::Sec, "x", "root/sec/x"),
        ];
        for (input, ns, kind, name, display) in cases {
            let p: ObjectPath = input.parse().expect(input);
            assert_eq!(p.namespace, ns);
            assert_eq!(p.kind, kind);
            assert_eq!(p.name, name);
            assert_eq!(p.to_string(), display);
            assert_eq!(display.parse::<ObjectPath>().expect(display), p);
        }
    }

    #[test]
    fn parse_errors() {
        assert_eq!("".parse::<ObjectPath>(), Err(PathError::Empty));
        assert!(matches!(
            "a/b/c/d".parse::<ObjectPath>(),
            Err(PathError::TooManyParts(_))
        ));
        assert!(matches!(
            "ns/foo/web".parse::<ObjectPath>(),
            Err(PathError::InvalidKind(_))
        ));
        assert!(matches!(
            "NS/web".parse::<ObjectPath>(),
            Err(PathError::InvalidNamespace(_))
        ));
        let err = "App_1".parse::<ObjectPath>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid name \"App_1\": must be an RFC 1123 label (lowercase letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit)"
        );
        assert!("ns/".parse::<ObjectPath>().is_err());
    }

    #[test]
    fn serde_as_string() {
        let p: ObjectPath = "prod/web".parse().unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"prod/web\"");
        let back: ObjectPath = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<ObjectPath>("\"Bad/x\"").is_err());
        assert_eq!(serde_json::to_string(&Kind::Cfg).unwrap(), "\"cfg\"");
    }

    #[test]
    fn ordering_is_namespace_first() {
        let a: ObjectPath = "a/z".parse().unwrap();
        let b: ObjectPath = "b/a".parse().unwrap();
        assert!(a < b);
    }
}
