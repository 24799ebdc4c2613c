//! `create --config FILE`: errors name the user's file and its line, not
//! the destination the merged config would be written to.

use berth_model::{ConfigDoc, ConfigError, KeywordRef};

/// The config text a create starts from, and the name to report it by.
pub(crate) struct Origin<'a> {
    pub name: &'a str,
    pub doc: &'a ConfigDoc,
    pub kws: &'a [(KeywordRef, String)],
}

impl Origin<'_> {
    /// `FILE:LINE: message` when the offending line is the user's, `--kw
    /// section.key: message` when a --kw set it, `None` otherwise.
    pub fn locate(&self, e: &ConfigError, message: &str) -> Option<String> {
        if let Some(kw) = &e.keyword {
            if self
                .kws
                .iter()
                .any(|(r, _)| r.section == e.section && &r.key == kw)
            {
                return Some(format!("--kw {}.{kw}: {message}", e.section));
            }
            let line = self
                .doc
                .keys(&e.section)
                .into_iter()
                .find(|entry| &entry.key == kw)
                .map(|entry| entry.line)
                .or_else(|| self.doc.header_lines(&e.section).first().copied())?;
            return Some(format!("{}:{line}: {message}", self.name));
        }
        let line = self.doc.header_lines(&e.section).first().copied()?;
        Some(format!("{}:{line}: {message}", self.name))
    }
}
