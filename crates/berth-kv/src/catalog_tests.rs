use super::*;
use crate::mem_table::Mem;
use crate::{apply, Op};

fn run(t: &mut Mem, index: u64, ops: Vec<CatalogOp>) -> Vec<String> {
    apply(&Op::Catalog(ops), index, t).expect("apply").touched
}

fn web(node: &str, id: &str, port: u16) -> CatalogOp {
    CatalogOp::RegisterService {
        service: Service {
            node: node.into(),
            id: id.into(),
            name: "web".into(),
            port,
            ..Default::default()
        },
        checks: vec![Check {
            id: format!("{id}-check"),
            name: "alive".into(),
            ..Default::default()
        }],
    }
}

#[test]
fn a_registration_carries_its_checks_and_an_unchanged_one_writes_nothing() {
    let mut t = Mem::default();
    run(&mut t, 2, vec![web("n1", "w1", 80)]);
    let s = &services(&t, Some("web")).unwrap()[0];
    assert_eq!((s.create_index, s.modify_index, s.port), (2, 2, 80));
    let c = &checks(&t, Some("web")).unwrap()[0];
    assert_eq!((c.node.as_str(), c.service_id.as_str()), ("n1", "w1"));
    assert!(run(&mut t, 3, vec![web("n1", "w1", 80)]).is_empty());
    run(&mut t, 4, vec![web("n1", "w1", 81)]);
    let s = &services(&t, Some("web")).unwrap()[0];
    assert_eq!((s.create_index, s.modify_index, s.port), (2, 4, 81));
}

#[test]
fn a_resync_keeps_a_checks_status() {
    let mut t = Mem::default();
    run(&mut t, 2, vec![web("n1", "w1", 80)]);
    let set = |status| CatalogOp::SetStatus {
        node: "n1".into(),
        id: "w1-check".into(),
        status,
        output: "down".into(),
        now_ms: 1_000,
    };
    run(&mut t, 3, vec![set(Health::Critical)]);
    let c = &checks(&t, Some("web")).unwrap()[0];
    assert_eq!(
        (c.status, c.critical_since_ms),
        (Health::Critical, Some(1_000))
    );
    assert!(run(&mut t, 4, vec![web("n1", "w1", 80)]).is_empty());
    assert_eq!(checks(&t, Some("web")).unwrap()[0].status, Health::Critical);
    run(&mut t, 5, vec![set(Health::Passing)]);
    assert_eq!(checks(&t, Some("web")).unwrap()[0].critical_since_ms, None);
}

#[test]
fn deregistering_removes_the_checks_and_raises_the_index() {
    let mut t = Mem::default();
    run(&mut t, 2, vec![web("n1", "w1", 80), web("n2", "w2", 80)]);
    let prefixes = [format!("{SERVICES}web/"), format!("{CHECKS}web/")];
    assert_eq!(index_under(&t, &prefixes).unwrap(), 2);
    run(
        &mut t,
        7,
        vec![CatalogOp::DeregisterService {
            node: "n1".into(),
            id: "w1".into(),
        }],
    );
    assert_eq!(services(&t, Some("web")).unwrap().len(), 1);
    assert_eq!(checks(&t, Some("web")).unwrap().len(), 1);
    assert_eq!(index_under(&t, &prefixes).unwrap(), 7);
    run(
        &mut t,
        9,
        vec![CatalogOp::DeregisterNode { node: "n2".into() }],
    );
    assert!(services(&t, None).unwrap().is_empty());
    assert!(checks(&t, None).unwrap().is_empty());
    assert_eq!(index_under(&t, &prefixes).unwrap(), 9);
}

#[test]
fn a_renamed_service_leaves_its_old_name() {
    let mut t = Mem::default();
    run(&mut t, 2, vec![web("n1", "w1", 80)]);
    let mut api = web("n1", "w1", 80);
    if let CatalogOp::RegisterService { service, .. } = &mut api {
        service.name = "api".into();
    }
    run(&mut t, 3, vec![api]);
    assert!(services(&t, Some("web")).unwrap().is_empty());
    assert!(checks(&t, Some("web")).unwrap().is_empty());
    assert_eq!(services(&t, Some("api")).unwrap().len(), 1);
    assert_eq!(checks(&t, Some("api")).unwrap().len(), 1);
}
