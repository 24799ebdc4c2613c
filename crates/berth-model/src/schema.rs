//! Keyword schema types and value checks. Driver crates define the actual
//! tables as statics.

use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::config::{parse_section_name, DEFAULT_SECTION};
use crate::rules::Rule;
use crate::words::split_words;

/// The type of a keyword value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KwType {
    /// Free text.
    String,
    /// A signed 64-bit integer.
    Int,
    /// A boolean (`true`/`false`, `yes`/`no`, `1`/`0`, `on`/`off`).
    Bool,
    /// A duration such as `10s`, `500ms` or `1h30m`; a bare number is seconds.
    Duration,
    /// A whitespace-separated list.
    List,
    /// A UUID.
    Uuid,
    /// One of a fixed set of values.
    Enum(&'static [&'static str]),
    /// A size in bytes such as `512`, `10k`, `20m` or `1g` (powers of 1024).
    Size,
}

impl KwType {
    /// The type name used in docs and the JSON schema.
    pub fn name(&self) -> &'static str {
        match self {
            KwType::String => "string",
            KwType::Int => "int",
            KwType::Bool => "bool",
            KwType::Duration => "duration",
            KwType::List => "list",
            KwType::Uuid => "uuid",
            KwType::Enum(_) => "enum",
            KwType::Size => "size",
        }
    }

    /// The allowed values of an enum type, empty otherwise.
    pub fn candidates(&self) -> &'static [&'static str] {
        match self {
            KwType::Enum(values) => values,
            _ => &[],
        }
    }
}

impl Serialize for KwType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The definition of one keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Keyword {
    /// The keyword name, e.g. `image`.
    pub name: &'static str,
    /// The value type.
    pub kind: KwType,
    /// The default value, if any.
    pub default: Option<&'static str>,
    /// Whether the keyword must be set.
    pub required: bool,
    /// Whether a node-scoped `name@node` variant is allowed.
    pub scopable: bool,
    /// Documentation.
    pub text: &'static str,
    /// An example value.
    pub example: Option<&'static str>,
    /// The constraint on the value beyond its type.
    #[serde(serialize_with = "ser_rule")]
    pub rule: Rule,
}

fn ser_rule<S: Serializer>(rule: &Rule, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rule.describe())
}

impl Keyword {
    /// The same keyword with a value constraint.
    pub const fn with_rule(self, rule: Rule) -> Keyword {
        Keyword { rule, ..self }
    }
}

/// The keywords of one section family and resource type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct KeywordTable {
    /// `DEFAULT`, `container`, `volume`, ...
    pub family: &'static str,
    /// The resource type (`type` keyword value), `None` for `DEFAULT`.
    pub rtype: Option<&'static str>,
    /// Documentation.
    pub text: &'static str,
    /// The keywords.
    pub keywords: &'static [Keyword],
}

impl KeywordTable {
    /// Finds a keyword by name.
    pub fn get(&self, name: &str) -> Option<&Keyword> {
        self.keywords.iter().find(|k| k.name == name)
    }
}

/// All known keyword tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    /// Tables in registration order; the first table of a family is its
    /// default type.
    pub tables: Vec<&'static KeywordTable>,
}

impl Registry {
    /// Builds a registry from tables.
    pub fn new(tables: Vec<&'static KeywordTable>) -> Self {
        Registry { tables }
    }

    /// The table of a family and type. With `rtype` `None`, the family's
    /// first registered table.
    pub fn table(&self, family: &str, rtype: Option<&str>) -> Option<&KeywordTable> {
        self.tables
            .iter()
            .copied()
            .filter(|t| t.family == family)
            .find(|t| rtype.is_none() || t.rtype == rtype)
    }

    /// Family names in registration order, without duplicates.
    pub fn families(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for t in &self.tables {
            if !out.contains(&t.family) {
                out.push(t.family);
            }
        }
        out
    }

    /// Finds a keyword from a dotted name: `env` and `DEFAULT.env` look in
    /// `DEFAULT`; `container.image` (or `container#0.image`) in the first
    /// container table defining `image`; `container.docker.image` in the
    /// docker container table.
    pub fn lookup(&self, dotted: &str) -> Option<(&KeywordTable, &Keyword)> {
        let parts: Vec<&str> = dotted.split('.').collect();
        let (family, rtype, name) = match parts.as_slice() {
            // A bare name is DEFAULT's, else the first table's that has it.
            [name] => {
                return self
                    .table(DEFAULT_SECTION, None)
                    .and_then(|t| t.get(name).map(|k| (t, k)))
                    .or_else(|| {
                        self.tables
                            .iter()
                            .copied()
                            .find_map(|t| t.get(name).map(|k| (t, k)))
                    })
            }
            [section, name] => (family_of(section), None, *name),
            [section, rtype, name] => (family_of(section), Some(*rtype), *name),
            _ => return None,
        };
        self.tables
            .iter()
            .copied()
            .filter(|t| t.family == family && (rtype.is_none() || t.rtype == rtype))
            .find_map(|t| t.get(name).map(|k| (t, k)))
    }

