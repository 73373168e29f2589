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
use crate::scenario::{self, Scenario};
use crate::search::{Candidate, EvalSet, Grid, Search, SearchOptions};
use crate::suggest::{self, TuneOptions, median_u64};

/// Options for [`evaluate`].
#[derive(Clone, Debug)]
pub struct EvalOptions {
    pub tune: TuneOptions,
    /// Whether to search for the oracle (the slowest part; tests may skip it).
    pub oracle: bool,
}

impl Default for EvalOptions {
    fn default() -> EvalOptions {
        EvalOptions {
            tune: TuneOptions::default(),
            oracle: true,
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
}

/// One configuration's scores on the scored half.
#[derive(Clone, Debug)]
pub struct ConfigResult {
    pub config_name: &'static str,
    pub config: Config,
    pub score: Score,
}

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
    // Scenarios are independent: evaluate them two at a time (the results do not depend on it).
    let n_threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let mut results: Vec<Option<(ScenarioReport, Vec<Warning>)>> = vec![None; scenarios.len()];
    for (chunk_idx, chunk) in scenarios.chunks(n_threads).enumerate() {
        let outs: Vec<(ScenarioReport, Vec<Warning>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|scenario| scope.spawn(|| evaluate_scenario(scenario, opts)))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("evaluation does not panic"))
                .collect()
        });
        for (offset, out) in outs.into_iter().enumerate() {
            results[chunk_idx * n_threads + offset] = Some(out);
        }
    }
    let mut report = Report::default();
    for (scenario_report, scenario_warnings) in results.into_iter().flatten() {
        warnings.extend(scenario_warnings);
        report.scenarios.push(scenario_report);
    }
    (report, warnings)
}

/// Tunes on the first half of `scenario` and scores everything on the second.
pub fn evaluate_scenario(
    scenario: &Scenario,
    opts: &EvalOptions,
) -> (ScenarioReport, Vec<Warning>) {
    let history = &scenario.history;
    let n_steps = history.len();
    let half = n_steps / 2;
    let scored = half..n_steps;
    let train: History = history.slice(0..half);
    let (tuned, tune_warnings) = suggest::tune(&train, None, &opts.tune);
    let warnings = tune_warnings
        .into_iter()
        .map(|warning| Warning::InScenario {
            scenario: scenario.name.clone(),
            warning: Box::new(warning),
        })
        .collect();

    let score = |config: &Config| {
        let res = replay::replay(history, 0..n_steps, config);
        let mut res = res;
        // Score only the second half: the replay runs over the first half too, so that every
        // config enters the scored half warmed up, as it would in production.
        res.admitted.drain(..half);
        res.rejected.drain(..half);
        res.range = scored.clone();
        replay::score(
            history,
            &res,
            &scenario.truth.healthy,
            &scenario.truth.incidents,
        )
    };
    let mut results: Vec<ConfigResult> = defaults::library_defaults()
        .into_iter()
        .map(|(name, config)| ConfigResult {
            config_name: name,
            score: score(&config),
            config,
        })
        .collect();
    results.push(ConfigResult {
        config_name: "tuned",
        score: score(&tuned.config),
        config: tuned.config.clone(),
    });
    if opts.oracle {
        let oracle = oracle(scenario, half, &tuned.config);
        results.push(ConfigResult {
            config_name: "oracle",
            score: score(&oracle),
            config: oracle,
        });
    }
    (
        ScenarioReport {
            scenario: scenario.name.clone(),
            train_steps: half,
            scored_steps: n_steps - half,
            results,
        },
        warnings,
    )
}

/// The best static config of the grid, chosen with the truth on the scored half.
fn oracle(scenario: &Scenario, half: usize, tuned: &Config) -> Config {
    let history = &scenario.history;
    let set = EvalSet {
        name: "scored",
        history: history.clone(),
        healthy: scenario.truth.healthy.clone(),
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
            max_rounds: 4,
            n_starts: 3,
            // The oracle replays the whole history (so the scored half starts warmed up) but
            // is judged on the scored half only; see `scored_only`.
            ..SearchOptions::default()
        },
    );
    search.score_from_step(half);
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
                json!({
                    "scenario": scenario.scenario,
                    "train_steps": scenario.train_steps,
                    "scored_steps": scenario.scored_steps,
                    "results": scenario.results.iter().map(result_json).collect::<Vec<_>>(),
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
                "  {:<13} {:>10} {:>9} {:>8} {:>7} {:>10} {:>6}  settings",
                "config", "cost", "lost_good", "wasted", "recall", "delay_ms", "false"
            );
            for res in &scenario.results {
                let s = &res.score;
                let delay = median_u64(&s.detection_delays_ms)
                    .map_or_else(|| "-".to_owned(), |d| d.to_string());
                let _ = writeln!(
                    out,
                    "  {:<13} {:>10.1} {:>9} {:>8} {:>7} {:>10} {:>6}  {}",
                    res.config_name,
                    s.cost,
                    s.lost_good,
                    s.wasted,
                    format!("{}/{}", s.detected, s.incidents),
                    delay,
                    s.false_trips,
                    settings_text(&res.config)
                );
            }
            if let Some(summary) = scenario.summary() {
                let _ = writeln!(
                    out,
                    "  tuned/oracle {}  tuned/best default ({}) {:.2}  recall {:.0} %  false trips {} (best default {})",
                    summary
                        .tuned_over_oracle
                        .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
                    summary.best_default,
                    summary.tuned_over_best_default,
                    summary.tuned_recall * 100.0,
                    summary.tuned_false_trips,
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
        "settings": settings_json(&res.config),
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
    parts.push(format!(
        "probes {}/{}",
        config.half_open_successes(),
        config.half_open_probes()
    ));
    if let Some(timeout) = config.call_timeout() {
        parts.push(format!("timeout {}s", timeout.as_secs_f64()));
    }
    parts.join(", ")
}
