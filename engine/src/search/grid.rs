//! [`Grid`]: the values each parameter may take, and [`Param`], the parameters the descent
//! varies one at a time.

use std::time::Duration;

use breaker::{Wait, Window};

use super::{Candidate, Probes};
use crate::history::History;

/// The values each parameter may take. Also the oracle's grid in [`crate::eval`].
#[derive(Clone, Debug)]
pub struct Grid {
    pub failure_rate_thresholds: Vec<Option<f64>>,
    pub windows: Vec<Window>,
    pub minimum_calls: Vec<u32>,
    pub consecutive_failures: Vec<Option<u32>>,
    /// Slow-call durations, in milliseconds.
    pub slow_call_durations_ms: Vec<u32>,
    pub slow_call_rates: Vec<f64>,
    pub waits: Vec<Wait>,
    /// How Half-Open decides: by a few successes in a row, or by the rates over its probes.
    pub half_open: Vec<Probes>,
}

/// A parameter the search varies: one coordinate of the descent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Param {
    /// [`Candidate::failure_rate_threshold`], or off.
    FailureRate,
    /// [`Candidate::window`].
    Window,
    /// [`Candidate::minimum_calls`].
    MinimumCalls,
    /// [`Candidate::consecutive_failures`], or off.
    ConsecutiveFailures,
    /// The slow-call policy: off, or each duration at three rates.
    SlowCall,
    /// The slow-call rate at the current duration (nothing to vary while the policy is off).
    SlowCallRate,
    /// [`Candidate::wait`].
    Wait,
    /// [`Candidate::half_open`].
    HalfOpen,
    /// The wait and the half-open probes together: each alone can make the other's better
    /// value look worse (a shorter wait pays off only with more probes, which a long wait
    /// makes dearer), so the descent tries them jointly once it has settled.
    WaitAndProbes,
    /// The window and the minimum of calls together (a longer window with a higher minimum
    /// judges the same number of calls sooner or later).
    WindowAndMinimum,
}

// === impl Param ===

impl Param {
    /// Every parameter, in the order each round of the descent visits them. The order decides
    /// which of two changes is taken first, and so the result.
    pub(super) const ALL: [Param; 8] = [
        Param::FailureRate,
        Param::Window,
        Param::MinimumCalls,
        Param::ConsecutiveFailures,
        Param::SlowCall,
        Param::SlowCallRate,
        Param::Wait,
        Param::HalfOpen,
    ];
}

// === impl Grid ===

