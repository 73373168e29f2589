//! Tests of the expected tail: what it prices, and that it no longer depends on where an
//! incident's end falls within the probe cycle.

use breaker::{Config, Wait};

use super::expected_minus_replayed;
use crate::replay::{self, Steps};
use crate::search::descent::{Pricing, cost_on};
use crate::search::tests::{rate_only, secs, steady_history, with_outage};
use crate::search::{Candidate, EvalSet};

/// Ten minutes of 100 calls a second, none failing, but for an outage (every call failing,
/// labelled an incident) of `seconds` from 120 s.
fn outage(seconds: usize) -> EvalSet {
    with_outage(
        steady_history(600, 100, 0, &[10], &[100]),
        120..120 + seconds,
    )
}

fn waiting(seconds: u64) -> Config {
    Candidate {
        wait: Wait::Fixed(secs(seconds)),
        ..rate_only()
    }
    .to_config()
    .unwrap()
}

fn cost(set: &EvalSet, config: &Config, expected_tails: bool) -> f64 {
    let pricing = Pricing {
        false_trip_penalty_s: 0.0,
        expected_tails,
        chance_closes: false,
    };
    cost_on(
        (set, &Steps::new(&set.history)),
        config,
        1,
        0,
        pricing,
        &mut 0,
        f64::INFINITY,
    )
}

#[test]
fn a_tail_costs_the_same_wherever_the_incident_ends_in_the_probe_cycle() {
    let config = waiting(5);
    let lengths = 60..65;
    let drawn: Vec<f64> = lengths
        .clone()
        .map(|n| cost(&outage(n), &config, false))
        .collect();
    let expected: Vec<f64> = lengths
        .clone()
        .map(|n| cost(&outage(n), &config, true))
        .collect();
    let spread = |costs: &[f64]| {
        costs.iter().copied().fold(f64::MIN, f64::max)
            - costs.iter().copied().fold(f64::MAX, f64::min)
    };
    // As drawn, the tail is 0 to 4 s of 100 calls, as the end falls.
    assert!(spread(&drawn) >= 350.0, "{drawn:?}");
    // Expected, it is the same (but for a probe more or less, 0.2 each).
    assert!(spread(&expected) <= 5.0, "{expected:?}");
    // And it is half the cycle: the calls refused after the end, until a step admits one,
    // plus the correction, are those of 2.5 s (a cycle being the 5 s wait and the wait for
    // the next call, at most 10 ms), to within a call.
    for n in lengths {
        let set = outage(n);
        let res = replay::replay(&set.history, 0..set.history.len(), &config);
        let end = 120 + n;
        let mut refused = 0;
        for (&rejected, &admitted) in res.rejected[end..].iter().zip(&res.admitted[end..]) {
            refused += rejected;
            if admitted > 0 {
                break;
            }
        }
        let tail = f64::from(refused)
            + expected_minus_replayed(&set.history, &res.transitions, &set.incidents, 0);
        assert!((249.0..=251.5).contains(&tail), "{n} s: {tail}");
    }
}

#[test]
fn a_shorter_wait_has_a_shorter_expected_tail() {
    let set = outage(63);
    let short = cost(&set, &waiting(2), true);
    let long = cost(&set, &waiting(10), true);
    // 1 s against 5 s of 100 calls, less the probes the shorter wait wastes (about 25
    // more at 0.2).
    assert!(long - short >= 300.0, "2 s: {short}, 10 s: {long}");
}

#[test]
fn only_an_incident_that_ends_with_the_breaker_open_has_a_tail() {
    let set = outage(63);
    // The incident ends before the scored steps: nothing to price.
    let res = replay::replay(&set.history, 0..set.history.len(), &waiting(5));
    assert_ne!(
        expected_minus_replayed(&set.history, &res.transitions, &set.incidents, 0),
        0.0
    );
    assert_eq!(
        expected_minus_replayed(&set.history, &res.transitions, &set.incidents, 200_000),
        0.0
    );
    // A breaker that never opens refuses nothing after it.
    let never = Candidate {
        failure_rate_threshold: Some(1.0),
        minimum_calls: 100_000,
        ..rate_only()
    };
    let res = replay::replay(
        &set.history,
        0..set.history.len(),
        &never.to_config().unwrap(),
    );
    assert!(res.transitions.is_empty());
    assert_eq!(
        expected_minus_replayed(&set.history, &res.transitions, &set.incidents, 0),
        0.0
    );
}
