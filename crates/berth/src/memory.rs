//! Bounds what the allocator keeps. Under a burst (hundreds of concurrent
//! edits, thousands of connections opening at once) glibc's malloc gives
//! each busy thread an arena of its own and keeps what the burst freed:
//! the daemon's RSS went from 17 to 72 MB and stayed there. Two arenas
//! serve a daemon whose work is I/O-bound, and `malloc_trim` hands freed
//! memory back to the kernel: within seconds once much of it lies free,
//! and at least every 30 s.

use std::time::Duration;

/// How often the free memory is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// Memory freed since the last trim that is worth one at once. (Trimmed
/// memory still counts as free in malloc's statistics, so it is the rise
/// that tells.)
const TRIM_ABOVE: usize = 8 << 20;
/// A trim at least this often, whatever lies free.
const TRIM_EVERY: Duration = Duration::from_secs(30);

/// Before any thread starts.
pub fn limit_arenas() {
    // SAFETY: mallopt(3) only sets an allocator parameter; called before
    // the runtime's threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Bytes free in malloc's arenas (not yet returned to the kernel).
fn free_bytes() -> usize {
    // SAFETY: mallinfo2(3) only reads the allocator's statistics.
    unsafe { libc::mallinfo2() }.fordblks
}

pub async fn trim_loop() {
    let mut tick = tokio::time::interval(LOOK_EVERY);
    tick.tick().await;
    let mut last = tokio::time::Instant::now();
    let mut floor = usize::MAX;
    loop {
        tick.tick().await;
        let due = last.elapsed() >= TRIM_EVERY;
        let free = tokio::task::spawn_blocking(free_bytes).await.unwrap_or(0);
        floor = floor.min(free);
        if !due && free < floor.saturating_add(TRIM_ABOVE) {
            continue;
        }
        last = tokio::time::Instant::now();
        floor = free;
        // SAFETY: malloc_trim(3) takes a plain size and only releases free
        // heap memory.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
    }
}
