//! [`Overall`]: how the tuned configs compare over every scenario of a report at once, the
//! figures a reader would otherwise add up from the per-scenario summaries by hand.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{Report, Summary};

/// The goals of the tuning issue the counts are taken against: tuned within this multiple of
/// the oracle's cost, and at most this multiple of the best library default's.
pub const WITHIN_ORACLE: f64 = 1.25;
pub const UNDER_BEST_DEFAULT: f64 = 0.5;

/// Every scenario's summary taken together.
#[derive(Clone, Debug, PartialEq)]
pub struct Overall {
    /// Scenarios with a summary (a tuned result and at least one library default).
    pub n_scenarios: usize,
    /// Of those, the ones whose oracle was searched.
    pub n_with_oracle: usize,
    /// Geometric means of the per-scenario ratios; `None` without any oracle.
    pub geomean_tuned_over_oracle: Option<f64>,
    pub geomean_tuned_over_best_default: f64,
    /// Scenarios with tuned within [`WITHIN_ORACLE`] × the oracle.
    pub n_within_oracle: usize,
    /// Scenarios with tuned at most [`UNDER_BEST_DEFAULT`] × the best default.
    pub n_under_best_default: usize,
    /// Scenarios where tuned costs more than the best default.
    pub n_worse_than_best_default: usize,
    /// The tuned configs' detected incidents over all incidents.
    pub tuned_detected: usize,
    pub incidents: usize,
    /// False trips summed over the scenarios, as scored: tuned, best default, oracle.
    pub false_trips: [u32; 3],
    /// The same with each step's calls in a random order.
    pub random_order_false_trips: [u32; 3],
    /// Scenarios where tuned trips falsely more often than the oracle, as scored.
    pub n_more_false_trips_than_oracle: usize,
    /// Scenarios whose safe oracle was searched, the geometric mean of tuned over it (`None`
    /// without any) and the scenarios with tuned within [`WITHIN_ORACLE`] × it.
    pub n_with_safe_oracle: usize,
    pub geomean_tuned_over_safe_oracle: Option<f64>,
    pub n_within_safe_oracle: usize,
    /// Scenarios scored with expected tails (see [`super::expected`]), and over them the
    /// geometric means of tuned over the expected-oracle and over the best default, both so
    /// scored (`None` without any), with the scenarios within [`WITHIN_ORACLE`] × the one and
    /// at most [`UNDER_BEST_DEFAULT`] × the other.
    pub n_with_expected: usize,
    pub geomean_tuned_over_expected_oracle: Option<f64>,
    pub n_within_expected_oracle: usize,
    pub geomean_tuned_over_best_default_expected: Option<f64>,
    pub n_under_best_default_expected: usize,
    /// Scenarios replayed in random orders (see [`super::shuffled`]), and over them the
    /// geometric means of tuned over the oracle's config (`None` without an oracle) and over
    /// the best default, all so replayed, with the scenarios within [`WITHIN_ORACLE`] × the
    /// one and at most [`UNDER_BEST_DEFAULT`] × the other.
    pub n_with_random_orders: usize,
    pub geomean_tuned_over_oracle_random_orders: Option<f64>,
    pub n_within_oracle_random_orders: usize,
    pub geomean_tuned_over_best_default_random_orders: Option<f64>,
    pub n_under_best_default_random_orders: usize,
}

// === impl Overall ===

