//! Injected time: a monotonic clock for the state machine and a wall clock for reports.
//!
//! The state machine never reads time itself; it is handed `now` by its caller.
//! [`CircuitBreaker`](crate::CircuitBreaker) reads it from a [`Clock`], so tests and the engine's
//! replay drive a breaker in virtual time with [`ManualClock`], deterministically.

pub(crate) mod ticker;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of time.
///
/// `now` is monotonic, measured from an arbitrary origin fixed when the clock was made;
/// `wall_ms` is milliseconds since the Unix epoch and is used only for reports.
pub trait Clock: Send + Sync + 'static {
    /// Monotonic time since the clock's origin.
    fn now(&self) -> Duration;
    /// The same time as `now`, possibly up to a few milliseconds behind but cheaper to read.
    /// The fast path uses it to tell which second it is in, for time-based windows (where
    /// [`SystemClock`]'s ticker does not tell it), and whether an Open wait has elapsed.
    fn now_coarse(&self) -> Duration {
        self.now()
    }
    /// A reading for timing calls; only the difference of two readings means anything.
    /// Latencies are measured with it, so it should be cheap.
    fn stopwatch(&self) -> u64 {
        self.now().as_nanos() as u64
    }
    /// The time between two stopwatch readings.
    fn stopwatch_elapsed(&self, start: u64, end: u64) -> Duration {
        Duration::from_nanos(end.saturating_sub(start))
    }
    /// Wall-clock time, milliseconds since the Unix epoch.
    fn wall_ms(&self) -> i64;
    /// The clock itself when it is a [`SystemClock`], so that a breaker's hot path can read
    /// it without dynamic dispatch. Other clocks keep the default.
    #[doc(hidden)]
    fn as_system_clock(&self) -> Option<SystemClock> {
        None
    }
}

/// The operating system's clocks: `std::time::Instant` (`CLOCK_MONOTONIC` on Linux, whose
/// coarse variant serves `now_coarse`) and `SystemTime`. On x86-64 Linux, when the kernel
/// itself keeps time with the TSC, the stopwatch reads the TSC directly (~10 ns instead of
/// ~25 ns for `Instant::now` on a typical VM). On Linux its origin is the latest whole
/// second of `CLOCK_MONOTONIC` when it was made, so its seconds end where those of the
/// process-wide clock thread do (see the crate README, Performance).
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
    #[cfg(target_os = "linux")]
    origin_coarse_base: Duration,
    /// Whether `origin` fell on a whole second of `CLOCK_MONOTONIC` (not within a second of
    /// boot).
    #[cfg(target_os = "linux")]
    whole_seconds: bool,
    /// Whether the stopwatch reads the TSC: checked once, not at every reading.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    tsc: bool,
    /// `clock_gettime` for the coarse clock: the vDSO's own when found.
    #[cfg(target_os = "linux")]
    coarse_gettime: ClockGettime,
}

/// A clock that only moves when told to. Clones share the same time.
///
/// Its wall clock is its monotonic time added to a fixed epoch offset, so reports made in
/// virtual time carry consistent timestamps.
#[derive(Clone, Debug)]
pub struct ManualClock {
    inner: Arc<ManualInner>,
}

#[derive(Debug)]
struct ManualInner {
    now_nanos: AtomicU64,
    wall_origin_ms: AtomicI64,
}

// === impl SystemClock ===

impl SystemClock {
    pub fn new() -> SystemClock {
        #[cfg(target_os = "linux")]
        let (origin, origin_coarse_base, whole_seconds) = SystemClock::origin();
        #[cfg(not(target_os = "linux"))]
        let origin = Instant::now();
        SystemClock {
            #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
            tsc: tsc::nanos_per_tick().is_some(),
            #[cfg(target_os = "linux")]
            coarse_gettime: vdso_clock_gettime(),
            origin,
            #[cfg(target_os = "linux")]
            origin_coarse_base,
            #[cfg(target_os = "linux")]
            whole_seconds,
        }
    }

