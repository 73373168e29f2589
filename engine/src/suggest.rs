//! Suggestions: the tuned config for one breaker, with the evidence for it.
//!
//! [`tune`] runs the whole pipeline on one history (features, labels, search);
//! [`suggest`] adds the back-test of the current and the suggested config against the
//! labels, the anomalous periods found, and a confidence, in plain types the server can store
//! and show.

use std::time::Duration;

use breaker::{Config, Wait, Window};

use crate::Warning;
use crate::anomaly::{self, AnomalyOptions, Labels, Period};
use crate::defaults;
use crate::explain::{self, Doubt, Evidence, Rule, RuleEffect};
use crate::features::{self, FeatureOptions, Features, col};
use crate::history::History;
use crate::replay::{self, Replay, Score};
use crate::search::{Candidate, Found, Grid, Probes, Search, SearchOptions};
use crate::stop::Stop;

/// What the tuner charges for a false trip in its evaluation sets, in seconds of traffic at
/// the set's mean rate (see `SearchOptions::false_trip_penalty_s`): about what a user loses
/// to a breaker held open a minute for nothing, whatever the config's own wait.
pub const FALSE_TRIP_PENALTY_S: f64 = 60.0;

/// Options for [`tune`] and [`suggest`].
#[derive(Clone, Debug)]
pub struct TuneOptions {
    pub features: FeatureOptions,
    pub anomaly: AnomalyOptions,
    pub search: SearchOptions,
    /// Back-tests of histories with more calls than this replay a thinned copy (one call in
    /// `k`, count-based parameters divided by `k`, counts multiplied back); `None` never thins.
    pub backtest_budget_calls: Option<u64>,
    /// Search every other value of each parameter only.
    pub coarse_grid: bool,
    /// Checked at coarse points (each replay, each round, each back-test); once it fires the
    /// run returns early with [`Warning::Stopped`] and no suggestion. The search uses this
    /// one, not `search.stop`.
    pub stop: Stop,
}

// === impl TuneOptions ===

impl Default for TuneOptions {
    /// Descents from the three best seeds (the prior, the current config, the library
    /// defaults), the joint moves from the best of their end points: one descent from the
    /// best seed alone settles in whichever valley that seed lies in.
    fn default() -> TuneOptions {
        TuneOptions {
            features: FeatureOptions::default(),
            anomaly: AnomalyOptions::default(),
            search: SearchOptions {
                n_starts: 3,
                joint_starts: 1,
                ..SearchOptions::default()
            },
            backtest_budget_calls: None,
            coarse_grid: false,
            stop: Stop::default(),
        }
    }
}

impl TuneOptions {
    /// Settings for suggesting configs for a whole fleet: screening on at most 15 k calls per
    /// candidate, every other grid value, one round of descent, one copy of each injected
    /// incident, the screened best taken as is, back-tests on at most 200 k calls.
    pub fn fleet() -> TuneOptions {
        TuneOptions {
            search: SearchOptions {
                replay_budget_calls: 15_000,
                max_rounds: 1,
                n_starts: 1,
                joint_starts: usize::MAX,
                n_finalists: 0,
                give_up_factor: 2.0,
                inject: true,
                n_injected_copies: 1,
                min_failures_to_trip: 0.0,
                false_trip_penalty_s: FALSE_TRIP_PENALTY_S,
                expected_tails: true,
                random_order_check: None,
                price_chance_closes: true,
                stop: Stop::default(),
            },
            backtest_budget_calls: Some(200_000),
            coarse_grid: true,
            ..TuneOptions::default()
        }
    }
}

/// What [`tune`] learned from one history.
#[derive(Clone, Debug)]
pub struct Tuned {
    pub config: Config,
    pub features: Features,
    pub labels: Labels,
    /// The search's result, `None` when nothing could be searched (an empty history) or the
    /// run was stopped.
    pub found: Option<Found>,
    /// Replays run and calls driven through the machine by the search.
    pub n_replays: usize,
    pub replayed_calls: u64,
}

/// A suggested config for one breaker, with its evidence.
#[derive(Clone, Debug)]
pub struct Suggestion {
    /// When the suggestion was made, in milliseconds since the Unix epoch (given by the caller).
    pub made_at_ms: u64,
    pub current: Config,
    pub suggested: Config,
    /// Back-test of the current config over the history, against the anomaly labels.
    pub current_backtest: Backtest,
    /// Back-test of the suggested config over the same history.
    pub suggested_backtest: Backtest,
    /// The anomalous periods found in the history.
    pub anomalies: Vec<Period>,
    /// Short anomalous runs left out of the labels.
    pub n_transients: usize,
    /// 0–1: how much to trust the suggestion (volume, history length, clarity of the choice);
    /// at most [`explain::LOW_CONFIDENCE`] when there are doubts.
    pub confidence: f64,
    /// The suggestion in sentences a person can check (see [`explain::explain`]).
    pub explanation: Vec<String>,
    /// Why it should not be trusted without a look; auto mode applies none that has any.
    pub doubts: Vec<Doubt>,
    /// Both back-tests step by step, for before/after charts.
    pub trace: Trace,
    /// Replays run (search and back-tests) and the calls they drove through the machine: at
    /// most [`replay::MAX_CALLS_PER_STEP`] per step of each replay, whatever the call counts.
    pub n_replays: usize,
    pub replayed_calls: u64,
}

