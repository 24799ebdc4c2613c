//! The audit trail. Every user request that changes desired state has its
//! records in the very Raft entry that makes the change, so no change
//! lands without them; every refusal is recorded too, by the node that
//! refused (at most `REFUSALS_PER_SEC` a second, with a count of the
//! rest). Records live under `audit/` in desired state, appear in every
//! node's event log as they apply, and are compacted by the leader once
//! older than the retention.

use crate::command::{AuthOp, Command, KvWrite, ObjectOp, Refusal, UserRef};
use crate::{Cluster, ClusterError};
use berth_auth::audit::{audit_key, key_time, AuditRecord, Filter, Outcome, AUDIT_PREFIX};
use berth_raft::Request;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refusals recorded per second at most, per node, and the burst allowed.
const REFUSALS_PER_SEC: f64 = 20.0;
const REFUSAL_BURST: f64 = 100.0;
/// Records removed per compaction entry.
const COMPACT_BATCH: usize = 1000;
const COMPACT_EVERY: Duration = Duration::from_secs(3600);

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn record(
    by: &UserRef,
    object: String,
    action: &str,
    outcome: Outcome,
    reason: Option<&str>,
    now: u64,
) -> AuditRecord {
    AuditRecord {
        request: by
            .request
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        time_ms: now,
        user: by.user.clone(),
        token: by
            .token
            .as_deref()
            .and_then(berth_auth::token::peek)
            .map(|c| c.id),
        node: by.node.clone(),
        source: by.source.clone().unwrap_or_else(|| "local".into()),
        object,
        action: action.into(),
        outcome,
        reason: reason.map(str::to_string),
    }
}

fn object_actions(op: &ObjectOp) -> Vec<(String, &'static str)> {
    match op {
        ObjectOp::Create(recs) => recs.iter().map(|r| (r.path.clone(), "create")).collect(),
        ObjectOp::SetConfigs(cs) => cs.iter().map(|c| (c.path.clone(), "set")).collect(),
        ObjectOp::Delete { path } => vec![(path.clone(), "delete")],
        ObjectOp::SetTarget {
            path,
            target,
            frozen,
        } => {
            let a = match (target, frozen) {
                (Some(berth_model::status::Target::Started), _) => "start",
                (Some(berth_model::status::Target::Stopped), _) => "stop",
                (None, true) => "freeze",
                (None, false) => "thaw",
            };
            vec![(path.clone(), a)]
        }
        ObjectOp::Move { path, .. } => vec![(path.clone(), "switch")],
        ObjectOp::Deployed { path, .. } => vec![(path.clone(), "deploy")],
        ObjectOp::Unhealthy { path, why, .. } => vec![(
            path.clone(),
            if why.is_some() { "unhealthy" } else { "clear" },
        )],
    }
}

fn auth_action(op: &AuthOp) -> (String, &'static str) {
    match op {
        AuthOp::PutUser(u) => (format!("user:{}", u.name), "user put"),
        AuthOp::DeleteUser { name } => (format!("user:{name}"), "user delete"),
        AuthOp::PutGroup(g) => (format!("group:{}", g.name), "group put"),
        AuthOp::DeleteGroup { name } => (format!("group:{name}"), "group delete"),
        AuthOp::Revoke(r) => (format!("token:{}", r.id), "token revoke"),
        AuthOp::Signer(_) => ("token key".into(), "token key publish"),
        AuthOp::DataKey(_) => ("data key".into(), "data key publish"),
    }
}

fn kv_action(w: &KvWrite) -> (String, &'static str) {
    match w {
        KvWrite::Txn(ops) => match ops.as_slice() {
            [one] => (format!("kv:{}", one.key()), "kv write"),
            many => (format!("kv ({} keys)", many.len()), "kv txn"),
        },
        KvWrite::SessionCreate(s) => (format!("session:{}", s.id), "session create"),
        KvWrite::SessionDestroy { id } => (format!("session:{id}"), "session destroy"),
        KvWrite::SessionRenew { id } => (format!("session:{id}"), "session renew"),
    }
}

