//! The values of `sec` and `cfg` objects. A secret's value is sealed with
//! XChaCha20-Poly1305 under the cluster's data key on the manager that
//! receives it, so only ciphertext enters a command, the Raft log and the
//! snapshots; the data key itself is stored sealed with the managers' seal
//! key. Workers hold neither key: a worker asks the leader for a value
//! when an instance it runs needs it (`/node/v1/value`, over mTLS), and the
//! leader delivers it only to a node its placement names, for a service
//! whose config takes that very key.

use crate::command::{AuthOp, Command, SecretOp, UserRef};
use crate::{Cluster, ClusterError};
use base64::Engine;
use berth_auth::secret::{
    aad, check_key_name, values_prefix, DataKey, SealedDataKey, StoredValue, DATA_KEY,
};
use berth_auth::Action;
use berth_model::{Kind, ObjectPath};

/// A node's request for a value one of its instances takes.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ValueRequest {
    /// The service whose instance takes it.
    pub service: String,
    /// The `sec` or `cfg` object.
    pub from: String,
    pub key: String,
}

/// A delivered value, as it travels back over the node protocol.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DeliveredValue {
    pub version: u64,
    /// Base64.
    pub value: String,
}

/// One key of a `sec` or `cfg` object, as `keys` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyInfo {
    pub key: String,
    pub version: u64,
    pub size: usize,
}

fn bad(m: impl Into<String>) -> ClusterError {
    ClusterError::BadInput(m.into())
}

fn holder(path: &str) -> Result<(ObjectPath, bool), ClusterError> {
    let p: ObjectPath = path.parse().map_err(|e| bad(format!("{path}: {e}")))?;
    match p.kind {
        Kind::Sec => Ok((p, true)),
        Kind::Cfg => Ok((p, false)),
        _ => Err(bad(format!(
            "{p} is no sec or cfg object (<ns>/sec/<name>, <ns>/cfg/<name>)"
        ))),
    }
}

impl Cluster {
    /// The data key: opened with this manager's seal key, made and
    /// published the first time it is needed.
    async fn data_key(&self) -> Result<DataKey, ClusterError> {
        if !self.is_clustered() {
            return Err(ClusterError::Conflict(
                "secrets need a cluster: run `berth cluster init` first".into(),
            ));
        }
        let seal = self.seal()?;
        if let Some(stored) = self.desired.get_json::<SealedDataKey>(DATA_KEY)? {
            let raw = seal.open(&stored.sealed)?;
            return DataKey::from_bytes(&raw)
                .ok_or_else(|| ClusterError::Conflict("the stored data key is damaged".into()));
        }
        let key = DataKey::generate();
        let sealed = seal.seal(key.as_bytes())?;
        self.auth_submit(
            &self.local_user(),
            AuthOp::DataKey(SealedDataKey { sealed }),
        )
        .await?;
        // Another manager may have published its own first: use the stored one.
        let stored = self
            .desired
            .get_json::<SealedDataKey>(DATA_KEY)?
            .ok_or_else(|| ClusterError::Conflict("the data key did not persist".into()))?;
        DataKey::from_bytes(&seal.open(&stored.sealed)?)
            .ok_or_else(|| ClusterError::Conflict("the stored data key is damaged".into()))
    }

    pub(crate) fn stored_value(
        &self,
        path: &str,
        key: &str,
    ) -> Result<Option<StoredValue>, ClusterError> {
        Ok(self
            .desired
            .get_json(&berth_auth::secret::value_key(path, key))?)
    }

