//! [`CircuitBreaker`]: the thread-safe breaker that services call through.
//!
//! The [`Machine`] sits behind a mutex. In front of it, a fast path handles the common
//! case without the lock: admitting a call while Closed reads one atomic word, and a plain
//! success (not slow, judged harmless by the machine beforehand) adds one to this thread's
//! stripe. The machine absorbs those successes into its window the next time it is locked,
//! so its judgement is the same as if every call had gone through it.
//!
//! With a time-based window a fast success must fall in the second the machine last
//! judged. On the system clock the fast path tells the second from the reading that the
//! clock's ticker publishes at each whole second (one load; a success in the first moments
//! of a new second, before the ticker's thread wakes, may count in the second before), and
//! once in [`TICKER_CHECKED_EVERY`] successes of a thread from the coarse reading
//! ([`Clock::now_coarse`]) as well (a second either says has ended has ended); other
//! clocks, or no ticker, use the coarse reading, up to a kernel tick late. While latencies are measured on the system clock, the reading that
//! ended the call tells it first, against a stopwatch deadline set 1/16 of the time left
//! early; only a call ending after that deadline reads the coarse clock. Rejections while
//! Open use the coarse reading too, so the first probe may be admitted up to a tick late.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::{Clock, SystemClock, ticker};
use crate::config::{Config, Window};
use crate::events::{self, Event, EventKind, Listener, Listeners};
use crate::machine::{Admission, Granted, Machine, Mode, Outcome, PermitKind, State, Transition};
use crate::shard::{self, Counters, Stripes};
use crate::window::Totals;

/// A circuit breaker. Cloning is cheap and shares the breaker.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<Inner>,
}

/// A call was rejected without reaching the dependency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker is {}; call rejected", state.as_str())]
pub struct Rejected {
    /// The state that rejected the call (`Open`, or `HalfOpen` with every probe slot taken).
    pub state: State,
    /// How long until the breaker lets probes through, when known.
    pub retry_after: Option<Duration>,
}

/// Why a call through the breaker did not return the dependency's value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError<E> {
    #[error(transparent)]
    Rejected(Rejected),
    /// The async call ran past the configured `call_timeout`.
    #[error("call timed out after {0:?}")]
    Timeout(Duration),
    /// The dependency's own error.
    #[error("{0}")]
    Inner(E),
}

/// Permission to make one call; record its outcome with [`Permit::record`] or
/// [`Permit::finish`]. A permit dropped unrecorded counts as ignored (as a failure while the
/// thread panics), so a cancelled call never holds a Half-Open probe slot.
#[must_use = "record the call's outcome, or the permit counts as ignored"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    granted: Granted,
    /// The clock's stopwatch reading when granted, while latencies are measured.
    started: Option<u64>,
}

/// A [`Permit`] that owns a handle to its breaker, for futures that must be `'static`.
#[must_use = "record the call's outcome, or the permit counts as ignored"]
pub struct OwnedPermit {
    breaker: CircuitBreaker,
    granted: Granted,
    /// The clock's stopwatch reading when granted, while latencies are measured.
    started: Option<u64>,
    recorded: bool,
}

/// A consistent view of a breaker's judgement, taken under its lock.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub state: State,
    pub mode: Mode,
    pub config_version: u64,
    /// The failure rate over the window, once it holds the minimum number of calls.
    pub failure_rate: Option<f64>,
    pub failure_rate_threshold: Option<f64>,
    pub slow_call_rate: Option<f64>,
    pub slow_call_rate_threshold: Option<f64>,
    pub window: Totals,
    pub consecutive_failures: u32,
    /// Monotonic time on the breaker's clock when the current state was entered.
    pub entered_at: Duration,
}

struct Inner {
    hot: Hot,
    stripes: Stripes,
    core: Mutex<Core>,
    clock: Arc<dyn Clock>,
    /// `clock` when it is the system clock: the fast path reads it inline, without going
    /// through the `dyn Clock` vtable.
    system: Option<SystemClock>,
    listeners: Arc<Listeners>,
    name: Box<str>,
}

