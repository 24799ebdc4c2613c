//! Typed commands: the only way any node changes desired state.
//!
//! A node that does not lead sends its command to the leader over the node
//! protocol (`/node/v1/command`); the leader authorizes it against the
//! caller's certificate and only then turns it into a Raft request. Local
//! commands pass the very same check with this node's own role. There is
//! no raw store write over the network.
//!
//! Each command says which role may send it and which keys it touches:
//! - [`Command::Object`]: a user's edit or action on objects (`obj/<path>`),
//!   forwarded by the node the user works on. Any member may forward its
//!   own users' commands, never another node's; the [`Authorizer`] decides
//!   what the user may do (`rbac.rs`).
//! - [`Command::Node`], [`Command::Cluster`], [`Command::Place`]: node
//!   records (roles, labels, drain, freeze), the cluster record (CA, join
//!   tokens) and placements. Managers only.
//! - [`Command::Kv`]: a write to the Consul-compatible KV store or its
//!   sessions (`kv/`, `kvt/`, `session/`, `sessionrenew/`, `lockdelay/`),
//!   forwarded like a user's object command; decided when applied, with
//!   the leader's clock stamped in.
//! - [`Command::Catalog`]: catalog registrations and check states. A node
//!   writes its own (its registrator, its checks); managers write any
//!   node's (node health, deregistration of critical services); a user's
//!   registration (Consul's `/v1/catalog/register`) is forwarded like a KV
//!   write, with the user's identity.
//! - [`Command::Auth`], [`Command::Secret`]: users, groups, tokens, and
//!   values of `sec`/`cfg` objects, for a user.
//! - [`Command::Admin`]: node or cluster administration by a user (root),
//!   its audit record and its change in one entry. Managers only.
//! - [`Command::All`]: several commands in one Raft entry, all or none,
//!   each checked on its own.
//!
//! What a worker reports about itself (heartbeats, instance reports) is
//! observed state and never goes through Raft: see `heartbeat`.

use crate::records::{node_key, ClusterPatch, ClusterRecord, CLUSTER_KEY};
use berth_model::cluster::{NodeRecord, NodeRole};
use berth_model::status::Target;
use berth_model::ObjectPath;
use berth_raft::Request;
use berth_store::{delete_object, put_json, ObjectPatch, ObjectRecord};
use serde::{Deserialize, Serialize};

/// The user a forwarded command acts for, and the node it works on.
/// With a token, the leader checks the token itself: a node forwards
/// what its client presented and asserts nothing for it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    pub user: String,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Where the request came from on that node (`unix uid 0`, `https
    /// 10.0.0.7:5123`), for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The request's id, for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
}

impl std::fmt::Debug for UserRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRef")
            .field("user", &self.user)
            .field("node", &self.node)
            .field("token", &self.token.as_ref().map(|_| "..."))
            .finish()
    }
}

impl UserRef {
    /// Root on `node`: whoever can reach that node's API socket (mode 0600).
    pub fn root_on(node: &str) -> UserRef {
        UserRef {
            user: "root".into(),
            node: node.into(),
            token: None,
            source: None,
            request: None,
        }
    }

    /// A user of `node` (a socket-group peer) without a token.
    pub fn user_on(user: &str, node: &str) -> UserRef {
        UserRef {
            user: user.into(),
            ..UserRef::root_on(node)
        }
    }

    /// The same, with where the request came from and its id.
    pub fn from(mut self, source: String, request: String) -> UserRef {
        self.source = Some(source);
        self.request = Some(request);
        self
    }

    /// The holder of `token` (its claims name `user`), working on `node`.
    pub fn with_token(user: &str, node: &str, token: &str) -> UserRef {
        UserRef {
            user: user.into(),
            node: node.into(),
            token: Some(token.into()),
            source: None,
            request: None,
        }
    }
}

impl std::fmt::Display for UserRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.user, self.node)
    }
}

/// One object's new config text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigText {
    pub path: String,
    pub config: String,
}

/// A user's edit or action on objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectOp {
    /// New objects (or, at start-up, objects a standalone node migrates).
    Create(Vec<ObjectRecord>),
    Delete {
        path: String,
    },
    /// Config texts of several objects, in one entry.
    SetConfigs(Vec<ConfigText>),
    /// The target (when given) and the frozen flag.
    SetTarget {
        path: String,
        target: Option<Target>,
        frozen: bool,
    },
    /// `switch`: placed on `to` (the scheduler's choice when empty),
    /// started and thawed.
    Move {
        path: String,
        to: Vec<String>,
    },
    /// A deploy's versions, as they stand after its latest step.
    Deployed {
        path: String,
        history: berth_model::deploy::DeployHistory,
    },
    /// `on_unhealthy=failover`: the instance on `node` stayed unhealthy
    /// (`why`), so the orchestrator places the object elsewhere while it
    /// can; `None` (`clear` on that node) forgets it.
    Unhealthy {
        path: String,
        node: String,
        why: Option<String>,
    },
}

