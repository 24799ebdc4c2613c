//! C3's store-level half: replicated desired-state writes per second on
//! three managers (mutual TLS over 127.0.0.1, each log append and apply an
//! fsynced redb commit), with N closed-loop clients writing through the
//! leader. bench/cluster.sh runs it next to etcd.
//!
//! Usage: write_bench <clients> <seconds>

use berth_net::{
    client_config, install_crypto_provider, server_config, ClusterCa, Role,
    DEFAULT_NODE_CERT_VALIDITY,
};
use berth_raft::{Network, RaftNode, Request};
use openraft::{BasicNode, Config};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let clients: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let seconds: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(clients, seconds))
}

async fn run(clients: usize, seconds: u64) -> Result<(), Box<dyn std::error::Error>> {
    install_crypto_provider();
    let ca = ClusterCa::generate("bench")?;
    let dir = tempfile::tempdir()?;
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 0..3u64 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        members.insert(
            id,
            BasicNode {
                addr: l.local_addr()?.to_string(),
            },
        );
        listeners.push(l);
    }
    let mut rafts = Vec::new();
    for (id, l) in listeners.into_iter().enumerate() {
        let ident = ca.issue(
            &format!("m{id}"),
            Role::Manager,
            &["127.0.0.1".to_string()],
            DEFAULT_NODE_CERT_VALIDITY,
        )?;
        let (log, sm) = berth_raft::open(&dir.path().join(format!("m{id}.redb")))?;
        let config = Config {
            cluster_name: "bench".into(),
            heartbeat_interval: 100,
            election_timeout_min: 300,
            election_timeout_max: 600,
            ..Default::default()
        }
        .validate()?;
        let raft = RaftNode::new(
            id as u64,
            Arc::new(config),
            Network::new(client_config(&ident)?),
            log,
            sm,
        )
        .await?;
        tokio::spawn(berth_raft::serve(raft.clone(), l, server_config(&ident)?));
        rafts.push(raft);
    }
    rafts[0].initialize(members).await?;
    let leader = loop {
        if let Some(l) = rafts[0].current_leader().await {
            break rafts[l as usize].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Warm up the connections.
    leader
        .client_write(Request::Put {
            key: "warm".into(),
            value: "{}".into(),
        })
        .await?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(seconds);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..clients {
        let leader: RaftNode = leader.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < stop {
                n += 1;
                let req = Request::Put {
                    key: format!("obj/c3/o{k}"),
                    value: format!("{{\"env\":\"v{n}\"}}"),
                };
                if leader.client_write(req).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    println!("{rate:.1}");
    for r in rafts {
        let _ = r.shutdown().await;
    }
    Ok(())
}
