//! How long an ingress worker thread has run without sleeping, told from
//! its runtime's park and unpark hooks, and the yield that ends a run
//! once it is long enough (`workers.rs` says why). A park that returned
//! at once (events were ready) is not a sleep, so the run goes on.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// A park longer than this was a sleep: the thread left its core.
const SLEPT: Duration = Duration::from_micros(20);

thread_local! {
    static PARKED: Cell<Option<Instant>> = const { Cell::new(None) };
    static RUNNING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The runtime is about to park the thread.
pub fn parking() {
    PARKED.set(Some(Instant::now()));
}

/// The runtime is back from a park: yields the core once the thread has
/// run `after` without sleeping.
pub fn unparked(after: Duration) {
    let now = Instant::now();
    match next(PARKED.get(), RUNNING_SINCE.get(), now, after) {
        Next::Run(since) => RUNNING_SINCE.set(Some(since)),
        Next::Yield => {
            // SAFETY: sched_yield(2) takes no argument and cannot fail.
            unsafe { libc::sched_yield() };
            RUNNING_SINCE.set(Some(Instant::now()));
        }
    }
}

#[derive(Debug, PartialEq)]
enum Next {
    /// Go on; the thread has been running since then.
    Run(Instant),
    Yield,
}

fn next(parked: Option<Instant>, since: Option<Instant>, now: Instant, after: Duration) -> Next {
    let slept = parked.is_none_or(|p| now.saturating_duration_since(p) > SLEPT);
    let since = match since {
        Some(s) if !slept => s,
        _ => now,
    };
    if now.saturating_duration_since(since) > after {
        Next::Yield
    } else {
        Next::Run(since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AFTER: Duration = Duration::from_millis(2);

    #[test]
    fn a_run_of_quick_parks_yields_once_it_is_long_enough() {
        let t0 = Instant::now();
        let at = |us: u64| t0 + Duration::from_micros(us);
        // Woken from a sleep: a run starts.
        assert_eq!(next(None, None, at(0), AFTER), Next::Run(at(0)));
        // Parks that return at once keep the run going...
        assert_eq!(
            next(Some(at(999)), Some(at(0)), at(1_000), AFTER),
            Next::Run(at(0))
        );
        assert_eq!(
            next(Some(at(1_999)), Some(at(0)), at(2_000), AFTER),
            Next::Run(at(0))
        );
        // ...until it has lasted longer than `after`.
        assert_eq!(
            next(Some(at(2_099)), Some(at(0)), at(2_100), AFTER),
            Next::Yield
        );
    }

    #[test]
    fn a_sleep_starts_a_new_run() {
        let t0 = Instant::now();
        let at = |us: u64| t0 + Duration::from_micros(us);
        assert_eq!(
            next(Some(at(1_900)), Some(at(0)), at(2_500), AFTER),
            Next::Run(at(2_500))
        );
    }
}