    /// Adds a key (`change` false: it must not exist) or writes a new
    /// version of one (`change` true: it must exist). Returns the version.
    pub async fn secret_put(
        &self,
        by: &UserRef,
        path: &str,
        key: &str,
        value: Vec<u8>,
        change: bool,
    ) -> Result<u64, ClusterError> {
        let (p, sealed) = holder(path)?;
        let path = p.to_string();
        check_key_name(key).map_err(|e| bad(e.to_string()))?;
        if value.len() > berth_auth::secret::MAX_VALUE {
            return Err(bad(
                berth_auth::secret::SecretError::TooLarge(value.len()).to_string()
            ));
        }
        if self.desired.get(&path)?.is_none() {
            return Err(ClusterError::NotFound(format!("{path}: no such object")));
        }
        let action = if sealed {
            Action::ManageSecret
        } else {
            Action::Set
        };
        self.authorize(by, &path, action)?;
        let old = self.stored_value(&path, key)?;
        let version = match (&old, change) {
            (Some(_), false) => {
                return Err(ClusterError::Conflict(format!(
                    "{path} already has key {key}: `change` writes a new version"
                )))
            }
            (None, true) => {
                return Err(ClusterError::NotFound(format!(
                    "{path} has no key {key}: `add` it"
                )))
            }
            (Some(o), true) => o.version + 1,
            (None, false) => 1,
        };
        let size = value.len();
        let stored = if sealed {
            self.data_key()
                .await?
                .seal(&aad(&path, key, version), &value)
                .map_err(|e| bad(e.to_string()))?
        } else {
            base64::engine::general_purpose::STANDARD.encode(&value)
        };
        self.submit(Command::Secret {
            by: by.clone(),
            op: SecretOp::Put {
                path,
                key: key.into(),
                value: StoredValue {
                    version,
                    value: stored,
                    size,
                },
            },
        })
        .await?;
        Ok(version)
    }

    pub async fn secret_remove(
        &self,
        by: &UserRef,
        path: &str,
        key: &str,
    ) -> Result<(), ClusterError> {
        let (p, _) = holder(path)?;
        let path = p.to_string();
        check_key_name(key).map_err(|e| bad(e.to_string()))?;
        if self.stored_value(&path, key)?.is_none() {
            return Err(ClusterError::NotFound(format!("{path} has no key {key}")));
        }
        self.submit(Command::Secret {
            by: by.clone(),
            op: SecretOp::Remove {
                path,
                key: key.into(),
            },
        })
        .await
        .map(|_| ())
    }

    /// The keys of an object, with their versions and sizes: never values.
    pub fn secret_keys(&self, by: &UserRef, path: &str) -> Result<Vec<KeyInfo>, ClusterError> {
        let (p, _) = holder(path)?;
        let path = p.to_string();
        self.authorize(by, &path, Action::Read)?;
        self.stored_keys(&path)
    }

