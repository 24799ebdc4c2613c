use super::*;
use crate::mem_table::Mem;
use crate::{Behavior, Session};
use proptest::prelude::*;

fn txn(t: &mut Mem, index: u64, ops: Vec<TxnOp>) -> (Vec<Entry>, Vec<TxnError>) {
    let op = Op::Txn { ops, now_ms: 1_000 };
    match apply(&op, index, t).expect("apply").outcome {
        Outcome::Txn { results, errors } => (results, errors),
        o => panic!("{o:?}"),
    }
}

fn set(key: &str, v: &str) -> TxnOp {
    TxnOp::Set {
        key: key.into(),
        value: Some(v.as_bytes().to_vec()),
        flags: 0,
    }
}

fn session(t: &mut Mem, index: u64, id: &str, behavior: Behavior, delay: u64) {
    let s = Session {
        id: id.into(),
        behavior,
        lock_delay_ms: delay,
        ..Default::default()
    };
    apply(&Op::SessionCreate { session: s }, index, t).expect("create");
}

fn lock(key: &str, session: &str) -> TxnOp {
    TxnOp::Lock {
        key: key.into(),
        value: None,
        flags: 0,
        session: session.into(),
    }
}

#[test]
fn indexes_follow_the_log() {
    let mut t = Mem::default();
    txn(&mut t, 5, vec![set("a", "1")]);
    txn(&mut t, 9, vec![set("a", "2")]);
    let e = read::entry(&t, "a").unwrap().unwrap();
    assert_eq!((e.create_index, e.modify_index), (5, 9));
    assert_eq!(e.value.as_deref(), Some(b"2".as_slice()));
    assert_eq!(read::index_of(&t, "a", false).unwrap(), 9);
    assert_eq!(read::index_of(&t, "missing", false).unwrap(), 1);
}

#[test]
fn cas_zero_creates_only_and_stale_indexes_fail() {
    let mut t = Mem::default();
    let cas = |index| TxnOp::Cas {
        key: "k".into(),
        value: None,
        flags: 0,
        index,
    };
    assert!(txn(&mut t, 2, vec![cas(0)]).1.is_empty());
    assert_eq!(txn(&mut t, 3, vec![cas(0)]).1[0].kind, ErrorKind::Conflict);
    assert_eq!(txn(&mut t, 4, vec![cas(3)]).1.len(), 1, "stale");
    assert!(txn(&mut t, 5, vec![cas(2)]).1.is_empty());
    assert_eq!(read::entry(&t, "k").unwrap().unwrap().modify_index, 5);
}

#[test]
fn a_failed_transaction_writes_nothing() {
    let mut t = Mem::default();
    txn(&mut t, 2, vec![set("x", "1")]);
    let before = t.clone();
    let (_, errors) = txn(
        &mut t,
        3,
        vec![
            set("y", "2"),
            TxnOp::DeleteTree { key: "".into() },
            TxnOp::CheckNotExists { key: "y".into() },
            TxnOp::CheckNotExists { key: "x".into() },
            set("x", "3"),
            TxnOp::CheckIndex {
                key: "x".into(),
                index: 2,
            },
        ],
    );
    let failed: Vec<_> = errors.iter().map(|e| e.op_index).collect();
    assert_eq!(failed, [5], "{errors:?}");
    assert_eq!(t, before);
}

#[test]
fn a_transaction_sees_its_own_writes() {
    let mut t = Mem::default();
    let (results, errors) = txn(
        &mut t,
        2,
        vec![
            set("p/a", "1"),
            set("p/b", "2"),
            TxnOp::Delete { key: "p/a".into() },
            TxnOp::GetTree { key: "p/".into() },
        ],
    );
    assert!(errors.is_empty(), "{errors:?}");
    let keys: Vec<_> = results.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["p/a", "p/b", "p/b"]);
}

#[test]
fn a_delete_raises_the_prefix_index() {
    let mut t = Mem::default();
    txn(&mut t, 2, vec![set("p/a", "1"), set("q", "1")]);
    txn(&mut t, 7, vec![TxnOp::Delete { key: "p/a".into() }]);
    assert_eq!(read::index_of(&t, "p/", true).unwrap(), 7);
    txn(&mut t, 8, vec![set("q", "2")]);
    assert_eq!(read::index_of(&t, "p/", true).unwrap(), 7);
    txn(&mut t, 9, vec![set("p/a", "again")]);
    assert_eq!(read::index_of(&t, "p/a", false).unwrap(), 9);
}

