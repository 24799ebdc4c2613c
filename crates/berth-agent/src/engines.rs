//! Docker engines: one connection per daemon socket (the host's and each
//! private dockerd's), whose event streams wake the owning monitors, and
//! the sinks that turn every Docker call into an event.

use crate::agent::Agent;
use berth_engine::{CallSink, Engine, EngineError};
use berth_model::ObjectPath;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Engines {
    host_socket: String,
    by_socket: Mutex<HashMap<String, Engine>>,
}

impl Engines {
    pub(crate) fn new(host_socket: String) -> Engines {
        Engines {
            host_socket,
            by_socket: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Engine>> {
        self.by_socket.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn drop_engine(&self, socket: &str) {
        self.lock().remove(socket);
    }
}

impl Agent {
    /// Engine for `socket`, connected on first use; its event stream is
    /// watched so container deaths wake the owning monitor.
    pub(crate) async fn engine(self: &Arc<Self>, socket: &str) -> Result<Engine, EngineError> {
        if let Some(e) = self.engines.lock().get(socket) {
            return Ok(e.clone());
        }
        let engine = Engine::connect(socket, self.call_sink(None, None, None)).await?;
        let fresh = self
            .engines
            .lock()
            .insert(socket.to_string(), engine.clone())
            .is_none();
        if fresh && socket != self.engines.host_socket {
            tokio::spawn(private_event_loop(self.clone(), engine.clone()));
        }
        Ok(engine)
    }

    pub(crate) fn drop_engine(&self, socket: &str) {
        self.engines.drop_engine(socket);
    }

    /// A sink that turns Docker calls into events, attributed to an object,
    /// and optionally copies them into an action's transcript.
    pub(crate) fn call_sink(
        &self,
        object: Option<String>,
        rid: Option<String>,
        transcript: Option<Arc<Mutex<Vec<String>>>>,
    ) -> CallSink {
        let bus = self.events.clone();
        Arc::new(move |call| {
            let what = match &call.error {
                Some(e) => format!("docker call failed: {e}"),
                None => "docker call".to_string(),
            };
            if let Some(t) = &transcript {
                let prefix = rid.as_deref().map(|r| format!("{r}: ")).unwrap_or_default();
                let mut t = t.lock().unwrap_or_else(|e| e.into_inner());
                t.push(format!("{prefix}{}", call.command));
                if let Some(e) = &call.error {
                    t.push(format!("{prefix}error: {e}"));
                }
            }
            bus.emit(object.as_deref(), rid.as_deref(), what, Some(call.command));
        })
    }
}

/// Follows the host dockerd's events; reconnects with a backoff and wakes
/// every monitor after a reconnect, since events may have been missed.
pub(crate) async fn host_event_loop(agent: Arc<Agent>) {
    let socket = agent.opts.host_docker_socket.clone();
    let mut backoff = Duration::from_millis(200);
    let mut was_down = false;
    let mut first = true;
    loop {
        match agent.engine(&socket).await {
            Ok(engine) => {
                if was_down {
                    agent.events.emit(
                        None,
                        None,
                        format!("docker daemon at {socket} is back"),
                        None,
                    );
                }
                // Container events may have been missed while unsubscribed.
                if !first {
                    agent.wake_all();
                }
                first = false;
                was_down = false;
                backoff = Duration::from_millis(200);
                follow(&agent, &engine).await;
                agent.drop_engine(&socket);
            }
            Err(e) => {
                if !was_down {
                    agent.events.emit(None, None, e.to_string(), None);
                    agent.wake_all();
                }
                was_down = true;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn private_event_loop(agent: Arc<Agent>, engine: Engine) {
    follow(&agent, &engine).await;
    agent.drop_engine(engine.socket());
    // The private dockerd went away: its object's status is stale now, and
    // if it died rather than being stopped, the monitor restarts it.
    let owner = std::path::Path::new(engine.socket())
        .strip_prefix(agent.opts.home.root.join("namespaces"))
        .ok()
        .and_then(|rel| {
            let mut parts = rel.iter().filter_map(|p| p.to_str());
            Some(format!("{}/{}", parts.next()?, parts.next()?))
        })
        .and_then(|p| p.parse::<ObjectPath>().ok());
    if let Some(path) = owner {
        // The stream ends as the process dies; give it a moment to be gone,
        // or the pass still sees a live pid and finds no socket.
        tokio::time::sleep(Duration::from_secs(1)).await;
        agent.wake_docker(&path.to_string());
    }
}

async fn follow(agent: &Arc<Agent>, engine: &Engine) {
    let mut stream = Box::pin(engine.events());
    while let Some(item) = stream.next().await {
        let Ok(ev) = item else { break };
        let health = ev.action.starts_with("health_status");
        if !health
            && !matches!(
                ev.action.as_str(),
                "die" | "start" | "stop" | "destroy" | "oom" | "kill"
            )
        {
            continue;
        }
        if let Some(path) = ev.labels.get(berth_engine::LABEL_PATH) {
            agent.wake_docker(path);
        }
    }
}
