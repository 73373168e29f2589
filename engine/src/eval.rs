//! `fusebox tune eval`: the honest protocol of `shared/tuning/SCENARIOS.md`.
//!
//! For each scenario the tuner learns from the first half of the steps with the truth removed
//! (it is handed a [`History`] only); every configuration — the five library defaults, the
//! tuned one and the oracle — is then replayed over the whole history and scored on the
//! second half against the truth.
//!
//! The oracle is the best static configuration of the documented grid ([`Grid::for_history`]
//! on the scored half: failure-rate thresholds 5–90 % or off, time windows 1 s–30 min and
//! count windows 5–1000 calls, minimum calls 1–200, consecutive failures 3–100 or off,
//! slow-call durations of the seven buckets above the median latency at rates 5–90 % or off,
//! fixed waits 0.5 s–2 min or two exponential backoffs, and eight half-open settings: six of successes in a row, two judging 5 or 10 probes by rate),
//! found by coordinate descent with the truth on the scored half, started from the best three
//! of the library defaults and the tuned config. It sees the future; the tuner cannot.
//!
//! With [`EvalOptions::hindsight`], one more yardstick: the same search with the truth on the
//! *training* half, scored on the second half like every other config. It is what a tuner
//! that labelled its history perfectly and searched the whole grid would reach; the oracle
//! differs from it only by knowing which incidents the scored half holds. Hindsight over
//! oracle says how much of the tuned/oracle ratio no tuner of static thresholds can close,
//! and tuned over hindsight how much is the tuner's own.
//!
//! With [`EvalOptions::labelled`], the tuner itself (its search, safety bounds and margins)
//! run with the truth of the training half as its labels, in place of its anomaly
//! detector's: tuned over labelled is the part of tuned/hindsight that the labels cost, and
//! labelled over hindsight the part that the tuner's margins and narrower search cost.
//!
//! With [`EvalOptions::bounded`], the oracle's search kept within the tuner's safety bounds
//! (rates judged over at least 5 calls, at least 3 failures to trip, the noise margin, at
//! most 10 probe successes in a row; no call timeout): bounded over oracle is what the bounds
//! cost a config that knows the future, tuned over bounded what the tuner's labels, margins
//! and narrower search cost within them.
//!
//! The results, [`Report`], and the table and JSON they are written out as are in `report`.

mod expected;
mod overall;
mod report;
mod shuffled;
mod yardstick;

use breaker::Config;

use crate::Warning;
use crate::anomaly::{AnomalyKind, Labels, Period};
use crate::defaults;
use crate::history::History;
use crate::replay;
use crate::scenario::{self, Scenario, Span, Truth};
use crate::suggest::{self, TuneOptions};
use crate::throttle;
use yardstick::{bounded, expected_oracle, hindsight, oracle, safe_oracle};

pub use expected::Expected;
pub use overall::Overall;
pub use report::{ConfigResult, Report, ScenarioReport, Summary, settings_json, settings_text};
pub use shuffled::Shuffled;

/// Options for [`evaluate`].
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub tune: TuneOptions,
    /// Whether to search for the oracle (the slowest part; tests may skip it).
    pub oracle: bool,
    /// Also score on this many variants of each scenario whose scored incidents last longer
    /// (see [`lengthened`]), and report mean costs over them: a single incident scores a
    /// configuration's wait by where its last probe happens to land.
    pub length_variants: usize,
    /// Also search the best static config with the truth on the training half (see the
    /// module's docs): as slow again as the oracle.
    pub hindsight: bool,
    /// Also run the tuner with the truth on the training half as its labels (see the
    /// module's docs): as slow again as the tuner.
    pub labelled: bool,
    /// Also search the best static config within the tuner's safety bounds with the truth
    /// on the scored half (see the module's docs): as slow again as the oracle.
    pub bounded: bool,
    /// Also search the best static config that trips falsely on the scored half in no
    /// random order of each second's calls either (see the module's docs): slower than the
    /// oracle.
    pub safe_oracle: bool,
    /// Also score every config with each tail at its expected length and search the oracle
    /// so (see [`expected`]): as slow again as the oracle.
    pub expected_tails: bool,
    /// Also replay every config with each step's calls in this many random orders and
    /// report its median cost (see [`shuffled`]); 0 does not.
    pub random_orders: usize,
}

impl Default for EvalOptions {
    fn default() -> EvalOptions {
        EvalOptions {
            tune: TuneOptions::default(),
            oracle: true,
            length_variants: 0,
            hindsight: false,
            labelled: false,
            bounded: false,
            safe_oracle: false,
            expected_tails: false,
            random_orders: 0,
        }
    }
}

