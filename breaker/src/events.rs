//! Listeners for transitions, rejections, successes, failures and slow calls.
//!
//! A breaker with no listener interested in calls never builds an event on the hot path:
//! the interests of all listeners are folded into flags the fast path already reads.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::machine::Transition;

/// What a listener wants to hear about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Interests {
    /// State changes.
    pub transitions: bool,
    /// Every call: rejections, successes, failures, timeouts, ignored and slow calls.
    /// This takes every call off the breaker's fast path.
    pub calls: bool,
    /// Measure every call's latency (for reporters' histograms) even without a slow-call policy.
    pub latency: bool,
}

/// Something that happened to a breaker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EventKind<'a> {
    Transition(&'a Transition),
    Rejected,
    Success {
        latency: Duration,
    },
    Failure {
        latency: Duration,
    },
    Timeout {
        latency: Duration,
    },
    Ignored {
        latency: Duration,
    },
    /// Sent in addition to the outcome's event when a call was slow.
    Slow {
        latency: Duration,
    },
}

/// An event with the breaker it happened to and when, on the wall clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event<'a> {
    pub breaker: &'a str,
    /// Milliseconds since the Unix epoch, from the breaker's clock.
    pub at_wall_ms: i64,
    pub kind: EventKind<'a>,
}

/// Receives events. Called outside the breaker's lock, on the thread that made the call;
/// it must be quick and must not block.
pub trait Listener: Send + Sync + 'static {
    fn interests(&self) -> Interests;
    fn on_event(&self, event: &Event<'_>);
}

/// A set of listeners shared by the breakers of a registry.
#[derive(Default)]
pub(crate) struct Listeners {
    list: RwLock<Arc<[Arc<dyn Listener>]>>,
    /// Bits of the union of interests, read on the hot path.
    interests: AtomicU8,
}

pub(crate) const WANTS_TRANSITIONS: u8 = 1;
pub(crate) const WANTS_CALLS: u8 = 2;
pub(crate) const WANTS_LATENCY: u8 = 4;

impl Listeners {
    pub(crate) fn add(&self, listener: Arc<dyn Listener>) {
        let mut list = self
            .list
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next: Vec<Arc<dyn Listener>> = list.iter().cloned().collect();
        next.push(listener);
        let mut bits = 0;
        for listener in &next {
            let interests = listener.interests();
            bits |= if interests.transitions {
                WANTS_TRANSITIONS
            } else {
                0
            };
            bits |= if interests.calls { WANTS_CALLS } else { 0 };
            bits |= if interests.latency { WANTS_LATENCY } else { 0 };
        }
        *list = next.into();
        self.interests.store(bits, Ordering::Release);
    }

    pub(crate) fn interests(&self) -> u8 {
        self.interests.load(Ordering::Acquire)
    }

    pub(crate) fn emit(&self, event: &Event<'_>) {
        let list = self
            .list
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let is_transition = matches!(event.kind, EventKind::Transition(_));
        for listener in list.iter() {
            let interests = listener.interests();
            if (is_transition && interests.transitions) || (!is_transition && interests.calls) {
                listener.on_event(event);
            }
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners")
            .field("interests", &self.interests())
            .finish_non_exhaustive()
    }
}
