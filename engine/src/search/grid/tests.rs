//! The grid's values per parameter: each parameter's variants, in order; the coarse grid
//! and the safety bounds.

use breaker::{Wait, Window};

use super::{Grid, Param};
use crate::search::tests::{rate_only, secs};
use crate::search::{Candidate, Probes};

fn small_grid() -> Grid {
    Grid {
        failure_rate_thresholds: vec![None, Some(0.2), Some(0.5)],
        windows: vec![Window::Time(10), Window::Count(50)],
        minimum_calls: vec![5, 20],
        consecutive_failures: vec![None, Some(5)],
        slow_call_durations_ms: vec![200, 500],
        slow_call_rates: vec![0.1, 0.3],
        waits: vec![Wait::Fixed(secs(1)), Wait::Fixed(secs(60))],
        half_open: vec![Probes::Successes(1, 1), Probes::Successes(3, 1)],
    }
}

#[test]
fn each_param_varies_its_own_field_in_the_grids_order() {
    let grid = small_grid();
    let cand = rate_only();
    let variants = |param| grid.variants(&cand, param);
    assert_eq!(
        variants(Param::FailureRate),
        [None, Some(0.2), Some(0.5)].map(|v| Candidate {
            failure_rate_threshold: v,
            ..cand.clone()
        })
    );
    assert_eq!(
        variants(Param::Window),
        [Window::Time(10), Window::Count(50)].map(|v| Candidate {
            window: v,
            ..cand.clone()
        })
    );
    assert_eq!(
        variants(Param::MinimumCalls),
        [5, 20].map(|v| Candidate {
            minimum_calls: v,
            ..cand.clone()
        })
    );
    assert_eq!(
        variants(Param::ConsecutiveFailures),
        [None, Some(5)].map(|v| Candidate {
            consecutive_failures: v,
            ..cand.clone()
        })
    );
    assert_eq!(
        variants(Param::Wait),
        [Wait::Fixed(secs(1)), Wait::Fixed(secs(60))].map(|v| Candidate {
            wait: v,
            ..cand.clone()
        })
    );
    assert_eq!(
        variants(Param::HalfOpen),
        [Probes::Successes(1, 1), Probes::Successes(3, 1)].map(|v| Candidate {
            half_open: v,
            ..cand.clone()
        })
    );
}

#[test]
fn the_slow_call_policy_is_off_or_each_duration_at_three_rates() {
    let grid = small_grid();
    let off = rate_only();
    let slow: Vec<Option<(u32, f64)>> = grid
        .variants(&off, Param::SlowCall)
        .into_iter()
        .map(|c| c.slow)
        .collect();
    assert_eq!(
        slow,
        [
            None,
            Some((200, 0.2)),
            Some((200, 0.5)),
            Some((200, 0.8)),
            Some((500, 0.2)),
            Some((500, 0.5)),
            Some((500, 0.8)),
        ]
    );
    // Its rate is varied only while the policy is on, at the duration it has.
    assert_eq!(grid.variants(&off, Param::SlowCallRate), []);
    let on = Candidate {
        slow: Some((500, 0.5)),
        ..rate_only()
    };
    assert_eq!(
        grid.variants(&on, Param::SlowCallRate),
        [0.1, 0.3].map(|rate| Candidate {
            slow: Some((500, rate)),
            ..on.clone()
        })
    );
}

#[test]
fn the_descent_visits_the_params_in_this_order() {
    // The order decides which of two improvements is found first, and so the result.
    assert_eq!(
        format!("{:?}", Param::ALL),
        "[FailureRate, Window, MinimumCalls, ConsecutiveFailures, SlowCall, SlowCallRate, Wait, HalfOpen]"
    );
}

