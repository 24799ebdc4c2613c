//! `cluster init`, `cluster join`, `cluster token`, and the manager side of
//! a join (`admit`).
//!
//! A join, step by step:
//! 1. the joiner fetches the CA certificate over an unverified TLS
//!    connection and checks it against the fingerprint its token pins;
//! 2. it sends the token over TLS verified against that CA; a manager
//!    checks the token, records the node and issues its certificate;
//! 3. the joiner swaps its (empty) standalone Raft state for a fresh one
//!    under the cluster's id, starts its listener, and asks the leader to
//!    add it to Raft: as a voter for a manager token, a learner otherwise.

use super::identity::Identity;
use super::records::{
    node_key, ClusterRecord, JoinReply, JoinRequest, MembershipOp, NodeRecord, NodeRole,
    CLUSTER_KEY,
};
use super::server;
use crate::agent::Agent;
use crate::error::AgentError;
use berth_model::status::Target;
use berth_net::{ClusterCa, JoinToken, Role, SealKey};
use berth_raft::RpcClient;
use berth_store::{put_json, Request};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOIN_TTL: Duration = Duration::from_secs(30);

/// What `cluster init` and `cluster join` report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub cluster: String,
    pub cluster_id: String,
    pub node: String,
    pub node_id: u64,
    pub role: NodeRole,
    pub advertise: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_token: Option<String>,
}

/// `ip:port`, not a wildcard: peers dial it and certificates name it.
fn check_advertise(addr: &str) -> Result<std::net::SocketAddr, AgentError> {
    let sa: std::net::SocketAddr = addr.parse().map_err(|_| {
        AgentError::BadInput(format!(
            "--advertise {addr:?}: expected an IP address and port, like 10.0.0.1:7946"
        ))
    })?;
    if sa.ip().is_unspecified() || sa.port() == 0 {
        return Err(AgentError::BadInput(format!(
            "--advertise {addr}: peers must be able to dial it; give this node's own address and a port"
        )));
    }
    Ok(sa)
}

fn now() -> String {
    crate::now_rfc3339()
}

impl Agent {
    fn ensure_standalone(&self) -> Result<(), AgentError> {
        if let Some(id) = self.cluster.identity() {
            return Err(AgentError::Conflict(format!(
                "this node is already {} of cluster {} ({})",
                id.role.as_str(),
                id.cluster,
                id.cluster_id
            )));
        }
        Ok(())
    }