    /// The origin: on Linux the latest whole second of `CLOCK_MONOTONIC` (which `Instant`
    /// reads, and whose coarse variant shares its base), so that the seconds of `now` end
    /// where those of the clock's [`ticker`] do; with it, the same second as a count of
    /// nanoseconds on the coarse clock's base.
    ///
    /// `Instant` is read first: the coarse base then comes after the origin (by the tens of
    /// ns between the two readings), so the coarse reading trails `now` as it should, and a
    /// second of `now` ends that much before the ticker's reading moves on.
    #[cfg(target_os = "linux")]
    fn origin() -> (Instant, Duration, bool) {
        let instant = Instant::now();
        let monotonic = monotonic(libc::CLOCK_MONOTONIC);
        let into_second = Duration::from_nanos(u64::from(monotonic.subsec_nanos()));
        match instant.checked_sub(into_second) {
            Some(origin) => (origin, monotonic - into_second, true),
            // Within the first second after boot: not aligned, the ticker is not used.
            None => (instant, monotonic, false),
        }
    }

    /// Whether the seconds of `now` end where the [`ticker`]'s reading moves on.
    pub(crate) fn whole_seconds(&self) -> bool {
        #[cfg(target_os = "linux")]
        {
            self.whole_seconds
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    }

    /// The coarse clock as a plain count of nanoseconds on its own base: cheaper to compare
    /// than [`Clock::now_coarse`]. [`SystemClock::coarse_nanos_at`] gives the count at a
    /// time of [`Clock::now`].
    #[inline]
    pub(crate) fn coarse_nanos(&self) -> u64 {
        #[cfg(target_os = "linux")]
        {
            let mut time = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `time` is a valid, writable timespec; the clock id exists on every Linux;
            // the function is `clock_gettime`, the C library's or the vDSO's.
            unsafe { (self.coarse_gettime)(libc::CLOCK_MONOTONIC_COARSE, &mut time) };
            (time.tv_sec as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(time.tv_nsec as u64)
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.now().as_nanos() as u64
        }
    }

    /// [`SystemClock::coarse_nanos`] when [`Clock::now_coarse`] reads `at`.
    pub(crate) fn coarse_nanos_at(&self, at: Duration) -> u64 {
        #[cfg(target_os = "linux")]
        let at = at.saturating_add(self.origin_coarse_base);
        at.as_nanos().min(u128::from(u64::MAX)) as u64
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    #[cfg(target_os = "linux")]
    #[inline]
    fn now_coarse(&self) -> Duration {
        let nanos = self.coarse_nanos();
        Duration::new(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
            .saturating_sub(self.origin_coarse_base)
    }

    #[inline]
    fn stopwatch(&self) -> u64 {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.tsc {
            // SAFETY: RDTSC exists on every x86-64 CPU and has no preconditions.
            return unsafe { std::arch::x86_64::_rdtsc() };
        }
        self.now().as_nanos() as u64
    }

    #[inline]
    fn stopwatch_elapsed(&self, start: u64, end: u64) -> Duration {
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        if self.tsc
            && let Some(nanos_per_tick) = tsc::nanos_per_tick()
        {
            return Duration::from_nanos(
                (end.saturating_sub(start) as f64 * nanos_per_tick) as u64,
            );
        }
        Duration::from_nanos(end.saturating_sub(start))
    }

    fn wall_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|since| since.as_millis() as i64)
            .unwrap_or(0)
    }

    fn as_system_clock(&self) -> Option<SystemClock> {
        Some(*self)
    }
}

#[cfg(target_os = "linux")]
type ClockGettime = unsafe extern "C" fn(libc::clockid_t, *mut libc::timespec) -> libc::c_int;

/// The vDSO's own `clock_gettime`, looked up once; the C library's when it cannot be found.
/// Calling it directly skips the C library's wrapper, a good part of a coarse reading's cost.
#[cfg(target_os = "linux")]
fn vdso_clock_gettime() -> ClockGettime {
    static FOUND: std::sync::OnceLock<ClockGettime> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        // SAFETY: RTLD_NOLOAD only looks up the vDSO the loader already mapped (no code
        // runs); the symbols looked up are the kernel's `clock_gettime`, with the C
        // library's signature, on every architecture that exports them.
        unsafe {
            let vdso = libc::dlopen(
                c"linux-vdso.so.1".as_ptr(),
                libc::RTLD_NOW | libc::RTLD_NOLOAD,
            );
            if vdso.is_null() {
                return libc::clock_gettime as ClockGettime;
            }
            for name in [c"__vdso_clock_gettime", c"__kernel_clock_gettime"] {
                let symbol = libc::dlsym(vdso, name.as_ptr());
                if !symbol.is_null() {
                    return std::mem::transmute::<*mut libc::c_void, ClockGettime>(symbol);
                }
            }
            libc::clock_gettime as ClockGettime
        }
    })
}

