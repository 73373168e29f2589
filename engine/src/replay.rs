//! Replays a history through the real `breaker` state machine in virtual time, and scores it.
//!
//! Each step's calls arrive evenly spaced (call `i` of `n` at `t + (i + 0.5) · step / n`),
//! call `i` fails when `⌊(i+1)F/n⌋ > ⌊iF/n⌋`, and latencies, laid out in ascending order from
//! the histogram (each at its bucket's upper bound), are handed out in the order
//! `i · stride mod n` with a stride coprime to `n` near `0.618 n`, which spreads slow calls
//! through the step. A call's outcome is recorded at its arrival time. A call whose latency
//! reaches the config's call timeout is recorded as a `Timeout`, at the timeout.
//!
//! The machine is `breaker::Machine`, the same code every breaker runs; while it is Open the
//! replay counts calls before `open_until` as rejected without asking it, which is what it
//! would answer. While it is Closed, a step's calls go a second at a time: the calls that
//! arrive within one second, none reaching the call timeout, are handed to
//! `Machine::try_record_quiet` together, and when no order of them could trip the breaker
//! they are recorded at once, ending where one call at a time would; otherwise they go one
//! by one. (A one-second step is one such batch; a one-minute rollup is up to sixty.)
//!
//! A step with more than [`MAX_CALLS_PER_STEP`] calls is replayed as an evenly thinned sample
//! of that many calls with the same failure share and latency histogram (each scaled with
//! rounding), spread over the step in the same way; its admitted and rejected counts are
//! scaled back up to the step's calls. So a replay's work is bounded by its steps, whatever
//! the call counts (an aggregate can claim billions of calls a second).
//!
//! None of this layout depends on the config: a search lays a history's steps out once
//! ([`Steps`]) and replays them under every candidate ([`replay_laid_out_while`]).

use std::ops::Range;
use std::time::Duration;

use breaker::{Admission, Batch, Config, Machine, Outcome, State, Transition};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use crate::history::History;

pub use score::{
    DETECTION_DEADLINE, FALSE_TRIP_GRACE, Score, WASTED_WEIGHT, detection_delay, score,
};

/// What a configuration did over a range of steps.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// The steps replayed.
    pub range: Range<usize>,
    /// Per replayed step: calls let through (normal calls and probes).
    pub admitted: Vec<u32>,
    /// Per replayed step: calls refused.
    pub rejected: Vec<u32>,
    /// Every state change, in order.
    pub transitions: Vec<Transition>,
    /// Calls driven through the machine (or counted as rejected one by one): at most
    /// [`MAX_CALLS_PER_STEP`] per step.
    pub replayed_calls: u64,
    /// Calls recorded a second's worth at a time, no order of them able to trip the breaker
    /// (see [`Machine::try_record_quiet`]); they count in `replayed_calls` all the same.
    pub quiet_calls: u64,
}

/// The most calls of one step a replay drives through the machine. Well above the public
/// tuning scenarios' busiest second (468 calls), which therefore replay every call.
pub const MAX_CALLS_PER_STEP: u32 = 2_000;

impl Replay {
    /// Keeps the steps from `from` on (a step of the history, as `range` counts them): the
    /// steps before only warmed the breaker up and are not to be scored. The transitions stay
    /// (scoring judges them by their times).
    pub fn drop_steps_before(&mut self, from: usize) {
        let skip = from.clamp(self.range.start, self.range.end) - self.range.start;
        self.admitted.drain(..skip);
        self.rejected.drain(..skip);
        self.range.start += skip;
    }
}

/// Replays the steps `range` of `history` through a fresh Closed machine running `config`.
pub fn replay(history: &History, range: Range<usize>, config: &Config) -> Replay {
    replay_whole(history, range, config, None)
}

/// [`replay`] with each step's calls in a random order (seeded by `seed`) instead of the
/// even layout: the same failures and latencies per step, as real traffic would bunch them.
/// The even layout never lets a share of failures below a threshold reach it over any
/// window; random order does, as often as chance would. One call at a time, so slower.
pub fn replay_in_random_order(
    history: &History,
    range: Range<usize>,
    config: &Config,
    seed: u64,
) -> Replay {
    replay_whole(history, range, config, Some(seed))
}

/// Every step of `range`, evenly laid out (in quiet batches where they cannot trip) or, with
/// a seed, in a random order one call at a time.
fn replay_whole(
    history: &History,
    range: Range<usize>,
    config: &Config,
    shuffle_seed: Option<u64>,
) -> Replay {
    let steps = Steps::new(history);
    replay_steps(
        history,
        &steps,
        range,
        config,
        |_, _, _| true,
        true,
        shuffle_seed,
    )
}

