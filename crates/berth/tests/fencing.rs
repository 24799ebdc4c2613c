//! Fencing fails closed: with no fencing watchdog to hold its deadline, a
//! node starts no failover instance and extends no lease; once the
//! watchdog is back, the instance starts without a manual step.

mod common;
use common::testbed::Testbed;
use common::wait_until;
use common::IMAGE;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Kills the node's watchdog and holds its lock, so that every watchdog
/// the agent spawns exits at once: the watchdog stays unavailable until
/// the returned file is dropped.
fn disable_watchdog(home: &std::path::Path) -> std::fs::File {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(home.join("watchdog.lock"))
        .expect("watchdog.lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(pid) = std::fs::read_to_string(home.join("watchdog.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return lock;
        }
        assert!(
            Instant::now() < deadline,
            "could not take the watchdog lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_failover_service_does_not_start_without_its_watchdog() {
    let bed = Testbed::new(1);
    bed.form_cluster(1);
    let n0 = &bed.nodes[0];
    let name = "fw..db.container.0";
    let running = || n0.running().iter().any(|c| c == name);
    n0.ok(&[
        "create",
        "fw/db",
        "--kw",
        &format!("container#0.image={IMAGE}"),
        "--kw",
        "orchestrate=ha",
    ]);
    // The watchdog exists once the agent has sent it a lease.
    wait_until("the watchdog", 30, || {
        n0.home().join("watchdog.pid").exists()
    });
    let lock = disable_watchdog(&n0.home());

    let out = n0.berth(&["fw/db", "start"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "started without a watchdog: {said}");
    assert!(said.contains("watchdog"), "{said}");
    // Not started later either, while the watchdog stays away.
    let hold = Instant::now() + Duration::from_secs(6);
    while Instant::now() < hold {
        assert!(!running(), "the instance started without a watchdog");
        std::thread::sleep(Duration::from_millis(200));
    }
    let st = n0.json(&["fw/db", "print", "status"]);
    assert!(
        st.to_string().contains("watchdog"),
        "status does not say why: {st:#}"
    );
    let cs = n0.json(&["cluster", "status"]).to_string();
    assert!(
        cs.contains("watchdog"),
        "cluster status does not say why: {cs}"
    );

    // The watchdog can run again: the agent respawns it and the instance
    // starts, with no command.
    drop(lock);
    wait_until(
        "the instance to start once the watchdog is back",
        30,
        running,
    );
    wait_until("a watchdog again", 10, || {
        std::fs::read_to_string(n0.home().join("watchdog.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .is_some_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok())
    });
}
