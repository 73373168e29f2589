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
//! fixed waits 0.5 s–2 min or two exponential backoffs, and six half-open probe settings),
//! found by coordinate descent with the truth on the scored half, started from the best three
//! of the library defaults and the tuned config. It sees the future; the tuner cannot.

use std::fmt::Write as _;

use breaker::{Config, Wait, Window};
use serde_json::{Value, json};

use crate::Warning;
use crate::defaults;
use crate::history::History;
use crate::replay::{self, Score};
use crate::scenario::{self, Scenario, Span, Truth};
use crate::search::{Candidate, EvalSet, Grid, Search, SearchOptions};
use crate::suggest::{self, TuneOptions, median_u64};
use crate::throttle;

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
}

impl Default for EvalOptions {
    fn default() -> EvalOptions {
        EvalOptions {
            tune: TuneOptions::default(),
            oracle: true,
            length_variants: 0,
        }
    }
}

/// The results of all scenarios.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub scenarios: Vec<ScenarioReport>,
}

/// The results of one scenario.
#[derive(Clone, Debug)]
pub struct ScenarioReport {
    pub scenario: String,
    pub train_steps: usize,
    pub scored_steps: usize,
    /// The five library defaults, then `tuned`, then `oracle`.
    pub results: Vec<ConfigResult>,
    /// With [`EvalOptions::length_variants`]: each config's mean cost over the scenario and its
    /// variants (the tuned config stays the one learnt from the unchanged first half; the
    /// oracle is chosen again on each variant), in the order of `results`.
    pub mean_costs: Vec<(&'static str, f64)>,
    /// The seconds each variant added to every scored incident.
    pub variant_extra_s: Vec<u64>,
}

/// One configuration's scores on the scored half.
#[derive(Clone, Debug)]
pub struct ConfigResult {
    pub config_name: &'static str,
    /// The breaker configuration replayed; `None` for adaptive throttling, which has none.
    pub config: Option<Config>,
    pub score: Score,
}

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
/// taken.
fn in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
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
                        let idx = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(idx) else {
                            return done;
                        };
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