/// [`replay`] over steps laid out beforehand (`steps` must be `Steps::new(history)`: a search
/// replays one history under hundreds of configs, and the layout does not depend on the
/// config), asking `keep_going(offset, admitted, rejected)` after each step (`offset` from
/// the start of `range`); once it answers `false` the replay stops there, and the returned
/// [`Replay`] covers the steps replayed so far (its `range` ends after that step). A search
/// uses it to give up on a configuration as soon as its cost is known to be too high.
pub fn replay_laid_out_while(
    history: &History,
    steps: &Steps,
    range: Range<usize>,
    config: &Config,
    keep_going: impl FnMut(usize, u32, u32) -> bool,
) -> Replay {
    replay_steps(history, steps, range, config, keep_going, true, None)
}

/// [`replay_in_random_order`] over steps laid out beforehand (as for
/// [`replay_laid_out_while`]), the whole of `range`.
pub fn replay_laid_out_in_random_order(
    history: &History,
    steps: &Steps,
    range: Range<usize>,
    config: &Config,
    seed: u64,
) -> Replay {
    replay_steps(
        history,
        steps,
        range,
        config,
        |_, _, _| true,
        true,
        Some(seed),
    )
}

/// How a replay lays out each step of one history, whatever the config: the calls it drives
/// (all of them, or an even sample of at most [`MAX_CALLS_PER_STEP`]), how many of them
/// fail, the positions of each latency bucket and the stride that interleaves them.
#[derive(Clone, Debug, Default)]
pub struct Steps {
    steps: Vec<StepLayout>,
    /// (end position, latency) of each step's non-empty buckets, one step after another.
    buckets: Vec<(u32, Duration)>,
}

#[derive(Clone, Copy, Debug)]
struct StepLayout {
    /// The calls replayed (the step's, or its sample's).
    n: u32,
    /// Of those, how many fail.
    n_failures: u64,
    stride: u32,
    /// The step's buckets in [`Steps::buckets`].
    buckets: (u32, u32),
}

impl Steps {
    pub fn new(history: &History) -> Steps {
        let bounds: Vec<Duration> = history
            .latency_buckets_ms
            .iter()
            .map(|&ms| Duration::from_millis(u64::from(ms)))
            .collect();
        let mut buckets = Vec::new();
        let steps = history
            .steps
            .iter()
            .map(|step| {
                let n_all = step.n_calls;
                let n = n_all.min(MAX_CALLS_PER_STEP);
                let sampled = |count: u64| {
                    if n == n_all {
                        count
                    } else {
                        (count * u64::from(n) + u64::from(n_all) / 2) / u64::from(n_all)
                    }
                };
                let start = buckets.len() as u32;
                let mut end = 0u64;
                for (&count, &bound) in step.latency_counts.iter().zip(&bounds) {
                    if count > 0 {
                        let before = sampled(end);
                        end += u64::from(count);
                        // A bucket too small to hold one sampled call is left out.
                        if sampled(end) > before {
                            buckets.push((sampled(end).min(u64::from(u32::MAX)) as u32, bound));
                        }
                    }
                }
                StepLayout {
                    n,
                    n_failures: sampled(u64::from(step.n_failures)).min(u64::from(n)),
                    stride: stride_of(n),
                    buckets: (start, buckets.len() as u32),
                }
            })
            .collect();
        Steps { steps, buckets }
    }
}

