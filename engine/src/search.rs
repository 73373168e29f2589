//! Chooses a configuration by replaying the history through the breaker, against the labels.
//!
//! The objective is the cost of `shared/tuning/SCENARIOS.md`, `lost_good + 0.2 · wasted`,
//! summed over evaluation sets that each carry their own labels:
//!
//! - the history itself, labelled by [`crate::anomaly`] (the tuner never sees the truth);
//! - *injected incidents*: copies of normal stretches of the same history with a hard outage
//!   (about 2 and 10 minutes), a partial failure (half and a third of the way from the usual
//!   failure rate to 100 %, about 5 minutes) and a slow-down (latencies five buckets higher,
//!   about 5 minutes) written in, their lengths spread over a minute. A history that happens to hold no incident would otherwise
//!   teach that never tripping is best; these make the search price the outages it has not
//!   seen yet, on this breaker's own traffic;
//! - two *stressed* normal stretches (15 minutes, failures and slow calls ×1.3, labelled
//!   healthy) centred on the worst noise the history showed, a margin against tripping on
//!   noise a little worse than that.
//!
//! To the replayed cost the search adds the expected cost of an unlucky probe after each
//! incident (see `ProbeRisk`), which a deterministic replay leaves to luck.
//!
//! The search is coordinate descent over [`Grid`]: one parameter at a time takes every value
//! in its list and keeps the best, until a round changes nothing. A change is only taken when
//! it lowers the cost by more than a small margin, and ties go to the simpler value, so the
//! result does not chase noise. Long histories are screened on a thinned copy (one call in
//! `k`, count-based parameters divided by `k`), and the best few are replayed in full.

use std::collections::HashMap;
use std::time::Duration;

use breaker::{Config, Wait, Window};

use crate::anomaly::Labels;
use crate::history::{History, Step};
use crate::replay::{self, Score};
use crate::scenario::Span;
use crate::stop::{Stop, StopReason};

/// Options for [`Search`].
#[derive(Clone, Debug)]
pub struct SearchOptions {
    /// Above this many calls over all evaluation sets, candidates are screened on a thinned copy.
    /// Thinning blurs partial failures close to a threshold (a thinned replay of a 27 % failure
    /// rate over half the calls ranks half-open probes differently), so the default, 12 M,
    /// screens a day at about 100 calls/s in full.
    pub replay_budget_calls: u64,
    /// The most rounds of coordinate descent.
    pub max_rounds: usize,
    /// Descents run from this many of the best seeds.
    pub n_starts: usize,
    /// How many of the best screened candidates are replayed in full.
    pub n_finalists: usize,
    /// Whether to add injected incidents and the stressed stretch.
    pub inject: bool,
    /// Each injected kind is written into this many places (1 or 2).
    pub n_injected_copies: usize,
    /// A safety bound: a rate policy must need at least this many failures (or slow calls) to
    /// trip, `threshold × minimum_calls ≥ this`, so one unlucky call right after the breaker
    /// closes, when its window is nearly empty, cannot open it again. 0 turns the bound off.
    pub min_failures_to_trip: f64,
    /// What a false trip costs beyond the calls it refuses: the calls of this many seconds at
    /// the set's mean rate, per Closed→Open while a set's labels say healthy (more than 30 s
    /// after any labelled incident). A false trip with a short wait loses few calls, but a
    /// breaker that trips on healthy traffic is one its users stop trusting, so the tuner
    /// prices it; the oracle (0) is judged by the cost alone.
    pub false_trip_penalty_s: f64,
    /// Checked before every replay and every round; once it fires, [`Search::run`] gives up.
    pub stop: Stop,
}

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
    /// (probes let through, successes needed to close).
    pub half_open: Vec<(u32, u32)>,
}

/// The configurable parameters of a breaker, as the search varies them.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub failure_rate_threshold: Option<f64>,
    pub window: Window,
    pub minimum_calls: u32,
    pub consecutive_failures: Option<u32>,
    /// (duration in ms, rate threshold)
    pub slow: Option<(u32, f64)>,
    pub wait: Wait,
    pub half_open: (u32, u32),
    pub call_timeout: Option<Duration>,
}

/// One labelled set a candidate is replayed over.
#[derive(Clone, Debug)]
pub struct EvalSet {
    pub name: &'static str,
    pub history: History,
    pub healthy: Vec<bool>,
    pub incidents: Vec<Span>,
}