impl ObjectOp {
    pub fn paths(&self) -> Vec<&str> {
        match self {
            ObjectOp::Create(recs) => recs.iter().map(|r| r.path.as_str()).collect(),
            ObjectOp::SetConfigs(cs) => cs.iter().map(|c| c.path.as_str()).collect(),
            ObjectOp::Delete { path }
            | ObjectOp::SetTarget { path, .. }
            | ObjectOp::Move { path, .. }
            | ObjectOp::Deployed { path, .. }
            | ObjectOp::Unhealthy { path, .. } => vec![path.as_str()],
        }
    }
}

/// A change to users, groups, revoked tokens or the token key (`auth/`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthOp {
    /// A new or changed user; its password already hashed.
    PutUser(berth_auth::UserRecord),
    DeleteUser {
        name: String,
    },
    PutGroup(berth_auth::GroupRecord),
    DeleteGroup {
        name: String,
    },
    Revoke(berth_auth::Revocation),
    /// The token verification key, published by a manager.
    Signer(berth_auth::SignerRecord),
    /// The secrets' data key, sealed with the seal key, by a manager.
    DataKey(berth_auth::secret::SealedDataKey),
}

/// A change to the values of a `sec` or `cfg` object (`secret/`). A
/// secret's value is sealed before the command is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretOp {
    Put {
        path: String,
        key: String,
        value: berth_auth::secret::StoredValue,
    },
    Remove {
        path: String,
        key: String,
    },
}

impl SecretOp {
    pub fn path(&self) -> &str {
        match self {
            SecretOp::Put { path, .. } | SecretOp::Remove { path, .. } => path,
        }
    }
}

/// A change to the node records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeWrite {
    Put(NodeRecord),
    Delete { name: String },
}

/// A change to the cluster record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterWrite {
    Put(Box<ClusterRecord>),
    Patch(ClusterPatch),
    Delete,
}

/// The orchestrator's choice of nodes for one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub path: String,
    pub nodes: Vec<String>,
}

/// A write to the KV store or its sessions, as a client asks for it; the
/// leader adds the time when it proposes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvWrite {
    Txn(Vec<berth_kv::TxnOp>),
    SessionCreate(berth_kv::Session),
    SessionDestroy { id: String },
    SessionRenew { id: String },
}

impl KvWrite {
    fn check(&self) -> Result<(), Refusal> {
        match self {
            KvWrite::Txn(ops) => {
                if ops.len() > berth_kv::MAX_TXN_OPS {
                    return Err(Refusal::BadInput(format!(
                        "a transaction holds at most {} operations",
                        berth_kv::MAX_TXN_OPS
                    )));
                }
                ops.iter().try_for_each(|op| {
                    check_kv_key(op.key())?;
                    let value = match op {
                        berth_kv::TxnOp::Set { value, .. }
                        | berth_kv::TxnOp::Cas { value, .. }
                        | berth_kv::TxnOp::Lock { value, .. }
                        | berth_kv::TxnOp::Unlock { value, .. } => value.as_ref(),
                        _ => None,
                    };
                    match value {
                        Some(v) if v.len() > berth_kv::MAX_VALUE => Err(Refusal::BadInput(
                            format!("value of {:?} is over 512 KiB", op.key()),
                        )),
                        _ => Ok(()),
                    }
                })
            }
            KvWrite::SessionCreate(s) => check_session_id(&s.id),
            KvWrite::SessionDestroy { id } | KvWrite::SessionRenew { id } => check_session_id(id),
        }
    }

    fn op(&self, now_ms: u64) -> berth_kv::Op {
        match self {
            KvWrite::Txn(ops) => berth_kv::Op::Txn {
                ops: ops.clone(),
                now_ms,
            },
            KvWrite::SessionCreate(s) => berth_kv::Op::SessionCreate { session: s.clone() },
            KvWrite::SessionDestroy { id } => berth_kv::Op::SessionDestroy {
                id: id.clone(),
                now_ms,
            },
            KvWrite::SessionRenew { id } => berth_kv::Op::SessionRenew {
                id: id.clone(),
                now_ms,
            },
        }
    }
}

