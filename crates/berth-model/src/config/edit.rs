//! In-place edits of a [`ConfigDoc`] that leave unrelated bytes untouched.

use thiserror::Error;

use super::line::{classify, Eol, Line, LineKind};
use super::{ConfigDoc, DEFAULT_SECTION};

const CONTINUATION_INDENT: &str = "    ";

/// Why an edit was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigEditError {
    /// The section name cannot be written as a header.
    #[error("invalid section name {0:?}")]
    InvalidSection(String),
    /// The key cannot be written as a key line.
    #[error("invalid key {0:?}")]
    InvalidKey(String),
    /// The value cannot be written losslessly.
    #[error("invalid value {0:?}: a continuation line may not start with '#' or ';'")]
    InvalidValue(String),
}

fn check_edit(section: &str, key: &str, value: &str) -> Result<(), ConfigEditError> {
    let bad_name = |s: &str| s.is_empty() || s.trim() != s || s.contains(['\n', '\r']);
    if bad_name(section) || section.contains(['[', ']']) {
        return Err(ConfigEditError::InvalidSection(section.to_string()));
    }
    if bad_name(key) || key.contains('=') || key.starts_with(['#', ';', '[']) {
        return Err(ConfigEditError::InvalidKey(key.to_string()));
    }
    if value_segments(value)
        .iter()
        .skip(1)
        .any(|s| s.starts_with(['#', ';']))
    {
        return Err(ConfigEditError::InvalidValue(value.to_string()));
    }
    Ok(())
}

/// Splits a value into the trimmed text of its key line and its non-empty
/// continuation lines (empty lines would read back as blank lines).
fn value_segments(value: &str) -> Vec<&str> {
    let mut segs = value.lines().map(str::trim);
    let first = segs.next().unwrap_or("");
    std::iter::once(first)
        .chain(segs.filter(|s| !s.is_empty()))
        .collect()
}

impl ConfigDoc {
    /// The line ending used for new lines: the first one in the document,
    /// else `\n`.
    fn default_eol(&self) -> Eol {
        self.lines
            .iter()
            .map(|l| l.eol)
            .find(|e| *e != Eol::None)
            .unwrap_or(Eol::Lf)
    }

    /// Index one past the last value line (key or continuation) starting at `start`.
    fn value_end(&self, start: usize) -> usize {
        let mut end = start + 1;
        while matches!(
            self.lines.get(end).map(|l| &l.kind),
            Some(LineKind::Continuation { .. })
        ) {
            end += 1;
        }
        end
    }

    fn key_indices(&self, section: &str, key: &str) -> Vec<usize> {
        self.located()
            .filter(|l| l.section == section)
            .filter(|l| matches!(&l.line.kind, LineKind::Key { key: k, .. } if k == key))
            .map(|l| l.index)
            .collect()
    }

    fn continuation_lines(segments: &[&str], indent: &str, eol: Eol) -> Vec<Line> {
        segments
            .iter()
            .map(|s| Line {
                text: format!("{indent}{s}"),
                eol,
                kind: LineKind::Continuation {
                    value: s.to_string(),
                },
            })
            .collect()
    }

    fn new_key_lines(key: &str, segments: &[&str], eol: Eol) -> Vec<Line> {
        let first = segments.first().copied().unwrap_or("");
        let prefix = if first.is_empty() {
            format!("{key} =")
        } else {
            format!("{key} = ")
        };
        let mut out = vec![Line::key(key, prefix, first, eol)];
        out.extend(Self::continuation_lines(
            segments.get(1..).unwrap_or(&[]),
            CONTINUATION_INDENT,
            eol,
        ));
        out
    }

    /// Inserts lines at `at`, making sure the line before ends with a newline.
    fn insert_lines(&mut self, at: usize, new: Vec<Line>) {
        let eol = self.default_eol();
        if let Some(prev) = at.checked_sub(1).and_then(|i| self.lines.get_mut(i)) {
            if prev.eol == Eol::None {
                prev.eol = eol;
            }
        }
        self.lines.splice(at..at, new);
    }