/// The objective and its cache.
#[derive(Debug)]
pub struct Search {
    full: Vec<EvalSet>,
    screen: Vec<EvalSet>,
    thin: u32,
    /// Steps before this are replayed (to warm the breaker up) but not scored.
    score_from: usize,
    opts: SearchOptions,
    /// Screening cost (a lower bound when not exact), the candidate, and whether it is exact.
    cache: HashMap<String, (f64, Candidate, bool)>,
    n_replays: usize,
    /// Calls driven through the machine over all replays (see [`replay::MAX_CALLS_PER_STEP`]).
    replayed_calls: u64,
    /// Why the search gave up, once its stop fired.
    stopped: Option<StopReason>,
    probe_risk: Option<ProbeRisk>,
}

/// The expected cost of an unlucky probe after an incident.
///
/// A replay spreads outcomes deterministically, so whether the first probe after an incident
/// meets one of the dependency's usual failures is decided by luck, once per incident. That
/// luck decides a lot when the wait is long or several probe successes are needed: a failed
/// probe costs a whole further wait of refused calls. So the search adds the expectation:
/// per incident, `P(a probe fails on a healthy dependency) × calls per second × the next wait`.
#[derive(Clone, Debug)]
pub(crate) struct ProbeRisk {
    n_incidents: f64,
    /// The failure rate outside the anomalous periods.
    pub(crate) usual_failure_rate: f64,
    calls_per_second: f64,
    /// Per latency bucket bound (ms): the share of usual calls at or above it.
    share_at_least: Vec<(u32, f64)>,
}

/// The outcome of a search.
#[derive(Clone, Debug)]
pub struct Found {
    pub candidate: Candidate,
    pub config: Config,
    /// Its cost over the full evaluation sets.
    pub cost: f64,
    /// The best other finalist's cost (a measure of how clear the choice was).
    pub runner_up_cost: Option<f64>,
    pub n_replays: usize,
    /// Calls driven through the machine over all replays.
    pub replayed_calls: u64,
    pub thin: u32,
}

impl Default for SearchOptions {
    fn default() -> SearchOptions {
        SearchOptions {
            replay_budget_calls: 12_000_000,
            max_rounds: 3,
            n_starts: 1,
            n_finalists: 5,
            inject: true,
            n_injected_copies: 2,
            min_failures_to_trip: 0.0,
            false_trip_penalty_s: 0.0,
            stop: Stop::default(),
        }
    }
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
            half_open: vec![(1, 1), (2, 2), (3, 3), (5, 5), (10, 10), (3, 1)],
        }
    }

    /// The grid without values outside the safety bounds a suggestion must keep: rates are
    /// judged over at least 5 calls and windows of at least 5 s (or 10 calls), and at most 3
    /// probe successes are needed to close (see also [`Grid::SAFE_MIN_FAILURES_TO_TRIP`]). A replay spreads failures perfectly evenly, so it
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
        self.half_open.retain(|&(_, successes)| successes <= 3);
        self
    }

    /// The fewest failures a rate policy must need to trip, within the safety bounds.
    pub const SAFE_MIN_FAILURES_TO_TRIP: f64 = 3.0;

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
        self
    }

    /// Every variant of `cand` along dimension `dim` (0..N_DIMS).
    fn variants(&self, cand: &Candidate, dim: usize) -> Vec<Candidate> {
        let with = |f: &dyn Fn(&mut Candidate)| {
            let mut next = cand.clone();
            f(&mut next);
            next
        };
        match dim {
            0 => self
                .failure_rate_thresholds
                .iter()
                .map(|&v| with(&|c| c.failure_rate_threshold = v))
                .collect(),
            1 => self
                .windows
                .iter()
                .map(|&v| with(&|c| c.window = v))
                .collect(),
            2 => self
                .minimum_calls
                .iter()
                .map(|&v| with(&|c| c.minimum_calls = v))
                .collect(),
            3 => self
                .consecutive_failures
                .iter()
                .map(|&v| with(&|c| c.consecutive_failures = v))
                .collect(),
            4 => {
                // Slow-call policy on or off, with each duration at three rates.
                let mut out = vec![with(&|c| c.slow = None)];
                for &ms in &self.slow_call_durations_ms {
                    for rate in [0.2, 0.5, 0.8] {
                        out.push(with(&|c| c.slow = Some((ms, rate))));
                    }
                }
                out
            }
            5 => match cand.slow {
                Some((ms, _)) => self
                    .slow_call_rates
                    .iter()
                    .map(|&rate| with(&|c| c.slow = Some((ms, rate))))
                    .collect(),
                None => Vec::new(),
            },
            6 => self.waits.iter().map(|&v| with(&|c| c.wait = v)).collect(),
            _ => self
                .half_open
                .iter()
                .map(|&v| with(&|c| c.half_open = v))
                .collect(),
        }
    }
}

