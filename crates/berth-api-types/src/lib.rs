//! The daemon API's route table, declared once: each endpoint is a type
//! naming its method, path, query, body and reply. The server mounts its
//! handlers by these types (`berth-api`), the OpenAPI document is built
//! from [`ROUTES`], and the CLI's client calls endpoints by type, so a
//! path or a body cannot differ between the three.
//!
//! Architecture invariant: this crate holds types only; it depends on the
//! model and serde, nothing that does I/O.

pub mod auth;
pub mod bodies;
pub mod catalog;
pub mod kv;

use auth::*;
use berth_model::cluster::{ClusterSummary, ClusterView, NodeRecord};
use berth_model::event::Event;
use berth_model::status::ObjectStatus;
use berth_model::{ActionOutcome, ObjectInfo, SetOutcome};
use bodies::*;
use catalog::*;
use kv::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// How an endpoint answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// One JSON body.
    Json,
    /// Server-sent events, each one `Reply` as JSON.
    Stream,
}

/// One endpoint of the API.
pub trait Endpoint {
    const METHOD: Method;
    const PATH: &'static str;
    const ANSWER: Answer;
    /// Decoded from the query string ([`Empty`] for none).
    type Query: Serialize + DeserializeOwned + Send + 'static;
    /// Decoded from the JSON body ([`Empty`] for none).
    type Body: Serialize + DeserializeOwned + Send + 'static;
    /// The reply, or each streamed event.
    type Reply: Serialize + DeserializeOwned + Send + 'static;
}

/// What the OpenAPI document says of one endpoint.
#[derive(Clone, Copy, Debug)]
pub struct RouteInfo {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub answer: Answer,
    /// Query parameters: name, required, description.
    pub query: &'static [(&'static str, bool, &'static str)],
    /// The body's schema name in the document's components, if any.
    pub body: Option<&'static str>,
    pub reply: &'static str,
}

macro_rules! endpoints {
    ($(
        $name:ident: $method:ident $path:literal $answer:ident,
        query $query:ty $([$($q:expr),* $(,)?])?,
        body $body:ty $({$schema:literal})?,
        reply $reply:ty, $reply_doc:literal,
        $summary:literal;
    )*) => {
        $(
            #[doc = $summary]
            pub struct $name;
            impl Endpoint for $name {
                const METHOD: Method = Method::$method;
                const PATH: &'static str = $path;
                const ANSWER: Answer = Answer::$answer;
                type Query = $query;
                type Body = $body;
                type Reply = $reply;
            }
        )*
        /// Every endpoint, in documentation order.
        pub const ROUTES: &[RouteInfo] = &[$(RouteInfo {
            method: Method::$method,
            path: $path,
            summary: $summary,
            answer: Answer::$answer,
            query: &[$($($q),*)?],
            body: endpoints!(@schema $($schema)?),
            reply: $reply_doc,
        }),*];
    };
    (@schema) => { None };
    (@schema $s:literal) => { Some($s) };
}

const SELECTOR: (&str, bool, &str) = (
    "selector",
    true,
    "Object selector: globs, ',' union, '+' intersection, '!' negation, kw=value filters",
);
const ALLOW_EMPTY: (&str, bool, &str) = (
    "allow_empty",
    false,
    "true: a selection matching nothing is an empty list, not a 404",
);
const PATH: (&str, bool, &str) = ("path", true, "Object path, ns/name");