impl Overall {
    /// `None` when no scenario has a summary.
    pub fn of(report: &Report) -> Option<Overall> {
        let summaries: Vec<(Summary, (usize, usize))> = report
            .scenarios
            .iter()
            .filter_map(|scenario| {
                let tuned = &scenario.result("tuned")?.score;
                Some((scenario.summary()?, (tuned.detected, tuned.incidents)))
            })
            .collect();
        if summaries.is_empty() {
            return None;
        }
        let to_oracle: Vec<f64> = summaries
            .iter()
            .filter_map(|(s, _)| s.tuned_over_oracle)
            .collect();
        let to_safe: Vec<f64> = summaries
            .iter()
            .filter_map(|(s, _)| s.tuned_over_safe_oracle)
            .collect();
        let to_default: Vec<f64> = summaries
            .iter()
            .map(|(s, _)| s.tuned_over_best_default)
            .collect();
        let expected: Vec<&super::Expected> = summaries
            .iter()
            .filter_map(|(s, _)| s.expected.as_ref())
            .collect();
        let to_expected: Vec<f64> = expected
            .iter()
            .map(|e| e.tuned_over_expected_oracle())
            .collect();
        let to_default_expected: Vec<f64> = expected
            .iter()
            .map(|e| e.tuned_over_best_default())
            .collect();
        let shuffled: Vec<&super::Shuffled> = summaries
            .iter()
            .filter_map(|(s, _)| s.shuffled.as_ref())
            .collect();
        let to_oracle_shuffled: Vec<f64> = shuffled
            .iter()
            .filter_map(|s| s.tuned_over_oracle())
            .collect();
        let to_default_shuffled: Vec<f64> = shuffled
            .iter()
            .map(|s| s.tuned_over_best_default())
            .collect();
        let count = |f: &dyn Fn(&Summary) -> bool| summaries.iter().filter(|(s, _)| f(s)).count();
        let sum = |f: &dyn Fn(&Summary) -> Option<u32>| {
            summaries.iter().filter_map(|(s, _)| f(s)).sum::<u32>()
        };
        Some(Overall {
            n_scenarios: summaries.len(),
            n_with_oracle: to_oracle.len(),
            geomean_tuned_over_oracle: geomean(&to_oracle),
            geomean_tuned_over_best_default: geomean(&to_default).unwrap_or(1.0),
            n_within_oracle: to_oracle.iter().filter(|&&r| r <= WITHIN_ORACLE).count(),
            n_under_best_default: to_default
                .iter()
                .filter(|&&r| r <= UNDER_BEST_DEFAULT)
                .count(),
            n_worse_than_best_default: to_default.iter().filter(|&&r| r > 1.0).count(),
            tuned_detected: summaries.iter().map(|(_, (d, _))| d).sum(),
            incidents: summaries.iter().map(|(_, (_, n))| n).sum(),
            false_trips: [
                sum(&|s| Some(s.tuned_false_trips)),
                sum(&|s| Some(s.best_default_false_trips)),
                sum(&|s| s.oracle_false_trips),
            ],
            random_order_false_trips: [0, 1, 2]
                .map(|k| sum(&|s: &Summary| s.random_order_false_trips[k])),
            n_more_false_trips_than_oracle: count(&|s| {
                s.oracle_false_trips
                    .is_some_and(|oracle| s.tuned_false_trips > oracle)
            }),
            n_with_safe_oracle: to_safe.len(),
            geomean_tuned_over_safe_oracle: geomean(&to_safe),
            n_within_safe_oracle: to_safe.iter().filter(|&&r| r <= WITHIN_ORACLE).count(),
            n_with_expected: expected.len(),
            geomean_tuned_over_expected_oracle: geomean(&to_expected),
            n_within_expected_oracle: to_expected.iter().filter(|&&r| r <= WITHIN_ORACLE).count(),
            geomean_tuned_over_best_default_expected: geomean(&to_default_expected),
            n_under_best_default_expected: to_default_expected
                .iter()
                .filter(|&&r| r <= UNDER_BEST_DEFAULT)
                .count(),
            n_with_random_orders: shuffled.len(),
            geomean_tuned_over_oracle_random_orders: geomean(&to_oracle_shuffled),
            n_within_oracle_random_orders: to_oracle_shuffled
                .iter()
                .filter(|&&r| r <= WITHIN_ORACLE)
                .count(),
            geomean_tuned_over_best_default_random_orders: geomean(&to_default_shuffled),
            n_under_best_default_random_orders: to_default_shuffled
                .iter()
                .filter(|&&r| r <= UNDER_BEST_DEFAULT)
                .count(),
        })
    }

