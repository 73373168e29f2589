//! Property: the breaker (fast path included) agrees with a small, naive reference model.
//!
//! The model keeps the window as a plain list of calls and recomputes every rate from it;
//! it shares no code with the crate. Random configs and random sequences of calls and clock
//! moves must give the same admissions and the same transitions.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use breaker::{CircuitBreaker, Config, ManualClock, Outcome, State, TriggerKind, Window};
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Params {
    window: Window,
    minimum_calls: u32,
    failure_rate: Option<f64>,
    slow_rate: Option<f64>,
    slow_ms: u64,
    consecutive: Option<u32>,
    wait_ms: u64,
    probes: u32,
    successes: u32,
    half_open_max_wait_ms: Option<u64>,
}

#[derive(Clone, Debug)]
enum Op {
    Call { outcome: Outcome, latency_ms: u64 },
    Advance { ms: u64 },
}

struct Model {
    params: Params,
    state: State,
    /// (second, failed, slow) per judged call, oldest first.
    calls: VecDeque<(u64, bool, bool)>,
    consecutive: u32,
    entered_ms: u64,
    probes_admitted: u32,
    probe_successes: u32,
}

impl Model {
    fn enter(
        &mut self,
        to: State,
        now_ms: u64,
        kind: TriggerKind,
        log: &mut Vec<(State, State, TriggerKind)>,
    ) {
        log.push((self.state, to, kind));
        self.state = to;
        self.entered_ms = now_ms;
        self.probes_admitted = 0;
        self.probe_successes = 0;
        if to == State::Closed {
            self.calls.clear();
            self.consecutive = 0;
        }
    }

    fn in_window(&self, now_ms: u64) -> Vec<(u64, bool, bool)> {
        match self.params.window {
            Window::Count(n) => self.calls.iter().rev().take(n as usize).copied().collect(),
            Window::Time(n) => {
                let now_s = now_ms / 1_000;
                self.calls
                    .iter()
                    .filter(|(second, _, _)| second + u64::from(n) > now_s)
                    .copied()
                    .collect()
            }
        }
    }

    /// Returns whether the call is admitted, and records it.
    fn call(
        &mut self,
        now_ms: u64,
        outcome: Outcome,
        latency_ms: u64,
        log: &mut Vec<(State, State, TriggerKind)>,
    ) -> bool {
        if self.state == State::Open && now_ms >= self.entered_ms + self.params.wait_ms {
            self.enter(State::HalfOpen, now_ms, TriggerKind::WaitElapsed, log);
        }
        if self.state == State::HalfOpen
            && let Some(max) = self.params.half_open_max_wait_ms
            && now_ms >= self.entered_ms + max
        {
            self.enter(State::Open, now_ms, TriggerKind::HalfOpenTimeout, log);
        }
        let failed = matches!(outcome, Outcome::Failure | Outcome::Timeout);
        let slow = outcome != Outcome::Ignored
            && self.params.slow_rate.is_some()
            && latency_ms >= self.params.slow_ms;
        match self.state {
            State::Open => false,
            State::HalfOpen => {
                if self.probes_admitted >= self.params.probes {
                    return false;
                }
                self.probes_admitted += 1;
                if outcome == Outcome::Ignored {
                    self.probes_admitted -= 1;
                } else if failed || slow {
                    self.enter(State::Open, now_ms, TriggerKind::ProbeFailed, log);
                } else {
                    self.probe_successes += 1;
                    if self.probe_successes >= self.params.successes {
                        self.enter(State::Closed, now_ms, TriggerKind::ProbeSucceeded, log);
                    }
                }
                true
            }
            State::Closed => {
                if outcome == Outcome::Ignored {
                    return true;
                }
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                self.calls.push_back((now_ms / 1_000, failed, slow));
                if let Some(max) = self.params.consecutive
                    && self.consecutive >= max
                {
                    self.enter(State::Open, now_ms, TriggerKind::ConsecutiveFailures, log);
                    return true;
                }
                let window = self.in_window(now_ms);
                let n = window.len() as f64;
                if window.len() >= self.params.minimum_calls as usize {
                    let n_failed = window.iter().filter(|c| c.1).count() as f64;
                    let n_slow = window.iter().filter(|c| c.2).count() as f64;
                    if self.params.failure_rate.is_some_and(|t| n_failed / n >= t) {
                        self.enter(State::Open, now_ms, TriggerKind::FailureRate, log);
                    } else if self.params.slow_rate.is_some_and(|t| n_slow / n >= t) {
                        self.enter(State::Open, now_ms, TriggerKind::SlowCallRate, log);
                    }
                }
                true
            }
        }
    }
}

