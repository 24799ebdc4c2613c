//! The permission matrix file's reader (`tests/permissions.txt`), shared
//! by this crate's test and the integration tests that send the same
//! cases through the APIs.

use crate::grant::Grant;
use std::collections::BTreeMap;

/// Where a case acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Where {
    /// `app1-dev`: matched by every namespace role's glob; it exists.
    In,
    /// `app2-prd`: matched by none; it exists.
    Out,
    /// `sq-new`: nothing lives there yet.
    New,
    Nowhere,
}

impl Where {
    pub fn namespace(self) -> &'static str {
        match self {
            Where::In => "app1-dev",
            Where::Out => "app2-prd",
            Where::New => "sq-new",
            Where::Nowhere => "",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Case {
    pub line: usize,
    pub role: String,
    /// An `Action`'s name, or `set_privileged`.
    pub action: String,
    pub place: Where,
    pub allow: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Matrix {
    pub roles: BTreeMap<String, Grant>,
    pub cases: Vec<Case>,
}

pub fn parse(text: &str) -> Result<Matrix, String> {
    let mut m = Matrix::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let n = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(def) = line.strip_prefix("role ") {
            let (name, grant) = def
                .split_once('=')
                .ok_or(format!("line {n}: role NAME = GRANT"))?;
            let grant = grant.trim().parse().map_err(|e| format!("line {n}: {e}"))?;
            m.roles.insert(name.trim().into(), grant);
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let [role, action, place, expected] = f[..] else {
            return Err(format!("line {n}: ROLE ACTION WHERE EXPECTED"));
        };
        if !m.roles.contains_key(role) {
            return Err(format!("line {n}: role {role:?} is not defined"));
        }
        let place = match place {
            "in" => Where::In,
            "out" => Where::Out,
            "new" => Where::New,
            "-" => Where::Nowhere,
            _ => return Err(format!("line {n}: WHERE is in, out, new or -")),
        };
        let allow = match expected {
            "allow" => true,
            "deny" => false,
            _ => return Err(format!("line {n}: EXPECTED is allow or deny")),
        };
        m.cases.push(Case {
            line: n,
            role: role.into(),
            action: action.into(),
            place,
            allow,
        });
    }
    Ok(m)
}
