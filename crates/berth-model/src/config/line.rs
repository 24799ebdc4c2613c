//! Line splitting and classification.

/// How a line ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eol {
    /// Last line without a final newline.
    None,
    Lf,
    CrLf,
}

impl Eol {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Eol::None => "",
            Eol::Lf => "\n",
            Eol::CrLf => "\r\n",
        }
    }
}

/// What a line means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LineKind {
    Blank,
    Comment,
    Header {
        name: String,
    },
    Key {
        key: String,
        value: String,
        /// Byte offset in the line text where the value starts (after the
        /// `=` and any spaces), used to rewrite values in place.
        value_start: usize,
    },
    Continuation {
        value: String,
    },
}

/// One line of the document, stored verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) text: String,
    pub(crate) eol: Eol,
    pub(crate) kind: LineKind,
}

impl Line {
    /// A key line whose text is `prefix` (key, spacing, `=`) followed by `value`.
    pub(crate) fn key(key: &str, prefix: String, value: &str, eol: Eol) -> Line {
        let value_start = prefix.len();
        Line {
            text: format!("{prefix}{value}"),
            eol,
            kind: LineKind::Key {
                key: key.to_string(),
                value: value.to_string(),
                value_start,
            },
        }
    }

    /// A `[name]` header line.
    pub(crate) fn header(name: &str, eol: Eol) -> Line {
        Line {
            text: format!("[{name}]"),
            eol,
            kind: LineKind::Header {
                name: name.to_string(),
            },
        }
    }

    /// An empty line.
    pub(crate) fn blank(eol: Eol) -> Line {
        Line {
            text: String::new(),
            eol,
            kind: LineKind::Blank,
        }
    }
}

/// Splits text into (line body, line ending) pairs. An empty text has no
/// lines; a text ending with a newline has no trailing empty line.
pub(crate) fn split_lines(text: &str) -> Vec<(&str, Eol)> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(pos) => {
                let raw = &rest[..pos];
                match raw.strip_suffix('\r') {
                    Some(body) => out.push((body, Eol::CrLf)),
                    None => out.push((raw, Eol::Lf)),
                }
                rest = &rest[pos + 1..];
            }
            None => {
                out.push((rest, Eol::None));
                rest = "";
            }
        }
    }
    out
}

/// Classifies one line. `after_value` is true when the previous line is a
/// key or continuation line, which makes an indented line a continuation.
pub(crate) fn classify(text: &str, after_value: bool) -> Result<LineKind, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(LineKind::Blank);
    }
    if trimmed.starts_with('#') || trimmed.starts_with(';') {
        return Ok(LineKind::Comment);
    }
    if after_value && text.starts_with(char::is_whitespace) {
        return Ok(LineKind::Continuation {
            value: trimmed.to_string(),
        });
    }
    if let Some(inner) = trimmed.strip_prefix('[') {
        let name = inner
            .strip_suffix(']')
            .ok_or_else(|| format!("unterminated section header {trimmed:?}"))?
            .trim();
        if name.is_empty() {
            return Err("empty section name".to_string());
        }
        if name.contains(['[', ']']) {
            return Err(format!("invalid section name {name:?}"));
        }
        return Ok(LineKind::Header {
            name: name.to_string(),
        });
    }
    if let Some(eq) = text.find('=') {
        let key = text[..eq].trim();
        if key.is_empty() {
            return Err(format!("missing key before '=' in {trimmed:?}"));
        }
        let after = &text[eq + 1..];
        let value_start = eq + 1 + (after.len() - after.trim_start().len());
        return Ok(LineKind::Key {
            key: key.to_string(),
            value: after.trim().to_string(),
            value_start,
        });
    }
    Err(format!(
        "expected a [section] header, a 'key = value' line, a comment or a blank line, found {trimmed:?}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split() {
        assert!(split_lines("").is_empty());
        assert_eq!(split_lines("a"), vec![("a", Eol::None)]);
        assert_eq!(
            split_lines("a\r\nb\n\nc"),
            vec![
                ("a", Eol::CrLf),
                ("b", Eol::Lf),
                ("", Eol::Lf),
                ("c", Eol::None)
            ]
        );
        assert_eq!(split_lines("\n"), vec![("", Eol::Lf)]);
    }

    #[test]
    fn classify_table() {
        let key = |k: &str, v: &str, s: usize| LineKind::Key {
            key: k.into(),
            value: v.into(),
            value_start: s,
        };
        let cases: Vec<(&str, bool, Result<LineKind, ()>)> = vec![
            ("", false, Ok(LineKind::Blank)),
            ("   \t", true, Ok(LineKind::Blank)),
            ("# c", false, Ok(LineKind::Comment)),
            ("  ; c", true, Ok(LineKind::Comment)),
            ("[a]", false, Ok(LineKind::Header { name: "a".into() })),
            (
                " [ a b ] ",
                false,
                Ok(LineKind::Header { name: "a b".into() }),
            ),
            ("[]", false, Err(())),
            ("[a", false, Err(())),
            ("k=v", false, Ok(key("k", "v", 2))),
            ("k = v ", false, Ok(key("k", "v", 4))),
            ("  k =", false, Ok(key("k", "", 5))),
            ("k = a=b", false, Ok(key("k", "a=b", 4))),
            ("= v", false, Err(())),
            (
                "  more",
                true,
                Ok(LineKind::Continuation {
                    value: "more".into(),
                }),
            ),
            (
                "  k = v",
                true,
                Ok(LineKind::Continuation {
                    value: "k = v".into(),
                }),
            ),
            ("  k = v", false, Ok(key("k", "v", 6))),
            ("garbage", false, Err(())),
            ("  garbage", false, Err(())),
        ];
        for (text, after, want) in cases {
            let got = classify(text, after).map_err(|_| ());
            assert_eq!(got, want, "line {text:?}");
        }
    }
}
