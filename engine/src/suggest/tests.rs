//! Suggestions on hand-made histories: stopping early, the cost of huge call counts, and a
//! long trace merged into at most `Trace::MAX_POINTS` points.

use std::time::Duration;

use breaker::Config;

use super::{Trace, TuneOptions, suggest};
use crate::Warning;
use crate::history::{History, Step};
use crate::replay::Replay;
use crate::stop::{Stop, StopReason};

/// An hour of one-second steps at `calls` a second, 1 % failing, with a two-minute outage.
fn hour(calls: u32) -> History {
    History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![10, 100, 1_000],
        steps: (0..3_600u64)
            .map(|i| {
                let outage = (1_800..1_920).contains(&i);
                Step {
                    t_ms: i * 1_000,
                    n_calls: calls,
                    n_failures: if outage { calls } else { calls / 100 },
                    n_rejected: 0,
                    latency_counts: vec![calls - calls / 10, calls / 10, 0],
                }
            })
            .collect(),
    }
}

#[test]
fn a_stop_set_before_the_call_returns_at_once_without_a_suggestion() {
    let stop = Stop::new();
    stop.cancel();
    let opts = TuneOptions {
        stop,
        ..TuneOptions::default()
    };
    let (suggestion, warnings) = suggest(&hour(100), &Config::default(), 0, &opts);
    assert!(suggestion.is_none());
    assert_eq!(
        warnings,
        vec![Warning::Stopped {
            reason: StopReason::Cancelled
        }]
    );
}

#[test]
fn enormous_call_counts_cost_replays_in_proportion_to_the_steps() {
    // A billion calls a second for an hour: every replay drives at most the cap per step.
    let history = hour(1_000_000_000);
    let (suggestion, warnings) = suggest(&history, &Config::default(), 0, &TuneOptions::default());
    let suggestion = suggestion.expect("nothing stops the run");
    assert!(
        !warnings
            .iter()
            .any(|w| matches!(w, Warning::Stopped { .. }))
    );
    let bound = suggestion.n_replays as u64
        * history.len() as u64
        * u64::from(crate::replay::MAX_CALLS_PER_STEP);
    assert!(suggestion.replayed_calls > 0);
    assert!(
        suggestion.replayed_calls <= bound,
        "{} > {bound}",
        suggestion.replayed_calls
    );
    assert_eq!(suggestion.suggested_backtest.anomalies, 1);
    assert_eq!(suggestion.suggested_backtest.detected, 1);
}

#[test]
fn a_long_history_is_merged_into_at_most_max_points() {
    let n = 2 * Trace::MAX_POINTS + 10;
    let history = History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![10],
        steps: (0..n)
            .map(|i| Step {
                t_ms: i as u64 * 1_000,
                n_calls: 10,
                n_failures: if i < 3 { 5 } else { 0 },
                n_rejected: 0,
                latency_counts: vec![10],
            })
            .collect(),
    };
    let replay = |rejected_at: usize| Replay {
        range: 0..n,
        admitted: vec![10; n],
        rejected: (0..n)
            .map(|i| if i == rejected_at { 10 } else { 0 })
            .collect(),
        transitions: vec![],
        replayed_calls: 0,
        quiet_calls: 0,
    };
    let mut anomalous = vec![false; n];
    anomalous[4] = true;
    let trace = Trace::new(&history, &replay(0), &replay(5), &anomalous);
    // 1450 steps, three a point: 484 points.
    assert_eq!(trace.step, Duration::from_secs(3));
    assert_eq!(trace.t_ms.len(), n.div_ceil(3));
    assert!(trace.t_ms.len() <= Trace::MAX_POINTS);
    assert_eq!(&trace.t_ms[..3], &[0, 3_000, 6_000]);
    // 5 + 5 + 5 failures of 30 calls in the first point; none in the second.
    assert_eq!(trace.failure_rate[0], Some(0.5));
    assert_eq!(trace.failure_rate[1], Some(0.0));
    assert!((trace.current_refused[0] - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(trace.current_refused[1], 0.0);
    assert!((trace.suggested_refused[1] - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(&trace.anomalous[..3], &[false, true, false]);
}
