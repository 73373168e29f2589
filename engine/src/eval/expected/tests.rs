//! Tests of the costs with expected tails: that they no longer depend on where an incident
//! ended among the probes, and the rows and ratios of a report scored so.

use std::time::Duration;

use breaker::{Config, Wait};

use super::{Expected, tail_cost};
use crate::eval::tests::{library_default, outages_among};
use crate::eval::{EXPECTED_ORACLE, EvalOptions, Overall, Report};

/// Trips on 5 failures in a row, probes once every 10 s.
fn every_ten_seconds() -> Config {
    Config::builder()
        .failure_rate_threshold(None)
        .consecutive_failures(5)
        .wait(Wait::Fixed(Duration::from_secs(10)))
        .half_open_probes(1)
        .half_open_successes(1)
        .build()
        .unwrap()
}

fn spread(costs: &[f64]) -> f64 {
    let max = costs.iter().copied().fold(f64::MIN, f64::max);
    let min = costs.iter().copied().fold(f64::MAX, f64::min);
    max - min
}

#[test]
fn with_expected_tails_where_an_incident_ends_among_the_probes_no_longer_counts() {
    // One outage in the scored half, 60 to 69 s long: its end falls at ten places of the
    // 10 s probe cycle, so the good calls refused after it (50 a second) range over 0–500.
    let config = every_ten_seconds();
    let (mut plain, mut expected) = (Vec::new(), Vec::new());
    for len in 60..70 {
        let outage = 4_000..4_000 + len;
        let scenario = outages_among(std::slice::from_ref(&outage), |_| 0);
        let half = scenario.history.len() / 2;
        plain.push(super::super::scored_from(&scenario, half, &config).cost);
        expected.push(tail_cost(&scenario, half, &config));
    }
    assert!(spread(&plain) > 300.0, "{plain:?}");
    // What is left: a probe more or less during a longer outage (0.2 each).
    assert!(spread(&expected) < 5.0, "{expected:?}");
    // Half a cycle at 50 calls a second, near the mean of the ten draws.
    let mean = |costs: &[f64]| costs.iter().sum::<f64>() / costs.len() as f64;
    assert!(
        (mean(&expected) - mean(&plain)).abs() < 0.1 * mean(&plain),
        "{expected:?} against {plain:?}"
    );
    assert!(
        (240.0..300.0).contains(&(expected[0] - 0.2 * 5.0)),
        "{expected:?}"
    );
}

#[test]
fn the_expected_oracle_is_cheapest_with_expected_tails_and_the_ratios_are_its() {
    let scenario = outages_among(&[4_000..4_061, 5_000..5_203, 6_000..6_017], |_| 0);
    let half = scenario.history.len() / 2;
    let tuned = library_default("polly");
    let (report, _) = super::super::evaluate_scenario(
        &scenario,
        &tuned,
        &[],
        &EvalOptions {
            expected_tails: true,
            ..EvalOptions::default()
        },
    );
    let expected_cost = |name: &str| report.result(name).unwrap().expected_tail_cost;
    for res in &report.results {
        assert_eq!(
            res.expected_tail_cost.is_some(),
            res.config.is_some(),
            "{}",
            res.config_name
        );
        if let Some(config) = &res.config {
            assert_eq!(
                res.expected_tail_cost,
                Some(tail_cost(&scenario, half, config))
            );
        }
    }
    // The search starts from every library default and the tuned config.
    let best = expected_cost(EXPECTED_ORACLE).unwrap();
    for (name, _) in crate::defaults::library_defaults() {
        assert!(best <= expected_cost(name).unwrap() + 1e-6, "{name}");
    }
    assert!(best <= expected_cost("tuned").unwrap() + 1e-6);
    let summary = report.summary().unwrap();
    let expected: Expected = summary.expected.clone().unwrap();
    assert_eq!(expected.expected_oracle, best);
    assert_eq!(expected.tuned, expected_cost("tuned").unwrap());
    assert!((expected.tuned_over_expected_oracle() - expected.tuned / best).abs() < 1e-12);
    let cheapest_default = crate::defaults::LIBRARY_DEFAULTS
        .iter()
        .filter_map(|name| expected_cost(name))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(expected.best_default_cost, cheapest_default);
    // The overall figures over this one scenario are its own.
    let overall = Overall::of(&Report {
        scenarios: vec![report.clone()],
    })
    .unwrap();
    assert_eq!(overall.n_with_expected, 1);
    let to_oracle = overall.geomean_tuned_over_expected_oracle.unwrap();
    assert!((to_oracle - expected.tuned_over_expected_oracle()).abs() < 1e-9);
    // Without the option, none of it.
    let (plain, _) =
        super::super::evaluate_scenario(&scenario, &tuned, &[], &EvalOptions::default());
    assert!(plain.result(EXPECTED_ORACLE).is_none());
    assert!(plain.summary().unwrap().expected.is_none());
}
