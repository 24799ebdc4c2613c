//! Shell-style glob matching without a regex dependency.

/// One element of a compiled pattern.
#[derive(Debug)]
enum Token {
    Literal(char),
    AnyOne,
    AnyMany,
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyOne => true,
            Token::AnyMany => true,
            Token::Class { negated, items } => {
                items.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != *negated
            }
        }
    }
}

/// Parses a bracket class starting just after `[`. Returns the token and the
/// index after the closing `]`, or `None` when the class is unterminated (the
/// `[` is then a literal).
fn parse_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start;
    let negated = matches!(chars.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, items }, i + 1));
        }
        first = false;
        // A range needs a non-`]` upper bound; `[a-]` is `a` or `-`.
        if chars.get(i + 1) == Some(&'-') && matches!(chars.get(i + 2), Some(h) if *h != ']') {
            let hi = chars[i + 2];
            items.push((c, hi));
            i += 3;
        } else {
            items.push((c, c));
            i += 1;
        }
    }
}

fn compile(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                if !matches!(tokens.last(), Some(Token::AnyMany)) {
                    tokens.push(Token::AnyMany);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::AnyOne);
                i += 1;
            }
            '[' => match parse_class(&chars, i + 1) {
                Some((tok, next)) => {
                    tokens.push(tok);
                    i = next;
                }
                None => {
                    tokens.push(Token::Literal('['));
                    i += 1;
                }
            },
            c => {
                tokens.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    tokens
}

/// Whether every `[` of `pattern` opens a class that is closed.
pub fn classes_closed(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '[' {
            match parse_class(&chars, i + 1) {
                Some((_, next)) => i = next,
                None => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

/// Matches `text` against a shell-style glob `pattern`.
///
/// Supports `*` (any run of characters), `?` (one character), `[abc]`,
/// `[a-z]` and negated classes `[!x]` / `[^x]`. An unterminated `[` is a
/// literal. The whole text must match.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let tokens = compile(pattern);
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    // Position of the last `*` seen and the text index it is trying to absorb up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(Token::AnyMany) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(tok) if tok.matches(text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    backtrack = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|tok| matches!(tok, Token::AnyMany))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn table() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("", "", true),
            ("", "a", false),
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "bac", false),
            ("*c", "abc", true),
            ("*c", "abcd", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("*a*a*a*", "aaa", true),
            ("*a*a*a*", "aa", false),
            ("local/*", "local/nginx:1", true),
            ("local/*", "docker.io/nginx", false),
            ("[abc]x", "bx", true),
            ("[abc]x", "dx", false),
            ("[a-z]1", "q1", true),
            ("[a-z]1", "Q1", false),
            ("[!a]", "b", true),
            ("[!a]", "a", false),
            ("[^a-c]", "d", true),
            ("[^a-c]", "b", false),
            ("[]a]", "]", true),
            ("[a-]", "-", true),
            ("[ab", "[ab", true),
            ("[ab", "a", false),
            ("web-[0-9][0-9]", "web-42", true),
            ("web-[0-9][0-9]", "web-4x", false),
            ("é*", "été", true),
            ("**", "x", true),
        ];
        for (pat, text, want) in cases {
            assert_eq!(glob_match(pat, text), want, "pattern {pat:?} text {text:?}");
        }
    }
}
