use super::*;
use berth_model::status::Target;

fn rec(path: &str) -> ObjectRecord {
    ObjectRecord {
        placement: Vec::new(),
        path: path.to_string(),
        config: format!("[DEFAULT]\nid = {path}\n"),
        target: Target::Started,
        frozen: false,
        unhealthy_on: Default::default(),
    }
}

#[test]
fn records_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("berth.redb");
    {
        let s = Store::open(&file).expect("open");
        s.put(&rec("a/x")).expect("put");
        s.put(&rec("b/y")).expect("put");
        assert!(s.delete("b/y").expect("delete"));
        assert!(!s.delete("b/y").expect("delete again"));
    }
    let s = Store::open(&file).expect("reopen");
    let all = s.list().expect("list");
    assert_eq!(all, vec![rec("a/x")]);
    assert_eq!(s.get("a/x").expect("get"), Some(rec("a/x")));
}

#[test]
fn events_get_increasing_sequence_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(&dir.path().join("e.redb")).expect("open");
    let mk = |what: &str| Event {
        seq: 0,
        time: "2026-01-01T00:00:00Z".into(),
        object: None,
        rid: None,
        what: what.into(),
        docker: None,
    };
    let first = s
        .append_events(vec![mk("a"), mk("b")], true)
        .expect("append");
    let second = s.append_events(vec![mk("c")], false).expect("append");
    assert_eq!(first.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(second[0].seq, 3);
    let after = s.events_after(1, 10).expect("read");
    assert_eq!(
        after.iter().map(|e| e.what.as_str()).collect::<Vec<_>>(),
        vec!["b", "c"]
    );
    let last = s.last_events(2).expect("last");
    assert_eq!(last.len(), 2);
    assert_eq!(last[1].what, "c");
    // A non-durable batch is kept once flushed.
    s.flush().expect("flush");
    drop(s);
    let s = Store::open(&dir.path().join("e.redb")).expect("reopen");
    assert_eq!(s.last_events(1).expect("last")[0].what, "c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_state_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("raft.redb");
    {
        let d = Desired::open_standalone(&file).await.expect("open");
        for r in [rec("a/x"), rec("b/y")] {
            d.propose(r.put().expect("request")).await.expect("put");
        }
        let (gone, _) = d.propose(delete_object("b/y")).await.expect("delete");
        assert!(gone.previous.is_some());
        let (again, _) = d.propose(delete_object("b/y")).await.expect("delete");
        assert!(again.previous.is_none());
        d.shutdown().await;
    }
    let d = Desired::open_standalone(&file).await.expect("reopen");
    assert_eq!(d.list().expect("list"), vec![rec("a/x")]);
    assert_eq!(d.get("a/x").expect("get"), Some(rec("a/x")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_of_different_fields_do_not_undo_each_other() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = Desired::open_standalone(&dir.path().join("raft.redb"))
        .await
        .expect("open");
    d.propose(rec("a/x").put().expect("request"))
        .await
        .expect("put");
    let freeze = ObjectPatch {
        frozen: Some(true),
        ..Default::default()
    };
    d.propose(freeze.request("a/x").expect("request"))
        .await
        .expect("patch");
    let got = d.get("a/x").expect("get").expect("present");
    assert!(got.frozen);
    assert_eq!(got.target, Target::Started);
    let config = ObjectPatch {
        config: Some("[DEFAULT]\nenv = DEV\n".into()),
        ..Default::default()
    };
    d.propose(config.request("a/x").expect("request"))
        .await
        .expect("configs");
    let got = d.get("a/x").expect("get").expect("present");
    assert!(got.frozen, "a config write must keep the frozen flag");
    assert_eq!(got.config, "[DEFAULT]\nenv = DEV\n");
    let stop = ObjectPatch {
        target: Some(Target::Stopped),
        ..Default::default()
    };
    d.propose(stop.request("a/missing").expect("request"))
        .await
        .expect("patch");
    assert_eq!(
        d.get("a/missing").expect("get"),
        None,
        "a patch creates nothing"
    );
}