    /// Sets a key, ignoring the edit when the section, key or value cannot
    /// be written (see [`ConfigDoc::try_set`]).
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        // The signature is fixed by callers; invalid names come from
        // programming errors, and try_set reports them.
        let _ = self.try_set(section, key, value);
    }

    /// Sets a key. An existing key line keeps its key text and spacing;
    /// a new key is added after the section's last key; a missing section is
    /// appended at the end (or, for `DEFAULT`, created at the top).
    pub fn try_set(
        &mut self,
        section: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ConfigEditError> {
        check_edit(section, key, value)?;
        let segments = value_segments(value);
        let eol = self.default_eol();
        if let Some(&idx) = self.key_indices(section, key).last() {
            self.replace_value(idx, &segments, eol);
        } else if let Some(at) = self.insertion_point(section) {
            self.insert_lines(at, Self::new_key_lines(key, &segments, eol));
        } else if section == DEFAULT_SECTION {
            let mut new = vec![Line::header(DEFAULT_SECTION, eol)];
            new.extend(Self::new_key_lines(key, &segments, eol));
            if self
                .lines
                .first()
                .is_some_and(|l| l.kind != LineKind::Blank)
            {
                new.push(Line::blank(eol));
            }
            self.insert_lines(0, new);
        } else {
            let mut new = Vec::new();
            if self.lines.last().is_some_and(|l| l.kind != LineKind::Blank) {
                new.push(Line::blank(eol));
            }
            new.push(Line::header(section, eol));
            new.extend(Self::new_key_lines(key, &segments, eol));
            let at = self.lines.len();
            self.insert_lines(at, new);
        }
        self.normalize();
        Ok(())
    }

    /// Rewrites the value of the key line at `idx`, replacing its
    /// continuation lines.
    fn replace_value(&mut self, idx: usize, segments: &[&str], eol: Eol) {
        let end = self.value_end(idx);
        let last_eol = self.lines[end - 1].eol;
        let indent = self
            .lines
            .get(idx + 1..end)
            .and_then(|c| c.first())
            .map(|l| {
                let t = l.text.as_str();
                t[..t.len() - t.trim_start().len()].to_string()
            })
            .unwrap_or_else(|| CONTINUATION_INDENT.to_string());
        let old = &self.lines[idx];
        let LineKind::Key {
            key, value_start, ..
        } = &old.kind
        else {
            return;
        };
        let (key, value_start) = (key.clone(), *value_start);
        let first = segments.first().copied().unwrap_or("");
        let mut prefix = old.text[..value_start].to_string();
        // `key =` with no value has no space to reuse.
        if value_start == old.text.len() && !first.is_empty() {
            if let Some(before_eq) = prefix.strip_suffix('=') {
                if before_eq.ends_with(char::is_whitespace) {
                    prefix.push(' ');
                }
            }
        }
        let eol = match old.eol {
            Eol::None => eol,
            own => own,
        };
        let mut new = vec![Line::key(&key, prefix, first, eol)];
        new.extend(Self::continuation_lines(
            segments.get(1..).unwrap_or(&[]),
            &indent,
            eol,
        ));
        if let Some(l) = new.last_mut() {
            l.eol = last_eol;
        }
        self.lines.splice(idx..end, new);
    }

    /// Where a new key of `section` goes: after its last value line, else
    /// after its last header. `None` when the section does not exist.
    fn insertion_point(&self, section: &str) -> Option<usize> {
        let mut last_value = None;
        let mut last_header = None;
        for l in self.located().filter(|l| l.section == section) {
            match l.line.kind {
                LineKind::Key { .. } => last_value = Some(self.value_end(l.index)),
                LineKind::Header { .. } => last_header = Some(l.index + 1),
                _ => {}
            }
        }
        last_value.or(last_header)
    }

    /// Removes every occurrence of a key (with its continuation lines).
    /// Returns true if something was removed.
    pub fn unset(&mut self, section: &str, key: &str) -> bool {
        let indices = self.key_indices(section, key);
        for &idx in indices.iter().rev() {
            let end = self.value_end(idx);
            self.lines.drain(idx..end);
        }
        self.normalize();
        !indices.is_empty()
    }

    /// Removes a section: its header(s) and every line up to the next
    /// header. For `DEFAULT`, key lines before the first header go too.
    /// Returns true if the section existed.
    pub fn remove_section(&mut self, section: &str) -> bool {
        let mut remove = vec![false; self.lines.len()];
        let mut found = false;
        let mut seen_header = false;
        for l in self.located() {
            seen_header |= matches!(l.line.kind, LineKind::Header { .. });
            if l.section != section {
                continue;
            }
            let in_header_block = seen_header;
            let is_value = matches!(
                l.line.kind,
                LineKind::Key { .. } | LineKind::Continuation { .. }
            );
            if in_header_block || is_value {
                remove[l.index] = true;
                found |= !matches!(l.line.kind, LineKind::Continuation { .. });
            }
        }
        if !found {
            return false;
        }
        let removed_tail = remove.last().copied().unwrap_or(false);
        let mut flags = remove.into_iter();
        self.lines.retain(|_| !flags.next().unwrap_or(false));
        if removed_tail {
            while self.lines.last().is_some_and(|l| l.kind == LineKind::Blank) {
                self.lines.pop();
            }
        }
        self.normalize();
        true
    }

    /// Keeps the document re-parseable the way it is stored: an indented
    /// line that now follows a key line would read back as a continuation,
    /// so a blank line is put in between.
    fn normalize(&mut self) {
        let eol = self.default_eol();
        let mut i = 1;
        while i < self.lines.len() {
            let prev_is_value = matches!(
                self.lines[i - 1].kind,
                LineKind::Key { .. } | LineKind::Continuation { .. }
            );
            let line = &self.lines[i];
            let reads_as_continuation = prev_is_value
                && !matches!(line.kind, LineKind::Continuation { .. })
                && matches!(
                    classify(&line.text, true),
                    Ok(LineKind::Continuation { .. })
                );
            if reads_as_continuation {
                self.insert_lines(i, vec![Line::blank(eol)]);
                i += 1;
            }
            i += 1;
        }
    }
}