const N_DIMS: usize = 8;

// === impl Candidate ===

impl Candidate {
    pub fn from_config(config: &Config) -> Candidate {
        Candidate {
            failure_rate_threshold: config.failure_rate_threshold(),
            window: config.window(),
            minimum_calls: config.minimum_calls(),
            consecutive_failures: config.consecutive_failures(),
            slow: config
                .slow_call_rate_threshold()
                .map(|rate| (config.slow_call_duration().as_millis() as u32, rate)),
            wait: config.wait(),
            half_open: (config.half_open_probes(), config.half_open_successes()),
            call_timeout: config.call_timeout(),
        }
    }

    /// The breaker config, or `None` when the combination breaks one of its rules (or could
    /// never trip).
    pub fn to_config(&self) -> Option<Config> {
        if self.failure_rate_threshold.is_none()
            && self.slow.is_none()
            && self.consecutive_failures.is_none()
        {
            return None;
        }
        let builder = Config::builder()
            .failure_rate_threshold(self.failure_rate_threshold)
            .window(self.window)
            .minimum_calls(self.minimum_calls)
            .consecutive_failures(self.consecutive_failures)
            .wait(self.wait)
            .half_open_probes(self.half_open.0)
            .half_open_successes(self.half_open.1)
            .call_timeout(self.call_timeout);
        let builder = match self.slow {
            Some((ms, rate)) => builder
                .slow_call_rate_threshold(rate)
                .slow_call_duration(Duration::from_millis(u64::from(ms))),
            None => builder.slow_call_rate_threshold(None),
        };
        builder.build().ok()
    }

    /// Count-based parameters divided by `factor`, for a history thinned by `factor`.
    pub fn thinned(&self, factor: u32) -> Candidate {
        if factor <= 1 {
            return self.clone();
        }
        let div = |n: u32| n.div_ceil(factor).max(1);
        let mut out = self.clone();
        if let Window::Count(n) = out.window {
            out.window = Window::Count(div(n));
        }
        out.minimum_calls = div(out.minimum_calls);
        if let Window::Count(n) = out.window {
            out.minimum_calls = out.minimum_calls.min(n);
        }
        // Runs of failures survive thinning (rates per step are kept), so this stays.
        out
    }

    /// Whether every rate policy needs at least `n` failures (or slow calls) to trip.
    pub fn needs_failures(&self, n: f64) -> bool {
        let min_calls = f64::from(self.minimum_calls);
        let ok = |threshold: f64| threshold * min_calls >= n - 1e-9;
        self.failure_rate_threshold.is_none_or(ok) && self.slow.is_none_or(|(_, rate)| ok(rate))
    }

    /// Raises the minimum calls (and a count window with them) until every rate policy needs
    /// at least `n` failures to trip.
    pub fn require_failures(&mut self, n: f64) {
        for threshold in [self.failure_rate_threshold, self.slow.map(|(_, rate)| rate)]
            .into_iter()
            .flatten()
        {
            let needed = (n / threshold).ceil() as u32;
            self.minimum_calls = self.minimum_calls.max(needed);
        }
        if let Window::Count(size) = self.window {
            self.window = Window::Count(size.max(self.minimum_calls));
        }
    }

    /// A rough count of moving parts, to prefer the simpler of two equally good candidates.
    fn complexity(&self) -> u32 {
        u32::from(self.failure_rate_threshold.is_some())
            + u32::from(self.consecutive_failures.is_some())
            + u32::from(self.slow.is_some())
            + u32::from(matches!(self.wait, Wait::Exponential { .. }))
            + u32::from(self.half_open.0 > 1)
            + u32::from(self.half_open.1 > 1)
    }

    fn key(&self) -> String {
        format!("{self:?}")
    }
}

// === impl Search ===

impl Search {
    /// A search over `history` labelled by `labels`, with injected incidents when asked.
    pub fn new(history: &History, labels: &Labels, opts: SearchOptions) -> Search {
        let mut full = vec![EvalSet {
            name: "history",
            history: history.clone(),
            healthy: labels.healthy(),
            incidents: labels.spans(),
        }];
        if opts.inject {
            full.extend(injected_sets(history, labels, opts.n_injected_copies));
        }
        let n_incidents = full.iter().map(|set| set.incidents.len()).sum::<usize>() as f64;
        let mut search = Search::from_sets(full, opts);
        search.probe_risk = Some(ProbeRisk::new(history, labels, n_incidents));
        search
    }