    /// One paragraph for the end of the table.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = write!(out, "all {} scenarios:", self.n_scenarios);
        if let Some(ratio) = self.geomean_tuned_over_oracle {
            let _ = write!(
                out,
                " geomean tuned/oracle {ratio:.3} (within {WITHIN_ORACLE}×: {} of {});",
                self.n_within_oracle, self.n_with_oracle
            );
        }
        let _ = writeln!(
            out,
            " geomean tuned/best default {:.3} (at most {UNDER_BEST_DEFAULT}×: {}; worse: {})",
            self.geomean_tuned_over_best_default,
            self.n_under_best_default,
            self.n_worse_than_best_default
        );
        let [tuned, best_default, oracle] = self.false_trips;
        let [r_tuned, r_best_default, r_oracle] = self.random_order_false_trips;
        let _ = writeln!(
            out,
            "  recall {}/{}; false trips {tuned} (oracle {oracle}, best defaults {best_default}; tuned more than the oracle in {}); in random order {r_tuned} (oracle {r_oracle}, best defaults {r_best_default})",
            self.tuned_detected, self.incidents, self.n_more_false_trips_than_oracle
        );
        if let Some(ratio) = self.geomean_tuned_over_safe_oracle {
            let _ = writeln!(
                out,
                "  geomean tuned/safe-oracle {ratio:.3} (within {WITHIN_ORACLE}×: {} of {})",
                self.n_within_safe_oracle, self.n_with_safe_oracle
            );
        }
        if let (Some(to_oracle), Some(to_default)) = (
            self.geomean_tuned_over_expected_oracle,
            self.geomean_tuned_over_best_default_expected,
        ) {
            let _ = writeln!(
                out,
                "  with expected tails: geomean tuned/expected-oracle {to_oracle:.3} (within {WITHIN_ORACLE}×: {} of {}); geomean tuned/best default {to_default:.3} (at most {UNDER_BEST_DEFAULT}×: {})",
                self.n_within_expected_oracle,
                self.n_with_expected,
                self.n_under_best_default_expected
            );
        }
        if let Some(to_default) = self.geomean_tuned_over_best_default_random_orders {
            let to_oracle = self
                .geomean_tuned_over_oracle_random_orders
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.3}"));
            let _ = writeln!(
                out,
                "  in random orders: geomean tuned/oracle {to_oracle} (within {WITHIN_ORACLE}×: {} of {}); geomean tuned/best default {to_default:.3} (at most {UNDER_BEST_DEFAULT}×: {})",
                self.n_within_oracle_random_orders,
                self.n_with_random_orders,
                self.n_under_best_default_random_orders
            );
        }
        out
    }

    pub fn to_json(&self) -> Value {
        json!({
            "n_scenarios": self.n_scenarios,
            "n_with_oracle": self.n_with_oracle,
            "geomean_tuned_over_oracle": self.geomean_tuned_over_oracle,
            "geomean_tuned_over_best_default": self.geomean_tuned_over_best_default,
            "n_within_oracle": self.n_within_oracle,
            "n_under_best_default": self.n_under_best_default,
            "n_worse_than_best_default": self.n_worse_than_best_default,
            "tuned_detected": self.tuned_detected,
            "incidents": self.incidents,
            "tuned_false_trips": self.false_trips[0],
            "best_default_false_trips": self.false_trips[1],
            "oracle_false_trips": self.false_trips[2],
            "tuned_random_order_false_trips": self.random_order_false_trips[0],
            "best_default_random_order_false_trips": self.random_order_false_trips[1],
            "oracle_random_order_false_trips": self.random_order_false_trips[2],
            "n_more_false_trips_than_oracle": self.n_more_false_trips_than_oracle,
            "n_with_safe_oracle": self.n_with_safe_oracle,
            "geomean_tuned_over_safe_oracle": self.geomean_tuned_over_safe_oracle,
            "n_within_safe_oracle": self.n_within_safe_oracle,
            "n_with_expected": self.n_with_expected,
            "geomean_tuned_over_expected_oracle": self.geomean_tuned_over_expected_oracle,
            "n_within_expected_oracle": self.n_within_expected_oracle,
            "geomean_tuned_over_best_default_expected": self.geomean_tuned_over_best_default_expected,
            "n_under_best_default_expected": self.n_under_best_default_expected,
            "n_with_random_orders": self.n_with_random_orders,
            "geomean_tuned_over_oracle_random_orders": self.geomean_tuned_over_oracle_random_orders,
            "n_within_oracle_random_orders": self.n_within_oracle_random_orders,
            "geomean_tuned_over_best_default_random_orders": self.geomean_tuned_over_best_default_random_orders,
            "n_under_best_default_random_orders": self.n_under_best_default_random_orders,
        })
    }
}

/// The geometric mean, each ratio kept within 1e-9..1e9 (a zero or infinite ratio would
/// swamp every other); `None` for none.
fn geomean(ratios: &[f64]) -> Option<f64> {
    if ratios.is_empty() {
        return None;
    }
    let sum: f64 = ratios.iter().map(|r| r.clamp(1e-9, 1e9).ln()).sum();
    Some((sum / ratios.len() as f64).exp())
}

#[cfg(test)]
mod tests;
