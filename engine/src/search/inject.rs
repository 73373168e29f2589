//! Evaluation sets written from the history itself, each in a copy of a normal stretch:
//! generic injected incidents (outages, partial failures, a slow-down), stressed stretches,
//! and the history's own incidents moved onto other traffic (transplanted).

use super::EvalSet;
use crate::anomaly::Labels;
use crate::history::{History, Step};
use crate::scenario::Span;

/// The name of the transplanted incidents' sets.
pub(super) const TRANSPLANT: &str = "transplant";

/// The fewest incidents of its own a history needs for them to replace the generic ones.
pub(super) const MIN_TRANSPLANTS: usize = 2;

/// The most incidents transplanted per copy of the generic ones asked for (evenly chosen
/// among the history's periods): as many as the generic incidents they replace.
pub(super) const MAX_TRANSPLANTS_PER_COPY: usize = 6;

/// What an injected stretch looks like.
#[derive(Clone, Copy, Debug)]
enum Injection {
    /// Failures moved `severity` of the way from the usual rate to 100 %.
    Failures { severity: f64 },
    /// Latencies moved up by this many buckets.
    Slowdown { n_buckets: usize },
    /// Failures and slow calls ×factor, still healthy.
    Stress { factor: f64 },
}

/// Incidents written into copies of normal stretches of `history`, and the stressed
/// stretches; only the stressed stretches without `with_incidents`.
pub(super) fn injected_sets(
    history: &History,
    labels: &Labels,
    n_copies: usize,
    with_incidents: bool,
) -> Vec<EvalSet> {
    let step_s = history.step.as_secs_f64().max(1e-3);
    let steps_of = |secs: f64| ((secs / step_s).round() as usize).max(1);
    // Incidents twice, at different places, so that one lucky or unlucky probe does not
    // decide. Their lengths are deliberately not round: where an incident ends relative to
    // the probes decides the good calls refused after it, and lengths spread over a minute
    // (the odd seconds below) price a wait by what it costs on average, not by how neatly
    // it divides a round length.
    let specs: [(&'static str, Injection, f64); 12] = [
        ("outage-2m", Injection::Failures { severity: 1.0 }, 127.0),
        ("outage-10m", Injection::Failures { severity: 1.0 }, 613.0),
        ("partial-50", Injection::Failures { severity: 0.5 }, 319.0),
        ("partial-30", Injection::Failures { severity: 0.3 }, 329.0),
        ("slowdown", Injection::Slowdown { n_buckets: 5 }, 337.0),
        ("stress", Injection::Stress { factor: 1.3 }, 900.0),
        ("outage-2m", Injection::Failures { severity: 1.0 }, 163.0),
        ("outage-10m", Injection::Failures { severity: 1.0 }, 643.0),
        ("partial-50", Injection::Failures { severity: 0.5 }, 353.0),
        ("partial-30", Injection::Failures { severity: 0.3 }, 311.0),
        ("slowdown", Injection::Slowdown { n_buckets: 5 }, 347.0),
        ("stress", Injection::Stress { factor: 1.3 }, 900.0),
    ];
    // The stressed stretches are centred on the worst noise the history showed (its
    // highest-scoring transients), so the margin is taken where it matters.
    let mut worst_noise: Vec<&crate::anomaly::Period> = labels.transients.iter().collect();
    worst_noise.sort_by(|a, b| b.peak_score.total_cmp(&a.peak_score));
    let mut worst_noise = worst_noise.into_iter();
    let usual_failure_rate = {
        let (n_calls, n_failures) = history
            .steps
            .iter()
            .zip(&labels.anomalous)
            .filter(|(_, anomalous)| !**anomalous)
            .fold((0u64, 0u64), |(c, f), (step, _)| {
                (c + u64::from(step.n_calls), f + u64::from(step.n_failures))
            });
        if n_calls > 0 {
            n_failures as f64 / n_calls as f64
        } else {
            0.0
        }
    };
    let pre = steps_of(300.0);
    let post = steps_of(180.0);
    let n_specs = specs.len();
    let mut out = Vec::new();
    let n_used = if n_copies >= 2 { n_specs } else { 6 };
    for (k, (name, injection, secs)) in specs.into_iter().enumerate().take(n_used) {
        if !with_incidents && !matches!(injection, Injection::Stress { .. }) {
            continue;
        }
        let len_incident = steps_of(secs);
        let (lead, tail) = match injection {
            Injection::Stress { .. } => (0, 0),
            _ => (pre, post),
        };
        let total = lead + len_incident + tail;
        if history.len() < total {
            continue;
        }
        // Spread the copies over the history, each on a stretch with no anomaly.
        let mut want = ((k as f64 + 0.5) / n_specs as f64 * history.len() as f64) as usize;
        if let Injection::Stress { .. } = injection
            && let Some(noise) = worst_noise.next()
        {
            want = noise.start_step.saturating_sub(total / 2);
        }
        let Some(start) = clean_stretch(&labels.anomalous, want, total) else {
            continue;
        };
        let mut steps: Vec<Step> = history.steps[start..start + total].to_vec();
        let mut healthy = vec![true; total];
        let mut carry = 0.0;
        for (offset, step) in steps.iter_mut().enumerate().skip(lead).take(len_incident) {
            match injection {
                Injection::Failures { severity } => {
                    let rate = usual_failure_rate + severity * (1.0 - usual_failure_rate);
                    let n = carried(f64::from(step.n_calls) * rate, step.n_calls, &mut carry);
                    step.n_failures = step.n_failures.max(n);
                    healthy[offset] = false;
                }
                Injection::Slowdown { n_buckets } => {
                    let len = step.latency_counts.len();
                    let mut moved = vec![0u32; len];
                    for (b, &count) in step.latency_counts.iter().enumerate() {
                        moved[(b + n_buckets).min(len.saturating_sub(1))] += count;
                    }
                    step.latency_counts = moved;
                    healthy[offset] = false;
                }
                Injection::Stress { factor } => {
                    step.n_failures = carried(
                        f64::from(step.n_failures) * factor,
                        step.n_calls,
                        &mut carry,
                    );
                    // Move a share of calls up one bucket: a slightly slower dependency.
                    let len = step.latency_counts.len();
                    if len > 1 {
                        for b in (0..len - 1).rev() {
                            let shift = (f64::from(step.latency_counts[b]) * (factor - 1.0)) as u32;
                            step.latency_counts[b] -= shift;
                            step.latency_counts[b + 1] += shift;
                        }
                    }
                }
            }
        }
        out.push(eval_set(
            name,
            history,
            steps,
            healthy,
            lead..lead + len_incident,
        ));
    }
    out
}

/// The start of a run of `len` steps with no anomaly, nearest to `want`.
fn clean_stretch(anomalous: &[bool], want: usize, len: usize) -> Option<usize> {
    let n = anomalous.len();
    if n < len {
        return None;
    }
    let last_start = n - len;
    let mut n_before = vec![0usize; n + 1];
    for (i, &a) in anomalous.iter().enumerate() {
        n_before[i + 1] = n_before[i] + usize::from(a);
    }
    let ok = |start: usize| n_before[start + len] == n_before[start];
    let want = want.min(last_start);
    (0..=last_start).find_map(|d| {
        [
            want.checked_sub(d),
            Some(want + d).filter(|&s| s <= last_start),
        ]
        .into_iter()
        .flatten()
        .find(|&s| ok(s))
    })
}

/// The history's own incidents (its labelled periods, at most `max` of them, evenly chosen),
/// each written into a copy of a normal stretch elsewhere: per step the incident's failure
/// share and latency profile, on the stretch's own volume, with 5 min before and 3 min after
/// it. A breaker meets each incident again on other traffic and at another place in its
/// waits, so a config is not chosen for how one incident happened to line up.
pub(super) fn transplanted_sets(history: &History, labels: &Labels, max: usize) -> Vec<EvalSet> {
    let step_s = history.step.as_secs_f64().max(1e-3);
    let steps_of = |secs: f64| ((secs / step_s).round() as usize).max(1);
    let (lead, tail) = (steps_of(300.0), steps_of(180.0));
    let n_periods = labels.periods.len();
    let n = n_periods.min(max);
    let mut out = Vec::new();
    for k in 0..n {
        let period = &labels.periods[k * n_periods / n];
        let len = period.end_step - period.start_step;
        let total = lead + len + tail;
        if len == 0 || history.len() < total {
            continue;
        }
        // The (k+1)-th of n evenly spread places (the last wraps to the start): the k-th
        // incident of n, evenly chosen, lands a slot away from its own place, on other traffic.
        let want = ((k as f64 + 1.0) / n as f64 * history.len() as f64) as usize % history.len();
        let Some(start) = clean_stretch(&labels.anomalous, want.saturating_sub(total / 2), total)
        else {
            continue;
        };
        let mut steps: Vec<Step> = history.steps[start..start + total].to_vec();
        let mut healthy = vec![true; total];
        let mut carry = 0.0;
        for i in 0..len {
            let src = &history.steps[period.start_step + i];
            let dst = &mut steps[lead + i];
            healthy[lead + i] = false;
            if src.n_calls == 0 {
                continue;
            }
            let share = f64::from(src.n_failures) / f64::from(src.n_calls);
            dst.n_failures = carried(f64::from(dst.n_calls) * share, dst.n_calls, &mut carry);
            let dst_total: u32 = dst.latency_counts.iter().sum();
            if dst_total > 0
                && let Some(moved) = rescaled(&src.latency_counts, dst_total)
            {
                dst.latency_counts = moved;
            }
        }
        out.push(eval_set(
            TRANSPLANT,
            history,
            steps,
            healthy,
            lead..lead + len,
        ));
    }
    out
}

/// `amount` plus what earlier steps carried, as a whole count of at most `cap`; the fraction
/// left is carried on, so that a rate applied step by step adds up over the steps.
fn carried(amount: f64, cap: u32, carry: &mut f64) -> u32 {
    let exact = amount + *carry;
    let n = (exact.floor() as u32).min(cap);
    *carry = exact - f64::from(n);
    n
}

/// An evaluation set of `steps` copied from `history`, labelled by `healthy` (indexed by step
/// from the set's start, as scores index it), whose incident is `incident` when it is not
/// empty and holds an unhealthy step.
fn eval_set(
    name: &'static str,
    history: &History,
    steps: Vec<Step>,
    healthy: Vec<bool>,
    incident: std::ops::Range<usize>,
) -> EvalSet {
    let step_ms = history.step.as_millis() as u64;
    let incidents = if !incident.is_empty() && healthy[incident.clone()].iter().any(|h| !h) {
        vec![Span {
            start_ms: steps[incident.start].t_ms,
            end_ms: steps[incident.end - 1].t_ms + step_ms,
        }]
    } else {
        Vec::new()
    };
    EvalSet {
        name,
        history: History {
            step: history.step,
            latency_buckets_ms: history.latency_buckets_ms.clone(),
            steps,
        },
        healthy,
        incidents,
    }
}

/// The latency histogram `counts` rescaled to `total` calls (rounded down per bucket, what
/// is left added to its largest bucket, the last of equals); `None` when it holds no call.
fn rescaled(counts: &[u32], total: u32) -> Option<Vec<u32>> {
    let src_total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if src_total == 0 {
        return None;
    }
    let mut moved: Vec<u32> = counts
        .iter()
        .map(|&c| (u64::from(c) * u64::from(total) / src_total) as u32)
        .collect();
    let short = total - moved.iter().sum::<u32>();
    let top = (0..counts.len()).max_by_key(|&b| counts[b])?;
    moved[top] += short;
    Some(moved)
}

#[cfg(test)]
mod tests;
