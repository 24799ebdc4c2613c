//! The lossless INI-style configuration document.
//!
//! A [`ConfigDoc`] keeps every line of the original text, including its line
//! ending, so `ConfigDoc::parse(x)?.render() == x` byte for byte. Edits only
//! touch the lines they concern.

mod edit;
mod keyword_ref;
mod line;

#[cfg(test)]
mod tests;

use thiserror::Error;

pub use edit::ConfigEditError;
pub use keyword_ref::{is_scope_name, parse_section_name, KeywordRef, KeywordRefError};

use line::{Line, LineKind};

/// The name of the implicit first section.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// A syntax error in a configuration document.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct ConfigParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// One `key = value` entry of a section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The raw key, possibly with an `@nodename` scope suffix.
    pub key: String,
    /// The value, with continuation lines joined by `\n`.
    pub value: String,
    /// 1-based line number of the key line.
    pub line: usize,
}

/// A parsed, lossless INI document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDoc {
    lines: Vec<Line>,
}

/// A line together with the section it belongs to.
struct Located<'a> {
    index: usize,
    section: &'a str,
    line: &'a Line,
}

impl ConfigDoc {
    /// Parses a document. Fails on a line that is neither a section header,
    /// a `key = value` line, a comment (`#`, `;`), a blank line nor a
    /// continuation line (indented, directly after a key or continuation).
    pub fn parse(text: &str) -> Result<ConfigDoc, ConfigParseError> {
        // A UTF-8 byte-order mark (as Windows editors write) is no part of
        // the text; it is not written back.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.starts_with('\u{feff}') {
            return Err(ConfigParseError {
                line: 1,
                message: "a second byte-order mark at the start of the file".to_string(),
            });
        }
        let mut lines = Vec::new();
        let mut prev_is_value = false;
        for (i, (body, eol)) in line::split_lines(text).into_iter().enumerate() {
            let kind = line::classify(body, prev_is_value).map_err(|message| ConfigParseError {
                line: i + 1,
                message,
            })?;
            prev_is_value = matches!(kind, LineKind::Key { .. } | LineKind::Continuation { .. });
            lines.push(Line {
                text: body.to_string(),
                eol,
                kind,
            });
        }
        Ok(ConfigDoc { lines })
    }

    /// Renders the document back to text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(&l.text);
            out.push_str(l.eol.as_str());
        }
        out
    }

    /// Iterates over lines with the name of the section each belongs to.
    fn located(&self) -> impl Iterator<Item = Located<'_>> {
        let mut section = DEFAULT_SECTION;
        self.lines.iter().enumerate().map(move |(index, line)| {
            if let LineKind::Header { name } = &line.kind {
                section = name.as_str();
            }
            Located {
                index,
                section,
                line,
            }
        })
    }

    /// Section names in order of first appearance. `DEFAULT` comes first
    /// when it has a header or at least one key.
    pub fn sections(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut has_default = false;
        for loc in self.located() {
            let relevant = matches!(
                loc.line.kind,
                LineKind::Header { .. } | LineKind::Key { .. }
            );
            if !relevant {
                continue;
            }
            if loc.section == DEFAULT_SECTION {
                has_default = true;
            } else if !out.iter().any(|s| s == loc.section) {
                out.push(loc.section.to_string());
            }
        }
        if has_default {
            out.insert(0, DEFAULT_SECTION.to_string());
        }
        out
    }

    /// Returns true if the section has a header or (for `DEFAULT`) a key.
    pub fn has_section(&self, section: &str) -> bool {
        self.sections().iter().any(|s| s == section)
    }

    /// The entries of a section, in document order.
    pub fn keys(&self, section: &str) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        let mut in_entry = false;
        for loc in self.located() {
            match &loc.line.kind {
                LineKind::Key { key, value, .. } if loc.section == section => {
                    out.push(Entry {
                        key: key.clone(),
                        value: value.clone(),
                        line: loc.index + 1,
                    });
                    in_entry = true;
                }
                LineKind::Continuation { value } if in_entry => {
                    if let Some(e) = out.last_mut() {
                        e.value.push('\n');
                        e.value.push_str(value);
                    }
                }
                _ => in_entry = false,
            }
        }
        out
    }

    /// The value of a raw key (exact match, `@node` suffix included). When a
    /// key appears more than once, the last occurrence wins.
    pub fn get(&self, section: &str, key: &str) -> Option<String> {
        self.keys(section)
            .into_iter()
            .rev()
            .find(|e| e.key == key)
            .map(|e| e.value)
    }

    /// 1-based line numbers of every header line of a section.
    pub fn header_lines(&self, section: &str) -> Vec<usize> {
        self.located()
            .filter(|l| matches!(&l.line.kind, LineKind::Header { name } if name == section))
            .map(|l| l.index + 1)
            .collect()
    }

    /// Number of lines in the document.
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }
}

impl std::str::FromStr for ConfigDoc {
    type Err = ConfigParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConfigDoc::parse(s)
    }
}
