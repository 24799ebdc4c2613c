//! The built-in registrator. Every container berth runs is in the
//! catalog under its `service_name`; any other container on the node's
//! dockerd that carries registrator's `SERVICE_*` metadata is registered
//! with registrator's rules ([`rules`]).
//!
//! A pass compares what runs with this node's registrations and writes
//! the difference. Passes follow the host dockerd's events (start, die,
//! health_status...) and the status bus (berth's instances, on any
//! dockerd), and run at start-up and every resync period, which repairs
//! any missed event.
//!
//! Architecture invariant: the registrator writes only its own node's
//! registrations of its own sources (berth and registrator); services
//! registered through the agent API are left alone.

pub mod rules;

use berth_bus::StatusBus;
use berth_cluster::{Cluster, Command};
use berth_engine::{CallSink, ContainerFacts, Engine, LABEL_PATH};
use berth_kv::catalog::{self as cat, CatalogOp, Check, Service, Source};
use berth_model::status::Avail;
use futures_util::StreamExt;
use rules::Registration;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Events come in bursts: one pass for a burst.
const SETTLE: Duration = Duration::from_millis(30);

#[derive(Clone, Debug)]
pub struct RegistratorOptions {
    pub host_docker_socket: String,
    /// Register exposed ports too, at the container's address.
    pub internal: bool,
    pub resync: Duration,
}

struct Registrator {
    opts: RegistratorOptions,
    cluster: Arc<Cluster>,
    status: Arc<StatusBus>,
    engines: tokio::sync::Mutex<HashMap<String, Engine>>,
    /// The host dockerd's running containers, inspected once each and
    /// again after one of their events: a pass costs one listing, not an
    /// inspection of every container of the host.
    facts: std::sync::Mutex<HashMap<String, ContainerFacts>>,
}

/// Runs the registrator until the process ends.
pub async fn run(opts: RegistratorOptions, cluster: Arc<Cluster>, status: Arc<StatusBus>) {
    let r = Arc::new(Registrator {
        opts,
        cluster,
        status,
        engines: tokio::sync::Mutex::new(HashMap::new()),
        facts: std::sync::Mutex::new(HashMap::new()),
    });
    let wake = Arc::new(Notify::new());
    tokio::spawn(follow_docker(r.clone(), wake.clone()));
    tokio::spawn(follow_status(r.clone(), wake.clone()));
    loop {
        if let Err(e) = r.pass().await {
            tracing::debug!("registrator: {e}");
        }
        let _ = tokio::time::timeout(r.opts.resync, wake.notified()).await;
        tokio::time::sleep(SETTLE).await;
    }
}

