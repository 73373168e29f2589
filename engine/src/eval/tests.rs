//! The lengthened variants of a scenario.

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