/// The name of the best static config chosen with the truth on the training half.
pub const HINDSIGHT: &str = "hindsight";

/// The name of the tuner's config chosen with the truth on the training half as its labels.
pub const LABELLED: &str = "labelled";

/// The name of the best static config within the tuner's safety bounds, chosen with the
/// truth on the scored half.
pub const BOUNDED: &str = "bounded";

/// The name of the best static config that trips falsely in no random order either, chosen
/// with the truth on the scored half.
pub const SAFE_ORACLE: &str = "safe-oracle";

/// The name of the best static config with every tail counted at its expected length,
/// chosen with the truth on the scored half.
pub const EXPECTED_ORACLE: &str = "expected-oracle";

/// The name of the adaptive-throttling baseline (see [`crate::throttle`]).
pub const ADAPTIVE_THROTTLING: &str = "adaptive-throttling";

/// Evaluates each `(label, file contents)`; unreadable files become warnings.
pub fn evaluate(files: &[(String, String)], opts: &EvalOptions) -> (Report, Vec<Warning>) {
    let mut warnings = Vec::new();
    let mut scenarios = Vec::new();
    for (label, text) in files {
        match scenario::parse(text) {
            Ok(scenario) => scenarios.push(scenario),
            Err(err) => warnings.push(Warning::BadScenario {
                file: label.clone(),
                message: err.to_string(),
            }),
        }
    }
    // Scenarios are independent. The work runs in two waves, each over every core: first
    // the tuner on each scenario, then the oracle's search on each (it starts from the tuned
    // config) with the scoring. Tasks go to whichever thread is free, so no core idles while
    // another finishes a long scenario; the results do not depend on the order.
    let tuned: Vec<(Config, Vec<Warning>)> = in_parallel(&scenarios, |scenario| {
        let train = scenario.history.slice(0..scenario.history.len() / 2);
        let (tuned, warnings) = suggest::tune(&train, None, &opts.tune);
        (tuned.config, warnings)
    });
    let pairs: Vec<(&Scenario, &(Config, Vec<Warning>))> = scenarios.iter().zip(&tuned).collect();
    let results = in_parallel(&pairs, |(scenario, (tuned, tune_warnings))| {
        evaluate_scenario(scenario, tuned, tune_warnings, opts)
    });
    let mut report = Report::default();
    for (scenario_report, scenario_warnings) in results {
        warnings.extend(scenario_warnings);
        report.scenarios.push(scenario_report);
    }
    (report, warnings)
}

/// `f` of every item, in order, over up to four threads: each takes the next item not yet
/// taken, the one with the most calls first (the longest, so a long one does not start last
/// and keep one core busy while the others idle).
fn in_parallel<T: Sync + Busy, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&idx| std::cmp::Reverse(items[idx].n_calls()));
    let n_threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
        .min(items.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n_threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&idx) = order.get(at) else {
                            return done;
                        };
                        let item = &items[idx];
                        done.push((idx, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("evaluation does not panic"))
            .collect()
    });
    done.sort_by_key(|(idx, _)| *idx);
    done.into_iter().map(|(_, result)| result).collect()
}

/// How much work an item of [`in_parallel`] is, about.
trait Busy {
    fn n_calls(&self) -> u64;
}

impl Busy for Scenario {
    fn n_calls(&self) -> u64 {
        self.history.n_calls()
    }
}

impl<T> Busy for (&Scenario, T) {
    fn n_calls(&self) -> u64 {
        self.0.history.n_calls()
    }
}