    let results = score_all(scenario, half, tuned, opts.oracle);
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
    let n_steps = history.len();
    let score_replay = |mut res: replay::Replay| {
        // Score only the second half: the replay runs over the first half too, so that every
        // config enters the scored half warmed up, as it would in production.
        res.admitted.drain(..half);
        res.rejected.drain(..half);
        res.range = half..n_steps;
        replay::score(
            history,
            &res,
            &scenario.truth.healthy,
            &scenario.truth.incidents,
        )
    };
    let score = |config: &Config| score_replay(replay::replay(history, 0..n_steps, config));
    let mut results: Vec<ConfigResult> = defaults::library_defaults()
        .into_iter()
        .map(|(name, config)| ConfigResult {
            config_name: name,
            score: score(&config),
            config: Some(config),
        })
        .collect();
    results.push(ConfigResult {
        config_name: ADAPTIVE_THROTTLING,
        score: score_replay(throttle::replay(history, 0..n_steps, throttle::K)),
        config: None,
    });
    results.push(ConfigResult {
        config_name: "tuned",
        score: score(tuned),
        config: Some(tuned.clone()),
    });
    if with_oracle {
        let oracle = oracle(scenario, half, tuned);
        results.push(ConfigResult {
            config_name: "oracle",
            score: score(&oracle),
            config: Some(oracle),
        });
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

/// How much of the training half the oracle's search replays before the scored half.
const ORACLE_WARM_UP: std::time::Duration = std::time::Duration::from_secs(1_800);

/// The best static config of the grid, chosen with the truth on the scored half.
fn oracle(scenario: &Scenario, half: usize, tuned: &Config) -> Config {
    let history = &scenario.history;
    // The search replays from half an hour before the scored half: as long as the grid's
    // longest window, and enough for every wait in it to reach the state a replay of the
    // whole history would, at a fraction of the work. The chosen config is then scored like every other, from the start.
    let warm_up = (ORACLE_WARM_UP.as_millis() / history.step.as_millis().max(1)) as usize;
    let from = half.saturating_sub(warm_up);
    let set = EvalSet {
        name: "scored",
        history: history.slice(from..history.len()),
        healthy: scenario
            .truth
            .healthy
            .get(from..)
            .unwrap_or_default()
            .to_vec(),
        incidents: scenario.truth.incidents.clone(),
    };
    let scored_history = history.slice(half..history.len());
    let grid = Grid::for_history(&scored_history);
    let mut seeds: Vec<Candidate> = defaults::library_defaults()
        .iter()
        .map(|(_, config)| Candidate::from_config(config))
        .collect();
    seeds.push(Candidate::from_config(tuned));
    let mut search = Search::from_sets(
        vec![set],
        SearchOptions {
            inject: false,
            max_rounds: 6,
            // Descend from every seed: the oracle is the yardstick, so it gets the widest search.
            n_starts: usize::MAX,
            ..SearchOptions::default()
        },
    );
    search.score_from_step(half - from);
    search
        .run(&grid, &seeds)
        .map_or_else(|| tuned.clone(), |found| found.config)
}

// === impl Report ===

impl Report {
    /// The JSON of SCENARIOS.md ("Machine-readable results").
    pub fn to_json(&self) -> String {
        let scenarios: Vec<Value> = self
            .scenarios
            .iter()
            .map(|scenario| {
                let summary = scenario.summary().map(|s| {
                    json!({
                        "tuned_over_oracle": s.tuned_over_oracle,
                        "best_default": s.best_default,
                        "tuned_over_best_default": s.tuned_over_best_default,
                        "tuned_recall": s.tuned_recall,
                        "tuned_false_trips": s.tuned_false_trips,
                        "oracle_false_trips": s.oracle_false_trips,
                        "best_default_false_trips": s.best_default_false_trips,
                    })
                });
                json!({
                    "scenario": scenario.scenario,
                    "train_steps": scenario.train_steps,
                    "scored_steps": scenario.scored_steps,
                    "results": scenario.results.iter().map(result_json).collect::<Vec<_>>(),
                    "summary": summary,
                })
            })
            .collect();
        json!({ "scenarios": scenarios }).to_string()
    }

    /// A table per scenario, and how tuned compares with the oracle and the best default.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        for scenario in &self.scenarios {
            let _ = writeln!(
                out,
                "{} (trained on {} steps, scored on {})",
                scenario.scenario, scenario.train_steps, scenario.scored_steps
            );
            let _ = writeln!(
                out,
                "  {:<19} {:>10} {:>9} {:>8} {:>7} {:>10} {:>6}  settings",
                "config", "cost", "lost_good", "wasted", "recall", "delay_ms", "false"
            );
            for res in &scenario.results {
                let s = &res.score;
                let delay = median_u64(&s.detection_delays_ms)
                    .map_or_else(|| "-".to_owned(), |d| d.to_string());
                let _ = writeln!(
                    out,
                    "  {:<19} {:>10.1} {:>9} {:>8} {:>7} {:>10} {:>6}  {}",
                    res.config_name,
                    s.cost,
                    s.lost_good,
                    s.wasted,
                    format!("{}/{}", s.detected, s.incidents),
                    delay,
                    s.false_trips,
                    res.config.as_ref().map_or_else(
                        || format!(
                            "reject p = max(0, (requests − {}·accepts) / (requests + 1)) over {} s",
                            throttle::K,
                            throttle::WINDOW.as_secs()
                        ),
                        settings_text
                    )
                );
            }
            if !scenario.mean_costs.is_empty() {
                let _ = writeln!(
                    out,
                    "  mean cost over the scenario and {} variants with each scored incident {} s longer:",
                    scenario.variant_extra_s.len(),
                    scenario
                        .variant_extra_s
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let line: Vec<String> = scenario
                    .mean_costs
                    .iter()
                    .map(|(name, cost)| format!("{name} {cost:.1}"))
                    .collect();
                let _ = writeln!(out, "    {}", line.join("  "));
                let mean = |name: &str| {
                    scenario
                        .mean_costs
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, c)| *c)
                };
                let best_default = scenario
                    .mean_costs
                    .iter()
                    .filter(|(n, _)| defaults::LIBRARY_DEFAULTS.contains(n))
                    .min_by(|a, b| a.1.total_cmp(&b.1));
                if let (Some(tuned), Some((best_name, best))) = (mean("tuned"), best_default) {
                    let _ = writeln!(
                        out,
                        "    mean tuned/oracle {}  mean tuned/best default ({best_name}) {:.2}",
                        mean("oracle")
                            .map_or_else(|| "-".to_owned(), |o| format!("{:.2}", tuned / o)),
                        tuned / best
                    );
                }
            }
            if let Some(summary) = scenario.summary() {
                let _ = writeln!(
                    out,
                    "  tuned/oracle {}  tuned/best default ({}) {:.2}  recall {:.0} %  false trips {} (oracle {}, best default {})",
                    summary
                        .tuned_over_oracle
                        .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
                    summary.best_default,
                    summary.tuned_over_best_default,
                    summary.tuned_recall * 100.0,
                    summary.tuned_false_trips,
                    summary
                        .oracle_false_trips
                        .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                    summary.best_default_false_trips,
                );
            }
            out.push('\n');
        }
        out
    }
}

