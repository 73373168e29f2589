//! Many threads share one breaker: every call is counted exactly once.

use std::sync::Arc;
use std::time::Duration;

use breaker::{CircuitBreaker, Config, ManualClock, Outcome, Window};

/// More threads than the stripe pool has slots, so shared stripes are exercised too.
const N_THREADS: usize = 24;
const N_CALLS: usize = 5_000;

fn outcome_of(thread: usize, call: usize) -> Outcome {
    match (thread * 31 + call * 7) % 10 {
        0 => Outcome::Failure,
        1 => Outcome::Ignored,
        2 => Outcome::Timeout,
        _ => Outcome::Success,
    }
}

fn hammer(breaker: &CircuitBreaker) -> (u64, u64) {
    let (mut n_admitted, mut n_rejected) = (0, 0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..N_THREADS)
            .map(|thread| {
                scope.spawn(move || {
                    let (mut admitted, mut rejected) = (0u64, 0u64);
                    for call in 0..N_CALLS {
                        match breaker.try_acquire() {
                            Ok(permit) => {
                                admitted += 1;
                                permit.record(outcome_of(thread, call), Duration::from_millis(1));
                            }
                            Err(_) => rejected += 1,
                        }
                    }
                    (admitted, rejected)
                })
            })
            .collect();
        for handle in handles {
            let (admitted, rejected) = handle.join().unwrap();
            n_admitted += admitted;
            n_rejected += rejected;
        }
    });
    (n_admitted, n_rejected)
}

#[test]
fn counts_add_up_when_the_breaker_never_trips() {
    let config = Config::builder()
        .failure_rate_threshold(0.9)
        .window(Window::Count(1_000))
        .build()
        .unwrap();
    let breaker = CircuitBreaker::with_clock("shared", config, Arc::new(ManualClock::default()));
    let (n_admitted, n_rejected) = hammer(&breaker);
    assert_eq!(n_rejected, 0);
    let expected = |wanted: Outcome| {
        (0..N_THREADS)
            .flat_map(|thread| (0..N_CALLS).map(move |call| outcome_of(thread, call)))
            .filter(|&outcome| outcome == wanted)
            .count() as u64
    };
    let counters = breaker.counters();
    assert_eq!(counters.success, expected(Outcome::Success));
    assert_eq!(counters.failure, expected(Outcome::Failure));
    assert_eq!(counters.timeout, expected(Outcome::Timeout));
    assert_eq!(counters.ignored, expected(Outcome::Ignored));
    assert_eq!(n_admitted, (N_THREADS * N_CALLS) as u64);
    // The window is full and holds judged calls only.
    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.window.n_calls, 1_000);
}

#[test]
fn counts_add_up_across_trips() {
    let config = Config::builder()
        .failure_rate_threshold(0.2)
        .window(Window::Count(20))
        .minimum_calls(5)
        .wait_duration(Duration::from_secs(1))
        .build()
        .unwrap();
    let clock = ManualClock::default();
    let breaker = CircuitBreaker::with_clock("shared", config, Arc::new(clock.clone()));
    let (n_admitted, n_rejected) = std::thread::scope(|scope| {
        // Time moves while the threads call, so the breaker opens, probes and closes.
        let ticker = scope.spawn(|| {
            for _ in 0..200 {
                clock.advance(Duration::from_millis(100));
                std::thread::yield_now();
            }
        });
        let counts = hammer(&breaker);
        ticker.join().unwrap();
        counts
    });
    let counters = breaker.counters();
    assert_eq!(n_admitted + n_rejected, (N_THREADS * N_CALLS) as u64);
    assert_eq!(counters.rejected, n_rejected);
    assert_eq!(
        counters.success + counters.failure + counters.timeout + counters.ignored,
        n_admitted
    );
}