fn params() -> impl Strategy<Value = Params> {
    (
        prop_oneof![
            (1u32..20).prop_map(Window::Count),
            (1u32..8).prop_map(Window::Time)
        ],
        1u32..12,
        prop_oneof![
            Just(None),
            Just(Some(0.2)),
            Just(Some(0.5)),
            Just(Some(1.0))
        ],
        prop_oneof![Just(None), Just(Some(0.5))],
        prop_oneof![Just(None), (1u32..5).prop_map(Some)],
        (1u64..5_000, 1u32..4, 1u32..4),
        prop_oneof![Just(None), (1u64..3_000).prop_map(Some)],
    )
        .prop_map(
            |(
                window,
                minimum_calls,
                failure_rate,
                slow_rate,
                consecutive,
                (wait_ms, probes, successes),
                half_open_max_wait_ms,
            )| {
                let minimum_calls = match window {
                    Window::Count(n) => minimum_calls.min(n),
                    Window::Time(_) => minimum_calls,
                };
                Params {
                    window,
                    minimum_calls,
                    failure_rate,
                    slow_rate,
                    slow_ms: 100,
                    consecutive,
                    wait_ms,
                    probes,
                    successes: successes.min(probes),
                    half_open_max_wait_ms,
                }
            },
        )
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let outcome = prop_oneof![
        6 => Just(Outcome::Success),
        3 => Just(Outcome::Failure),
        1 => Just(Outcome::Timeout),
        1 => Just(Outcome::Ignored),
    ];
    let op = prop_oneof![
        8 => (outcome, prop_oneof![Just(5u64), Just(150u64)])
            .prop_map(|(outcome, latency_ms)| Op::Call { outcome, latency_ms }),
        2 => (0u64..2_500).prop_map(|ms| Op::Advance { ms }),
    ];
    proptest::collection::vec(op, 1..200)
}

fn config_of(params: &Params) -> Config {
    Config::builder()
        .window(params.window)
        .minimum_calls(params.minimum_calls)
        .failure_rate_threshold(params.failure_rate)
        .slow_call_rate_threshold(params.slow_rate)
        .slow_call_duration(Duration::from_millis(params.slow_ms))
        .consecutive_failures(params.consecutive)
        .wait_duration(Duration::from_millis(params.wait_ms))
        .half_open_probes(params.probes)
        .half_open_successes(params.successes)
        .half_open_max_wait(params.half_open_max_wait_ms.map(Duration::from_millis))
        .build()
        .unwrap()
}

/// Records transitions as (from, to, trigger).
struct Log(std::sync::Mutex<Vec<(State, State, TriggerKind)>>);

impl breaker::Listener for Log {
    fn interests(&self) -> breaker::Interests {
        breaker::Interests {
            transitions: true,
            ..Default::default()
        }
    }

    fn on_event(&self, event: &breaker::Event<'_>) {
        if let breaker::EventKind::Transition(t) = event.kind {
            self.0.lock().unwrap().push((t.from, t.to, t.trigger.kind));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn breaker_agrees_with_the_reference_model(params in params(), ops in ops()) {
        let clock = ManualClock::default();
        let breaker = CircuitBreaker::with_clock("model", config_of(&params), Arc::new(clock.clone()));
        let log = Arc::new(Log(Default::default()));
        breaker.add_listener(log.clone());
        let mut model = Model {
            params: params.clone(),
            state: State::Closed,
            calls: VecDeque::new(),
            consecutive: 0,
            entered_ms: 0,
            probes_admitted: 0,
            probe_successes: 0,
        };
        let mut model_log = vec![];
        let mut now_ms = 0;
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Advance { ms } => {
                    now_ms += ms;
                    clock.advance(Duration::from_millis(ms));
                }
                Op::Call { outcome, latency_ms } => {
                    let admitted = match breaker.try_acquire() {
                        Ok(permit) => {
                            permit.record(outcome, Duration::from_millis(latency_ms));
                            true
                        }
                        Err(_) => false,
                    };
                    let model_admitted = model.call(now_ms, outcome, latency_ms, &mut model_log);
                    prop_assert_eq!(admitted, model_admitted, "op {}: {:?}", i, op);
                    prop_assert_eq!(&*log.0.lock().unwrap(), &model_log, "after op {}", i);
                }
            }
        }
    }
}
