//! What the tests of the search's parts share: a plain candidate and steady histories.

use std::time::Duration;

use breaker::{Wait, Window};

use super::{Candidate, EvalSet, Probes};
use crate::anomaly::Labels;
use crate::history::{History, Step};
use crate::scenario::Span;

pub(super) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A failure-rate policy and nothing else: 50 % over 10 s, judged from 10 calls, a 30 s wait,
/// one probe.
pub(super) fn rate_only() -> Candidate {
    Candidate {
        failure_rate_threshold: Some(0.5),
        window: Window::Time(10),
        minimum_calls: 10,
        consecutive_failures: None,
        slow: None,
        wait: Wait::Fixed(secs(30)),
        half_open: Probes::Successes(1, 1),
        call_timeout: None,
    }
}

/// `n_steps` one-second steps of `n_calls` calls, `n_failures` of them failing, with the
/// latencies `latency_counts` over buckets `bounds_ms`.
pub(super) fn steady_history(
    n_steps: u64,
    n_calls: u32,
    n_failures: u32,
    bounds_ms: &[u32],
    latency_counts: &[u32],
) -> History {
    History {
        step: secs(1),
        latency_buckets_ms: bounds_ms.to_vec(),
        steps: (0..n_steps)
            .map(|i| Step {
                t_ms: i * 1_000,
                n_calls,
                n_failures,
                n_rejected: 0,
                latency_counts: latency_counts.to_vec(),
            })
            .collect(),
    }
}

/// `history` with every call of the steps `outage` failing, labelled one incident.
pub(super) fn with_outage(mut history: History, outage: std::ops::Range<usize>) -> EvalSet {
    for step in &mut history.steps[outage.clone()] {
        step.n_failures = step.n_calls;
    }
    let step_ms = history.step.as_millis() as u64;
    EvalSet {
        name: "outage",
        healthy: (0..history.len()).map(|i| !outage.contains(&i)).collect(),
        incidents: vec![Span {
            start_ms: outage.start as u64 * step_ms,
            end_ms: outage.end as u64 * step_ms,
        }],
        history,
    }
}

pub(super) fn unlabelled(history: &History) -> Labels {
    Labels {
        anomalous: vec![false; history.len()],
        ..Labels::default()
    }
}