/// What the fast path reads, on its own cache lines; written only when it changes.
#[repr(align(128))]
struct Hot {
    /// State, flags and generation; see the `WORD_*` constants.
    word: AtomicU64,
    /// While Open (or Half-Open with every probe out), the monotonic nanoseconds until which
    /// calls are rejected.
    open_until_nanos: AtomicU64,
    /// The slow-call duration in nanoseconds, when a slow-call policy is on.
    slow_nanos: AtomicU64,
    /// For time-based windows: the second during which fast successes are allowed.
    fast_second: AtomicU64,
    /// For time-based windows: the coarse clock's reading (`Inner::coarse_nanos`) at which
    /// `fast_second` ends.
    fast_until_coarse: AtomicU64,
    /// The same for the [`ticker`]'s reading, which shares the coarse clock's base: 0 (never
    /// above a reading) for clocks whose seconds the ticker does not tell, those other than
    /// the system clock, or one made within a second of boot.
    fast_until_ticker: AtomicU64,
    /// For time-based windows while latencies are measured on the system clock: a stopwatch
    /// reading (early by 1/16 of the time that was left) before which `fast_second` has
    /// surely not ended, so that a call whose end was read needs no coarse reading as well;
    /// 0 if none.
    fast_until_ticks: AtomicU64,
    /// The per-call timeout for async calls in nanoseconds, or 0.
    call_timeout_nanos: AtomicU64,
    /// While latencies are measured: a stopwatch difference below this is a plain latency,
    /// neither slow nor beyond the first histogram bucket, which the fast path tells apart
    /// without converting it to a `Duration`. 0 turns that off (clocks other than the
    /// system clock).
    plain_ticks: AtomicU64,
}

struct Core {
    machine: Machine,
    /// Successes in the stripes that the machine has seen (fast ones absorbed, slow ones
    /// recorded under this lock).
    n_successes_seen: u64,
    /// The latency bound (ns) `Hot::plain_ticks` was last worked out for, and the result.
    plain: (u64, u64),
    /// The second `Hot::fast_until_ticks` was last worked out for, and the result.
    until_ticks: (u64, u64),
}

const STATE_MASK: u64 = 0b11;
const STATE_CLOSED: u64 = 0;
const STATE_OPEN: u64 = 1;
const STATE_HALF_OPEN: u64 = 2;
/// A plain success may be counted on the fast path.
const WORD_FAST: u64 = 1 << 2;
/// Metrics-only mode: no call is rejected, so the Open fast path does not apply.
const WORD_PASS: u64 = 1 << 3;
/// Measure latencies.
const WORD_TIMING: u64 = 1 << 4;
/// The window is time-based: fast successes must fall in `fast_second`.
const WORD_TIME_WINDOW: u64 = 1 << 5;
/// A listener wants every call: nothing takes the fast path.
const WORD_CALL_EVENTS: u64 = 1 << 6;
/// A slow-call policy is on: compare latencies with `slow_nanos`.
const WORD_SLOW_POLICY: u64 = 1 << 7;
/// Half-Open with every probe slot taken: reject until `open_until_nanos` without the lock.
const WORD_PROBES_FULL: u64 = 1 << 8;
const WORD_GENERATION_SHIFT: u32 = 9;
/// A thread's fast successes in a time window are checked against the coarse clock as well
/// as the ticker once in this many.
const TICKER_CHECKED_EVERY: u64 = 256;

// === impl CircuitBreaker ===

impl CircuitBreaker {
    /// A Closed breaker on the system clock.
    pub fn new(name: impl Into<String>, config: Config) -> CircuitBreaker {
        CircuitBreaker::with_clock(name, config, Arc::new(SystemClock::new()))
    }

    /// A Closed breaker on the given clock.
    pub fn with_clock(
        name: impl Into<String>,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> CircuitBreaker {
        CircuitBreaker::with_parts(name.into(), config, clock, Arc::default())
    }

    pub(crate) fn with_parts(
        name: String,
        config: Config,
        clock: Arc<dyn Clock>,
        listeners: Arc<Listeners>,
    ) -> CircuitBreaker {
        let now = clock.now();
        let machine = Machine::new(config, now, seed_of(&name));
        let breaker = CircuitBreaker {
            inner: Arc::new(Inner {
                hot: Hot {
                    word: AtomicU64::new(0),
                    open_until_nanos: AtomicU64::new(0),
                    slow_nanos: AtomicU64::new(u64::MAX),
                    fast_second: AtomicU64::new(0),
                    fast_until_coarse: AtomicU64::new(0),
                    fast_until_ticker: AtomicU64::new(0),
                    fast_until_ticks: AtomicU64::new(0),
                    call_timeout_nanos: AtomicU64::new(0),
                    plain_ticks: AtomicU64::new(0),
                },
                stripes: Stripes::new(),
                core: Mutex::new(Core {
                    machine,
                    n_successes_seen: 0,
                    plain: (0, 0),
                    until_ticks: (u64::MAX, 0),
                }),
                system: clock.as_system_clock(),
                clock,
                listeners,
                name: name.into_boxed_str(),
            }),
        };
        breaker.inner.refresh(&mut breaker.inner.lock(), now);
        breaker
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Asks to make one call. Never blocks; while Closed it reads one atomic word.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let (granted, started) = self.inner.acquire()?;
        Ok(Permit {
            breaker: self,
            granted,
            started,
        })
    }

    /// Like [`CircuitBreaker::try_acquire`], with a permit that owns a handle to the breaker.
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, Rejected> {
        let (granted, started) = self.inner.acquire()?;
        Ok(OwnedPermit {
            breaker: self.clone(),
            granted,
            started,
            recorded: false,
        })
    }

    /// Calls `f` if the breaker admits it; `Ok` is a success and `Err` a failure.
    #[inline]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, CallError<E>> {
        self.call_classified(classify_result, f)
    }

