//! Tests of the thread-safe breaker: the fast path, permits, listeners, modes, async calls.

use std::sync::Mutex as StdMutex;

use super::*;
use crate::clock::ManualClock;
use crate::config::{Config, Window as WindowShape};
use crate::events::Interests;

fn config() -> crate::config::ConfigBuilder {
    Config::builder()
        .failure_rate_threshold(0.5)
        .window(WindowShape::Count(10))
        .minimum_calls(4)
        .wait_duration(Duration::from_secs(10))
        .half_open_probes(1)
        .half_open_successes(1)
}

fn breaker(config: crate::config::ConfigBuilder) -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::default();
    let breaker =
        CircuitBreaker::with_clock("payments", config.build().unwrap(), Arc::new(clock.clone()));
    (breaker, clock)
}

fn ok(breaker: &CircuitBreaker) -> Result<(), CallError<()>> {
    breaker.call(|| Ok(()))
}

fn fail(breaker: &CircuitBreaker) -> Result<(), CallError<()>> {
    breaker.call(|| Err(()))
}

#[derive(Default)]
struct Recorder {
    calls: bool,
    events: StdMutex<Vec<String>>,
}

impl Listener for Recorder {
    fn interests(&self) -> Interests {
        Interests {
            transitions: true,
            calls: self.calls,
            latency: false,
        }
    }

    fn on_event(&self, event: &Event<'_>) {
        let text = match event.kind {
            EventKind::Transition(t) => format!(
                "{}@{} {}->{} {}",
                event.breaker,
                event.at_wall_ms,
                t.from.as_str(),
                t.to.as_str(),
                t.trigger.kind.as_str()
            ),
            other => format!("{other:?}"),
        };
        self.events.lock().unwrap().push(text);
    }
}

#[test]
fn fast_path_successes_count_in_the_window_exactly() {
    let (breaker, _clock) = breaker(config());
    for _ in 0..10 {
        ok(&breaker).unwrap();
    }
    // The window holds 10 successes; each failure pushes one out.
    for _ in 0..4 {
        assert!(matches!(fail(&breaker), Err(CallError::Inner(()))));
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.snapshot().failure_rate, Some(0.4));
    fail(&breaker).unwrap_err();
    assert_eq!(breaker.state(), State::Open);
    let counters = breaker.counters();
    assert_eq!((counters.success, counters.failure), (10, 5));
}

#[test]
fn open_rejects_then_a_probe_closes() {
    let (breaker, clock) = breaker(config());
    for _ in 0..4 {
        fail(&breaker).unwrap_err();
    }
    let Err(CallError::Rejected(rejected)) = ok(&breaker) else {
        panic!("expected a rejection")
    };
    assert_eq!(rejected.state, State::Open);
    assert_eq!(rejected.retry_after, Some(Duration::from_secs(10)));
    clock.advance(Duration::from_secs(10));
    assert_eq!(breaker.state(), State::HalfOpen, "noticed without a call");
    let probe = breaker.try_acquire().unwrap();
    assert_eq!(probe.kind(), PermitKind::Probe);
    let Err(rejected) = breaker.try_acquire() else {
        panic!("one probe at a time")
    };
    assert_eq!(
        rejected,
        Rejected {
            state: State::HalfOpen,
            retry_after: None
        }
    );
    probe.record(Outcome::Success, Duration::from_millis(3));
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.counters().rejected, 2);
}

#[test]
fn a_dropped_probe_frees_its_slot() {
    let (breaker, clock) = breaker(config());
    for _ in 0..4 {
        fail(&breaker).unwrap_err();
    }
    clock.advance(Duration::from_secs(10));
    drop(breaker.try_acquire().unwrap());
    assert_eq!(breaker.counters().ignored, 1);
    assert_eq!(breaker.try_acquire().unwrap().kind(), PermitKind::Probe);
}

