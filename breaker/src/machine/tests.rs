//! Tests of every transition of the state machine, in virtual time.

use super::*;
use crate::config::Window as WindowShape;

const T0: Duration = Duration::ZERO;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config() -> crate::config::ConfigBuilder {
    Config::builder()
        .failure_rate_threshold(0.5)
        .window(WindowShape::Count(10))
        .minimum_calls(4)
        .wait_duration(secs(10))
        .half_open_probes(2)
        .half_open_successes(2)
}

fn machine(config: crate::config::ConfigBuilder) -> Machine {
    Machine::new(config.build().unwrap(), T0, 7)
}

/// Admits one call at `now` and records its outcome; returns the transitions it caused.
#[track_caller]
fn call(m: &mut Machine, now: Duration, outcome: Outcome, latency: Duration) -> Vec<Transition> {
    let (admission, polled) = m.acquire(now);
    let mut transitions: Vec<Transition> = polled.into_iter().collect();
    match admission {
        Admission::Granted(granted) => transitions.extend(m.record(now, granted, outcome, latency)),
        Admission::Rejected { .. } => panic!("rejected at {now:?} in {:?}", m.state()),
    }
    transitions
}

fn calls(m: &mut Machine, now: Duration, outcomes: &str) -> Vec<Transition> {
    outcomes
        .chars()
        .flat_map(|c| {
            let outcome = match c {
                's' => Outcome::Success,
                'f' => Outcome::Failure,
                't' => Outcome::Timeout,
                'i' => Outcome::Ignored,
                _ => panic!("unknown outcome {c}"),
            };
            call(m, now, outcome, ms(1))
        })
        .collect()
}

fn kinds(transitions: &[Transition]) -> Vec<(State, State, TriggerKind)> {
    transitions
        .iter()
        .map(|t| (t.from, t.to, t.trigger.kind))
        .collect()
}

fn open(m: &mut Machine) {
    let transitions = calls(m, T0, "ffff");
    assert_eq!(m.state(), State::Open, "{transitions:?}");
}

#[test]
fn failure_rate_trips_at_the_threshold_once_minimum_calls_are_reached() {
    let mut m = machine(config());
    assert!(
        calls(&mut m, T0, "sff").is_empty(),
        "3 calls are below the minimum of 4"
    );
    let transitions = calls(&mut m, T0, "s");
    assert_eq!(
        kinds(&transitions),
        [(State::Closed, State::Open, TriggerKind::FailureRate)]
    );
    assert_eq!(transitions[0].trigger.value, 0.5);
    assert_eq!(transitions[0].trigger.threshold, 0.5);
}

#[test]
fn a_success_that_completes_the_minimum_can_trip() {
    let mut m = machine(config());
    assert!(calls(&mut m, T0, "fff").is_empty());
    let transitions = calls(&mut m, T0, "s");
    assert_eq!(transitions[0].trigger.value, 0.75);
}

#[test]
fn below_threshold_stays_closed_and_old_calls_leave_the_count_window() {
    let mut m = machine(config());
    assert!(calls(&mut m, T0, "sssfsfssss").is_empty());
    assert_eq!(m.failure_rate(T0), Some(0.2));
    // Four successes push out the first four calls, one failure among them.
    assert!(calls(&mut m, T0, "ssss").is_empty());
    assert_eq!(m.failure_rate(T0), Some(0.1));
    assert!(calls(&mut m, T0, "ffff").is_empty());
    let transitions = calls(&mut m, T0, "f");
    assert_eq!(transitions[0].trigger.value, 0.5);
}

#[test]
fn ignored_calls_are_not_judged() {
    let mut m = machine(config());
    assert!(calls(&mut m, T0, "iiiiifiiii").is_empty());
    assert_eq!(m.totals(T0).n_calls, 1);
}

