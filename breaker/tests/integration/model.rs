//! Property: the breaker (fast path included) agrees with a small, naive reference model.
//!
//! The model keeps the window as a plain list of calls and recomputes every rate from it;
//! it shares no code with the crate. Random configs and random sequences of calls, calls
//! held in flight and finished later, clock moves and mode changes must give the same
//! admissions and the same transitions.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use breaker::{CircuitBreaker, Config, ManualClock, Mode, Outcome, State, TriggerKind, Window};
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
    /// Ask for a permit and record the outcome at once.
    Call {
        outcome: Outcome,
        latency_ms: u64,
    },
    /// Ask for a permit and keep it: a call in flight.
    Hold,
    /// Record the outcome of a call in flight (the `index`-th, modulo their number).
    Finish {
        index: usize,
        outcome: Outcome,
        latency_ms: u64,
    },
    Advance {
        ms: u64,
    },
    SetMode(Mode),
    /// A new config with other rate thresholds (same window).
    SetThresholds {
        failure_rate: Option<f64>,
        slow_rate: Option<f64>,
    },
}

/// A model permit: what it admits, and the generation it was granted in.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Normal,
    Probe,
    Unjudged,
}

struct Model {
    params: Params,
    mode: Mode,
    generation: u64,
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
        self.generation += 1;
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

    fn acquire(
        &mut self,
        now_ms: u64,
        log: &mut Vec<(State, State, TriggerKind)>,
    ) -> Option<(Kind, u64)> {
        if !matches!(self.mode, Mode::ForcedOpen | Mode::Disabled) {
            if self.state == State::Open && now_ms >= self.entered_ms + self.params.wait_ms {
                self.enter(State::HalfOpen, now_ms, TriggerKind::WaitElapsed, log);
            } else if self.state == State::HalfOpen
                && let Some(max) = self.params.half_open_max_wait_ms
                && now_ms >= self.entered_ms + max
            {
                self.enter(State::Open, now_ms, TriggerKind::HalfOpenTimeout, log);
            }
        }
        let dry_run = self.mode == Mode::MetricsOnly;
        let kind = match (self.mode, self.state) {
            (Mode::Disabled, _) => Kind::Unjudged,
            (Mode::ForcedOpen, _) => return None,
            (_, State::Closed) => Kind::Normal,
            (_, State::Open) if dry_run => Kind::Unjudged,
            (_, State::Open) => return None,
            (_, State::HalfOpen) if self.probes_admitted < self.params.probes => {
                self.probes_admitted += 1;
                Kind::Probe
            }
            (_, State::HalfOpen) if dry_run => Kind::Unjudged,
            (_, State::HalfOpen) => return None,
        };
        Some((kind, self.generation))
    }

