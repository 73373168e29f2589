//! The report of an evaluation: each scenario's results, how the tuned config compares, and
//! the table and JSON they are written out as.

use std::fmt::Write as _;

use breaker::{Config, Wait, Window};
use serde_json::{Value, json};

use crate::defaults;
use crate::replay::Score;
use crate::suggest::median_u64;
use crate::throttle;

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
    /// The five library defaults, adaptive throttling, `tuned`, then `oracle` and
    /// `hindsight` when they were searched.
    pub results: Vec<ConfigResult>,
    /// With [`EvalOptions::length_variants`](super::EvalOptions::length_variants): each config's mean cost over the scenario and its
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
    /// Closed→Open transitions while healthy (as [`Score::false_trips`]) with each step's
    /// calls in a random order instead of the even layout the score replays: what real
    /// traffic, which bunches failures by chance, would do. `None` for adaptive throttling.
    pub random_order_false_trips: Option<u32>,
    /// The cost with every scored tail at its expected length (see [`super::expected`]);
    /// `None` unless asked for, and for adaptive throttling.
    pub expected_tail_cost: Option<f64>,
    /// The median cost over random orders of each step's calls (see [`super::shuffled`]);
    /// `None` unless asked for, and for adaptive throttling.
    pub random_order_cost: Option<f64>,
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
    /// The same three counts with each step's calls in a random order (see
    /// [`ConfigResult::random_order_false_trips`]): tuned, best default, oracle.
    pub random_order_false_trips: [Option<u32>; 3],
    /// The best config chosen with the truth on the training half, over the oracle: the
    /// part of the tuned/oracle ratio no tuner of static thresholds closes. `None` unless
    /// both were searched.
    pub hindsight_over_oracle: Option<f64>,
    /// Tuned over that best config: the part that is the tuner's own.
    pub tuned_over_hindsight: Option<f64>,
    /// Tuned over the tuner with the truth as its labels: the part the labels cost. `None`
    /// unless that was run.
    pub tuned_over_labelled: Option<f64>,
    /// The best config within the tuner's safety bounds over the oracle: what the bounds
    /// cost. `None` unless both were searched.
    pub bounded_over_oracle: Option<f64>,
    /// Tuned over that config: what the tuner's labels, margins and search cost within the
    /// bounds.
    pub tuned_over_bounded: Option<f64>,
    /// The best config that trips falsely in no random order either, over the oracle: how
    /// much of the oracle's cost rests on failures spread evenly. `None` unless both were
    /// searched.
    pub safe_oracle_over_oracle: Option<f64>,
    /// Tuned over that config: the tuner against a yardstick as safe as it is.
    pub tuned_over_safe_oracle: Option<f64>,
    /// The costs with expected tails; `None` unless the expected-oracle was searched.
    pub expected: Option<super::Expected>,
    /// The median costs in random orders; `None` unless asked for.
    pub shuffled: Option<super::Shuffled>,
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
                        "tuned_random_order_false_trips": s.random_order_false_trips[0],
                        "best_default_random_order_false_trips": s.random_order_false_trips[1],
                        "oracle_random_order_false_trips": s.random_order_false_trips[2],
                        "hindsight_over_oracle": s.hindsight_over_oracle,
                        "tuned_over_hindsight": s.tuned_over_hindsight,
                        "tuned_over_labelled": s.tuned_over_labelled,
                        "bounded_over_oracle": s.bounded_over_oracle,
                        "tuned_over_bounded": s.tuned_over_bounded,
                        "safe_oracle_over_oracle": s.safe_oracle_over_oracle,
                        "tuned_over_safe_oracle": s.tuned_over_safe_oracle,
                        "expected_tails": s.expected.as_ref().map(super::Expected::to_json),
                        "random_orders": s.shuffled.as_ref().map(super::Shuffled::to_json),
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
        let overall = super::Overall::of(self).map(|overall| overall.to_json());
        json!({ "scenarios": scenarios, "overall": overall }).to_string()
    }

    /// A table per scenario, how tuned compares with the oracle and the best default, and
    /// the same over all the scenarios.
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
                "  {:<19} {:>10} {:>9} {:>8} {:>7} {:>10} {:>6} {:>6}  settings",
                "config", "cost", "lost_good", "wasted", "recall", "delay_ms", "false", "random"
            );
            for res in &scenario.results {
                let s = &res.score;
                let delay = median_u64(&s.detection_delays_ms)
                    .map_or_else(|| "-".to_owned(), |d| d.to_string());
                let _ = writeln!(
                    out,
                    "  {:<19} {:>10.1} {:>9} {:>8} {:>7} {:>10} {:>6} {:>6}  {}",
                    res.config_name,
                    s.cost,
                    s.lost_good,
                    s.wasted,
                    format!("{}/{}", s.detected, s.incidents),
                    delay,
                    s.false_trips,
                    count(res.random_order_false_trips),
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
                    "  tuned/oracle {}  tuned/best default ({}) {:.2}  recall {:.0} %  false trips {} (oracle {}, best default {}); in random order {} (oracle {}, best default {})",
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
                    count(summary.random_order_false_trips[0]),
                    count(summary.random_order_false_trips[2]),
                    count(summary.random_order_false_trips[1]),
                );
                // Each further row against the oracle, and the tuned config against it.
                for (row, over_oracle, tuned_over) in [
                    (
                        super::BOUNDED,
                        summary.bounded_over_oracle,
                        summary.tuned_over_bounded,
                    ),
                    (
                        super::SAFE_ORACLE,
                        summary.safe_oracle_over_oracle,
                        summary.tuned_over_safe_oracle,
                    ),
                ] {
                    if let Some(tuned_over) = tuned_over {
                        let _ = writeln!(
                            out,
                            "  {row}/oracle {}  tuned/{row} {tuned_over:.2}",
                            over_oracle.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
                        );
                    }
                }
                if let Some(expected) = &summary.expected {
                    let _ = writeln!(out, "  {}", expected.to_text());
                }
                if let Some(shuffled) = &summary.shuffled {
                    let _ = writeln!(out, "  {}", shuffled.to_text());
                }
                if let Some(tuned_over_labelled) = summary.tuned_over_labelled {
                    let _ = writeln!(out, "  tuned/labelled {tuned_over_labelled:.2}");
                }
                if let Some(tuned_over_hindsight) = summary.tuned_over_hindsight {
                    let _ = writeln!(
                        out,
                        "  hindsight/oracle {}  tuned/hindsight {tuned_over_hindsight:.2}",
                        summary
                            .hindsight_over_oracle
                            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
                    );
                }
            }
            out.push('\n');
        }
        if let Some(overall) = super::Overall::of(self) {
            out.push_str(&overall.to_text());
        }
        out
    }
}