    /// Calls `f` if the breaker admits it; `classify` decides whether its result is a
    /// success, a failure, or ignored (like pybreaker's `exclude`).
    #[inline]
    pub fn call_classified<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        // Closed and measuring nothing, the common case, is kept apart from the rest so that
        // it compiles to a short path with nothing to set up for latencies.
        let word = self.inner.hot.word.load(Ordering::Acquire);
        if word & (STATE_MASK | WORD_CALL_EVENTS | WORD_TIMING) != STATE_CLOSED {
            return self.call_measured(classify, f);
        }
        let granted = Granted {
            kind: PermitKind::Normal,
            generation: word >> WORD_GENERATION_SHIFT,
        };
        // Should `f` or `classify` panic, the permit's drop records a failure.
        let permit = Permit {
            breaker: self,
            granted,
            started: None,
        };
        let result = f();
        let outcome = classify(&result);
        std::mem::forget(permit);
        // Nothing out of line on the way: whatever the plain success cannot settle with a
        // few loads is left to `finish_untimed`, which does it all again.
        if outcome == Outcome::Success && self.inner.count_plain_success(granted.generation) {
            return result.map_err(CallError::Inner);
        }
        self.finish_untimed(granted, outcome, result)
    }

    /// Records the outcome of a call that measured no latency, then hands its result back.
    #[inline(never)]
    fn finish_untimed<T, E>(
        &self,
        granted: Granted,
        outcome: Outcome,
        result: Result<T, E>,
    ) -> Result<T, CallError<E>> {
        // `count_plain_success` was tried already.
        self.inner.finish_unless_plain(granted, outcome, None);
        result.map_err(CallError::Inner)
    }

    /// [`CircuitBreaker::call_classified`] when the breaker is not Closed, measures latencies
    /// or tells listeners of every call.
    #[inline(never)]
    fn call_measured<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let result = f();
        permit.finish(classify(&result));
        result.map_err(CallError::Inner)
    }

    /// Calls `f`, or `fallback` with the reason when the breaker rejects the call or the
    /// call fails.
    pub fn call_or_fallback<T, E>(
        &self,
        f: impl FnOnce() -> Result<T, E>,
        fallback: impl FnOnce(CallError<E>) -> T,
    ) -> T {
        self.call(f).unwrap_or_else(fallback)
    }

    /// Awaits `future` if the breaker admits it; `Ok` is a success and `Err` a failure.
    /// With a `call_timeout` configured (and the `tokio` feature), a call running longer is
    /// dropped and counts as a timeout.
    pub async fn call_async<T, E>(
        &self,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, CallError<E>> {
        self.call_async_classified(classify_result, future).await
    }

    /// Awaits `future`, or calls `fallback` with the reason when the breaker rejects the call,
    /// the call fails or it times out.
    pub async fn call_async_or_fallback<T, E>(
        &self,
        future: impl Future<Output = Result<T, E>>,
        fallback: impl FnOnce(CallError<E>) -> T,
    ) -> T {
        self.call_async(future).await.unwrap_or_else(fallback)
    }

    /// [`CircuitBreaker::call_async`] with a classifier, as in
    /// [`CircuitBreaker::call_classified`].
    pub async fn call_async_classified<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        future: impl Future<Output = Result<T, E>>,
    ) -> Result<T, CallError<E>> {
        let permit = self.try_acquire().map_err(CallError::Rejected)?;
        let timeout_nanos = self.inner.hot.call_timeout_nanos.load(Ordering::Relaxed);
        let result = if timeout_nanos == 0 {
            future.await
        } else {
            let timeout = Duration::from_nanos(timeout_nanos);
            match with_timeout(timeout, future).await {
                Some(result) => result,
                None => {
                    permit.record(Outcome::Timeout, timeout);
                    return Err(CallError::Timeout(timeout));
                }
            }
        };
        permit.finish(classify(&result));
        result.map_err(CallError::Inner)
    }

    /// The current state. Notices a wait in Open that has elapsed (moving to Half-Open)
    /// without waiting for the next call.
    pub fn state(&self) -> State {
        let word = self.inner.hot.word.load(Ordering::Acquire);
        if word & STATE_MASK == STATE_CLOSED {
            return State::Closed;
        }
        let now = self.inner.clock.now();
        let mut core = self.inner.lock();
        let transition = core.machine.poll(now);
        let state = core.machine.state();
        self.inner.refresh(&mut core, now);
        drop(core);
        self.inner.emit_transition(transition);
        state
    }

    pub fn mode(&self) -> Mode {
        self.inner.lock().machine.mode()
    }

    pub fn config(&self) -> Config {
        self.inner.lock().machine.config().clone()
    }

    /// Applies a new config atomically, keeping the state and the window's calls.
    pub fn set_config(&self, config: Config) {
        let now = self.inner.clock.now();
        let mut core = self.inner.lock();
        self.inner.absorb(&mut core);
        core.machine.set_config(config, now);
        self.inner.refresh(&mut core, now);
    }

    /// Forces a state (`ForcedOpen`, `Disabled`), runs a dry run (`MetricsOnly`), or goes
    /// back to `Automatic`.
    pub fn set_mode(&self, mode: Mode) {
        let now = self.inner.clock.now();
        let mut core = self.inner.lock();
        self.inner.absorb(&mut core);
        let transition = core.machine.set_mode(mode, now);
        self.inner.refresh(&mut core, now);
        drop(core);
        self.inner.emit_transition(transition);
    }

    /// The judgement as of now: state, rates, window totals.
    pub fn snapshot(&self) -> Snapshot {
        let now = self.inner.clock.now();
        let mut core = self.inner.lock();
        let transition = core.machine.poll(now);
        self.inner.absorb(&mut core);
        let machine = &mut core.machine;
        let snapshot = Snapshot {
            state: machine.state(),
            mode: machine.mode(),
            config_version: machine.config().version(),
            failure_rate: machine.failure_rate(now),
            failure_rate_threshold: machine.config().failure_rate_threshold(),
            slow_call_rate: machine.slow_call_rate(now),
            slow_call_rate_threshold: machine.config().slow_call_rate_threshold(),
            window: machine.totals(now),
            consecutive_failures: machine.consecutive_failures(),
            entered_at: machine.entered_at(),
        };
        self.inner.refresh(&mut core, now);
        drop(core);
        self.inner.emit_transition(transition);
        snapshot
    }

    /// Cumulative call counts since the breaker was made; lock-free.
    pub fn counters(&self) -> Counters {
        self.inner.stripes.sum()
    }

    /// Adds a listener to this breaker. Breakers of a [`Registry`](crate::Registry) share
    /// the registry's listeners; use [`Registry::add_listener`](crate::Registry::add_listener).
    pub fn add_listener(&self, listener: Arc<dyn Listener>) {
        self.inner.listeners.add(listener);
        self.refresh_flags();
    }

    pub(crate) fn refresh_flags(&self) {
        let now = self.inner.clock.now();
        let mut core = self.inner.lock();
        self.inner.refresh(&mut core, now);
    }

    #[inline]
    fn record(&self, granted: Granted, outcome: Outcome, latency: Duration) {
        self.inner.record(granted, outcome, latency);
    }
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

