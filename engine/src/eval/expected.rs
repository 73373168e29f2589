//! Costs with every tail at its expected length: how much of a ratio is luck.
//!
//! After an incident ends with the breaker Open, good calls are refused until the next probe:
//! the *tail*. Where an incident's end falls within the probe cycle is luck, and with a few
//! incidents per scored half the luck is large: at 100 calls/s, a 3 s wait refuses from 0 to
//! 300 good calls after each incident by where it ended. The oracle, the cheapest of
//! thousands of configs on those very steps, picks the luckiest; the tuner cannot know it.
//!
//! With [`EvalOptions::expected_tails`](super::EvalOptions::expected_tails), every config is
//! also scored with each scored incident's tail at half the probe cycle it ended in (the
//! correction the tuner prices its own candidates with, `crate::search::tail`), and the
//! oracle's search runs once more with that correction (row `expected-oracle`). Tuned over
//! expected-oracle, both so scored, is the part of tuned/oracle that is not the oracle's luck;
//! tuned over the best default, both so scored, the same against the library defaults. The
//! scores and ratios of the protocol are unchanged: this is a second look, not a new yardstick.

use breaker::Config;

use super::report::ratio;
use super::{ConfigResult, ScenarioReport};
use crate::replay;
use crate::scenario::Scenario;
use crate::search::expected_minus_replayed;

/// `config` replayed over the whole history, its cost on the steps from `half` on with every
/// tail of an incident ending there at its expected length.
pub(super) fn tail_cost(scenario: &Scenario, half: usize, config: &Config) -> f64 {
    let history = &scenario.history;
    let res = replay::replay(history, 0..history.len(), config);
    let from_ms = history.steps.get(half).map_or(u64::MAX, |step| step.t_ms);
    let correction = expected_minus_replayed(
        history,
        &res.transitions,
        &scenario.truth.incidents,
        from_ms,
    );
    let score = super::second_half_score(scenario, half, res);
    // A tail refuses good calls only: the lost calls cannot go below none.
    score.cost + correction.max(-(score.lost_good as f64))
}

/// Fills in [`ConfigResult::expected_tail_cost`] for every result with a config.
pub(super) fn fill(scenario: &Scenario, half: usize, results: &mut [ConfigResult]) {
    for res in results {
        if let Some(config) = &res.config {
            res.expected_tail_cost = Some(tail_cost(scenario, half, config));
        }
    }
}

/// One scenario's costs with expected tails (see the module's docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub tuned: f64,
    /// `None` when the oracle was not searched.
    pub oracle: Option<f64>,
    pub expected_oracle: f64,
    /// The library default cheapest with expected tails, and its cost.
    pub best_default: &'static str,
    pub best_default_cost: f64,
}

// === impl Expected ===

impl Expected {
    /// `None` unless the expected-oracle was searched and the tuned result and a library
    /// default carry an expected cost.
    pub fn of(scenario: &ScenarioReport) -> Option<Expected> {
        let cost = |name: &str| scenario.result(name)?.expected_tail_cost;
        let (best_default, best_default_cost) =
            scenario.cheapest_default(|res| res.expected_tail_cost)?;
        Some(Expected {
            tuned: cost("tuned")?,
            oracle: cost("oracle"),
            expected_oracle: cost(super::EXPECTED_ORACLE)?,
            best_default,
            best_default_cost,
        })
    }

    pub fn tuned_over_expected_oracle(&self) -> f64 {
        ratio(self.tuned, self.expected_oracle)
    }

    pub fn tuned_over_best_default(&self) -> f64 {
        ratio(self.tuned, self.best_default_cost)
    }

    /// The oracle's expected cost over the expected-oracle's: how much the oracle's own
    /// choice owes to its luck (1 when it is the same config).
    pub fn oracle_over_expected_oracle(&self) -> Option<f64> {
        self.oracle
            .map(|oracle| ratio(oracle, self.expected_oracle))
    }

    /// One line for the table.
    pub fn to_text(&self) -> String {
        format!(
            "with expected tails: tuned {:.1}, oracle {}, expected-oracle {:.1}, best default ({}) {:.1}; tuned/expected-oracle {:.2}  tuned/best default {:.2}",
            self.tuned,
            self.oracle
                .map_or_else(|| "-".to_owned(), |o| format!("{o:.1}")),
            self.expected_oracle,
            self.best_default,
            self.best_default_cost,
            self.tuned_over_expected_oracle(),
            self.tuned_over_best_default(),
        )
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tuned": self.tuned,
            "oracle": self.oracle,
            "expected_oracle": self.expected_oracle,
            "best_default": self.best_default,
            "best_default_cost": self.best_default_cost,
            "tuned_over_expected_oracle": self.tuned_over_expected_oracle(),
            "tuned_over_best_default": self.tuned_over_best_default(),
        })
    }
}

#[cfg(test)]
mod tests;