/// How the tuned config compares, in one scenario.
#[derive(Clone, Debug)]
pub struct Summary {
    /// `None` when the oracle was not searched.
    pub tuned_over_oracle: Option<f64>,
    pub best_default: &'static str,
    pub tuned_over_best_default: f64,
    pub tuned_recall: f64,
    pub tuned_false_trips: u32,
    pub best_default_false_trips: u32,
    /// `None` when the oracle was not searched.
    pub oracle_false_trips: Option<u32>,
}

// === impl ScenarioReport ===

impl ScenarioReport {
    pub fn result(&self, name: &str) -> Option<&ConfigResult> {
        self.results.iter().find(|res| res.config_name == name)
    }

    /// Tuned against the oracle and the cheapest library default.
    pub fn summary(&self) -> Option<Summary> {
        let tuned = self.result("tuned")?;
        let oracle = self.result("oracle");
        let best_default = self
            .results
            .iter()
            .filter(|res| defaults::LIBRARY_DEFAULTS.contains(&res.config_name))
            .min_by(|a, b| a.score.cost.total_cmp(&b.score.cost))?;
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                a / b
            } else if a > 0.0 {
                f64::INFINITY
            } else {
                1.0
            }
        };
        Some(Summary {
            tuned_over_oracle: oracle.map(|oracle| ratio(tuned.score.cost, oracle.score.cost)),
            best_default: best_default.config_name,
            tuned_over_best_default: ratio(tuned.score.cost, best_default.score.cost),
            tuned_recall: recall(&tuned.score),
            tuned_false_trips: tuned.score.false_trips,
            best_default_false_trips: best_default.score.false_trips,
            oracle_false_trips: oracle.map(|oracle| oracle.score.false_trips),
        })
    }
}

fn recall(score: &Score) -> f64 {
    if score.incidents == 0 {
        1.0
    } else {
        score.detected as f64 / score.incidents as f64
    }
}

fn result_json(res: &ConfigResult) -> Value {
    let s = &res.score;
    json!({
        "config": res.config_name,
        "cost": s.cost,
        "lost_good": s.lost_good,
        "wasted": s.wasted,
        "recall": recall(s),
        "incidents": s.incidents,
        "detection_delay_ms_median": median_u64(&s.detection_delays_ms),
        "false_trips": s.false_trips,
        "settings": res.config.as_ref().map_or_else(
            || json!({"policy": "adaptive_throttling", "k": throttle::K,
                      "window_s": throttle::WINDOW.as_secs()}),
            settings_json
        ),
    })
}

/// The replayed configuration as JSON.
pub fn settings_json(config: &Config) -> Value {
    let (window, window_size) = match config.window() {
        Window::Count(n) => ("count", n),
        Window::Time(n) => ("time_s", n),
    };
    let wait = match config.wait() {
        Wait::Fixed(wait) => json!({ "fixed_ms": wait.as_millis() as u64 }),
        Wait::Exponential {
            initial,
            multiplier,
            max,
            jitter,
        } => json!({ "exponential": {
            "initial_ms": initial.as_millis() as u64,
            "multiplier": multiplier,
            "max_ms": max.as_millis() as u64,
            "jitter": jitter,
        }}),
    };
    json!({
        "failure_rate_threshold": config.failure_rate_threshold(),
        "slow_call_rate_threshold": config.slow_call_rate_threshold(),
        "slow_call_duration_ms": config
            .slow_call_rate_threshold()
            .map(|_| config.slow_call_duration().as_millis() as u64),
        "consecutive_failures": config.consecutive_failures(),
        "window": window,
        "window_size": window_size,
        "minimum_calls": config.minimum_calls(),
        "wait": wait,
        "half_open_probes": config.half_open_probes(),
        "half_open_successes": config.half_open_successes(),
        "half_open_rule": match config.half_open_rule() {
            breaker::HalfOpenRule::Successes => "successes",
            breaker::HalfOpenRule::Rates => "rates",
        },
        "call_timeout_ms": config.call_timeout().map(|t| t.as_millis() as u64),
    })
}

