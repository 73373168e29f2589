//! Judging many Closed-state calls at once, for replays of history: when no order of a
//! batch's calls could trip the breaker, recording them one by one changes only the window
//! and the run of consecutive failures, and both can be brought to the same end at once.

use std::time::Duration;

use super::{Machine, Mode, State};
use crate::window::{self, Totals};

/// A batch of calls for [`Machine::try_record_quiet`]: `n` calls, all judged within the
/// second of `now`, of which `n_failed` failed (timeouts included) and `n_slow` were slow.
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    pub now: Duration,
    pub n: u32,
    pub n_failed: u64,
    pub n_slow: u64,
}

impl Machine {
    /// Records `batch` as if each call had been admitted and recorded in turn, when that is
    /// sure to cause no transition, and says whether it did; otherwise it changes nothing
    /// (record the calls one by one). `outcome(i)` is call `i`'s `(failed, slow)`, in the
    /// order they happened, and must agree with the batch's counts.
    ///
    /// The test is a bound, so it may refuse a batch that would not trip: in the Closed
    /// state of an automatic machine, the runs of consecutive failures are counted (when the
    /// batch holds enough failures to reach the limit at all), and a rate cannot
    /// reach its threshold when the window's failures (or slow calls) plus all of the
    /// batch's, over the fewest calls the window will hold when a rate is judged (the
    /// minimum of calls at least), stay below it (or the window never holds the minimum). Within one second no call
    /// of a time-based window expires; a count-based window only loses calls by holding more.
    #[inline]
    pub fn try_record_quiet(
        &mut self,
        batch: Batch,
        outcome: impl Fn(u32) -> (bool, bool),
    ) -> bool {
        if self.mode != Mode::Automatic || self.state != State::Closed || batch.n == 0 {
            return false;
        }
        let n = u64::from(batch.n);
        if let Some(limit) = self.config.consecutive_failures()
            && u64::from(self.n_consecutive_failures) + batch.n_failed >= u64::from(limit)
        {
            // Enough failures for a run that trips: whether the batch makes one.
            let mut run = u64::from(self.n_consecutive_failures);
            for i in 0..batch.n {
                run = if outcome(i).0 { run + 1 } else { 0 };
                if run >= u64::from(limit) {
                    return false;
                }
            }
        }
        let totals = self.window.totals(batch.now);
        let capacity = self.window.capacity().unwrap_or(u64::MAX);
        let minimum = u64::from(self.config.minimum_calls());
        // Rates are judged only over the minimum of calls or more.
        let fewest = (totals.n_calls + 1).min(capacity).max(minimum);
        let most = (totals.n_calls + n).min(capacity);
        if most >= minimum {
            let below = |count: u64, threshold: Option<f64>| {
                threshold.is_none_or(|threshold| {
                    (count == 0 && threshold > 0.0) || (count as f64 / fewest as f64) < threshold
                })
            };
            if !below(
                totals.n_failures + batch.n_failed,
                self.config.failure_rate_threshold(),
            ) || !below(
                totals.n_slow + batch.n_slow,
                self.config.slow_call_rate_threshold(),
            ) {
                return false;
            }
        }
        let second = batch.now.as_secs();
        let pushed = self.window.push_second(
            second,
            Totals {
                n_calls: n,
                n_failures: batch.n_failed,
                n_slow: batch.n_slow,
            },
        );
        if pushed.is_some() {
            // The run of failures the batch ends with (continuing the one before it when
            // every call failed).
            let trailing = if batch.n_failed == 0 {
                0
            } else {
                (0..batch.n).rev().take_while(|&i| outcome(i).0).count() as u32
            };
            self.n_consecutive_failures = if trailing == batch.n {
                self.n_consecutive_failures + trailing
            } else {
                trailing
            };
        } else {
            for i in 0..batch.n {
                let (failed, slow) = outcome(i);
                self.n_consecutive_failures = if failed {
                    self.n_consecutive_failures + 1
                } else {
                    0
                };
                self.window.push(batch.now, window::flags(failed, slow));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests;
