//! Where each kind of record lives in the state machine's table.

/// `kv/<key>`: an [`crate::Entry`].
pub const KV: &str = "kv/";
/// `kvt/<key>`: the index at which the key was deleted, so a blocking
/// query on a prefix wakes on a delete and never sees its index go back.
pub const TOMBSTONE: &str = "kvt/";
/// `session/<id>`: a [`crate::Session`].
pub const SESSION: &str = "session/";
/// `sessionrenew/<id>`: when the session was last renewed (leader's clock,
/// ms); the leader's TTL timers watch these.
pub const RENEW: &str = "sessionrenew/";
/// The index of the last session created or destroyed: what session
/// queries report and block on (a destroyed session leaves no record).
pub const SESSIONS_INDEX: &str = "sessionindex";
/// `lockdelay/<key>`: until when (ms) no session may acquire the key.
pub const LOCK_DELAY: &str = "lockdelay/";

pub fn kv(key: &str) -> String {
    format!("{KV}{key}")
}

pub fn tombstone(key: &str) -> String {
    format!("{TOMBSTONE}{key}")
}

pub fn session(id: &str) -> String {
    format!("{SESSION}{id}")
}

pub fn renew(id: &str) -> String {
    format!("{RENEW}{id}")
}

pub fn lock_delay(key: &str) -> String {
    format!("{LOCK_DELAY}{key}")
}
