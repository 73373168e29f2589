//! Costs with each step's calls in random orders: how much of a ratio is the even layout's
//! luck.
//!
//! A replay lays each step's calls out evenly, failures spread as far apart as they go. Where
//! the usual failures fall then decides, the same way for every config and every incident,
//! whether the probes after an incident meet one: a config that needs ten probe successes in
//! a row can look cheap on the even layout and, in real traffic, pay a whole further wait
//! each time a probe meets one of the usual failures. The tuner prices that chance
//! (`search::ProbeRisk`); the oracle, the cheapest config on the even layout, does not.
//!
//! With [`EvalOptions::random_orders`](super::EvalOptions::random_orders) = `n`, every
//! config is also replayed with each step's calls in `n` random orders (seeded, so the figures
//! repeat) and its median cost over them reported; each scenario's line compares tuned with
//! the oracle's and the expected-oracle's configs and the library default cheapest so judged.
//! No search runs in random order: the oracle's config is the one chosen on the even layout,
//! and the best config in random order could only be cheaper than it, so tuned over the
//! oracle here is a lower bound of tuned over the best static config in random order. The
//! protocol's scores and ratios are unchanged: this is a second look, not a new yardstick.

use breaker::Config;

use super::report::ratio;
use super::{ConfigResult, ScenarioReport};
use crate::replay;
use crate::scenario::Scenario;

/// The first seed of the random orders; the `k`-th order uses this plus `k`.
const FIRST_SEED: u64 = 0x005e_ed0f_ca11;

/// `config`'s median cost on the steps from `half` on over `n_orders` random orders of each
/// step's calls (the whole history replayed each time).
pub(super) fn median_cost(
    scenario: &Scenario,
    half: usize,
    config: &Config,
    n_orders: usize,
) -> f64 {
    let history = &scenario.history;
    let mut costs: Vec<f64> = (0..n_orders as u64)
        .map(|k| {
            let res =
                replay::replay_in_random_order(history, 0..history.len(), config, FIRST_SEED + k);
            super::second_half_score(scenario, half, res).cost
        })
        .collect();
    costs.sort_by(f64::total_cmp);
    match costs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => costs[n / 2],
        n => (costs[n / 2 - 1] + costs[n / 2]) / 2.0,
    }
}

/// Fills in [`ConfigResult::random_order_cost`] for every result with a config.
pub(super) fn fill(
    scenario: &Scenario,
    half: usize,
    n_orders: usize,
    results: &mut [ConfigResult],
) {
    for res in results {
        if let Some(config) = &res.config
            && res.random_order_cost.is_none()
        {
            res.random_order_cost = Some(median_cost(scenario, half, config, n_orders));
        }
    }
}

/// One scenario's median costs in random orders (see the module's docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Shuffled {
    pub tuned: f64,
    /// `None` when the oracle was not searched.
    pub oracle: Option<f64>,
    /// `None` unless the expected-oracle was searched.
    pub expected_oracle: Option<f64>,
    /// The library default cheapest in random orders, and its cost.
    pub best_default: &'static str,
    pub best_default_cost: f64,
}

// === impl Shuffled ===

impl Shuffled {
    /// `None` unless the tuned result and a library default carry a random-order cost.
    pub fn of(scenario: &ScenarioReport) -> Option<Shuffled> {
        let cost = |name: &str| scenario.result(name)?.random_order_cost;
        let (best_default, best_default_cost) =
            scenario.cheapest_default(|res| res.random_order_cost)?;
        Some(Shuffled {
            tuned: cost("tuned")?,
            oracle: cost("oracle"),
            expected_oracle: cost(super::EXPECTED_ORACLE),
            best_default,
            best_default_cost,
        })
    }

    /// Tuned over the oracle's config, both in random orders (a lower bound, see the
    /// module's docs).
    pub fn tuned_over_oracle(&self) -> Option<f64> {
        self.oracle.map(|oracle| ratio(self.tuned, oracle))
    }

    pub fn tuned_over_best_default(&self) -> f64 {
        ratio(self.tuned, self.best_default_cost)
    }

    /// One line for the table.
    pub fn to_text(&self) -> String {
        let cost = |c: Option<f64>| c.map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
        let mut out = format!(
            "in random orders (median): tuned {:.1}, oracle {}",
            self.tuned,
            cost(self.oracle)
        );
        if self.expected_oracle.is_some() {
            out.push_str(&format!(", expected-oracle {}", cost(self.expected_oracle)));
        }
        out.push_str(&format!(
            ", best default ({}) {:.1}; tuned/oracle {}  tuned/best default {:.2}",
            self.best_default,
            self.best_default_cost,
            self.tuned_over_oracle()
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
            self.tuned_over_best_default(),
        ));
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tuned": self.tuned,
            "oracle": self.oracle,
            "expected_oracle": self.expected_oracle,
            "best_default": self.best_default,
            "best_default_cost": self.best_default_cost,
            "tuned_over_oracle": self.tuned_over_oracle(),
            "tuned_over_best_default": self.tuned_over_best_default(),
        })
    }
}

#[cfg(test)]
mod tests;
