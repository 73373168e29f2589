//! The sans-IO state machine: every policy and transition, driven by explicit `now` values.
//!
//! [`Machine`] does no I/O, reads no clock and takes no lock, so it is deterministic given its
//! inputs. [`CircuitBreaker`](crate::CircuitBreaker) wraps it for concurrent use with a fast
//! path in front; the engine may drive it directly to replay history in virtual time.
//!
//! Permits carry the machine's *generation*, which changes with every transition and every
//! mode change: an outcome recorded against an older generation is counted for reports
//! but not judged (a call admitted while Closed that ends after the breaker opened must not
//! count as a probe).

use std::time::Duration;

use crate::config::{Config, HalfOpenRule, Wait};
use crate::window::{self, Totals, Window};

mod batch;

pub use batch::Batch;

/// The state of a circuit breaker.
///
/// - `Closed`: calls flow and their outcomes are judged.
/// - `Open`: calls are rejected without reaching the dependency.
/// - `HalfOpen`: a few probe calls are let through to test whether the dependency recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

/// Who decides the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The policies decide.
    #[default]
    Automatic,
    /// Open, rejecting every call, until set back.
    ForcedOpen,
    /// Closed, letting every call through and judging none.
    Disabled,
    /// The policies decide and the state is reported, but no call is ever rejected:
    /// a dry run of a config.
    MetricsOnly,
}

/// How a call ended, as the caller classifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    Failure,
    /// The call took longer than its timeout; judged as a failure, reported apart.
    Timeout,
    /// Neither success nor failure (e.g. a client error the dependency is not to blame for).
    Ignored,
}

/// Why a breaker changed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TriggerKind {
    FailureRate,
    SlowCallRate,
    ConsecutiveFailures,
    WaitElapsed,
    ProbeSucceeded,
    ProbeFailed,
    HalfOpenTimeout,
    Manual,
}

/// What crossed which threshold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trigger {
    pub kind: TriggerKind,
    /// A rate (0–1), a count, or seconds for `WaitElapsed` and `HalfOpenTimeout`.
    pub value: f64,
    pub threshold: f64,
}

/// One state change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub trigger: Trigger,
    /// Monotonic time of the change, on the breaker's clock.
    pub at: Duration,
    pub config_version: u64,
}

/// What kind of call a permit admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PermitKind {
    /// A call in Closed: its outcome is judged over the window.
    Normal,
    /// A probe in Half-Open.
    Probe,
    /// A call that is only reported: in `Disabled` mode, or in `MetricsOnly` mode where the
    /// breaker would have rejected it.
    Unjudged,
}

/// A permission to make one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Granted {
    pub kind: PermitKind,
    pub generation: u64,
}

/// The result of asking for a permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Granted(Granted),
    /// Rejected; the breaker stays Open until at least `retry_after` from now, when known.
    Rejected {
        retry_after: Option<Duration>,
    },
}

/// A circuit breaker's state machine. See the module docs.
#[derive(Clone, Debug)]
pub struct Machine {
    config: Config,
    mode: Mode,
    state: State,
    generation: u64,
    window: Window,
    n_consecutive_failures: u32,
    /// Opens in a row without closing in between, for the exponential wait.
    n_opens_in_row: u32,
    entered_at: Duration,
    open_until: Duration,
    n_probes_admitted: u32,
    n_probe_successes: u32,
    /// Under `HalfOpenRule::Rates`: probes that returned, and how many failed or were slow.
    n_probes_judged: u32,
    n_probe_failures: u32,
    n_probe_slow: u32,
    rng: u64,
}

// === impl TriggerKind ===

impl TriggerKind {
    /// The name used on the wire (`protocol::Trigger::kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::FailureRate => "failure_rate",
            TriggerKind::SlowCallRate => "slow_call_rate",
            TriggerKind::ConsecutiveFailures => "consecutive_failures",
            TriggerKind::WaitElapsed => "wait_elapsed",
            TriggerKind::ProbeSucceeded => "probe_succeeded",
            TriggerKind::ProbeFailed => "probe_failed",
            TriggerKind::HalfOpenTimeout => "half_open_timeout",
            TriggerKind::Manual => "manual",
        }
    }
}

// === impl State ===

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }
}

// === impl Machine ===

impl Machine {
    /// A Closed machine. `seed` drives the wait jitter, so replays are repeatable.
    pub fn new(config: Config, now: Duration, seed: u64) -> Machine {
        Machine {
            window: Window::new(config.window()),
            config,
            mode: Mode::Automatic,
            state: State::Closed,
            generation: 0,
            n_consecutive_failures: 0,
            n_opens_in_row: 0,
            entered_at: now,
            open_until: Duration::ZERO,
            n_probes_admitted: 0,
            n_probe_successes: 0,
            n_probes_judged: 0,
            n_probe_failures: 0,
            n_probe_slow: 0,
            // xorshift needs a non-zero state.
            rng: seed | 1,
        }
    }