#[test]
fn consecutive_failures_trip_and_a_success_resets_them() {
    let mut m = machine(
        config()
            .failure_rate_threshold(None)
            .consecutive_failures(3),
    );
    assert!(calls(&mut m, T0, "ffsff").is_empty());
    let transitions = calls(&mut m, T0, "t");
    assert_eq!(
        kinds(&transitions),
        [(State::Closed, State::Open, TriggerKind::ConsecutiveFailures)]
    );
    assert_eq!(transitions[0].trigger.value, 3.0);
}

#[test]
fn slow_calls_trip_even_when_they_succeed() {
    let mut m = machine(
        config()
            .failure_rate_threshold(None)
            .slow_call_rate_threshold(0.5)
            .slow_call_duration(ms(100)),
    );
    assert!(call(&mut m, T0, Outcome::Success, ms(99)).is_empty());
    assert!(call(&mut m, T0, Outcome::Success, ms(100)).is_empty());
    assert!(call(&mut m, T0, Outcome::Success, ms(10)).is_empty());
    let transitions = call(&mut m, T0, Outcome::Success, ms(500));
    assert_eq!(
        kinds(&transitions),
        [(State::Closed, State::Open, TriggerKind::SlowCallRate)]
    );
    assert_eq!(transitions[0].trigger.value, 0.5);
}

#[test]
fn time_window_forgets_seconds_that_fall_out() {
    let mut m = machine(
        config()
            .failure_rate_threshold(0.6)
            .window(WindowShape::Time(10)),
    );
    assert!(calls(&mut m, secs(0), "ff").is_empty());
    assert!(calls(&mut m, secs(5), "ss").is_empty());
    assert_eq!(m.failure_rate(secs(9)), Some(0.5));
    // At 10 s the failures of second 0 have left the window.
    assert_eq!(m.totals(secs(10)).n_calls, 2);
    assert!(calls(&mut m, secs(10), "fs").is_empty());
    assert_eq!(m.failure_rate(secs(10)), Some(0.25));
    assert!(calls(&mut m, secs(30), "ff").is_empty(), "2 calls only");
    assert_eq!(
        kinds(&calls(&mut m, secs(30), "ff"))[0].2,
        TriggerKind::FailureRate
    );
}

#[test]
fn open_rejects_until_the_wait_elapses_then_half_opens_on_the_next_call() {
    let mut m = machine(config());
    open(&mut m);
    assert_eq!(
        m.acquire(secs(9)).0,
        Admission::Rejected {
            retry_after: Some(secs(1))
        }
    );
    let (admission, transition) = m.acquire(secs(10));
    assert!(matches!(
        admission,
        Admission::Granted(Granted {
            kind: PermitKind::Probe,
            ..
        })
    ));
    let transition = transition.unwrap();
    assert_eq!(
        (transition.from, transition.to, transition.trigger.kind),
        (State::Open, State::HalfOpen, TriggerKind::WaitElapsed)
    );
    assert_eq!(transition.trigger.value, 10.0);
}

#[test]
fn poll_notices_the_elapsed_wait_without_a_call() {
    let mut m = machine(config());
    open(&mut m);
    assert_eq!(m.poll(secs(9)), None);
    assert_eq!(m.poll(secs(11)).map(|t| t.to), Some(State::HalfOpen));
}

#[test]
fn half_open_admits_only_its_probes_and_closes_after_enough_successes() {
    let mut m = machine(config());
    open(&mut m);
    let Admission::Granted(first) = m.acquire(secs(10)).0 else {
        panic!()
    };
    let Admission::Granted(second) = m.acquire(secs(10)).0 else {
        panic!()
    };
    assert!(matches!(m.acquire(secs(10)).0, Admission::Rejected { .. }));
    assert_eq!(m.record(secs(11), first, Outcome::Success, ms(1)), None);
    let closed = m.record(secs(11), second, Outcome::Success, ms(1)).unwrap();
    assert_eq!(
        (closed.from, closed.to, closed.trigger.kind),
        (State::HalfOpen, State::Closed, TriggerKind::ProbeSucceeded)
    );
    assert_eq!(
        m.totals(secs(11)).n_calls,
        0,
        "a closed breaker starts with an empty window"
    );
}

