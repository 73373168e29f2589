//! Tests of the costs in random orders: that each is the median over seeded orders, that the
//! order matters only to a config it can trip, and the rows and ratios of a report so replayed.

use std::time::Duration;

use breaker::{Config, Wait};

use super::{FIRST_SEED, Shuffled, median_cost};
use crate::eval::tests::{library_default, outages_among};
use crate::eval::{EvalOptions, Overall, Report};
use crate::replay;

/// Trips on 5 failures in a row and closes after `successes` probe successes in a row.
fn in_a_row(successes: u32) -> Config {
    Config::builder()
        .failure_rate_threshold(None)
        .consecutive_failures(5)
        .wait(Wait::Fixed(Duration::from_secs(5)))
        .half_open_probes(successes)
        .half_open_successes(successes)
        .build()
        .unwrap()
}

#[test]
fn each_cost_is_the_median_over_seeded_orders_and_the_order_matters_only_where_it_can_trip() {
    // 4 % usual failures (2 of 50 calls a second), three outages in the scored half.
    let scenario = outages_among(&[4_000..4_061, 5_000..5_203, 6_000..6_017], |_| 2);
    let half = scenario.history.len() / 2;
    let history = &scenario.history;
    let config = in_a_row(10);
    let mut costs: Vec<f64> = (0..5)
        .map(|k| {
            let res =
                replay::replay_in_random_order(history, 0..history.len(), &config, FIRST_SEED + k);
            crate::eval::second_half_score(&scenario, half, res).cost
        })
        .collect();
    // Ten probe successes in a row among 4 % usual failures: whether the probes meet one is
    // the order's doing, so the orders disagree.
    assert!(
        costs.iter().any(|&c| c != costs[0]),
        "the order did not matter: {costs:?}"
    );
    costs.sort_by(f64::total_cmp);
    assert_eq!(median_cost(&scenario, half, &config, 5), costs[2]);
    assert_eq!(
        median_cost(&scenario, half, &config, 5),
        median_cost(&scenario, half, &config, 5)
    );
    // A config that never trips refuses nothing and lets every call through in any order.
    let never = Config::builder()
        .failure_rate_threshold(None)
        .consecutive_failures(1_000_000)
        .build()
        .unwrap();
    let even = crate::eval::scored_from(&scenario, half, &never).cost;
    assert!(even > 0.0);
    assert_eq!(median_cost(&scenario, half, &never, 4), even);
}

#[test]
fn the_random_order_rows_and_ratios_are_the_medians() {
    let scenario = outages_among(&[4_000..4_061, 5_000..5_203, 6_000..6_017], |i| {
        u32::from(i % 3 == 0)
    });
    let half = scenario.history.len() / 2;
    let tuned = library_default("polly");
    let (report, _) = crate::eval::evaluate_scenario(
        &scenario,
        &tuned,
        &[],
        &EvalOptions {
            random_orders: 3,
            ..EvalOptions::default()
        },
    );
    for res in &report.results {
        assert_eq!(
            res.random_order_cost.is_some(),
            res.config.is_some(),
            "{}",
            res.config_name
        );
        if let Some(config) = &res.config {
            assert_eq!(
                res.random_order_cost,
                Some(median_cost(&scenario, half, config, 3)),
                "{}",
                res.config_name
            );
        }
    }
    let cost = |name: &str| report.result(name).unwrap().random_order_cost.unwrap();
    let shuffled = report.summary().unwrap().shuffled.unwrap();
    assert_eq!(shuffled.tuned, cost("tuned"));
    assert_eq!(shuffled.oracle, Some(cost("oracle")));
    assert_eq!(shuffled.expected_oracle, None);
    let cheapest_default = crate::defaults::LIBRARY_DEFAULTS
        .iter()
        .map(|name| cost(name))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(shuffled.best_default_cost, cheapest_default);
    assert_eq!(
        shuffled.tuned_over_oracle(),
        Some(cost("tuned") / cost("oracle"))
    );
    let full = Report {
        scenarios: vec![report.clone()],
    };
    assert!(full.to_table().contains("in random orders (median): tuned"));
    let overall = Overall::of(&full).unwrap();
    assert_eq!(overall.n_with_random_orders, 1);
    let to_default = overall
        .geomean_tuned_over_best_default_random_orders
        .unwrap();
    assert!((to_default - shuffled.tuned_over_best_default()).abs() < 1e-9);
    let json: serde_json::Value = serde_json::from_str(&full.to_json()).unwrap();
    assert_eq!(
        json["scenarios"][0]["summary"]["random_orders"]["tuned"],
        serde_json::json!(shuffled.tuned)
    );
    // Without the option, none of it.
    let (plain, _) =
        crate::eval::evaluate_scenario(&scenario, &tuned, &[], &EvalOptions::default());
    assert!(plain.results.iter().all(|r| r.random_order_cost.is_none()));
    assert!(plain.summary().unwrap().shuffled.is_none());
    let _: Option<Shuffled> = Shuffled::of(&plain);
}
