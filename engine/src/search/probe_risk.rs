//! [`ProbeRisk`]: the expected cost of unlucky probes after an incident and of trips the
//! usual rates make by chance, and the noise margin that keeps a threshold out of reach of
//! the usual failures drawn at random.

use breaker::{Wait, Window};

use super::{Candidate, Probes};
use crate::anomaly::Labels;
use crate::history::History;

/// The expected cost of an unlucky probe after an incident.
///
/// A replay spreads outcomes deterministically, so whether the first probe after an incident
/// meets one of the dependency's usual failures is decided by luck, once per incident. That
/// luck decides a lot when the wait is long or several probe successes are needed: a failed
/// probe costs a whole further wait of refused calls, and the probes after it may fail
/// again. So the search adds the expectation: per incident, with `p = P(the probes fail on a
/// healthy dependency)`, `(p + p² + …) × calls per second × the next wait`.
///
/// It also prices the trips the usual rates make by chance, which the even layout of a
/// replay never shows (see [`ProbeRisk::chance_trip_cost`]).
#[derive(Clone, Debug)]
pub(crate) struct ProbeRisk {
    n_incidents: f64,
    /// The failure rate outside the anomalous periods.
    pub(crate) usual_failure_rate: f64,
    calls_per_second: f64,
    /// Calls outside the anomalous periods.
    usual_calls: f64,
    /// Per latency bucket bound (ms): the share of usual calls at or above it.
    share_at_least: Vec<(u32, f64)>,
}

// === impl ProbeRisk ===

impl ProbeRisk {
    pub(crate) fn new(history: &History, labels: &Labels, n_incidents: f64) -> ProbeRisk {
        let n_buckets = history.latency_buckets_ms.len();
        let mut hist = vec![0u64; n_buckets];
        let (mut n_calls, mut n_failures, mut n_steps) = (0u64, 0u64, 0u64);
        for (step, &anomalous) in history.steps.iter().zip(&labels.anomalous) {
            if anomalous {
                continue;
            }
            n_steps += 1;
            n_calls += u64::from(step.n_calls);
            n_failures += u64::from(step.n_failures);
            for (total, &count) in hist.iter_mut().zip(&step.latency_counts) {
                *total += u64::from(count);
            }
        }
        let all: u64 = hist.iter().sum();
        let mut above = all;
        let share_at_least = history
            .latency_buckets_ms
            .iter()
            .zip(&hist)
            .map(|(&bound, &count)| {
                let share = if all > 0 {
                    above as f64 / all as f64
                } else {
                    0.0
                };
                above -= count;
                (bound, share)
            })
            .collect();
        let seconds = n_steps as f64 * history.step.as_secs_f64();
        ProbeRisk {
            n_incidents,
            usual_failure_rate: if n_calls > 0 {
                n_failures as f64 / n_calls as f64
            } else {
                0.0
            },
            calls_per_second: if seconds > 0.0 {
                n_calls as f64 / seconds
            } else {
                0.0
            },
            usual_calls: n_calls as f64,
            share_at_least,
        }
    }

    /// Raises the minimum calls until the usual rates, drawn at random over that many calls,
    /// reach a threshold with probability at most `NOISE_TAIL`. A replay spreads each step's
    /// failures evenly, which hides this noise at high volume; real traffic does not.
    pub(super) fn require_noise_margin(&self, cand: &mut Candidate) {
        const NOISE_TAIL: f64 = 1e-5;
        let slow_share = self.slow_share(cand);
        let rates = [
            cand.failure_rate_threshold
                .map(|t| (t, self.usual_failure_rate)),
            cand.slow.map(|(_, t)| (t, slow_share)),
        ];
        for (threshold, usual) in rates.into_iter().flatten() {
            while cand.minimum_calls < 1_000 {
                let m = cand.minimum_calls;
                let k = (threshold * f64::from(m)).ceil() as u32;
                if binomial_tail(m, k, usual) <= NOISE_TAIL {
                    break;
                }
                cand.minimum_calls = (m + m.div_ceil(2)).min(1_000);
            }
        }
        if let Window::Count(size) = cand.window {
            cand.window = Window::Count(size.max(cand.minimum_calls));
        }
        // A time window that seldom holds the minimum of calls seldom judges at all: on usual
        // traffic it must hold it with two standard deviations of a Poisson count to spare.
        if let Window::Time(secs) = cand.window
            && self.calls_per_second > 0.0
        {
            let m = f64::from(cand.minimum_calls);
            let needed = ((m + 2.0 * m.sqrt()) / self.calls_per_second).ceil();
            // At most the grid's longest window (what the oracle's warm-up covers).
            cand.window = Window::Time(secs.max(needed.min(1_800.0) as u32));
        }
        // The same for a run of consecutive failures: at the usual failure rate, `n` in a row
        // happen by chance about `calls a day × (1 − p) × pⁿ` times a day. A replay never
        // puts two usual failures side by side; real traffic does.
        if let Some(mut n) = cand.consecutive_failures {
            const MAX_CHANCE_RUNS_PER_DAY: f64 = 0.01;
            let p = self.usual_failure_rate.clamp(0.0, 0.999);
            let calls_per_day = self.calls_per_second * 86_400.0;
            while n < 100 && calls_per_day * (1.0 - p) * p.powi(n as i32) > MAX_CHANCE_RUNS_PER_DAY
            {
                n += 1;
            }
            cand.consecutive_failures = Some(n);
        }
    }

