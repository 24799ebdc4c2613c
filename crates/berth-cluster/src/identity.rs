//! This node's membership, kept in `$BERTH_HOME/cluster/identity.json`
//! (mode 0600): its certificate and key, the CA it trusts, its Raft id and,
//! on managers, the key that opens the cluster's sealed secrets.
//!
//! No file means a standalone node.

use berth_model::cluster::NodeRole;
use berth_store::home::{atomic_write_private, Home};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::PermissionsExt;

#[derive(Clone, Serialize, Deserialize)]
pub struct Identity {
    pub cluster: String,
    pub cluster_id: String,
    pub node: String,
    pub node_id: u64,
    pub role: NodeRole,
    /// `host:port` this node listens on and peers dial.
    pub advertise: String,
    /// Which Raft file holds this membership's log (`Home::raft_file`).
    pub generation: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
    /// Managers only; in memory only once autolock is on.
    pub seal_key: Option<String>,
    /// With autolock: the seal key sealed with the unlock key, the only
    /// form the file holds. A manager that loads it is locked until
    /// `berth cluster unlock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_key_locked: Option<String>,
    /// With autolock, once unlocked: the unlock key (never written).
    #[serde(skip)]
    pub unlock_key: Option<String>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cluster", &self.cluster)
            .field("node", &self.node)
            .field("node_id", &self.node_id)
            .field("role", &self.role)
            .field("advertise", &self.advertise)
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn load(home: &Home) -> std::io::Result<Option<Identity>> {
        let path = home.identity_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the file atomically, readable by root only; with autolock,
    /// the seal key only sealed with the unlock key.
    pub fn save(&self, home: &Home) -> std::io::Result<()> {
        let path = home.identity_file();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let mut stored = self.clone();
        match (&self.unlock_key, &self.seal_key) {
            (Some(unlock), Some(seal)) => {
                let key = berth_net::SealKey::from_hex(unlock).map_err(std::io::Error::other)?;
                stored.seal_key_locked =
                    Some(key.seal(seal.as_bytes()).map_err(std::io::Error::other)?);
                stored.seal_key = None;
            }
            (None, Some(_)) => stored.seal_key_locked = None,
            _ => {}
        }
        let bytes = serde_json::to_vec_pretty(&stored).map_err(std::io::Error::other)?;
        atomic_write_private(&path, &bytes)
    }

    pub fn net(&self) -> berth_net::NodeIdentity {
        berth_net::NodeIdentity {
            node: self.node.clone(),
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
            ca_pem: self.ca_pem.clone(),
        }
    }

    /// A manager whose seal key waits for `berth cluster unlock`.
    pub fn is_locked(&self) -> bool {
        self.role == NodeRole::Manager && self.seal_key.is_none() && self.seal_key_locked.is_some()
    }

    pub fn seal_key(&self) -> Option<berth_net::SealKey> {
        self.seal_key
            .as_deref()
            .and_then(|k| berth_net::SealKey::from_hex(k).ok())
    }
}