/// The back-tests over time, in at most [`Trace::MAX_POINTS`] points: each point merges
/// `step` consecutive steps of the history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Where each point starts, from the start of the history (its first step's `t_ms`).
    pub t_ms: Vec<u64>,
    /// Each point's span.
    pub step: Duration,
    /// Failed / attempted calls of the history (`None` without calls).
    pub failure_rate: Vec<Option<f64>>,
    /// Share of the attempted calls the current config refused in the replay.
    pub current_refused: Vec<f64>,
    /// Share of the attempted calls the suggested config refused in the replay.
    pub suggested_refused: Vec<f64>,
    /// Whether any step of the point was labelled anomalous.
    pub anomalous: Vec<bool>,
}

impl Trace {
    pub const MAX_POINTS: usize = 720;

    fn new(history: &History, current: &Replay, suggested: &Replay, anomalous: &[bool]) -> Trace {
        let n = history.len();
        let per = n.div_ceil(Trace::MAX_POINTS).max(1);
        let mut trace = Trace {
            step: history.step * per as u32,
            ..Trace::default()
        };
        for start in (0..n).step_by(per) {
            let end = (start + per).min(n);
            let (mut calls, mut failures, mut refused_now, mut refused_new) =
                (0u64, 0u64, 0u64, 0u64);
            for i in start..end {
                calls += u64::from(history.steps[i].n_calls);
                failures += u64::from(history.steps[i].n_failures);
                refused_now += u64::from(current.rejected.get(i).copied().unwrap_or(0));
                refused_new += u64::from(suggested.rejected.get(i).copied().unwrap_or(0));
            }
            let share = |k: u64| {
                if calls > 0 {
                    k as f64 / calls as f64
                } else {
                    0.0
                }
            };
            trace.t_ms.push(history.steps[start].t_ms);
            trace
                .failure_rate
                .push((calls > 0).then(|| failures as f64 / calls as f64));
            trace.current_refused.push(share(refused_now));
            trace.suggested_refused.push(share(refused_new));
            trace.anomalous.push(
                anomalous
                    .get(start..end)
                    .is_some_and(|a| a.iter().any(|&x| x)),
            );
        }
        trace
    }
}

/// What a config would have done over the history, judged against the anomaly labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Backtest {
    /// Closed→Open transitions.
    pub trips: u32,
    /// Trips outside anomalous periods.
    pub false_trips: u32,
    /// Anomalous periods during which it opened within 60 s.
    pub detected: usize,
    pub anomalies: usize,
    /// Median detection delay over the detected periods.
    pub detection_delay_median: Option<Duration>,
    /// Calls it would have refused outside anomalous periods.
    pub lost_good: u64,
    /// Calls it would have let through during anomalous periods.
    pub wasted: u64,
    pub cost: f64,
}

// === impl Backtest ===

impl Backtest {
    pub fn from_score(score: &Score) -> Backtest {
        Backtest {
            trips: score.trips,
            false_trips: score.false_trips,
            detected: score.detected,
            anomalies: score.incidents,
            detection_delay_median: median_u64(&score.detection_delays_ms)
                .map(Duration::from_millis),
            lost_good: score.lost_good,
            wasted: score.wasted,
            cost: score.cost,
        }
    }
}

/// Learns from `history` and returns the config the search chose. `current`, when given,
/// is one of the starting points.
pub fn tune(
    history: &History,
    current: Option<&Config>,
    opts: &TuneOptions,
) -> (Tuned, Vec<Warning>) {
    let mut warnings = Vec::new();
    let fallback = current.cloned().unwrap_or_default();
    if let Some(reason) = opts.stop.check() {
        warnings.push(Warning::Stopped { reason });
        return (
            Tuned {
                config: fallback,
                features: Features::default(),
                labels: Labels::default(),
                found: None,
                n_replays: 0,
                replayed_calls: 0,
            },
            warnings,
        );
    }
    let features = features::features(history, &opts.features);
    let labels = anomaly::detect(history, &features, &opts.anomaly);
    tune_labelled(history, features, labels, current, opts)
}

