//! systemd's notify protocol (sd_notify(3)), spoken directly: `READY=1`
//! once the API answers, `WATCHDOG=1` at half of `$WATCHDOG_USEC` while it
//! still answers, `STOPPING=1` at shutdown. Without `$NOTIFY_SOCKET`
//! (not under a `Type=notify` unit) every call is a no-op.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Sends one notification, if systemd asked for them.
pub fn send(state: &str) {
    let Some(addr) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let addr = addr.to_string_lossy().into_owned();
    let target = match addr.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(&addr),
    };
    let sent = UnixDatagram::unbound()
        .and_then(|s| target.and_then(|t| s.send_to_addr(state.as_bytes(), &t)));
    if let Err(e) = sent {
        tracing::warn!("sd_notify {state:?} to {addr}: {e}");
    }
}

/// The watchdog period systemd asked for, if it is meant for this process.
fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    match std::env::var("WATCHDOG_PID") {
        Ok(pid) if pid.trim() != std::process::id().to_string() => None,
        _ => Some(Duration::from_micros(usec)),
    }
}

async fn answers(socket: &Path) -> bool {
    tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::UnixStream::connect(socket),
    )
    .await
    .is_ok_and(|r| r.is_ok())
}

/// Says READY=1 once the API socket accepts connections, then pings the
/// watchdog while it still does: a daemon whose API hangs is restarted.
pub async fn ready_and_watchdog(socket: PathBuf) {
    while !answers(&socket).await {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    send(&format!("READY=1\nMAINPID={}", std::process::id()));
    let Some(period) = watchdog_period() else {
        return;
    };
    let mut tick = tokio::time::interval(period / 2);
    loop {
        tick.tick().await;
        if answers(&socket).await {
            send("WATCHDOG=1");
        }
    }
}