    /// A search over the given labelled sets (the oracle uses the truth this way).
    pub fn from_sets(full: Vec<EvalSet>, opts: SearchOptions) -> Search {
        let total_calls: u64 = full.iter().map(|set| set.history.n_calls()).sum();
        let thin = total_calls
            .div_ceil(opts.replay_budget_calls.max(1))
            .clamp(1, u64::from(u32::MAX)) as u32;
        let screen = if thin > 1 {
            full.iter()
                .map(|set| EvalSet {
                    history: set.history.thinned(thin),
                    ..set.clone()
                })
                .collect()
        } else {
            Vec::new()
        };
        Search {
            full,
            screen,
            thin,
            score_from: 0,
            opts,
            cache: HashMap::new(),
            n_replays: 0,
            replayed_calls: 0,
            stopped: None,
            probe_risk: None,
        }
    }

    /// Brings `cands` within the safety bounds (see [`SearchOptions::min_failures_to_trip`]
    /// and the noise margin).
    pub fn apply_safety_bounds(&self, cands: &mut [Candidate]) {
        if self.opts.min_failures_to_trip <= 0.0 {
            return;
        }
        for cand in cands {
            cand.require_failures(self.opts.min_failures_to_trip);
            if let Some(risk) = &self.probe_risk {
                risk.require_noise_margin(cand);
            }
        }
    }

    /// Scores only the steps from `step` on; earlier ones just warm the breaker up.
    pub fn score_from_step(&mut self, step: usize) {
        self.score_from = step;
        self.cache.clear();
    }

    /// The evaluation sets (the history first).
    pub fn sets(&self) -> &[EvalSet] {
        &self.full
    }

    /// Calls driven through the machine so far: at most [`replay::MAX_CALLS_PER_STEP`] per
    /// step of each replayed set.
    pub fn replayed_calls(&self) -> u64 {
        self.replayed_calls
    }

    /// Replays so far.
    pub fn n_replays(&self) -> usize {
        self.n_replays
    }

