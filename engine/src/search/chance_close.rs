//! The expected cost of probes that pass by chance during an incident.
//!
//! A replay lays each second's calls out evenly, so during a partial failure the probes
//! after a wait meet its failures the same way at every try: with a quarter of the calls
//! failing, every fourth call fails, and five probe successes in a row never come. Real
//! traffic puts the failures in a random order; the probes then all pass now and then
//! (`0.75⁵`, about one try in four), the breaker closes in the middle of the incident and
//! lets calls through until its rules trip it again. For each try the replay saw fail
//! during a labelled incident, this prices that: the chance the probes pass at the step's
//! failure (and slow-call) share, times the calls let through before the breaker trips
//! again, at the weight of a wasted call. The chance that probes which passed would have
//! failed is not credited: a suggestion is judged by what can go wrong.

use std::ops::Range;
use std::time::Duration;

use breaker::{Config, HalfOpenRule, State, Transition};

use super::binomial_tail;

use crate::history::History;
use crate::replay::WASTED_WEIGHT;
use crate::scenario::Span;

/// The expected cost of probes passing by chance in the tries of `transitions` that failed
/// during one of `incidents` (from `from_ms` on).
pub(super) fn chance_close_cost(
    history: &History,
    transitions: &[Transition],
    incidents: &[Span],
    config: &Config,
    from_ms: u64,
) -> f64 {
    let step_ms = history.step.as_millis().max(1) as u64;
    let Some(first) = history.steps.first() else {
        return 0.0;
    };
    let step_of = |ms: u64| ((ms.saturating_sub(first.t_ms)) / step_ms) as usize;
    let mut totals: Option<Totals> = None;
    let mut cost = 0.0;
    for pair in transitions.windows(2) {
        let (tried, failed) = (&pair[0], &pair[1]);
        if tried.from != State::Open || tried.to != State::HalfOpen || failed.to != State::Open {
            continue;
        }
        let at_ms = tried.at.as_millis() as u64;
        if at_ms < from_ms {
            continue;
        }
        let Some(incident) = incidents
            .iter()
            .find(|inc| at_ms >= inc.start_ms && at_ms < inc.end_ms)
        else {
            continue;
        };
        let (lo, hi) = (
            step_of(incident.start_ms).min(history.len()),
            step_of(incident.end_ms).min(history.len()),
        );
        let idx = step_of(at_ms);
        // A step of a few calls is laid out no differently from a random order of them.
        if idx < lo || idx >= hi || history.steps[idx].n_calls < MIN_CALLS_PER_STEP {
            continue;
        }
        let totals = totals.get_or_insert_with(|| Totals::of(history, config));
        let pass = pass_chance(config, totals.shares_around(idx, lo..hi));
        if pass > 0.0 {
            cost += pass * WASTED_WEIGHT * calls_let_through(totals, idx, lo..hi, config);
        }
    }
    cost
}

/// The calls a breaker that closed at step `from` of the incident `steps` lets through
/// before it trips again: every call of the steps whose shares trip no rule (a degradation
/// that creeps up trips it once its shares have risen), then the calls a rule needs at the
/// first step whose shares trip one; at most every call left of the incident.
fn calls_let_through(totals: &Totals, from: usize, steps: Range<usize>, config: &Config) -> f64 {
    let mut calls = 0.0;
    for idx in from..steps.end {
        let needed = calls_until_tripped(config, totals.shares_around(idx, steps.clone()));
        if needed.is_finite() {
            return calls + needed;
        }
        calls += totals.calls(idx..idx + 1) as f64;
    }
    calls
}

/// The fewest calls a step must hold for the even layout of its calls to differ from a
/// random order of them in a way worth pricing.
const MIN_CALLS_PER_STEP: u32 = 10;

/// The fewest calls a share is judged over: at low volume a step's own calls say little.
const MIN_JUDGED_CALLS: u64 = 100;

/// Running totals over a history's steps of the calls, the failures and the calls a config
/// counts as slow (a replay gives a call its bucket's bound as latency).
struct Totals {
    calls: Vec<u64>,
    failed: Vec<u64>,
    slow: Vec<u64>,
}