    /// Makes this standalone node the first manager of a new cluster. Its
    /// objects and their running containers stay as they are.
    pub async fn cluster_init(
        self: &Arc<Self>,
        advertise: &str,
        name: Option<&str>,
    ) -> Result<ClusterSummary, AgentError> {
        let _guard = self.cluster_lock.lock().await;
        self.ensure_standalone()?;
        let sa = check_advertise(advertise)?;
        let node = self.nodename().to_string();
        let cluster = name.unwrap_or("berth").to_string();
        let cluster_id = uuid::Uuid::new_v4().to_string();
        let ca = ClusterCa::generate(&cluster)?;
        let seal = SealKey::generate()?;
        let worker = JoinToken::generate(&ca.fingerprint(), Role::Worker)?;
        let manager = JoinToken::generate(&ca.fingerprint(), Role::Manager)?;
        let cert = ca.issue(
            &node,
            Role::Manager,
            &[sa.ip().to_string()],
            berth_net::DEFAULT_NODE_CERT_VALIDITY,
        )?;
        let node_id = self.desired.node_id();
        // Peers must know where to reach this node before anyone joins.
        let raft = self.desired.raft();
        raft.change_membership(
            openraft::ChangeMembers::SetNodes(
                [(
                    node_id,
                    openraft::BasicNode {
                        addr: advertise.to_string(),
                    },
                )]
                .into(),
            ),
            false,
        )
        .await
        .map_err(|e| AgentError::Cluster(format!("raft membership: {e}")))?;
        let record = ClusterRecord {
            name: cluster.clone(),
            id: cluster_id.clone(),
            ca_cert_pem: ca.cert_pem().to_string(),
            ca_key_sealed: seal.seal(ca.key_pem().as_bytes())?,
            worker_token_sealed: seal.seal(worker.to_string().as_bytes())?,
            manager_token_sealed: seal.seal(manager.to_string().as_bytes())?,
            created: now(),
            ca_previous_pem: None,
        };
        let me = NodeRecord {
            name: node.clone(),
            id: node_id,
            addr: advertise.to_string(),
            role: NodeRole::Manager,
            labels: Default::default(),
            drain: false,
            frozen: false,
            ca: Some(ca.fingerprint()),
        };
        let mut batch = vec![
            put_json(CLUSTER_KEY, &record)?,
            put_json(&node_key(&node), &me)?,
        ];
        // What runs here keeps running here: place started objects on this node.
        for rec in self.desired.list()? {
            if rec.target == Target::Started && rec.placement.is_empty() {
                let mut fields = serde_json::Map::new();
                fields.insert("placement".into(), serde_json::json!([node.clone()]));
                batch.push(berth_store::patch(&rec.path, fields));
            }
        }
        self.desired.write(Request::Batch(batch)).await?;
        let id = Identity {
            cluster: cluster.clone(),
            cluster_id: cluster_id.clone(),
            node: node.clone(),
            node_id,
            role: NodeRole::Manager,
            advertise: advertise.to_string(),
            generation: crate::agent::standalone_generation(&self.opts.home),
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
            ca_pem: cert.ca_pem,
            seal_key: Some(seal.to_hex()),
        };
        self.become_member(id)?;
        self.events.emit(
            None,
            None,
            format!("cluster {cluster} initialized; this node is its first manager"),
            None,
        );
        Ok(ClusterSummary {
            cluster,
            cluster_id,
            node,
            node_id,
            role: NodeRole::Manager,
            advertise: advertise.to_string(),
            worker_token: Some(worker.to_string()),
            manager_token: Some(manager.to_string()),
        })
    }

    /// Saves the identity, arms TLS and starts the node listener.
    fn become_member(self: &Arc<Self>, id: Identity) -> Result<(), AgentError> {
        *self.cluster.tls.write().unwrap_or_else(|e| e.into_inner()) =
            Some(berth_net::client_config(&id.net())?);
        server::listen(self, &id)?;
        crate::durable(|| id.save(&self.opts.home))?;
        *self
            .cluster
            .identity
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(id);
        Ok(())
    }