#[test]
fn listeners_hear_transitions_with_wall_time() {
    let (breaker, clock) = breaker(config());
    let recorder = Arc::new(Recorder::default());
    breaker.add_listener(recorder.clone());
    clock.advance(Duration::from_millis(1_500));
    for _ in 0..4 {
        fail(&breaker).unwrap_err();
    }
    clock.advance(Duration::from_secs(10));
    ok(&breaker).unwrap();
    let start = ManualClock::default().wall_ms();
    assert_eq!(
        *recorder.events.lock().unwrap(),
        [
            format!("payments@{} closed->open failure_rate", start + 1_500),
            format!("payments@{} open->half_open wait_elapsed", start + 11_500),
            format!(
                "payments@{} half_open->closed probe_succeeded",
                start + 11_500
            ),
        ]
    );
}

#[test]
fn call_listeners_hear_every_call() {
    let (breaker, _clock) = breaker(
        config()
            .slow_call_rate_threshold(1.0)
            .slow_call_duration(Duration::from_millis(5)),
    );
    let recorder = Arc::new(Recorder {
        calls: true,
        ..Recorder::default()
    });
    breaker.add_listener(recorder.clone());
    ok(&breaker).unwrap();
    breaker
        .try_acquire()
        .unwrap()
        .record(Outcome::Success, Duration::from_millis(7));
    fail(&breaker).unwrap_err();
    let events = recorder.events.lock().unwrap().clone();
    assert_eq!(
        events,
        [
            "Success { latency: 0ns }",
            "Success { latency: 7ms }",
            "Slow { latency: 7ms }",
            "Failure { latency: 0ns }",
        ]
    );
}

#[test]
fn set_config_keeps_the_window_and_applies_the_new_threshold() {
    let (breaker, _clock) = breaker(config());
    for _ in 0..6 {
        ok(&breaker).unwrap();
    }
    fail(&breaker).unwrap_err();
    fail(&breaker).unwrap_err();
    breaker.set_config(
        config()
            .version(7)
            .failure_rate_threshold(0.3)
            .build()
            .unwrap(),
    );
    assert_eq!(breaker.config().version(), 7);
    assert_eq!(breaker.snapshot().window.n_calls, 8);
    fail(&breaker).unwrap_err();
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_success_after_a_stricter_config_is_judged() {
    let (breaker, _clock) = breaker(config());
    for _ in 0..3 {
        ok(&breaker).unwrap();
    }
    fail(&breaker).unwrap_err();
    fail(&breaker).unwrap_err();
    breaker.set_config(config().failure_rate_threshold(0.3).build().unwrap());
    // 2 failures of 6 calls is above the new threshold: the next call trips, success or not.
    ok(&breaker).unwrap();
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn modes_force_disable_and_dry_run() {
    let (breaker, _clock) = breaker(config());
    breaker.set_mode(Mode::ForcedOpen);
    assert!(matches!(
        ok(&breaker),
        Err(CallError::Rejected(Rejected {
            retry_after: None,
            ..
        }))
    ));
    breaker.set_mode(Mode::Disabled);
    for _ in 0..20 {
        fail(&breaker).unwrap_err();
    }
    assert_eq!(breaker.state(), State::Closed);
    breaker.set_mode(Mode::MetricsOnly);
    for _ in 0..4 {
        fail(&breaker).unwrap_err();
    }
    assert_eq!(breaker.state(), State::Open);
    assert!(matches!(ok(&breaker), Ok(())), "a dry run never rejects");
    assert_eq!(breaker.counters().would_reject, 1);
    assert_eq!(
        breaker.counters().rejected,
        1,
        "only the forced-open rejection"
    );
    breaker.set_mode(Mode::Automatic);
    assert!(matches!(ok(&breaker), Err(CallError::Rejected(_))));
}

#[test]
fn time_window_fast_path_respects_seconds() {
    let (breaker, clock) = breaker(config().window(WindowShape::Time(10)));
    for _ in 0..4 {
        ok(&breaker).unwrap();
    }
    clock.advance(Duration::from_secs(5));
    for _ in 0..4 {
        ok(&breaker).unwrap();
    }
    // At 10 s the first four successes leave the window: 3 failures of 7 calls stay closed,
    // 4 of 8 trip.
    clock.advance(Duration::from_secs(5));
    for _ in 0..3 {
        fail(&breaker).unwrap_err();
    }
    assert_eq!(breaker.snapshot().window.n_calls, 7);
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker).unwrap_err();
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn panicking_calls_count_as_failures() {
    let (breaker, _clock) = breaker(config());
    for _ in 0..4 {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = breaker.call(|| -> Result<(), ()> { panic!("boom") });
        }));
        assert!(result.is_err());
    }
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_panicking_classifier_counts_as_a_failure() {
    let (breaker, _clock) = breaker(config());
    for _ in 0..4 {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = breaker.call_classified(
                |_: &Result<(), ()>| -> Outcome { panic!("boom") },
                || Ok(()),
            );
        }));
        assert!(result.is_err());
    }
    assert_eq!(breaker.counters().failure, 4);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn classifier_can_ignore_errors() {
    let (breaker, _clock) = breaker(config());
    let classify = |result: &Result<(), u16>| match result {
        Ok(()) => Outcome::Success,
        Err(status) if *status < 500 => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    };
    for _ in 0..10 {
        breaker.call_classified(classify, || Err(404)).unwrap_err();
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.counters().ignored, 10);
    let fallback = breaker.call_or_fallback(|| Err::<u32, ()>(()), |_| 42);
    assert_eq!(fallback, 42);
}