// === impl Inner ===

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Core> {
        // The machine's invariants hold between calls; a panic elsewhere cannot break them.
        self.core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admitting a call while Closed, inlined into the caller; the rest out of line.
    #[inline(always)]
    fn acquire(&self) -> Result<(Granted, Option<u64>), Rejected> {
        let word = self.hot.word.load(Ordering::Acquire);
        if word & (STATE_MASK | WORD_CALL_EVENTS) == STATE_CLOSED {
            let started = (word & WORD_TIMING != 0).then(|| self.stopwatch());
            let granted = Granted {
                kind: PermitKind::Normal,
                generation: word >> WORD_GENERATION_SHIFT,
            };
            return Ok((granted, started));
        }
        self.acquire_not_closed(word)
    }

    /// Rejecting while Open (or Half-Open with every probe out) without the lock, or going
    /// to the machine.
    #[inline(never)]
    fn acquire_not_closed(&self, word: u64) -> Result<(Granted, Option<u64>), Rejected> {
        let rejecting = word & (STATE_MASK | WORD_CALL_EVENTS | WORD_PASS | WORD_PROBES_FULL);
        if rejecting == STATE_OPEN || rejecting == STATE_HALF_OPEN | WORD_PROBES_FULL {
            // The coarse clock lags by a kernel tick at most: a call at the very end of the
            // wait may be rejected a few ms late, and the next one goes to the machine.
            let now = self.now_coarse();
            let open_until = self.hot.open_until_nanos.load(Ordering::Acquire);
            let now_nanos = nanos(now);
            if now_nanos < open_until {
                self.stripes.local().add(shard::REJECTED, 1);
                let open = rejecting == STATE_OPEN;
                return Err(Rejected {
                    state: if open { State::Open } else { State::HalfOpen },
                    retry_after: (open && open_until != u64::MAX)
                        .then(|| Duration::from_nanos(open_until - now_nanos)),
                });
            }
        }
        self.acquire_slow()
    }

    #[cold]
    fn acquire_slow(&self) -> Result<(Granted, Option<u64>), Rejected> {
        let now = self.clock.now();
        let mut core = self.lock();
        self.absorb(&mut core);
        let (admission, transition) = core.machine.acquire(now);
        let state = core.machine.state();
        match admission {
            Admission::Rejected { .. } => self.stripes.local().add(shard::REJECTED, 1),
            Admission::Granted(Granted {
                kind: PermitKind::Unjudged,
                ..
            }) if core.machine.mode() == Mode::MetricsOnly => {
                self.stripes.local().add(shard::WOULD_REJECT, 1);
            }
            Admission::Granted(_) => {}
        }
        let word = self.refresh(&mut core, now);
        drop(core);
        self.emit_transition(transition);
        match admission {
            Admission::Granted(granted) => {
                let started = (word & WORD_TIMING != 0).then(|| self.stopwatch());
                Ok((granted, started))
            }
            Admission::Rejected { retry_after } => {
                if word & WORD_CALL_EVENTS != 0 {
                    self.emit(now, EventKind::Rejected);
                }
                Err(Rejected { state, retry_after })
            }
        }
    }

    /// The clock's stopwatch, read inline for the system clock.
    #[inline(always)]
    fn stopwatch(&self) -> u64 {
        match &self.system {
            Some(system) => system.stopwatch(),
            None => self.clock.stopwatch(),
        }
    }

    /// The coarse clock in nanoseconds on its own base: for the system clock, the raw reading
    /// without converting it to a `Duration` since the clock's origin.
    #[inline(always)]
    fn coarse_nanos(&self) -> u64 {
        match &self.system {
            Some(system) => system.coarse_nanos(),
            None => nanos(self.clock.now_coarse()),
        }
    }

    #[inline]
    fn now_coarse(&self) -> Duration {
        match &self.system {
            Some(system) => system.now_coarse(),
            None => self.clock.now_coarse(),
        }
    }

    /// Whether a success admitted by `granted` may be counted on the fast path, as far as
    /// `word` and the time tell (its latency aside).
    ///
    /// `end` is the stopwatch reading when the call ended, if it was read: for a time-based
    /// window it tells, most of the time, that the call ended within `fast_second`
    /// without reading the coarse clock as well.
    #[inline(always)]
    fn fast_success(&self, word: u64, granted: Granted, end: Option<u64>) -> bool {
        granted.kind == PermitKind::Normal
            && word & WORD_FAST != 0
            && word >> WORD_GENERATION_SHIFT == granted.generation
            && (word & WORD_TIME_WINDOW == 0
                || end.is_some_and(|end| end < self.hot.fast_until_ticks.load(Ordering::Relaxed))
                || self.in_fast_second())
    }

    /// Counts a plain success admitted with `generation` while no latency was measured, if
    /// that needs no clock reading nor slot to be claimed; false when it was not counted.
    #[inline(always)]
    fn count_plain_success(&self, generation: u64) -> bool {
        let word = self.hot.word.load(Ordering::Acquire);
        if word & WORD_FAST == 0 || word >> WORD_GENERATION_SHIFT != generation {
            return false;
        }
        let Some(stripe) = self.stripes.local_if_claimed() else {
            return false;
        };
        if word & WORD_TIME_WINDOW != 0
            // `ticker::NONE` is never below it; it is 0 for clocks without a ticker.
            && (ticker::reading() >= self.hot.fast_until_ticker.load(Ordering::Relaxed)
                // Every so often the coarse clock is asked as well, so that a ticker stalled
                // (its thread not scheduled) holds a second open for so many calls at most.
                || stripe.count(shard::SUCCESS) % TICKER_CHECKED_EVERY == 0)
        {
            return false;
        }
        stripe.add(shard::SUCCESS, 1);
        if word & WORD_TIMING != 0 {
            stripe.add_latency_bucket(0);
        }
        true
    }

    /// Whether `fast_second` still runs: not if the ticker's reading says it has ended (when
    /// it tells this clock's seconds), nor if the coarse clock does (it lags, so it cannot
    /// end a second early, and a ticker that stalled cannot keep one open against it).
    #[inline(never)]
    fn in_fast_second(&self) -> bool {
        let until_ticker = self.hot.fast_until_ticker.load(Ordering::Relaxed);
        let ended_by_ticker = until_ticker != 0 && {
            let reading = ticker::reading();
            reading != ticker::NONE && reading >= until_ticker
        };
        !ended_by_ticker && self.coarse_nanos() < self.hot.fast_until_coarse.load(Ordering::Relaxed)
    }

    /// Records a call that ends now, `started` being the stopwatch reading when it was
    /// granted, if latencies were measured then (else its latency is zero). Only a plain
    /// success (not slow, in the first latency bucket) counted on the fast path is inlined.
    #[inline(always)]
    fn finish(&self, granted: Granted, outcome: Outcome, started: Option<u64>) {
        // A permit or an async call that measured nothing: the same few loads as `call`'s.
        if started.is_none()
            && outcome == Outcome::Success
            && granted.kind == PermitKind::Normal
            && self.count_plain_success(granted.generation)
        {
            return;
        }
        self.finish_unless_plain(granted, outcome, started);
    }

    /// [`Inner::finish`] past its first try: for a success that `count_plain_success` could
    /// not settle, the time window asked of the clocks, or a latency measured.
    #[inline(always)]
    fn finish_unless_plain(&self, granted: Granted, outcome: Outcome, started: Option<u64>) {
        let end = started.map(|_| self.stopwatch());
        if outcome == Outcome::Success {
            // The word first: `plain_ticks` is stored before it changes.
            let word = self.hot.word.load(Ordering::Acquire);
            // A zero latency is plain too: slow-call durations are never zero.
            let plain = match (started, end) {
                (Some(started), Some(end)) => {
                    end.saturating_sub(started) < self.hot.plain_ticks.load(Ordering::Relaxed)
                }
                _ => true,
            };
            if plain && self.fast_success(word, granted, end) {
                let stripe = self.stripes.local();
                stripe.add(shard::SUCCESS, 1);
                if word & WORD_TIMING != 0 {
                    stripe.add_latency_bucket(0);
                }
                return;
            }
        }
        self.finish_measured(granted, outcome, started, end);
    }

    /// The rest of [`Inner::finish`]: the latency as a `Duration`, then recorded.
    #[inline(never)]
    fn finish_measured(
        &self,
        granted: Granted,
        outcome: Outcome,
        started: Option<u64>,
        end: Option<u64>,
    ) {
        let latency = match (started, end, &self.system) {
            (Some(started), Some(end), Some(system)) => system.stopwatch_elapsed(started, end),
            (Some(started), Some(end), None) => self.clock.stopwatch_elapsed(started, end),
            _ => Duration::ZERO,
        };
        self.record(granted, outcome, latency);
    }

    #[inline(always)]
    fn record(&self, granted: Granted, outcome: Outcome, latency: Duration) {
        let word = self.hot.word.load(Ordering::Acquire);
        if outcome == Outcome::Success
            && (word & WORD_SLOW_POLICY == 0
                || nanos(latency) < self.hot.slow_nanos.load(Ordering::Relaxed))
            && self.fast_success(word, granted, None)
        {
            let stripe = self.stripes.local();
            stripe.add(shard::SUCCESS, 1);
            if word & WORD_TIMING != 0 {
                stripe.add_latency(latency);
            }
            return;
        }
        self.record_slow(granted, outcome, latency);
    }

    #[cold]
    fn record_slow(&self, granted: Granted, outcome: Outcome, latency: Duration) {
        let now = self.clock.now();
        let mut core = self.lock();
        self.absorb(&mut core);
        let transition = core.machine.record(now, granted, outcome, latency);
        let slow = outcome != Outcome::Ignored && core.machine.config().is_slow(latency);
        let stripe = self.stripes.local();
        stripe.add(
            match outcome {
                Outcome::Success => shard::SUCCESS,
                Outcome::Failure => shard::FAILURE,
                Outcome::Timeout => shard::TIMEOUT,
                Outcome::Ignored => shard::IGNORED,
            },
            1,
        );
        if outcome == Outcome::Success {
            core.n_successes_seen += 1;
        }
        if slow {
            stripe.add(shard::SLOW, 1);
        }
        let word = self.refresh(&mut core, now);
        if word & WORD_TIMING != 0 {
            stripe.add_latency(latency);
        }
        drop(core);
        self.emit_transition(transition);
        if word & WORD_CALL_EVENTS != 0 {
            self.emit(
                now,
                match outcome {
                    Outcome::Success => EventKind::Success { latency },
                    Outcome::Failure => EventKind::Failure { latency },
                    Outcome::Timeout => EventKind::Timeout { latency },
                    Outcome::Ignored => EventKind::Ignored { latency },
                },
            );
            if slow {
                self.emit(now, EventKind::Slow { latency });
            }
        }
    }

    /// Hands the machine the successes counted on the fast path since it last looked.
    fn absorb(&self, core: &mut Core) {
        let n_successes = self.stripes.sum_of(shard::SUCCESS);
        let n_new = n_successes.saturating_sub(core.n_successes_seen);
        if n_new > 0 {
            let second = self.hot.fast_second.load(Ordering::Relaxed);
            core.machine.record_plain_successes(second, n_new);
            core.n_successes_seen = n_successes;
        }
    }

    /// Publishes the machine's state to the fast path; returns the word.
    fn refresh(&self, core: &mut Core, now: Duration) -> u64 {
        let machine = &mut core.machine;
        let interests = self.listeners.interests();
        // Judged first: it lets expired seconds of a time-based window go.
        let fast_second = if interests & events::WANTS_CALLS == 0 {
            machine.fast_successes_allowed(now)
        } else {
            None
        };
        let config = machine.config();
        let mut word = match machine.state() {
            State::Closed => STATE_CLOSED,
            State::Open => STATE_OPEN,
            State::HalfOpen => STATE_HALF_OPEN,
        };
        word |= machine.generation() << WORD_GENERATION_SHIFT;
        if machine.mode() == Mode::MetricsOnly {
            word |= WORD_PASS;
        }
        let slow_policy = config.slow_call_rate_threshold().is_some();
        if slow_policy {
            word |= WORD_SLOW_POLICY;
            store_if_changed(&self.hot.slow_nanos, nanos(config.slow_call_duration()));
        }
        if slow_policy || interests & events::WANTS_LATENCY != 0 {
            word |= WORD_TIMING;
            // Plain: in the first histogram bucket (≤ its bound in whole µs) and not slow.
            let mut bound = (shard::LATENCY_BOUNDS_US[0] + 1) * 1_000;
            if slow_policy {
                bound = bound.min(nanos(config.slow_call_duration()));
            }
            if core.plain.0 != bound {
                core.plain = (
                    bound,
                    self.system.map_or(0, |system| plain_ticks(&system, bound)),
                );
            }
            store_if_changed(&self.hot.plain_ticks, core.plain.1);
        }
        if interests & events::WANTS_CALLS != 0 {
            word |= WORD_CALL_EVENTS;
        } else if let Some(second) = fast_second {
            word |= WORD_FAST;
            if let Window::Time(_) = config.window() {
                word |= WORD_TIME_WINDOW;
                if let Some(system) = &self.system {
                    ticker::ensure_running();
                    ticker::forget_if_stalled(system.coarse_nanos());
                }
                store_if_changed(&self.hot.fast_second, second);
                // The coarse reading may lag by a tick: a success read as still in the
                // second before is still one in `fast_second` (the machine saw it begin).
                let until = Duration::from_secs(second + 1);
                let until = match &self.system {
                    Some(system) => system.coarse_nanos_at(until),
                    None => nanos(until),
                };
                store_if_changed(&self.hot.fast_until_coarse, until);
                store_if_changed(
                    &self.hot.fast_until_ticker,
                    match &self.system {
                        Some(system) if system.whole_seconds() => until,
                        _ => 0,
                    },
                );
                let until_ticks = match &self.system {
                    Some(system) if word & WORD_TIMING != 0 => {
                        if core.until_ticks.0 != second {
                            core.until_ticks = (
                                second,
                                stopwatch_before(system, Duration::from_secs(second + 1)),
                            );
                        }
                        core.until_ticks.1
                    }
                    _ => 0,
                };
                store_if_changed(&self.hot.fast_until_ticks, until_ticks);
            }
        }
        let open_until = match (machine.mode(), machine.open_until()) {
            (Mode::ForcedOpen, _) => u64::MAX,
            (_, Some(until)) => nanos(until),
            (_, None) => match machine.probes_full_until() {
                Some(until) => {
                    word |= WORD_PROBES_FULL;
                    nanos(until)
                }
                None => 0,
            },
        };
        store_if_changed(&self.hot.open_until_nanos, open_until);
        store_if_changed(
            &self.hot.call_timeout_nanos,
            config.call_timeout().map_or(0, nanos),
        );
        store_if_changed(&self.hot.word, word);
        word
    }

    fn emit_transition(&self, transition: Option<Transition>) {
        if let Some(transition) = transition
            && self.listeners.interests() & events::WANTS_TRANSITIONS != 0
        {
            self.listeners.emit(&Event {
                breaker: &self.name,
                at_wall_ms: self.wall_ms_at(transition.at),
                kind: EventKind::Transition(&transition),
            });
        }
    }

    fn emit(&self, now: Duration, kind: EventKind<'_>) {
        self.listeners.emit(&Event {
            breaker: &self.name,
            at_wall_ms: self.wall_ms_at(now),
            kind,
        });
    }

    /// The wall-clock time of a monotonic instant, through the clock's current offset.
    fn wall_ms_at(&self, at: Duration) -> i64 {
        let now = self.clock.now();
        let wall_now = self.clock.wall_ms();
        wall_now - (now.saturating_sub(at).as_millis() as i64)
    }
}