    /// Why the search gave up, if its stop fired.
    pub fn stopped(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Checks the stop; once it has fired the search stays stopped.
    fn should_stop(&mut self) -> bool {
        if self.stopped.is_none() {
            self.stopped = self.opts.stop.check();
        }
        self.stopped.is_some()
    }

    /// The cost of `cand` over the full sets (infinite when it is not a valid config).
    pub fn full_cost(&mut self, cand: &Candidate) -> f64 {
        let Some(config) = cand.to_config() else {
            return f64::INFINITY;
        };
        if !cand.needs_failures(self.opts.min_failures_to_trip) {
            return f64::INFINITY;
        }
        let mut replayed = 0.0;
        for set in &self.full {
            if let Some(reason) = self.opts.stop.check() {
                self.stopped = Some(reason);
                return f64::INFINITY;
            }
            self.n_replays += 1;
            replayed += cost_on(
                set,
                &config,
                1,
                self.score_from,
                self.opts.false_trip_penalty_s,
                &mut self.replayed_calls,
            );
        }
        replayed + self.probe_risk.as_ref().map_or(0.0, |risk| risk.cost(cand))
    }

    /// Per-set scores of `config` over the full sets.
    pub fn scores(&self, config: &Config) -> Vec<Score> {
        self.full
            .iter()
            .map(|set| {
                let res = replay::replay(&set.history, 0..set.history.len(), config);
                replay::score(&set.history, &res, &set.healthy, &set.incidents)
            })
            .collect()
    }

    /// The screening cost (thinned when the sets are large), cached. Replaying stops once
    /// the cost passes `bound`: the result is then only a lower bound, above `bound`.
    fn screen_cost(&mut self, cand: &Candidate, bound: f64) -> f64 {
        if self.should_stop() {
            return f64::INFINITY;
        }
        let key = cand.key();
        if let Some(&(cost, _, exact)) = self.cache.get(&key)
            && (exact || cost > bound)
        {
            return cost;
        }
        let (sets, factor, config) = if self.thin > 1 {
            (&self.screen, self.thin, cand.thinned(self.thin).to_config())
        } else {
            (&self.full, 1, cand.to_config())
        };
        let Some(config) = config.filter(|_| cand.needs_failures(self.opts.min_failures_to_trip))
        else {
            self.cache.insert(key, (f64::INFINITY, cand.clone(), true));
            return f64::INFINITY;
        };
        // The history is the last set: the cheap injected sets rule most candidates out first.
        let mut cost = self.probe_risk.as_ref().map_or(0.0, |risk| risk.cost(cand));
        let mut exact = true;
        for set in sets.iter().rev() {
            if let Some(reason) = self.opts.stop.check() {
                // Not cached: a stopped search never asks again.
                self.stopped = Some(reason);
                return f64::INFINITY;
            }
            self.n_replays += 1;
            cost += cost_on(
                set,
                &config,
                factor,
                self.score_from,
                self.opts.false_trip_penalty_s,
                &mut self.replayed_calls,
            );
            if cost > bound {
                exact = false;
                break;
            }
        }
        self.cache.insert(key, (cost, cand.clone(), exact));
        cost
    }

    /// Coordinate descent from one starting point.
    fn descend(
        &mut self,
        grid: &Grid,
        mut best_cost: f64,
        mut best: Candidate,
    ) -> (f64, Candidate) {
        for _round in 0..self.opts.max_rounds {
            let mut changed = false;
            for dim in 0..N_DIMS {
                for mut variant in grid.variants(&best, dim) {
                    if self.should_stop() {
                        return (best_cost, best);
                    }
                    // A lower threshold brings a higher minimum of calls with it.
                    if self.opts.min_failures_to_trip > 0.0 {
                        variant.require_failures(self.opts.min_failures_to_trip);
                        if let Some(risk) = &self.probe_risk {
                            risk.require_noise_margin(&mut variant);
                        }
                    }
                    if variant == best {
                        continue;
                    }
                    let cost = self.screen_cost(&variant, best_cost + 1e-9);
                    if better(cost, &variant, best_cost, &best) {
                        best_cost = cost;
                        best = variant;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        (best_cost, best)
    }

    /// Coordinate descent from the best of `seeds`; returns the best candidate found.
    pub fn run(&mut self, grid: &Grid, seeds: &[Candidate]) -> Option<Found> {
        let mut scored: Vec<(f64, Candidate)> = seeds
            .iter()
            .map(|seed| (self.screen_cost(seed, f64::INFINITY), seed.clone()))
            .filter(|(cost, _)| cost.is_finite())
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        if self.should_stop() {
            return None;
        }
        // Descend from the best few seeds; keep the best end point.
        let (mut best_cost, mut best) = scored.first().cloned()?;
        for (start_cost, start) in scored.into_iter().take(self.opts.n_starts.max(1)) {
            let (cost, cand) = self.descend(grid, start_cost, start);
            if better(cost, &cand, best_cost, &best) || cand == best {
                best_cost = cost;
                best = cand;
            }
        }
        // Replay the best few in full and keep the best of those.
        let mut ranked: Vec<(f64, Candidate)> = self
            .cache
            .values()
            .filter(|(cost, _, exact)| *exact && cost.is_finite())
            .map(|(cost, cand, _)| (*cost, cand.clone()))
            .collect();
        ranked.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.complexity().cmp(&b.1.complexity()))
                .then_with(|| a.1.key().cmp(&b.1.key()))
        });
        let runner_up = |chosen: &Candidate, costs: &[(f64, Candidate)]| {
            costs
                .iter()
                .filter(|(_, cand)| cand != chosen)
                .map(|(cost, _)| *cost)
                .min_by(f64::total_cmp)
        };
        let (cost, candidate, runner_up_cost) = if self.thin > 1 && self.opts.n_finalists > 0 {
            // Screening was on a thinned copy: replay the best few (and the seeds) in full,
            // and choose among them by the same rule as the descent.
            let mut finalists: Vec<Candidate> = Vec::new();
            for (_, cand) in &ranked {
                if finalists.len() >= self.opts.n_finalists {
                    break;
                }
                if !finalists.contains(cand) && *cand != best {
                    finalists.push(cand.clone());
                }
            }
            for cand in seeds {
                if !finalists.contains(cand) && *cand != best && cand.to_config().is_some() {
                    finalists.push(cand.clone());
                }
            }
            let mut chosen = (self.full_cost(&best), best.clone());
            let mut costs = vec![chosen.clone()];
            for cand in finalists {
                let cost = self.full_cost(&cand);
                costs.push((cost, cand.clone()));
                if better(cost, &cand, chosen.0, &chosen.1) {
                    chosen = (cost, cand);
                }
            }
            let runner_up_cost = runner_up(&chosen.1, &costs);
            (chosen.0, chosen.1, runner_up_cost)
        } else {
            let runner_up_cost = runner_up(&best, &ranked);
            (best_cost, best, runner_up_cost)
        };
        if self.should_stop() {
            return None;
        }
        Some(Found {
            config: candidate.to_config()?,
            cost,
            runner_up_cost,
            candidate,
            n_replays: self.n_replays,
            replayed_calls: self.replayed_calls,
            thin: self.thin,
        })
    }
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
            share_at_least,
        }
    }

