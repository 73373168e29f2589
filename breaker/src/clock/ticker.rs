//! The second `CLOCK_MONOTONIC` is in, kept by a thread of its own so that the fast path of a
//! time-based window tells it with one load instead of a coarse clock reading.
//!
//! The thread sleeps until each whole second of `CLOCK_MONOTONIC` and then publishes a
//! reading taken on waking: a little late at each boundary (the scheduler's wake-up
//! latency), later when the scheduler runs other threads first, which the fast path accepts as it accepts a
//! coarse clock's lag (a success in the first moments of a second may count in the one
//! before). It wakes once a second, so it costs next to nothing. The whole seconds of
//! [`SystemClock`](super::SystemClock)'s `now` fall on those of `CLOCK_MONOTONIC`, so a
//! window's seconds end where the published reading moves on. A thread that is not scheduled
//! for long cannot hold a second open for long: the fast path also asks the coarse clock
//! now and then, and a breaker's slow path forgets a reading more than two seconds old
//! ([`forget_if_stalled`]) until the thread publishes again.
//!
//! Until the thread runs (or where it cannot, or in the child of a `fork`, which has no
//! such thread, until a time-window breaker there next takes its slow path), [`reading`] is
//! [`NONE`] and callers read the coarse clock instead.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

/// No reading: read a clock instead.
pub(crate) const NONE: u64 = u64::MAX;

/// `CLOCK_MONOTONIC` in nanoseconds, read at or after the latest whole second it passed.
static READING: AtomicU64 = AtomicU64::new(NONE);

const NOT_STARTED: u8 = 0;
const RUNNING: u8 = 1;
const FAILED: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(NOT_STARTED);

#[cfg(target_os = "linux")]
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// How old a reading may be, against the coarse clock, before the slow path forgets it.
const STALLED_AFTER_NANOS: u64 = 2_000_000_000;

/// The latest published reading, or [`NONE`].
#[inline(always)]
pub(crate) fn reading() -> u64 {
    READING.load(Ordering::Relaxed)
}

/// Starts the thread unless it runs already or could not be started.
#[inline]
pub(crate) fn ensure_running() {
    if STATE.load(Ordering::Relaxed) == NOT_STARTED {
        start();
    }
}

/// Forgets the published reading if the coarse clock (`coarse_nanos`, on the same base) is
/// more than two seconds past it: the thread has not run since. It publishes again when it
/// does.
pub(crate) fn forget_if_stalled(coarse_nanos: u64) {
    let reading = reading();
    if is_stalled(reading, coarse_nanos) {
        // Only that reading: one published meanwhile stays.
        let _ = READING.compare_exchange(reading, NONE, Ordering::AcqRel, Ordering::Relaxed);
    }
}

fn is_stalled(reading: u64, coarse_nanos: u64) -> bool {
    reading != NONE && coarse_nanos > reading.saturating_add(STALLED_AFTER_NANOS)
}

#[cold]
fn start() {
    if STATE
        .compare_exchange(NOT_STARTED, RUNNING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // Not a `Once`: a fork while it ran would leave the child's waiting on it forever.
        static AT_FORK: AtomicBool = AtomicBool::new(false);
        // SAFETY: registers a handler that only stores to two atomics, which is
        // async-signal-safe as the child of a fork requires.
        if !AT_FORK.swap(true, Ordering::AcqRel)
            && unsafe { libc::pthread_atfork(None, None, Some(forgotten_in_child)) } != 0
        {
            // Without the handler a child would keep a reading no thread moves on.
            STATE.store(FAILED, Ordering::Release);
            return;
        }
        READING.store(monotonic_nanos(), Ordering::Release);
        let spawned = std::thread::Builder::new()
            .name("fusebox-clock".into())
            .stack_size(64 * 1024)
            .spawn(run);
        if spawned.is_ok() {
            return;
        }
        READING.store(NONE, Ordering::Release);
    }
    STATE.store(FAILED, Ordering::Release);
}

/// The child of a fork has no ticking thread: it reads the clock until one is started.
#[cfg(target_os = "linux")]
extern "C" fn forgotten_in_child() {
    READING.store(NONE, Ordering::Relaxed);
    STATE.store(NOT_STARTED, Ordering::Relaxed);
}

#[cfg(target_os = "linux")]
fn run() {
    // SAFETY: prctl with PR_SET_TIMERSLACK only sets this thread's timer slack: waking up
    // within a µs of the boundary rather than the default 50 µs.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    loop {
        let now = monotonic_nanos();
        READING.store(now, Ordering::Release);
        let next = (now / NANOS_PER_SECOND + 1) * NANOS_PER_SECOND;
        let until = libc::timespec {
            tv_sec: (next / NANOS_PER_SECOND) as libc::time_t,
            tv_nsec: 0,
        };
        // SAFETY: `until` is a valid timespec; no remaining time is asked for.
        let status = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &until,
                std::ptr::null_mut(),
            )
        };
        // Interrupted, the loop publishes what the clock says and sleeps again; a sleep
        // that cannot be had (a sandbox refusing it) would make the loop spin: the thread
        // stops and the fast path reads the coarse clock.
        if status != 0 && status != libc::EINTR {
            READING.store(NONE, Ordering::Release);
            STATE.store(FAILED, Ordering::Release);
            return;
        }
    }
}

#[cfg(target_os = "linux")]
fn monotonic_nanos() -> u64 {
    let now = super::monotonic(libc::CLOCK_MONOTONIC);
    now.as_secs() * NANOS_PER_SECOND + u64::from(now.subsec_nanos())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn the_reading_trails_the_clock_and_moves_on_at_the_next_whole_second() {
        ensure_running();
        let first = reading();
        assert_ne!(first, NONE, "the thread did not start");
        let now = monotonic_nanos();
        // At or after the latest whole second, and not after now.
        assert!(first <= now, "{first} after {now}");
        assert!(
            first >= now / NANOS_PER_SECOND * NANOS_PER_SECOND - NANOS_PER_SECOND,
            "{first} more than a second behind {now}"
        );
        // Waits for the next whole second to be published (a second or so).
        let deadline = Instant::now() + Duration::from_secs(10);
        let boundary = (first / NANOS_PER_SECOND + 1) * NANOS_PER_SECOND;
        while reading() < boundary {
            assert!(Instant::now() < deadline, "no reading past {boundary} ns");
            std::thread::sleep(Duration::from_millis(5));
        }
        let published = reading();
        assert!(published >= boundary && published <= monotonic_nanos());
    }

    #[test]
    fn a_reading_more_than_two_seconds_behind_the_coarse_clock_is_stalled() {
        let second = NANOS_PER_SECOND;
        assert!(!is_stalled(10 * second, 10 * second));
        assert!(!is_stalled(10 * second, 12 * second));
        assert!(is_stalled(10 * second, 12 * second + 1));
        assert!(!is_stalled(NONE, 100 * second));
        // A reading ahead of the coarse clock (which lags by a tick) is not stalled.
        assert!(!is_stalled(10 * second, 9 * second));
    }

    #[test]
    fn a_forked_child_reads_the_clock_until_the_thread_is_started_again() {
        ensure_running();
        assert_ne!(reading(), NONE);
        // SAFETY: the child only loads two atomics and exits, as a child of a multithreaded
        // process may.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let forgotten = reading() == NONE && STATE.load(Ordering::Relaxed) == NOT_STARTED;
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(if forgotten { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked; `status` is writable.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child still had a reading or a running thread"
        );
        // The parent keeps its thread.
        assert_ne!(reading(), NONE);
    }
}