#[tokio::test(start_paused = true)]
async fn async_calls_time_out_as_failures() {
    let (breaker, _clock) = breaker(config().call_timeout(Duration::from_millis(100)));
    let slow = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok::<_, ()>(())
    };
    assert_eq!(
        breaker.call_async(slow).await,
        Err(CallError::Timeout(Duration::from_millis(100)))
    );
    assert_eq!(breaker.call_async(async { Ok::<_, ()>(5) }).await, Ok(5));
    let fallback = breaker
        .call_async_or_fallback(async { Err::<u8, ()>(()) }, |_| 9)
        .await;
    assert_eq!(fallback, 9);
    assert_eq!(breaker.counters().timeout, 1);
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<CircuitBreaker>();
    send_sync::<crate::Registry>();
    send_sync::<OwnedPermit>();
    send_sync::<Permit<'static>>();
}

#[test]
fn plain_ticks_is_the_first_stopwatch_difference_at_the_bound() {
    let clock = SystemClock::new();
    for bound in [1, 999, 1_001_000, 250_000_000, 60_000_000_000] {
        let ticks = plain_ticks(&clock, bound);
        assert!(ticks > 0);
        assert!(nanos(clock.stopwatch_elapsed(0, ticks - 1)) < bound);
        assert!(nanos(clock.stopwatch_elapsed(0, ticks)) >= bound);
    }
}