/// The replayed configuration in one short line.
pub fn settings_text(config: &Config) -> String {
    let mut parts = Vec::new();
    if let Some(rate) = config.failure_rate_threshold() {
        parts.push(format!("fail≥{:.0}%", rate * 100.0));
    }
    if let Some(rate) = config.slow_call_rate_threshold() {
        parts.push(format!(
            "slow(≥{}ms)≥{:.0}%",
            config.slow_call_duration().as_millis(),
            rate * 100.0
        ));
    }
    if let Some(n) = config.consecutive_failures() {
        parts.push(format!("{n} in a row"));
    }
    parts.push(match config.window() {
        Window::Count(n) => format!("last {n} calls"),
        Window::Time(n) => format!("last {n}s"),
    });
    parts.push(format!("min {}", config.minimum_calls()));
    parts.push(match config.wait() {
        Wait::Fixed(wait) => format!("wait {}s", wait.as_secs_f64()),
        Wait::Exponential {
            initial,
            multiplier,
            max,
            ..
        } => format!(
            "wait {}s×{multiplier}≤{}s",
            initial.as_secs_f64(),
            max.as_secs_f64()
        ),
    });
    parts.push(match config.half_open_rule() {
        breaker::HalfOpenRule::Successes => format!(
            "probes {}/{}",
            config.half_open_successes(),
            config.half_open_probes()
        ),
        breaker::HalfOpenRule::Rates => format!("probes {} by rate", config.half_open_probes()),
    });
    if let Some(timeout) = config.call_timeout() {
        parts.push(format!("timeout {}s", timeout.as_secs_f64()));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::lengthened;
    use crate::history::{History, Step};
    use crate::scenario::{Scenario, Span, Truth};

    #[test]
    fn a_lengthened_scenario_repeats_the_incidents_last_step_in_the_scored_half_only() {
        // 20 one-second steps; incidents at [2, 4) (first half) and [12, 15) (scored half).
        let healthy: Vec<bool> = (0..20)
            .map(|i| !((2..4).contains(&i) || (12..15).contains(&i)))
            .collect();
        let scenario = Scenario {
            name: "s".into(),
            description: String::new(),
            history: History {
                step: Duration::from_secs(1),
                latency_buckets_ms: vec![10],
                steps: (0..20)
                    .map(|i| Step {
                        t_ms: i * 1_000,
                        n_calls: 10,
                        n_failures: if healthy[i as usize] { 0 } else { 10 },
                        n_rejected: 0,
                        latency_counts: vec![10],
                    })
                    .collect(),
            },
            truth: Truth {
                healthy,
                incidents: vec![
                    Span {
                        start_ms: 2_000,
                        end_ms: 4_000,
                    },
                    Span {
                        start_ms: 12_000,
                        end_ms: 15_000,
                    },
                ],
            },
        };
        let longer = lengthened(&scenario, 10, 2);
        assert_eq!(longer.history.len(), 22);
        assert_eq!(
            longer.truth.incidents,
            vec![
                Span {
                    start_ms: 2_000,
                    end_ms: 4_000
                },
                Span {
                    start_ms: 12_000,
                    end_ms: 17_000
                }
            ]
        );
        let unhealthy: Vec<usize> = (0..22).filter(|&i| !longer.truth.healthy[i]).collect();
        assert_eq!(unhealthy, vec![2, 3, 12, 13, 14, 15, 16]);
        assert_eq!(longer.history.steps[16].n_failures, 10);
        assert_eq!(longer.history.steps[17].n_failures, 0);
        let times: Vec<u64> = longer.history.steps.iter().map(|s| s.t_ms).collect();
        assert_eq!(times, (0..22).map(|i| i * 1_000).collect::<Vec<u64>>());
    }
}