#[test]
fn locks_have_one_holder_and_a_destroyed_session_leaves_a_lock_delay() {
    let mut t = Mem::default();
    session(&mut t, 2, "s1", Behavior::Release, 15_000);
    session(&mut t, 3, "s2", Behavior::Release, 0);
    assert!(txn(&mut t, 4, vec![lock("l", "s1")]).1.is_empty());
    assert!(
        txn(&mut t, 5, vec![lock("l", "s1")]).1.is_empty(),
        "re-acquire"
    );
    assert_eq!(read::entry(&t, "l").unwrap().unwrap().lock_index, 1);
    assert_eq!(txn(&mut t, 6, vec![lock("l", "s2")]).1.len(), 1);
    let (_, e) = txn(&mut t, 7, vec![lock("l", "nope")]);
    assert_eq!(e[0].kind, ErrorKind::InvalidSession);

    let destroy = Op::SessionDestroy {
        id: "s1".into(),
        now_ms: 1_000,
    };
    apply(&destroy, 8, &mut t).unwrap();
    let e = read::entry(&t, "l").unwrap().unwrap();
    assert_eq!((e.session, e.modify_index), (None, 8));
    // now_ms 1000 + 15 s of delay: still locked at 1000.
    assert_eq!(txn(&mut t, 9, vec![lock("l", "s2")]).1.len(), 1);
    let late = Op::Txn {
        ops: vec![lock("l", "s2")],
        now_ms: 16_001,
    };
    apply(&late, 10, &mut t).unwrap();
    let e = read::entry(&t, "l").unwrap().unwrap();
    assert_eq!((e.session.as_deref(), e.lock_index), (Some("s2"), 2));
}

#[test]
fn a_delete_session_takes_its_keys_along() {
    let mut t = Mem::default();
    session(&mut t, 2, "s", Behavior::Delete, 0);
    txn(&mut t, 3, vec![lock("a", "s"), set("b", "kept")]);
    let destroy = Op::SessionDestroy {
        id: "s".into(),
        now_ms: 0,
    };
    let out = apply(&destroy, 4, &mut t).unwrap();
    assert!(matches!(out.outcome, Outcome::Session(Some(_))));
    assert!(read::entry(&t, "a").unwrap().is_none());
    assert!(read::entry(&t, "b").unwrap().is_some());
    assert!(read::session(&t, "s").unwrap().is_none());
    assert_eq!(read::index_of(&t, "a", false).unwrap(), 4);
}

fn arb_op() -> impl Strategy<Value = TxnOp> {
    let key = prop::sample::select(vec!["a", "b", "c/d", "c/e"]);
    (key, 0u8..6, 0u64..6).prop_map(|(k, kind, n)| {
        let key = k.to_string();
        match kind {
            0 => set(k, "v"),
            1 => TxnOp::Cas {
                key,
                value: None,
                flags: n,
                index: n,
            },
            2 => TxnOp::Delete { key },
            3 => TxnOp::CheckIndex { key, index: n },
            4 => TxnOp::DeleteCas { key, index: n },
            _ => TxnOp::DeleteTree { key: "c/".into() },
        }
    })
}

proptest! {
    /// Either every write of a transaction lands or none does, and the
    /// index of every key only grows.
    #[test]
    fn transactions_are_atomic_and_indexes_never_go_back(
        txns in prop::collection::vec(prop::collection::vec(arb_op(), 1..5), 1..20)
    ) {
        let mut t = Mem::default();
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for (i, ops) in txns.into_iter().enumerate() {
            let before = t.clone();
            let (_, errors) = txn(&mut t, 2 + i as u64, ops);
            if !errors.is_empty() {
                prop_assert_eq!(&t, &before);
            }
            for k in ["a", "b", "c/d", "c/e", "c/"] {
                let idx = read::index_of(&t, k, k.ends_with('/')).unwrap();
                prop_assert!(idx >= *last.get(k).unwrap_or(&0));
                last.insert(k, idx);
            }
        }
    }
}
