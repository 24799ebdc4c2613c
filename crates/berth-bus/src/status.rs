//! The status bus: typed changes of this node's observed state, with the
//! latest value of each kept as a snapshot.
//!
//! Publishers are the instance monitors (one object's status on this node)
//! and the cluster's lease watcher (the node's fence). Subscribers are the
//! cluster's heartbeat (instance reports), the agent (a fence change wakes
//! every monitor) and the API (`mon --watch`). A change is sent only when
//! the value differs from the snapshot, so an idle node publishes nothing.
//!
//! Subscribe first, then read the snapshot: every change made after the
//! snapshot was taken is then still received. A subscriber that falls more
//! than the bus's capacity behind gets [`Update::Lagged`] and re-reads the
//! snapshot; the publisher never waits.

use berth_manager::duty::Fence;
use berth_model::status::ObjectStatus;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tokio::sync::broadcast;

/// One change of observed state.
#[derive(Clone, Debug, PartialEq)]
pub enum StatusChange {
    /// An object's status on this node, as its monitor last built it.
    Instance(Arc<ObjectStatus>),
    /// The object no longer exists on this node.
    Removed(String),
    /// Whether this node may run failover instances changed.
    Fence(Fence),
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Change(StatusChange),
    /// Changes were missed: read the snapshot again.
    Lagged,
}

struct Snapshot {
    instances: BTreeMap<String, Arc<ObjectStatus>>,
    fence: Fence,
}

pub struct StatusBus {
    tx: broadcast::Sender<StatusChange>,
    snapshot: RwLock<Snapshot>,
}

pub struct StatusSubscription {
    rx: broadcast::Receiver<StatusChange>,
}

impl StatusSubscription {
    /// The next change, or `Lagged`; `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Update> {
        match self.rx.recv().await {
            Ok(c) => Some(Update::Change(c)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some(Update::Lagged),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

impl StatusBus {
    /// A bus that holds `capacity` changes for its slowest subscriber.
    pub fn new(capacity: usize, fence: Fence) -> StatusBus {
        let (tx, _) = broadcast::channel(capacity.max(1));
        StatusBus {
            tx,
            snapshot: RwLock::new(Snapshot {
                instances: BTreeMap::new(),
                fence,
            }),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.snapshot.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes an object's status, if it changed. The snapshot and the
    /// send happen under one lock, so subscribers see changes in order.
    pub fn publish_instance(&self, status: ObjectStatus) {
        let mut snap = self.write();
        if snap
            .instances
            .get(&status.path)
            .is_some_and(|s| **s == status)
        {
            return;
        }
        let status = Arc::new(status);
        snap.instances.insert(status.path.clone(), status.clone());
        let _ = self.tx.send(StatusChange::Instance(status));
    }

    pub fn remove_instance(&self, path: &str) {
        let mut snap = self.write();
        if snap.instances.remove(path).is_some() {
            let _ = self.tx.send(StatusChange::Removed(path.to_string()));
        }
    }

    /// Publishes the node's fence, if it changed; returns the previous one.
    pub fn publish_fence(&self, fence: Fence) -> Fence {
        let mut snap = self.write();
        if snap.fence == fence {
            return fence;
        }
        let before = std::mem::replace(&mut snap.fence, fence.clone());
        let _ = self.tx.send(StatusChange::Fence(fence));
        before
    }

    pub fn subscribe(&self) -> StatusSubscription {
        StatusSubscription {
            rx: self.tx.subscribe(),
        }
    }

    /// Every object's status on this node, sorted by path.
    pub fn instances(&self) -> Vec<Arc<ObjectStatus>> {
        self.read().instances.values().cloned().collect()
    }

    pub fn instance(&self, path: &str) -> Option<Arc<ObjectStatus>> {
        self.read().instances.get(path).cloned()
    }

    pub fn fence(&self) -> Fence {
        self.read().fence.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::status::{Avail, Target};
    use berth_model::{Orchestrate, Topology};

    fn status(path: &str, avail: Avail) -> ObjectStatus {
        ObjectStatus {
            path: path.into(),
            node: "n1".into(),
            avail,
            frozen: false,
            target: Target::Started,
            topology: Topology::Failover,
            orchestrate: Orchestrate::No,
            log: vec![],
            resources: vec![],
            docker_socket: None,
            placement: vec![],
            config_hash: 0,
            unhealthy_on: Default::default(),
        }
    }

    #[tokio::test]
    async fn only_changes_are_sent_and_the_snapshot_follows() {
        let bus = StatusBus::new(16, Fence::Standalone);
        let mut sub = bus.subscribe();
        bus.publish_instance(status("a/x", Avail::Down));
        bus.publish_instance(status("a/x", Avail::Down));
        bus.publish_instance(status("a/x", Avail::Up));
        bus.remove_instance("a/x");
        bus.remove_instance("a/x");
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(sub.recv().await);
        }
        assert!(
            matches!(&got[0], Some(Update::Change(StatusChange::Instance(s))) if s.avail == Avail::Down)
        );
        assert!(
            matches!(&got[1], Some(Update::Change(StatusChange::Instance(s))) if s.avail == Avail::Up)
        );
        assert_eq!(
            got[2],
            Some(Update::Change(StatusChange::Removed("a/x".into())))
        );
        assert!(bus.instances().is_empty());
        assert_eq!(bus.publish_fence(Fence::Valid), Fence::Standalone);
        assert_eq!(bus.publish_fence(Fence::Valid), Fence::Valid);
        assert_eq!(
            sub.recv().await,
            Some(Update::Change(StatusChange::Fence(Fence::Valid)))
        );
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged_and_the_publisher_never_waits() {
        let bus = StatusBus::new(4, Fence::Standalone);
        let mut slow = bus.subscribe();
        for i in 0..100 {
            bus.publish_instance(status(&format!("a/x{i}"), Avail::Up));
        }
        assert_eq!(slow.recv().await, Some(Update::Lagged));
        assert_eq!(bus.instances().len(), 100, "the snapshot has everything");
        // After the lag, the newest changes still arrive.
        assert!(matches!(slow.recv().await, Some(Update::Change(_))));
    }
}