    #[inline]
    pub fn state(&self) -> State {
        self.state
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes on every transition and mode change.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// When the current state was entered.
    pub fn entered_at(&self) -> Duration {
        self.entered_at
    }

    /// While Open, when probes will be let through.
    #[inline]
    pub fn open_until(&self) -> Option<Duration> {
        (self.state == State::Open && self.mode != Mode::ForcedOpen).then_some(self.open_until)
    }

    /// While Half-Open with every probe slot taken (and not a dry run): until when every
    /// other call is rejected, at most (the maximum wait in Half-Open, or for ever).
    pub fn probes_full_until(&self) -> Option<Duration> {
        let full = self.state == State::HalfOpen
            && self.mode == Mode::Automatic
            && self.n_probes_admitted >= self.config.half_open_probes();
        full.then(|| match self.config.half_open_max_wait() {
            Some(max_wait) => self.entered_at + max_wait,
            None => Duration::MAX,
        })
    }

    /// Consecutive failures counted so far (reset by any success).
    pub fn consecutive_failures(&self) -> u32 {
        self.n_consecutive_failures
    }

    /// Totals over the window at `now`.
    pub fn totals(&mut self, now: Duration) -> Totals {
        self.window.totals(now)
    }

    /// The failure rate judged over the window, once it holds the minimum number of calls.
    pub fn failure_rate(&mut self, now: Duration) -> Option<f64> {
        let totals = self.window.totals(now);
        (totals.n_calls >= u64::from(self.config.minimum_calls()))
            .then(|| totals.n_failures as f64 / totals.n_calls as f64)
    }

    /// The slow-call rate judged over the window, once it holds the minimum number of calls.
    pub fn slow_call_rate(&mut self, now: Duration) -> Option<f64> {
        let totals = self.window.totals(now);
        (totals.n_calls >= u64::from(self.config.minimum_calls()))
            .then(|| totals.n_slow as f64 / totals.n_calls as f64)
    }

    /// Applies a new config, keeping the state and as much of the window as the new shape holds.
    /// A stricter threshold is judged at the next recorded call.
    pub fn set_config(&mut self, config: Config, now: Duration) {
        if config.window() != self.config.window() {
            self.window = self.window.resized(config.window(), now);
        }
        self.config = config;
    }

    /// Time-driven transitions: Open → Half-Open once the wait is over, and Half-Open → Open
    /// once the maximum wait in Half-Open is over. Asking for a permit does this first.
    pub fn poll(&mut self, now: Duration) -> Option<Transition> {
        if self.mode == Mode::ForcedOpen || self.mode == Mode::Disabled {
            return None;
        }
        match self.state {
            State::Open if now >= self.open_until => {
                let waited = now.saturating_sub(self.entered_at);
                let wait = self.open_until.saturating_sub(self.entered_at);
                Some(self.enter(
                    State::HalfOpen,
                    now,
                    TriggerKind::WaitElapsed,
                    waited.as_secs_f64(),
                    wait.as_secs_f64(),
                ))
            }
            State::HalfOpen => {
                let max_wait = self.config.half_open_max_wait()?;
                let waited = now.saturating_sub(self.entered_at);
                (waited >= max_wait).then(|| {
                    self.enter(
                        State::Open,
                        now,
                        TriggerKind::HalfOpenTimeout,
                        waited.as_secs_f64(),
                        max_wait.as_secs_f64(),
                    )
                })
            }
            _ => None,
        }
    }

    /// Asks to make one call at `now`.
    pub fn acquire(&mut self, now: Duration) -> (Admission, Option<Transition>) {
        let transition = self.poll(now);
        let unjudged = Admission::Granted(Granted {
            kind: PermitKind::Unjudged,
            generation: self.generation,
        });
        let admission = match (self.mode, self.state) {
            (Mode::Disabled, _) => unjudged,
            (Mode::ForcedOpen, _) => Admission::Rejected { retry_after: None },
            (_, State::Closed) => Admission::Granted(Granted {
                kind: PermitKind::Normal,
                generation: self.generation,
            }),
            (mode, State::Open) => {
                if mode == Mode::MetricsOnly {
                    unjudged
                } else {
                    Admission::Rejected {
                        retry_after: Some(self.open_until.saturating_sub(now)),
                    }
                }
            }
            (mode, State::HalfOpen) => {
                if self.n_probes_admitted < self.config.half_open_probes() {
                    self.n_probes_admitted += 1;
                    Admission::Granted(Granted {
                        kind: PermitKind::Probe,
                        generation: self.generation,
                    })
                } else if mode == Mode::MetricsOnly {
                    unjudged
                } else {
                    Admission::Rejected { retry_after: None }
                }
            }
        };
        (admission, transition)
    }

    /// Judges the outcome of a call admitted by `granted`, which took `latency`.
    pub fn record(
        &mut self,
        now: Duration,
        granted: Granted,
        outcome: Outcome,
        latency: Duration,
    ) -> Option<Transition> {
        if granted.generation != self.generation
            || granted.kind == PermitKind::Unjudged
            || self.mode == Mode::Disabled
        {
            return None;
        }
        let failed = matches!(outcome, Outcome::Failure | Outcome::Timeout);
        let slow = outcome != Outcome::Ignored && self.config.is_slow(latency);
        match (granted.kind, self.state) {
            (PermitKind::Normal, State::Closed) => {
                if outcome == Outcome::Ignored {
                    return None;
                }
                self.judge_closed(now, failed, slow)
            }
            (PermitKind::Probe, State::HalfOpen) => {
                if outcome == Outcome::Ignored {
                    // The probe told nothing: let another one through.
                    self.n_probes_admitted -= 1;
                    return None;
                }
                if self.config.half_open_rule() == HalfOpenRule::Rates {
                    return self.judge_probes_by_rate(now, failed, slow);
                }
                if failed || slow {
                    let n_failed = 1.0;
                    return Some(self.enter(
                        State::Open,
                        now,
                        TriggerKind::ProbeFailed,
                        n_failed,
                        1.0,
                    ));
                }
                self.n_probe_successes += 1;
                let needed = self.config.half_open_successes();
                (self.n_probe_successes >= needed).then(|| {
                    self.enter(
                        State::Closed,
                        now,
                        TriggerKind::ProbeSucceeded,
                        f64::from(self.n_probe_successes),
                        f64::from(needed),
                    )
                })
            }
            _ => None,
        }
    }

    /// Records `n` successes that were counted outside the machine (the breaker's fast path),
    /// all of them neither slow nor failed; `second` is when, for time-based windows.
    /// Only valid while [`Machine::fast_successes_allowed`] says so.
    pub fn record_plain_successes(&mut self, second: u64, n: u64) {
        if n > 0 && self.state == State::Closed && self.mode != Mode::Disabled {
            self.window.push_successes(second, n);
        }
    }

    /// Whether a plain success (neither slow nor failed) can be counted without judging it:
    /// true when it cannot cause a transition. For a time-based window this holds only during
    /// the second returned, since older seconds expiring may raise a rate.
    pub fn fast_successes_allowed(&mut self, now: Duration) -> Option<u64> {
        let second = now.as_secs();
        match (self.mode, self.state) {
            (Mode::Disabled, _) => Some(second),
            (Mode::ForcedOpen, _) | (_, State::Open) | (_, State::HalfOpen) => None,
            (_, State::Closed) => {
                if self.n_consecutive_failures > 0 {
                    return None;
                }
                // Within one second no call expires, so only recorded calls change the window.
                // A success lowers both rates, so it cannot trip the breaker when the window
                // is clean, or holds the minimum number of calls with both rates below their
                // thresholds. (Rates can be above them without a trip: expired seconds or a
                // stricter config raise them until the next judged call trips.)
                let totals = self.window.totals(now);
                if totals.n_failures == 0 && totals.n_slow == 0 {
                    return Some(second);
                }
                if totals.n_calls < u64::from(self.config.minimum_calls()) {
                    return None;
                }
                let n_calls = totals.n_calls as f64;
                let below = |count: u64, threshold: Option<f64>| {
                    threshold.is_none_or(|threshold| (count as f64 / n_calls) < threshold)
                };
                let config = &self.config;
                (below(totals.n_failures, config.failure_rate_threshold())
                    && below(totals.n_slow, config.slow_call_rate_threshold()))
                .then_some(second)
            }
        }
    }

    /// Sets who decides the state. Leaving a manual mode for `Automatic` closes the breaker
    /// with an empty window; entering `MetricsOnly` keeps the current state and window.
    pub fn set_mode(&mut self, mode: Mode, now: Duration) -> Option<Transition> {
        if mode == self.mode {
            return None;
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
            Mode::Automatic | Mode::MetricsOnly => return None,
        };
        if target == self.state {
            if target == State::Closed {
                self.reset_closed();
            }
            return None;
        }
        Some(self.enter(target, now, TriggerKind::Manual, 0.0, 0.0))
    }

    fn judge_closed(&mut self, now: Duration, failed: bool, slow: bool) -> Option<Transition> {
        if failed {
            self.n_consecutive_failures += 1;
        } else {
            self.n_consecutive_failures = 0;
        }
        self.window.push(now, window::flags(failed, slow));
        if let Some(max_failures) = self.config.consecutive_failures()
            && self.n_consecutive_failures >= max_failures
        {
            let value = f64::from(self.n_consecutive_failures);
            return Some(self.trip(
                now,
                TriggerKind::ConsecutiveFailures,
                value,
                f64::from(max_failures),
            ));
        }
        let totals = self.window.totals(now);
        if totals.n_calls < u64::from(self.config.minimum_calls()) {
            return None;
        }
        let n_calls = totals.n_calls as f64;
        if let Some(threshold) = self.config.failure_rate_threshold() {
            let rate = totals.n_failures as f64 / n_calls;
            if rate >= threshold {
                return Some(self.trip(now, TriggerKind::FailureRate, rate, threshold));
            }
        }
        if let Some(threshold) = self.config.slow_call_rate_threshold() {
            let rate = totals.n_slow as f64 / n_calls;
            if rate >= threshold {
                return Some(self.trip(now, TriggerKind::SlowCallRate, rate, threshold));
            }
        }
        None
    }

    /// `HalfOpenRule::Rates`: counts a returned probe; once all `half_open_probes` returned,
    /// closes when their failure and slow-call rates are below the thresholds, else opens.
    fn judge_probes_by_rate(
        &mut self,
        now: Duration,
        failed: bool,
        slow: bool,
    ) -> Option<Transition> {
        self.n_probes_judged += 1;
        self.n_probe_failures += u32::from(failed);
        self.n_probe_slow += u32::from(slow);
        let n_probes = self.config.half_open_probes();
        if self.n_probes_judged < n_probes {
            return None;
        }
        let n = f64::from(n_probes);
        let failure_rate = f64::from(self.n_probe_failures) / n;
        let slow_rate = f64::from(self.n_probe_slow) / n;
        if let Some(threshold) = self.config.failure_rate_threshold()
            && failure_rate >= threshold
        {
            return Some(self.enter(
                State::Open,
                now,
                TriggerKind::ProbeFailed,
                failure_rate,
                threshold,
            ));
        }
        if let Some(threshold) = self.config.slow_call_rate_threshold()
            && slow_rate >= threshold
        {
            return Some(self.enter(
                State::Open,
                now,
                TriggerKind::ProbeFailed,
                slow_rate,
                threshold,
            ));
        }
        let threshold = self.config.failure_rate_threshold().unwrap_or(1.0);
        Some(self.enter(
            State::Closed,
            now,
            TriggerKind::ProbeSucceeded,
            failure_rate,
            threshold,
        ))
    }

    fn trip(&mut self, now: Duration, kind: TriggerKind, value: f64, threshold: f64) -> Transition {
        self.enter(State::Open, now, kind, value, threshold)
    }

    fn enter(
        &mut self,
        to: State,
        now: Duration,
        kind: TriggerKind,
        value: f64,
        threshold: f64,
    ) -> Transition {
        let from = self.state;
        self.state = to;
        self.generation += 1;
        self.entered_at = now;
        match to {
            State::Closed => self.reset_closed(),
            State::Open => {
                self.n_opens_in_row = self.n_opens_in_row.saturating_add(1);
                let wait = self.next_wait();
                self.open_until = now + wait;
            }
            State::HalfOpen => {
                self.n_probes_admitted = 0;
                self.n_probe_successes = 0;
                self.n_probes_judged = 0;
                self.n_probe_failures = 0;
                self.n_probe_slow = 0;
            }
        }
        Transition {
            from,
            to,
            trigger: Trigger {
                kind,
                value,
                threshold,
            },
            at: now,
            config_version: self.config.version(),
        }
    }

    fn reset_closed(&mut self) {
        self.window.clear();
        self.n_consecutive_failures = 0;
        self.n_opens_in_row = 0;
    }

    /// The wait for the current run of opens.
    fn next_wait(&mut self) -> Duration {
        match self.config.wait() {
            Wait::Fixed(wait) => wait,
            Wait::Exponential {
                initial,
                multiplier,
                max,
                jitter,
            } => {
                let exponent = self.n_opens_in_row.saturating_sub(1).min(1_000) as i32;
                let base = initial.as_secs_f64() * multiplier.powi(exponent);
                let spread = if jitter > 0.0 {
                    // Uniform in [-1, 1].
                    let unit = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
                    1.0 + jitter * (2.0 * unit - 1.0)
                } else {
                    1.0
                };
                let seconds = (base * spread).min(max.as_secs_f64());
                Duration::from_secs_f64(seconds.max(0.0))
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*: small, fast and repeatable; the jitter needs no more.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests;