#[test]
fn a_failed_or_slow_probe_opens_again() {
    let mut m = machine(
        config()
            .slow_call_rate_threshold(1.0)
            .slow_call_duration(ms(100)),
    );
    open(&mut m);
    let transitions = call(&mut m, secs(10), Outcome::Failure, ms(1));
    assert_eq!(
        kinds(&transitions),
        [
            (State::Open, State::HalfOpen, TriggerKind::WaitElapsed),
            (State::HalfOpen, State::Open, TriggerKind::ProbeFailed)
        ]
    );
    let transitions = call(&mut m, secs(20), Outcome::Success, ms(150));
    assert_eq!(transitions[1].trigger.kind, TriggerKind::ProbeFailed);
}

/// resilience4j's rule: all probes return first; the breaker closes when their failure rate is
/// below the threshold (one failure of four is 25 % < 50 %), and opens again when it is not.
#[test]
fn probes_judged_by_rate_close_below_the_threshold_and_open_at_it() {
    let by_rate = || {
        config()
            .half_open_probes(4)
            .half_open_successes(4)
            .half_open_rule(HalfOpenRule::Rates)
    };
    let mut m = machine(by_rate());
    open(&mut m);
    let transitions = calls(&mut m, secs(10), "fss");
    assert_eq!(
        kinds(&transitions),
        [(State::Open, State::HalfOpen, TriggerKind::WaitElapsed)],
        "a failed probe does not open the breaker before every probe returned"
    );
    let closed = calls(&mut m, secs(10), "s");
    assert_eq!(
        kinds(&closed),
        [(State::HalfOpen, State::Closed, TriggerKind::ProbeSucceeded)]
    );
    assert_eq!(closed[0].trigger.value, 0.25);

    let mut m = machine(by_rate());
    open(&mut m);
    let transitions = calls(&mut m, secs(10), "sfsf");
    let reopened = transitions.last().unwrap();
    assert_eq!(
        (reopened.to, reopened.trigger.kind, reopened.trigger.value),
        (State::Open, TriggerKind::ProbeFailed, 0.5)
    );
    // The next Half-Open starts counting afresh.
    let transitions = calls(&mut m, secs(20), "ssss");
    assert_eq!(transitions.last().unwrap().to, State::Closed);
}

#[test]
fn probes_judged_by_rate_need_a_rate_threshold() {
    let err = Config::builder()
        .failure_rate_threshold(None)
        .consecutive_failures(5)
        .half_open_rule(HalfOpenRule::Rates)
        .build()
        .unwrap_err();
    assert_eq!(err.field, "half_open_rule");
}

#[test]
fn an_ignored_probe_frees_its_slot() {
    let mut m = machine(config().half_open_probes(1).half_open_successes(1));
    open(&mut m);
    let Admission::Granted(probe) = m.acquire(secs(10)).0 else {
        panic!()
    };
    assert!(matches!(m.acquire(secs(10)).0, Admission::Rejected { .. }));
    m.record(secs(10), probe, Outcome::Ignored, ms(1));
    assert!(matches!(m.acquire(secs(10)).0, Admission::Granted(_)));
}

#[test]
fn half_open_gives_up_after_its_maximum_wait() {
    let mut m = machine(config().half_open_max_wait(secs(5)));
    open(&mut m);
    let Admission::Granted(_lost_probe) = m.acquire(secs(10)).0 else {
        panic!()
    };
    assert_eq!(m.poll(secs(14)), None);
    let transition = m.poll(secs(15)).unwrap();
    assert_eq!(
        (transition.from, transition.to, transition.trigger.kind),
        (State::HalfOpen, State::Open, TriggerKind::HalfOpenTimeout)
    );
}