    pub(crate) fn stored_keys(&self, path: &str) -> Result<Vec<KeyInfo>, ClusterError> {
        let prefix = values_prefix(path);
        Ok(self
            .desired
            .scan_raw(&prefix)?
            .into_iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix(&prefix)?.to_string();
                let s: StoredValue = serde_json::from_str(&v).ok()?;
                Some(KeyInfo {
                    key,
                    version: s.version,
                    size: s.size,
                })
            })
            .collect())
    }

    /// A key's value, for `by` (a secret's needs the right to decode it).
    pub async fn secret_decode(
        &self,
        by: &UserRef,
        path: &str,
        key: &str,
    ) -> Result<Vec<u8>, ClusterError> {
        let (p, sealed) = holder(path)?;
        let path = p.to_string();
        let action = if sealed {
            Action::DecodeSecret
        } else {
            Action::Read
        };
        self.authorize(by, &path, action)?;
        self.value(&path, key).await
    }

    async fn value(&self, path: &str, key: &str) -> Result<Vec<u8>, ClusterError> {
        self.open_value(path, key).await.map(|(_, v)| v)
    }

    /// The value `service`'s instance on this node takes, and its version:
    /// opened here on a manager, asked of the leader on a worker.
    pub async fn deliver(
        &self,
        service: &ObjectPath,
        from: &ObjectPath,
        key: &str,
    ) -> Result<(u64, Vec<u8>), ClusterError> {
        // A manager opens a secret itself (a locked one says so); `cfg`
        // values are plain.
        let worker = self
            .identity()
            .is_some_and(|i| i.role == berth_model::cluster::NodeRole::Worker);
        if from.kind == Kind::Cfg || !worker {
            return self.open_value(&from.to_string(), key).await;
        }
        let addr = self.leader_addr()?;
        let req = ValueRequest {
            service: service.to_string(),
            from: from.to_string(),
            key: key.into(),
        };
        let got: DeliveredValue = self.call(&addr, crate::server::PATH_VALUE, &req).await?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&got.value)
            .map_err(|e| ClusterError::Conflict(format!("{from} key {key}: {e}")))?;
        Ok((got.version, raw))
    }

    /// The leader's side of [`Cluster::deliver`]: `caller` gets the value
    /// only if the placement of the service names it and the service's
    /// config, resolved on that node, takes the key.
    pub(crate) async fn serve_value(
        &self,
        caller: &crate::command::Caller,
        req: ValueRequest,
    ) -> Result<DeliveredValue, ClusterError> {
        let by = UserRef::user_on(&format!("node:{}", caller.node), &caller.node);
        let what = format!("{} key {}", req.from, req.key);
        let refuse = |why: String| {
            self.record_refusal(&by, &req.from, "deliver", &why);
            ClusterError::Forbidden(why)
        };
        let service: ObjectPath = req
            .service
            .parse()
            .map_err(|e| bad(format!("{}: {e}", req.service)))?;
        let from: ObjectPath = req
            .from
            .parse()
            .map_err(|e| bad(format!("{}: {e}", req.from)))?;
        let Some(rec) = self.desired.get(&service.to_string())? else {
            return Err(refuse(format!("{service}: no such object")));
        };
        if !rec.placement.contains(&caller.node) {
            return Err(refuse(format!(
                "{what}: {service} is not placed on {}",
                caller.node
            )));
        }
        let used = self
            .local()?
            .values_used(&service, &rec.config, &caller.node)
            .map_err(|e| refuse(format!("{service}: {e}")))?;
        if !used.iter().any(|(p, k)| *p == from && *k == req.key) {
            return Err(refuse(format!("{what}: {service} does not take it")));
        }
        let (version, raw) = self.open_value(&from.to_string(), &req.key).await?;
        Ok(DeliveredValue {
            version,
            value: base64::engine::general_purpose::STANDARD.encode(raw),
        })
    }

    /// A stored value, opened, with its version.
    async fn open_value(&self, path: &str, key: &str) -> Result<(u64, Vec<u8>), ClusterError> {
        let (_, sealed) = holder(path)?;
        let s = self
            .stored_value(path, key)?
            .ok_or_else(|| ClusterError::NotFound(format!("{path} has no key {key}")))?;
        let raw = if sealed {
            self.data_key()
                .await?
                .open(&aad(path, key, s.version), &s.value)
                .map_err(|e| ClusterError::Conflict(format!("{path} key {key}: {e}")))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(&s.value)
                .map_err(|e| ClusterError::Conflict(format!("{path} key {key}: {e}")))?
        };
        Ok((s.version, raw))
    }

    /// Removes every value of an object about to be deleted, so that a
    /// new object of the same name starts empty.
    pub async fn secret_forget(&self, by: &UserRef, path: &ObjectPath) -> Result<(), ClusterError> {
        if !matches!(path.kind, Kind::Sec | Kind::Cfg) {
            return Ok(());
        }
        let path = path.to_string();
        let ops: Vec<Command> = self
            .stored_keys(&path)?
            .into_iter()
            .map(|k| Command::Secret {
                by: by.clone(),
                op: SecretOp::Remove {
                    path: path.clone(),
                    key: k.key,
                },
            })
            .collect();
        if ops.is_empty() {
            return Ok(());
        }
        self.submit(Command::All(ops)).await.map(|_| ())
    }
}