    /// A JSON-schema-like description of every table and keyword.
    pub fn json_schema(&self) -> Value {
        let tables: Vec<Value> = self.tables.iter().map(|t| table_schema(t)).collect();
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "berth object configuration",
            "families": self.families(),
            "tables": tables,
        })
    }
}

/// `container#0` and `container` both mean family `container`.
fn family_of(section: &str) -> String {
    match parse_section_name(section) {
        Some((family, _)) => family,
        None => section.to_string(),
    }
}

fn table_schema(t: &KeywordTable) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for k in t.keywords {
        let mut kw = Map::new();
        kw.insert("type".into(), json!(k.kind.name()));
        if let KwType::Enum(values) = k.kind {
            kw.insert("enum".into(), json!(values));
        }
        kw.insert("default".into(), json!(k.default));
        kw.insert("required".into(), json!(k.required));
        kw.insert("scopable".into(), json!(k.scopable));
        kw.insert("description".into(), json!(k.text));
        if let Some(example) = k.example {
            kw.insert("examples".into(), json!([example]));
        }
        if let Rule::Range { min, max } = k.rule {
            kw.insert("minimum".into(), json!(min));
            kw.insert("maximum".into(), json!(max));
        }
        if k.rule != Rule::None {
            kw.insert("rule".into(), json!(k.rule.describe()));
        }
        if k.required {
            kw.insert("minLength".into(), json!(1));
        }
        if k.required {
            required.push(k.name);
        }
        props.insert(k.name.to_string(), Value::Object(kw));
    }
    let section = if t.family == DEFAULT_SECTION {
        DEFAULT_SECTION.to_string()
    } else {
        format!("{}#N", t.family)
    };
    json!({
        "family": t.family,
        "type": t.rtype,
        "section": section,
        "description": t.text,
        "properties": props,
        "required": required,
    })
}

/// Parses a boolean: `true/false`, `yes/no`, `1/0`, `on/off`, any case.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

/// Parses a duration: a bare number of seconds, or a sequence of
/// `<number><unit>` with units `ms`, `s`, `m`, `h`, `d` (e.g. `1h30m`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("invalid duration {s:?}: expected e.g. 10, 10s, 500ms, 2m, 1h30m");
    let t = s.trim();
    if t.is_empty() {
        return Err(err());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map(Duration::from_secs).map_err(|_| err());
    }
    let mut total_ms: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let factor: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total_ms = n
            .checked_mul(factor)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(err)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Parses a size in bytes: `512`, `10k`, `20m`, `1g`, `2t` (powers of
/// 1024, case-insensitive, optional `b`/`ib` suffix as in `10KiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let err = || format!("invalid size {s:?}: expected e.g. 512, 10k, 20m, 1g");
    let t = s.trim().to_ascii_lowercase();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(err());
    }
    let n: u64 = t[..digits].parse().map_err(|_| err())?;
    let unit = &t[digits..];
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(err()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(err)
}

/// Splits a list value into words, quoted as a shell would
/// ([`crate::words::QUOTING_DOC`]).
pub fn split_list(s: &str) -> Result<Vec<String>, String> {
    split_words(s)
}

/// Checks a value against everything its keyword says: no NUL byte, not
/// empty when required, its type, then its rule. The error names the value
/// and the rule it broke.
pub fn check_keyword(kw: &Keyword, value: &str) -> Result<(), String> {
    if value.contains('\0') {
        return Err(format!(
            "invalid value {value:?}: NUL bytes are not allowed"
        ));
    }
    if kw.required && value.trim().is_empty() {
        return Err("a required keyword cannot be empty".to_string());
    }
    check_value(&kw.kind, value)?;
    kw.rule.check(value).map_err(|e| {
        // A list's error names the bad word; name the whole value too.
        let e = if e.contains(&format!("{value:?}")) {
            e
        } else {
            format!("invalid value {value:?}: {e}")
        };
        format!("{e} (rule: {})", kw.rule.describe())
    })
}

/// Checks a raw value against a keyword type.
pub fn check_value(kind: &KwType, value: &str) -> Result<(), String> {
    match kind {
        KwType::String => Ok(()),
        KwType::List => split_words(value).map(|_| ()).map_err(|e| {
            format!("invalid list {value:?}: {e} (rule: words, quoted as in a shell)")
        }),
        KwType::Int => value
            .trim()
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("invalid integer {value:?}")),
        KwType::Bool => parse_bool(value).map(|_| ()).ok_or_else(|| {
            format!("invalid boolean {value:?}: expected true, false, yes, no, on, off, 1 or 0")
        }),
        KwType::Duration => parse_duration(value).map(|_| ()),
        KwType::Uuid => uuid::Uuid::parse_str(value.trim())
            .map(|_| ())
            .map_err(|_| format!("invalid uuid {value:?}")),
        KwType::Enum(values) => {
            if values.contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "invalid value {value:?}: expected one of {}",
                    values.join(", ")
                ))
            }
        }
        KwType::Size => parse_size(value).map(|_| ()),
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