/// [`tune`] with the labels given instead of detected: what the search makes of `history`
/// when its anomalous stretches are `labels` (e.g. the truth of a scenario, to tell how much
/// of a tuned config's cost comes from the labels and how much from the search).
pub fn tune_labelled(
    history: &History,
    features: Features,
    labels: Labels,
    current: Option<&Config>,
    opts: &TuneOptions,
) -> (Tuned, Vec<Warning>) {
    let mut warnings = Vec::new();
    let fallback = current.cloned().unwrap_or_default();
    if history.is_empty() || history.n_calls() == 0 {
        warnings.push(Warning::EmptyHistory);
        return (
            Tuned {
                config: fallback,
                features,
                labels,
                found: None,
                n_replays: 0,
                replayed_calls: 0,
            },
            warnings,
        );
    }
    let n_calls = history.n_calls();
    if n_calls < explain::MIN_CALLS {
        warnings.push(Warning::LowVolume { n_calls });
    }
    if labels.periods.is_empty() {
        warnings.push(Warning::NoAnomalies);
    }
    let mut grid = Grid::for_history(history).within_safety_bounds();
    if opts.coarse_grid {
        grid = grid.coarse();
    }
    let mut seeds = vec![prior(history, &features, &labels)];
    if let Some(current) = current {
        seeds.push(Candidate::from_config(current));
    }
    seeds.extend(
        defaults::library_defaults()
            .iter()
            .map(|(_, config)| Candidate::from_config(config)),
    );
    // The tuner does not set call timeouts: those belong to the caller's latency budget.
    // Seeds are brought within the safety bounds too.
    for seed in &mut seeds {
        seed.call_timeout = current.and_then(|c| c.call_timeout());
        within_safety_bounds(seed);
    }
    let search_opts = SearchOptions {
        min_failures_to_trip: Grid::SAFE_MIN_FAILURES_TO_TRIP,
        false_trip_penalty_s: FALSE_TRIP_PENALTY_S,
        expected_tails: true,
        price_chance_closes: true,
        stop: opts.stop.clone(),
        ..opts.search.clone()
    };
    let mut search = Search::new(history, &labels, search_opts);
    search.apply_safety_bounds(&mut seeds);
    let found = search.run(&grid, &seeds);
    if let Some(reason) = search.stopped() {
        warnings.push(Warning::Stopped { reason });
    }
    let config = found
        .as_ref()
        .map_or(fallback, |found| found.config.clone());
    (
        Tuned {
            config,
            features,
            labels,
            found,
            n_replays: search.n_replays(),
            replayed_calls: search.replayed_calls(),
        },
        warnings,
    )
}

/// Brings `seed` within the grid's safety bounds (see [`Grid::within_safety_bounds`] and
/// [`Grid::SAFE_MIN_FAILURES_TO_TRIP`]); the search adds its noise margin.
pub(crate) fn within_safety_bounds(seed: &mut Candidate) {
    seed.minimum_calls = seed.minimum_calls.max(5);
    if let Window::Count(n) = seed.window {
        seed.window = Window::Count(n.max(seed.minimum_calls).max(10));
    }
    if let Window::Time(secs) = seed.window {
        seed.window = Window::Time(secs.max(5));
    }
    seed.half_open = seed.half_open.within_safety_bounds();
    seed.require_failures(Grid::SAFE_MIN_FAILURES_TO_TRIP);
}

