//! Chooses a configuration by replaying the history through the breaker, against the labels.
//!
//! The objective is the cost of `shared/tuning/SCENARIOS.md`, `lost_good + 0.2 · wasted`,
//! summed over evaluation sets that each carry their own labels:
//!
//! - the history itself, labelled by [`crate::anomaly`] (the tuner never sees the truth);
//! - when the labels find at least two incidents (that find a place), *transplanted
//!   incidents*: each (at most six
//!   per copy asked for) written into a copy of a normal stretch elsewhere in the history,
//!   with its own failure share and latency profile step by step, on that stretch's volume.
//!   A breaker meets the incidents this dependency really has (a dependency that flaps, an
//!   outage of an hour, one shard of four failing) again, on other traffic and at another
//!   point of its waits, so that a config is not chosen for how one incident happened to
//!   line up with its probes;
//! - else *injected incidents*: copies of normal stretches of the same history with a hard outage
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
//! incident (see `ProbeRisk`), which a deterministic replay leaves to luck; with
//! [`SearchOptions::price_chance_closes`] (the tuner's), the chance that probes which failed
//! during an incident would have passed, closing the breaker mid-incident; and, with
//! [`SearchOptions::expected_tails`] (the tuner's), each incident's tail, the healthy calls
//! refused until the next probe, counts at its expected length rather than the drawn one.
//!
//! The search is coordinate descent over [`Grid`]: one parameter at a time takes every value
//! in its list and keeps the best, until a round changes nothing. Where it settles, pairs
//! that only pay together are tried jointly (the wait with the half-open probes, the window
//! with the minimum of calls; under a deadline only while twice the time the search has taken
//! is left), and when one helps the rounds go on: one parameter at a time
//! stops where a shorter wait looks worse without more probes and more probes worse without
//! a shorter wait. A change is only taken when
//! it lowers the cost by more than a small margin, and ties go to the simpler value, so the
//! result does not chase noise. Long histories are screened on a thinned copy (one call in
//! `k`, count-based parameters divided by `k`), and the best few are replayed in full.
//!
//! The parts, one file each:
//! - `grid`: [`Grid`], the values each parameter may take, and `Param`, the parameters in
//!   the order the descent visits them;
//! - `candidate`: [`Candidate`], one configuration as the search varies it ([`Probes`], its
//!   half-open rule), its conversion
//!   to and from [`breaker::Config`], and the key it is cached under;
//! - `descent`: the coordinate descent, the rule that decides when one candidate beats
//!   another, and a candidate's cost on one set;
//! - `inject`: the transplanted and injected incidents and the stressed stretches;
//! - `probe_risk`: the expected cost of unlucky probes and of trips by chance, and the noise
//!   margin;
//! - `tail`: the expected tail after an incident; `chance_close`: probes passing by chance.

mod candidate;
mod chance_close;
mod descent;
mod grid;
mod inject;
mod probe_risk;
mod tail;

use std::collections::HashMap;

use breaker::Config;

use crate::anomaly::Labels;
use crate::history::History;
use crate::replay::{self, Score};
use crate::scenario::Span;
use crate::stop::{Stop, StopReason};

pub use candidate::{Candidate, Probes};
pub use grid::Grid;
pub(crate) use probe_risk::{ProbeRisk, binomial_tail};
pub(crate) use tail::expected_minus_replayed;

