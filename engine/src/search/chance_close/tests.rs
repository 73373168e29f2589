//! Tests of the chance that probes pass during an incident, and what it costs.

use std::time::Duration;

use breaker::{Config, HalfOpenRule, Wait, Window};

use super::{Shares, calls_until_tripped, chance_close_cost, pass_chance};
use crate::history::{History, Step};
use crate::replay;
use crate::scenario::Span;

/// `n` steps of a second, each of `calls` calls of which `failures(i)` fail.
fn steps(n: u64, calls: u32, failures: impl Fn(u64) -> u32) -> History {
    History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![10],
        steps: (0..n)
            .map(|i| Step {
                t_ms: i * 1_000,
                n_calls: calls,
                n_failures: failures(i),
                n_rejected: 0,
                latency_counts: vec![calls],
            })
            .collect(),
    }
}

fn shares(failed: f64) -> Shares {
    Shares { failed, slow: 0.0 }
}

/// Trips at 10 % over the last `window` calls once it holds `minimum`; closes after
/// `successes` in a row.
fn probing_over(window: u32, minimum: u32, successes: u32) -> Config {
    Config::builder()
        .failure_rate_threshold(0.1)
        .window(Window::Count(window))
        .minimum_calls(minimum)
        .wait(Wait::Fixed(Duration::from_secs(2)))
        .half_open_probes(successes)
        .half_open_successes(successes)
        .build()
        .unwrap()
}

/// Trips at 10 % over at least 100 calls; closes after `successes` in a row.
fn probing(successes: u32) -> Config {
    probing_over(200, 100, successes)
}

#[test]
fn probes_pass_by_chance_as_often_as_the_shares_say() {
    let five = probing(5);
    assert!((pass_chance(&five, shares(0.25)) - 0.75f64.powi(5)).abs() < 1e-12);
    assert_eq!(pass_chance(&five, shares(1.0)), 0.0);
    // Ten probes judged by rate close below 10 % failures: none of ten may fail.
    let rates = Config::builder()
        .failure_rate_threshold(0.1)
        .half_open_probes(10)
        .half_open_rule(HalfOpenRule::Rates)
        .build()
        .unwrap();
    assert!((pass_chance(&rates, shares(0.25)) - 0.75f64.powi(10)).abs() < 1e-12);
    // A rate at the threshold trips again after the minimum of calls; below every
    // threshold, never.
    assert_eq!(calls_until_tripped(&five, shares(0.25)), 100.0);
    assert_eq!(calls_until_tripped(&five, shares(0.05)), f64::INFINITY);
}

#[test]
fn a_partial_failure_prices_the_probes_that_would_pass_and_a_full_outage_none() {
    // Two minutes at 100 calls a second; a quarter of them fail, then all of them.
    let history = |n_failing: u32| {
        steps(
            240,
            100,
            move |i| if (60..180).contains(&i) { n_failing } else { 0 },
        )
    };
    let incident = [Span {
        start_ms: 60_000,
        end_ms: 180_000,
    }];
    let priced = |n_failing: u32, config: &Config| {
        let history = history(n_failing);
        let res = replay::replay(&history, 0..history.len(), config);
        chance_close_cost(&history, &res.transitions, &incident, config, 0)
    };
    // Evenly laid out, five probes in a row never pass a quarter failing: every try failed,
    // and each would pass a quarter of the time and let 100 calls through.
    let partial = priced(25, &probing(5));
    let tries = {
        let history = history(25);
        let res = replay::replay(&history, 0..history.len(), &probing(5));
        res.transitions
            .iter()
            .filter(|tr| tr.to == breaker::State::HalfOpen)
            .filter(|tr| (60_000..180_000).contains(&(tr.at.as_millis() as u64)))
            .count() as f64
    };
    assert!(tries > 30.0, "{tries} tries");
    let each = 0.75f64.powi(5) * replay::WASTED_WEIGHT * 100.0;
    assert!(
        (partial - tries * each).abs() <= 2.0 * each,
        "{partial} against {tries} × {each}"
    );
    // Ten in a row pass less often, so cost less; a hard outage fails every probe in any order.
    assert!(priced(25, &probing(10)) < partial / 4.0);
    assert_eq!(priced(100, &probing(5)), 0.0);
}

#[test]
fn a_breaker_closed_early_in_a_creeping_incident_is_let_run_until_the_shares_trip_it() {
    // Failures at 2, 4, 6 … per 100 calls: the 10 % rule trips from the fifth step on.
    let history = steps(20, 100, |i| 2 * (i as u32 + 1));
    let config = probing(5);
    let totals = super::Totals::of(&history, &config);
    // Four steps below 10 % let all their calls through, then the minimum of calls.
    assert_eq!(
        super::calls_let_through(&totals, 0, 0..20, &config),
        400.0 + 100.0
    );
    // Past the rise, only the minimum; below it to the end, every call left.
    assert_eq!(super::calls_let_through(&totals, 10, 0..20, &config), 100.0);
    assert_eq!(super::calls_let_through(&totals, 0, 0..3, &config), 300.0);
}

#[test]
fn at_low_volume_a_share_is_judged_over_the_steps_around() {
    // One call a second, every fourth failing: a step's own share is 0 or 1.
    let history = steps(1_000, 1, |i| u32::from(i % 4 == 0));
    let totals = super::Totals::of(&history, &probing(5));
    let around = totals.shares_around(500, 0..1_000);
    assert!((around.failed - 0.25).abs() < 0.02, "{around:?}");
    // At the incident's edge the window widens inwards only.
    let edge = totals.shares_around(0, 0..1_000);
    assert!((edge.failed - 0.25).abs() < 0.03, "{edge:?}");
    // Fewer calls than judged in all: all of them.
    let few = totals.shares_around(2, 0..8);
    assert_eq!(few.failed, 2.0 / 8.0);
}

#[test]
fn steps_of_a_few_calls_are_not_priced() {
    // Eight calls a second, two failing: as laid out evenly as in any order.
    let history = steps(240, 8, |i| if (60..180).contains(&i) { 2 } else { 0 });
    let incident = [Span {
        start_ms: 60_000,
        end_ms: 180_000,
    }];
    let config = probing_over(20, 10, 5);
    let res = replay::replay(&history, 0..history.len(), &config);
    let failed_tries = res
        .transitions
        .windows(2)
        .filter(|pair| pair[0].to == breaker::State::HalfOpen && pair[1].to == breaker::State::Open)
        .count();
    assert!(failed_tries > 10, "{failed_tries}");
    assert_eq!(
        chance_close_cost(&history, &res.transitions, &incident, &config, 0),
        0.0
    );
}