/// Tunes on `history` and back-tests `current` and the suggestion against the labels.
/// `None` (with [`Warning::Stopped`]) when [`TuneOptions::stop`] fired.
pub fn suggest(
    history: &History,
    current: &Config,
    made_at_ms: u64,
    opts: &TuneOptions,
) -> (Option<Suggestion>, Vec<Warning>) {
    let (tuned, mut warnings) = tune(history, Some(current), opts);
    let stopped = |warnings: &mut Vec<Warning>| {
        let reason = opts.stop.check()?;
        if !warnings
            .iter()
            .any(|warning| matches!(warning, Warning::Stopped { .. }))
        {
            warnings.push(Warning::Stopped { reason });
        }
        Some(reason)
    };
    if stopped(&mut warnings).is_some() {
        return (None, warnings);
    }
    let healthy = tuned.labels.healthy();
    let spans = tuned.labels.spans();
    let thin = opts.backtest_budget_calls.map_or(1, |budget| {
        history.n_calls().div_ceil(budget.max(1)).max(1) as u32
    });
    let replayed = history.thinned(thin);
    let mut replayed_calls = tuned.replayed_calls;
    let mut backtest = |config: &Config| {
        // Thinned, with the half-open rule the candidate does not carry kept.
        let config = if thin > 1 {
            Candidate::from_config(config)
                .thinned(thin)
                .to_config()
                .and_then(|thinned| {
                    thinned
                        .to_builder()
                        .half_open_rule(config.half_open_rule())
                        .half_open_max_wait(config.half_open_max_wait())
                        .build()
                        .ok()
                })
                .unwrap_or_else(|| config.clone())
        } else {
            config.clone()
        };
        let res = replay::replay(&replayed, 0..replayed.len(), &config);
        replayed_calls += res.replayed_calls;
        let mut score = replay::score(&replayed, &res, &healthy, &spans);
        score.lost_good *= u64::from(thin);
        score.wasted *= u64::from(thin);
        score.cost *= f64::from(thin);
        (Backtest::from_score(&score), res)
    };
    let (current_backtest, current_replay) = backtest(current);
    if stopped(&mut warnings).is_some() {
        return (None, warnings);
    }
    let (suggested_backtest, suggested_replay) = backtest(&tuned.config);
    // What each rule of the suggestion adds on the anomalous periods: the suggestion replayed
    // without it, period by period.
    let delays = |replay: &Replay| -> Vec<Option<u64>> {
        spans
            .iter()
            .map(|span| replay::detection_delay(&replay.transitions, span))
            .collect()
    };
    let suggested_delays = delays(&suggested_replay);
    let mut rule_effects = Vec::new();
    if !spans.is_empty() {
        for rule in Rule::ALL {
            if let Some(without) = rule.without(&tuned.config) {
                let (_, res) = backtest(&without);
                rule_effects.push(RuleEffect {
                    rule,
                    without: delays(&res),
                });
            }
        }
    }
    let trace = Trace::new(
        &replayed,
        &current_replay,
        &suggested_replay,
        &tuned.labels.anomalous,
    );
    let explanation = explain::explain(&Evidence {
        history,
        labels: &tuned.labels,
        current,
        suggested: &tuned.config,
        delays: &suggested_delays,
        rule_effects: &rule_effects,
    });
    let doubts = explain::doubts(
        history,
        &tuned.labels,
        &current_backtest,
        &suggested_backtest,
    );
    let mut confidence = confidence(history, &tuned);
    if !doubts.is_empty() {
        confidence = confidence.min(explain::LOW_CONFIDENCE);
    }
    (
        Some(Suggestion {
            made_at_ms,
            current: current.clone(),
            suggested: tuned.config.clone(),
            current_backtest,
            suggested_backtest,
            anomalies: tuned.labels.periods.clone(),
            n_transients: tuned.labels.transients.len(),
            confidence,
            explanation,
            doubts,
            trace,
            n_replays: tuned.n_replays + 2 + rule_effects.len(),
            replayed_calls,
        }),
        warnings,
    )
}

/// A starting point from the history's normal behaviour: a failure-rate threshold well above
/// the worst normal rate, judged over about ten seconds (or ten steps).
fn prior(history: &History, features: &Features, labels: &Labels) -> Candidate {
    let normal_rates: Vec<f64> = (0..features.n_rows)
        .filter(|&i| !labels.anomalous[i])
        .map(|i| features.get(i, col::FAILURE_RATE))
        .collect();
    let envelope = quantile(normal_rates, 0.999).unwrap_or(0.1);
    let want = (envelope * 1.5).max(envelope + 0.05);
    let threshold = [
        0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
    ]
    .into_iter()
    .find(|&t| t >= want)
    .unwrap_or(0.9);
    let step_s = history.step.as_secs().max(1) as u32;
    Candidate {
        failure_rate_threshold: Some(threshold),
        window: Window::Time((10 * step_s).clamp(10, 600)),
        minimum_calls: 10,
        consecutive_failures: None,
        slow: None,
        wait: Wait::Fixed(Duration::from_secs(5)),
        half_open: Probes::Successes(1, 1),
        call_timeout: None,
    }
}

/// Confidence from how much was seen and how clear the choice was.
fn confidence(history: &History, tuned: &Tuned) -> f64 {
    let Some(found) = &tuned.found else {
        return 0.0;
    };
    let n_calls = history.n_calls() as f64;
    let seen_seconds = history.len() as f64 * history.step.as_secs_f64();
    // Enough calls (10 k) and enough time (a day) each count for up to half.
    let volume = (n_calls / 10_000.0).min(1.0);
    let span = (seen_seconds / 86_400.0).min(1.0);
    let clarity = match found.runner_up_cost {
        Some(runner_up) if runner_up > 0.0 => {
            ((runner_up - found.cost) / runner_up).clamp(0.0, 1.0)
        }
        _ => 0.5,
    };
    let seen_incident = if tuned.labels.periods.is_empty() {
        0.8
    } else {
        1.0
    };
    ((0.5 * volume + 0.5 * span) * (0.7 + 0.3 * clarity) * seen_incident).clamp(0.0, 1.0)
}

fn quantile(mut values: Vec<f64>, q: f64) -> Option<f64> {
    values.retain(|x| x.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let idx = ((values.len() - 1) as f64 * q).round() as usize;
    Some(values[idx])
}

pub(crate) fn median_u64(values: &[u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2
    })
}

#[cfg(test)]
mod tests;
