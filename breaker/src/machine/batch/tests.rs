//! Batches recorded at once against the same calls recorded one by one.

use std::time::Duration;

use crate::config::Window;
use crate::{Admission, Batch, Config, Machine, Outcome};

/// Pattern of (failed, slow) for call `i` of a batch: every `every`-th call fails.
fn outcome(every: u32) -> impl Fn(u32) -> (bool, bool) {
    move |i| (i % every == every - 1, false)
}

fn one_by_one(m: &mut Machine, now: Duration, n: u32, outcome: &impl Fn(u32) -> (bool, bool)) {
    for i in 0..n {
        let (admission, _) = m.acquire(now);
        let Admission::Granted(granted) = admission else {
            panic!("rejected");
        };
        let (failed, _) = outcome(i);
        let result = if failed {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        assert_eq!(m.record(now, granted, result, Duration::ZERO), None);
    }
}

#[test]
fn a_quiet_batch_ends_where_one_call_at_a_time_ends() {
    for window in [Window::Count(50), Window::Time(10)] {
        let config = Config::builder()
            .failure_rate_threshold(0.5)
            .consecutive_failures(5)
            .window(window)
            .minimum_calls(10)
            .build()
            .unwrap();
        let (mut batched, mut single) = (
            Machine::new(config.clone(), Duration::ZERO, 1),
            Machine::new(config, Duration::ZERO, 1),
        );
        let mut n_quiet = 0;
        for second in 0..30 {
            let now = Duration::from_secs(second);
            // 40 calls, every fourth failing: a quarter, never half; runs of one failure.
            let batch = Batch {
                now,
                n: 40,
                n_failed: 10,
                n_slow: 0,
            };
            if batched.try_record_quiet(batch, outcome(4)) {
                n_quiet += 1;
            } else {
                one_by_one(&mut batched, now, 40, &outcome(4));
            }
            one_by_one(&mut single, now, 40, &outcome(4));
            assert_eq!(batched.totals(now), single.totals(now), "{window:?}");
            assert_eq!(
                batched.consecutive_failures(),
                single.consecutive_failures()
            );
        }
        // The bound refuses the first batch (ten failures could come first, and the
        // minimum is ten calls), and none after.
        assert_eq!(n_quiet, 29, "{window:?}");
        // Ends on a failure: the run carries into the next batch.
        assert_eq!(batched.consecutive_failures(), 1);
    }
}

#[test]
fn a_batch_that_could_trip_is_refused_and_changes_nothing() {
    let config = Config::builder()
        .failure_rate_threshold(0.5)
        .consecutive_failures(5)
        .window(Window::Time(10))
        .minimum_calls(10)
        .build()
        .unwrap();
    let mut m = Machine::new(config, Duration::ZERO, 1);
    let now = Duration::from_secs(1);
    assert!(m.try_record_quiet(
        Batch {
            now,
            n: 20,
            n_failed: 4,
            n_slow: 0
        },
        outcome(5)
    ));
    // The batch ends on a failure.
    assert_eq!(m.consecutive_failures(), 1);
    let before = m.totals(now);
    // 4 + 8 failures over the 21 calls the window will hold at least could be half.
    let risky = Batch {
        now,
        n: 16,
        n_failed: 8,
        n_slow: 0,
    };
    assert!(!m.try_record_quiet(risky, outcome(2)));
    assert_eq!(m.totals(now), before);
    // 4 + 2 over 21 cannot, and the run (1 + 2) cannot reach 5.
    let two = Batch {
        now,
        n: 2,
        n_failed: 2,
        n_slow: 0,
    };
    assert!(m.try_record_quiet(two, |_| (true, false)));
    assert_eq!(m.consecutive_failures(), 3);
    // Two more failures could make 5 in a row.
    assert!(!m.try_record_quiet(two, |_| (true, false)));
    assert_eq!(m.consecutive_failures(), 3);
    assert_eq!(m.totals(now).n_calls, 22);
}
