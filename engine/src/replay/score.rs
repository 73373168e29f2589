//! A replay's score (SCENARIOS.md): good calls refused while healthy, calls let through while
//! unhealthy, incidents detected and how soon, and trips while healthy.

use std::time::Duration;

use breaker::{State, Transition};

use super::Replay;
use crate::history::History;
use crate::scenario::Span;

/// The scores of SCENARIOS.md for one replay against one set of labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    /// Calls refused while the dependency was healthy.
    pub lost_good: u64,
    /// Calls let through while the dependency was unhealthy.
    pub wasted: u64,
    /// `lost_good + 0.2 · wasted`.
    pub cost: f64,
    /// Incidents that start within the scored steps.
    pub incidents: usize,
    /// Incidents during which the breaker opened within 60 s of the start (or before the end).
    pub detected: usize,
    /// Per detected incident: first opening minus the incident's start, in milliseconds.
    pub detection_delays_ms: Vec<u64>,
    /// Closed→Open transitions while healthy, more than 30 s after any incident ended.
    pub false_trips: u32,
    /// All Closed→Open transitions.
    pub trips: u32,
}

/// The weight of a wasted call against a lost good one.
pub const WASTED_WEIGHT: f64 = 0.2;
/// An incident counts as detected when the breaker opens this soon after its start.
pub const DETECTION_DEADLINE: Duration = Duration::from_secs(60);
/// A trip this soon after an incident ended is not a false trip.
pub const FALSE_TRIP_GRACE: Duration = Duration::from_secs(30);

/// Scores a replay. `healthy` is indexed by step over the whole history; `incidents` are the
/// unhealthy periods (only those starting within the replayed steps count).
pub fn score(history: &History, replay: &Replay, healthy: &[bool], incidents: &[Span]) -> Score {
    let mut res = Score::default();
    for (offset, step_idx) in replay.range.clone().enumerate() {
        if healthy.get(step_idx).copied().unwrap_or(true) {
            res.lost_good += u64::from(replay.rejected[offset]);
        } else {
            res.wasted += u64::from(replay.admitted[offset]);
        }
    }
    res.cost = res.lost_good as f64 + WASTED_WEIGHT * res.wasted as f64;
    let (range_start_ms, range_end_ms) = match (
        history.steps.get(replay.range.start),
        replay
            .range
            .end
            .checked_sub(1)
            .and_then(|i| history.steps.get(i)),
    ) {
        (Some(first), Some(_)) if !replay.range.is_empty() => (
            first.t_ms,
            history.steps[replay.range.end - 1].t_ms + history.step.as_millis() as u64,
        ),
        _ => return res,
    };
    let step_ms = history.step.as_millis() as u64;
    let opens: Vec<&Transition> = replay
        .transitions
        .iter()
        .filter(|tr| tr.to == State::Open)
        .collect();
    for incident in incidents {
        if incident.start_ms < range_start_ms || incident.start_ms >= range_end_ms {
            continue;
        }
        res.incidents += 1;
        if let Some(delay) = detection_delay(&replay.transitions, incident) {
            res.detected += 1;
            res.detection_delays_ms.push(delay);
        }
    }
    let grace_ms = FALSE_TRIP_GRACE.as_millis() as u64;
    for tr in &opens {
        if tr.from != State::Closed {
            continue;
        }
        res.trips += 1;
        let at_ms = tr.at.as_millis() as u64;
        let step_idx = ((at_ms.saturating_sub(history.steps[0].t_ms)) / step_ms.max(1)) as usize;
        let is_healthy = healthy.get(step_idx).copied().unwrap_or(true);
        let near_incident = incidents
            .iter()
            .any(|inc| at_ms >= inc.start_ms && at_ms < inc.end_ms + grace_ms);
        if is_healthy && !near_incident {
            res.false_trips += 1;
        }
    }
    res
}

/// How long after `incident` began the breaker opened, in milliseconds: 0 when it was open
/// already, `None` when it did not open within [`DETECTION_DEADLINE`] (or before the end).
pub fn detection_delay(transitions: &[Transition], incident: &Span) -> Option<u64> {
    if state_at(transitions, incident.start_ms) == State::Open {
        return Some(0);
    }
    let deadline_ms = incident.start_ms
        + (DETECTION_DEADLINE.as_millis() as u64).min(incident.end_ms - incident.start_ms);
    transitions
        .iter()
        .filter(|tr| tr.to == State::Open)
        .map(|tr| tr.at.as_millis() as u64)
        .find(|&at_ms| at_ms >= incident.start_ms && at_ms < deadline_ms)
        .map(|at_ms| at_ms - incident.start_ms)
}

/// The state the replay was in at `at_ms` (Closed before the first transition).
fn state_at(transitions: &[Transition], at_ms: u64) -> State {
    transitions
        .iter()
        .take_while(|tr| (tr.at.as_millis() as u64) <= at_ms)
        .last()
        .map_or(State::Closed, |tr| tr.to)
}