impl Command {
    /// The audit records of the user requests this command carries. The
    /// Consul API's tokenless (loopback, anonymous) traffic and the nodes'
    /// own reports are not users' requests and have none.
    pub(crate) fn audit_records(
        &self,
        outcome: Outcome,
        reason: Option<&str>,
        now: u64,
    ) -> Vec<AuditRecord> {
        let one = |by: &UserRef, (object, action): (String, &str)| {
            record(by, object, action, outcome.clone(), reason, now)
        };
        match self {
            Command::Object { by, op } => object_actions(op)
                .into_iter()
                .map(|oa| one(by, oa))
                .collect(),
            Command::Auth { by, op } => vec![one(by, auth_action(op))],
            Command::Secret { by, op } => {
                let (key, action) = match op {
                    crate::command::SecretOp::Put { key, value, .. } if value.version > 1 => {
                        (key, "secret change")
                    }
                    crate::command::SecretOp::Put { key, .. } => (key, "secret add"),
                    crate::command::SecretOp::Remove { key, .. } => (key, "secret remove"),
                };
                vec![one(by, (format!("{}#{key}", op.path()), action))]
            }
            Command::Kv { by, write } if by.token.is_some() => vec![one(by, kv_action(write))],
            Command::Catalog { by: Some(by), .. } if by.token.is_some() => {
                vec![one(by, ("catalog".into(), "catalog register"))]
            }
            Command::Admin {
                by, action, object, ..
            } => vec![one(by, (object.clone(), action.as_str()))],
            Command::All(cmds) => cmds
                .iter()
                .flat_map(|c| c.audit_records(outcome.clone(), reason, now))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The records' puts. Their keys carry one entry's own id: commands of
/// one request written in one millisecond must not share a key (a later
/// one would replace an earlier one's record).
fn puts(records: &[AuditRecord]) -> Result<Vec<Request>, berth_store::StoreError> {
    let entry = uuid::Uuid::new_v4().simple().to_string();
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let id = format!("{}.{}.{i}", r.request, &entry[..12]);
            berth_store::put_json(&audit_key(r.time_ms, &id), r)
        })
        .collect()
}

/// `req`, preceded in the same entry by the audit records of `cmd` (so
/// the entry's reply is still the change's).
pub(crate) fn with_audit(cmd: &Command, req: Request) -> Result<Request, ClusterError> {
    with_audit_at(cmd, req, now_ms())
}

fn with_audit_at(cmd: &Command, req: Request, now: u64) -> Result<Request, ClusterError> {
    let records = cmd.audit_records(Outcome::Allowed, None, now);
    if records.is_empty() {
        return Ok(req);
    }
    let mut all = puts(&records)?;
    all.push(req);
    Ok(Request::Batch(all))
}

/// How many refusals this node may still record now.
pub(crate) struct RefusalBudget(Mutex<(f64, Instant, u64)>);

impl Default for RefusalBudget {
    fn default() -> Self {
        RefusalBudget(Mutex::new((REFUSAL_BURST, Instant::now(), 0)))
    }
}

impl RefusalBudget {
    /// `Some(n)`: record this one, noting `n` refusals dropped before it.
    fn take(&self) -> Option<u64> {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last, dropped) = &mut *g;
        *tokens = (*tokens + last.elapsed().as_secs_f64() * REFUSALS_PER_SEC).min(REFUSAL_BURST);
        *last = Instant::now();
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Some(std::mem::take(dropped))
        } else {
            *dropped += 1;
            None
        }
    }
}

impl Cluster {
    /// Records a refusal of `cmd` (best effort: in a task of its own).
    pub(crate) fn record_refused_command(&self, cmd: &Command, why: &Refusal) {
        let records = cmd.audit_records(Outcome::Refused, Some(&why.to_string()), now_ms());
        self.record_refusals(records);
    }

    /// Records the refusal of what `by` asked: `action` on `object`.
    pub fn record_refusal(&self, by: &UserRef, object: &str, action: &str, why: &str) {
        let r = record(
            by,
            object.into(),
            action,
            Outcome::Refused,
            Some(why),
            now_ms(),
        );
        self.record_refusals(vec![r]);
    }

    fn record_refusals(&self, records: Vec<AuditRecord>) {
        let Some(me) = self.me.get().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        for mut r in records {
            let Some(dropped) = self.refusal_budget.take() else {
                continue;
            };
            if dropped > 0 {
                let why = r.reason.take().unwrap_or_default();
                r.reason = Some(format!(
                    "{why} ({dropped} refusals before this one went unrecorded)"
                ));
            }
            // Recorded under this node's name: its own refusal.
            r.node = self.nodename().to_string();
            let me = me.clone();
            tokio::spawn(async move {
                if let Err(e) = me.submit(Command::Audit(r)).await {
                    tracing::warn!("audit: a refusal went unrecorded: {e}");
                }
            });
        }
    }

