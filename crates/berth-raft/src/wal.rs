//! The Raft log's files: a write-ahead log of segments, as etcd keeps
//! its own. An append is one write at the end of the current segment and
//! one fdatasync; redb's copy-on-write commit wrote seven scattered pages
//! for the same entry and took four times as long to sync, on the path
//! of every replicated write.
//!
//! A directory holds `seg-<first index>.wal` files, each created sparse
//! at [`SEGMENT_BYTES`] (so an append does not change the file's size),
//! and `meta.json`, the vote and the last purged log id, replaced
//! atomically. A record is `len u32 | crc32 u32 | kind u8 | index u64 |
//! payload`, the checksum over kind, index and payload; a zero header
//! ends a segment. Kinds: an entry, or the committed log id (written with
//! the next append, never on its own).
//!
//! A crash can only cut the last segment's tail (the others were synced
//! before the next was created): opening zeroes what follows the last
//! whole record. A damaged record anywhere else is an error.

use crate::codec::io;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self as stdio, ErrorKind};
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A segment's size; a record larger than a segment gets one of its own.
pub const SEGMENT_BYTES: u64 = 1 << 20;
const HEADER: usize = 17;
const ENTRY: u8 = 1;
const COMMITTED: u8 = 2;
const META: &str = "meta.json";

#[derive(Clone, Copy, Debug)]
struct Loc {
    seg: u64,
    off: u64,
    len: u32,
}

