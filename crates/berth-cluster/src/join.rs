//! `cluster init`, `cluster join`, `cluster leave`, and the manager side of
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

use crate::address;
use crate::command::{ClusterWrite, Command, NodeWrite, Placement};
use crate::identity::Identity;
use crate::records::{net_role, ClusterRecord, JoinReply, JoinRequest, MembershipOp};
use crate::renew::durable;
use crate::{server, Cluster, ClusterError};
use berth_model::cluster::{ClusterSummary, NodeRecord, NodeRole, NodeState};
use berth_model::status::Target;
use berth_net::{ClusterCa, JoinToken, Role, SealKey};
use berth_raft::RpcClient;
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOIN_TTL: Duration = Duration::from_secs(30);

fn summary(id: &Identity, tokens: Option<(String, String)>) -> ClusterSummary {
    let (worker_token, manager_token) = tokens.unzip();
    ClusterSummary {
        cluster: id.cluster.clone(),
        cluster_id: id.cluster_id.clone(),
        node: id.node.clone(),
        node_id: id.node_id,
        role: id.role,
        advertise: id.advertise.clone(),
        worker_token,
        manager_token,
    }
}

impl Cluster {
    fn ensure_standalone(&self) -> Result<(), ClusterError> {
        if let Some(id) = self.identity() {
            return Err(ClusterError::Conflict(format!(
                "this node is already {} of cluster {} ({})",
                id.role.as_str(),
                id.cluster,
                id.cluster_id
            )));
        }
        Ok(())
    }

    /// Makes this standalone node the first manager of a new cluster. Its
    /// objects and their running containers stay as they are. Without
    /// `advertise`, the node advertises its default route's address.
    pub async fn init(
        self: &Arc<Self>,
        advertise: Option<&str>,
        name: Option<&str>,
    ) -> Result<ClusterSummary, ClusterError> {
        let _guard = self.membership_lock.lock().await;
        self.ensure_standalone()?;
        let sa = match advertise {
            Some(a) => address::check(a)?,
            None => address::default_route()?,
        };
        let advertise = sa.to_string();
        let node = self.nodename().to_string();
        let cluster = name.unwrap_or("berth").to_string();
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
        // The listener first: a bad address fails the init before anything
        // is written.
        let id = Identity {
            cluster: cluster.clone(),
            cluster_id: uuid::Uuid::new_v4().to_string(),
            node: node.clone(),
            node_id,
            role: NodeRole::Manager,
            advertise: advertise.clone(),
            generation: self.opts.home.standalone_generation(),
            cert_pem: cert.cert_pem,
            key_pem: cert.key_pem,
            ca_pem: cert.ca_pem,
            seal_key: Some(seal.to_hex()),
            seal_key_locked: None,
            unlock_key: None,
        };
        server::listen(self, &id)?;
        // Peers must know where to reach this node before anyone joins.
        let raft = self.desired.raft();
        let set = openraft::ChangeMembers::SetNodes(
            [(
                node_id,
                openraft::BasicNode {
                    addr: advertise.clone(),
                },
            )]
            .into(),
        );
        if let Err(e) = raft.change_membership(set, false).await {
            self.listener.stop();
            return Err(ClusterError::Conflict(format!("raft membership: {e}")));
        }
        let record = ClusterRecord {
            name: cluster.clone(),
            id: id.cluster_id.clone(),
            ca_cert_pem: ca.cert_pem().to_string(),
            ca_key_sealed: seal.seal(ca.key_pem().as_bytes())?,
            worker_token_sealed: seal.seal(worker.to_string().as_bytes())?,
            manager_token_sealed: seal.seal(manager.to_string().as_bytes())?,
            created: berth_bus::now_rfc3339(),
            ca_previous_pem: None,
            unlock_key_sealed: None,
        };
        let me = NodeRecord {
            name: node.clone(),
            id: node_id,
            addr: advertise.clone(),
            role: NodeRole::Manager,
            labels: Default::default(),
            drain: false,
            frozen: false,
            ca: Some(ca.fingerprint()),
        };
        // What runs here keeps running here: place started objects on this node.
        let placements = self
            .desired
            .list()?
            .into_iter()
            .filter(|r| r.target == Target::Started && r.placement.is_empty())
            .map(|r| Placement {
                path: r.path,
                nodes: vec![node.clone()],
            })
            .collect();
        let written = self
            .submit(Command::All(vec![
                Command::Cluster(ClusterWrite::Put(Box::new(record))),
                Command::Node(NodeWrite::Put(me)),
                Command::Place(placements),
            ]))
            .await;
        if let Err(e) = written {
            self.listener.stop();
            return Err(e);
        }
        self.become_member(id.clone())?;
        self.emit(format!(
            "cluster {cluster} initialized; this node is its first manager"
        ));
        Ok(summary(
            &id,
            Some((worker.to_string(), manager.to_string())),
        ))
    }

