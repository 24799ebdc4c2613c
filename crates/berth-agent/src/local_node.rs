//! What the cluster may ask of this node: an object's settings, and an
//! action on this node's instance (`berth_cluster::LocalNode`).

use crate::agent::Agent;
use berth_cluster::{BoxFuture, LocalNode};
use berth_model::{ActionKind, ActionOutcome, ConfigDoc, ObjectPath, ObjectSettings};
use std::sync::Weak;

pub(crate) struct AgentNode(pub(crate) Weak<Agent>);

impl Agent {
    /// The settings of `path` with config `text`, resolved on this node.
    pub(crate) fn settings(&self, path: &ObjectPath, text: &str) -> Result<ObjectSettings, String> {
        let doc = ConfigDoc::parse(text).map_err(|e| format!("stored config: {e}"))?;
        let eff =
            berth_model::resolve(&doc, &self.registry, path, self.nodename()).map_err(|errs| {
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        berth_drivers::default::settings(&eff)
    }

    /// Each container resource's spec fingerprint, resolved here.
    pub(crate) fn spec_fingerprints(
        &self,
        path: &ObjectPath,
        text: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, String> {
        let doc = ConfigDoc::parse(text).map_err(|e| format!("stored config: {e}"))?;
        let eff =
            berth_model::resolve(&doc, &self.registry, path, self.nodename()).map_err(|errs| {
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })?;
        let id = eff.default.get_str("id").unwrap_or_default();
        eff.resources_of("container")
            .map(|s| {
                let c = berth_drivers::container_docker::ContainerResource::from_section(
                    path,
                    s,
                    id,
                    self.nodename(),
                )
                .map_err(|e| format!("{}: {e}", s.name))?;
                let spec = c
                    .spec
                    .labels
                    .get(berth_drivers::container_docker::LABEL_SPEC)
                    .cloned()
                    .unwrap_or_default();
                Ok((c.rid, spec))
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
        let doc = ConfigDoc::parse(text).map_err(|e| format!("stored config: {e}"))?;
        let eff = berth_model::resolve(&doc, &self.registry, path, node).map_err(|errs| {
            errs.iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })?;
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
