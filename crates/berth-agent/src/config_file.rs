//! Object config files on disk, and how berth tells its own writes from
//! hand edits.
//!
//! Desired state (Raft) is the commit point of every change; the file
//! follows it. A file berth wrote carries the hash of its text in an
//! extended attribute set on the staged file before the rename, so text and
//! mark land together: after a crash the file is either the old one or the
//! new one, each still marked as berth's, and the next pass makes it follow
//! desired state. A hand edit changes the text (and usually drops the
//! attribute), so the mark no longer matches. On a filesystem without user
//! extended attributes the agent's `mirror` table holds the hash instead.
//!
//! That is also why committing a marked file does not fsync the
//! directory: a rename lost in a crash leaves the old, marked file, which
//! the next pass rewrites from desired state. (An unmarked file's rename
//! is made durable before its hash goes to the mirror.) The file's data is still fsynced, so a rename that
//! survives never exposes a torn text.

use std::ffi::{CStr, CString};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const MARK: &CStr = c"user.berth.written";

pub(crate) fn text_hash(text: &str) -> u64 {
    berth_model::fnv1a64(text.as_bytes())
}

/// A new text written beside its file, fsynced, not yet in place.
pub(crate) struct Staged {
    tmp: PathBuf,
    file: PathBuf,
    /// Whether the mark could be set (else the caller records the hash in
    /// the mirror table).
    pub marked: bool,
}

impl Staged {
    /// Puts the staged text in place. An unmarked file's hash goes to the
    /// mirror table next, which must not outlive a rename lost in a crash:
    /// then the directory is fsynced too.
    pub fn commit(self) -> std::io::Result<bool> {
        std::fs::rename(&self.tmp, &self.file)?;
        if !self.marked {
            let dir = self.file.parent().unwrap_or(Path::new("."));
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(self.marked)
    }

    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Writes `text` for `file` into a fresh temporary file beside it, marked
/// and fsynced.
pub(crate) fn stage(file: &Path, text: &str) -> std::io::Result<Staged> {
    let (mut f, tmp) = berth_store::home::staging_file(file, 0o644)?;
    let written = f.write_all(text.as_bytes()).and_then(|()| {
        let marked = set_mark(&f, text_hash(text));
        f.sync_all().map(|()| marked)
    });
    match written {
        Ok(marked) => Ok(Staged {
            tmp,
            file: file.to_path_buf(),
            marked,
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Stages and commits at once.
pub(crate) fn write(file: &Path, text: &str) -> std::io::Result<bool> {
    stage(file, text)?.commit()
}

fn set_mark(f: &std::fs::File, hash: u64) -> bool {
    let value = format!("{hash:016x}");
    // SAFETY: the fd is open for the call's duration; name and value are
    // valid for the lengths given.
    let rc = unsafe {
        libc::fsetxattr(
            f.as_raw_fd(),
            MARK.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    rc == 0
}

/// Marks a file already holding `text` as berth's.
pub(crate) fn mark_in_place(file: &Path, text: &str) -> bool {
    std::fs::File::open(file).is_ok_and(|f| set_mark(&f, text_hash(text)) && f.sync_all().is_ok())
}

/// The hash berth marked `file` with, if it carries a mark.
pub(crate) fn mark_of(file: &Path) -> Option<u64> {
    let path = CString::new(file.as_os_str().as_bytes()).ok()?;
    let mut buf = [0u8; 32];
    // SAFETY: path and name are NUL-terminated; buf is writable for its
    // length.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            MARK.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return None;
    }
    let s = std::str::from_utf8(&buf[..n as usize]).ok()?;
    u64::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_carries_the_hash_of_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.conf");
        let marked = write(&file, "[DEFAULT]\nenv = A\n").unwrap();
        if !marked {
            eprintln!("no user xattrs on this filesystem; the mirror table is used");
            return;
        }
        assert_eq!(mark_of(&file), Some(text_hash("[DEFAULT]\nenv = A\n")));
        // A hand edit in place keeps the attribute but not the text.
        std::fs::write(&file, "[DEFAULT]\nenv = B\n").unwrap();
        assert_ne!(mark_of(&file), Some(text_hash("[DEFAULT]\nenv = B\n")));
    }

    #[test]
    fn a_discarded_stage_leaves_the_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.conf");
        write(&file, "old\n").unwrap();
        stage(&file, "new\n").unwrap().discard();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "old\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