impl Totals {
    fn of(history: &History, config: &Config) -> Totals {
        let slow_bucket: Vec<bool> = history
            .latency_buckets_ms
            .iter()
            .map(|&ms| {
                config.slow_call_rate_threshold().is_some()
                    && config.is_slow(Duration::from_millis(u64::from(ms)))
            })
            .collect();
        let n = history.len();
        // Each starts at 0: entry `i` sums the steps before step `i`.
        let mut totals = Totals {
            calls: Vec::with_capacity(n + 1),
            failed: Vec::with_capacity(n + 1),
            slow: Vec::with_capacity(n + 1),
        };
        let (mut calls, mut failed, mut slow) = (0u64, 0u64, 0u64);
        totals.calls.push(0);
        totals.failed.push(0);
        totals.slow.push(0);
        for step in &history.steps {
            calls += u64::from(step.n_calls);
            failed += u64::from(step.n_failures.min(step.n_calls));
            slow += step
                .latency_counts
                .iter()
                .zip(&slow_bucket)
                .filter(|&(_, &is_slow)| is_slow)
                .map(|(&count, _)| u64::from(count))
                .sum::<u64>();
            totals.calls.push(calls);
            totals.failed.push(failed);
            totals.slow.push(slow);
        }
        totals
    }

    fn calls(&self, steps: Range<usize>) -> u64 {
        self.calls[steps.end] - self.calls[steps.start]
    }

    /// The shares over the steps around `idx` within `within`, widened on both sides until
    /// they hold [`MIN_JUDGED_CALLS`] calls (or all of `within`).
    fn shares_around(&self, idx: usize, within: Range<usize>) -> Shares {
        let span = |radius: usize| {
            idx.saturating_sub(radius).max(within.start)..(idx + radius + 1).min(within.end)
        };
        let widest = (idx - within.start).max(within.end - idx);
        // The calls only grow with the radius: the smallest one that holds enough.
        let (mut lo, mut hi) = (0, widest);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.calls(span(mid)) >= MIN_JUDGED_CALLS {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let steps = span(lo);
        let n = self.calls(steps.clone()).max(1) as f64;
        Shares {
            failed: ((self.failed[steps.end] - self.failed[steps.start]) as f64 / n).min(1.0),
            slow: ((self.slow[steps.end] - self.slow[steps.start]) as f64 / n).min(1.0),
        }
    }
}

/// A step's failure share and the share of its calls the config counts as slow.
#[derive(Clone, Copy, Debug)]
struct Shares {
    failed: f64,
    slow: f64,
}

/// The chance that the half-open probes close the breaker at these shares.
fn pass_chance(config: &Config, shares: Shares) -> f64 {
    match config.half_open_rule() {
        HalfOpenRule::Successes => {
            let good = (1.0 - shares.failed) * (1.0 - shares.slow);
            good.powi(config.half_open_successes() as i32)
        }
        HalfOpenRule::Rates => {
            let n = config.half_open_probes();
            let below = |threshold: Option<f64>, share: f64| match threshold {
                Some(threshold) => {
                    let k = (threshold * f64::from(n)).ceil() as u32;
                    1.0 - binomial_tail(n, k, share)
                }
                None => 1.0,
            };
            below(config.failure_rate_threshold(), shares.failed)
                * below(config.slow_call_rate_threshold(), shares.slow)
        }
    }
}

/// About how many calls a closed breaker lets through at these shares before a rule trips
/// it again (its window starts empty): the minimum of calls when a rate is at its threshold
/// or above, the expected wait for a run of consecutive failures; infinite when none would.
fn calls_until_tripped(config: &Config, shares: Shares) -> f64 {
    let minimum = f64::from(config.minimum_calls().max(1));
    let mut calls = f64::INFINITY;
    if config
        .failure_rate_threshold()
        .is_some_and(|t| shares.failed >= t)
    {
        calls = calls.min(minimum);
    }
    if config
        .slow_call_rate_threshold()
        .is_some_and(|t| shares.slow >= t)
    {
        calls = calls.min(minimum);
    }
    if let Some(n) = config.consecutive_failures()
        && shares.failed > 0.0
    {
        // Expected trials to a run of n successes at probability p: (p⁻ⁿ − 1) / (1 − p).
        let p = shares.failed;
        let expected = if p >= 1.0 {
            f64::from(n)
        } else {
            (p.powi(-(n as i32)) - 1.0) / (1.0 - p)
        };
        calls = calls.min(expected);
    }
    calls
}

#[cfg(test)]
mod tests;
