//! The KV store as berth's own API uses it too (`berth kv`): folding keys
//! at a separator, and one write through the leader with Consul's answer.

use berth_cluster::{Cluster, ClusterError, Command, KvWrite, UserRef};
use berth_kv::{Entry, ErrorKind, Outcome, TxnOp};
use std::collections::BTreeSet;

/// The keys of `entries` (all under `prefix`), each cut after the first
/// `sep` that follows the prefix (Consul's "folders").
pub fn folded(entries: &[Entry], prefix: &str, sep: Option<&str>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for e in entries {
        let key = match sep.filter(|s| !s.is_empty()) {
            Some(sep) => match e.key[prefix.len()..].find(sep) {
                Some(i) => e.key[..prefix.len() + i + sep.len()].to_string(),
                None => e.key.clone(),
            },
            None => e.key.clone(),
        };
        out.insert(key);
    }
    out.into_iter().collect()
}

/// How a single write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Done,
    /// A compare-and-set or a lock did not hold: Consul's `false`.
    NotDone,
    /// A lock with a session that does not exist: Consul's 500.
    InvalidSession(String),
}

/// One write, for `by`, through the leader.
pub async fn write(cluster: &Cluster, by: UserRef, op: TxnOp) -> Result<Written, ClusterError> {
    let reply = cluster
        .submit(Command::Kv {
            by,
            write: KvWrite::Txn(vec![op]),
        })
        .await?;
    Ok(match reply.kv {
        Some(Outcome::Txn { errors, .. }) => match errors.first() {
            None => Written::Done,
            Some(e) if e.kind == ErrorKind::InvalidSession => {
                Written::InvalidSession(e.what.clone())
            }
            Some(_) => Written::NotDone,
        },
        _ => Written::NotDone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str) -> Entry {
        Entry {
            key: key.into(),
            ..Default::default()
        }
    }

    #[test]
    fn keys_fold_at_the_separator_after_the_prefix() {
        let all = [e("a/b/c"), e("a/b/d"), e("a/e"), e("a/f/")];
        assert_eq!(folded(&all, "a/", Some("/")), ["a/b/", "a/e", "a/f/"]);
        assert_eq!(folded(&all, "", Some("/")), ["a/"]);
        assert_eq!(folded(&all, "a/", None).len(), 4);
    }
}