use candidate::CandidateKey;
use descent::{Pricing, better, cost_on};
use inject::injected_sets;

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
    /// The joint moves (see [`Grid::variants`] with the joint parameters) run from this many
    /// of the best end points of the plain descents; `usize::MAX` runs them in every descent.
    /// The joint moves cost as much again as a descent, so a search from many seeds (the
    /// oracle's) gives them only to its most promising end points.
    pub joint_starts: usize,
    /// How many of the best screened candidates are replayed in full.
    pub n_finalists: usize,
    /// A replay in screening stops once its cost passes this multiple of the best cost so
    /// far (the candidate cannot win; its cost is then kept as a lower bound). 1 gives up as
    /// early as is safe; more keeps near misses exact, for the runner-up a suggestion's
    /// confidence is judged by; infinity replays everything.
    pub give_up_factor: f64,
    /// Whether to add transplanted or injected incidents and the stressed stretches.
    pub inject: bool,
    /// Each injected kind is written into this many places (1 or 2), and at most six of the
    /// history's own incidents are transplanted per copy.
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
    /// Whether the tail after each incident (the healthy calls refused until the next probe)
    /// is counted at its expected length over where the incident could have ended within
    /// the probe cycle, instead of the one the replay drew (see `tail`). The tuner's
    /// objective does; the oracle's, the cost of the very steps scored, does not.
    pub expected_tails: bool,
    /// With a seed: every candidate whose cost is known exactly is replayed once more over
    /// each set with each step's calls in a random order (seeded by this), and ruled out
    /// (infinite cost) when it trips falsely there. The even layout of a replay never lets a
    /// share of failures below a threshold reach it; chance does. The safe oracle's search
    /// uses it (see `eval`); the tuner prices trips by chance instead (`ProbeRisk`).
    pub random_order_check: Option<u64>,
    /// Whether each failed try of the probes during a labelled incident also costs the
    /// chance they would pass in a random order, times the calls let through until the
    /// breaker trips again (see `chance_close`). The tuner's objective does; the oracle's not.
    pub price_chance_closes: bool,
    /// Checked before every replay and every round; once it fires, [`Search::run`] gives up.
    pub stop: Stop,
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
    /// How every replay lays out the steps of each set of `full` and `screen`.
    full_steps: Vec<replay::Steps>,
    screen_steps: Vec<replay::Steps>,
    thin: u32,
    /// Steps before this are replayed (to warm the breaker up) but not scored.
    score_from: usize,
    opts: SearchOptions,
    /// Screening cost (a lower bound when not exact), the candidate, and whether it is exact.
    cache: HashMap<CandidateKey, (f64, Candidate, bool)>,
    n_replays: usize,
    /// Calls driven through the machine over all replays (see [`replay::MAX_CALLS_PER_STEP`]).
    replayed_calls: u64,
    /// Why the search gave up, once its stop fired.
    stopped: Option<StopReason>,
    probe_risk: Option<ProbeRisk>,
    /// When [`Search::run`] began.
    started: std::time::Instant,
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
            joint_starts: usize::MAX,
            n_finalists: 5,
            give_up_factor: 2.0,
            inject: true,
            n_injected_copies: 2,
            min_failures_to_trip: 0.0,
            false_trip_penalty_s: 0.0,
            expected_tails: false,
            random_order_check: None,
            price_chance_closes: false,
            stop: Stop::default(),
        }
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
            let own = inject::transplanted_sets(
                history,
                labels,
                inject::MAX_TRANSPLANTS_PER_COPY * opts.n_injected_copies.max(1),
            );
            // The history's own incidents stand for what its dependency does; the generic
            // ones (solid outages, one partial rate, one slow-down) misprice what they do not
            // resemble (a dependency that flaps, outages of an hour). The stressed stretches
            // stay either way: they are the margin against noise.
            let generic = own.len() < inject::MIN_TRANSPLANTS;
            full.extend(injected_sets(
                history,
                labels,
                opts.n_injected_copies,
                generic,
            ));
            if !generic {
                full.extend(own);
            }
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
            full_steps: full
                .iter()
                .map(|set| replay::Steps::new(&set.history))
                .collect(),
            screen_steps: screen
                .iter()
                .map(|set| replay::Steps::new(&set.history))
                .collect(),
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
            started: std::time::Instant::now(),
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

    /// Takes the noise margin (see [`Search::apply_safety_bounds`]) from the usual traffic
    /// of `history`, its steps that `labels` does not mark anomalous, as [`Search::new`]
    /// does; no probe risk is added to the costs.
    pub fn with_noise_margin(mut self, history: &History, labels: &Labels) -> Search {
        self.probe_risk = Some(ProbeRisk::new(history, labels, 0.0));
        self
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

    /// How [`cost_on`] prices a replay under these options.
    fn pricing(&self) -> Pricing {
        Pricing {
            false_trip_penalty_s: self.opts.false_trip_penalty_s,
            expected_tails: self.opts.expected_tails,
            chance_closes: self.opts.price_chance_closes,
        }
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
        let pricing = self.pricing();
        for (set, steps) in self.full.iter().zip(&self.full_steps) {
            if let Some(reason) = self.opts.stop.check() {
                self.stopped = Some(reason);
                return f64::INFINITY;
            }
            self.n_replays += 1;
            replayed += cost_on(
                (set, steps),
                &config,
                1,
                self.score_from,
                pricing,
                &mut self.replayed_calls,
                f64::INFINITY,
            );
        }
        if replayed.is_finite() && self.trips_in_random_order(&config) {
            return f64::INFINITY;
        }
        replayed + self.risk_cost(cand)
    }

    /// Whether `config`, with [`SearchOptions::random_order_check`], trips falsely on any full
    /// set (from the first step scored on) with each step's calls in a random order.
    fn trips_in_random_order(&mut self, config: &Config) -> bool {
        let Some(seed) = self.opts.random_order_check else {
            return false;
        };
        for (set, steps) in self.full.iter().zip(&self.full_steps) {
            self.n_replays += 1;
            let mut res = replay::replay_laid_out_in_random_order(
                &set.history,
                steps,
                0..set.history.len(),
                config,
                seed,
            );
            self.replayed_calls += res.replayed_calls;
            res.drop_steps_before(self.score_from);
            if replay::score(&set.history, &res, &set.healthy, &set.incidents).false_trips > 0 {
                return true;
            }
        }
        false
    }

    /// What no replay shows: the expected cost of unlucky probes and of trips by chance.
    fn risk_cost(&self, cand: &Candidate) -> f64 {
        self.probe_risk.as_ref().map_or(0.0, |risk| {
            risk.cost(cand) + risk.chance_trip_cost(cand, self.opts.false_trip_penalty_s)
        })
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
        let (sets, steps, factor, config) = if self.thin > 1 {
            (
                &self.screen,
                &self.screen_steps,
                self.thin,
                cand.thinned(self.thin).to_config(),
            )
        } else {
            (&self.full, &self.full_steps, 1, cand.to_config())
        };
        let Some(config) = config.filter(|_| cand.needs_failures(self.opts.min_failures_to_trip))
        else {
            self.cache.insert(key, (f64::INFINITY, cand.clone(), true));
            return f64::INFINITY;
        };
        // The history is the last set: the cheap injected sets rule most candidates out first.
        let mut cost = self.risk_cost(cand);
        let mut exact = true;
        let pricing = self.pricing();
        for (set, steps) in sets.iter().zip(steps).rev() {
            if let Some(reason) = self.opts.stop.check() {
                // Not cached: a stopped search never asks again.
                self.stopped = Some(reason);
                return f64::INFINITY;
            }
            self.n_replays += 1;
            cost += cost_on(
                (set, steps),
                &config,
                factor,
                self.score_from,
                pricing,
                &mut self.replayed_calls,
                self.opts.give_up_factor * bound - cost,
            );
            if cost > bound {
                exact = false;
                break;
            }
        }
        if exact && cost.is_finite() && self.opts.random_order_check.is_some() {
            // Checked on the full sets whatever the screening: a false trip is not a share.
            let full = cand.to_config().expect("a valid candidate");
            if self.trips_in_random_order(&full) {
                cost = f64::INFINITY;
            }
        }
        self.cache.insert(key, (cost, cand.clone(), exact));
        cost
    }

    /// Coordinate descent from the best of `seeds`; returns the best candidate found.
    pub fn run(&mut self, grid: &Grid, seeds: &[Candidate]) -> Option<Found> {
        self.started = std::time::Instant::now();
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
        let starts: Vec<(f64, Candidate)> =
            scored.into_iter().take(self.opts.n_starts.max(1)).collect();
        let joint_everywhere = self.opts.joint_starts >= starts.len();
        let mut ends: Vec<(f64, Candidate)> = Vec::new();
        for (k, (start_cost, start)) in starts.into_iter().enumerate() {
            // A further start only while there is time for it: under a deadline, one
            // finished descent beats several stopped ones.
            if k > 0 && !self.time_to_go_on() {
                break;
            }
            ends.push(self.descend(grid, start_cost, start, joint_everywhere));
        }
        if !joint_everywhere {
            // The joint moves from the best few distinct end points of the plain descents.
            ends.sort_by(|a, b| a.0.total_cmp(&b.0));
            ends.dedup_by(|a, b| a.1 == b.1);
            let best_ends: Vec<(f64, Candidate)> =
                ends.iter().take(self.opts.joint_starts).cloned().collect();
            for (cost, end) in best_ends {
                ends.push(self.descend(grid, cost, end, true));
            }
        }
        for (cost, cand) in ends {
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
                .then_with(|| a.1.tie_break_text().cmp(&b.1.tie_break_text()))
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

#[cfg(test)]
mod tests;
