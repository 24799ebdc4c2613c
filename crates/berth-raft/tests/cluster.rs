//! Three managers replicate desired state over HTTP/2 with mutual TLS on
//! 127.0.0.1: a write on the leader reaches every state machine, and after
//! the leader is stopped the others elect a new one and accept writes.

use berth_net::{
    client_config, install_crypto_provider, server_config, ClusterCa, Role,
    DEFAULT_NODE_CERT_VALIDITY,
};
use berth_raft::{Network, RaftNode, Request, StateMachine};
use openraft::network::RPCOption;
use openraft::raft::VoteRequest;
use openraft::{BasicNode, Config, RaftNetworkFactory, RaftNetworkV2};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Manager {
    id: u64,
    raft: RaftNode,
    sm: StateMachine,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start(id: u64, ca: &ClusterCa, listener: tokio::net::TcpListener) -> Manager {
    let ident = ca
        .issue(
            &format!("m{id}"),
            Role::Manager,
            &["127.0.0.1".to_string()],
            DEFAULT_NODE_CERT_VALIDITY,
        )
        .expect("issue");
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, sm) = berth_raft::open(&dir.path().join("raft.redb")).expect("open");
    let config = Config {
        cluster_name: "test".into(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        ..Default::default()
    }
    .validate()
    .expect("config");
    let network = Network::new(client_config(&ident).expect("client tls"));
    let raft = RaftNode::new(id, Arc::new(config), network, log, sm.clone())
        .await
        .expect("raft");
    let server = tokio::spawn(berth_raft::serve(
        raft.clone(),
        listener,
        server_config(&ident).expect("server tls"),
    ));
    Manager {
        id,
        raft,
        sm,
        server,
        _dir: dir,
    }
}

async fn leader_among(ms: &[&Manager], deadline: Duration) -> u64 {
    let end = Instant::now() + deadline;
    loop {
        for m in ms {
            if let Some(l) = m.raft.current_leader().await {
                if ms.iter().any(|x| x.id == l) {
                    return l;
                }
            }
        }
        assert!(Instant::now() < end, "no leader elected");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes through whichever manager leads, retrying while leadership settles.
async fn write(ms: &[&Manager], req: Request) {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let leader = leader_among(ms, Duration::from_secs(15)).await;
        let m = ms.iter().find(|m| m.id == leader).expect("leader present");
        match m.raft.client_write(req.clone()).await {
            Ok(_) => return,
            Err(e) => assert!(Instant::now() < end, "write never succeeded: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_value(m: &Manager, key: &str, want: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    while m.sm.get(key).expect("read").as_deref() != Some(want) {
        assert!(Instant::now() < end, "m{} never saw {key}={want}", m.id);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_managers_replicate_and_survive_losing_the_leader() {
    install_crypto_provider();
    let ca = ClusterCa::generate("test").expect("ca");
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 0..3u64 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        members.insert(
            id,
            BasicNode {
                addr: l.local_addr().expect("addr").to_string(),
            },
        );
        listeners.push(l);
    }
    let mut ms = Vec::new();
    for (id, l) in listeners.into_iter().enumerate() {
        ms.push(start(id as u64, &ca, l).await);
    }
    let members_addr = members.clone();
    ms[0].raft.initialize(members).await.expect("initialize");

    let all: Vec<&Manager> = ms.iter().collect();
    let put = |k: &str, v: &str| Request::Put {
        key: k.into(),
        value: v.into(),
    };
    write(&all, put("svc/app1-prd/svc1", "v1")).await;
    let leader = leader_among(&all, Duration::from_secs(15)).await;
    for m in &ms {
        wait_value(m, "svc/app1-prd/svc1", "v1").await;
    }

    // A manager refuses RPCs from a node whose certificate another CA signed.
    let foreign = ClusterCa::generate("foreign").expect("ca");
    let mut intruder = foreign
        .issue(
            "intruder",
            Role::Manager,
            &["127.0.0.1".to_string()],
            DEFAULT_NODE_CERT_VALIDITY,
        )
        .expect("issue");
    intruder.ca_pem = ca.cert_pem().to_string();
    let mut factory = Network::new(client_config(&intruder).expect("client tls"));
    let target = &members_addr[&leader];
    let mut peer = factory.new_client(leader, target).await;
    let vote = openraft::impls::Vote::new(99, 7);
    let refused = peer
        .vote(
            VoteRequest::new(vote, None),
            RPCOption::new(Duration::from_secs(2)),
        )
        .await;
    assert!(
        refused.is_err(),
        "a foreign-CA node was answered: {refused:?}"
    );

    // A worker of this very cluster may not take part in Raft either.
    let worker = ca
        .issue(
            "w1",
            Role::Worker,
            &["127.0.0.1".to_string()],
            DEFAULT_NODE_CERT_VALIDITY,
        )
        .expect("issue");
    let mut factory = Network::new(client_config(&worker).expect("client tls"));
    let mut peer = factory.new_client(leader, target).await;
    let refused = peer
        .vote(
            VoteRequest::new(openraft::impls::Vote::new(99, 8), None),
            RPCOption::new(Duration::from_secs(2)),
        )
        .await;
    assert!(refused.is_err(), "a worker was answered: {refused:?}");

    // Stop the leader: its process is gone, its port closed.
    let old = ms.remove(leader as usize);
    old.raft.shutdown().await.expect("shutdown");
    old.server.abort();
    let rest: Vec<&Manager> = ms.iter().collect();
    write(&rest, put("svc/app1-prd/svc1", "v2")).await;
    let new_leader = leader_among(&rest, Duration::from_secs(15)).await;
    assert_ne!(new_leader, old.id);
    for m in &ms {
        wait_value(m, "svc/app1-prd/svc1", "v2").await;
    }
    for m in &ms {
        let _ = m.raft.shutdown().await;
        m.server.abort();
    }
}