endpoints! {
    DaemonStatus: Get "/v1/daemon" Json,
        query Empty, body Empty,
        reply DaemonInfo, "daemon info",
        "Daemon identity and version";
    OpenApi: Get "/v1/openapi.json" Json,
        query Empty, body Empty,
        reply serde_json::Value, "OpenAPI document",
        "This document";
    KeywordSchema: Get "/v1/schema/keywords" Json,
        query Empty, body Empty,
        reply serde_json::Value, "keyword schema",
        "Keyword schema of every section type";
    ListObjects: Get "/v1/objects" Json,
        query SelectorQuery [SELECTOR, ALLOW_EMPTY], body Empty,
        reply Vec<ObjectInfo>, "object list",
        "Objects matching a selector";
    CreateObject: Post "/v1/objects/create" Json,
        query Empty, body CreateRequest {"CreateRequest"},
        reply ObjectInfo, "created object",
        "Create an object";
    EditObjects: Post "/v1/objects/edit" Json,
        query Empty, body EditRequest {"EditRequest"},
        reply Vec<SetOutcome>, "per-object outcome",
        "Set and unset keywords on selected objects, all or nothing";
    ObjectAction: Post "/v1/objects/action" Json,
        query Empty, body ActionRequest {"ActionRequest"},
        reply ActionOutcome, "action outcome with the Docker commands run",
        "Run start, stop, restart, freeze, thaw or delete on one object and wait for it";
    ObjectConfig: Get "/v1/objects/config" Json,
        query PathQuery [PATH], body Empty,
        reply ConfigFile, "the config file's text",
        "The object's config file text";
    ObjectKeyword: Get "/v1/objects/keyword" Json,
        query KeywordQuery [
            PATH,
            ("kw", true, "section.keyword"),
            ("eval", false, "true for the effective value"),
        ], body Empty,
        reply KeywordValue, "keyword value",
        "One keyword's value";
    ObjectStatuses: Get "/v1/objects/status" Json,
        query SelectorQuery [SELECTOR, ALLOW_EMPTY], body Empty,
        reply Vec<ObjectStatus>, "object status list",
        "Status of selected objects on this node";
    WatchStatuses: Get "/v1/objects/status/watch" Stream,
        query SelectorQuery [SELECTOR, ALLOW_EMPTY], body Empty,
        reply Vec<ObjectStatus>, "text/event-stream: the status list, again at every change",
        "Status of selected objects, then again whenever one changes (berth mon --watch)";
    SwitchObject: Post "/v1/objects/switch" Json,
        query Empty, body SwitchRequest {"SwitchRequest"},
        reply ActionOutcome, "action outcome",
        "Move a service to a node (switch, takeover), or let the scheduler place it again (giveback)";
    DeployObject: Post "/v1/objects/deploy" Json,
        query Empty, body DeployRequest {"DeployRequest"},
        reply ActionOutcome, "deploy outcome: the batches, the health gates, a rollback",
        "Roll the service's config out to its instances, a batch at a time, each behind a health gate";
    RollbackObject: Post "/v1/objects/rollback" Json,
        query Empty, body PathBody {"PathBody"},
        reply ActionOutcome, "rollback outcome",
        "Deploy the service's previous deployed config again";
    DeployHistory: Get "/v1/objects/history" Json,
        query PathQuery [PATH], body Empty,
        reply berth_model::deploy::DeployHistory, "deployed versions, oldest first",
        "The versions a service deployed: who, when, digests, outcome and config";
    Events: Get "/v1/events" Stream,
        query EventsQuery [
            ("since", false, "replay events after this sequence number"),
            ("last", false, "replay the last N events"),
            ("follow", false, "keep streaming (default true)"),
        ], body Empty,
        reply Event, "text/event-stream of Event JSON",
        "Server-sent event stream";
    ClusterInit: Post "/v1/cluster/init" Json,
        query Empty, body InitRequest {"InitRequest"},
        reply ClusterSummary, "cluster summary with join tokens",
        "Make this node the first manager of a new cluster";
    ClusterJoin: Post "/v1/cluster/join" Json,
        query Empty, body JoinRequest {"JoinRequest"},
        reply ClusterSummary, "cluster summary",
        "Join the cluster of the manager at addr with a join token";
    ClusterToken: Post "/v1/cluster/token" Json,
        query Empty, body TokenRequest {"TokenRequest"},
        reply TokenReply, "token",
        "Show or rotate a join token (managers only)";
    ClusterAutolock: Post "/v1/cluster/autolock" Json,
        query Empty, body AutolockRequest {"AutolockRequest"},
        reply AutolockReply, "whether autolock is on, and the new unlock key",
        "Turn autolock on, rotate its unlock key or turn it off (managers only)";
    ClusterUnlock: Post "/v1/cluster/unlock" Json,
        query Empty, body UnlockRequest {"UnlockRequest"},
        reply MessageReply, "message",
        "Unlock this manager after a restart, with the unlock key";
    ClusterCaRotate: Post "/v1/cluster/ca/rotate" Json,
        query Empty, body Empty,
        reply ClusterSummary, "cluster summary with join tokens",
        "Replace the cluster CA without downtime; returns the new join tokens (managers only)";
    ClusterLeave: Post "/v1/cluster/leave" Json,
        query Empty, body Empty,
        reply MessageReply, "message",
        "Leave the cluster: services move elsewhere, the node becomes standalone and empty; the last member dissolves the cluster and keeps its objects";
    ClusterStatus: Get "/v1/cluster/status" Json,
        query Empty, body Empty,
        reply ClusterView, "cluster view",
        "Nodes, roles, leader, liveness and the instances each node reports";
    NodeOperation: Post "/v1/nodes/op" Json,
        query Empty, body NodeOpRequest {"NodeOpRequest"},
        reply NodeRecord, "node record",
        "Label, drain, undrain, freeze, thaw, promote, demote or remove a node (managers only)";
    KvGet: Get "/v1/kv" Json,
        query KvQuery [
            ("key", true, "key, or prefix with recurse"),
            ("recurse", false, "true: every entry under the prefix"),
        ], body Empty,
        reply KvEntries, "entries and their index",
        "Entries of the Consul-compatible KV store";
    KvKeysList: Get "/v1/kv/keys" Json,
        query KvKeysQuery [
            ("prefix", true, "key prefix"),
            ("separator", false, "fold keys after this separator"),
        ], body Empty,
        reply KvKeys, "keys and their index",
        "Keys under a prefix";
    KvPut: Post "/v1/kv/put" Json,
        query Empty, body KvPutRequest {"KvPutRequest"},
        reply KvWritten, "whether it was written",
        "Write one key, optionally as a compare-and-set";
    KvDelete: Post "/v1/kv/delete" Json,
        query Empty, body KvDeleteRequest {"KvDeleteRequest"},
        reply KvWritten, "whether it was deleted",
        "Delete one key, a prefix, or a key at an index";
    KvWatch: Get "/v1/kv/watch" Stream,
        query KvQuery [
            ("key", true, "key, or prefix with recurse"),
            ("recurse", false, "true: every entry under the prefix"),
        ], body Empty,
        reply KvEntries, "server-sent events, each the entries and their index",
        "The entries now, then again at every change";
    CatalogServices: Get "/v1/catalog/services" Json,
        query Empty, body Empty,
        reply ServiceList, "services and their instance counts",
        "Services of the catalog (the one the Consul API serves)";
    CatalogService: Get "/v1/catalog/service" Json,
        query ServiceQuery [
            ("name", true, "service name"),
            ("tag", false, "only instances with this tag"),
        ], body Empty,
        reply ServiceInstances, "instances and their health",
        "Instances of one service";
    IngressRoutes: Get "/v1/ingress/routes" Json,
        query Empty, body Empty,
        reply RouteTable, "host routes, their backends and counters",
        "This node's ingress routes";
    WhoAmIEndpoint: Get "/v1/whoami" Json,
        query Empty, body Empty,
        reply WhoAmI, "user and grants",
        "Who the caller is and the grants its request holds";
    UserList: Get "/v1/users" Json,
        query Empty, body Empty,
        reply Vec<UserInfo>, "users, without their password hashes",
        "Users (root only)";
    UserCreate: Post "/v1/users/create" Json,
        query Empty, body UserCreateRequest {"UserCreateRequest"},
        reply UserInfo, "created user",
        "Create a user; its password is stored as an argon2id hash (root only)";
    UserDelete: Post "/v1/users/delete" Json,
        query Empty, body NameRequest {"NameRequest"},
        reply MessageReply, "message",
        "Delete a user; its tokens stop working (root only)";
    UserPasswd: Post "/v1/users/passwd" Json,
        query Empty, body PasswdRequest {"PasswdRequest"},
        reply MessageReply, "message",
        "Set a user's password and void its tokens (root, or the user)";
    GrantChange: Post "/v1/grants" Json,
        query Empty, body GrantRequest {"GrantRequest"},
        reply GrantsReply, "the grants now held",
        "Grant or revoke roles of a user or group (root, or an admin within its namespaces)";
    GroupList: Get "/v1/groups" Json,
        query Empty, body Empty,
        reply Vec<GroupInfo>, "groups",
        "Groups (root only)";
    GroupCreate: Post "/v1/groups/create" Json,
        query Empty, body GroupCreateRequest {"GroupCreateRequest"},
        reply GroupInfo, "created group",
        "Create a group (root only)";
    GroupDelete: Post "/v1/groups/delete" Json,
        query Empty, body NameRequest {"NameRequest"},
        reply MessageReply, "message",
        "Delete a group (root only)";
    LdapSync: Post "/v1/ldap/sync" Json,
        query Empty, body Empty,
        reply LdapSyncReport, "users created, updated and removed",
        "Sync the LDAP users now: users and their berth groups from the mapped LDAP groups; users gone from LDAP are removed and their tokens voided (root only)";
    TokenCreate: Post "/v1/tokens/create" Json,
        query Empty, body TokenCreateRequest {"TokenCreateRequest"},
        reply TokenInfo, "the token",
        "Issue a token for a user, with all its grants or fewer (root, or the user itself)";
    TokenRevoke: Post "/v1/tokens/revoke" Json,
        query Empty, body TokenRevokeRequest {"TokenRevokeRequest"},
        reply MessageReply, "message",
        "Revoke a token, given whole or by id (root, or its user)";
    AuditList: Get "/v1/audit" Json,
        query AuditQuery [
            ("user", false, "only this user's records"),
            ("object", false, "a glob on the object"),
            ("since_secs", false, "only the last this many seconds"),
            ("refused", false, "true: refusals only"),
            ("limit", false, "at most this many, the newest (default 1000)"),
        ], body Empty,
        reply Vec<AuditEntry>, "audit records, oldest first",
        "The audit trail: every change and every refusal (root only)";
    SecretKeys: Get "/v1/secrets/keys" Json,
        query SecretQuery [("path", true, "a sec or cfg object")], body Empty,
        reply Vec<SecretKeyInfo>, "keys, versions and sizes",
        "The keys of a sec or cfg object, never their values";
    SecretPut: Post "/v1/secrets/put" Json,
        query Empty, body SecretPutRequest {"SecretPutRequest"},
        reply SecretWritten, "the key's new version",
        "Add a key to a sec or cfg object, or change one (a new version); secrets are sealed before they are stored";
    SecretDecode: Get "/v1/secrets/decode" Json,
        query SecretQuery [("path", true, "a sec or cfg object"), ("key", true, "the key")], body Empty,
        reply SecretValue, "the value, base64",
        "A key's value (a secret's needs admin in its namespace)";
    SecretRemove: Post "/v1/secrets/remove" Json,
        query Empty, body SecretRemoveRequest {"SecretRemoveRequest"},
        reply MessageReply, "message",
        "Remove a key of a sec or cfg object";
    CaBundle: Get "/v1/ca" Json,
        query Empty, body Empty,
        reply CaInfo, "the CA and its fingerprint",
        "The cluster CA, for a remote client to pin (needs no token)";
    Login: Post "/v1/login" Json,
        query Empty, body LoginRequest {"LoginRequest"},
        reply TokenInfo, "the token",
        "Exchange a user's password for a token";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_listed_once() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROUTES {
            assert!(r.path.starts_with("/v1/"), "{}", r.path);
            assert!(seen.insert(r.path), "twice: {}", r.path);
            // Bodies go with POST, query strings with GET.
            if r.body.is_some() {
                assert_eq!(r.method, Method::Post, "{}", r.path);
            }
            if !r.query.is_empty() {
                assert_eq!(r.method, Method::Get, "{}", r.path);
            }
        }
    }
}
