//! What a monitor warns about (the `!` in `mon`, the `warn:` lines of
//! `print status`): each warning is removed when its condition clears (a
//! later pass that succeeds), ages out after the daemon's `--warn-ttl`,
//! and `berth <sel> clear` removes it by hand. A failed resource's
//! warnings say why it failed, so they stay until it is cleared or
//! started again.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// How many warnings a monitor keeps per object and per resource.
const KEEP: usize = 10;

/// When it was last seen true, what it says, and that with the time it was
/// first noted.
type Item = (Instant, String, String);

#[derive(Default)]
pub(crate) struct Warnings {
    items: VecDeque<Item>,
}

impl Warnings {
    /// Notes a warning. One already shown is seen true again: it stays,
    /// with the time it was first noted, rather than repeating.
    pub fn note(&mut self, line: String) {
        if let Some(item) = self.items.iter_mut().find(|(_, l, _)| *l == line) {
            item.0 = Instant::now();
            return;
        }
        if self.items.len() >= KEEP {
            self.items.pop_front();
        }
        let shown = format!("{} {line}", berth_bus::now_rfc3339());
        self.items.push_back((Instant::now(), line, shown));
    }

    /// Drops what was noted before `t`: a pass that started at `t` and
    /// succeeded shows those conditions are gone.
    pub fn clear_before(&mut self, t: Instant) {
        self.items.retain(|(at, _, _)| *at >= t);
    }

    /// Drops what is older than `ttl`.
    pub fn expire(&mut self, ttl: Duration) {
        let now = Instant::now();
        self.items
            .retain(|(at, _, _)| now.duration_since(*at) < ttl);
    }

    pub fn clear(&mut self) {
        self.items.clear();
    }

    pub fn lines(&self) -> impl Iterator<Item = &String> {
        self.items.iter().map(|(_, _, shown)| shown)
    }
}

#[cfg(test)]
mod tests {
    use super::Warnings;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn warnings_clear_with_their_condition_and_age_out() {
        let mut w = Warnings::default();
        w.note("old".into());
        tokio::time::advance(Duration::from_secs(1)).await;
        let pass = tokio::time::Instant::now();
        w.note("new".into());
        w.clear_before(pass);
        assert_eq!(w.lines().count(), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        w.expire(Duration::from_secs(60));
        assert_eq!(w.lines().count(), 0);
        w.note("standing".into());
        tokio::time::advance(Duration::from_secs(30)).await;
        let pass = tokio::time::Instant::now();
        w.note("standing".into());
        w.clear_before(pass);
        assert_eq!(w.lines().count(), 1, "a standing condition stays");
        w.clear();
        for i in 0..20 {
            w.note(format!("{i}"));
        }
        assert_eq!(w.lines().count(), 10);
    }
}
