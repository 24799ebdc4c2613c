use super::*;

fn payload(i: u64, size: usize) -> Vec<u8> {
    let mut v = format!("entry {i} ").into_bytes();
    v.resize(size.max(v.len()), b'x');
    v
}

fn append_range(w: &mut Wal, from: u64, to: u64, size: usize) {
    let batch: Vec<(u64, Vec<u8>)> = (from..=to).map(|i| (i, payload(i, size))).collect();
    w.append(&batch, None).expect("append");
}

fn indexes(r: &Reader) -> Vec<u64> {
    r.read(..)
        .expect("read")
        .into_iter()
        .map(|(i, _)| i)
        .collect()
}

fn segments(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seg-"))
        .collect();
    v.sort();
    v
}

#[test]
fn entries_the_vote_and_the_committed_id_survive_a_reopen() {
    let d = tempfile::tempdir().expect("tmp");
    let (mut w, r) = Wal::open(d.path()).expect("open");
    append_range(&mut w, 1, 3, 10);
    w.append(&[(4, payload(4, 10))], Some(b"c3"))
        .expect("append");
    w.save_vote("v1".into()).expect("vote");
    assert_eq!(indexes(&r), [1, 2, 3, 4]);
    drop((w, r));
    let (_w, r) = Wal::open(d.path()).expect("reopen");
    assert_eq!(indexes(&r), [1, 2, 3, 4]);
    assert_eq!(r.read(2..=2).expect("read")[0].1, payload(2, 10));
    assert_eq!(r.committed().as_deref(), Some(&b"c3"[..]));
    assert_eq!(r.vote().as_deref(), Some("v1"));
    assert_eq!(r.last(), Some(4));
}

#[test]
fn a_full_segment_gives_way_to_the_next_and_a_large_entry_gets_its_own() {
    let d = tempfile::tempdir().expect("tmp");
    let (mut w, r) = Wal::open(d.path()).expect("open");
    for i in 1..=30 {
        append_range(&mut w, i, i, 100_000);
    }
    let big = payload(31, 3 << 20);
    w.append(&[(31, big.clone())], None).expect("big");
    append_range(&mut w, 32, 33, 10);
    assert!(segments(d.path()).len() >= 4, "{:?}", segments(d.path()));
    drop((w, r));
    let (_w, r) = Wal::open(d.path()).expect("reopen");
    assert_eq!(indexes(&r), (1..=33).collect::<Vec<_>>());
    assert_eq!(r.read(31..=31).expect("read")[0].1, big);
}

#[test]
fn a_truncation_removes_the_tail_for_good_and_appends_follow_it() {
    let d = tempfile::tempdir().expect("tmp");
    let (mut w, r) = Wal::open(d.path()).expect("open");
    for i in 1..=25 {
        append_range(&mut w, i, i, 100_000);
    }
    let before = segments(d.path()).len();
    w.truncate_from(5).expect("truncate");
    assert_eq!(indexes(&r), [1, 2, 3, 4]);
    assert!(segments(d.path()).len() < before);
    append_range(&mut w, 5, 6, 10);
    drop((w, r));
    let (_w, r) = Wal::open(d.path()).expect("reopen");
    assert_eq!(indexes(&r), [1, 2, 3, 4, 5, 6]);
    assert_eq!(r.read(5..=5).expect("read")[0].1, payload(5, 10));
}

#[test]
fn a_purge_deletes_the_segments_it_emptied_and_stays_purged() {
    let d = tempfile::tempdir().expect("tmp");
    let (mut w, r) = Wal::open(d.path()).expect("open");
    for i in 1..=40 {
        append_range(&mut w, i, i, 100_000);
    }
    let before = segments(d.path()).len();
    w.purge_upto(25, r#"{"index":25}"#.into()).expect("purge");
    assert_eq!(indexes(&r), (26..=40).collect::<Vec<_>>());
    assert!(segments(d.path()).len() < before);
    assert!(r.bytes() < 16 * 100_100);
    drop((w, r));
    let (_w, r) = Wal::open(d.path()).expect("reopen");
    assert_eq!(indexes(&r), (26..=40).collect::<Vec<_>>());
    assert_eq!(r.last_purged().as_deref(), Some(r#"{"index":25}"#));
}

#[test]
fn a_record_cut_by_a_crash_is_dropped_and_writing_goes_on() {
    let d = tempfile::tempdir().expect("tmp");
    let (mut w, r) = Wal::open(d.path()).expect("open");
    append_range(&mut w, 1, 2, 50);
    let (_, file, end) = w.tail.clone().expect("tail");
    drop((w, r));
    // Half a record after the last whole one, as a crash leaves it.
    let mut cut = Vec::new();
    record(ENTRY, 3, &payload(3, 50), &mut cut);
    file.write_all_at(&cut[..30], end).expect("write");
    let (mut w, r) = Wal::open(d.path()).expect("reopen");
    assert_eq!(indexes(&r), [1, 2]);
    append_range(&mut w, 3, 3, 50);
    drop((w, r));
    let (_w, r) = Wal::open(d.path()).expect("reopen");
    assert_eq!(indexes(&r), [1, 2, 3]);
}

#[test]
fn damage_before_the_last_segment_is_an_error() {
    let d = tempfile::tempdir().expect("tmp");
    let (mut w, r) = Wal::open(d.path()).expect("open");
    for i in 1..=15 {
        append_range(&mut w, i, i, 100_000);
    }
    drop((w, r));
    let first = d.path().join(&segments(d.path())[0]);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .expect("open");
    f.write_all_at(b"garbage", HEADER as u64 + 5)
        .expect("damage");
    let err = Wal::open(d.path()).err().expect("an error");
    assert!(err.to_string().contains("damaged"), "{err}");
}