    fn record(
        &mut self,
        now_ms: u64,
        (kind, generation): (Kind, u64),
        outcome: Outcome,
        latency_ms: u64,
        log: &mut Vec<(State, State, TriggerKind)>,
    ) {
        if generation != self.generation || kind == Kind::Unjudged || self.mode == Mode::Disabled {
            return;
        }
        let failed = matches!(outcome, Outcome::Failure | Outcome::Timeout);
        let slow = outcome != Outcome::Ignored
            && self.params.slow_rate.is_some()
            && latency_ms >= self.params.slow_ms;
        match (kind, self.state) {
            (Kind::Probe, State::HalfOpen) => {
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
            }
            (Kind::Normal, State::Closed) if outcome != Outcome::Ignored => {
                self.consecutive = if failed { self.consecutive + 1 } else { 0 };
                self.calls.push_back((now_ms / 1_000, failed, slow));
                if let Some(max) = self.params.consecutive
                    && self.consecutive >= max
                {
                    self.enter(State::Open, now_ms, TriggerKind::ConsecutiveFailures, log);
                    return;
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
            }
            _ => {}
        }
    }

    fn set_mode(&mut self, mode: Mode, now_ms: u64, log: &mut Vec<(State, State, TriggerKind)>) {
        if mode == self.mode {
            return;
        }
        let previous = self.mode;
        self.mode = mode;
        self.generation += 1;
        let target = match mode {
            Mode::ForcedOpen => State::Open,
            Mode::Disabled => State::Closed,
            Mode::Automatic if matches!(previous, Mode::ForcedOpen | Mode::Disabled) => {
                State::Closed
            }
            Mode::Automatic | Mode::MetricsOnly => return,
        };
        if target == self.state {
            if target == State::Closed {
                self.calls.clear();
                self.consecutive = 0;
            }
        } else {
            self.enter(target, now_ms, TriggerKind::Manual, log);
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
    let latency = prop_oneof![Just(5u64), Just(150u64)];
    let mode = prop_oneof![
        4 => Just(Mode::Automatic),
        1 => Just(Mode::ForcedOpen),
        1 => Just(Mode::Disabled),
        2 => Just(Mode::MetricsOnly),
    ];
    let op = prop_oneof![
        16 => (outcome.clone(), latency.clone())
            .prop_map(|(outcome, latency_ms)| Op::Call { outcome, latency_ms }),
        2 => Just(Op::Hold),
        2 => (any::<usize>(), outcome, latency)
            .prop_map(|(index, outcome, latency_ms)| Op::Finish { index, outcome, latency_ms }),
        4 => (0u64..2_500).prop_map(|ms| Op::Advance { ms }),
        1 => mode.prop_map(Op::SetMode),
        1 => (
            prop_oneof![Just(None), Just(Some(0.2)), Just(Some(0.5)), Just(Some(1.0))],
            prop_oneof![Just(None), Just(Some(0.3)), Just(Some(0.5))],
        )
            .prop_map(|(failure_rate, slow_rate)| Op::SetThresholds { failure_rate, slow_rate }),
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
            mode: Mode::Automatic,
            generation: 0,
            state: State::Closed,
            calls: VecDeque::new(),
            consecutive: 0,
            entered_ms: 0,
            probes_admitted: 0,
            probe_successes: 0,
        };
        let mut model_log = vec![];
        let mut held = vec![];
        let mut now_ms = 0;
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Advance { ms } => {
                    now_ms += ms;
                    clock.advance(Duration::from_millis(ms));
                }
                Op::SetThresholds { failure_rate, slow_rate } => {
                    model.params.failure_rate = failure_rate;
                    model.params.slow_rate = slow_rate;
                    breaker.set_config(config_of(&model.params));
                }
                Op::SetMode(mode) => {
                    breaker.set_mode(mode);
                    model.set_mode(mode, now_ms, &mut model_log);
                }
                Op::Call { outcome, latency_ms } => {
                    let permit = breaker.try_acquire().ok();
                    let model_permit = model.acquire(now_ms, &mut model_log);
                    prop_assert_eq!(permit.is_some(), model_permit.is_some(), "op {}: {:?}", i, op);
                    if let (Some(permit), Some(model_permit)) = (permit, model_permit) {
                        permit.record(outcome, Duration::from_millis(latency_ms));
                        model.record(now_ms, model_permit, outcome, latency_ms, &mut model_log);
                    }
                }
                Op::Hold => {
                    let permit = breaker.try_acquire().ok();
                    let model_permit = model.acquire(now_ms, &mut model_log);
                    prop_assert_eq!(permit.is_some(), model_permit.is_some(), "op {}: {:?}", i, op);
                    if let (Some(permit), Some(model_permit)) = (permit, model_permit) {
                        held.push((permit, model_permit));
                    }
                }
                Op::Finish { index, outcome, latency_ms } => {
                    if !held.is_empty() {
                        let (permit, model_permit) = held.swap_remove(index % held.len());
                        permit.record(outcome, Duration::from_millis(latency_ms));
                        model.record(now_ms, model_permit, outcome, latency_ms, &mut model_log);
                    }
                }
            }
            prop_assert_eq!(&*log.0.lock().unwrap(), &model_log, "after op {}: {:?}", i, op);
            prop_assert_eq!(breaker.mode(), model.mode);
        }
    }
}
