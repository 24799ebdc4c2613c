//! The event bus: events are persisted in batches by one writer task, then
//! broadcast to live subscribers (`berth events`).

use berth_model::event::Event;
use berth_store::Store;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

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
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while let Ok(ev) = rx.try_recv() {
                    batch.push(ev);
                }
                let s = store.clone();
                let written = tokio::task::spawn_blocking(move || s.append_events(batch)).await;
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
