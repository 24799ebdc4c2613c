//! `{...}` references inside keyword values.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::path::ObjectPath;

/// What references expand to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefContext {
    /// The object's path (`{path}`, `{svcpath}`, `{namespace}`, `{name}`).
    pub path: ObjectPath,
    /// The local node name (`{nodename}`).
    pub nodename: String,
    /// The object id (`{id}`).
    pub id: String,
    /// Variables available as `{env.KEY}`.
    pub env: BTreeMap<String, String>,
}

/// A malformed or unresolvable reference.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RefError {
    /// The reference name is not known.
    #[error("unknown reference {{{0}}}")]
    Unknown(String),
    /// A `{` has no matching `}`.
    #[error("unclosed '{{' in {0:?}")]
    Unclosed(String),
    /// `{env.KEY}` names a variable that is not defined.
    #[error("undefined variable {0:?} in reference {{env.{0}}}")]
    UndefinedEnv(String),
}

/// The reference names that need no argument.
const NAMES: &[&str] = &["path", "svcpath", "namespace", "name", "nodename", "id"];

enum Token<'a> {
    Literal(&'a str),
    Ref(&'a str),
}

/// Splits a value into literal text and reference names. `{{` and `}}`
/// are escaped braces; a lone `}` is kept as is.
fn tokenize(value: &str) -> Result<Vec<Token<'_>>, RefError> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(pos) = rest.find(['{', '}']) {
        if pos > 0 {
            out.push(Token::Literal(&rest[..pos]));
        }
        let after = &rest[pos + 1..];
        if rest[pos..].starts_with("{{") {
            out.push(Token::Literal("{"));
            rest = &after[1..];
        } else if rest[pos..].starts_with("}}") {
            out.push(Token::Literal("}"));
            rest = &after[1..];
        } else if rest[pos..].starts_with('}') {
            out.push(Token::Literal("}"));
            rest = after;
        } else {
            let end = after
                .find('}')
                .filter(|e| !after[..*e].contains('{'))
                .ok_or_else(|| RefError::Unclosed(value.to_string()))?;
            out.push(Token::Ref(&after[..end]));
            rest = &after[end + 1..];
        }
    }
    if !rest.is_empty() {
        out.push(Token::Literal(rest));
    }
    Ok(out)
}

/// Returns the variable name of an `env.KEY` reference.
fn env_key(name: &str) -> Option<&str> {
    name.strip_prefix("env.").filter(|k| !k.is_empty())
}

/// Expands every reference of `value`.
pub fn expand(value: &str, ctx: &RefContext) -> Result<String, RefError> {
    let mut out = String::with_capacity(value.len());
    for token in tokenize(value)? {
        match token {
            Token::Literal(s) => out.push_str(s),
            Token::Ref(name) => match name {
                "path" | "svcpath" => out.push_str(&ctx.path.to_string()),
                "namespace" => out.push_str(&ctx.path.namespace),
                "name" => out.push_str(&ctx.path.name),
                "nodename" => out.push_str(&ctx.nodename),
                "id" => out.push_str(&ctx.id),
                other => {
                    let key = env_key(other).ok_or_else(|| RefError::Unknown(other.to_string()))?;
                    let v = ctx
                        .env
                        .get(key)
                        .ok_or_else(|| RefError::UndefinedEnv(key.to_string()))?;
                    out.push_str(v);
                }
            },
        }
    }
    Ok(out)
}

/// Checks the syntax and names of the references of `value` without a
/// context. `{env.KEY}` is only checked for syntax.
pub fn check_refs(value: &str) -> Result<(), RefError> {
    for token in tokenize(value)? {
        if let Token::Ref(name) = token {
            if !NAMES.contains(&name) && env_key(name).is_none() {
                return Err(RefError::Unknown(name.to_string()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(path: &str) -> RefContext {
        RefContext {
            path: path.parse().unwrap(),
            nodename: "node1".into(),
            id: "abc".into(),
            env: [("app".to_string(), "shop".to_string())].into(),
        }
    }

    #[test]
    fn expand_table() {
        let cases = [
            ("prod/web", "plain", "plain"),
            ("prod/web", "", ""),
            ("prod/web", "{path}", "prod/web"),
            ("web", "{path}", "web"),
            ("web", "{svcpath}:{namespace}", "web:root"),
            ("prod/web", "/srv/{namespace}/{name}", "/srv/prod/web"),
            ("prod/web", "{nodename}-{id}", "node1-abc"),
            ("prod/web", "img/{env.app}:1", "img/shop:1"),
            ("prod/web", "{{name}}", "{name}"),
            ("prod/web", "a}}b", "a}b"),
            ("prod/web", "a}b", "a}b"),
            ("prod/web", "{{{name}}}", "{web}"),
        ];
        for (path, input, want) in cases {
            assert_eq!(expand(input, &ctx(path)).as_deref(), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn expand_errors() {
        let c = ctx("web");
        let cases = [
            ("{nope}", RefError::Unknown("nope".into())),
            ("{}", RefError::Unknown("".into())),
            ("{env.}", RefError::Unknown("env.".into())),
            ("{env.missing}", RefError::UndefinedEnv("missing".into())),
            ("{name", RefError::Unclosed("{name".into())),
            ("{na{me}", RefError::Unclosed("{na{me}".into())),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &c), Err(want), "{input:?}");
        }
        assert_eq!(
            RefError::Unknown("nope".into()).to_string(),
            "unknown reference {nope}"
        );
    }

    #[test]
    fn check_table() {
        let cases = [
            ("{name}/{env.anything}", true),
            ("{{literal}}", true),
            ("{nope}", false),
            ("{path", false),
            ("{env.}", false),
            ("no refs", true),
        ];
        for (input, ok) in cases {
            assert_eq!(check_refs(input).is_ok(), ok, "{input:?}");
        }
    }
}