/// A KV key: no `..` segment and no NUL, which Consul's clients treat as
/// path tricks; the length is Consul's.
pub fn check_kv_key(key: &str) -> Result<(), Refusal> {
    if key.contains('\0') || key.split('/').any(|s| s == "..") {
        return Err(Refusal::BadInput(format!("invalid key {key:?}")));
    }
    if key.len() > 4096 {
        return Err(Refusal::BadInput("key is over 4096 bytes".into()));
    }
    Ok(())
}

fn check_session_id(id: &str) -> Result<(), Refusal> {
    if id.len() == 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        Ok(())
    } else {
        Err(Refusal::BadInput(format!("{id:?} is not a session id")))
    }
}

/// The leader's wall clock, in ms since the epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A change to desired state, as a node asks the leader for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Object {
        by: UserRef,
        op: ObjectOp,
    },
    Node(NodeWrite),
    Cluster(ClusterWrite),
    Place(Vec<Placement>),
    Kv {
        by: UserRef,
        write: KvWrite,
    },
    Catalog {
        /// `None`: the node's own report.
        by: Option<UserRef>,
        ops: Vec<berth_kv::catalog::CatalogOp>,
    },
    Auth {
        by: UserRef,
        op: AuthOp,
    },
    Secret {
        by: UserRef,
        op: SecretOp,
    },
    /// A refusal, recorded in the audit trail by the node that refused.
    Audit(berth_auth::audit::AuditRecord),
    /// Audit records past their retention, removed by the leader.
    AuditCompact {
        keys: Vec<String>,
    },
    /// Node or cluster administration by `by` (root's): its audit record
    /// and its change, if it is a desired-state one, in one entry.
    Admin {
        by: UserRef,
        action: String,
        object: String,
        change: Option<Box<Command>>,
    },
    All(Vec<Command>),
}

/// Who sent a command: the node its certificate names, with its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub node: String,
    pub role: NodeRole,
}

/// What a user may do: the cluster's RBAC (`rbac.rs`) on the leader and
/// on the node that forwards; `RootOnly` in unit tests.
pub trait Authorizer: Send + Sync {
    fn object(&self, by: &UserRef, op: &ObjectOp) -> Result<(), Refusal>;
    /// A write to the KV store: with a token, its KV grants decide;
    /// without one, Consul without ACLs allows everyone.
    fn kv(&self, _by: &UserRef, _write: &KvWrite) -> Result<(), Refusal> {
        Ok(())
    }
    /// A user's catalog registration: allowed, as in Consul without ACLs.
    fn catalog(&self, _by: &UserRef, _ops: &[berth_kv::catalog::CatalogOp]) -> Result<(), Refusal> {
        Ok(())
    }
    fn auth(&self, by: &UserRef, op: &AuthOp) -> Result<(), Refusal>;
    fn secret(&self, by: &UserRef, op: &SecretOp) -> Result<(), Refusal>;
    /// Node and cluster administration: root's.
    fn admin(&self, by: &UserRef) -> Result<(), Refusal>;
}

/// Root may do everything, nobody else anything.
pub struct RootOnly;

impl RootOnly {
    fn check(by: &UserRef) -> Result<(), Refusal> {
        if by.user == "root" && by.token.is_none() {
            Ok(())
        } else {
            Err(Refusal::Forbidden(format!("{by} may not do this")))
        }
    }
}

impl Authorizer for RootOnly {
    fn object(&self, by: &UserRef, _op: &ObjectOp) -> Result<(), Refusal> {
        RootOnly::check(by)
    }
    fn auth(&self, by: &UserRef, _op: &AuthOp) -> Result<(), Refusal> {
        RootOnly::check(by)
    }
    fn secret(&self, by: &UserRef, _op: &SecretOp) -> Result<(), Refusal> {
        RootOnly::check(by)
    }
    fn admin(&self, by: &UserRef) -> Result<(), Refusal> {
        RootOnly::check(by)
    }
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadInput(String),
    /// A token that is tampered, expired, revoked or another cluster's.
    #[error("{0}")]
    Unauthenticated(String),
}

fn own_users_only(caller: &Caller, by: &UserRef) -> Result<(), Refusal> {
    if by.node == caller.node {
        Ok(())
    } else {
        Err(Refusal::Forbidden(format!(
            "{} may forward its own users' commands only, not those of {by}",
            caller.node
        )))
    }
}

