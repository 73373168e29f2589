//! A cooperative stop for long engine runs.
//!
//! The engine does no I/O and owns no timers: whoever runs it (the server, on a blocking
//! thread) hands it a [`Stop`], fires it from outside (the client went away, the server is
//! stopping) or gives it a deadline, and the engine checks it at coarse points (before each
//! candidate's replay, each round of the search, each back-test). A stopped run returns early
//! with [`crate::Warning::Stopped`]; it never fails.
//!
//! Without a deadline a `Stop` reads no clock, so a run that is not stopped stays
//! deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Why a run stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The caller no longer wants the result (its client went away).
    Cancelled,
    /// The time budget ran out.
    Budget,
    /// The process is shutting down.
    Shutdown,
}

/// Flags (each with the reason it stands for) and an optional deadline; clones share the
/// flags. The default never fires.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    flags: Vec<(Arc<AtomicBool>, StopReason)>,
    deadline: Option<Instant>,
}

// === impl StopReason ===

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Cancelled => "cancelled",
            StopReason::Budget => "budget",
            StopReason::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StopReason::Cancelled => "the run was cancelled",
            StopReason::Budget => "the time budget ran out",
            StopReason::Shutdown => "the server is stopping",
        })
    }
}

// === impl Stop ===

impl Stop {
    /// A stop that fires only when [`Stop::cancel`] is called (on it or a clone).
    pub fn new() -> Stop {
        Stop::default().on_flag(Arc::default(), StopReason::Cancelled)
    }

    /// Also stops, for `reason`, once `flag` is set (e.g. a server-wide shutdown flag).
    pub fn on_flag(mut self, flag: Arc<AtomicBool>, reason: StopReason) -> Stop {
        self.flags.push((flag, reason));
        self
    }

    /// Also stops, for [`StopReason::Budget`], once `deadline` has passed.
    pub fn with_deadline(mut self, deadline: Instant) -> Stop {
        self.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        self
    }

    /// The time until the deadline; `None` without one.
    pub fn time_left(&self) -> Option<std::time::Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Sets every flag that stands for [`StopReason::Cancelled`].
    pub fn cancel(&self) {
        for (flag, reason) in &self.flags {
            if *reason == StopReason::Cancelled {
                flag.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Why the run should stop now, or `None` to go on. Flags come first, in the order added.
    pub fn check(&self) -> Option<StopReason> {
        self.flags
            .iter()
            .find(|(flag, _)| flag.load(Ordering::Relaxed))
            .map(|&(_, reason)| reason)
            .or_else(|| {
                self.deadline
                    .filter(|&deadline| Instant::now() >= deadline)
                    .map(|_| StopReason::Budget)
            })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_default_never_fires_and_cancel_reaches_clones() {
        assert_eq!(Stop::default().check(), None);
        let stop = Stop::new();
        let clone = stop.clone();
        assert_eq!(clone.check(), None);
        stop.cancel();
        assert_eq!(clone.check(), Some(StopReason::Cancelled));
    }

    #[test]
    fn a_shared_flag_and_a_passed_deadline_say_why() {
        let shutdown = Arc::new(AtomicBool::new(false));
        let stop = Stop::new().on_flag(shutdown.clone(), StopReason::Shutdown);
        assert_eq!(stop.check(), None);
        shutdown.store(true, Ordering::Relaxed);
        assert_eq!(stop.check(), Some(StopReason::Shutdown));
        let now = Instant::now();
        let past = Stop::new().with_deadline(now);
        assert_eq!(past.check(), Some(StopReason::Budget));
        let far = Stop::new().with_deadline(now + Duration::from_secs(3_600));
        assert_eq!(far.check(), None);
    }
}
