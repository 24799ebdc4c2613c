//! Desired state, replicated through Raft.
//!
//! Not wired into the agent yet, which still uses [`crate::Store`]'s
//! objects table: see `design/raft-desired-state.md` for why (openraft's
//! memory cost on a standalone node) and how the switch was proven.
//!
//! Each object's [`ObjectRecord`] is a JSON value under `obj/<path>` in the
//! Raft state machine. Reads are local; writes go through the Raft log, so
//! they are durable on a quorum before they return. A single node is a
//! one-member cluster on this same path.
//!
//! Architecture invariant: writers change only their own fields (`Patch`),
//! so an action and an edit racing each other never undo one another.

use crate::{ObjectRecord, StoreError};
use berth_model::status::Target;
use berth_raft::{NoPeers, RaftNode, Request, Response, StateMachine};
use openraft::{BasicNode, Config};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PREFIX: &str = "obj/";
/// The node id of a standalone node (a cluster of one).
const SOLO_ID: u64 = 1;
/// How long a write may wait for a leader before it fails.
const WRITE_WAIT: Duration = Duration::from_secs(15);

fn key(path: &str) -> String {
    format!("{PREFIX}{path}")
}

pub struct Desired {
    raft: RaftNode,
    sm: StateMachine,
}

fn raft_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(format!("raft: {e}"))
}

impl Desired {
    /// Opens the Raft storage at `path` as a standalone node, initializing a
    /// cluster of one on first use, and waits until it leads.
    pub async fn open_standalone(path: &Path) -> Result<Desired, StoreError> {
        let (log, sm) = berth_raft::open(path).map_err(|e| StoreError::Db(e.to_string()))?;
        let config = Config {
            cluster_name: "berth".into(),
            heartbeat_interval: 100,
            election_timeout_min: 200,
            election_timeout_max: 400,
            // openraft sizes several queues up front from these; its defaults
            // (64 Ki entries) cost tens of MB of RSS on every node.
            api_channel_size: Some(1024),
            api_batch_capacity: 256,
            notification_channel_size: Some(1024),
            state_machine_channel_size: Some(256),
            ..Default::default()
        }
        .validate()
        .map_err(raft_err)?;
        let raft = RaftNode::new(SOLO_ID, Arc::new(config), NoPeers, log, sm.clone())
            .await
            .map_err(raft_err)?;
        if !raft.is_initialized().await.map_err(raft_err)? {
            let members = BTreeMap::from([(
                SOLO_ID,
                BasicNode {
                    addr: String::new(),
                },
            )]);
            raft.initialize(members).await.map_err(raft_err)?;
        }
        let d = Desired { raft, sm };
        d.wait_leader().await?;
        Ok(d)
    }

    /// Stops the Raft core, releasing the storage file.
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }

    async fn wait_leader(&self) -> Result<(), StoreError> {
        let deadline = Instant::now() + WRITE_WAIT;
        while self.raft.current_leader().await.is_none() {
            if Instant::now() > deadline {
                return Err(StoreError::Db("raft: no leader elected".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Proposes `req` and waits until it is committed and applied.
    async fn write(&self, req: Request) -> Result<Response, StoreError> {
        let deadline = Instant::now() + WRITE_WAIT;
        loop {
            match self.raft.client_write(req.clone()).await {
                Ok(r) => return Ok(r.data),
                Err(e) if Instant::now() < deadline && e.forward_to_leader().is_some() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(raft_err(e)),
            }
        }
    }

    pub fn get(&self, path: &str) -> Result<Option<ObjectRecord>, StoreError> {
        match self
            .sm
            .get(&key(path))
            .map_err(|e| StoreError::Db(e.to_string()))?
        {
            Some(v) => Ok(Some(decode(path, &v)?)),
            None => Ok(None),
        }
    }

    pub fn list(&self) -> Result<Vec<ObjectRecord>, StoreError> {
        Ok(self.list_checked()?.0)
    }

    /// Every record; one that does not decode is skipped and reported.
    pub fn list_checked(&self) -> Result<(Vec<ObjectRecord>, Vec<StoreError>), StoreError> {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for (k, v) in self
            .sm
            .list(PREFIX)
            .map_err(|e| StoreError::Db(e.to_string()))?
        {
            match decode(&k[PREFIX.len()..], &v) {
                Ok(r) => ok.push(r),
                Err(e) => bad.push(e),
            }
        }
        Ok((ok, bad))
    }

    pub async fn put(&self, rec: &ObjectRecord) -> Result<(), StoreError> {
        self.write(put(rec)?).await.map(|_| ())
    }

    pub async fn delete(&self, path: &str) -> Result<bool, StoreError> {
        let r = self.write(Request::Delete { key: key(path) }).await?;
        Ok(r.previous.is_some())
    }

    /// Sets the target (when given) and the frozen flag of one object, and
    /// returns the record as it now is.
    pub async fn set_target(
        &self,
        path: &str,
        target: Option<Target>,
        frozen: bool,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        let mut fields = serde_json::Map::new();
        if let Some(t) = target {
            fields.insert("target".into(), serde_json::to_value(t)?);
        }
        fields.insert("frozen".into(), serde_json::Value::Bool(frozen));
        self.write(Request::Patch {
            key: key(path),
            fields,
        })
        .await?;
        self.get(path)
    }

    /// Sets the config text of several objects in one entry: all or none.
    pub async fn set_configs(&self, configs: &[(String, String)]) -> Result<(), StoreError> {
        let reqs = configs
            .iter()
            .map(|(path, text)| {
                let mut fields = serde_json::Map::new();
                fields.insert("config".into(), serde_json::Value::String(text.clone()));
                Request::Patch {
                    key: key(path),
                    fields,
                }
            })
            .collect();
        self.write(Request::Batch(reqs)).await.map(|_| ())
    }
}

fn put(rec: &ObjectRecord) -> Result<Request, StoreError> {
    Ok(Request::Put {
        key: key(&rec.path),
        value: serde_json::to_string(rec)?,
    })
}

fn decode(path: &str, text: &str) -> Result<ObjectRecord, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Decode {
        key: path.to_string(),
        source: e,
    })
}