impl Command {
    /// Checks `self` against what `caller` may send.
    pub fn authorize(&self, caller: &Caller, auth: &dyn Authorizer) -> Result<(), Refusal> {
        let manager_only = |what: &str| {
            if caller.role == NodeRole::Manager {
                Ok(())
            } else {
                Err(Refusal::Forbidden(format!(
                    "{} is a worker: only managers may change {what}",
                    caller.node
                )))
            }
        };
        match self {
            Command::Object { by, op } => {
                own_users_only(caller, by)?;
                if let ObjectOp::Unhealthy { node, .. } = op {
                    check_node_name(node)?;
                    if node != &caller.node {
                        manager_only("another node's health marks")?;
                    }
                }
                for p in op.paths() {
                    p.parse::<ObjectPath>()
                        .map_err(|e| Refusal::BadInput(format!("{p:?}: {e}")))?;
                }
                auth.object(by, op)
            }
            Command::Auth { by, op } => {
                own_users_only(caller, by)?;
                if matches!(op, AuthOp::Signer(_) | AuthOp::DataKey(_)) {
                    manager_only("the cluster's keys")?;
                }
                auth.auth(by, op)
            }
            Command::Secret { by, op } => {
                own_users_only(caller, by)?;
                let path: ObjectPath = op
                    .path()
                    .parse()
                    .map_err(|e| Refusal::BadInput(format!("{:?}: {e}", op.path())))?;
                if !matches!(path.kind, berth_model::Kind::Sec | berth_model::Kind::Cfg) {
                    return Err(Refusal::BadInput(format!("{path} is no sec or cfg object")));
                }
                let key = match op {
                    SecretOp::Put { key, .. } | SecretOp::Remove { key, .. } => key,
                };
                berth_auth::secret::check_key_name(key)
                    .map_err(|e| Refusal::BadInput(e.to_string()))?;
                auth.secret(by, op)
            }
            Command::Node(w) => {
                let name = match w {
                    NodeWrite::Put(r) => r.name.as_str(),
                    NodeWrite::Delete { name } => name.as_str(),
                };
                check_node_name(name)?;
                manager_only("node records, roles or membership")
            }
            Command::Cluster(_) => manager_only("the cluster's CA or join tokens"),
            Command::Kv { by, write } => {
                own_users_only(caller, by)?;
                write.check()?;
                auth.kv(by, write)
            }
            Command::Place(ps) => {
                for p in ps {
                    p.path
                        .parse::<ObjectPath>()
                        .map_err(|e| Refusal::BadInput(format!("{:?}: {e}", p.path)))?;
                }
                manager_only("placements")
            }
            Command::Catalog { by: Some(by), ops } => {
                own_users_only(caller, by)?;
                auth.catalog(by, ops)
            }
            Command::Catalog { by: None, ops } => {
                match ops.iter().find(|op| op.node() != caller.node) {
                    Some(op) if caller.role != NodeRole::Manager => {
                        Err(Refusal::Forbidden(format!(
                        "{} is a worker: it registers its own services and checks only, not {}'s",
                        caller.node,
                        op.node()
                    )))
                    }
                    _ => Ok(()),
                }
            }
            Command::Audit(r) => {
                if r.node == caller.node {
                    Ok(())
                } else {
                    Err(Refusal::Forbidden(format!(
                        "{} may record its own refusals only, not {}'s",
                        caller.node, r.node
                    )))
                }
            }
            Command::AuditCompact { keys } => {
                if let Some(k) = keys
                    .iter()
                    .find(|k| !k.starts_with(berth_auth::audit::AUDIT_PREFIX))
                {
                    return Err(Refusal::BadInput(format!("{k:?} is no audit record")));
                }
                manager_only("the audit trail")
            }
            Command::Admin { by, change, .. } => {
                own_users_only(caller, by)?;
                manager_only("node and cluster administration")?;
                auth.admin(by)?;
                change
                    .as_ref()
                    .map_or(Ok(()), |c| c.authorize(caller, auth))
            }
            Command::All(cmds) => cmds.iter().try_for_each(|c| c.authorize(caller, auth)),
        }
    }