async fn follow_docker(r: Arc<Registrator>, wake: Arc<Notify>) {
    loop {
        if let Ok(engine) = r.engine(&r.opts.host_docker_socket).await {
            let mut events = Box::pin(engine.container_events());
            wake.notify_one();
            while let Some(Ok(ev)) = events.next().await {
                r.cache().remove(&ev.id);
                let a = ev.action.as_str();
                if matches!(
                    a,
                    "start" | "die" | "stop" | "kill" | "destroy" | "pause" | "unpause"
                ) || a.starts_with("health_status")
                {
                    wake.notify_one();
                }
            }
        }
        r.engines.lock().await.remove(&r.opts.host_docker_socket);
        r.cache().clear();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow_status(r: Arc<Registrator>, wake: Arc<Notify>) {
    let mut sub = r.status.subscribe();
    while sub.recv().await.is_some() {
        wake.notify_one();
    }
}

fn no_sink() -> CallSink {
    Arc::new(|_| {})
}

impl Registrator {
    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, ContainerFacts>> {
        self.facts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The host's running containers, from the cache where it holds them.
    async fn host_facts(&self, host: &Engine) -> Result<Vec<ContainerFacts>, String> {
        let ids = host.running_ids().await.map_err(|e| e.to_string())?;
        self.cache().retain(|id, _| ids.contains(id));
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let cached = self.cache().get(&id).cloned();
            let f = match cached {
                Some(f) => f,
                None => match host.facts(&id).await.map_err(|e| e.to_string())? {
                    Some(f) => {
                        self.cache().insert(id, f.clone());
                        f
                    }
                    None => continue,
                },
            };
            out.push(f);
        }
        Ok(out)
    }

    async fn engine(&self, socket: &str) -> Result<Engine, String> {
        let mut engines = self.engines.lock().await;
        if let Some(e) = engines.get(socket) {
            return Ok(e.clone());
        }
        let e = Engine::connect(socket, no_sink())
            .await
            .map_err(|e| e.to_string())?;
        engines.insert(socket.to_string(), e.clone());
        Ok(e)
    }

    /// What runs here now, as registrations.
    async fn wanted(&self) -> Result<Vec<Registration>, String> {
        let node = self.cluster.nodename().to_string();
        let addr = self.cluster.advertised_host();
        let host = self.engine(&self.opts.host_docker_socket).await?;
        let mut out = Vec::new();
        let on_host = self.host_facts(&host).await?;
        for f in &on_host {
            if !f.labels.contains_key(LABEL_PATH) {
                out.extend(rules::registrator(f, &node, &addr, self.opts.internal));
            }
        }
        for st in self.status.instances() {
            let socket = st
                .docker_socket
                .clone()
                .unwrap_or_else(|| self.opts.host_docker_socket.clone());
            for res in &st.resources {
                let (Some(id), Some(svc)) = (&res.container_id, &res.service) else {
                    continue;
                };
                // A draining instance leaves the catalog before it stops.
                if !matches!(res.avail, Avail::Up | Avail::Warn) || res.draining {
                    continue;
                }
                let found = if socket == self.opts.host_docker_socket {
                    on_host.iter().find(|f| &f.id == id).cloned()
                } else {
                    match self.engine(&socket).await {
                        Ok(engine) => engine.facts(id).await.ok().flatten(),
                        Err(_) => None,
                    }
                };
                if let Some(f) = found.filter(|f| f.running) {
                    out.push(rules::berth(
                        &f,
                        res.health.as_ref(),
                        svc,
                        &st.path,
                        &res.rid,
                        &node,
                        &addr,
                    ));
                }
            }
        }
        Ok(out)
    }

    /// One pass: registers what runs and is not (or differently) in the
    /// catalog, deregisters what is gone, and updates Docker health.
    async fn pass(&self) -> Result<(), String> {
        let wanted = self.wanted().await?;
        let node = self.cluster.nodename();
        let d = self.cluster.desired();
        let current: BTreeMap<String, Service> = cat::services(d.as_ref(), None)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|s| s.node == node && matches!(s.source, Source::Berth | Source::Registrator))
            .map(|s| (s.id.clone(), s))
            .collect();
        let checks: HashMap<String, Check> = cat::checks(d.as_ref(), None)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|c| c.node == node)
            .map(|c| (c.id.clone(), c))
            .collect();
        let mut ops = Vec::new();
        for (svc, svc_checks) in &wanted {
            let same = current
                .get(&svc.id)
                .is_some_and(|cur| same_service(cur, svc))
                && svc_checks.iter().all(|c| {
                    checks
                        .get(&c.id)
                        .is_some_and(|old| old.def == c.def && old.name == c.name)
                });
            if !same {
                ops.push(CatalogOp::RegisterService {
                    service: svc.clone(),
                    checks: svc_checks.clone(),
                });
            }
            // These checks' status is the registrator's to keep.
            let observed = |c: &&Check| c.id.ends_with(":docker") || c.id.ends_with(":health");
            for c in svc_checks.iter().filter(observed) {
                if checks.get(&c.id).is_some_and(|old| old.status != c.status) {
                    ops.push(CatalogOp::SetStatus {
                        node: node.to_string(),
                        id: c.id.clone(),
                        status: c.status,
                        output: c.output.clone(),
                        now_ms: rules::now_ms(),
                    });
                }
            }
        }
        for (id, svc) in &current {
            if !wanted.iter().any(|(s, _)| &s.id == id) && !self.awaiting_report(svc) {
                ops.push(CatalogOp::DeregisterService {
                    node: node.to_string(),
                    id: id.clone(),
                });
            }
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.cluster
            .submit(Command::Catalog { by: None, ops })
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Registrator {
    /// A berth instance's registration whose object has not reported on
    /// this node since the daemon started: kept until it does, or an
    /// agent restart would take every instance out of the catalog (and
    /// the ingress's rotation) until its monitor's first pass.
    fn awaiting_report(&self, s: &Service) -> bool {
        s.source == Source::Berth
            && s.berth_path().is_some_and(|p| {
                self.status.instance(p).is_none()
                    && matches!(self.cluster.desired().get(p), Ok(Some(_)))
            })
    }
}

fn same_service(a: &Service, b: &Service) -> bool {
    (&a.name, &a.tags, &a.address, a.port, &a.meta, a.source)
        == (&b.name, &b.tags, &b.address, b.port, &b.meta, b.source)
}
