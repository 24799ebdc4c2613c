//! The event bus: events are persisted in batches by one writer task, then
//! broadcast to live subscribers (`berth events`). Under load, batches are
//! fsynced together at most every `FLUSH`: a crash may lose the last half
//! second of the event log (never desired state; the text log has them).

use berth_model::event::Event;
use berth_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How long an event may wait for its fsync. The text log (tracing) has
/// every event at once.
const FLUSH: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct EventBus {
    tx: mpsc::UnboundedSender<Event>,
    live: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn start(store: Arc<Store>) -> EventBus {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let (live, _) = broadcast::channel(4096);
        let out = live.clone();
        tokio::spawn(async move {
            // A burst of events is fsynced about once per FLUSH, not once
            // per batch; a quiet log is flushed FLUSH after its last batch.
            let mut last_durable = tokio::time::Instant::now();
            let mut dirty = false;
            loop {
                let first = if dirty {
                    match tokio::time::timeout(FLUSH, rx.recv()).await {
                        Ok(ev) => ev,
                        Err(_) => {
                            let s = store.clone();
                            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.flush()).await
                            {
                                tracing::error!("event log flush failed: {e}");
                            }
                            dirty = false;
                            last_durable = tokio::time::Instant::now();
                            continue;
                        }
                    }
                } else {
                    rx.recv().await
                };
                let Some(first) = first else { break };
                let mut batch = vec![first];
                while let Ok(ev) = rx.try_recv() {
                    batch.push(ev);
                }
                let durable = last_durable.elapsed() >= FLUSH;
                if durable {
                    last_durable = tokio::time::Instant::now();
                }
                dirty = !durable;
                let s = store.clone();
                let written =
                    tokio::task::spawn_blocking(move || s.append_events(batch, durable)).await;
                match written {
                    Ok(Ok(evs)) => {
                        for ev in evs {
                            let _ = out.send(ev);
                        }
                    }
                    Ok(Err(e)) => tracing::error!("event log write failed: {e}"),
                    Err(e) => tracing::error!("event log writer panicked: {e}"),
                }
            }
        });
        EventBus { tx, live }
    }

    pub fn emit(
        &self,
        object: Option<&str>,
        rid: Option<&str>,
        what: String,
        docker: Option<String>,
    ) {
        tracing::info!(
            object = object.unwrap_or("-"),
            rid = rid.unwrap_or("-"),
            docker = docker.as_deref().unwrap_or(""),
            "{what}"
        );
        let _ = self.tx.send(Event {
            seq: 0,
            time: crate::now_rfc3339(),
            object: object.map(str::to_string),
            rid: rid.map(str::to_string),
            what,
            docker,
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.live.subscribe()
    }
}
