//! What the API calls: object status by selection, the event feed, and
//! the cluster commands, each for this node's user. Handlers translate
//! HTTP to these calls and nothing else.

use crate::agent::Agent;
use crate::error::AgentError;
use berth_bus::{StatusChange, Update};
use berth_cluster::UserRef;
use berth_model::cluster::{ClusterSummary, ClusterView, NodeOp, NodeRecord, NodeRole};
use berth_model::event::Event;
use berth_model::status::{Avail, ObjectStatus};
use berth_model::{ActionOutcome, ObjectInfo, ObjectPath};
use futures_util::stream::{self, Stream, StreamExt};
use std::collections::VecDeque;
use std::sync::Arc;

/// How many past events one read of the log returns at most.
const EVENT_PAGE: usize = 10_000;

impl Agent {
    /// Objects matched by `selector`; with `allow_empty`, no match is an
    /// empty list rather than an error (`berth ls`, `berth mon`).
    /// Only the objects `by` may see are matched.
    pub fn select_some(
        &self,
        by: &UserRef,
        selector: &str,
        allow_empty: bool,
    ) -> Result<Vec<ObjectInfo>, AgentError> {
        let rights = self.cluster.rights(by)?;
        let visible = self.select(selector).map(|mut all| {
            all.retain(|o| rights.sees(namespace_of(&o.path)));
            all
        });
        match visible {
            Ok(v) if v.is_empty() && !allow_empty => Err(AgentError::NoMatch(selector.to_string())),
            Err(AgentError::NoMatch(_)) if allow_empty => Ok(Vec::new()),
            r => r,
        }
    }

    /// Whether `by` may see the object at `path` (its config, a keyword).
    pub fn check_read(&self, by: &UserRef, path: &str) -> Result<(), AgentError> {
        Ok(self.cluster.authorize(by, path, berth_auth::Action::Read)?)
    }

    /// This node's status of every selected object; an object whose
    /// monitor has not reported yet says so.
    pub fn statuses_of(
        &self,
        by: &UserRef,
        selector: &str,
        allow_empty: bool,
    ) -> Result<Vec<ObjectStatus>, AgentError> {
        Ok(self
            .select_some(by, selector, allow_empty)?
            .iter()
            .map(|o| match self.status.instance(&o.path) {
                Some(s) => (*s).clone(),
                None => self.pending_status(o),
            })
            .collect())
    }

    fn pending_status(&self, o: &ObjectInfo) -> ObjectStatus {
        let settings = self
            .cluster
            .desired()
            .get(&o.path)
            .ok()
            .flatten()
            .and_then(|rec| {
                let p: ObjectPath = rec.path.parse().ok()?;
                self.settings(&p, &rec.config).ok()
            });
        ObjectStatus {
            path: o.path.clone(),
            node: self.nodename().to_string(),
            avail: Avail::NotApplicable,
            frozen: o.frozen,
            target: o.target,
            topology: settings
                .as_ref()
                .map_or(berth_model::Topology::Failover, |s| s.topology),
            orchestrate: settings
                .as_ref()
                .map_or(berth_model::Orchestrate::No, |s| s.orchestrate),
            log: vec!["status not evaluated yet".into()],
            resources: vec![],
            docker_socket: None,
            placement: vec![],
            config_hash: 0,
            unhealthy_on: Default::default(),
        }
    }

    /// Waits until the status of some object on this node changes (or
    /// changes were missed), for `mon --watch`. `None` once shutting down.
    pub async fn status_changed(&self, sub: &mut berth_bus::StatusSubscription) -> Option<()> {
        loop {
            match sub.recv().await? {
                Update::Change(StatusChange::Instance(_) | StatusChange::Removed(_))
                | Update::Lagged => return Some(()),
                Update::Change(StatusChange::Fence(_)) => continue,
            }
        }
    }

    pub fn subscribe_status(&self) -> berth_bus::StatusSubscription {
        self.status.subscribe()
    }

    pub fn object_count(&self) -> Result<usize, AgentError> {
        Ok(self.cluster.desired().list()?.len())
    }