#[cfg(target_os = "linux")]
#[inline]
fn monotonic(clock_id: libc::clockid_t) -> Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec; both clock ids exist on every Linux.
    let status = unsafe { libc::clock_gettime(clock_id, &mut time) };
    debug_assert_eq!(status, 0);
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// The TSC as a stopwatch, trusted only when the kernel uses it as its clock source (it
/// then checked that the TSC is invariant and synchronised across CPUs).
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod tsc {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    static NANOS_PER_TICK: OnceLock<Option<f64>> = OnceLock::new();

    #[inline]
    pub(super) fn nanos_per_tick() -> Option<f64> {
        *NANOS_PER_TICK.get_or_init(calibrate)
    }

    #[cold]
    fn calibrate() -> Option<f64> {
        let source = std::fs::read_to_string(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
        )
        .ok()?;
        if source.trim() != "tsc" {
            return None;
        }
        // Two readings of both clocks a millisecond apart set the rate to about 1e-4, plenty
        // for latency histograms whose buckets double.
        let (start, start_ticks) = paired_reading()?;
        while start.elapsed() < Duration::from_millis(1) {
            std::hint::spin_loop();
        }
        let (end, end_ticks) = paired_reading()?;
        let ticks = end_ticks.checked_sub(start_ticks)?;
        (ticks > 0).then(|| (end - start).as_nanos() as f64 / ticks as f64)
    }

    /// An `Instant` and the TSC read together: retried until no preemption split them.
    fn paired_reading() -> Option<(Instant, u64)> {
        for _ in 0..100 {
            // SAFETY: RDTSC exists on every x86-64 CPU and has no preconditions.
            let before = unsafe { std::arch::x86_64::_rdtsc() };
            let instant = Instant::now();
            // SAFETY: as above.
            let after = unsafe { std::arch::x86_64::_rdtsc() };
            // A few microseconds at most between the two ticks.
            if after > before && after - before < 20_000 {
                return Some((instant, before + (after - before) / 2));
            }
        }
        None
    }
}

// === impl ManualClock ===

impl ManualClock {
    /// A clock at monotonic time zero, whose wall clock starts at `wall_origin_ms`.
    pub fn new(wall_origin_ms: i64) -> ManualClock {
        ManualClock {
            inner: Arc::new(ManualInner {
                now_nanos: AtomicU64::new(0),
                wall_origin_ms: AtomicI64::new(wall_origin_ms),
            }),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.inner
            .now_nanos
            .fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }

    /// Sets the monotonic time; it must not go backwards, so an earlier `now` is ignored.
    pub fn set(&self, now: Duration) {
        self.inner
            .now_nanos
            .fetch_max(now.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    /// Starts the wall clock at 2026-01-01T00:00:00Z.
    fn default() -> ManualClock {
        ManualClock::new(1_767_225_600_000)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.inner.now_nanos.load(Ordering::SeqCst))
    }

    fn wall_ms(&self) -> i64 {
        self.inner.wall_origin_ms.load(Ordering::Relaxed) + self.now().as_millis() as i64
    }
}

/// Tokio's clock, so `#[tokio::test(start_paused = true)]` moves breakers and reporters
/// together. The wall clock is the system's wall clock at the origin plus tokio's elapsed time.
#[cfg(feature = "tokio")]
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    origin: tokio::time::Instant,
    wall_origin_ms: i64,
}

#[cfg(feature = "tokio")]
impl TokioClock {
    pub fn new() -> TokioClock {
        TokioClock {
            origin: tokio::time::Instant::now(),
            wall_origin_ms: SystemClock::new().wall_ms(),
        }
    }
}

#[cfg(feature = "tokio")]
impl Default for TokioClock {
    fn default() -> TokioClock {
        TokioClock::new()
    }
}

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    fn wall_ms(&self) -> i64 {
        self.wall_origin_ms + self.origin.elapsed().as_millis() as i64
    }
}
