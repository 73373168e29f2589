//! The binomial tail, the probe risk learnt from usual traffic, and the noise margin.

use std::time::Duration;

use breaker::{Admission, Config, HalfOpenRule, Machine, Outcome, State, Wait, Window};

use super::{ProbeRisk, binomial_tail, fewest_at_rate};
use crate::anomaly::Labels;
use crate::history::{History, Step};
use crate::search::tests::{rate_only, secs, steady_history};
use crate::search::{Candidate, Probes};

#[test]
fn the_binomial_tail_is_the_sum_of_the_exact_terms() {
    assert_eq!(binomial_tail(20, 0, 0.3), 1.0);
    assert_eq!(binomial_tail(5, 6, 0.5), 0.0);
    assert_eq!(binomial_tail(5, 1, 0.0), 0.0);
    assert_eq!(binomial_tail(5, 5, 1.0), 1.0);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.max(1e-300);
    assert!(close(binomial_tail(1, 1, 0.3), 0.3));
    // 3·0.1²·0.9 + 0.1³
    assert!(close(binomial_tail(3, 2, 0.1), 0.028));
    // (252 + 210 + 120 + 45 + 10 + 1) / 2¹⁰
    assert!(close(binomial_tail(10, 5, 0.5), 638.0 / 1024.0));
    // A far tail, against the terms multiplied out directly.
    let (n, k, p) = (100u32, 30u32, 0.1f64);
    let mut term = (1.0 - p).powi(n as i32);
    let mut tail = 0.0;
    for x in 0..=n {
        if x > 0 {
            term *= f64::from(n - x + 1) / f64::from(x) * p / (1.0 - p);
        }
        if x >= k {
            tail += term;
        }
    }
    assert!(tail < 1e-5, "{tail}");
    assert!(
        close(binomial_tail(n, k, p), tail),
        "{} against {tail}",
        binomial_tail(n, k, p)
    );
}

/// Ten minutes of 10 calls a second, one failing, 8 fast, one at 100 ms and one at 1 s;
/// steps 100..200 are an anomaly where every call fails and is slow (labelled anomalous).
fn usual_traffic() -> (History, Labels) {
    let mut history = steady_history(600, 10, 1, &[10, 100, 1_000], &[8, 1, 1]);
    for step in &mut history.steps[100..200] {
        step.n_failures = 10;
        step.latency_counts = vec![0, 0, 10];
    }
    let labels = Labels {
        anomalous: (0..history.len())
            .map(|i| (100..200).contains(&i))
            .collect(),
        ..Labels::default()
    };
    (history, labels)
}

#[test]
fn the_probe_risk_is_learnt_from_the_usual_traffic_only() {
    let (history, labels) = usual_traffic();
    let risk = ProbeRisk::new(&history, &labels, 2.0);
    assert_eq!(risk.usual_failure_rate, 0.1);
    // At or above each bound: all, 2 in 10, 1 in 10; and nothing above the last.
    assert_eq!(risk.slow_share_at(10), 1.0);
    assert_eq!(risk.slow_share_at(50), 0.2);
    assert_eq!(risk.slow_share_at(100), 0.2);
    assert_eq!(risk.slow_share_at(1_000), 0.1);
    assert_eq!(risk.slow_share_at(5_000), 0.0);
}

#[test]
fn an_unlucky_probe_costs_further_waits_of_calls_per_incident() {
    let (history, labels) = usual_traffic();
    let risk = ProbeRisk::new(&history, &labels, 2.0);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    // A failed probe brings a further wait, whose probes may fail again: p + p² + ….
    let further = |p: f64| p / (1.0 - p);
    // Two incidents × further waits at P(one of two probes fails: 1 − 0.9²) × 10 calls/s × 5 s.
    let two_probes = Candidate {
        wait: Wait::Fixed(secs(5)),
        half_open: Probes::Successes(2, 2),
        ..rate_only()
    };
    assert!(close(
        risk.cost(&two_probes),
        2.0 * further(0.19) * 10.0 * 5.0
    ));
    // A slow-call policy at 100 ms makes 2 in 10 more probes bad.
    let slow = Candidate {
        slow: Some((100, 0.5)),
        half_open: Probes::Successes(1, 1),
        ..two_probes.clone()
    };
    assert!(close(risk.cost(&slow), 2.0 * further(0.3) * 10.0 * 5.0));
    // An exponential wait's next wait is its second: initial × multiplier, at most max.
    let exponential = |initial, max| Candidate {
        wait: Wait::Exponential {
            initial: secs(initial),
            multiplier: 2.0,
            max: secs(max),
            jitter: 0.0,
        },
        ..slow.clone()
    };
    assert!(close(
        risk.cost(&exponential(1, 60)),
        2.0 * further(0.3) * 10.0 * 2.0
    ));
    assert!(close(
        risk.cost(&exponential(5, 8)),
        2.0 * further(0.3) * 10.0 * 8.0
    ));
}

