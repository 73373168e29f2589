//! The windows against a plain model of what they should hold.

use std::time::Duration;

use proptest::prelude::*;

use super::{Totals, Window, flags};
use crate::config;

/// What a time-based window of `n` seconds should hold at `latest`: every call recorded in
/// a second after `latest - n`.
fn expected(calls: &[(u64, Totals)], n: u64, latest: u64) -> Totals {
    let mut sum = Totals::default();
    for (second, totals) in calls {
        if second + n > latest {
            sum.n_calls += totals.n_calls;
            sum.n_failures += totals.n_failures;
            sum.n_slow += totals.n_slow;
        }
    }
    sum
}

#[derive(Clone, Debug)]
enum Op {
    /// One call, `gap` seconds after the latest.
    Push { gap: u64, failed: bool, slow: bool },
    /// A second's calls at once, `gap` seconds after the latest.
    Second { gap: u64, n: u64, failed: u64 },
    /// Successes `back` seconds before the latest.
    Successes { back: u64, n: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    // Gaps from none to far past any window, most of them short.
    let gap = prop_oneof![4 => 0..3u64, 2 => 0..40u64, 1 => 0..700u64];
    prop_oneof![
        4 => (gap.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(gap, failed, slow)| Op::Push { gap, failed, slow }),
        2 => (gap, 1..50u64, 0..50u64).prop_map(|(gap, n, failed)| Op::Second {
            gap,
            n,
            failed: failed.min(n)
        }),
        1 => (0..400u64, 0..20u64).prop_map(|(back, n)| Op::Successes { back, n }),
    ]
}

proptest! {
    /// Expiring only the seconds that held calls keeps the same totals as summing the
    /// window's seconds afresh, through gaps of any length and seconds recorded late.
    #[test]
    fn a_time_window_holds_exactly_its_last_seconds(
        n in prop_oneof![Just(1u32), 2..8u32, 50..400u32],
        resized_to in prop_oneof![Just(1u32), 2..8u32, 50..400u32],
        ops in prop::collection::vec(op(), 1..300),
    ) {
        let mut window = Window::new(config::Window::Time(n));
        let n = u64::from(n);
        let mut calls: Vec<(u64, Totals)> = Vec::new();
        let mut latest = 0u64;
        for op in ops {
            match op {
                Op::Push { gap, failed, slow } => {
                    latest += gap;
                    window.push(Duration::from_millis(latest * 1000 + 999), flags(failed, slow));
                    calls.push((latest, Totals {
                        n_calls: 1,
                        n_failures: u64::from(failed),
                        n_slow: u64::from(slow),
                    }));
                }
                Op::Second { gap, n: n_calls, failed } => {
                    latest += gap;
                    let add = Totals { n_calls, n_failures: failed, n_slow: n_calls - failed };
                    prop_assert!(window.push_second(latest, add).is_some());
                    calls.push((latest, add));
                }
                Op::Successes { back, n: n_calls } => {
                    let second = latest.saturating_sub(back);
                    window.push_successes(second, n_calls);
                    // Seconds already out of the window are not recorded.
                    if second + n > latest {
                        calls.push((second, Totals { n_calls, ..Totals::default() }));
                    }
                }
            }
            prop_assert_eq!(
                window.totals(Duration::from_secs(latest)),
                expected(&calls, n, latest)
            );
        }
        // A window resized keeps the calls both sizes hold.
        let resized = window.resized(
            config::Window::Time(resized_to),
            Duration::from_secs(latest),
        );
        prop_assert_eq!(
            resized.clone().totals(Duration::from_secs(latest)),
            expected(&calls, n.min(u64::from(resized_to)), latest)
        );
        // And as time runs on, everything expires.
        for later in [latest + 1, latest + 1 + n / 2, latest + 1 + n, latest + 3 * n] {
            prop_assert_eq!(
                window.totals(Duration::from_secs(later)),
                expected(&calls, n, later)
            );
        }
    }
}