impl Grid {
    /// The grid for a history with these latency buckets and this median latency bucket.
    pub fn for_history(history: &History) -> Grid {
        let secs = Duration::from_secs;
        let millis = Duration::from_millis;
        let bounds = &history.latency_buckets_ms;
        let p50_bucket = median_bucket(history);
        let step_s = history.step.as_secs().max(1) as u32;
        Grid {
            failure_rate_thresholds: [None]
                .into_iter()
                .chain(
                    [
                        0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
                    ]
                    .map(Some),
                )
                .collect(),
            windows: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800]
                .into_iter()
                .filter(|&s| s >= step_s.min(60))
                .map(Window::Time)
                .chain([5, 10, 20, 50, 100, 200, 500, 1000].map(Window::Count))
                .collect(),
            minimum_calls: vec![1, 2, 3, 5, 10, 20, 50, 100, 200],
            consecutive_failures: [None]
                .into_iter()
                .chain([3, 5, 10, 20, 50, 100].map(Some))
                .collect(),
            slow_call_durations_ms: bounds
                .iter()
                .enumerate()
                .filter(|&(b, _)| b > p50_bucket && b <= p50_bucket + 7)
                .map(|(_, &ms)| ms)
                .collect(),
            slow_call_rates: vec![0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9],
            waits: [
                500, 1_000, 2_000, 3_000, 5_000, 10_000, 15_000, 20_000, 30_000, 60_000, 120_000,
            ]
            .into_iter()
            .map(|ms| Wait::Fixed(millis(ms)))
            .chain([
                Wait::Exponential {
                    initial: secs(1),
                    multiplier: 2.0,
                    max: secs(60),
                    jitter: 0.0,
                },
                Wait::Exponential {
                    initial: secs(5),
                    multiplier: 2.0,
                    max: secs(120),
                    jitter: 0.0,
                },
            ])
            .collect(),
            half_open: [(1, 1), (2, 2), (3, 3), (5, 5), (10, 10), (3, 1)]
                .map(|(probes, successes)| Probes::Successes(probes, successes))
                .into_iter()
                .chain([5, 10].map(Probes::Rates))
                .collect(),
        }
    }

    /// The grid without values outside the safety bounds a suggestion must keep: rates are
    /// judged over at least 5 calls and windows of at least 5 s (or 10 calls), and at most
    /// [`Grid::SAFE_MAX_PROBE_SUCCESSES`] probe successes in a row are needed to close;
    /// probes judged by their rates have no such bound, since one usual failure among them
    /// does not decide (see also [`Grid::SAFE_MIN_FAILURES_TO_TRIP`]). A replay spreads failures perfectly evenly, so it
    /// would find nothing wrong with judging one call in a one-second window; real traffic is
    /// not that kind, and the suggestion must hold on real traffic.
    pub fn within_safety_bounds(mut self) -> Grid {
        self.minimum_calls.retain(|&n| n >= 5);
        self.windows.retain(|window| match *window {
            Window::Time(secs) => secs >= 5,
            Window::Count(n) => n >= 10,
        });
        self.consecutive_failures
            .retain(|n| n.is_none_or(|n| n >= 3));
        self.half_open
            .retain(|&probes| probes.within_safety_bounds() == probes);
        self
    }

    /// The fewest failures a rate policy must need to trip, within the safety bounds.
    pub const SAFE_MIN_FAILURES_TO_TRIP: f64 = 3.0;

    /// The most probe successes in a row a suggestion may need to close, within the safety
    /// bounds: each is one more chance for a usual failure to open the breaker again, which
    /// the search prices (see `ProbeRisk::cost`: the further waits a failed probe brings, and
    /// those after them), so the bound is the grid's own most, and clamps only a seed (a
    /// current config) that asks for more. Ten in a row keep a breaker open through a partial
    /// failure, where three successes among failing calls come by chance.
    pub const SAFE_MAX_PROBE_SUCCESSES: u32 = 10;

    /// Every other value of each list (the first and last kept): half the replays, for fleets.
    pub fn coarse(mut self) -> Grid {
        fn every_other<T: Clone>(values: &mut Vec<T>) {
            let last = values.last().cloned();
            let mut kept: Vec<T> = values.iter().step_by(2).cloned().collect();
            if values.len().is_multiple_of(2)
                && let Some(last) = last
            {
                kept.push(last);
            }
            *values = kept;
        }
        every_other(&mut self.failure_rate_thresholds);
        every_other(&mut self.windows);
        every_other(&mut self.minimum_calls);
        every_other(&mut self.consecutive_failures);
        every_other(&mut self.slow_call_durations_ms);
        every_other(&mut self.slow_call_rates);
        every_other(&mut self.waits);
        every_other(&mut self.half_open);
        self
    }

    /// Every variant of `cand` along `param`, in the grid's order.
    pub(super) fn variants(&self, cand: &Candidate, param: Param) -> Vec<Candidate> {
        let with = |f: &dyn Fn(&mut Candidate)| {
            let mut next = cand.clone();
            f(&mut next);
            next
        };
        match param {
            Param::FailureRate => self
                .failure_rate_thresholds
                .iter()
                .map(|&v| with(&|c| c.failure_rate_threshold = v))
                .collect(),
            Param::Window => self
                .windows
                .iter()
                .map(|&v| with(&|c| c.window = v))
                .collect(),
            Param::MinimumCalls => self
                .minimum_calls
                .iter()
                .map(|&v| with(&|c| c.minimum_calls = v))
                .collect(),
            Param::ConsecutiveFailures => self
                .consecutive_failures
                .iter()
                .map(|&v| with(&|c| c.consecutive_failures = v))
                .collect(),
            Param::SlowCall => {
                // Slow-call policy on or off, with each duration at three rates.
                let mut out = vec![with(&|c| c.slow = None)];
                for &ms in &self.slow_call_durations_ms {
                    for rate in [0.2, 0.5, 0.8] {
                        out.push(with(&|c| c.slow = Some((ms, rate))));
                    }
                }
                out
            }
            Param::SlowCallRate => match cand.slow {
                Some((ms, _)) => self
                    .slow_call_rates
                    .iter()
                    .map(|&rate| with(&|c| c.slow = Some((ms, rate))))
                    .collect(),
                None => Vec::new(),
            },
            Param::Wait => self.waits.iter().map(|&v| with(&|c| c.wait = v)).collect(),
            Param::HalfOpen => self
                .half_open
                .iter()
                .map(|&v| with(&|c| c.half_open = v))
                .collect(),
            Param::WaitAndProbes => near(&self.waits, &cand.wait, JOINT_RADIUS)
                .iter()
                .flat_map(|&wait| self.half_open.iter().map(move |&probes| (wait, probes)))
                .map(|(wait, probes)| {
                    with(&|c| {
                        c.wait = wait;
                        c.half_open = probes;
                    })
                })
                .collect(),
            Param::WindowAndMinimum => near(&self.windows, &cand.window, JOINT_RADIUS)
                .iter()
                .flat_map(|&window| {
                    near(&self.minimum_calls, &cand.minimum_calls, JOINT_RADIUS)
                        .iter()
                        .map(move |&min| (window, min))
                })
                .map(|(window, min)| {
                    with(&|c| {
                        c.window = window;
                        c.minimum_calls = min;
                    })
                })
                .collect(),
        }
    }
}

/// How many values on either side of the current one a joint move tries, per parameter: the
/// joint moves leave a corner the single moves cannot, which is near where they settled, and a
/// whole grid of pairs would cost as many replays as the rest of the descent.
const JOINT_RADIUS: usize = 3;

/// The values of `values` within `radius` places of `current`; all of them when `current` is
/// not one of them.
fn near<'a, T: PartialEq>(values: &'a [T], current: &T, radius: usize) -> &'a [T] {
    match values.iter().position(|value| value == current) {
        Some(at) => &values[at.saturating_sub(radius)..(at + radius + 1).min(values.len())],
        None => values,
    }
}

/// The bucket holding the median latency of the whole history.
fn median_bucket(history: &History) -> usize {
    let n_buckets = history.latency_buckets_ms.len();
    let mut totals = vec![0u64; n_buckets];
    for step in &history.steps {
        for (total, &count) in totals.iter_mut().zip(&step.latency_counts) {
            *total += u64::from(count);
        }
    }
    let all: u64 = totals.iter().sum();
    let mut seen = 0;
    for (b, &count) in totals.iter().enumerate() {
        seen += count;
        if 2 * seen >= all && all > 0 {
            return b;
        }
    }
    0
}

#[cfg(test)]
mod tests;