#[test]
fn outcomes_of_an_earlier_state_are_not_judged() {
    let mut m = machine(config());
    let (Admission::Granted(late), _) = m.acquire(T0) else {
        panic!()
    };
    open(&mut m);
    let Admission::Granted(probe) = m.acquire(secs(10)).0 else {
        panic!()
    };
    assert_eq!(m.record(secs(10), late, Outcome::Failure, ms(1)), None);
    assert_eq!(m.state(), State::HalfOpen);
    assert_eq!(m.record(secs(10), probe, Outcome::Success, ms(1)), None);
}

#[test]
fn exponential_wait_grows_with_each_open_in_a_row_and_is_capped() {
    let mut m = machine(config().half_open_probes(1).half_open_successes(1).wait(
        Wait::Exponential {
            initial: secs(1),
            multiplier: 2.0,
            max: secs(5),
            jitter: 0.0,
        },
    ));
    open(&mut m);
    let mut now = T0;
    let mut waits = vec![];
    for _ in 0..4 {
        let until = m.open_until().unwrap();
        waits.push(until - now);
        now = until;
        let transitions = call(&mut m, now, Outcome::Failure, ms(1));
        assert_eq!(transitions.len(), 2);
    }
    assert_eq!(waits, [secs(1), secs(2), secs(4), secs(5)]);
    // Closing resets the run.
    now = m.open_until().unwrap();
    call(&mut m, now, Outcome::Success, ms(1));
    calls(&mut m, now, "ffff");
    assert_eq!(m.open_until().unwrap() - now, secs(1));
}

#[test]
fn jitter_stays_within_its_spread_and_is_repeatable() {
    let shape = config().wait(Wait::Exponential {
        initial: secs(10),
        multiplier: 1.0,
        max: secs(100),
        jitter: 0.2,
    });
    let waits = |seed| {
        let mut m = Machine::new(shape.clone().build().unwrap(), T0, seed);
        open(&mut m);
        m.open_until().unwrap()
    };
    for seed in 0..50 {
        let wait = waits(seed);
        assert!(wait >= secs(8) && wait <= secs(12), "{wait:?}");
        assert_eq!(wait, waits(seed));
    }
}

#[test]
fn forced_open_rejects_everything_until_automatic_closes_it() {
    let mut m = machine(config());
    let transition = m.set_mode(Mode::ForcedOpen, T0).unwrap();
    assert_eq!(
        (transition.to, transition.trigger.kind),
        (State::Open, TriggerKind::Manual)
    );
    assert_eq!(
        m.acquire(secs(1_000)).0,
        Admission::Rejected { retry_after: None }
    );
    let transition = m.set_mode(Mode::Automatic, secs(1_000)).unwrap();
    assert_eq!(
        (transition.from, transition.to),
        (State::Open, State::Closed)
    );
}

#[test]
fn disabled_lets_everything_through_and_judges_nothing() {
    let mut m = machine(config());
    open(&mut m);
    let transition = m.set_mode(Mode::Disabled, secs(1)).unwrap();
    assert_eq!(transition.to, State::Closed);
    assert!(calls(&mut m, secs(1), "ffffffffff").is_empty());
    assert_eq!(m.state(), State::Closed);
    assert_eq!(m.set_mode(Mode::Automatic, secs(2)), None);
    assert_eq!(m.totals(secs(2)).n_calls, 0);
}

#[test]
fn metrics_only_judges_and_transitions_but_never_rejects() {
    let mut m = machine(config());
    assert_eq!(m.set_mode(Mode::MetricsOnly, T0), None);
    let transitions = calls(&mut m, T0, "ffff");
    assert_eq!(transitions[0].to, State::Open);
    // Would have been rejected: admitted unjudged.
    assert!(matches!(
        m.acquire(secs(1)).0,
        Admission::Granted(Granted {
            kind: PermitKind::Unjudged,
            ..
        })
    ));
    assert!(calls(&mut m, secs(1), "ffff").is_empty());
    let transitions = calls(&mut m, secs(10), "ss");
    assert_eq!(
        kinds(&transitions),
        [
            (State::Open, State::HalfOpen, TriggerKind::WaitElapsed),
            (State::HalfOpen, State::Closed, TriggerKind::ProbeSucceeded)
        ]
    );
}