// === impl Permit ===

impl Permit<'_> {
    pub fn kind(&self) -> PermitKind {
        self.granted.kind
    }

    /// Records the outcome and latency of the call.
    #[inline]
    pub fn record(self, outcome: Outcome, latency: Duration) {
        let this = std::mem::ManuallyDrop::new(self);
        this.breaker.record(this.granted, outcome, latency);
    }

    /// Records the outcome, with the latency measured since the permit was granted (zero
    /// when the breaker measures no latency: no slow-call policy and no reporter).
    #[inline]
    pub fn finish(self, outcome: Outcome) {
        let this = std::mem::ManuallyDrop::new(self);
        this.breaker
            .inner
            .finish(this.granted, outcome, this.started);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker
            .inner
            .finish(self.granted, dropped_outcome(), self.started);
    }
}

// === impl OwnedPermit ===

impl OwnedPermit {
    pub fn kind(&self) -> PermitKind {
        self.granted.kind
    }

    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    pub fn record(mut self, outcome: Outcome, latency: Duration) {
        self.recorded = true;
        self.breaker.record(self.granted, outcome, latency);
    }

    pub fn finish(mut self, outcome: Outcome) {
        self.recorded = true;
        self.breaker
            .inner
            .finish(self.granted, outcome, self.started);
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        self.breaker
            .inner
            .finish(self.granted, dropped_outcome(), self.started);
    }
}