    /// The Raft request this command is applied as. Its keys are the ones
    /// the command names, under `obj/`, `node/` or `cluster/` by kind.
    pub fn request(&self) -> Result<Request, berth_store::StoreError> {
        Ok(match self {
            Command::Object { op, .. } => object_request(op)?,
            Command::Node(NodeWrite::Put(rec)) => put_json(&node_key(&rec.name), rec)?,
            Command::Node(NodeWrite::Delete { name }) => Request::Delete {
                key: node_key(name),
            },
            Command::Cluster(ClusterWrite::Put(rec)) => put_json(CLUSTER_KEY, rec)?,
            Command::Cluster(ClusterWrite::Patch(p)) => berth_store::patch_json(CLUSTER_KEY, p)?,
            Command::Cluster(ClusterWrite::Delete) => Request::Delete {
                key: CLUSTER_KEY.into(),
            },
            Command::Place(ps) => Request::Batch(
                ps.iter()
                    .map(|p| {
                        ObjectPatch {
                            placement: Some(p.nodes.clone()),
                            ..Default::default()
                        }
                        .request(&p.path)
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Command::Kv { write, .. } => Request::Kv(write.op(now_ms())),
            Command::Catalog { ops, .. } => Request::Kv(berth_kv::Op::Catalog(ops.clone())),
            Command::Auth { op, .. } => auth_request(op)?,
            Command::Secret { op, .. } => match op {
                SecretOp::Put { path, key, value } => {
                    put_json(&berth_auth::secret::value_key(path, key), value)?
                }
                SecretOp::Remove { path, key } => Request::Delete {
                    key: berth_auth::secret::value_key(path, key),
                },
            },
            // Refusals of one request in one millisecond keep a key each.
            Command::Audit(r) => {
                let entry = uuid::Uuid::new_v4().simple().to_string();
                let id = format!("{}.{}", r.request, &entry[..12]);
                put_json(&berth_auth::audit::audit_key(r.time_ms, &id), r)?
            }
            Command::AuditCompact { keys } => Request::Batch(
                keys.iter()
                    .map(|k| Request::Delete { key: k.clone() })
                    .collect(),
            ),
            Command::Admin { change, .. } => match change {
                Some(c) => c.request()?,
                None => Request::Batch(Vec::new()),
            },
            Command::All(cmds) => Request::Batch(
                cmds.iter()
                    .map(Command::request)
                    .collect::<Result<_, _>>()?,
            ),
        })
    }
}

fn auth_request(op: &AuthOp) -> Result<Request, berth_store::StoreError> {
    use berth_auth::records::{group_key, revoked_key, user_key, SIGNER_KEY};
    Ok(match op {
        AuthOp::PutUser(u) => put_json(&user_key(&u.name), u)?,
        AuthOp::DeleteUser { name } => Request::Delete {
            key: user_key(name),
        },
        AuthOp::PutGroup(g) => put_json(&group_key(&g.name), g)?,
        AuthOp::DeleteGroup { name } => Request::Delete {
            key: group_key(name),
        },
        AuthOp::Revoke(r) => put_json(&revoked_key(&r.id), r)?,
        AuthOp::Signer(s) => put_json(SIGNER_KEY, s)?,
        AuthOp::DataKey(k) => put_json(berth_auth::secret::DATA_KEY, k)?,
    })
}

fn check_node_name(name: &str) -> Result<(), Refusal> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(Refusal::BadInput(format!("{name:?} is not a node name")))
    }
}

fn object_request(op: &ObjectOp) -> Result<Request, berth_store::StoreError> {
    Ok(match op {
        ObjectOp::Create(recs) => Request::Batch(
            recs.iter()
                .map(ObjectRecord::put)
                .collect::<Result<_, _>>()?,
        ),
        ObjectOp::Delete { path } => Request::Batch(vec![
            delete_object(path),
            Request::Delete {
                key: crate::deploy::deploy_key(path),
            },
        ]),
        ObjectOp::SetConfigs(cs) => Request::Batch(
            cs.iter()
                .map(|c| {
                    ObjectPatch {
                        config: Some(c.config.clone()),
                        ..Default::default()
                    }
                    .request(&c.path)
                })
                .collect::<Result<_, _>>()?,
        ),
        ObjectOp::SetTarget {
            path,
            target,
            frozen,
        } => ObjectPatch {
            target: *target,
            frozen: Some(*frozen),
            ..Default::default()
        }
        .request(path)?,
        ObjectOp::Move { path, to } => ObjectPatch {
            placement: Some(to.clone()),
            target: Some(Target::Started),
            frozen: Some(false),
            ..Default::default()
        }
        .request(path)?,
        ObjectOp::Deployed { path, history } => {
            put_json(&crate::deploy::deploy_key(path), history)?
        }
        ObjectOp::Unhealthy { path, node, why } => Request::PatchEntry {
            key: berth_store::obj_key(path),
            field: berth_store::UNHEALTHY_ON.to_string(),
            entry: node.clone(),
            value: why.clone().map(serde_json::Value::String),
        },
    })
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
