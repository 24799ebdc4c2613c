//! The leader's session timers: a session with a TTL that is not renewed
//! within twice its TTL (Consul's own margin) is invalidated, and so is a
//! session whose node berth declares down or which left the cluster.
//!
//! Timers live in the leader's memory only. A node that becomes leader
//! starts every timer afresh, so that no session expires merely because
//! leadership moved; renewals are replicated (`sessionrenew/<id>`), and a
//! changed renewal stamp restarts that session's timer.

use crate::session::SERF_HEALTH;
use crate::{Consul, Replica};
use berth_cluster::KvWrite;
use berth_kv::catalog::Health;
use berth_kv::keys;
use berth_model::cluster::NodeState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

const TICK: Duration = Duration::from_millis(200);
const TTL_MULTIPLIER: u32 = 2;

#[derive(Default)]
pub(crate) struct Timers {
    /// Session id → (last renewal stamp seen, deadline).
    deadlines: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl Timers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<String>, Instant)>> {
        self.deadlines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(crate) async fn run(c: Arc<Consul>) {
    let mut leading = false;
    loop {
        tokio::time::sleep(TICK).await;
        if !c.desired().is_leader() {
            if leading {
                c.timers.lock().clear();
                leading = false;
            }
            continue;
        }
        leading = true;
        for id in due(&c).into_iter().chain(orphans(&c).await) {
            c.timers.lock().remove(&id);
            if let Err(e) = c.submit(KvWrite::SessionDestroy { id: id.clone() }).await {
                tracing::warn!("invalidating session {id}: {}", e.message);
            }
        }
    }
}

/// Sessions whose TTL ran out; (re)starts the timers of the others.
fn due(c: &Consul) -> Vec<String> {
    let r = Replica(c.desired());
    let Ok(sessions) = berth_kv::sessions(&r) else {
        return Vec::new();
    };
    let now = Instant::now();
    let mut timers = c.timers.lock();
    timers.retain(|id, _| sessions.iter().any(|s| &s.id == id));
    let mut out = Vec::new();
    for s in sessions.iter().filter(|s| s.ttl_ms > 0) {
        let stamp = c.desired().get_raw(&keys::renew(&s.id)).ok().flatten();
        let window = Duration::from_millis(s.ttl_ms) * TTL_MULTIPLIER;
        let entry = timers
            .entry(s.id.clone())
            .or_insert_with(|| (stamp.clone(), now + window));
        if entry.0 != stamp {
            *entry = (stamp, now + window);
        }
        if now >= entry.1 {
            out.push(s.id.clone());
        }
    }
    out
}

/// Sessions whose checks failed: one of them critical or deregistered,
/// or, for `serfHealth` not in the catalog yet, its node down or gone.
async fn orphans(c: &Arc<Consul>) -> Vec<String> {
    let d = c.desired();
    let Ok(sessions) = berth_kv::sessions(d.as_ref()) else {
        return Vec::new();
    };
    let Ok(checks) = berth_kv::catalog::checks(d.as_ref(), None) else {
        return Vec::new();
    };
    let mut view = None;
    let mut out = Vec::new();
    for s in sessions {
        let mut failed = false;
        for id in s.node_checks.iter().chain(&s.service_checks) {
            match checks.iter().find(|ch| ch.node == s.node && &ch.id == id) {
                Some(ch) => failed |= ch.status == Health::Critical,
                None if id == SERF_HEALTH => {
                    if !c.cluster.is_clustered() {
                        continue;
                    }
                    if view.is_none() {
                        view = Some(c.cluster.view().await);
                    }
                    let v = view
                        .as_ref()
                        .map(|v| v.nodes.as_slice())
                        .unwrap_or_default();
                    failed |= match v.iter().find(|n| n.record.name == s.node) {
                        None => true,
                        Some(n) => n.state == NodeState::Down,
                    };
                }
                None => failed = true,
            }
        }
        if failed {
            out.push(s.id);
        }
    }
    out
}
