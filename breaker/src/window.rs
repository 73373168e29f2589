//! The sliding windows that failure and slow-call rates are judged over.
//!
//! A count-based window keeps the last N outcomes in a ring; a time-based window keeps one
//! bucket per second that held calls within the last N seconds, oldest first. Both keep
//! running totals, so judging is O(1); expiring old seconds costs one step per second that
//! held calls, however long the gap since the last call (sparse traffic through a long
//! window stays cheap).

use std::collections::VecDeque;
use std::time::Duration;

use crate::config;

/// Totals over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub n_calls: u64,
    pub n_failures: u64,
    pub n_slow: u64,
}

#[derive(Clone, Debug)]
pub(crate) enum Window {
    Count(CountWindow),
    Time(TimeWindow),
}

const FAILED: u8 = 1;
const SLOW: u8 = 2;

#[derive(Clone, Debug)]
pub(crate) struct CountWindow {
    /// Outcome flags (`FAILED`, `SLOW`) of the last `len` calls; the oldest at `head`.
    slots: Box<[u8]>,
    head: usize,
    len: usize,
    totals: Totals,
}

#[derive(Clone, Debug)]
pub(crate) struct TimeWindow {
    /// How many seconds the window spans.
    n_seconds: u64,
    /// The seconds that held calls, oldest first, each with its totals: all after
    /// `latest_second - n_seconds`.
    live: VecDeque<Bucket>,
    /// The latest second seen.
    latest_second: u64,
    totals: Totals,
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    second: u64,
    totals: Totals,
}

pub(crate) fn flags(failed: bool, slow: bool) -> u8 {
    (if failed { FAILED } else { 0 }) | (if slow { SLOW } else { 0 })
}

// === impl Window ===

impl Window {
    pub(crate) fn new(window: config::Window) -> Window {
        match window {
            config::Window::Count(n_calls) => Window::Count(CountWindow {
                slots: vec![0; n_calls as usize].into_boxed_slice(),
                head: 0,
                len: 0,
                totals: Totals::default(),
            }),
            config::Window::Time(n_seconds) => Window::Time(TimeWindow {
                n_seconds: u64::from(n_seconds),
                live: VecDeque::new(),
                latest_second: 0,
                totals: Totals::default(),
            }),
        }
    }

    /// A window of the new shape holding as much of this one's recent history as fits.
    pub(crate) fn resized(&self, shape: config::Window, now: Duration) -> Window {
        let mut next = Window::new(shape);
        match (self, &mut next) {
            (Window::Count(old), Window::Count(new)) => {
                let keep = old.len.min(new.slots.len());
                for i in old.len - keep..old.len {
                    new.push(old.slots[(old.head + i) % old.slots.len()]);
                }
            }
            (Window::Time(old), Window::Time(new)) => {
                let kept = old.live.iter().filter(|bucket| {
                    bucket.totals.n_calls > 0 && bucket.second + old.n_seconds > old.latest_second
                });
                for bucket in kept {
                    new.advance(bucket.second);
                    new.add(bucket.second, bucket.totals);
                }
                new.advance(now.as_secs().max(old.latest_second));
            }
            // A change of kind starts afresh: the calls cannot be placed in the other kind.
            _ => {}
        }
        next
    }

    pub(crate) fn clear(&mut self) {
        match self {
            Window::Count(window) => {
                window.head = 0;
                window.len = 0;
                window.totals = Totals::default();
            }
            Window::Time(window) => {
                window.live.clear();
                window.totals = Totals::default();
            }
        }
    }

    /// Records one call's outcome at `now`.
    #[inline]
    pub(crate) fn push(&mut self, now: Duration, outcome_flags: u8) {
        match self {
            Window::Count(window) => window.push(outcome_flags),
            Window::Time(window) => {
                let second = now.as_secs();
                window.advance(second);
                window.add(
                    second,
                    Totals {
                        n_calls: 1,
                        n_failures: u64::from(outcome_flags & FAILED != 0),
                        n_slow: u64::from(outcome_flags & SLOW != 0),
                    },
                );
            }
        }
    }

