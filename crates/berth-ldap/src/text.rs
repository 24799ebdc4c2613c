//! The text rules: RFC 4515 escaping of a value put into a filter, the
//! user filter's `{user}` placeholder, and the comparison form of a DN.

/// `value` escaped for an LDAP search filter (RFC 4515, section 3): `*`,
/// `(`, `)`, `\` and NUL become `\2a`, `\28`, `\29`, `\5c` and `\00`, so
/// a user name can never add a wildcard or a clause to the filter.
pub fn escape_filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// The placeholder of the user filter.
pub const USER: &str = "{user}";

/// The user filter for one user, its name escaped.
pub fn user_filter(template: &str, user: &str) -> String {
    template.replace(USER, &escape_filter_value(user))
}

/// The user filter that matches every user: `{user}` as a wildcard
/// (`(uid={user})` lists `(uid=*)`).
pub fn all_users_filter(template: &str) -> String {
    template.replace(USER, "*")
}

/// Whether `filter` is a filter ldap3 can send.
pub fn filter_parses(filter: &str) -> bool {
    ldap3::parse_filter(filter).is_ok()
}

/// A DN in the form two spellings of the same DN share: lowercase (the
/// usual attributes compare case-insensitively), without the spaces
/// around `,`, `+` and `=`. Escaped characters are kept as they are.
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                if let Some(n) = chars.next() {
                    out.extend(n.to_lowercase());
                }
            }
            ',' | '+' | '=' => {
                while out.ends_with(' ') && !out.ends_with("\\ ") {
                    out.pop();
                }
                out.push(c);
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Whether `value` reads as a DN (`attr=value,...`) rather than a bare
/// name (a posixGroup's `memberUid`).
pub fn looks_like_dn(value: &str) -> bool {
    value.contains('=')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_escaped_per_rfc_4515() {
        assert_eq!(escape_filter_value("alice"), "alice");
        assert_eq!(escape_filter_value("*"), "\\2a");
        assert_eq!(
            escape_filter_value("a)(uid=*))(|(uid=*"),
            "a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a"
        );
        assert_eq!(escape_filter_value("back\\slash\0"), "back\\5cslash\\00");
        assert_eq!(escape_filter_value("élodie"), "élodie");
    }

    #[test]
    fn the_user_filter_takes_the_escaped_name() {
        let t = "(&(objectClass=inetOrgPerson)(uid={user}))";
        assert_eq!(
            user_filter(t, "bob"),
            "(&(objectClass=inetOrgPerson)(uid=bob))"
        );
        assert_eq!(
            user_filter(t, "*"),
            "(&(objectClass=inetOrgPerson)(uid=\\2a))"
        );
        assert_eq!(all_users_filter(t), "(&(objectClass=inetOrgPerson)(uid=*))");
        // An injection attempt stays one value of one clause.
        assert!(filter_parses(&user_filter(t, "x)(uid=*")));
        assert!(filter_parses(&all_users_filter(t)));
        assert!(!filter_parses("(uid=alice"));
    }

    #[test]
    fn dns_compare_in_one_form() {
        assert_eq!(
            normalize_dn("CN=Devs, OU=Groups , dc=Example,dc=test"),
            "cn=devs,ou=groups,dc=example,dc=test"
        );
        assert_eq!(normalize_dn("cn = a + sn=b,dc=x"), "cn=a+sn=b,dc=x");
        assert_eq!(normalize_dn("cn=a\\,b,dc=x"), "cn=a\\,b,dc=x");
        assert!(looks_like_dn("uid=alice,ou=people"));
        assert!(!looks_like_dn("alice"));
    }
}
