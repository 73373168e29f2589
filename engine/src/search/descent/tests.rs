//! Which candidate beats which, the descent's choices on a small outage, and what a false
//! trip costs.

use std::time::Duration;

use breaker::{Config, Wait, Window};

use super::{Pricing, better, cost_on};
use crate::history::{History, Step};
use crate::replay;
use crate::replay::Steps;
use crate::search::tests::{rate_only, secs, steady_history, with_outage};
use crate::search::{Candidate, EvalSet, Grid, Probes, Search, SearchOptions};

#[test]
fn a_candidate_is_better_by_a_margin_or_at_equal_cost_with_fewer_moving_parts() {
    let simple = rate_only();
    let complex = Candidate {
        consecutive_failures: Some(5),
        ..rate_only()
    };
    let other_simple = Candidate {
        window: Window::Count(100),
        ..rate_only()
    };
    // Against a cost of 100 the margin is 1 % + 0.5.
    assert!(better(98.4, &complex, 100.0, &simple));
    assert!(!better(98.6, &other_simple, 100.0, &simple));
    assert!(!better(98.6, &complex, 100.0, &simple));
    // At equal cost (to 1e-9) the simpler one wins, and only it.
    assert!(better(100.0, &simple, 100.0, &complex));
    assert!(better(100.0 + 1e-10, &simple, 100.0, &complex));
    assert!(!better(100.001, &simple, 100.0, &complex));
    assert!(!better(100.0, &complex, 100.0, &simple));
    assert!(!better(100.0, &other_simple, 100.0, &simple));
    // An invalid candidate (infinite cost) never wins.
    assert!(!better(f64::INFINITY, &simple, f64::INFINITY, &complex));
    assert!(!better(f64::NAN, &simple, 100.0, &complex));
}

/// Twenty minutes of 100 calls a second, none failing, with a two-minute outage (every call
/// failing, labelled an incident) from 600 s.
fn outage_set() -> EvalSet {
    with_outage(
        steady_history(1_200, 100, 0, &[10, 100], &[100, 0]),
        600..720,
    )
}

/// A grid holding only `start`'s values, but for the given waits and slow-call durations.
fn grid_around(start: &Candidate, waits: Vec<Wait>, slow_call_durations_ms: Vec<u32>) -> Grid {
    Grid {
        failure_rate_thresholds: vec![start.failure_rate_threshold],
        windows: vec![start.window],
        minimum_calls: vec![start.minimum_calls],
        consecutive_failures: vec![start.consecutive_failures],
        slow_call_durations_ms,
        slow_call_rates: vec![0.5],
        waits,
        half_open: vec![start.half_open],
    }
}

/// [`cost_on`] over the whole set, scored from its start, without thinning.
fn cost(set: &EvalSet, config: &Config, penalty_s: f64, calls: &mut u64, bound: f64) -> f64 {
    cost_on(
        (set, &Steps::new(&set.history)),
        config,
        1,
        0,
        Pricing {
            false_trip_penalty_s: penalty_s,
            expected_tails: false,
            chance_closes: false,
        },
        calls,
        bound,
    )
}

#[test]
fn the_descent_takes_the_cheaper_wait() {
    let mut search = Search::from_sets(vec![outage_set()], SearchOptions::default());
    let start = Candidate {
        wait: Wait::Fixed(secs(60)),
        ..rate_only()
    };
    let grid = grid_around(
        &start,
        vec![Wait::Fixed(secs(1)), Wait::Fixed(secs(60))],
        Vec::new(),
    );
    let start_cost = search.screen_cost(&start, f64::INFINITY);
    let (cost, best) = search.descend(&grid, start_cost, start.clone(), true);
    // After the outage a 60 s wait refuses up to a minute of good calls; 1 s, about one.
    assert_eq!(
        best,
        Candidate {
            wait: Wait::Fixed(secs(1)),
            ..start
        }
    );
    assert!(cost + 100.0 < start_cost, "{cost} against {start_cost}");
}

#[test]
fn at_equal_cost_the_descent_drops_a_policy_that_never_fires() {
    // No call takes 100 ms or more, so the slow-call policy changes nothing but its
    // complexity: turning it off (or keeping any rate) costs the same.
    let mut search = Search::from_sets(vec![outage_set()], SearchOptions::default());
    let start = Candidate {
        slow: Some((100, 0.5)),
        ..rate_only()
    };
    let grid = grid_around(&start, vec![start.wait], vec![100]);
    let start_cost = search.screen_cost(&start, f64::INFINITY);
    let off = Candidate {
        slow: None,
        ..start.clone()
    };
    assert_eq!(search.screen_cost(&off, f64::INFINITY), start_cost);
    let (cost, best) = search.descend(&grid, start_cost, start, true);
    assert_eq!(best, off);
    assert_eq!(cost, start_cost);
}

