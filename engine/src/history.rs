//! A breaker's history as the engine reads it: one row per window (step) from the rollups.
//!
//! The backend builds a [`History`] from its per-second or per-minute rollups; the scenario
//! files of `shared/tuning` parse into the same type (see [`crate::scenario`]). A history holds
//! no ground truth: the tuner only ever sees this.

use std::time::Duration;

/// Per-window counts of one breaker, oldest first, `step` apart.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// The length of one window (1 s for scenario files, usually 1 min for rollups).
    pub step: Duration,
    /// Upper bounds of the latency histogram's buckets, in milliseconds, ascending.
    pub latency_buckets_ms: Vec<u32>,
    pub steps: Vec<Step>,
}

/// One window of a breaker's rollup.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// Start of the window, in milliseconds from the start of the history.
    pub t_ms: u64,
    /// Calls the application attempted.
    pub n_calls: u32,
    /// Calls that failed (or would have failed, had they been admitted).
    pub n_failures: u32,
    /// Calls the breaker running at the time rejected (0 when unknown).
    pub n_rejected: u32,
    /// Calls per latency bucket; the same length as [`History::latency_buckets_ms`].
    pub latency_counts: Vec<u32>,
}

// === impl History ===

impl History {
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn n_calls(&self) -> u64 {
        self.steps.iter().map(|step| u64::from(step.n_calls)).sum()
    }

    /// The steps `range` as a history of their own (times are kept).
    pub fn slice(&self, range: std::ops::Range<usize>) -> History {
        History {
            step: self.step,
            latency_buckets_ms: self.latency_buckets_ms.clone(),
            steps: self.steps[range].to_vec(),
        }
    }

    /// The end of the history, in milliseconds.
    pub fn end_ms(&self) -> u64 {
        self.steps
            .last()
            .map_or(0, |step| step.t_ms + self.step.as_millis() as u64)
    }

    /// A history with about one call in `factor` of this one, for quick screening replays.
    ///
    /// Calls, failures and every latency bucket are divided by `factor` with carried
    /// remainders, so totals are kept to within one call and nothing random is involved.
    pub fn thinned(&self, factor: u32) -> History {
        if factor <= 1 {
            return self.clone();
        }
        let factor = u64::from(factor);
        let n_buckets = self.latency_buckets_ms.len();
        let mut carry_calls = 0u64;
        let mut carry_failures = 0u64;
        let mut carry_rejected = 0u64;
        let mut carry_buckets = vec![0u64; n_buckets];
        let steps = self
            .steps
            .iter()
            .map(|step| {
                let thin = |value: u32, carry: &mut u64| -> u32 {
                    *carry += u64::from(value);
                    let out = *carry / factor;
                    *carry -= out * factor;
                    out as u32
                };
                let n_calls = thin(step.n_calls, &mut carry_calls);
                let n_failures = thin(step.n_failures, &mut carry_failures).min(n_calls);
                let n_rejected = thin(step.n_rejected, &mut carry_rejected);
                let mut latency_counts: Vec<u32> = step
                    .latency_counts
                    .iter()
                    .zip(carry_buckets.iter_mut())
                    .map(|(&count, carry)| thin(count, carry))
                    .collect();
                // Keep the histogram's total equal to the calls, adjusting the middle bucket.
                let total: u32 = latency_counts.iter().sum();
                if total != n_calls && n_buckets > 0 {
                    let fix = latency_counts
                        .iter()
                        .rposition(|&count| count > 0)
                        .unwrap_or(0);
                    if total > n_calls {
                        let mut excess = total - n_calls;
                        for count in latency_counts.iter_mut().rev() {
                            let take = excess.min(*count);
                            *count -= take;
                            excess -= take;
                        }
                    } else {
                        latency_counts[fix] += n_calls - total;
                    }
                }
                Step {
                    t_ms: step.t_ms,
                    n_calls,
                    n_failures,
                    n_rejected,
                    latency_counts,
                }
            })
            .collect();
        History {
            step: self.step,
            latency_buckets_ms: self.latency_buckets_ms.clone(),
            steps,
        }
    }
}