    /// Saves the identity, arms TLS and starts the node listener.
    fn become_member(self: &Arc<Self>, id: Identity) -> Result<(), ClusterError> {
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) =
            Some(berth_net::client_config(&id.net())?);
        server::listen(self, &id)?;
        durable(|| id.save(&self.opts.home))?;
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Some(id);
        Ok(())
    }

    /// Joins the cluster a manager at `addr` belongs to. Without
    /// `advertise`, the node advertises the address it reaches `addr` from.
    pub async fn join(
        self: &Arc<Self>,
        addr: &str,
        token: &str,
        advertise: Option<&str>,
    ) -> Result<ClusterSummary, ClusterError> {
        let _guard = self.membership_lock.lock().await;
        self.ensure_standalone()?;
        let sa = match advertise {
            Some(a) => address::check(a)?,
            None => address::towards(addr)?,
        };
        let token: JoinToken = token
            .parse()
            .map_err(|e: berth_net::NetError| ClusterError::BadInput(e.to_string()))?;
        let objects = self.desired.list()?.len();
        if objects > 0 {
            return Err(ClusterError::Conflict(format!(
                "this node has {objects} objects of its own; a node joins a cluster empty (delete them, or init a cluster here and join the others to it)"
            )));
        }
        let unreachable = |e: berth_raft::CallError| match e {
            berth_raft::CallError::Refused {
                status: 403,
                message,
            } => ClusterError::Forbidden(format!("{addr} refused the join: {message}")),
            berth_raft::CallError::Refused {
                status: 409,
                message,
            } => ClusterError::Conflict(format!("{addr} refused the join: {message}")),
            e => ClusterError::Unreachable(format!("joining through {addr}: {e}")),
        };
        // 1. The CA, pinned by the token before anything secret is sent.
        let ca_pem: String =
            RpcClient::with_config(addr.to_string(), berth_net::unverified_client_config()?)
                .call(server::PATH_CA, &(), JOIN_TTL)
                .await
                .map_err(unreachable)?;
        token
            .pins(&ca_pem)
            .map_err(|e| ClusterError::Forbidden(e.to_string()))?;
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
                .map_err(unreachable)?;
        token.pins(&reply.ca_pem).map_err(|_| {
            ClusterError::Forbidden(
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
            seal_key_locked: None,
            unlock_key: reply.unlock_key,
        };
        self.desired
            .rejoin(&self.opts.home.raft_file(&id.generation), id.node_id, false)
            .await?;
        self.become_member(id.clone())?;
        let add = MembershipOp::Add {
            node: id.node.clone(),
        };
        let _: () = self.call(addr, server::PATH_MEMBERSHIP, &add).await?;
        // Done once this node's own record reached its replica.
        let deadline = Instant::now() + JOIN_TTL;
        while self.node_record(&id.node)?.is_none() {
            if Instant::now() > deadline {
                return Err(ClusterError::Unreachable(
                    "joined, but the cluster state did not replicate here within 30 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        berth_store::remove_raft_file(
            &self
                .opts
                .home
                .raft_file(&self.opts.home.standalone_generation()),
        );
        self.emit(format!(
            "joined cluster {} as {} (node id {})",
            id.cluster,
            id.role.as_str(),
            id.node_id
        ));
        Ok(summary(&id, None))
    }

    /// A manager's side of a join: checks the token, records the node and
    /// issues its certificate.
    pub(crate) async fn admit(
        self: &Arc<Self>,
        req: JoinRequest,
    ) -> Result<JoinReply, ClusterError> {
        let (rec, seal) = self.manager_secrets()?;
        let presented: JoinToken = req
            .token
            .parse()
            .map_err(|e: berth_net::NetError| ClusterError::Forbidden(e.to_string()))?;
        let role = self.token_role(&rec, &seal, &presented)?.ok_or_else(|| {
            tracing::warn!(
                "refused a join from {:?} ({}): invalid or rotated token",
                req.node,
                req.advertise
            );
            ClusterError::Forbidden(
                "the join token is not valid (rotated, or for another cluster)".into(),
            )
        })?;
        let sa = address::check(&req.advertise)?;
        let nodes = self.node_records();
        if let Some(n) = nodes
            .iter()
            .find(|n| n.addr == req.advertise && n.name != req.node)
        {
            return Err(ClusterError::Conflict(format!(
                "{} is already the address of node {}",
                req.advertise, n.name
            )));
        }
        let existing = nodes.iter().find(|n| n.name == req.node);
        if existing.is_some() {
            self.refuse_live_name(&req.node).await?;
        }
        let membership = self.desired.membership();
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
                net_role(role),
                &[sa.ip().to_string()],
                berth_net::DEFAULT_NODE_CERT_VALIDITY,
                &req.csr,
            )
            .map_err(|e| ClusterError::BadInput(e.to_string()))?;
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
        self.submit(Command::Node(NodeWrite::Put(record))).await?;
        self.emit(format!(
            "node {} admitted as {} (id {id})",
            req.node,
            role.as_str()
        ));
        Ok(JoinReply {
            cluster: rec.name.clone(),
            cluster_id: rec.id.clone(),
            node_id: id,
            role,
            cert_pem,
            ca_pem: rec.trust_bundle(),
            seal_key: (role == NodeRole::Manager).then(|| seal.to_hex()),
            unlock_key: self.unlock_key_for(role, &rec, &seal),
        })
    }

    /// The role a presented token admits, if it is a current one.
    fn token_role(
        &self,
        rec: &ClusterRecord,
        seal: &SealKey,
        presented: &JoinToken,
    ) -> Result<Option<NodeRole>, ClusterError> {
        let mut role = None;
        for (r, sealed) in [
            (NodeRole::Worker, &rec.worker_token_sealed),
            (NodeRole::Manager, &rec.manager_token_sealed),
        ] {
            let current: JoinToken = String::from_utf8(seal.open(sealed)?)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| {
                    ClusterError::Conflict("a stored join token is unreadable".into())
                })?;
            if current.admits(presented) {
                role = Some(r);
            }
        }
        Ok(role)
    }

    /// A name taken by a node that is still alive is not given to another
    /// daemon; a dead node's name may be taken over (a rebuilt machine).
    async fn refuse_live_name(self: &Arc<Self>, name: &str) -> Result<(), ClusterError> {
        let view = self.view().await;
        let live = view
            .nodes
            .iter()
            .any(|n| n.record.name == name && n.state != NodeState::Down);
        if live {
            return Err(ClusterError::Conflict(format!(
                "a live node of this cluster is already named {name}; start the joining daemon with another --nodename (berth daemon run --nodename NAME), or remove the old node first (berth node {name} remove)"
            )));
        }
        Ok(())
    }

    /// Leaves the cluster: the leader removes this node, whose services move
    /// elsewhere; this node then stops its instances and is standalone again,
    /// with no objects. The last member dissolves the cluster instead and
    /// keeps its objects.
    pub async fn leave(self: &Arc<Self>) -> Result<String, ClusterError> {
        let _guard = self.membership_lock.lock().await;
        let me = self
            .identity()
            .ok_or_else(|| ClusterError::Conflict("this node is not in a cluster".into()))?;
        let alone = self.node_records().iter().all(|n| n.name == me.node);
        if alone {
            self.submit(Command::All(vec![
                Command::Cluster(ClusterWrite::Delete),
                Command::Node(NodeWrite::Delete {
                    name: me.node.clone(),
                }),
            ]))
            .await?;
        } else {
            let membership = self.desired.membership();
            if membership.voters.len() == 1 && membership.voters.contains(&me.node_id) {
                return Err(ClusterError::Conflict(
                    "this node is the cluster's only manager: promote another node first".into(),
                ));
            }
            let op = MembershipOp::Remove {
                node: me.node.clone(),
            };
            self.membership_via_leader(op).await?;
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
            durable(|| {
                berth_store::home::atomic_write(
                    &self.opts.home.standalone_marker(),
                    generation.as_bytes(),
                )
            })?;
        }
        durable(|| std::fs::remove_file(self.opts.home.identity_file()))?;
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = None;
        *self.tls.write().unwrap_or_else(|e| e.into_inner()) = None;
        // Standalone, nothing is fenced: a dissolved cluster's last member
        // keeps its services running.
        self.lease.watchdog.disarm();
        self.listener.stop();
        let msg = format!("left cluster {}; this node is standalone", me.cluster);
        self.emit(msg.clone());
        Ok(msg)
    }
}
