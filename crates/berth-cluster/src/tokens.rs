//! The cluster's secrets: join tokens and the CA, sealed in desired state
//! with a key only managers hold.

use crate::command::{ClusterWrite, Command, UserRef};
use crate::records::{net_role, ClusterPatch, ClusterRecord};
use crate::{Cluster, ClusterError};
use berth_model::cluster::{ClusterSummary, NodeRole};
use berth_net::{ClusterCa, JoinToken, Role, SealKey};

impl Cluster {
    /// The join token for `role`, rotated first with `rotate`. Managers only:
    /// tokens are sealed with their key.
    pub async fn token(
        &self,
        by: &UserRef,
        role: NodeRole,
        rotate: bool,
    ) -> Result<String, ClusterError> {
        let (rec, seal) = self.manager_secrets()?;
        if rotate {
            let fresh = JoinToken::generate(
                &berth_net::fingerprint_pem(&rec.ca_cert_pem)?,
                net_role(role),
            )?;
            let sealed = seal.seal(fresh.to_string().as_bytes())?;
            let patch = match role {
                NodeRole::Worker => ClusterPatch {
                    worker_token_sealed: Some(sealed),
                    ..Default::default()
                },
                NodeRole::Manager => ClusterPatch {
                    manager_token_sealed: Some(sealed),
                    ..Default::default()
                },
            };
            let change = Command::Cluster(ClusterWrite::Patch(patch));
            let action = format!("{} join token rotate", role.as_str());
            self.administer(by, &action, "cluster", Some(change))
                .await?;
            self.emit(format!(
                "{} join token rotated; the old one is refused from now on",
                role.as_str()
            ));
            return Ok(fresh.to_string());
        }
        let sealed = match role {
            NodeRole::Worker => &rec.worker_token_sealed,
            NodeRole::Manager => &rec.manager_token_sealed,
        };
        String::from_utf8(seal.open(sealed)?)
            .map_err(|_| ClusterError::Conflict("the stored token is not text".into()))
    }

    /// Replaces the cluster CA. Nodes keep trusting the previous CA until
    /// every one of them has renewed its certificate from the new one, so
    /// no connection breaks and nothing restarts. Join tokens pin the CA:
    /// both are replaced, and returned.
    pub async fn ca_rotate(&self, by: &UserRef) -> Result<ClusterSummary, ClusterError> {
        let _guard = self.membership_lock.lock().await;
        let (rec, seal) = self.manager_secrets()?;
        if rec.ca_previous_pem.is_some() {
            return Err(ClusterError::Conflict(
                "a CA rotation is still under way: some nodes have not renewed yet (see `berth cluster status`)".into(),
            ));
        }
        let me = self
            .identity()
            .ok_or_else(|| ClusterError::Conflict("this node is not in a cluster".into()))?;
        let ca = ClusterCa::generate(&rec.name)?;
        let worker = JoinToken::generate(&ca.fingerprint(), Role::Worker)?;
        let manager = JoinToken::generate(&ca.fingerprint(), Role::Manager)?;
        let next = ClusterRecord {
            ca_cert_pem: ca.cert_pem().to_string(),
            ca_key_sealed: seal.seal(ca.key_pem().as_bytes())?,
            worker_token_sealed: seal.seal(worker.to_string().as_bytes())?,
            manager_token_sealed: seal.seal(manager.to_string().as_bytes())?,
            ca_previous_pem: Some(rec.ca_cert_pem.clone()),
            ..rec
        };
        let (name, id) = (next.name.clone(), next.id.clone());
        let change = Command::Cluster(ClusterWrite::Put(Box::new(next)));
        self.administer(by, "ca rotate", "cluster", Some(change))
            .await?;
        self.emit(format!(
            "cluster CA rotated (new fingerprint {}); nodes renew their certificates, old join tokens are refused",
            ca.fingerprint()
        ));
        Ok(ClusterSummary {
            cluster: name,
            cluster_id: id,
            node: me.node,
            node_id: me.node_id,
            role: me.role,
            advertise: me.advertise,
            worker_token: Some(worker.to_string()),
            manager_token: Some(manager.to_string()),
        })
    }

    /// The cluster record and the key that opens its secrets.
    pub(crate) fn manager_secrets(&self) -> Result<(ClusterRecord, SealKey), ClusterError> {
        let seal = self.seal()?;
        let rec = self.cluster_record().ok_or_else(|| {
            ClusterError::NoLeader(Some(
                "the cluster record has not replicated here yet".into(),
            ))
        })?;
        Ok((rec, seal))
    }
}