/// `Ok` is a success, `Err` a failure.
pub fn classify_result<T, E>(result: &Result<T, E>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

fn dropped_outcome() -> Outcome {
    if std::thread::panicking() {
        Outcome::Failure
    } else {
        Outcome::Ignored
    }
}

/// A stopwatch reading of `clock` that surely comes before `at` (on its monotonic clock):
/// what is left until `at` now, less 1/16 of it for the error of the stopwatch's rate, as
/// stopwatch ticks added to a reading now; 0 when `at` has passed. (The TSC's rate is
/// calibrated from readings paired within 20,000 ticks over at least 1 ms: off by under
/// 1/16 for any TSC of 320 MHz or more, and by about 1e-4 in practice.)
fn stopwatch_before(clock: &SystemClock, at: Duration) -> u64 {
    // The stopwatch first: a reading taken before `now` can only make the deadline earlier.
    let reading = clock.stopwatch();
    let now = clock.now();
    let left = at.saturating_sub(now);
    if left.is_zero() {
        return 0;
    }
    reading.saturating_add(plain_ticks(clock, nanos(left - left / 16)))
}

/// The smallest stopwatch difference that `clock` converts to `bound_nanos` or more: every
/// difference below it is a latency below the bound. The conversion grows with the
/// difference, so a binary search finds it.
fn plain_ticks(clock: &SystemClock, bound_nanos: u64) -> u64 {
    let (mut low, mut high) = (0u64, u64::MAX);
    while low < high {
        let mid = low + (high - low) / 2;
        if nanos(clock.stopwatch_elapsed(0, mid)) >= bound_nanos {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low
}

#[inline]
fn nanos(duration: Duration) -> u64 {
    duration.as_nanos().min(u128::from(u64::MAX - 1)) as u64
}

fn store_if_changed(cell: &AtomicU64, value: u64) {
    // Writing only on change keeps the fast path's cache line shared between cores.
    if cell.load(Ordering::Relaxed) != value {
        cell.store(value, Ordering::Release);
    }
}

/// FNV-1a of the name: a stable seed for the wait jitter, different per breaker.
fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(feature = "tokio")]
async fn with_timeout<F: Future>(timeout: Duration, future: F) -> Option<F::Output> {
    tokio::time::timeout(timeout, future).await.ok()
}

#[cfg(not(feature = "tokio"))]
async fn with_timeout<F: Future>(_timeout: Duration, future: F) -> Option<F::Output> {
    // Without a timer there is no way to abandon the call; it runs to completion.
    Some(future.await)
}

#[cfg(test)]
mod tests;