/// [`replay_laid_out_while`]; with `in_batches`, the calls of one second that cannot trip the Closed
/// machine whatever their order are recorded at once ([`Machine::try_record_quiet`]), which
/// ends in the same state as recording them one by one (tests compare both ways).
fn replay_steps(
    history: &History,
    layouts: &Steps,
    range: Range<usize>,
    config: &Config,
    mut keep_going: impl FnMut(usize, u32, u32) -> bool,
    in_batches: bool,
    shuffle_seed: Option<u64>,
) -> Replay {
    // In random order, the quiet batches (which count a second's calls by position) are off.
    let in_batches = in_batches && shuffle_seed.is_none();
    let mut rng = shuffle_seed.map(Xoshiro256Plus::seed_from_u64);
    // Per step, where call `i` sits in the even layout (`order[i]`), when shuffled.
    let mut order: Vec<u32> = Vec::new();
    let n_steps = range.len();
    let mut out = Replay {
        range: range.clone(),
        admitted: Vec::with_capacity(n_steps),
        rejected: Vec::with_capacity(n_steps),
        transitions: Vec::new(),
        replayed_calls: 0,
        quiet_calls: 0,
    };
    let Some(first) = history.steps.get(range.start) else {
        return out;
    };
    let step_ns = history.step.as_nanos() as u64;
    let mut machine = Machine::new(config.clone(), Duration::from_millis(first.t_ms), 0x5eed);
    let timeout = config.call_timeout();
    // Latencies matter only to a slow-call policy or a call timeout; without either, the
    // histogram is not even read.
    let needs_latency = config.slow_call_rate_threshold().is_some() || timeout.is_some();
    assert_eq!(
        layouts.steps.len(),
        history.len(),
        "steps laid out for another history"
    );
    // Nanoseconds before which an Open machine rejects every call.
    let mut open_until_ns: u64 = 0;
    for (step, laid_out) in history.steps[range.clone()]
        .iter()
        .zip(&layouts.steps[range])
    {
        let n = step.n_calls;
        let t0_ns = step.t_ms * 1_000_000;
        if n == 0 || t0_ns + step_ns <= open_until_ns {
            out.admitted.push(0);
            out.rejected.push(n);
            if !keep_going(out.admitted.len() - 1, 0, n) {
                break;
            }
            continue;
        }
        // The calls replayed: all of them, or an even sample with the same shares.
        let n_all = n;
        let n = laid_out.n;
        // Latencies matter only with a slow-call rule or a call timeout.
        let (layout, stride) = if needs_latency {
            let (start, end) = laid_out.buckets;
            (
                &layouts.buckets[start as usize..end as usize],
                laid_out.stride,
            )
        } else {
            (&[][..], 1)
        };
        out.replayed_calls += u64::from(n);
        let n_failures = laid_out.n_failures;
        if let Some(rng) = &mut rng {
            // Fisher–Yates over the step's positions.
            order.clear();
            order.extend(0..n);
            for i in (1..order.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
        }
        let position = |i: u32| order.get(i as usize).copied().unwrap_or(i);
        let failed_at = |i: u32| {
            n_failures != 0
                && failures_before(i + 1, n_failures, n) > failures_before(i, n_failures, n)
        };
        let latency_of = |i: u32| {
            if needs_latency {
                latency_at(
                    layout,
                    ((u64::from(i) * u64::from(stride)) % u64::from(n)) as u32,
                )
            } else {
                Duration::ZERO
            }
        };
        let (mut n_admitted, mut n_rejected) = (0u32, 0u32);
        let at_ns = |i: u32| t0_ns + ((2 * u64::from(i) + 1) * step_ns) / (2 * u64::from(n));
        // Positions from which latencies are slow, and from which calls time out.
        let slow_from = first_position(layout, n, |latency| config.is_slow(latency));
        let timeout_from = first_position(layout, n, |latency| {
            timeout.is_some_and(|timeout| latency >= timeout)
        });
        // The step's calls go second by second: each second's calls at once when none of
        // them times out and no order of them could trip the breaker, otherwise one by one.
        let mut i = 0;
        while i < n {
            let at_first = at_ns(i);
            let next_second_ns = ((at_first / SECOND_NS) + 1) * SECOND_NS;
            let end = if !in_batches {
                n
            } else if n == 1 || at_ns(n - 1) < next_second_ns {
                // The rest of the step's calls arrive within this second.
                n
            } else {
                calls_before(n, step_ns, next_second_ns - t0_ns).clamp(i + 1, n)
            };
            let quiet =
                in_batches && at_first >= open_until_ns && machine.state() == State::Closed && {
                    let (n_slow, n_timeouts) = if i == 0 && end == n {
                        // The whole step: its positions are all of 0..n.
                        (u64::from(n - slow_from), u64::from(n - timeout_from))
                    } else {
                        count_from(i..end, stride, n, [slow_from, timeout_from])
                    };
                    n_timeouts == 0
                        && machine.try_record_quiet(
                            Batch {
                                now: Duration::from_nanos(at_first),
                                n: end - i,
                                n_failed: failures_before(end, n_failures, n)
                                    - failures_before(i, n_failures, n),
                                n_slow,
                            },
                            |j| (failed_at(i + j), config.is_slow(latency_of(i + j))),
                        )
                };
            if quiet {
                n_admitted += end - i;
                out.quiet_calls += u64::from(end - i);
                i = end;
                continue;
            }
            for i in i..end {
                let at_ns = at_ns(i);
                if at_ns < open_until_ns {
                    n_rejected += 1;
                    continue;
                }
                let now = Duration::from_nanos(at_ns);
                let (admission, transition) = machine.acquire(now);
                if let Some(transition) = transition {
                    out.transitions.push(transition);
                }
                let granted = match admission {
                    Admission::Rejected { .. } => {
                        n_rejected += 1;
                        open_until_ns = open_until_nanos(&machine);
                        continue;
                    }
                    Admission::Granted(granted) => granted,
                };
                n_admitted += 1;
                let failed = failed_at(position(i));
                let latency = latency_of(position(i));
                let (outcome, latency) = match timeout {
                    Some(timeout) if latency >= timeout => (Outcome::Timeout, timeout),
                    _ if failed => (Outcome::Failure, latency),
                    _ => (Outcome::Success, latency),
                };
                // The machine judges slowness itself, from the latency and its config.
                if let Some(transition) = machine.record(now, granted, outcome, latency) {
                    out.transitions.push(transition);
                    open_until_ns = open_until_nanos(&machine);
                }
            }
            i = end;
        }
        if n < n_all {
            // Back to the step's calls, so costs stay comparable with unsampled steps.
            let admitted =
                (u64::from(n_admitted) * u64::from(n_all) + u64::from(n) / 2) / u64::from(n);
            n_admitted = admitted.min(u64::from(n_all)) as u32;
            n_rejected = n_all - n_admitted;
        }
        out.admitted.push(n_admitted);
        out.rejected.push(n_rejected);
        if !keep_going(out.admitted.len() - 1, n_admitted, n_rejected) {
            break;
        }
    }
    out.range.end = out.range.start + out.admitted.len();
    out
}

fn open_until_nanos(machine: &Machine) -> u64 {
    machine
        .open_until()
        .map_or(0, |until| until.as_nanos() as u64)
}

const SECOND_NS: u64 = 1_000_000_000;

/// How many of a step's `n` calls, evenly spaced over `step_ns`, arrive less than `d_ns`
/// after its start: call `i` arrives at `⌊(2i + 1) · step / 2n⌋`, before `d` exactly when
/// `2i + 1 < 2n · d / step`.
fn calls_before(n: u32, step_ns: u64, d_ns: u64) -> u32 {
    let step_ns = step_ns.max(1);
    let c = match (2 * u64::from(n)).checked_mul(d_ns) {
        Some(twice) => u128::from(twice.div_ceil(step_ns)),
        None => (2 * u128::from(n) * u128::from(d_ns)).div_ceil(u128::from(step_ns)),
    };
    (c / 2).min(u128::from(n)) as u32
}

/// How many of the first `i` calls of a step with `n_failures` of `n` failing fail.
fn failures_before(i: u32, n_failures: u64, n: u32) -> u64 {
    if n_failures == 0 || i == 0 {
        0
    } else if n_failures == u64::from(n) {
        u64::from(i)
    } else {
        (u64::from(i) * n_failures) / u64::from(n)
    }
}

/// The first position `0..n` that [`latency_at`] places in a bucket whose latency is
/// `marked` (latencies ascend, so every later position is marked too); `n` when none is.
fn first_position(layout: &[(u32, Duration)], n: u32, marked: impl Fn(Duration) -> bool) -> u32 {
    if layout.is_empty() {
        return if marked(Duration::ZERO) { 0 } else { n };
    }
    let mut start = 0;
    for (k, &(end, latency)) in layout.iter().enumerate() {
        if marked(latency) {
            return start.min(n);
        }
        if k + 1 < layout.len() {
            start = end.max(start);
        }
    }
    n
}

/// How many of calls `range`, whose latency positions are `i · stride mod n`, sit at or past
/// each of `from`.
fn count_from(range: Range<u32>, stride: u32, n: u32, from: [u32; 2]) -> (u64, u64) {
    if from.iter().all(|&from| from >= n) {
        return (0, 0);
    }
    let (n, stride) = (u64::from(n), u64::from(stride));
    let mut position = (u64::from(range.start) * stride) % n;
    let (mut a, mut b) = (0, 0);
    for _ in range {
        a += u64::from(position >= u64::from(from[0]));
        b += u64::from(position >= u64::from(from[1]));
        position += stride;
        if position >= n {
            position -= n;
        }
    }
    (a, b)
}

fn latency_at(layout: &[(u32, Duration)], position: u32) -> Duration {
    layout
        .iter()
        .find(|(end, _)| position < *end)
        .or(layout.last())
        .map_or(Duration::ZERO, |&(_, latency)| latency)
}

/// [`interleave_stride`] of `n`, from a table for the call counts a replayed step can have.
fn stride_of(n: u32) -> u32 {
    static STRIDES: std::sync::OnceLock<Box<[u32]>> = std::sync::OnceLock::new();
    STRIDES.get_or_init(|| (0..=MAX_CALLS_PER_STEP).map(interleave_stride).collect())[n as usize]
}

/// A stride coprime to `n`, near `0.618 n`, so `i · stride mod n` visits every position once
/// while scattering neighbours far apart.
pub(crate) fn interleave_stride(n: u32) -> u32 {
    if n <= 2 {
        return 1;
    }
    let mut stride = ((f64::from(n) * 0.618) as u32).max(1);
    while gcd(stride, n) != 1 {
        stride += 1;
    }
    stride
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

mod score;
#[cfg(test)]
mod tests;