// === impl ScenarioReport ===

impl ScenarioReport {
    pub fn result(&self, name: &str) -> Option<&ConfigResult> {
        self.results.iter().find(|res| res.config_name == name)
    }

    /// The library default cheapest by `cost` (among those that have one), and that cost.
    pub(super) fn cheapest_default(
        &self,
        cost: impl Fn(&ConfigResult) -> Option<f64>,
    ) -> Option<(&'static str, f64)> {
        self.results
            .iter()
            .filter(|res| crate::defaults::LIBRARY_DEFAULTS.contains(&res.config_name))
            .filter_map(|res| Some((res.config_name, cost(res)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Tuned against the oracle and the cheapest library default.
    pub fn summary(&self) -> Option<Summary> {
        let tuned = self.result("tuned")?;
        let oracle = self.result("oracle");
        let hindsight = self.result(super::HINDSIGHT);
        let labelled = self.result(super::LABELLED);
        let bounded = self.result(super::BOUNDED);
        let safe_oracle = self.result(super::SAFE_ORACLE);
        let best_default = self
            .results
            .iter()
            .filter(|res| defaults::LIBRARY_DEFAULTS.contains(&res.config_name))
            .min_by(|a, b| a.score.cost.total_cmp(&b.score.cost))?;
        Some(Summary {
            tuned_over_oracle: oracle.map(|oracle| ratio(tuned.score.cost, oracle.score.cost)),
            best_default: best_default.config_name,
            tuned_over_best_default: ratio(tuned.score.cost, best_default.score.cost),
            tuned_recall: recall(&tuned.score),
            tuned_false_trips: tuned.score.false_trips,
            best_default_false_trips: best_default.score.false_trips,
            oracle_false_trips: oracle.map(|oracle| oracle.score.false_trips),
            random_order_false_trips: [
                tuned.random_order_false_trips,
                best_default.random_order_false_trips,
                oracle.and_then(|oracle| oracle.random_order_false_trips),
            ],
            hindsight_over_oracle: hindsight
                .zip(oracle)
                .map(|(h, o)| ratio(h.score.cost, o.score.cost)),
            tuned_over_hindsight: hindsight.map(|h| ratio(tuned.score.cost, h.score.cost)),
            tuned_over_labelled: labelled.map(|l| ratio(tuned.score.cost, l.score.cost)),
            bounded_over_oracle: bounded
                .zip(oracle)
                .map(|(b, o)| ratio(b.score.cost, o.score.cost)),
            tuned_over_bounded: bounded.map(|b| ratio(tuned.score.cost, b.score.cost)),
            safe_oracle_over_oracle: safe_oracle
                .zip(oracle)
                .map(|(s, o)| ratio(s.score.cost, o.score.cost)),
            tuned_over_safe_oracle: safe_oracle.map(|s| ratio(tuned.score.cost, s.score.cost)),
            expected: super::Expected::of(self),
            shuffled: super::Shuffled::of(self),
        })
    }
}

/// `a / b`, with a cost of nothing over nothing as 1 and a cost over nothing as infinite.
pub(super) fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else if a > 0.0 {
        f64::INFINITY
    } else {
        1.0
    }
}

/// A count, or "-" when there is none.
fn count(n: Option<u32>) -> String {
    n.map_or_else(|| "-".to_owned(), |n| n.to_string())
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
        "random_order_false_trips": res.random_order_false_trips,
        "expected_tail_cost": res.expected_tail_cost,
        "random_order_cost": res.random_order_cost,
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
