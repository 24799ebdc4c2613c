//! The one quoting rule for list values and command lines, as a POSIX shell
//! has it for plain words: whitespace separates words; `'...'` groups
//! literally; `"..."` groups, and a backslash in it escapes the next
//! character; outside quotes a backslash escapes the next character. Quotes
//! are removed. No variables, globs or operators.

/// The quoting rule, as `berth doc` shows it.
pub const QUOTING_DOC: &str = "Words are separated by spaces. Quotes group words and are removed: 'a b' and \"a b\" are one word, as is D=\"x y=z\" (D=x y=z). A backslash escapes the next character, outside quotes and inside \"...\"; inside '...' every character is literal.";

/// Splits `s` into words by [`QUOTING_DOC`]'s rule.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => match chars.next() {
                Some(n) => {
                    cur.push(n);
                    in_word = true;
                }
                None => return Err("a trailing backslash escapes nothing".into()),
            },
            (Some(_), c) => cur.push(c),
            (None, '\'') | (None, '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::split_words;

    #[test]
    fn splits_like_a_shell() {
        let cases: &[(&str, &[&str])] = &[
            ("", &[]),
            ("   ", &[]),
            ("sleep 100", &["sleep", "100"]),
            ("  a b\n\tc ", &["a", "b", "c"]),
            ("  sh -c 'echo a b' ", &["sh", "-c", "echo a b"]),
            (r#"D="x y=z""#, &["D=x y=z"]),
            (r#"A=1 D="x y=z" B=2"#, &["A=1", "D=x y=z", "B=2"]),
            ("D='x \"y\"'", &["D=x \"y\""]),
            (r#"echo "x \"y\"" z\ w"#, &["echo", "x \"y\"", "z w"]),
            (r"'a\b'", &[r"a\b"]),
            (r#""a\\b""#, &[r"a\b"]),
            ("''", &[""]),
            ("a''b", &["ab"]),
            ("x=\"\"", &["x="]),
        ];
        for (input, want) in cases {
            let got = split_words(input).expect("splits");
            let want: Vec<String> = want.iter().map(|w| w.to_string()).collect();
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn unbalanced_input_is_an_error() {
        for bad in ["echo 'oops", "D=\"x", "a\\"] {
            assert!(split_words(bad).is_err(), "{bad:?}");
        }
    }
}
