//! Features of small hand-made histories.

use std::time::Duration;

use crate::features::{FeatureOptions, col, features, median, percentile_ms};
use crate::history::{History, Step};

/// Steps of (calls, failures, slow calls); slow calls take 1 s, others 10 ms.
pub(crate) fn history(steps: &[(u32, u32, u32)]) -> History {
    History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, &(n_calls, n_failures, n_slow))| {
                let mut latency_counts = vec![0; 10];
                latency_counts[3] = n_calls - n_slow;
                latency_counts[9] = n_slow;
                Step {
                    t_ms: i as u64 * 1000,
                    n_calls,
                    n_failures,
                    n_rejected: 0,
                    latency_counts,
                }
            })
            .collect(),
    }
}

#[test]
fn high_volume_steps_are_judged_on_their_own() {
    let mut steps = vec![(100, 2, 0); 50];
    steps[20] = (100, 60, 50);
    let f = features(&history(&steps), &FeatureOptions::default());
    assert_eq!(f.context_calls[20], 100);
    // 60 failures of 100, pulled a little towards the usual 2 % by 10 pseudo-calls.
    let rate = f.get(20, col::FAILURE_RATE);
    assert!((rate - (60.0 + 0.2) / 110.0).abs() < 1e-9, "{rate}");
    assert_eq!(f.get(20, col::LOG_P99), 1000f64.ln());
    assert_eq!(f.get(19, col::LOG_P50), 10f64.ln());
    assert_eq!(f.slow_cutoffs_ms, vec![50, 200, 1000]);
    let slow_1s = col::SLOW0 + 2;
    assert!(f.get(20, slow_1s) > 0.4 && f.get(19, slow_1s) < 0.01);
}

#[test]
fn low_volume_rates_are_judged_over_enough_calls() {
    // One call a second, and a single failure: not a 100 % failure rate.
    let mut steps = vec![(1, 0, 0); 100];
    steps[50] = (1, 1, 0);
    let f = features(&history(&steps), &FeatureOptions::default());
    assert!(f.context_calls[50] >= 30, "{}", f.context_calls[50]);
    let rate = f.get(50, col::FAILURE_RATE);
    assert!(rate < 0.05, "{rate}");
    // Empty steps borrow their neighbours' calls and never divide by zero.
    let mut steps = vec![(0, 0, 0); 20];
    steps[10] = (3, 3, 0);
    let f = features(&history(&steps), &FeatureOptions::default());
    assert!(f.raw.iter().all(|x| x.is_finite()));
}

#[test]
fn scaling_is_robust_to_a_minority_of_incident_steps() {
    // 30 % of the steps are an outage; the median and MAD still describe the healthy ones.
    let mut steps = vec![(200, 4, 0); 100];
    for step in &mut steps[40..70] {
        *step = (200, 200, 0);
    }
    let f = features(&history(&steps), &FeatureOptions::default());
    let healthy = f.get_scaled(10, col::FAILURE_RATE);
    let outage = f.get_scaled(50, col::FAILURE_RATE);
    assert!(healthy.abs() < 1.0, "{healthy}");
    assert!(outage > 50.0, "{outage}");
}

#[test]
fn medians_and_percentiles() {
    assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    assert_eq!(median(vec![]), None);
    let bounds = [10, 100, 1000];
    assert_eq!(percentile_ms(&[50, 49, 1], &bounds, 0.5), 10.0);
    assert_eq!(percentile_ms(&[50, 49, 1], &bounds, 0.99), 100.0);
    assert_eq!(percentile_ms(&[50, 49, 1], &bounds, 1.0), 1000.0);
}