#[test]
fn probes_judged_by_rate_reopen_only_when_the_usual_failures_reach_the_threshold() {
    let (history, labels) = usual_traffic();
    let risk = ProbeRisk::new(&history, &labels, 2.0);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let further = |p: f64| p / (1.0 - p);
    // P(at least k of 10 probes fail) at the usual 10 %, term by term.
    let at_least = |k: u32| -> f64 {
        (k..=10)
            .map(|x| {
                let choose = (0..x).fold(1.0, |c, i| c * f64::from(10 - i) / f64::from(i + 1));
                choose * 0.1f64.powi(x as i32) * 0.9f64.powi(10 - x as i32)
            })
            .sum()
    };
    let by_rate = |threshold: f64| Candidate {
        failure_rate_threshold: Some(threshold),
        wait: Wait::Fixed(secs(5)),
        half_open: Probes::Rates(10),
        ..rate_only()
    };
    // Two incidents × P(≥ 5 of 10 fail) × 10 calls/s × 5 s.
    assert!(close(
        risk.cost(&by_rate(0.5)),
        2.0 * further(at_least(5)) * 10.0 * 5.0
    ));
    // 3 of 10 is a rate of 0.3 exactly: it reopens.
    assert!(close(
        risk.cost(&by_rate(0.3)),
        2.0 * further(at_least(3)) * 10.0 * 5.0
    ));
    // Ten probes judged by rate are far safer on this noise than three successes in a row.
    let three_in_a_row = Candidate {
        half_open: Probes::Successes(3, 3),
        ..by_rate(0.5)
    };
    assert!(risk.cost(&by_rate(0.5)) < risk.cost(&three_in_a_row) / 100.0);
    // A slow-call rate judges the probes too: at 100 ms, 2 in 10 usual calls are slow.
    let slow = Candidate {
        slow: Some((100, 0.5)),
        ..by_rate(0.5)
    };
    let slow_reaches = binomial_tail(10, 5, 0.2);
    assert!(close(
        risk.cost(&slow),
        2.0 * further(1.0 - (1.0 - at_least(5)) * (1.0 - slow_reaches)) * 10.0 * 5.0
    ));
}

#[test]
fn the_fewest_probes_at_a_rate_are_where_the_breaker_opens_again() {
    // Drives a breaker through Half-Open with k of its 10 probes failing, at thresholds whose
    // products with 10 are and are not whole in floating point.
    for threshold in [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.6, 0.7, 0.9] {
        let fewest = fewest_at_rate(10, threshold);
        for k in 0..=10 {
            let config = Config::builder()
                .failure_rate_threshold(threshold)
                .window(Window::Count(10))
                .minimum_calls(10)
                .wait_duration(secs(1))
                .half_open_probes(10)
                .half_open_successes(10)
                .half_open_rule(HalfOpenRule::Rates)
                .build()
                .unwrap();
            let mut machine = Machine::new(config, Duration::ZERO, 1);
            let mut now = Duration::ZERO;
            let call = |machine: &mut Machine, now: Duration, outcome: Outcome| {
                let (Admission::Granted(granted), _) = machine.acquire(now) else {
                    panic!("refused at {now:?} in {:?}", machine.state());
                };
                machine.record(now, granted, outcome, Duration::from_millis(1));
            };
            while machine.state() == State::Closed {
                now += Duration::from_millis(10);
                call(&mut machine, now, Outcome::Failure);
            }
            now += secs(2);
            for i in 0..10 {
                let outcome = if i < k {
                    Outcome::Failure
                } else {
                    Outcome::Success
                };
                call(&mut machine, now, outcome);
            }
            let expected = if k >= fewest {
                State::Open
            } else {
                State::Closed
            };
            assert_eq!(machine.state(), expected, "{k} of 10 failed at {threshold}");
        }
    }
}