/// Ten minutes of 100 calls a second, with a 5-second burst of failures (labelled healthy:
/// noise) at 200 s.
fn noisy_set() -> EvalSet {
    let steps = (0..600u64)
        .map(|i| Step {
            t_ms: i * 1_000,
            n_calls: 100,
            n_failures: if (200..205).contains(&i) { 60 } else { 1 },
            n_rejected: 0,
            latency_counts: vec![100, 0],
        })
        .collect();
    let history = History {
        step: Duration::from_secs(1),
        latency_buckets_ms: vec![10, 100],
        steps,
    };
    EvalSet {
        name: "noise",
        healthy: vec![true; history.len()],
        incidents: Vec::new(),
        history,
    }
}

#[test]
fn a_false_trip_costs_the_penalty_on_top_of_the_calls_it_refused() {
    let set = noisy_set();
    let touchy = Config::builder()
        .failure_rate_threshold(0.5)
        .window(Window::Count(20))
        .minimum_calls(20)
        .wait_duration(Duration::from_secs(1))
        .half_open_probes(1)
        .half_open_successes(1)
        .build()
        .unwrap();
    let mut calls = 0;
    let plain = cost(&set, &touchy, 0.0, &mut calls, f64::INFINITY);
    let priced = cost(&set, &touchy, 60.0, &mut calls, f64::INFINITY);
    let res = replay::replay(&set.history, 0..set.history.len(), &touchy);
    let trips = replay::score(&set.history, &res, &set.healthy, &set.incidents).false_trips;
    assert!(trips > 0, "the burst trips this config");
    // 60 s at the set's mean rate of 100 calls a second, per false trip.
    assert!((priced - plain - f64::from(trips) * 6_000.0).abs() < 1e-6);
    // A config that rides the burst out pays nothing extra.
    let calm = Config::builder()
        .failure_rate_threshold(0.9)
        .window(Window::Count(20))
        .minimum_calls(20)
        .build()
        .unwrap();
    assert_eq!(
        cost(&set, &calm, 60.0, &mut calls, f64::INFINITY),
        cost(&set, &calm, 0.0, &mut calls, f64::INFINITY)
    );
}

#[test]
fn a_replay_gives_up_once_its_cost_passes_the_bound_and_reports_a_lower_bound() {
    let set = outage_set();
    let slow_to_close = Candidate {
        wait: Wait::Fixed(secs(60)),
        ..rate_only()
    }
    .to_config()
    .unwrap();
    let (mut all_calls, mut some_calls) = (0, 0);
    let exact = cost(&set, &slow_to_close, 0.0, &mut all_calls, f64::INFINITY);
    assert!(exact > 100.0, "{exact}");
    let bound = exact / 2.0;
    let given_up = cost(&set, &slow_to_close, 0.0, &mut some_calls, bound);
    assert!(
        given_up > bound && given_up < exact,
        "{given_up} of {exact}"
    );
    assert!(
        some_calls < all_calls,
        "{some_calls} of {all_calls} calls replayed"
    );
    // A bound the whole cost stays under changes nothing.
    let mut calls = 0;
    assert_eq!(cost(&set, &slow_to_close, 0.0, &mut calls, exact), exact);
    assert_eq!(calls, all_calls);
}

#[test]
fn giving_replays_up_and_joint_moves_from_fewer_end_points_choose_the_same_config_here() {
    let grid = Grid {
        failure_rate_thresholds: vec![Some(0.2), Some(0.5), Some(0.8)],
        windows: vec![Window::Time(5), Window::Time(10), Window::Count(50)],
        minimum_calls: vec![5, 10, 20],
        consecutive_failures: vec![None, Some(5)],
        slow_call_durations_ms: Vec::new(),
        slow_call_rates: vec![0.5],
        waits: vec![
            Wait::Fixed(secs(1)),
            Wait::Fixed(secs(5)),
            Wait::Fixed(secs(60)),
        ],
        half_open: vec![Probes::Successes(1, 1), Probes::Successes(3, 3)],
    };
    let seeds = [
        Candidate {
            wait: Wait::Fixed(secs(60)),
            ..rate_only()
        },
        Candidate {
            failure_rate_threshold: Some(0.8),
            half_open: Probes::Successes(3, 3),
            ..rate_only()
        },
        Candidate {
            consecutive_failures: Some(5),
            ..rate_only()
        },
    ];
    let run = |give_up_factor: f64, joint_starts: usize| {
        let mut search = Search::from_sets(
            vec![outage_set(), noisy_set()],
            SearchOptions {
                inject: false,
                max_rounds: 6,
                n_starts: usize::MAX,
                give_up_factor,
                joint_starts,
                ..SearchOptions::default()
            },
        );
        let found = search.run(&grid, &seeds).unwrap();
        (found.candidate, found.cost, found.replayed_calls)
    };
    let (widest, widest_cost, widest_calls) = run(f64::INFINITY, usize::MAX);
    let (given_up, given_up_cost, given_up_calls) = run(1.0, usize::MAX);
    assert_eq!(given_up, widest);
    assert_eq!(given_up_cost, widest_cost);
    assert!(
        given_up_calls < widest_calls,
        "{given_up_calls} of {widest_calls}"
    );
    let (fewer, fewer_cost, fewer_calls) = run(1.0, 1);
    assert_eq!((fewer, fewer_cost), (widest, widest_cost));
    assert!(fewer_calls <= given_up_calls);
}
