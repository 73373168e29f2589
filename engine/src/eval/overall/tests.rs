//! The figures over all scenarios, from hand-made per-scenario results.

use super::Overall;
use crate::eval::{ConfigResult, Report, ScenarioReport};
use crate::replay::Score;

/// A result with this cost, detections of incidents, false trips as scored and in random
/// order.
fn result(name: &'static str, cost: f64, detected: usize, false_trips: [u32; 2]) -> ConfigResult {
    ConfigResult {
        config_name: name,
        config: None,
        score: Score {
            cost,
            incidents: 6,
            detected,
            false_trips: false_trips[0],
            ..Score::default()
        },
        random_order_false_trips: Some(false_trips[1]),
        expected_tail_cost: None,
        random_order_cost: None,
    }
}

fn scenario(results: Vec<ConfigResult>) -> ScenarioReport {
    ScenarioReport {
        scenario: "s".into(),
        train_steps: 10,
        scored_steps: 10,
        results,
        mean_costs: Vec::new(),
        variant_extra_s: Vec::new(),
    }
}

#[test]
fn the_overall_figures_are_taken_from_every_scenarios_summary() {
    let report = Report {
        scenarios: vec![
            // tuned/oracle 2, tuned/best default 0.25 (polly the best default).
            scenario(vec![
                result("hystrix", 800.0, 6, [0, 0]),
                result("polly", 400.0, 6, [1, 3]),
                result("tuned", 100.0, 6, [0, 0]),
                result("oracle", 50.0, 6, [0, 7]),
            ]),
            // tuned/oracle 1.125, tuned/best default 1.5; tuned trips once more than the oracle.
            scenario(vec![
                result("hystrix", 60.0, 6, [0, 2]),
                result("tuned", 90.0, 5, [1, 4]),
                result("oracle", 80.0, 6, [0, 0]),
            ]),
            // No summary without a tuned result: left out.
            scenario(vec![result("hystrix", 1.0, 6, [9, 9])]),
        ],
    };
    let overall = Overall::of(&report).unwrap();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert_eq!(overall.n_scenarios, 2);
    assert_eq!(overall.n_with_oracle, 2);
    // √(2 × 1.125) = 1.5; √(0.25 × 1.5) = √0.375.
    assert!(close(overall.geomean_tuned_over_oracle.unwrap(), 1.5));
    assert!(close(
        overall.geomean_tuned_over_best_default,
        0.375f64.sqrt()
    ));
    assert_eq!(overall.n_within_oracle, 1);
    assert_eq!(overall.n_under_best_default, 1);
    assert_eq!(overall.n_worse_than_best_default, 1);
    assert_eq!((overall.tuned_detected, overall.incidents), (11, 12));
    // Tuned, best default (polly, then hystrix), oracle.
    assert_eq!(overall.false_trips, [1, 1, 0]);
    assert_eq!(overall.random_order_false_trips, [4, 5, 7]);
    assert_eq!(overall.n_more_false_trips_than_oracle, 1);
    let text = overall.to_text();
    assert!(
        text.starts_with("all 2 scenarios: geomean tuned/oracle 1.500 (within 1.25×: 1 of 2);"),
        "{text}"
    );
    assert!(text.contains("recall 11/12; false trips 1 (oracle 0, best defaults 1; tuned more than the oracle in 1); in random order 4 (oracle 7, best defaults 5)"), "{text}");
    assert_eq!(overall.to_json()["n_within_oracle"], 1);
    // Nothing to sum without a summary.
    assert_eq!(Overall::of(&Report::default()), None);
}
