//! Three managers replicate desired state over HTTP/2 with mutual TLS on
//! 127.0.0.1: a write on the leader reaches every state machine, and after
//! the leader is stopped the others elect a new one and accept writes.

use berth_net::{
    client_config, install_crypto_provider, server_config, ClusterCa, Role,
    DEFAULT_NODE_CERT_VALIDITY,
};
use berth_raft::{Network, RaftNode, Request, StateMachine, TlsSlot};
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
    /// The client TLS its network dials with: emptied, it reaches nobody.
    tls: TlsSlot,
    client: Arc<rustls::ClientConfig>,
    _dir: tempfile::TempDir,
}

/// What peers dial to reach one manager: a TCP relay to its listener
/// that a test can cut, closing every relayed connection and refusing new
/// ones, as a partition does.
#[derive(Clone)]
struct Relay {
    addr: std::net::SocketAddr,
    open: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(to: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind relay");
        let relay = Relay {
            addr: listener.local_addr().expect("addr"),
            open: Arc::new(std::sync::atomic::AtomicBool::new(true)),
            conns: Arc::default(),
        };
        let r = relay.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !r.open.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                r.conns.lock().unwrap().push(task);
            }
        });
        relay
    }

    fn drop_connections(&self) {
        for t in self.conns.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

/// Cuts manager `i` off both ways: nobody reaches it, it dials nobody, and
/// every connection kept between managers breaks (the others re-dial).
fn isolate(ms: &[Manager], relays: &[Relay], i: usize) {
    *ms[i].tls.write().unwrap() = None;
    relays[i]
        .open
        .store(false, std::sync::atomic::Ordering::SeqCst);
    relays.iter().for_each(Relay::drop_connections);
}

fn heal(ms: &[Manager], relays: &[Relay], i: usize) {
    *ms[i].tls.write().unwrap() = Some(ms[i].client.clone());
    relays[i]
        .open
        .store(true, std::sync::atomic::Ordering::SeqCst);
}

async fn start(id: u64, ca: &ClusterCa, listener: tokio::net::TcpListener) -> Manager {
    start_with(id, ca, listener, None).await
}

async fn start_with(
    id: u64,
    ca: &ClusterCa,
    listener: tokio::net::TcpListener,
    pre_vote: Option<bool>,
) -> Manager {
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
        enable_pre_vote: pre_vote,
        ..Default::default()
    }
    .validate()
    .expect("config");
    let client = client_config(&ident).expect("client tls");
    let tls: TlsSlot = Arc::new(std::sync::RwLock::new(Some(client.clone())));
    let network = Network::with_slot(tls.clone());
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
        tls,
        client,
        _dir: dir,
    }
}

/// Three managers on 127.0.0.1, each reached through its relay,
/// initialized, with a leader elected.
async fn three(ca: &ClusterCa, pre_vote: Option<bool>) -> (Vec<Manager>, Vec<Relay>) {
    let mut ms = Vec::new();
    let mut relays = Vec::new();
    let mut members = BTreeMap::new();
    for id in 0..3u64 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let relay = Relay::start(l.local_addr().expect("addr")).await;
        members.insert(
            id,
            BasicNode {
                addr: relay.addr.to_string(),
            },
        );
        relays.push(relay);
        ms.push(start_with(id, ca, l, pre_vote).await);
    }
    ms[0].raft.initialize(members).await.expect("initialize");
    let all: Vec<&Manager> = ms.iter().collect();
    leader_among(&all, Duration::from_secs(15)).await;
    (ms, relays)
}

fn term(m: &Manager) -> u64 {
    use openraft::async_runtime::WatchReceiver;
    m.raft.metrics().borrow_watched().current_term
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

/// A follower cut off for several election timeouts comes back without
/// costing the cluster its leader: with Pre-Vote it never raised its term,
/// so nothing it sends makes the leader step down. (Without it, the
/// returning node's higher term deposes a healthy leader, and every
/// failover lease in the cluster rides on the election that follows.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_follower_returns_without_deposing_the_leader() {
    install_crypto_provider();
    let ca = ClusterCa::generate("test").expect("ca");
    let (ms, relays) = three(&ca, Some(true)).await;
    let all: Vec<&Manager> = ms.iter().collect();
    let leader = leader_among(&all, Duration::from_secs(15)).await;
    let before = term(&ms[leader as usize]);
    let follower = (leader as usize + 1) % 3;
    isolate(&ms, &relays, follower);
    // Several election timeouts (400-800 ms) pass while it is cut off.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        term(&ms[follower]) <= before,
        "the isolated follower raised its term from {before} to {}",
        term(&ms[follower])
    );
    heal(&ms, &relays, follower);
    let put = Request::Put {
        key: "k".into(),
        value: "after".into(),
    };
    let all: Vec<&Manager> = ms.iter().collect();
    write(&all, put).await;
    wait_value(&ms[follower], "k", "after").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all: Vec<&Manager> = ms.iter().collect();
    assert_eq!(
        leader_among(&all, Duration::from_secs(5)).await,
        leader,
        "the leader was deposed"
    );
    assert_eq!(term(&ms[leader as usize]), before, "an election happened");
    for m in &ms {
        let _ = m.raft.shutdown().await;
        m.server.abort();
    }
}