    /// The event log from `since` (or its last `last` events), then, with
    /// `follow`, live events. A subscriber that falls behind the live feed
    /// catches up from the log instead of silently skipping events.
    pub fn events(
        self: &Arc<Self>,
        by: &UserRef,
        since: Option<u64>,
        last: usize,
        follow: bool,
    ) -> Result<impl Stream<Item = Event> + Send + 'static, AgentError> {
        let rights = self.cluster.rights(by)?;
        let seen = move |e: &Event| match &e.object {
            Some(p) => rights.sees(namespace_of(p)),
            None => rights.is_root(),
        };
        Ok(self.all_events(since, last, follow)?.filter(move |e| {
            let ok = seen(e);
            async move { ok }
        }))
    }

    fn all_events(
        self: &Arc<Self>,
        since: Option<u64>,
        last: usize,
        follow: bool,
    ) -> Result<impl Stream<Item = Event> + Send + 'static, AgentError> {
        let live = self.events.subscribe();
        let past = match since {
            Some(seq) => self.store.events_after(seq, EVENT_PAGE),
            None => self.store.last_events(last),
        }?;
        let last_seen = past.last().map(|e| e.seq).unwrap_or(0);
        let state = (live, last_seen, VecDeque::from(past), self.clone(), follow);
        Ok(stream::unfold(
            state,
            |(mut rx, mut seen, mut backlog, agent, follow)| async move {
                loop {
                    if let Some(e) = backlog.pop_front() {
                        seen = seen.max(e.seq);
                        return Some((e, (rx, seen, backlog, agent, follow)));
                    }
                    if !follow {
                        return None;
                    }
                    match rx.recv().await {
                        Ok(e) if e.seq > seen => {
                            seen = e.seq;
                            return Some((e, (rx, seen, backlog, agent, follow)));
                        }
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            let store = agent.store.clone();
                            let missed = tokio::task::spawn_blocking(move || {
                                store.events_after(seen, EVENT_PAGE)
                            })
                            .await
                            .ok()
                            .and_then(Result::ok)
                            .unwrap_or_default();
                            backlog.extend(missed);
                        }
                        Err(_) => return None,
                    }
                }
            },
        ))
    }

    pub async fn cluster_init(
        &self,
        advertise: Option<&str>,
        name: Option<&str>,
    ) -> Result<ClusterSummary, AgentError> {
        Ok(self.cluster.init(advertise, name).await?)
    }

    pub async fn cluster_join(
        &self,
        addr: &str,
        token: &str,
        advertise: Option<&str>,
    ) -> Result<ClusterSummary, AgentError> {
        Ok(self.cluster.join(addr, token, advertise).await?)
    }

    pub async fn cluster_token(
        &self,
        by: &UserRef,
        role: NodeRole,
        rotate: bool,
    ) -> Result<String, AgentError> {
        Ok(self.cluster.token(by, role, rotate).await?)
    }

    pub async fn cluster_ca_rotate(&self, by: &UserRef) -> Result<ClusterSummary, AgentError> {
        Ok(self.cluster.ca_rotate(by).await?)
    }

    pub async fn cluster_leave(&self) -> Result<String, AgentError> {
        Ok(self.cluster.leave().await?)
    }

    pub async fn cluster_view(&self) -> ClusterView {
        self.cluster.view().await
    }

    pub async fn node_op(
        &self,
        by: &UserRef,
        name: &str,
        op: NodeOp,
    ) -> Result<NodeRecord, AgentError> {
        Ok(self.cluster.node_op(by, name, op).await?)
    }

    /// `deploy`: the service's config rolled out, batch by batch.
    pub async fn deploy(
        &self,
        by: &UserRef,
        path: &ObjectPath,
        args: berth_cluster::DeployArgs,
    ) -> Result<ActionOutcome, AgentError> {
        self.cluster
            .authorize(by, &path.to_string(), berth_auth::Action::Start)?;
        if self.cluster.desired().get(&path.to_string())?.is_none() {
            return Err(AgentError::NotFound(path.to_string()));
        }
        Ok(self.cluster.deploy(path, args, by).await?)
    }

    /// `rollback`: the previous deployed config, deployed again.
    pub async fn rollback(
        &self,
        by: &UserRef,
        path: &ObjectPath,
    ) -> Result<ActionOutcome, AgentError> {
        self.cluster
            .authorize(by, &path.to_string(), berth_auth::Action::Set)?;
        if self.cluster.desired().get(&path.to_string())?.is_none() {
            return Err(AgentError::NotFound(path.to_string()));
        }
        Ok(self.cluster.rollback(path, by).await?)
    }

    pub fn deploy_history(
        &self,
        path: &str,
    ) -> Result<berth_model::deploy::DeployHistory, AgentError> {
        if self.cluster.desired().get(path)?.is_none() {
            return Err(AgentError::NotFound(path.to_string()));
        }
        Ok(self.cluster.deploy_history(path)?)
    }

    /// `switch --to`, `takeover` and `giveback`.
    pub async fn switch(
        &self,
        by: &UserRef,
        path: &ObjectPath,
        to: Option<&str>,
    ) -> Result<ActionOutcome, AgentError> {
        self.cluster
            .authorize(by, &path.to_string(), berth_auth::Action::Start)?;
        Ok(self.cluster.switch(path, to, by).await?)
    }
}

impl Agent {
    /// Before the process exits: containers are left running; desired
    /// state is closed cleanly.
    pub async fn shutdown(&self) {
        self.events.emit(
            None,
            None,
            "daemon stopping; containers left running".into(),
            None,
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        self.cluster.desired().shutdown().await;
    }
}

/// The namespace of an object path (`ns/name` or `ns/kind/name`).
pub(crate) fn namespace_of(path: &str) -> &str {
    path.split('/').next().unwrap_or_default()
}