#[test]
fn the_noise_margin_raises_the_minimum_until_the_usual_failures_seldom_reach_a_threshold() {
    let (history, labels) = usual_traffic();
    let risk = ProbeRisk::new(&history, &labels, 1.0);
    let mut cand = Candidate {
        failure_rate_threshold: Some(0.2),
        window: Window::Count(10),
        minimum_calls: 5,
        consecutive_failures: Some(3),
        ..rate_only()
    };
    risk.require_noise_margin(&mut cand);
    let tail = |m: u32| binomial_tail(m, (0.2 * f64::from(m)).ceil() as u32, 0.1);
    // The minimum grows by half at a time from 5, and stops at the first that is quiet enough.
    let mut grown = vec![5u32];
    while *grown.last().unwrap() < cand.minimum_calls {
        let m = *grown.last().unwrap();
        grown.push(m + m.div_ceil(2));
    }
    assert_eq!(grown.last(), Some(&cand.minimum_calls), "{grown:?}");
    assert!(grown.len() > 2, "{grown:?}");
    assert!(tail(cand.minimum_calls) <= 1e-5);
    assert!(tail(grown[grown.len() - 2]) > 1e-5);
    assert_eq!(cand.window, Window::Count(cand.minimum_calls));
    // At 10 % failing and 864 k calls a day, 8 failures in a row happen by chance less than
    // once in a hundred days, 7 more often.
    assert_eq!(cand.consecutive_failures, Some(8));
    let mut rare = Candidate {
        consecutive_failures: Some(20),
        ..cand.clone()
    };
    risk.require_noise_margin(&mut rare);
    assert_eq!(rare.consecutive_failures, Some(20));
}

#[test]
fn a_time_window_is_widened_until_it_usually_holds_the_minimum_of_calls() {
    // Half a call a second, 2 % failing: ten seconds hold five calls on average.
    let steps = (0..3_600u64)
        .map(|i| Step {
            t_ms: i * 1_000,
            n_calls: u32::from(i % 2 == 0),
            n_failures: u32::from(i % 100 == 0),
            n_rejected: 0,
            latency_counts: vec![u32::from(i % 2 == 0), 0],
        })
        .collect();
    let history = History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![10, 100],
        steps,
    };
    let labels = Labels {
        anomalous: vec![false; history.len()],
        ..Labels::default()
    };
    let risk = ProbeRisk::new(&history, &labels, 1.0);
    let mut cand = Candidate {
        failure_rate_threshold: Some(0.5),
        window: Window::Time(10),
        minimum_calls: 9,
        consecutive_failures: None,
        slow: None,
        wait: Wait::Fixed(Duration::from_secs(5)),
        half_open: Probes::Successes(1, 1),
        call_timeout: None,
    };
    risk.require_noise_margin(&mut cand);
    let m = f64::from(cand.minimum_calls);
    let Window::Time(secs) = cand.window else {
        panic!("still a time window: {:?}", cand.window);
    };
    // At half a call a second: m + 2·√m calls need twice as many seconds.
    assert_eq!(secs, (2.0 * (m + 2.0 * m.sqrt())).ceil() as u32);
    assert!(secs >= 30, "{secs}");
    // A busy enough window is left alone.
    let mut busy = Candidate {
        window: Window::Time(600),
        ..cand.clone()
    };
    risk.require_noise_margin(&mut busy);
    assert_eq!(busy.window, Window::Time(600));
}

#[test]
fn trips_by_chance_cost_more_over_fewer_calls_and_nearer_the_usual_rate() {
    let (history, labels) = usual_traffic();
    let risk = ProbeRisk::new(&history, &labels, 2.0);
    let over = |window, threshold| Candidate {
        failure_rate_threshold: Some(threshold),
        window,
        minimum_calls: 10,
        ..rate_only()
    };
    // 5,000 usual calls in disjoint windows of 20, each reaching 30 % (6 of 20) with the
    // binomial chance at the usual 10 %; each trip at 60 s of 10 calls a second.
    let twenty = over(Window::Count(20), 0.3);
    let expected = 5_000.0 / 20.0 * binomial_tail(20, 6, 0.1) * 60.0 * 10.0;
    let cost = risk.chance_trip_cost(&twenty, 60.0);
    assert!(
        (cost - expected).abs() < 1e-9 * expected,
        "{cost} against {expected}"
    );
    // A 10 s window judges 100 calls: 30 % of them is far out of the noise's reach.
    assert!(risk.chance_trip_cost(&over(Window::Time(10), 0.3), 60.0) < cost / 1_000.0);
    // A threshold nearer the usual rate trips by chance more often.
    assert!(risk.chance_trip_cost(&over(Window::Count(20), 0.2), 60.0) > 5.0 * cost);
    // Without a penalty for false trips (the oracle's search), nothing.
    assert_eq!(risk.chance_trip_cost(&twenty, 0.0), 0.0);
}