#[test]
fn measured_latencies_on_the_system_clock_are_judged_and_bucketed_exactly() {
    let config = Config::builder()
        .slow_call_rate_threshold(0.5)
        .slow_call_duration(Duration::from_millis(20))
        .window(WindowShape::Count(10))
        .minimum_calls(4)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("search", config);
    // Quick calls take the fast path: counted as successes in the first latency bucket.
    for _ in 0..100 {
        ok(&breaker).unwrap();
    }
    let counters = breaker.counters();
    assert_eq!(counters.success, 100);
    assert_eq!(counters.latency[0], 100);
    assert_eq!(counters.slow, 0);
    // A call of 3 ms or so is neither plain nor slow: counted beyond the first bucket.
    breaker
        .call(|| {
            std::thread::sleep(Duration::from_millis(3));
            Ok::<_, ()>(())
        })
        .unwrap();
    let counters = breaker.counters();
    assert_eq!((counters.success, counters.slow), (101, 0));
    assert_eq!(counters.latency[0], 100);
    assert_eq!(counters.latency.iter().sum::<u64>(), 101);
    // Slow calls are judged: 5 of the last 10 trip the slow-call rule.
    for _ in 0..5 {
        breaker
            .call(|| {
                std::thread::sleep(Duration::from_millis(21));
                Ok::<_, ()>(())
            })
            .unwrap();
    }
    assert_eq!(breaker.counters().slow, 5);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn stopwatch_before_comes_a_little_early() {
    let clock = SystemClock::new();
    let at = clock.now() + Duration::from_millis(100);
    let deadline = stopwatch_before(&clock, at);
    let (reading, left) = (clock.stopwatch(), at.saturating_sub(clock.now()));
    let until_deadline = clock.stopwatch_elapsed(reading, deadline);
    assert!(until_deadline <= left, "{until_deadline:?} > {left:?}");
    assert!(
        until_deadline + left / 8 >= left,
        "{until_deadline:?} ≪ {left:?}"
    );
    assert_eq!(
        stopwatch_before(&clock, clock.now() - Duration::from_nanos(1)),
        0
    );
}

#[test]
fn time_window_successes_with_latency_measured_count_in_the_window() {
    let config = Config::builder()
        .slow_call_rate_threshold(0.5)
        .slow_call_duration(Duration::from_secs(1))
        .window(WindowShape::Time(60))
        .minimum_calls(4)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new("search", config);
    for _ in 0..1_000 {
        ok(&breaker).unwrap();
    }
    assert_eq!(breaker.counters().success, 1_000);
    assert_eq!(breaker.counters().latency[0], 1_000);
    assert_eq!(breaker.snapshot().window.n_calls, 1_000);
}

#[test]
fn the_system_clocks_coarse_reading_trails_its_precise_one() {
    let clock = SystemClock::new();
    for _ in 0..1_000 {
        let coarse = clock.now_coarse();
        let now = clock.now();
        assert!(coarse <= now, "{coarse:?} after {now:?}");
        // A kernel tick is 10 ms at most; preemption between the two readings adds to it.
        assert!(
            now - coarse < Duration::from_millis(100),
            "{coarse:?} ≪ {now:?}"
        );
    }
    // The raw reading, against the time of `now` on the same base.
    let raw = clock.coarse_nanos();
    let now = clock.coarse_nanos_at(clock.now());
    assert!(raw <= now && now - raw < 100_000_000, "{raw} against {now}");
}

/// A breaker on the system clock with a time window of one second.
fn one_second_window() -> CircuitBreaker {
    let config = Config::builder()
        .window(WindowShape::Time(1))
        .build()
        .unwrap();
    CircuitBreaker::new("search", config)
}

#[test]
fn a_time_window_on_the_system_clock_counts_fast_successes_in_their_second() {
    let breaker = one_second_window();
    next_second();
    for _ in 0..100 {
        ok(&breaker).unwrap();
    }
    assert_eq!(breaker.snapshot().window.n_calls, 100);
    // A second later the window of one second has let them go: they counted in theirs.
    next_second();
    for _ in 0..40 {
        ok(&breaker).unwrap();
    }
    assert_eq!(breaker.snapshot().window.n_calls, 40);
    assert_eq!(breaker.counters().success, 140);
}

#[test]
fn permits_and_async_calls_count_plain_successes_in_their_second_too() {
    let breaker = one_second_window();
    next_second();
    for _ in 0..300 {
        breaker.try_acquire().unwrap().finish(Outcome::Success);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        for _ in 0..300 {
            breaker.call_async(async { Ok::<_, ()>(()) }).await.unwrap();
        }
    });
    assert_eq!(breaker.snapshot().window.n_calls, 600);
    next_second();
    breaker.try_acquire().unwrap().finish(Outcome::Success);
    assert_eq!(breaker.snapshot().window.n_calls, 1);
    assert_eq!(breaker.counters().success, 601);
}

/// Waits for the clock ticker's reading to move on to the next second (a second or so; the
/// ticker runs once a time-window breaker on the system clock was made).
fn next_second() {
    let reading = crate::clock::ticker::reading;
    assert_ne!(reading(), crate::clock::ticker::NONE, "no ticker");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let from = reading() / 1_000_000_000;
    while reading() / 1_000_000_000 == from {
        assert!(std::time::Instant::now() < deadline, "the ticker stopped");
        std::thread::sleep(Duration::from_millis(2));
    }
}
