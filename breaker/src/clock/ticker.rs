//! The second `CLOCK_MONOTONIC` is in, kept by a thread of its own so that the fast path of a
//! time-based window tells it with one load instead of a coarse clock reading.
//!
//! The thread sleeps until each whole second of `CLOCK_MONOTONIC` and then publishes a
//! reading taken on waking: it is a few tens of µs late at each boundary (a kernel tick late
//! at most under load), which the fast path accepts as it accepts a coarse clock's lag. It
//! wakes once a second, so it costs next to nothing. The whole seconds of
//! [`SystemClock`](super::SystemClock)'s `now` fall on those of `CLOCK_MONOTONIC`, so a
//! window's seconds end where the published reading moves on.
//!
//! Until the thread runs (or where it cannot, or in the child of a `fork`, which has no
//! such thread), [`reading`] is [`NONE`] and callers read the coarse clock instead.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

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
        static AT_FORK: std::sync::Once = std::sync::Once::new();
        AT_FORK.call_once(|| {
            // SAFETY: registers a handler that only stores to two atomics, which is
            // async-signal-safe as the child of a fork requires.
            unsafe { libc::pthread_atfork(None, None, Some(forgotten_in_child)) };
        });
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
        // Interrupted or not, the loop publishes what the clock says and sleeps again.
        // SAFETY: `until` is a valid timespec; no remaining time is asked for.
        unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &until,
                std::ptr::null_mut(),
            )
        };
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
