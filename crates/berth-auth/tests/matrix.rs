//! Every case of the permission matrix, decided by `Rights`.

use berth_auth::matrix::{self, Where};
use berth_auth::{restricted_violations, Action, Rights};

#[test]
fn every_case_of_the_matrix_is_decided_as_written() {
    let m = matrix::parse(include_str!("permissions.txt")).unwrap();
    let roles = m.roles.len();
    assert!(roles >= 6, "the matrix defines {roles} roles");
    let mut wrong = Vec::new();
    for c in &m.cases {
        let rights = Rights::new([m.roles[&c.role].clone()]);
        let ns = c.place.namespace();
        let exists = c.place != Where::New;
        let got = match c.action.as_str() {
            "set_privileged" => {
                rights.allows(Action::Set, ns, exists)
                    && (!rights.restricted_in(ns)
                        || restricted_violations("[container#0]\nprivileged = true\n")
                            .unwrap()
                            .is_empty())
            }
            a => rights.allows(a.parse::<Action>().unwrap(), ns, exists),
        };
        if got != c.allow {
            wrong.push(format!(
                "line {}: {} {} {:?}: expected {}, decided {}",
                c.line, c.role, c.action, c.place, c.allow, got
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every role meets every action the issue lists, in and out.
    for role in m.roles.keys() {
        for a in [
            "create", "set", "start", "stop", "delete", "decode", "grant",
        ] {
            for p in [Where::In, Where::Out] {
                assert!(
                    m.cases
                        .iter()
                        .any(|c| &c.role == role && c.action == a && c.place == p),
                    "no case for {role} {a} {p:?}"
                );
            }
        }
    }
}