#[test]
fn a_coarse_grid_keeps_every_other_value_and_the_last() {
    let grid = Grid {
        minimum_calls: vec![1, 2, 3, 5],
        windows: vec![Window::Time(1), Window::Time(2), Window::Time(5)],
        half_open: vec![
            Probes::Successes(1, 1),
            Probes::Successes(2, 2),
            Probes::Successes(3, 3),
            Probes::Successes(3, 1),
            Probes::Rates(5),
            Probes::Rates(10),
        ],
        ..small_grid()
    }
    .coarse();
    assert_eq!(grid.minimum_calls, [1, 3, 5]);
    assert_eq!(grid.windows, [Window::Time(1), Window::Time(5)]);
    assert_eq!(grid.failure_rate_thresholds, [None, Some(0.5)]);
    assert_eq!(
        grid.half_open,
        [
            Probes::Successes(1, 1),
            Probes::Successes(3, 3),
            Probes::Rates(5),
            Probes::Rates(10)
        ]
    );
}

#[test]
fn the_safety_bounds_drop_judging_on_few_calls_and_needing_many_probes() {
    let grid = Grid {
        windows: vec![
            Window::Time(1),
            Window::Time(5),
            Window::Count(5),
            Window::Count(10),
        ],
        minimum_calls: vec![1, 3, 5, 20],
        consecutive_failures: vec![None, Some(1), Some(3)],
        half_open: vec![
            Probes::Successes(1, 1),
            Probes::Successes(3, 3),
            Probes::Successes(5, 5),
            Probes::Successes(20, 20),
            Probes::Successes(3, 1),
            Probes::Rates(10),
        ],
        ..small_grid()
    }
    .within_safety_bounds();
    assert_eq!(grid.windows, [Window::Time(5), Window::Count(10)]);
    assert_eq!(grid.minimum_calls, [5, 20]);
    assert_eq!(grid.consecutive_failures, [None, Some(3)]);
    // Up to ten successes in a row stay (the search prices each failed probe's further
    // waits); probes judged by their rates need no successes in a row, so any number stays.
    assert_eq!(
        grid.half_open,
        [
            Probes::Successes(1, 1),
            Probes::Successes(3, 3),
            Probes::Successes(5, 5),
            Probes::Successes(3, 1),
            Probes::Rates(10)
        ]
    );
}

#[test]
fn joint_moves_pair_the_values_near_the_current_ones() {
    let waits: Vec<Wait> = (1..=9).map(|s| Wait::Fixed(secs(s))).collect();
    let grid = Grid {
        waits: waits.clone(),
        windows: (1..=9).map(Window::Time).collect(),
        minimum_calls: vec![1, 2, 3, 5, 10, 20, 50, 100, 200],
        ..small_grid()
    };
    let cand = Candidate {
        wait: Wait::Fixed(secs(2)),
        window: Window::Time(9),
        minimum_calls: 10,
        ..rate_only()
    };
    // Waits within three places of 2 s (1–5 s), each with every probe setting.
    let pairs: Vec<(Wait, Probes)> = grid
        .variants(&cand, Param::WaitAndProbes)
        .into_iter()
        .map(|c| (c.wait, c.half_open))
        .collect();
    let expected: Vec<(Wait, Probes)> = waits[..5]
        .iter()
        .flat_map(|&w| [(w, Probes::Successes(1, 1)), (w, Probes::Successes(3, 1))])
        .collect();
    assert_eq!(pairs, expected);
    // Windows 6–9 s (9 s is the last of the list) with minimums 2–100.
    let pairs: Vec<(Window, u32)> = grid
        .variants(&cand, Param::WindowAndMinimum)
        .into_iter()
        .map(|c| (c.window, c.minimum_calls))
        .collect();
    let expected: Vec<(Window, u32)> = (6..=9)
        .flat_map(|s| [2, 3, 5, 10, 20, 50, 100].map(|m| (Window::Time(s), m)))
        .collect();
    assert_eq!(pairs, expected);
    // A value off the grid pairs with every value of the list.
    let off_grid = Candidate {
        wait: Wait::Fixed(secs(30)),
        ..cand
    };
    assert_eq!(grid.variants(&off_grid, Param::WaitAndProbes).len(), 9 * 2);
}
