//! The clock leases are measured on: CLOCK_BOOTTIME, which keeps counting
//! while the machine is suspended (`Instant`'s CLOCK_MONOTONIC does not,
//! and a resumed worker would believe its lease still runs).

use std::time::Duration;

pub fn boottime() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on
    // every Linux berth supports, and the call has no other effect.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        // Cannot happen on Linux; fall back to a clock that does not jump.
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        return ORIGIN.get_or_init(std::time::Instant::now).elapsed();
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
