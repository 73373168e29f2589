//! Client-side adaptive throttling (Google's SRE book, "Handling Overload"), replayed over a
//! history as a baseline beside the breaker's configurations.
//!
//! A client remembers, over the last two minutes, how many calls it attempted (`requests`)
//! and how many the dependency served (`accepts`), and rejects a new call locally with
//! probability `max(0, (requests − K · accepts) / (requests + 1))`, K = 2. It has no threshold
//! to tune: a healthy dependency accepts almost everything, so nothing is rejected; one that
//! fails every call is left with a trickle of calls that tell when it is back.
//!
//! The replay is deterministic: within a step the probability is fixed (from the two minutes
//! before it), and rejections are spread through the step by carrying the fractional part
//! from call to call (error diffusion) instead of drawing random numbers. Failures are spread
//! as in [`crate::replay`], so admitted calls fail in the step's failure share. For the scores,
//! the throttle counts as "open" during a step in which it rejected a call and "closed" in one
//! in which it rejected none; so recall and false trips mean "began rejecting".

use std::ops::Range;
use std::time::Duration;

use breaker::{State, Transition, Trigger, TriggerKind};

use crate::history::History;
use crate::replay::Replay;

/// The SRE book's multiplier: a client rejects once requests exceed twice the accepts.
pub const K: f64 = 2.0;
/// The history a client remembers.
pub const WINDOW: Duration = Duration::from_secs(120);

/// Replays the steps `range` of `history` through adaptive throttling with multiplier `k`.
pub fn replay(history: &History, range: Range<usize>, k: f64) -> Replay {
    let step_ms = history.step.as_millis().max(1) as u64;
    let window_steps = (WINDOW.as_millis() as u64).div_ceil(step_ms).max(1) as usize;
    let mut out = Replay {
        range: range.clone(),
        admitted: Vec::with_capacity(range.len()),
        rejected: Vec::with_capacity(range.len()),
        transitions: Vec::new(),
        replayed_calls: 0,
        quiet_calls: 0,
    };
    // Per step of the window: (requests, accepts), and their sums.
    let mut ring: std::collections::VecDeque<(f64, f64)> = std::collections::VecDeque::new();
    let (mut requests, mut accepts) = (0.0_f64, 0.0_f64);
    let mut carry = 0.0_f64;
    let mut rejecting = false;
    for step in &history.steps[range] {
        let n = step.n_calls;
        let p = ((requests - k * accepts) / (requests + 1.0)).clamp(0.0, 1.0);
        // Rejections of this step: the integer part of carry + n·p, the rest carried on.
        let wanted = carry + f64::from(n) * p;
        let n_rejected = (wanted.floor() as u64).min(u64::from(n)) as u32;
        carry = wanted - f64::from(n_rejected);
        let n_admitted = n - n_rejected;
        // Admitted calls fail in the step's failure share (failures spread evenly).
        let failed = if n == 0 {
            0.0
        } else {
            f64::from(n_admitted) * f64::from(step.n_failures.min(n)) / f64::from(n)
        };
        out.admitted.push(n_admitted);
        out.rejected.push(n_rejected);
        out.replayed_calls += u64::from(n.min(crate::replay::MAX_CALLS_PER_STEP));
        let at = Duration::from_millis(step.t_ms);
        if n_rejected > 0 && !rejecting {
            out.transitions
                .push(transition(State::Closed, State::Open, at, p));
            rejecting = true;
        } else if n_rejected == 0 && n > 0 && rejecting {
            out.transitions
                .push(transition(State::Open, State::Closed, at, p));
            rejecting = false;
        }
        let served = f64::from(n_admitted) - failed;
        ring.push_back((f64::from(n), served));
        requests += f64::from(n);
        accepts += served;
        if ring.len() > window_steps
            && let Some((old_requests, old_accepts)) = ring.pop_front()
        {
            requests -= old_requests;
            accepts -= old_accepts;
        }
    }
    out
}

fn transition(from: State, to: State, at: Duration, p: f64) -> Transition {
    Transition {
        from,
        to,
        at,
        trigger: Trigger {
            kind: TriggerKind::FailureRate,
            value: p,
            threshold: 0.0,
        },
        config_version: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Step;

    fn history(steps: &[(u32, u32)]) -> History {
        History {
            step: Duration::from_secs(1),
            latency_buckets_ms: vec![1, 10, 100],
            steps: steps
                .iter()
                .enumerate()
                .map(|(i, &(n_calls, n_failures))| Step {
                    t_ms: i as u64 * 1_000,
                    n_calls,
                    n_failures,
                    n_rejected: 0,
                    latency_counts: vec![n_calls, 0, 0],
                })
                .collect(),
        }
    }

    #[test]
    fn healthy_traffic_is_never_rejected() {
        let h = history(&vec![(100, 1); 600]);
        let out = replay(&h, 0..600, K);
        assert_eq!(out.rejected.iter().sum::<u32>(), 0);
        assert!(out.transitions.is_empty());
    }

    #[test]
    fn an_outage_is_throttled_to_a_trickle_and_released_slowly_after_it() {
        // 5 minutes healthy, 5 minutes failing every call, 30 minutes healthy.
        let mut steps = vec![(100, 0); 300];
        steps.extend(vec![(100, 100); 300]);
        steps.extend(vec![(100, 0); 1_800]);
        let h = history(&steps);
        let out = replay(&h, 0..steps.len(), K);
        // Late in the outage almost every call is rejected locally.
        let late: u32 = out.rejected[540..600].iter().sum();
        assert!(late > 60 * 95, "{late}");
        // It begins rejecting once the failing seconds outweigh the served ones K to 1 over
        // the window: requests − 2·accepts > 0 after 60 of its 120 s failed.
        let began = out.transitions[0].at.as_secs();
        assert!((360..=362).contains(&began), "{began}");
        // Afterwards the trickle of admitted calls succeeds, accepts grow, and it lets
        // everything through again; but only after minutes: the rejected calls still count
        // as requests.
        let ended = out.transitions.last().unwrap();
        assert_eq!(ended.to, State::Closed);
        let released = ended.at.as_secs();
        assert!(released > 700 && released < 2_400, "{released}");
        assert_eq!(out.rejected[steps.len() - 1], 0);
        // Deterministic.
        assert_eq!(replay(&h, 0..steps.len(), K).rejected, out.rejected);
    }
}