    /// Joins the cluster a manager at `addr` belongs to.
    pub async fn cluster_join(
        self: &Arc<Self>,
        addr: &str,
        token: &str,
        advertise: &str,
    ) -> Result<ClusterSummary, AgentError> {
        let _guard = self.cluster_lock.lock().await;
        self.ensure_standalone()?;
        let sa = check_advertise(advertise)?;
        let token: JoinToken = token
            .parse()
            .map_err(|e: berth_net::NetError| AgentError::BadInput(e.to_string()))?;
        let objects = self.desired.list()?.len();
        if objects > 0 {
            return Err(AgentError::Conflict(format!(
                "this node has {objects} objects of its own; a node joins a cluster empty (delete them, or init a cluster here and join the others to it)"
            )));
        }
        let unreachable =
            |e: berth_raft::CallError| AgentError::Cluster(format!("joining through {addr}: {e}"));
        // 1. The CA, pinned by the token before anything secret is sent.
        let ca_pem: String =
            RpcClient::with_config(addr.to_string(), berth_net::unverified_client_config()?)
                .call(server::PATH_CA, &(), JOIN_TTL)
                .await
                .map_err(unreachable)?;
        token
            .pins(&ca_pem)
            .map_err(|e| AgentError::Forbidden(e.to_string()))?;
        // 2. Admission, over TLS verified against the pinned CA.
        let key = berth_net::NodeKey::generate(self.nodename())?;
        let req = JoinRequest {
            token: token.to_string(),
            node: self.nodename().to_string(),
            advertise: sa.to_string(),
            csr: key.csr_pem,
        };
        let reply: JoinReply =
            RpcClient::with_config(addr.to_string(), berth_net::ca_only_client_config(&ca_pem)?)
                .call(server::PATH_JOIN, &req, JOIN_TTL)
                .await
                .map_err(|e| match e {
                    berth_raft::CallError::Exchange(m) if m.contains("403") => {
                        AgentError::Forbidden(format!("{addr} refused the join: {m}"))
                    }
                    e => unreachable(e),
                })?;
        token.pins(&reply.ca_pem).map_err(|_| {
            AgentError::Forbidden(
                "the manager answered with another CA than the one the token pins".into(),
            )
        })?;
        // 3. A fresh Raft state under the cluster's id, then membership.
        let id = Identity {
            cluster: reply.cluster.clone(),
            cluster_id: reply.cluster_id.clone(),
            node: req.node.clone(),
            node_id: reply.node_id,
            role: reply.role,
            advertise: req.advertise.clone(),
            generation: reply.cluster_id.clone(),
            cert_pem: reply.cert_pem,
            key_pem: key.key_pem,
            ca_pem: reply.ca_pem,
            seal_key: reply.seal_key,
        };
        self.desired
            .rejoin(&self.opts.home.raft_file(&id.generation), id.node_id, false)
            .await?;
        self.become_member(id.clone())?;
        let _: () = self
            .cluster
            .call(
                addr,
                server::PATH_MEMBERSHIP,
                &MembershipOp::Add {
                    node: id.node.clone(),
                },
            )
            .await?;
        // Done once this node's own record reached its replica.
        let deadline = Instant::now() + JOIN_TTL;
        while self
            .desired
            .get_json::<NodeRecord>(&node_key(&id.node))?
            .is_none()
        {
            if Instant::now() > deadline {
                return Err(AgentError::Cluster(
                    "joined, but the cluster state did not replicate here within 30 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        berth_store::remove_raft_file(
            &self
                .opts
                .home
                .raft_file(&crate::agent::standalone_generation(&self.opts.home)),
        );
        self.events.emit(
            None,
            None,
            format!(
                "joined cluster {} as {} (node id {})",
                id.cluster,
                id.role.as_str(),
                id.node_id
            ),
            None,
        );
        Ok(ClusterSummary {
            cluster: id.cluster,
            cluster_id: id.cluster_id,
            node: id.node,
            node_id: id.node_id,
            role: id.role,
            advertise: id.advertise,
            worker_token: None,
            manager_token: None,
        })
    }

    /// Leaves the cluster: the leader removes this node, whose services move
    /// elsewhere; this node then stops its instances and is standalone again,
    /// with no objects. The last member dissolves the cluster instead and
    /// keeps its objects.
    pub async fn cluster_leave(self: &Arc<Self>) -> Result<String, AgentError> {
        let _guard = self.cluster_lock.lock().await;
        let me = self
            .cluster
            .identity()
            .ok_or_else(|| AgentError::Conflict("this node is not in a cluster".into()))?;
        let members = self.node_records();
        let alone = members.iter().all(|n| n.name == me.node);
        if alone {
            self.desired
                .write(Request::Batch(vec![
                    Request::Delete {
                        key: CLUSTER_KEY.into(),
                    },
                    Request::Delete {
                        key: node_key(&me.node),
                    },
                ]))
                .await?;
        } else {
            let membership = self.desired.membership();
            if membership.voters.len() == 1 && membership.voters.contains(&me.node_id) {
                return Err(AgentError::Conflict(
                    "this node is the cluster's only manager: promote another node first".into(),
                ));
            }
            let op = MembershipOp::Remove {
                node: me.node.clone(),
            };
            let (_, addr) = self
                .desired
                .leader()
                .ok_or_else(|| AgentError::Cluster("no leader is known right now; retry".into()))?;
            if self.desired.is_leader() {
                super::admin::apply_membership(self, me.role.net(), &me.node, op).await?;
            } else {
                let _: () = self
                    .cluster
                    .call(&addr, server::PATH_MEMBERSHIP, &op)
                    .await?;
            }
            // A fresh, empty standalone state: the monitors find their
            // objects gone and remove this node's containers.
            let generation = format!("local-{}", uuid::Uuid::new_v4());
            self.desired
                .rejoin(
                    &self.opts.home.raft_file(&generation),
                    berth_store::FIRST_ID,
                    true,
                )
                .await?;
            berth_store::remove_raft_file(&self.opts.home.raft_file(&me.generation));
            crate::durable(|| {
                crate::home::atomic_write(
                    &self.opts.home.root.join("cluster").join("standalone"),
                    generation.as_bytes(),
                )
            })?;
        }
        crate::durable(|| std::fs::remove_file(super::identity::file(&self.opts.home)))?;
        *self
            .cluster
            .identity
            .write()
            .unwrap_or_else(|e| e.into_inner()) = None;
        *self.cluster.tls.write().unwrap_or_else(|e| e.into_inner()) = None;
        // Standalone, nothing is fenced: a dissolved cluster's last member
        // keeps its services running.
        self.cluster.watchdog.disarm();
        self.cluster.stop_listener();
        let msg = format!("left cluster {}; this node is standalone", me.cluster);
        self.events.emit(None, None, msg.clone(), None);
        Ok(msg)
    }

    /// The join token for `role`, rotated first with `rotate`. Managers only:
    /// tokens are sealed with their key.
    pub async fn cluster_token(&self, role: NodeRole, rotate: bool) -> Result<String, AgentError> {
        let (rec, seal) = self.manager_secrets()?;
        let field = match role {
            NodeRole::Worker => "worker_token_sealed",
            NodeRole::Manager => "manager_token_sealed",
        };
        if rotate {
            let fresh =
                JoinToken::generate(&berth_net::fingerprint_pem(&rec.ca_cert_pem)?, role.net())?;
            let mut fields = serde_json::Map::new();
            fields.insert(
                field.into(),
                seal.seal(fresh.to_string().as_bytes())?.into(),
            );
            self.desired
                .write(Request::Patch {
                    key: CLUSTER_KEY.into(),
                    fields,
                })
                .await?;
            self.events.emit(
                None,
                None,
                format!(
                    "{} join token rotated; the old one is refused from now on",
                    role.as_str()
                ),
                None,
            );
            return Ok(fresh.to_string());
        }
        let sealed = match role {
            NodeRole::Worker => &rec.worker_token_sealed,
            NodeRole::Manager => &rec.manager_token_sealed,
        };
        String::from_utf8(seal.open(sealed)?)
            .map_err(|_| AgentError::Cluster("the stored token is not text".into()))
    }

    /// Replaces the cluster CA. Nodes keep trusting the previous CA until
    /// every one of them has renewed its certificate from the new one, so
    /// no connection breaks and nothing restarts. Join tokens pin the CA:
    /// both are replaced, and returned.
    pub async fn cluster_ca_rotate(&self) -> Result<ClusterSummary, AgentError> {
        let _guard = self.cluster_lock.lock().await;
        let (rec, seal) = self.manager_secrets()?;
        if rec.ca_previous_pem.is_some() {
            return Err(AgentError::Conflict(
                "a CA rotation is still under way: some nodes have not renewed yet (see `berth cluster status`)".into(),
            ));
        }
        let me = self
            .cluster
            .identity()
            .ok_or_else(|| AgentError::Conflict("this node is not in a cluster".into()))?;
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
        self.desired.write(put_json(CLUSTER_KEY, &next)?).await?;
        self.events.emit(
            None,
            None,
            format!(
                "cluster CA rotated (new fingerprint {}); nodes renew their certificates, old join tokens are refused",
                ca.fingerprint()
            ),
            None,
        );
        Ok(ClusterSummary {
            cluster: next.name,
            cluster_id: next.id,
            node: me.node,
            node_id: me.node_id,
            role: me.role,
            advertise: me.advertise,
            worker_token: Some(worker.to_string()),
            manager_token: Some(manager.to_string()),
        })
    }

    /// The cluster record and the key that opens its secrets.
    pub(crate) fn manager_secrets(&self) -> Result<(ClusterRecord, SealKey), AgentError> {
        let id = self.cluster.identity().ok_or_else(|| {
            AgentError::Conflict(
                "this node is not in a cluster; run `berth cluster init` first".into(),
            )
        })?;
        let seal = id.seal_key().ok_or_else(|| {
            AgentError::Forbidden(
                "only managers hold the cluster's secrets; run this on a manager".into(),
            )
        })?;
        let rec = self.cluster_record().ok_or_else(|| {
            AgentError::Cluster("the cluster record has not replicated here yet".into())
        })?;
        Ok((rec, seal))
    }
}

/// A manager's side of a join: checks the token, records the node and
/// issues its certificate.
pub(crate) async fn admit(agent: &Arc<Agent>, req: JoinRequest) -> Result<JoinReply, AgentError> {
    let (rec, seal) = agent.manager_secrets()?;
    let presented: JoinToken = req
        .token
        .parse()
        .map_err(|e: berth_net::NetError| AgentError::Forbidden(e.to_string()))?;
    let mut role = None;
    for (r, sealed) in [
        (NodeRole::Worker, &rec.worker_token_sealed),
        (NodeRole::Manager, &rec.manager_token_sealed),
    ] {
        let current: JoinToken = String::from_utf8(seal.open(sealed)?)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| AgentError::Cluster("a stored join token is unreadable".into()))?;
        if current.admits(&presented) {
            role = Some(r);
        }
    }
    let Some(role) = role else {
        tracing::warn!(
            "refused a join from {:?} ({}): invalid or rotated token",
            req.node,
            req.advertise
        );
        return Err(AgentError::Forbidden(
            "the join token is not valid (rotated, or for another cluster)".into(),
        ));
    };
    let sa = check_advertise(&req.advertise)?;
    let nodes = agent.node_records();
    if let Some(n) = nodes
        .iter()
        .find(|n| n.addr == req.advertise && n.name != req.node)
    {
        return Err(AgentError::Conflict(format!(
            "{} is already the address of node {}",
            req.advertise, n.name
        )));
    }
    let existing = nodes.iter().find(|n| n.name == req.node);
    let membership = agent.desired.membership();
    let id = match existing {
        Some(n) => n.id,
        None => {
            nodes
                .iter()
                .map(|n| n.id)
                .chain(membership.nodes.keys().copied())
                .max()
                .unwrap_or(0)
                + 1
        }
    };
    let ca = rec.ca(&seal)?;
    let cert_pem = ca
        .issue_for(
            &req.node,
            role.net(),
            &[sa.ip().to_string()],
            berth_net::DEFAULT_NODE_CERT_VALIDITY,
            &req.csr,
        )
        .map_err(|e| AgentError::BadInput(e.to_string()))?;
    let record = NodeRecord {
        name: req.node.clone(),
        id,
        addr: req.advertise.clone(),
        role,
        labels: existing.map(|n| n.labels.clone()).unwrap_or_default(),
        drain: false,
        frozen: false,
        ca: Some(ca.fingerprint()),
    };
    agent
        .desired
        .write(put_json(&node_key(&req.node), &record)?)
        .await?;
    agent.events.emit(
        None,
        None,
        format!("node {} admitted as {} (id {id})", req.node, role.as_str()),
        None,
    );
    let bundle = rec.trust_bundle();
    Ok(JoinReply {
        cluster: rec.name,
        cluster_id: rec.id,
        node_id: id,
        role,
        cert_pem,
        ca_pem: bundle,
        seal_key: (role == NodeRole::Manager).then(|| seal.to_hex()),
    })
}
