//! A period's end placed where the raw counts change, not where the smoothed features do.
//!
//! At low volume a step's rates are judged over its neighbours (see [`crate::features`]), so
//! the score of the steps just after an incident still carries the incident's failures and
//! the period ends up to the judging window's half-width late: at two calls a second, 5 to
//! 10 s. Those seconds are the tail a breaker's wait leaves after an incident, the very thing
//! a search weighs against probing more often; labelled anomalous, the tail is invisible.
//!
//! So where the judging window spanned more than the step, the end moves back to the most
//! likely change point of the period's own kind of bad calls (failures, or slow calls at the
//! cut-off that rose most): the bad share of the period before it, the usual share after it,
//! each step's count binomial. At most twice the judging window's half-width back (the blur,
//! and the widening that may have followed it), and only when the counts say so: at equal
//! likelihood the end stays.

use crate::features::{Features, col};
use crate::history::History;

use super::AnomalyKind;

/// The period `start..end` of `kind` (its end as detected, after widening) with its end
/// moved back to the change point, at most twice as far as the judging window at its last
/// step reached before it, and never so far that the period has fewer than `min_steps`.
pub(super) fn sharpened_end(
    history: &History,
    features: &Features,
    (start, end): (usize, usize),
    kind: AnomalyKind,
    peak: usize,
    min_steps: usize,
) -> usize {
    let Some(&(lo, _)) = features.spans.get(end.wrapping_sub(1)) else {
        return end;
    };
    let blur = end - 1 - lo;
    if blur == 0 {
        return end;
    }
    // The first step the end may move back to.
    let earliest = (end.saturating_sub(2 * blur)).max(start + min_steps);
    if earliest >= end {
        return end;
    }
    let Some((bad, column)) = bad_counts(history, features, kind, peak) else {
        return end;
    };
    let calls = |i: usize| u64::from(history.steps[i].n_calls);
    // The period's share of bad calls before the stretch in question, and the usual one.
    let (mut n_in, mut bad_in) = (0u64, 0u64);
    for i in start..earliest {
        n_in += calls(i);
        bad_in += bad(i);
    }
    if n_in == 0 {
        return end;
    }
    let p_in = (bad_in as f64 / n_in as f64).clamp(1e-3, 1.0 - 1e-3);
    let p_out = features.medians[column].clamp(1e-3, 1.0 - 1e-3);
    if p_in <= p_out {
        return end;
    }
    // Log-likelihood gained by a step counted inside the period rather than outside it.
    let gain = |i: usize| {
        let (k, n) = (bad(i) as f64, calls(i) as f64);
        k * (p_in / p_out).ln() + (n - k) * ((1.0 - p_in) / (1.0 - p_out)).ln()
    };
    // The end at `e` keeps the steps before `e` inside: the best `e` maximises the sum of
    // the gains of `earliest..e`. Scanning back from `end`, a strictly better total moves it.
    let (mut best_end, mut best, mut total) = (end, 0.0, 0.0);
    for e in (earliest..end).rev() {
        // Moving the end from `e + 1` to `e` puts step `e` outside.
        total -= gain(e);
        if total > best + 1e-9 {
            best = total;
            best_end = e;
        }
    }
    best_end
}

/// Per step, the calls of the kind that makes the period bad, and the feature column of
/// their share: failures, or slow calls at the cut-off whose share stood out most at the
/// period's peak. `None` for a period of rejections.
fn bad_counts<'a>(
    history: &'a History,
    features: &Features,
    kind: AnomalyKind,
    peak: usize,
) -> Option<(impl Fn(usize) -> u64 + 'a, usize)> {
    let (column, from_bucket) = match kind {
        AnomalyKind::Failures => (col::FAILURE_RATE, None),
        AnomalyKind::Latency => {
            let (c, cutoff_ms) = features
                .slow_cutoffs_ms
                .iter()
                .enumerate()
                .map(|(k, &ms)| (col::SLOW0 + k, ms))
                .max_by(|a, b| {
                    features
                        .get_scaled(peak, a.0)
                        .total_cmp(&features.get_scaled(peak, b.0))
                })?;
            let bucket = history
                .latency_buckets_ms
                .iter()
                .position(|&ms| ms == cutoff_ms)?;
            (c, Some(bucket))
        }
        AnomalyKind::Rejections => return None,
    };
    let bad = move |i: usize| {
        let step = &history.steps[i];
        match from_bucket {
            None => u64::from(step.n_failures),
            Some(b) => step.latency_counts[b.min(step.latency_counts.len())..]
                .iter()
                .map(|&c| u64::from(c))
                .sum(),
        }
    };
    Some((bad, column))
}
