//! The tail after an incident at its expected length, not the one a replay happened to draw.
//!
//! When an incident ends while the breaker is Open, the calls of the healthy dependency are
//! refused until the next probe: the *tail*. Where the end falls within the breaker's probe
//! cycle is luck. A replay draws it once per incident (with a wait of 5 s, a tail of 0 to 5 s),
//! so over a few incidents one wait can look a second per incident better than another by
//! alignment alone, and a search that believes the draw chooses it for that.
//!
//! So the tuner's objective counts each tail at its expectation: the incident was as likely to
//! end at any moment of the probe cycle in which it ended (from the failed probe or the trip
//! that opened the breaker to the probe that found it healthy), the breaker's schedule being
//! the same whichever it was; the tail is then half the cycle. Its calls are the rate of the
//! steps from the end to the probe times that length, in place of the drawn one. Everything
//! after the probe (more probes needed, a probe that meets one of the usual failures) stays as
//! replayed.
//!
//! The oracle is not judged this way: it is the best configuration for the very steps scored,
//! luck included.

use breaker::{State, Transition};

use crate::history::History;
use crate::scenario::Span;

/// The calls the expected tails refuse minus those the replayed tails refused, over every
/// incident of `incidents` that ends at or after `from_ms` with the breaker Open (negative
/// when the replay's draws were unlucky). `transitions` are the replay's, in time order.
pub(crate) fn expected_minus_replayed(
    history: &History,
    transitions: &[Transition],
    incidents: &[Span],
    from_ms: u64,
) -> f64 {
    let step_ms = history.step.as_millis() as u64;
    if step_ms == 0 {
        return 0.0;
    }
    let mut total = 0.0;
    for incident in incidents {
        let end = incident.end_ms;
        if end < from_ms {
            continue;
        }
        let after = transitions.partition_point(|tr| tr.at.as_millis() as u64 <= end);
        // The breaker is Open at the end, since `opened`; the next change is the probe.
        let (Some(opened), Some(probe)) = (
            after.checked_sub(1).map(|i| &transitions[i]),
            transitions.get(after),
        ) else {
            continue;
        };
        if opened.to != State::Open || probe.from != State::Open {
            continue;
        }
        let (opened_ms, probe_ms) = (opened.at.as_millis() as u64, probe.at.as_millis() as u64);
        let expected_ms = (probe_ms - opened_ms) as f64 / 2.0;
        let replayed_ms = (probe_ms - end) as f64;
        // The rate of the steps from the end to the probe's.
        let from = history.steps.partition_point(|s| s.t_ms < end);
        let through = history.steps.partition_point(|s| s.t_ms <= probe_ms);
        let after_end = &history.steps[from..through.max(from)];
        if after_end.is_empty() {
            continue;
        }
        let calls: u64 = after_end.iter().map(|s| u64::from(s.n_calls)).sum();
        let per_ms = calls as f64 / (after_end.len() as u64 * step_ms) as f64;
        total += per_ms * (expected_ms - replayed_ms);
    }
    total
}

#[cfg(test)]
mod tests;