    /// Raises the minimum calls until the usual rates, drawn at random over that many calls,
    /// reach a threshold with probability at most `NOISE_TAIL`. A replay spreads each step's
    /// failures evenly, which hides this noise at high volume; real traffic does not.
    fn require_noise_margin(&self, cand: &mut Candidate) {
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

    fn cost(&self, cand: &Candidate) -> f64 {
        let p_bad = (self.usual_failure_rate + self.slow_share(cand)).min(1.0);
        let n_successes = cand.half_open.1.max(1) as i32;
        let p_probe_fails = 1.0 - (1.0 - p_bad).powi(n_successes);
        let next_wait = match cand.wait {
            Wait::Fixed(wait) => wait.as_secs_f64(),
            Wait::Exponential {
                initial,
                multiplier,
                max,
                ..
            } => (initial.as_secs_f64() * multiplier).min(max.as_secs_f64()),
        };
        self.n_incidents * p_probe_fails * self.calls_per_second * next_wait
    }
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

/// Whether `cost` of `cand` beats `best_cost` of `best`: by a margin, or equal and simpler.
fn better(cost: f64, cand: &Candidate, best_cost: f64, best: &Candidate) -> bool {
    if !cost.is_finite() {
        return false;
    }
    let margin = 0.01 * best_cost + 0.5;
    cost < best_cost - margin || (cost <= best_cost + 1e-9 && cand.complexity() < best.complexity())
}

fn cost_on(
    set: &EvalSet,
    config: &Config,
    weight: u32,
    score_from: usize,
    false_trip_penalty_s: f64,
    replayed_calls: &mut u64,
) -> f64 {
    let mut res = replay::replay(&set.history, 0..set.history.len(), config);
    *replayed_calls += res.replayed_calls;
    let skip = score_from.min(set.history.len());
    if skip > 0 {
        res.admitted.drain(..skip);
        res.rejected.drain(..skip);
        res.range = skip..set.history.len();
    }
    let score = replay::score(&set.history, &res, &set.healthy, &set.incidents);
    let penalty = if false_trip_penalty_s > 0.0 && score.false_trips > 0 {
        let seconds = set.history.len() as f64 * set.history.step.as_secs_f64();
        let rate = set.history.n_calls() as f64 / seconds.max(1.0);
        f64::from(score.false_trips) * false_trip_penalty_s * rate
    } else {
        0.0
    };
    (score.cost + penalty) * f64::from(weight)
}

/// The bucket holding the median latency of the whole history.
pub(crate) fn median_bucket(history: &History) -> usize {
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

/// What an injected stretch looks like.
#[derive(Clone, Copy, Debug)]
enum Injection {
    /// Failures moved `severity` of the way from the usual rate to 100 %.
    Failures { severity: f64 },
    /// Latencies moved up by this many buckets.
    Slowdown { n_buckets: usize },
    /// Failures and slow calls ×factor, still healthy.
    Stress { factor: f64 },
}

/// Incidents written into copies of normal stretches of `history`.
fn injected_sets(history: &History, labels: &Labels, n_copies: usize) -> Vec<EvalSet> {
    let step_s = history.step.as_secs_f64().max(1e-3);
    let steps_of = |secs: f64| ((secs / step_s).round() as usize).max(1);
    // Incidents twice, at different places, so that one lucky or unlucky probe does not
    // decide. Their lengths are deliberately not round: where an incident ends relative to
    // the probes decides the good calls refused after it, and lengths spread over a minute
    // (the odd seconds below) price a wait by what it costs on average, not by how neatly
    // it divides a round length.
    let specs: [(&'static str, Injection, f64); 12] = [
        ("outage-2m", Injection::Failures { severity: 1.0 }, 127.0),
        ("outage-10m", Injection::Failures { severity: 1.0 }, 613.0),
        ("partial-50", Injection::Failures { severity: 0.5 }, 319.0),
        ("partial-30", Injection::Failures { severity: 0.3 }, 329.0),
        ("slowdown", Injection::Slowdown { n_buckets: 5 }, 337.0),
        ("stress", Injection::Stress { factor: 1.3 }, 900.0),
        ("outage-2m", Injection::Failures { severity: 1.0 }, 163.0),
        ("outage-10m", Injection::Failures { severity: 1.0 }, 643.0),
        ("partial-50", Injection::Failures { severity: 0.5 }, 353.0),
        ("partial-30", Injection::Failures { severity: 0.3 }, 311.0),
        ("slowdown", Injection::Slowdown { n_buckets: 5 }, 347.0),
        ("stress", Injection::Stress { factor: 1.3 }, 900.0),
    ];
    // The stressed stretches are centred on the worst noise the history showed (its
    // highest-scoring transients), so the margin is taken where it matters.
    let mut worst_noise: Vec<&crate::anomaly::Period> = labels.transients.iter().collect();
    worst_noise.sort_by(|a, b| b.peak_score.total_cmp(&a.peak_score));
    let mut worst_noise = worst_noise.into_iter();
    let usual_failure_rate = {
        let (n_calls, n_failures) = history
            .steps
            .iter()
            .zip(&labels.anomalous)
            .filter(|(_, anomalous)| !**anomalous)
            .fold((0u64, 0u64), |(c, f), (step, _)| {
                (c + u64::from(step.n_calls), f + u64::from(step.n_failures))
            });
        if n_calls > 0 {
            n_failures as f64 / n_calls as f64
        } else {
            0.0
        }
    };
    let pre = steps_of(300.0);
    let post = steps_of(180.0);
    let n_specs = specs.len();
    let mut out = Vec::new();
    let n_used = if n_copies >= 2 { n_specs } else { 6 };
    for (k, (name, injection, secs)) in specs.into_iter().enumerate().take(n_used) {
        let len_incident = steps_of(secs);
        let (lead, tail) = match injection {
            Injection::Stress { .. } => (0, 0),
            _ => (pre, post),
        };
        let total = lead + len_incident + tail;
        if history.len() < total {
            continue;
        }
        // Spread the copies over the history, each on a stretch with no anomaly.
        let mut want = ((k as f64 + 0.5) / n_specs as f64 * history.len() as f64) as usize;
        if let Injection::Stress { .. } = injection
            && let Some(noise) = worst_noise.next()
        {
            want = noise.start_step.saturating_sub(total / 2);
        }
        let Some(start) = clean_stretch(&labels.anomalous, want, total) else {
            continue;
        };
        let mut steps: Vec<Step> = history.steps[start..start + total].to_vec();
        let mut healthy = vec![true; total];
        let mut carry = 0.0;
        for (offset, step) in steps.iter_mut().enumerate().skip(lead).take(len_incident) {
            match injection {
                Injection::Failures { severity } => {
                    let rate = usual_failure_rate + severity * (1.0 - usual_failure_rate);
                    let exact = f64::from(step.n_calls) * rate + carry;
                    let n = (exact.floor() as u32).min(step.n_calls);
                    carry = exact - f64::from(n);
                    step.n_failures = step.n_failures.max(n);
                    healthy[offset] = false;
                }
                Injection::Slowdown { n_buckets } => {
                    let len = step.latency_counts.len();
                    let mut moved = vec![0u32; len];
                    for (b, &count) in step.latency_counts.iter().enumerate() {
                        moved[(b + n_buckets).min(len.saturating_sub(1))] += count;
                    }
                    step.latency_counts = moved;
                    healthy[offset] = false;
                }
                Injection::Stress { factor } => {
                    let exact = f64::from(step.n_failures) * factor + carry;
                    let n = (exact.floor() as u32).min(step.n_calls);
                    carry = exact - f64::from(n);
                    step.n_failures = n;
                    // Move a share of calls up one bucket: a slightly slower dependency.
                    let len = step.latency_counts.len();
                    if len > 1 {
                        for b in (0..len - 1).rev() {
                            let shift = (f64::from(step.latency_counts[b]) * (factor - 1.0)) as u32;
                            step.latency_counts[b] -= shift;
                            step.latency_counts[b + 1] += shift;
                        }
                    }
                }
            }
        }
        let step_ms = history.step.as_millis() as u64;
        let incidents = if len_incident > 0 && healthy.iter().any(|h| !h) {
            vec![Span {
                start_ms: steps[lead].t_ms,
                end_ms: steps[lead + len_incident - 1].t_ms + step_ms,
            }]
        } else {
            Vec::new()
        };
        // Scores index `healthy` by step from the start of the set's history.
        out.push(EvalSet {
            name,
            history: History {
                step: history.step,
                latency_buckets_ms: history.latency_buckets_ms.clone(),
                steps,
            },
            healthy,
            incidents,
        });
    }
    out
}

/// The start of a run of `len` steps with no anomaly, nearest to `want`.
fn clean_stretch(anomalous: &[bool], want: usize, len: usize) -> Option<usize> {
    let n = anomalous.len();
    if n < len {
        return None;
    }
    let last_start = n - len;
    let mut n_before = vec![0usize; n + 1];
    for (i, &a) in anomalous.iter().enumerate() {
        n_before[i + 1] = n_before[i] + usize::from(a);
    }
    let ok = |start: usize| n_before[start + len] == n_before[start];
    let want = want.min(last_start);
    (0..=last_start).find_map(|d| {
        [
            want.checked_sub(d),
            Some(want + d).filter(|&s| s <= last_start),
        ]
        .into_iter()
        .flatten()
        .find(|&s| ok(s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten minutes of 100 calls a second, with a 5-second burst of failures (labelled healthy:
    /// noise) at 200 s.
    fn noisy_set() -> EvalSet {
        let steps = (0..600u64)
            .map(|i| Step {
                t_ms: i * 1_000,
                n_calls: 100,
                n_failures: if (200..205).contains(&i) { 60 } else { 1 },
                n_rejected: 0,
                latency_counts: vec![100, 0],
            })
            .collect();
        let history = History {
            step: Duration::from_secs(1),
            latency_buckets_ms: vec![10, 100],
            steps,
        };
        EvalSet {
            name: "noise",
            healthy: vec![true; history.len()],
            incidents: Vec::new(),
            history,
        }
    }

    #[test]
    fn a_false_trip_costs_the_penalty_on_top_of_the_calls_it_refused() {
        let set = noisy_set();
        let touchy = Config::builder()
            .failure_rate_threshold(0.5)
            .window(Window::Count(20))
            .minimum_calls(20)
            .wait_duration(Duration::from_secs(1))
            .half_open_probes(1)
            .half_open_successes(1)
            .build()
            .unwrap();
        let mut calls = 0;
        let plain = cost_on(&set, &touchy, 1, 0, 0.0, &mut calls);
        let priced = cost_on(&set, &touchy, 1, 0, 60.0, &mut calls);
        let res = replay::replay(&set.history, 0..set.history.len(), &touchy);
        let trips = replay::score(&set.history, &res, &set.healthy, &set.incidents).false_trips;
        assert!(trips > 0, "the burst trips this config");
        // 60 s at the set's mean rate of 100 calls a second, per false trip.
        assert!((priced - plain - f64::from(trips) * 6_000.0).abs() < 1e-6);
        // A config that rides the burst out pays nothing extra.
        let calm = Config::builder()
            .failure_rate_threshold(0.9)
            .window(Window::Count(20))
            .minimum_calls(20)
            .build()
            .unwrap();
        assert_eq!(
            cost_on(&set, &calm, 1, 0, 60.0, &mut calls),
            cost_on(&set, &calm, 1, 0, 0.0, &mut calls)
        );
    }

    #[test]
    fn a_time_window_is_widened_until_it_usually_holds_the_minimum_of_calls() {
        // Half a call a second, 2 % failing: ten seconds hold five calls on average.
        let steps = (0..3_600u64)
            .map(|i| Step {
                t_ms: i * 1_000,
                n_calls: u32::from(i % 2 == 0),
                n_failures: u32::from(i % 100 == 0),
                n_rejected: 0,
                latency_counts: vec![u32::from(i % 2 == 0), 0],
            })
            .collect();
        let history = History {
            step: Duration::from_secs(1),
            latency_buckets_ms: vec![10, 100],
            steps,
        };
        let labels = Labels {
            anomalous: vec![false; history.len()],
            ..Labels::default()
        };
        let risk = ProbeRisk::new(&history, &labels, 1.0);
        let mut cand = Candidate {
            failure_rate_threshold: Some(0.5),
            window: Window::Time(10),
            minimum_calls: 9,
            consecutive_failures: None,
            slow: None,
            wait: Wait::Fixed(Duration::from_secs(5)),
            half_open: (1, 1),
            call_timeout: None,
        };
        risk.require_noise_margin(&mut cand);
        let m = f64::from(cand.minimum_calls);
        let Window::Time(secs) = cand.window else {
            panic!("still a time window: {:?}", cand.window);
        };
        // At half a call a second: m + 2·√m calls need twice as many seconds.
        assert_eq!(secs, (2.0 * (m + 2.0 * m.sqrt())).ceil() as u32);
        assert!(secs >= 30, "{secs}");
        // A busy enough window is left alone.
        let mut busy = Candidate {
            window: Window::Time(600),
            ..cand.clone()
        };
        risk.require_noise_margin(&mut busy);
        assert_eq!(busy.window, Window::Time(600));
    }
}
