//! Who waits on what: blocking queries register the table keys (exact, or
//! a prefix) their result depends on, and only a write to one of those
//! wakes them. A write to an unrelated key wakes nobody, however many
//! queries block (hashicorp/consul#1244 is the complaint this avoids).
//!
//! A relay task reads the state machine's change notices; a notice lost
//! to lag wakes everyone, who then re-read and compare indexes, so no
//! change is ever missed.

use berth_store::{Changes, Desired};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// What a query's result depends on, as table keys.
#[derive(Clone, Debug)]
pub enum Interest {
    Keys(Vec<String>),
    Prefixes(Vec<String>),
}

/// One waiting query: woken once, by the first of its keys written.
struct Slot(Mutex<Option<oneshot::Sender<()>>>);

impl Slot {
    fn wake(&self) {
        if let Some(t) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.send(());
        }
    }

    /// Woken already, or its query gave up.
    fn done(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|t| t.is_closed())
    }
}

#[derive(Default)]
struct Registry {
    exact: HashMap<String, Vec<Arc<Slot>>>,
    prefix: HashMap<String, Vec<Arc<Slot>>>,
}

impl Registry {
    fn fire(list: Option<Vec<Arc<Slot>>>) {
        for s in list.into_iter().flatten() {
            s.wake();
        }
    }

    fn changed(&mut self, key: &str) {
        Registry::fire(self.exact.remove(key));
        if self.prefix.is_empty() {
            return;
        }
        for (i, _) in key.char_indices().chain(std::iter::once((key.len(), ' '))) {
            Registry::fire(self.prefix.remove(&key[..i]));
        }
    }

    fn everything(&mut self) {
        for (_, l) in self.exact.drain().chain(self.prefix.drain()) {
            Registry::fire(Some(l));
        }
    }
}

#[derive(Default, Clone)]
pub struct Watches {
    reg: Arc<Mutex<Registry>>,
}

impl Watches {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.reg.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver that completes at the next write touching `interest`.
    /// Register *before* reading, so a write in between is not missed.
    pub fn register(&self, interest: &Interest) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let slot = Arc::new(Slot(Mutex::new(Some(tx))));
        let mut reg = self.lock();
        let (map, keys) = match interest {
            Interest::Keys(k) => (&mut reg.exact, k),
            Interest::Prefixes(p) => (&mut reg.prefix, p),
        };
        for k in keys {
            let list = map.entry(k.clone()).or_default();
            // Queries that timed out leave their slots: pruned here.
            list.retain(|s| !s.done());
            list.push(slot.clone());
        }
        rx
    }

    /// How many receivers wait (for tests and benchmarks).
    pub fn waiting(&self) -> usize {
        let reg = self.lock();
        reg.exact
            .values()
            .chain(reg.prefix.values())
            .map(|l| l.iter().filter(|s| !s.done()).count())
            .sum()
    }

    /// Relays the state machine's change notices until it closes.
    pub async fn relay(self, desired: Arc<Desired>) {
        let mut rx = desired.subscribe();
        loop {
            let changes: Changes = match rx.recv().await {
                Ok(c) => c,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Arc::new(None),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            self.notify(&changes);
        }
    }

    /// Wakes the queries a batch of changes concerns.
    pub fn notify(&self, changes: &Changes) {
        let mut reg = self.lock();
        match changes.as_ref() {
            Some(keys) => keys.iter().for_each(|k| reg.changed(k)),
            None => reg.everything(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot::error::TryRecvError;

    fn changed(keys: &[&str]) -> Changes {
        Arc::new(Some(keys.iter().map(|k| k.to_string()).collect()))
    }

    #[tokio::test]
    async fn only_a_write_to_a_key_of_interest_wakes_a_query() {
        let w = Watches::default();
        let mut key = w.register(&Interest::Keys(vec!["kv/a".into(), "kvt/a".into()]));
        let mut prefix = w.register(&Interest::Prefixes(vec!["kv/p/".into()]));
        w.notify(&changed(&["kv/ab", "kv/b", "kv/p", "session/x"]));
        assert_eq!(key.try_recv(), Err(TryRecvError::Empty));
        assert_eq!(prefix.try_recv(), Err(TryRecvError::Empty));
        w.notify(&changed(&["kvt/a"]));
        assert_eq!(key.try_recv(), Ok(()));
        w.notify(&changed(&["kv/p/q/r"]));
        assert_eq!(prefix.try_recv(), Ok(()));
        assert_eq!(w.waiting(), 0);
    }

    #[tokio::test]
    async fn a_lost_notice_wakes_everyone() {
        let w = Watches::default();
        let mut a = w.register(&Interest::Keys(vec!["kv/a".into()]));
        let mut b = w.register(&Interest::Prefixes(vec!["kv/".into()]));
        w.notify(&Arc::new(None));
        assert_eq!((a.try_recv(), b.try_recv()), (Ok(()), Ok(())));
    }

    #[tokio::test]
    async fn queries_that_gave_up_are_pruned() {
        let w = Watches::default();
        for _ in 0..100 {
            drop(w.register(&Interest::Keys(vec!["kv/a".into()])));
        }
        let _live = w.register(&Interest::Keys(vec!["kv/a".into()]));
        assert_eq!(w.waiting(), 1);
        assert_eq!(w.lock().exact.get("kv/a").map(Vec::len), Some(1));
    }
}
