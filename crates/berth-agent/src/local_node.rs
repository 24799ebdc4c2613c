//! What the cluster may ask of this node: an object's settings, and an
//! action on this node's instance (`berth_cluster::LocalNode`).

use crate::agent::Agent;
use berth_cluster::{BoxFuture, LocalNode};
use berth_model::{ActionKind, ActionOutcome, ConfigDoc, ObjectPath, ObjectSettings};
use std::sync::Weak;

pub(crate) struct AgentNode(pub(crate) Weak<Agent>);

impl Agent {
    /// Config `text` of `path` resolved as node `node` sees it; the errors
    /// joined in one line.
    pub(crate) fn effective(
        &self,
        path: &ObjectPath,
        text: &str,
        node: &str,
    ) -> Result<berth_model::EffectiveConfig, String> {
        let doc = ConfigDoc::parse(text).map_err(|e| format!("stored config: {e}"))?;
        berth_model::resolve(&doc, &self.registry, path, node).map_err(|errs| {
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The settings of `path` with config `text`, resolved on this node.
    pub(crate) fn settings(&self, path: &ObjectPath, text: &str) -> Result<ObjectSettings, String> {
        let eff = self.effective(path, text, self.nodename())?;
        berth_drivers::default::settings(&eff)
    }

    /// Each container resource's spec fingerprint, resolved here.
    pub(crate) fn spec_fingerprints(
        &self,
        path: &ObjectPath,
        text: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, String> {
        Ok(self
            .resolved_containers(path, text)?
            .into_iter()
            .map(|c| {
                let spec = c
                    .spec
                    .labels
                    .get(berth_drivers::container_docker::LABEL_SPEC)
                    .cloned()
                    .unwrap_or_default();
                (c.rid, spec)
            })
            .collect())
    }

    /// Each container's image pinned on the host's dockerd, pulled first
    /// when it is absent and its pull_policy allows.
    pub(crate) async fn image_digests(
        self: &std::sync::Arc<Self>,
        path: &ObjectPath,
        text: &str,
    ) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
        use berth_drivers::container_docker::{ContainerResource, PullPolicy};
        let mut pins = std::collections::BTreeMap::new();
        let mut notes = Vec::new();
        let resources: Vec<ContainerResource> = match self.resolved_containers(path, text) {
            Ok(c) => c,
            Err(e) => return (pins, vec![e]),
        };
        let engine = match self.engine(&self.opts.host_docker_socket).await {
            Ok(e) => e,
            Err(e) => return (pins, vec![format!("no image pinned: {e}")]),
        };
        for c in resources {
            let image = &c.spec.image;
            let mut found = engine.image_digest(image).await;
            if matches!(found, Ok(None)) && c.pull_policy != PullPolicy::Never {
                if let Err(e) = engine.pull(image).await {
                    notes.push(format!("{}: {image} not pinned: {e}", c.rid));
                    continue;
                }
                found = engine.image_digest(image).await;
            }
            match found {
                Ok(Some(d)) => {
                    notes.push(format!("{}: {image} pinned to {d}", c.rid));
                    pins.insert(c.rid.clone(), d);
                }
                Ok(None) => notes.push(format!("{}: {image} not pinned: not found", c.rid)),
                Err(e) => notes.push(format!("{}: {image} not pinned: {e}", c.rid)),
            }
        }
        (pins, notes)
    }

    fn resolved_containers(
        &self,
        path: &ObjectPath,
        text: &str,
    ) -> Result<Vec<berth_drivers::container_docker::ContainerResource>, String> {
        let eff = self.effective(path, text, self.nodename())?;
        let id = eff.default.get_str("id").unwrap_or_default();
        eff.resources_of("container")
            .map(|s| {
                berth_drivers::container_docker::ContainerResource::from_section(
                    path,
                    s,
                    id,
                    self.nodename(),
                )
                .map_err(|e| format!("{}: {e}", s.name))
            })
            .collect()
    }

    /// The `sec` and `cfg` values `path`'s containers take on `node`.
    pub(crate) fn values_used(
        &self,
        path: &ObjectPath,
        text: &str,
        node: &str,
    ) -> Result<Vec<(ObjectPath, String)>, String> {
        let eff = self.effective(path, text, node)?;
        let mut used = Vec::new();
        for s in eff.resources_of("container") {
            let (files, env) = berth_drivers::container_docker::files::deliveries(s)?;
            let refs = files
                .iter()
                .map(|f| (f.source, &f.object, &f.key))
                .chain(env.iter().map(|e| (e.source, &e.object, &e.key)));
            for (source, object, key) in refs {
                let from = ObjectPath::new(&path.namespace, source.kind(), object)
                    .map_err(|e| e.to_string())?;
                used.push((from, key.clone()));
            }
        }
        Ok(used)
    }
}

impl LocalNode for AgentNode {
    fn settings(&self, path: &ObjectPath, config: &str) -> Option<ObjectSettings> {
        self.0.upgrade()?.settings(path, config).ok()
    }

    fn values_used(
        &self,
        path: &ObjectPath,
        config: &str,
        node: &str,
    ) -> Result<Vec<(ObjectPath, String)>, String> {
        self.0
            .upgrade()
            .ok_or("the daemon is shutting down")?
            .values_used(path, config, node)
    }

    fn spec_fingerprints(
        &self,
        path: &ObjectPath,
        config: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, String> {
        self.0
            .upgrade()
            .ok_or("the daemon is shutting down")?
            .spec_fingerprints(path, config)
    }

    fn image_digests(
        &self,
        path: &ObjectPath,
        config: &str,
    ) -> BoxFuture<'static, (std::collections::BTreeMap<String, String>, Vec<String>)> {
        let (agent, path, config) = (self.0.clone(), path.clone(), config.to_string());
        Box::pin(async move {
            match agent.upgrade() {
                Some(a) => a.image_digests(&path, &config).await,
                None => (
                    Default::default(),
                    vec!["the daemon is shutting down".into()],
                ),
            }
        })
    }

    fn act(
        &self,
        path: ObjectPath,
        kind: ActionKind,
        by: berth_cluster::UserRef,
    ) -> BoxFuture<'static, ActionOutcome> {
        let agent = self.0.clone();
        Box::pin(async move {
            let key = path.to_string();
            let Some(agent) = agent.upgrade() else {
                return ActionOutcome::failed(&key, "the daemon is shutting down");
            };
            agent
                .local_action(&by, &path, kind)
                .await
                .unwrap_or_else(|e| ActionOutcome::failed(&key, e))
        })
    }
}