/// What readers share with the writer.
#[derive(Default)]
struct Shared {
    files: BTreeMap<u64, Arc<File>>,
    index: BTreeMap<u64, Loc>,
    meta: Meta,
    committed: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct Meta {
    /// The vote, as the log store encodes it.
    vote: Option<String>,
    /// The last purged log id, as the log store encodes it.
    last_purged: Option<String>,
}

/// The read side, cheap to clone.
#[derive(Clone)]
pub struct Reader(Arc<Mutex<Shared>>);

/// The write side, for one thread.
pub struct Wal {
    /// Held while open: one writer per log, in this process or another.
    _lock: File,
    dir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    /// The segment being written: its first index, file and end.
    tail: Option<(u64, Arc<File>, u64)>,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn segment_name(first: u64) -> String {
    format!("seg-{first:020}.wal")
}

fn segment_first(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".wal")?
        .parse()
        .ok()
}

fn sync_dir(dir: &Path) -> stdio::Result<()> {
    File::open(dir)?.sync_all()
}

/// An exclusive lock on `dir`. A writer of this process that just shut
/// down may hold it a moment longer (its thread ends after its last
/// job), so this waits a little; another process never gives it up.
fn lock_dir(dir: &Path) -> stdio::Result<File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        // SAFETY: flock(2) on a descriptor this function owns.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(f);
        }
        let e = stdio::Error::last_os_error();
        if e.kind() != ErrorKind::WouldBlock || std::time::Instant::now() > deadline {
            return Err(stdio::Error::new(
                e.kind(),
                format!(
                    "the raft log {} is held by another writer: {e}",
                    dir.display()
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn damaged(file: &Path, off: u64, why: &str) -> stdio::Error {
    stdio::Error::new(
        ErrorKind::InvalidData,
        format!(
            "the raft log is damaged in {} at byte {off}: {why}",
            file.display()
        ),
    )
}

fn record(kind: u8, index: u64, payload: &[u8], out: &mut Vec<u8>) {
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(&index.to_le_bytes());
    h.update(payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(payload);
}

/// One record read from a segment's bytes at `off`.
enum Read<'a> {
    Record {
        kind: u8,
        index: u64,
        payload: &'a [u8],
        next: usize,
    },
    End,
    Torn(&'static str),
}

fn read_record(bytes: &[u8], off: usize) -> Read<'_> {
    let Some(h) = bytes.get(off..off + HEADER) else {
        return if bytes[off.min(bytes.len())..].iter().all(|b| *b == 0) {
            Read::End
        } else {
            Read::Torn("a header cut short")
        };
    };
    if h.iter().all(|b| *b == 0) {
        return Read::End;
    }
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    let kind = h[8];
    let mut ix = [0u8; 8];
    ix.copy_from_slice(&h[9..17]);
    let index = u64::from_le_bytes(ix);
    let Some(payload) = bytes.get(off + HEADER..off + HEADER + len) else {
        return Read::Torn("a record cut short");
    };
    let mut c = crc32fast::Hasher::new();
    c.update(&[kind]);
    c.update(&ix);
    c.update(payload);
    if c.finalize() != crc || !(kind == ENTRY || kind == COMMITTED) {
        return Read::Torn("a checksum that does not match");
    }
    Read::Record {
        kind,
        index,
        payload,
        next: off + HEADER + len,
    }
}

impl Wal {
    /// Opens the log in `dir` (created when missing), repairing a cut
    /// tail, and returns the writer and a reader.
    pub fn open(dir: &Path) -> stdio::Result<(Wal, Reader)> {
        std::fs::create_dir_all(dir)?;
        let lock_file = lock_dir(dir)?;
        let meta: Meta = match std::fs::read(dir.join(META)) {
            Ok(b) => serde_json::from_slice(&b).map_err(io)?,
            Err(e) if e.kind() == ErrorKind::NotFound => Meta::default(),
            Err(e) => return Err(e),
        };
        let mut firsts: Vec<u64> = std::fs::read_dir(dir)?
            .flatten()
            .filter_map(|e| segment_first(&e.file_name().to_string_lossy()))
            .collect();
        firsts.sort_unstable();
        let mut shared = Shared {
            meta,
            ..Shared::default()
        };
        let mut tail = None;
        for (i, first) in firsts.iter().enumerate() {
            let path = dir.join(segment_name(*first));
            let last = i + 1 == firsts.len();
            let (file, end) = load_segment(&path, *first, last, &mut shared)?;
            tail = Some((*first, Arc::new(file), end));
            if let Some((f, file, _)) = &tail {
                shared.files.insert(*f, file.clone());
            }
        }
        check_continuity(&shared, dir)?;
        let shared = Arc::new(Mutex::new(shared));
        let reader = Reader(shared.clone());
        let mut wal = Wal {
            _lock: lock_file,
            dir: dir.to_path_buf(),
            shared,
            tail,
        };
        // Segments a purge left behind when it was cut short.
        wal.sweep()?;
        Ok((wal, reader))
    }

    /// Appends `entries` (index, payload) and, when given, the committed
    /// log id; durable (fdatasync) when it returns.
    pub fn append(
        &mut self,
        entries: &[(u64, Vec<u8>)],
        committed: Option<&[u8]>,
    ) -> stdio::Result<()> {
        let mut dirty: Vec<Arc<File>> = Vec::new();
        let mut placed: Vec<(u64, Loc)> = Vec::new();
        let mut buf = Vec::new();
        let mut batch_start = None;
        let records = entries
            .iter()
            .map(|(i, p)| (ENTRY, *i, p.as_slice()))
            .chain(committed.map(|c| (COMMITTED, 0, c)));
        for (kind, index, payload) in records {
            let size = (HEADER + payload.len()) as u64;
            let at = self.tail.as_ref().map_or(0, |t| t.2) + buf.len() as u64;
            let fits = self.tail.is_some() && (at + size <= SEGMENT_BYTES || at == 0);
            if !fits {
                self.flush_buf(&mut buf, &mut batch_start, &mut dirty)?;
                let first = match (kind, placed.last()) {
                    (ENTRY, _) => index,
                    (_, Some((last, _))) => last + 1,
                    _ => self.next_index(),
                };
                self.rotate(first, &mut dirty)?;
            }
            let (seg, _, end) = self.tail.as_ref().ok_or_else(|| io("no segment"))?;
            let off = end + buf.len() as u64;
            if batch_start.is_none() {
                batch_start = Some(*end);
            }
            if kind == ENTRY {
                let len = payload.len() as u32;
                placed.push((
                    index,
                    Loc {
                        seg: *seg,
                        off,
                        len,
                    },
                ));
            }
            record(kind, index, payload, &mut buf);
        }
        self.flush_buf(&mut buf, &mut batch_start, &mut dirty)?;
        for f in &dirty {
            f.sync_data()?;
        }
        let mut s = lock(&self.shared);
        s.index.extend(placed);
        if let Some(c) = committed {
            s.committed = Some(c.to_vec());
        }
        Ok(())
    }

    /// The index the next entry will have.
    fn next_index(&self) -> u64 {
        let s = lock(&self.shared);
        s.index.keys().next_back().map_or(0, |i| i + 1)
    }

    /// Writes `buf` at the tail's end.
    fn flush_buf(
        &mut self,
        buf: &mut Vec<u8>,
        start: &mut Option<u64>,
        dirty: &mut Vec<Arc<File>>,
    ) -> stdio::Result<()> {
        let (Some(at), Some((_, file, end))) = (start.take(), self.tail.as_mut()) else {
            return Ok(());
        };
        if buf.is_empty() {
            return Ok(());
        }
        file.write_all_at(buf, at)?;
        *end = at + buf.len() as u64;
        if !dirty.iter().any(|f| Arc::ptr_eq(f, file)) {
            dirty.push(file.clone());
        }
        buf.clear();
        Ok(())
    }

    /// Starts a new segment for entries from `first` on; the one before
    /// is synced first, and the new one's name is durable before any
    /// record in it is.
    fn rotate(&mut self, first: u64, dirty: &mut Vec<Arc<File>>) -> stdio::Result<()> {
        for f in dirty.drain(..) {
            f.sync_data()?;
        }
        let path = self.dir.join(segment_name(first));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        file.set_len(SEGMENT_BYTES)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        let file = Arc::new(file);
        lock(&self.shared).files.insert(first, file.clone());
        self.tail = Some((first, file, 0));
        Ok(())
    }

    /// Removes the entries from `from` on: their bytes are zeroed and
    /// later segments deleted, durably.
    pub fn truncate_from(&mut self, from: u64) -> stdio::Result<()> {
        let loc = {
            let s = lock(&self.shared);
            match s.index.range(from..).next() {
                Some((_, l)) => *l,
                None => return Ok(()),
            }
        };
        let later: Vec<u64> = {
            let mut s = lock(&self.shared);
            s.index.split_off(&from);
            let later: Vec<u64> = s.files.range(loc.seg + 1..).map(|(f, _)| *f).collect();
            for f in &later {
                s.files.remove(f);
            }
            later
        };
        for f in later {
            std::fs::remove_file(self.dir.join(segment_name(f)))?;
        }
        let file = lock(&self.shared)
            .files
            .get(&loc.seg)
            .cloned()
            .ok_or_else(|| io("a segment without its file"))?;
        let len = file.metadata()?.len().max(SEGMENT_BYTES);
        file.set_len(loc.off)?;
        file.set_len(len)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        self.tail = Some((loc.seg, file, loc.off));
        Ok(())
    }

    /// Records `last_purged` (durably, first), then forgets the entries
    /// up to `upto` and deletes the segments that held only those.
    pub fn purge_upto(&mut self, upto: u64, last_purged: String) -> stdio::Result<()> {
        let mut meta = lock(&self.shared).meta.clone();
        meta.last_purged = Some(last_purged);
        self.write_meta(&meta)?;
        {
            let mut s = lock(&self.shared);
            s.meta = meta;
            s.index = s.index.split_off(&(upto + 1));
        }
        self.sweep()
    }

    /// Deletes the segments before the first one holding a live entry
    /// (never the one being written).
    fn sweep(&mut self) -> stdio::Result<()> {
        let tail = self.tail.as_ref().map(|t| t.0);
        let dead: Vec<u64> = {
            let mut s = lock(&self.shared);
            let keep_from = s
                .index
                .values()
                .next()
                .map(|l| l.seg)
                .or(tail)
                .unwrap_or(u64::MAX);
            let dead: Vec<u64> = s
                .files
                .range(..keep_from)
                .map(|(f, _)| *f)
                .filter(|f| Some(*f) != tail)
                .collect();
            for f in &dead {
                s.files.remove(f);
            }
            dead
        };
        for f in dead {
            std::fs::remove_file(self.dir.join(segment_name(f)))?;
        }
        Ok(())
    }

    pub fn save_vote(&mut self, vote: String) -> stdio::Result<()> {
        let mut meta = lock(&self.shared).meta.clone();
        meta.vote = Some(vote);
        self.write_meta(&meta)?;
        lock(&self.shared).meta = meta;
        Ok(())
    }

    fn write_meta(&self, meta: &Meta) -> stdio::Result<()> {
        let tmp = self.dir.join("meta.json.tmp");
        let f = File::create(&tmp)?;
        f.write_all_at(&serde_json::to_vec(meta).map_err(io)?, 0)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(META))?;
        sync_dir(&self.dir)
    }
}

/// Reads a segment into `shared`'s index; the last one's cut tail is
/// zeroed. Returns the file and where the next record goes.
fn load_segment(
    path: &Path,
    first: u64,
    last: bool,
    shared: &mut Shared,
) -> stdio::Result<(File, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let bytes = std::fs::read(path)?;
    let purged = shared.meta.last_purged.as_deref().and_then(purged_index);
    let mut off = 0;
    loop {
        match read_record(&bytes, off) {
            Read::Record {
                kind,
                index,
                payload,
                next,
            } => {
                if kind == COMMITTED {
                    shared.committed = Some(payload.to_vec());
                } else if purged.is_none_or(|p| index > p) {
                    let loc = Loc {
                        seg: first,
                        off: off as u64,
                        len: payload.len() as u32,
                    };
                    shared.index.insert(index, loc);
                }
                off = next;
            }
            Read::End => break,
            Read::Torn(why) if last => {
                tracing::warn!(
                    "{}: {why} at byte {off}, after the last whole record: a write cut by a crash, dropped",
                    path.display()
                );
                let len = (bytes.len() as u64).max(SEGMENT_BYTES);
                file.set_len(off as u64)?;
                file.set_len(len)?;
                file.sync_all()?;
                break;
            }
            Read::Torn(why) => return Err(damaged(path, off as u64, why)),
        }
    }
    Ok((file, off as u64))
}

/// The index of a last purged log id as the log store encodes it.
fn purged_index(encoded: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(encoded).ok()?;
    v.get("index")?.as_u64()
}

fn check_continuity(s: &Shared, dir: &Path) -> stdio::Result<()> {
    let mut prev: Option<u64> = None;
    for i in s.index.keys() {
        if let Some(p) = prev {
            if *i != p + 1 {
                return Err(damaged(dir, 0, &format!("entry {i} follows entry {p}")));
            }
        }
        prev = Some(*i);
    }
    Ok(())
}

impl Reader {
    /// The payloads of the entries in `range`.
    pub fn read(&self, range: impl RangeBounds<u64>) -> stdio::Result<Vec<(u64, Vec<u8>)>> {
        let wanted: Vec<(u64, Loc, Arc<File>)> = {
            let s = lock(&self.0);
            s.index
                .range(range)
                .filter_map(|(i, l)| Some((*i, *l, s.files.get(&l.seg)?.clone())))
                .collect()
        };
        wanted
            .into_iter()
            .map(|(i, l, f)| {
                let mut buf = vec![0u8; l.len as usize];
                f.read_exact_at(&mut buf, l.off + HEADER as u64)?;
                Ok((i, buf))
            })
            .collect()
    }

    /// The last entry's index.
    pub fn last(&self) -> Option<u64> {
        lock(&self.0).index.keys().next_back().copied()
    }

    pub fn vote(&self) -> Option<String> {
        lock(&self.0).meta.vote.clone()
    }

    pub fn last_purged(&self) -> Option<String> {
        lock(&self.0).meta.last_purged.clone()
    }

    pub fn committed(&self) -> Option<Vec<u8>> {
        lock(&self.0).committed.clone()
    }

    /// The bytes the live entries take.
    pub fn bytes(&self) -> u64 {
        lock(&self.0)
            .index
            .values()
            .map(|l| l.len as u64 + HEADER as u64)
            .sum()
    }
}

#[cfg(test)]
#[path = "wal_tests.rs"]
mod tests;
