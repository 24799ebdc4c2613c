//! The effective configuration of an object on one node: node-scoped
//! values applied, defaults filled in, references expanded.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::{parse_section_name, ConfigDoc, DEFAULT_SECTION};
use crate::path::ObjectPath;
use crate::refs::{expand, RefContext};
use crate::schema::{
    check_keyword, parse_bool, parse_duration, split_list, KeywordTable, Registry,
};
use crate::validate::{
    section_line, section_table, split_scope, validate, ConfigError, TYPE_KEYWORD,
};

/// The effective values of one section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Section {
    /// The section name, e.g. `container#0` or `DEFAULT`.
    pub name: String,
    /// The family, e.g. `container` or `DEFAULT`.
    pub family: String,
    /// The index after `#`, `None` for `DEFAULT`.
    pub index: Option<u32>,
    /// The resource type, `None` for `DEFAULT`.
    pub rtype: Option<String>,
    /// Effective value of every keyword that has one.
    pub values: BTreeMap<String, String>,
}

impl Section {
    /// The value of a keyword.
    pub fn get_str(&self, kw: &str) -> Option<&str> {
        self.values.get(kw).map(String::as_str)
    }

    fn parse_with<T>(
        &self,
        kw: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        self.get_str(kw)
            .map(|v| parse(v).map_err(|e| format!("[{}] {kw}: {e}", self.name)))
            .transpose()
    }

    /// The value of a keyword as an integer.
    pub fn get_int(&self, kw: &str) -> Result<Option<i64>, String> {
        self.parse_with(kw, |v| {
            v.trim()
                .parse()
                .map_err(|_| format!("invalid integer {v:?}"))
        })
    }

    /// The value of a keyword as a boolean.
    pub fn get_bool(&self, kw: &str) -> Result<Option<bool>, String> {
        self.parse_with(kw, |v| {
            parse_bool(v).ok_or_else(|| format!("invalid boolean {v:?}"))
        })
    }

    /// The value of a keyword as a duration.
    pub fn get_duration(&self, kw: &str) -> Result<Option<Duration>, String> {
        self.parse_with(kw, parse_duration)
    }

    /// The value of a keyword split into words ([`crate::QUOTING_DOC`]);
    /// empty when unset.
    pub fn get_list(&self, kw: &str) -> Result<Vec<String>, String> {
        self.parse_with(kw, split_list)
            .map(Option::unwrap_or_default)
    }
}

/// What the agent runs for one object on one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EffectiveConfig {
    /// The `DEFAULT` section.
    pub default: Section,
    /// Resource sections, sorted by family then index.
    pub resources: Vec<Section>,
}

impl EffectiveConfig {
    /// The value of a keyword of a section (`DEFAULT` or a resource name).
    pub fn get(&self, section: &str, kw: &str) -> Option<&str> {
        self.section(section).and_then(|s| s.get_str(kw))
    }

    /// A section by name.
    pub fn section(&self, name: &str) -> Option<&Section> {
        if name == DEFAULT_SECTION {
            return Some(&self.default);
        }
        self.resources.iter().find(|s| s.name == name)
    }

    /// The resources of one family, in index order.
    pub fn resources_of<'a>(&'a self, family: &'a str) -> impl Iterator<Item = &'a Section> + 'a {
        self.resources.iter().filter(move |s| s.family == family)
    }
}

/// Raw values of a section for a node: `kw@nodename` wins over `kw`, and
/// later lines win over earlier ones. Returns value and line per keyword.
fn raw_values(doc: &ConfigDoc, section: &str, nodename: &str) -> BTreeMap<String, (String, usize)> {
    let mut plain = BTreeMap::new();
    let mut scoped = BTreeMap::new();
    for e in doc.keys(section) {
        match split_scope(&e.key) {
            (name, None) => {
                plain.insert(name.to_string(), (e.value, e.line));
            }
            (name, Some(node)) if node == nodename => {
                scoped.insert(name.to_string(), (e.value, e.line));
            }
            _ => {}
        }
    }
    plain.extend(scoped);
    plain
}

/// Resolves one section against its table.
fn resolve_section(
    doc: &ConfigDoc,
    table: &KeywordTable,
    name: &str,
    nodename: &str,
    ctx: &RefContext,
    errors: &mut Vec<ConfigError>,
) -> Section {
    let (family, index) = parse_section_name(name).unwrap_or_else(|| (name.to_string(), None));
    let raw = raw_values(doc, name, nodename);
    let header = section_line(doc, name);
    let mut values = BTreeMap::new();
    let mut err = |line: usize, kw: &str, message: String| {
        errors.push(ConfigError {
            line,
            section: name.to_string(),
            keyword: Some(kw.to_string()),
            message,
        })
    };
    for kw in table.keywords {
        let (value, line) = match (raw.get(kw.name), kw.default) {
            (Some((v, line)), _) => (v.as_str(), *line),
            (None, Some(d)) => (d, header),
            (None, None) => {
                if kw.required {
                    err(
                        header,
                        kw.name,
                        format!("required keyword is missing on node {nodename}"),
                    );
                }
                continue;
            }
        };
        match expand(value, ctx) {
            Ok(expanded) => {
                if value.contains('{') {
                    if let Err(e) = check_keyword(kw, &expanded) {
                        err(line, kw.name, format!("after expansion: {e}"));
                    }
                }
                values.insert(kw.name.to_string(), expanded);
            }
            Err(e) => err(line, kw.name, e.to_string()),
        }
    }
    let rtype = table.rtype.map(str::to_string);
    if let Some(t) = &rtype {
        values
            .entry(TYPE_KEYWORD.to_string())
            .or_insert_with(|| t.clone());
    }
    Section {
        name: name.to_string(),
        family,
        index,
        rtype,
        values,
    }
}

/// Validates `doc` and computes its effective configuration for `path` on
/// `nodename`. The `{env.KEY}` variables are the raw `DEFAULT` values.
pub fn resolve(
    doc: &ConfigDoc,
    registry: &Registry,
    path: &ObjectPath,
    nodename: &str,
) -> Result<EffectiveConfig, Vec<ConfigError>> {
    let errors = validate(doc, registry);
    if !errors.is_empty() {
        return Err(errors);
    }
    let env: BTreeMap<String, String> = raw_values(doc, DEFAULT_SECTION, nodename)
        .into_iter()
        .map(|(k, (v, _))| (k, v))
        .collect();
    let ctx = RefContext {
        path: path.clone(),
        nodename: nodename.to_string(),
        id: env.get("id").cloned().unwrap_or_default(),
        env,
    };
    let mut errors = Vec::new();
    let default = match registry.table(DEFAULT_SECTION, None) {
        Some(table) => resolve_section(doc, table, DEFAULT_SECTION, nodename, &ctx, &mut errors),
        None => Section {
            name: DEFAULT_SECTION.to_string(),
            family: DEFAULT_SECTION.to_string(),
            ..Section::default()
        },
    };
    let mut resources = Vec::new();
    for name in doc.sections().into_iter().filter(|s| s != DEFAULT_SECTION) {
        match section_table(doc, registry, &name) {
            Ok(table) => resources.push(resolve_section(
                doc,
                table,
                &name,
                nodename,
                &ctx,
                &mut errors,
            )),
            // validate() already accepted every section.
            Err(message) => errors.push(ConfigError {
                line: section_line(doc, &name),
                section: name,
                keyword: None,
                message,
            }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    resources.sort_by(|a, b| (&a.family, a.index).cmp(&(&b.family, b.index)));
    Ok(EffectiveConfig { default, resources })
}

#[cfg(test)]
#[path = "effective_tests.rs"]
mod tests;