#[test]
fn a_new_config_keeps_state_and_window() {
    let mut m = machine(config());
    assert!(calls(&mut m, T0, "sssff").is_empty());
    m.set_config(
        config()
            .version(2)
            .failure_rate_threshold(0.3)
            .build()
            .unwrap(),
        T0,
    );
    assert_eq!(m.totals(T0).n_calls, 5);
    let transitions = calls(&mut m, T0, "s");
    assert_eq!(transitions[0].trigger.threshold, 0.3);
    assert_eq!(transitions[0].config_version, 2);
}

#[test]
fn a_smaller_window_keeps_the_latest_calls() {
    let mut m = machine(config());
    assert!(calls(&mut m, T0, "fsssss").is_empty());
    m.set_config(config().window(WindowShape::Count(4)).build().unwrap(), T0);
    assert_eq!(
        m.totals(T0),
        Totals {
            n_calls: 4,
            n_failures: 0,
            n_slow: 0
        }
    );
    let mut m = machine(config().window(WindowShape::Time(10)));
    assert!(calls(&mut m, secs(1), "f").is_empty());
    assert!(calls(&mut m, secs(8), "ss").is_empty());
    m.set_config(
        config().window(WindowShape::Time(5)).build().unwrap(),
        secs(8),
    );
    assert_eq!(m.totals(secs(8)).n_calls, 2);
    assert_eq!(m.totals(secs(13)).n_calls, 0);
}

#[test]
fn fast_successes_are_allowed_only_when_they_cannot_trip() {
    let mut m = machine(config());
    assert_eq!(m.fast_successes_allowed(T0), Some(0), "an empty window");
    calls(&mut m, T0, "f");
    assert_eq!(
        m.fast_successes_allowed(T0),
        None,
        "a failure below the minimum"
    );
    calls(&mut m, T0, "sss");
    assert_eq!(
        m.fast_successes_allowed(secs(3)),
        Some(3),
        "the minimum is reached"
    );
    m.record_plain_successes(3, 20);
    assert_eq!(m.totals(T0).n_calls, 10);
    assert_eq!(m.totals(T0).n_failures, 0);
}

#[test]
fn config_errors_name_the_field_and_rule() {
    let cases: Vec<(crate::config::ConfigBuilder, &str)> = vec![
        (
            config().failure_rate_threshold(1.5),
            "failure_rate_threshold",
        ),
        (
            config().failure_rate_threshold(0.0),
            "failure_rate_threshold",
        ),
        (
            config().slow_call_rate_threshold(f64::NAN),
            "slow_call_rate_threshold",
        ),
        (config().window(WindowShape::Count(0)), "window"),
        (config().window(WindowShape::Time(100_000)), "window"),
        (config().minimum_calls(11), "minimum_calls"),
        (config().minimum_calls(0), "minimum_calls"),
        (config().consecutive_failures(0), "consecutive_failures"),
        (config().wait_duration(Duration::ZERO), "wait"),
        (config().half_open_probes(0), "half_open_probes"),
        (config().half_open_successes(3), "half_open_successes"),
        (
            config().half_open_max_wait(Duration::ZERO),
            "half_open_max_wait",
        ),
        (config().call_timeout(Duration::ZERO), "call_timeout"),
        (
            config().wait(Wait::Exponential {
                initial: secs(1),
                multiplier: 2.0,
                max: secs(1),
                jitter: 1.5,
            }),
            "wait.jitter",
        ),
    ];
    for (builder, field) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
    let err = config().failure_rate_threshold(1.5).build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid `failure_rate_threshold`: 1.5 is not a rate above 0 and at most 1 (0–100 %)"
    );
    assert_eq!(
        config()
            .window(WindowShape::Count(0))
            .build()
            .unwrap_err()
            .to_string(),
        "invalid `window`: must be greater than zero"
    );
}
