//! When an ingress worker thread gives its core away (`workers.rs` says
//! why): once before each park, and once it has run long enough without
//! sleeping. Both are told from its runtime's park and unpark hooks. A
//! park that returned at once (events were ready) is not a sleep, so the
//! run goes on.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// A park longer than this was a sleep: the thread left its core.
const SLEPT: Duration = Duration::from_micros(20);

/// A yield before parking that took longer than this gave the core to a
/// thread that kept it until the scheduler took it back: a CPU-bound
/// neighbour, rather than a client or backend answering.
const LONG_YIELD: Duration = Duration::from_millis(2);

/// Long yields may take one 50th of the time (2%); past that, parking
/// stops yielding until the budget has refilled.
const LONG_YIELD_SHARE: u32 = 50;

/// The most long-yield time saved up.
const BUDGET_CAP: Duration = Duration::from_millis(10);

thread_local! {
    static PARKED: Cell<Option<Instant>> = const { Cell::new(None) };
    static RUNNING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    static BUDGET: Cell<Option<Budget>> = const { Cell::new(None) };
}

/// The runtime is about to park the thread: it yields its core first,
/// unless long yields have used up their budget.
pub fn parking() {
    let now = Instant::now();
    // From before the yield: a yield that gave the core away ends the run.
    PARKED.set(Some(now));
    let budget = BUDGET.get().unwrap_or(Budget::full(now)).refilled(now);
    let budget = if budget.allows() {
        // SAFETY: sched_yield(2) takes no argument and cannot fail.
        unsafe { libc::sched_yield() };
        budget.spent(now.elapsed())
    } else {
        budget
    };
    BUDGET.set(Some(budget));
}

/// The runtime is back from a park: yields the core once the thread has
/// run `after` without sleeping.
pub fn unparked(after: Duration) {
    let now = Instant::now();
    match next(PARKED.get(), RUNNING_SINCE.get(), now, after) {
        Next::Run(since) => RUNNING_SINCE.set(Some(since)),
        Next::Yield => {
            // SAFETY: as above.
            unsafe { libc::sched_yield() };
            RUNNING_SINCE.set(Some(Instant::now()));
        }
    }
}

/// How much more time long yields may take, refilled at their share of
/// the time that passes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Budget {
    left: i128,
    at: Instant,
}

impl Budget {
    fn full(now: Instant) -> Budget {
        Budget {
            left: BUDGET_CAP.as_nanos() as i128,
            at: now,
        }
    }

    fn refilled(self, now: Instant) -> Budget {
        let earned = (now.saturating_duration_since(self.at) / LONG_YIELD_SHARE).as_nanos();
        Budget {
            left: (self.left + earned as i128).min(BUDGET_CAP.as_nanos() as i128),
            at: now,
        }
    }

    fn allows(self) -> bool {
        self.left >= 0
    }

    fn spent(self, took: Duration) -> Budget {
        if took <= LONG_YIELD {
            return self;
        }
        Budget {
            left: self.left - took.as_nanos() as i128,
            ..self
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
    fn yields_that_return_soon_cost_nothing() {
        let t0 = Instant::now();
        let mut b = Budget::full(t0);
        for _ in 0..1_000 {
            b = b.spent(LONG_YIELD);
        }
        assert_eq!(b, Budget::full(t0));
        assert!(b.allows());
    }

    #[test]
    fn long_yields_past_their_share_stop_yielding_until_it_is_earned_back() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let long = Duration::from_millis(4);
        let mut b = Budget::full(t0);
        for ms in [0, 4, 8] {
            assert!(b.allows(), "at {ms} ms");
            b = b.refilled(at(ms)).spent(long);
        }
        // 10 ms saved, 12 spent, 0.16 earned meanwhile: 1.84 ms short,
        // earned back at 1/50 of the time, in 92 ms.
        assert!(!b.allows());
        assert!(!b.refilled(at(8 + 50)).allows());
        let back = 8 + 2 * u64::from(LONG_YIELD_SHARE);
        assert!(!b.refilled(at(back - 20)).allows());
        assert!(b.refilled(at(back)).allows());
    }

    #[test]
    fn the_budget_saves_up_no_more_than_its_cap() {
        let t0 = Instant::now();
        let b = Budget::full(t0).refilled(t0 + Duration::from_secs(3_600));
        let spent = b.spent(BUDGET_CAP).spent(LONG_YIELD * 2);
        assert!(!spent.allows());
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