/// Scores `tuned` (learnt on the first half of `scenario`) and everything else on the second.
fn evaluate_scenario(
    scenario: &Scenario,
    tuned: &Config,
    tune_warnings: &[Warning],
    opts: &EvalOptions,
) -> (ScenarioReport, Vec<Warning>) {
    let history = &scenario.history;
    let n_steps = history.len();
    let half = n_steps / 2;
    let warnings = tune_warnings
        .iter()
        .map(|warning| Warning::InScenario {
            scenario: scenario.name.clone(),
            warning: Box::new(warning.clone()),
        })
        .collect();

    let mut results = score_all(scenario, half, tuned, opts.oracle);
    let mut mean_costs = Vec::new();
    let mut variant_extra_s = Vec::new();
    if opts.length_variants > 0 {
        let mut totals: Vec<(&'static str, f64)> = results
            .iter()
            .map(|res| (res.config_name, res.score.cost))
            .collect();
        let step_s = history.step.as_secs().max(1);
        for k in 1..=opts.length_variants as u64 {
            // Spread over a minute: 60 / (n + 1) s apart.
            let extra_s = (k * 60 / (opts.length_variants as u64 + 1)).max(step_s);
            variant_extra_s.push(extra_s);
            let variant = lengthened(scenario, half, (extra_s / step_s) as usize);
            let variant_results = score_all(&variant, half, tuned, opts.oracle);
            for (total, res) in totals.iter_mut().zip(&variant_results) {
                total.1 += res.score.cost;
            }
        }
        let n = (opts.length_variants + 1) as f64;
        mean_costs = totals
            .into_iter()
            .map(|(name, total)| (name, total / n))
            .collect();
    }
    // After the variants' means, which do not search them again.
    let extra_rows: [(bool, &'static str, &dyn Fn() -> Config); 5] = [
        (opts.safe_oracle, SAFE_ORACLE, &|| {
            safe_oracle(scenario, half, tuned)
        }),
        (opts.hindsight, HINDSIGHT, &|| {
            hindsight(scenario, half, tuned)
        }),
        (opts.bounded, BOUNDED, &|| bounded(scenario, half, tuned)),
        (opts.labelled, LABELLED, &|| {
            labelled(scenario, half, &opts.tune)
        }),
        (opts.expected_tails, EXPECTED_ORACLE, &|| {
            expected_oracle(scenario, half, tuned)
        }),
    ];
    for (asked, config_name, config) in extra_rows {
        if asked {
            results.push(result_of(scenario, half, config_name, config()));
        }
        if opts.expected_tails {
            expected::fill(scenario, half, &mut results);
        }
    }
    if opts.random_orders > 0 {
        shuffled::fill(scenario, half, opts.random_orders, &mut results);
    }
    (
        ScenarioReport {
            scenario: scenario.name.clone(),
            train_steps: half,
            scored_steps: n_steps - half,
            results,
            mean_costs,
            variant_extra_s,
        },
        warnings,
    )
}

/// The library defaults, `tuned` and (when asked) the oracle, each replayed over the whole
/// history and scored on the steps from `half` on.
fn score_all(
    scenario: &Scenario,
    half: usize,
    tuned: &Config,
    with_oracle: bool,
) -> Vec<ConfigResult> {
    let history = &scenario.history;
    let mut results: Vec<ConfigResult> = defaults::library_defaults()
        .into_iter()
        .map(|(name, config)| result_of(scenario, half, name, config))
        .collect();
    let throttled = throttle::replay(history, 0..history.len(), throttle::K);
    results.push(ConfigResult {
        config_name: ADAPTIVE_THROTTLING,
        score: second_half_score(scenario, half, throttled),
        random_order_false_trips: None,
        expected_tail_cost: None,
        random_order_cost: None,
        config: None,
    });
    results.push(result_of(scenario, half, "tuned", tuned.clone()));
    if with_oracle {
        let oracle = oracle(scenario, half, tuned);
        results.push(result_of(scenario, half, "oracle", oracle));
    }
    results
}

/// `scenario` with every incident that starts at or after step `half` made `extra` steps
/// longer: its last step is repeated, and everything after it moves later. The first half is
/// unchanged, so a config tuned on it stays the one to score.
pub fn lengthened(scenario: &Scenario, half: usize, extra: usize) -> Scenario {
    let history = &scenario.history;
    let step_ms = history.step.as_millis() as u64;
    let mut steps = Vec::with_capacity(history.len() + extra * scenario.truth.incidents.len());
    let mut healthy = Vec::with_capacity(steps.capacity());
    let mut incidents = Vec::new();
    let mut shift_ms = 0;
    let ends: Vec<usize> = scenario
        .truth
        .incidents
        .iter()
        .map(|span| (span.end_ms / step_ms.max(1)) as usize)
        .filter(|&end| end > half && end <= history.len())
        .collect();
    for (i, step) in history.steps.iter().enumerate() {
        if ends.contains(&i) {
            // Step `i` is the first healthy one after an incident: repeat the incident's last.
            let last = &history.steps[i - 1];
            for _ in 0..extra {
                let mut copy = last.clone();
                copy.t_ms = step.t_ms + shift_ms;
                steps.push(copy);
                healthy.push(false);
                shift_ms += step_ms;
            }
        }
        let mut step = step.clone();
        step.t_ms += shift_ms;
        steps.push(step);
        healthy.push(scenario.truth.healthy.get(i).copied().unwrap_or(true));
    }
    for span in &scenario.truth.incidents {
        let start_step = (span.start_ms / step_ms.max(1)) as usize;
        let before: u64 = ends.iter().filter(|&&end| end <= start_step).count() as u64;
        let own = u64::from(ends.contains(&((span.end_ms / step_ms.max(1)) as usize)));
        incidents.push(Span {
            start_ms: span.start_ms + before * extra as u64 * step_ms,
            end_ms: span.end_ms + (before + own) * extra as u64 * step_ms,
        });
    }
    Scenario {
        name: scenario.name.clone(),
        description: scenario.description.clone(),
        history: History {
            step: history.step,
            latency_buckets_ms: history.latency_buckets_ms.clone(),
            steps,
        },
        truth: Truth { healthy, incidents },
    }
}

/// `config` replayed over the whole history and scored on the steps from `half` on.
/// `config`'s result on the scored half: its score, and its false trips with each step's
/// calls in a random order.
fn result_of(
    scenario: &Scenario,
    half: usize,
    config_name: &'static str,
    config: Config,
) -> ConfigResult {
    let history = &scenario.history;
    let shuffled =
        replay::replay_in_random_order(history, 0..history.len(), &config, RANDOM_ORDER_SEED);
    ConfigResult {
        config_name,
        score: scored_from(scenario, half, &config),
        random_order_false_trips: Some(second_half_score(scenario, half, shuffled).false_trips),
        expected_tail_cost: None,
        random_order_cost: None,
        config: Some(config),
    }
}

/// The seed of the random order [`ConfigResult::random_order_false_trips`] are counted in.
const RANDOM_ORDER_SEED: u64 = 0x0dd_0de5;

fn scored_from(scenario: &Scenario, half: usize, config: &Config) -> replay::Score {
    let history = &scenario.history;
    second_half_score(
        scenario,
        half,
        replay::replay(history, 0..history.len(), config),
    )
}

/// A replay of the whole history scored on the steps from `half` on only: the replay runs over
/// the first half too, so that every config enters the scored half warmed up, as it would in
/// production.
fn second_half_score(scenario: &Scenario, half: usize, mut res: replay::Replay) -> replay::Score {
    res.drop_steps_before(half);
    replay::score(
        &scenario.history,
        &res,
        &scenario.truth.healthy,
        &scenario.truth.incidents,
    )
}

/// The tuner's config with the truth on the training half as its labels.
fn labelled(scenario: &Scenario, half: usize, opts: &TuneOptions) -> Config {
    let train = scenario.history.slice(0..half);
    let features = crate::features::features(&train, &opts.features);
    let detected = crate::anomaly::detect(&train, &features, &opts.anomaly);
    let labels = truth_labels(scenario, half, detected);
    suggest::tune_labelled(&train, features, labels, None, opts)
        .0
        .config
}

/// The truth of the first `half` steps as labels: every unhealthy step anomalous, one period
/// per run of them. The detector's transients outside those runs are kept: the search centres
/// its stressed stretches on the worst noise, which the truth does not label.
fn truth_labels(scenario: &Scenario, half: usize, detected: Labels) -> Labels {
    let step_ms = scenario.history.step.as_millis() as u64;
    let anomalous: Vec<bool> = scenario.truth.healthy[..half]
        .iter()
        .map(|healthy| !healthy)
        .collect();
    let mut periods = Vec::new();
    let mut start = None;
    for (i, &bad) in anomalous.iter().chain([&false]).enumerate() {
        match (bad, start) {
            (true, None) => start = Some(i),
            (false, Some(from)) => {
                periods.push(Period {
                    start_step: from,
                    end_step: i,
                    span: Span {
                        start_ms: from as u64 * step_ms,
                        end_ms: i as u64 * step_ms,
                    },
                    peak_score: TRUTH_SCORE,
                    kind: AnomalyKind::Failures,
                });
                start = None;
            }
            _ => {}
        }
    }
    let transients = detected
        .transients
        .into_iter()
        .filter(|t| !anomalous[t.start_step..t.end_step].iter().any(|&bad| bad))
        .collect();
    Labels {
        score: anomalous
            .iter()
            .map(|&bad| if bad { TRUTH_SCORE } else { 0.0 })
            .collect(),
        cluster: vec![0; half],
        in_small_cluster: anomalous.clone(),
        anomalous,
        periods,
        transients,
    }
}

/// The score [`truth_labels`] gives an unhealthy step: the detector's threshold for an
/// anomalous step, `AnomalyOptions::z_high`.
const TRUTH_SCORE: f64 = 8.0;

#[cfg(test)]
mod tests;