    /// Records `n` plain successes that happened during `second` (time-based windows) or
    /// just now (count-based windows).
    pub(crate) fn push_successes(&mut self, second: u64, n: u64) {
        match self {
            Window::Count(window) => {
                let n_slots = window.slots.len() as u64;
                if n >= n_slots {
                    // The successes push every older call out.
                    window.head = 0;
                    window.len = window.slots.len();
                    window.slots.fill(0);
                    window.totals = Totals {
                        n_calls: n_slots,
                        n_failures: 0,
                        n_slow: 0,
                    };
                } else {
                    for _ in 0..n {
                        window.push(0);
                    }
                }
            }
            Window::Time(window) => {
                if second + window.n_seconds <= window.latest_second {
                    return;
                }
                window.advance(second);
                window.add(
                    second,
                    Totals {
                        n_calls: n,
                        n_failures: 0,
                        n_slow: 0,
                    },
                );
            }
        }
    }

    /// Records calls judged during `second` all at once: their totals for a time-based
    /// window, whose buckets do not keep the order of one second's calls; `None` for a
    /// count-based window, which does (push each outcome instead).
    #[inline]
    pub(crate) fn push_second(&mut self, second: u64, add: Totals) -> Option<()> {
        match self {
            Window::Count(_) => None,
            Window::Time(window) => {
                window.advance(second);
                window.add(second, add);
                Some(())
            }
        }
    }

    /// The most calls the window holds (`None` for a time-based window: no such bound).
    #[inline]
    pub(crate) fn capacity(&self) -> Option<u64> {
        match self {
            Window::Count(window) => Some(window.slots.len() as u64),
            Window::Time(_) => None,
        }
    }

    /// Totals at `now`: time-based windows first let old seconds expire.
    #[inline]
    pub(crate) fn totals(&mut self, now: Duration) -> Totals {
        match self {
            Window::Count(window) => window.totals,
            Window::Time(window) => {
                window.advance(now.as_secs());
                window.totals
            }
        }
    }
}

// === impl CountWindow ===

impl CountWindow {
    #[inline]
    fn push(&mut self, outcome_flags: u8) {
        let n_slots = self.slots.len();
        if self.len == n_slots {
            let evicted = self.slots[self.head];
            self.totals.n_failures -= u64::from(evicted & FAILED != 0);
            self.totals.n_slow -= u64::from(evicted & SLOW != 0);
            self.slots[self.head] = outcome_flags;
            self.head = (self.head + 1) % n_slots;
        } else {
            self.slots[(self.head + self.len) % n_slots] = outcome_flags;
            self.len += 1;
            self.totals.n_calls += 1;
        }
        self.totals.n_failures += u64::from(outcome_flags & FAILED != 0);
        self.totals.n_slow += u64::from(outcome_flags & SLOW != 0);
    }
}

// === impl TimeWindow ===

impl TimeWindow {
    /// Moves the window's end to `second`, dropping the seconds that fall out.
    #[inline]
    fn advance(&mut self, second: u64) {
        if second <= self.latest_second {
            return;
        }
        while let Some(oldest) = self.live.front()
            && oldest.second + self.n_seconds <= second
        {
            self.totals.n_calls -= oldest.totals.n_calls;
            self.totals.n_failures -= oldest.totals.n_failures;
            self.totals.n_slow -= oldest.totals.n_slow;
            self.live.pop_front();
        }
        self.latest_second = second;
    }

    /// Adds to the totals of `second`, which must lie within the window.
    #[inline]
    fn add(&mut self, second: u64, add: Totals) {
        let bucket = match self.live.back_mut() {
            Some(last) if last.second == second => last,
            Some(last) if last.second > second => {
                // Seconds mostly come in order; an earlier one still within the window is
                // found (or placed) among the others.
                let at = self.live.partition_point(|bucket| bucket.second < second);
                if self
                    .live
                    .get(at)
                    .is_none_or(|bucket| bucket.second != second)
                {
                    self.live.insert(
                        at,
                        Bucket {
                            second,
                            totals: Totals::default(),
                        },
                    );
                }
                &mut self.live[at]
            }
            _ => {
                self.live.push_back(Bucket {
                    second,
                    totals: Totals::default(),
                });
                self.live.back_mut().expect("just pushed")
            }
        };
        bucket.totals.n_calls += add.n_calls;
        bucket.totals.n_failures += add.n_failures;
        bucket.totals.n_slow += add.n_slow;
        self.totals.n_calls += add.n_calls;
        self.totals.n_failures += add.n_failures;
        self.totals.n_slow += add.n_slow;
    }
}

#[cfg(test)]
mod tests;