    /// The records `filter` selects, oldest first, at most `limit` (the
    /// newest ones).
    pub fn audit(&self, filter: &Filter, limit: usize) -> Result<Vec<AuditRecord>, ClusterError> {
        let from = filter
            .since_ms
            .map_or(AUDIT_PREFIX.to_string(), |t| audit_key(t, ""));
        let mut out: Vec<AuditRecord> = self
            .desired
            .scan_raw(AUDIT_PREFIX)?
            .into_iter()
            .filter(|(k, _)| *k >= from)
            .filter_map(|(_, v)| serde_json::from_str::<AuditRecord>(&v).ok())
            .filter(|r| filter.matches(r))
            .collect();
        if out.len() > limit {
            out.drain(..out.len() - limit);
        }
        Ok(out)
    }

    /// Starts the audit loops: each applied record into this node's event
    /// log, and, on the leader, the removal of records older than
    /// `retention`.
    pub fn spawn_audit(self: &Arc<Self>, retention: Duration) {
        tokio::spawn(relay_events(self.clone()));
        tokio::spawn(compact(self.clone(), retention));
    }
}

async fn relay_events(c: Arc<Cluster>) {
    let mut rx = c.desired.subscribe();
    loop {
        let changes = match rx.recv().await {
            Ok(ch) => ch,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let Some(keys) = changes.as_ref() else {
            continue;
        };
        for k in keys.iter().filter(|k| k.starts_with(AUDIT_PREFIX)) {
            let Ok(Some(r)) = c.desired.get_json::<AuditRecord>(k) else {
                continue;
            };
            let object = r
                .object
                .parse::<berth_model::ObjectPath>()
                .ok()
                .map(|_| r.object.as_str());
            c.events.emit(object, None, r.to_string(), None);
        }
    }
}

/// Hourly, or a quarter of a short retention (at least every second).
async fn compact(c: Arc<Cluster>, retention: Duration) {
    let every = (retention / 4).clamp(Duration::from_secs(1), COMPACT_EVERY);
    loop {
        tokio::time::sleep(every).await;
        if c.desired.is_leader() {
            if let Err(e) = compact_once(&c, retention).await {
                tracing::warn!("audit: compaction: {e}");
            }
        }
    }
}

/// Removes the records older than `retention`; returns how many.
async fn compact_once(c: &Cluster, retention: Duration) -> Result<usize, ClusterError> {
    let cutoff = now_ms().saturating_sub(retention.as_millis() as u64);
    let old: Vec<String> = c
        .desired
        .scan_raw(AUDIT_PREFIX)?
        .into_iter()
        .map(|(k, _)| k)
        .take_while(|k| key_time(k).is_some_and(|t| t < cutoff))
        .collect();
    for chunk in old.chunks(COMPACT_BATCH) {
        c.submit(Command::AuditCompact {
            keys: chunk.to_vec(),
        })
        .await?;
    }
    Ok(old.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::ObjectOp;

    fn audit_keys(req: &Request) -> Vec<String> {
        let mut keys = Vec::new();
        req.keys(&mut keys);
        keys.retain(|k| k.starts_with(AUDIT_PREFIX));
        keys
    }

    /// One CLI request can make several commands in one millisecond (a
    /// `set` on many objects records a baseline version for each): each
    /// keeps its own audit record.
    #[test]
    fn commands_of_one_request_in_one_millisecond_keep_their_own_records() {
        let cmd = |path: &str| Command::Object {
            by: UserRef {
                request: Some("req-1".into()),
                ..UserRef::root_on("n1")
            },
            op: ObjectOp::Deployed {
                path: path.into(),
                history: Default::default(),
            },
        };
        let mut seen = Vec::new();
        for path in ["a/web0", "a/web1", "a/web1"] {
            let req = with_audit_at(&cmd(path), Request::Batch(vec![]), 1_000).expect("audit");
            seen.extend(audit_keys(&req));
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 3, "{seen:?}");
    }
}
