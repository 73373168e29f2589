//! Replays of small hand-made histories, checked as transition logs.

use std::time::Duration;

use breaker::{Config, Wait, Window};

use crate::history::{History, Step};
use crate::replay::{interleave_stride, replay, score};
use crate::scenario::Span;

/// One-second steps of (calls, failures, slow calls); slow calls take 1 s, others 10 ms.
fn history(steps: &[(u32, u32, u32)]) -> History {
    History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![10, 100, 1000],
        steps: steps
            .iter()
            .enumerate()
            .map(|(i, &(n_calls, n_failures, n_slow))| Step {
                t_ms: i as u64 * 1000,
                n_calls,
                n_failures,
                n_rejected: 0,
                latency_counts: vec![n_calls - n_slow, 0, n_slow],
            })
            .collect(),
    }
}

/// Replays and renders `at_ms from→to trigger` lines plus per-step admitted/rejected.
#[track_caller]
fn check(steps: &[(u32, u32, u32)], config: &Config, expect: &str) {
    let history = history(steps);
    let res = replay(&history, 0..history.len(), config);
    let mut out = String::new();
    for tr in &res.transitions {
        out += &format!(
            "{} {}→{} {}\n",
            tr.at.as_millis(),
            tr.from.as_str(),
            tr.to.as_str(),
            tr.trigger.kind.as_str()
        );
    }
    out += &format!("admitted {:?}\nrejected {:?}\n", res.admitted, res.rejected);
    assert_eq!(out.trim(), expect.trim(), "\n{out}");
}

fn config() -> breaker::ConfigBuilder {
    Config::builder()
        .failure_rate_threshold(0.5)
        .window(Window::Count(10))
        .minimum_calls(10)
        .wait(Wait::Fixed(Duration::from_secs(2)))
        .half_open_probes(1)
        .half_open_successes(1)
}

#[test]
fn outage_trips_waits_and_recovers() {
    // Ten calls a second: healthy, two seconds of outage, healthy again. The fifth failure
    // (at 1.45 s) makes 5 of the last 10; the probe 2 s later finds the dependency back.
    check(
        &[
            (10, 0, 0),
            (10, 10, 0),
            (10, 10, 0),
            (10, 0, 0),
            (10, 0, 0),
            (10, 0, 0),
        ],
        &config().build().unwrap(),
        "
1450 closed→open failure_rate
3450 open→half_open wait_elapsed
3450 half_open→closed probe_succeeded
admitted [10, 5, 0, 6, 10, 10]
rejected [0, 5, 10, 4, 0, 0]",
    );
}

#[test]
fn failures_are_spread_by_the_floor_rule() {
    // 3 failures in 10 calls fail calls 3, 6 and 9 (0-based): never two in a row.
    check(
        &[(10, 3, 0), (10, 3, 0), (10, 3, 0)],
        &config()
            .failure_rate_threshold(None)
            .consecutive_failures(2)
            .build()
            .unwrap(),
        "admitted [10, 10, 10]\nrejected [0, 0, 0]",
    );
}

#[test]
fn slow_calls_trip_the_slow_call_policy() {
    check(
        &[(10, 0, 1), (10, 0, 8), (10, 0, 0)],
        &config()
            .slow_call_rate_threshold(0.5)
            .slow_call_duration(Duration::from_millis(500))
            .build()
            .unwrap(),
        "
1550 closed→open slow_call_rate
admitted [10, 6, 0]
rejected [0, 4, 10]",
    );
}

#[test]
fn a_call_timeout_counts_a_very_slow_call_as_failed() {
    check(
        &[(4, 0, 4), (4, 0, 4)],
        &config()
            .window(Window::Count(4))
            .minimum_calls(4)
            .call_timeout(Duration::from_millis(1000))
            .build()
            .unwrap(),
        "
875 closed→open failure_rate
admitted [4, 0]
rejected [0, 4]",
    );
}

#[test]
fn scores_count_lost_wasted_recall_and_false_trips() {
    let history = history(&[
        (10, 0, 0),
        (10, 10, 0),
        (10, 10, 0),
        (10, 0, 0),
        (10, 0, 0),
        (10, 0, 0),
    ]);
    let res = replay(&history, 0..history.len(), &config().build().unwrap());
    let healthy = [true, false, false, true, true, true];
    let incidents = [Span {
        start_ms: 1000,
        end_ms: 3000,
    }];
    let s = score(&history, &res, &healthy, &incidents);
    assert_eq!((s.lost_good, s.wasted), (4, 5));
    assert_eq!(
        (s.incidents, s.detected, s.detection_delays_ms.clone()),
        (1, 1, vec![450])
    );
    assert_eq!((s.trips, s.false_trips), (1, 0));
    assert!((s.cost - 5.0).abs() < 1e-9);
}

#[test]
fn the_interleaving_visits_every_position_once() {
    for n in 1..200u32 {
        let stride = interleave_stride(n);
        let mut seen = vec![false; n as usize];
        for i in 0..n {
            seen[((u64::from(i) * u64::from(stride)) % u64::from(n)) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s), "n = {n}");
    }
}