    /// The share of usual calls the candidate would count as slow. A call whose latency
    /// bucket is above `ms` has latency ≥ `ms` only when the bucket's bound is at least `ms`;
    /// the share of such calls is read at the first bound ≥ `ms`.
    fn slow_share(&self, cand: &Candidate) -> f64 {
        cand.slow.map_or(0.0, |(ms, _)| self.slow_share_at(ms))
    }

    /// The share of usual calls that take `ms` or longer.
    pub(crate) fn slow_share_at(&self, ms: u32) -> f64 {
        self.share_at_least
            .iter()
            .find(|(bound, _)| *bound >= ms)
            .map_or(0.0, |(_, share)| *share)
    }

    /// What `cand` is expected to lose to unlucky probes, over all the incidents.
    pub(super) fn cost(&self, cand: &Candidate) -> f64 {
        let p_probe_fails = match cand.half_open {
            Probes::Successes(_, successes) => {
                let p_bad = (self.usual_failure_rate + self.slow_share(cand)).min(1.0);
                1.0 - (1.0 - p_bad).powi(successes.max(1) as i32)
            }
            // The probes open it again when their failure rate or their slow-call rate
            // reaches its threshold.
            Probes::Rates(probes) => {
                let reaches = |threshold: Option<f64>, usual: f64| {
                    threshold.map_or(0.0, |t| {
                        binomial_tail(probes, fewest_at_rate(probes, t), usual)
                    })
                };
                let failures = reaches(cand.failure_rate_threshold, self.usual_failure_rate);
                let slow = reaches(cand.slow.map(|(_, t)| t), self.slow_share(cand));
                1.0 - (1.0 - failures) * (1.0 - slow)
            }
        };
        let next_wait = match cand.wait {
            Wait::Fixed(wait) => wait.as_secs_f64(),
            Wait::Exponential {
                initial,
                multiplier,
                max,
                ..
            } => (initial.as_secs_f64() * multiplier).min(max.as_secs_f64()),
        };
        // A failed probe opens it for another wait, after which the probes may fail again.
        let further_waits = p_probe_fails / (1.0 - p_probe_fails).max(0.01);
        self.n_incidents * further_waits * self.calls_per_second * next_wait
    }

    /// What the trips `cand` is expected to make by chance on the usual traffic cost, at
    /// `penalty_s` seconds of calls each: per rate rule, the usual calls over the calls a
    /// window judges (its count, or what a time window holds, at least the minimum), each
    /// such window reaching the threshold with the binomial chance of the usual rate. Windows
    /// overlap as calls come, so this counts disjoint ones only: a lower bound that still
    /// grows as the window shrinks, the threshold nears the usual rate or the traffic grows.
    pub(super) fn chance_trip_cost(&self, cand: &Candidate, penalty_s: f64) -> f64 {
        if penalty_s <= 0.0 || self.usual_calls <= 0.0 {
            return 0.0;
        }
        let judged = match cand.window {
            Window::Count(size) => f64::from(size.max(cand.minimum_calls)),
            Window::Time(secs) => {
                (self.calls_per_second * f64::from(secs)).max(f64::from(cand.minimum_calls))
            }
        }
        .clamp(1.0, MAX_JUDGED_CALLS) as u32;
        let rates = [
            cand.failure_rate_threshold
                .map(|t| (t, self.usual_failure_rate)),
            cand.slow.map(|(_, t)| (t, self.slow_share(cand))),
        ];
        let windows = self.usual_calls / f64::from(judged);
        let trips: f64 = rates
            .into_iter()
            .flatten()
            .map(|(threshold, usual)| {
                windows * binomial_tail(judged, fewest_at_rate(judged, threshold), usual)
            })
            .sum();
        trips * penalty_s * self.calls_per_second
    }
}

/// The most calls [`ProbeRisk::chance_trip_cost`] takes a window to judge: beyond, the chance
/// of the usual rate reaching a threshold above it is nil anyway.
const MAX_JUDGED_CALLS: f64 = 5_000.0;

/// The fewest of `n` calls whose share reaches `threshold`, as the breaker judges it
/// (`k / n ≥ threshold`, in floating point).
fn fewest_at_rate(n: u32, threshold: f64) -> u32 {
    (0..=n)
        .find(|&k| f64::from(k) / f64::from(n) >= threshold)
        .unwrap_or(n + 1)
}

/// `P(X ≥ k)` for `X ~ Binomial(n, p)`, summed in log space.
pub(crate) fn binomial_tail(n: u32, k: u32, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (ln_p, ln_q) = (p.ln(), (1.0 - p).ln());
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for x in 0..=n {
        if x > 0 {
            ln_choose += (f64::from(n - x + 1)).ln() - f64::from(x).ln();
        }
        if x >= k {
            tail += (ln_choose + f64::from(x) * ln_p + f64::from(n - x) * ln_q).exp();
        }
    }
    tail.min(1.0)
}

#[cfg(test)]
mod tests;
