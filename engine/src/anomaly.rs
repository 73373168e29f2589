//! Anomaly labels for every step, learned from the history alone.
//!
//! Models that score new points against a model fitted on the whole history (KMeans
//! distance, GMM likelihood, one-class SVM) miss incidents that the history itself contains:
//! the incidents become part of "normal". So the labels here come from two detectors that
//! stay right on contaminated history:
//!
//! - **Robust statistics.** Per step, one-sided scores of how much worse than usual the step
//!   is: failure and slow-call rates as binomial z-scores against the history's median rate
//!   (so low volume gives small scores, not large ones), divided by the history's own
//!   over-dispersion; log p50 and log p99 and the rejected share as median/MAD z-scores. The
//!   step's score is the largest.
//! - **Small clusters** (linfa KMeans, k = 4, on the robustly scaled features): members of a
//!   cluster holding under 5 % of the steps whose centre is on the bad side.
//!
//! A step is anomalous when its score is very high, or high and in a small bad cluster.
//! Anomalous steps closer than `merge_gap` are merged into periods (and so are runs split by
//! a normal stretch no longer than the runs around it, up to `flap_gap`: a dependency that
//! flaps is one incident), and periods shorter than `min_duration` are kept apart as
//! transients: a breaker cannot usefully protect against a few seconds of errors, and
//! tripping on them loses more good calls than it saves. A period's edges then move outwards
//! while the score just beyond them stays raised on average (above `z_edge`, and above what
//! ordinary stretches reach): a slow degradation is labelled from where its rise began, not
//! from where it crossed the bar, so the search does not count an early trip as a false one.
//! Where low volume blurred the scores (a step judged over its neighbours), the end then
//! moves back to where the raw counts change (`edges`).

use std::time::Duration;

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::Array2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::SeedableRng;

use crate::features::{self, Features, col};
use crate::history::History;
use crate::scenario::Span;

/// Options for [`detect`].
#[derive(Clone, Debug)]
pub struct AnomalyOptions {
    /// A step scoring at least this is anomalous on its own.
    pub z_high: f64,
    /// A step scoring at least this is anomalous when it is in a small bad cluster.
    pub z_low: f64,
    /// KMeans clusters.
    pub n_clusters: usize,
    /// A cluster holding less than this share of the steps is small.
    pub small_cluster_share: f64,
    /// Anomalous steps this close are one period.
    pub merge_gap: Duration,
    /// A dependency that flaps is one incident: two anomalous runs separated by a normal
    /// stretch at most this long, and no longer than `flap_ratio` times the shorter run, are
    /// one period.
    pub flap_gap: Duration,
    pub flap_ratio: f64,
    /// Shorter periods are transients, not incidents.
    pub min_duration: Duration,
    /// A period's edges move outwards while the score, averaged over `edge_smoothing` steps,
    /// stays above this (see [`detect`]).
    pub z_edge: f64,
    /// Steps averaged to judge a period's edges.
    pub edge_smoothing: usize,
    /// The furthest an edge moves.
    pub max_edge_shift: Duration,
}

/// What an anomalous period looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyKind {
    /// Mostly more failures than usual.
    Failures,
    /// Mostly slower calls than usual.
    Latency,
    /// Mostly more rejections than usual.
    Rejections,
}

/// A run of anomalous steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Period {
    /// Steps `start_step..end_step`.
    pub start_step: usize,
    pub end_step: usize,
    pub span: Span,
    pub peak_score: f64,
    pub kind: AnomalyKind,
}

/// Per-step labels and scores, and the periods they form.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    /// Per step: how much worse than usual (a robust z-score; ≤ 0 is usual).
    pub score: Vec<f64>,
    /// Per step: part of an anomalous period.
    pub anomalous: Vec<bool>,
    /// Per step: the KMeans cluster.
    pub cluster: Vec<usize>,
    /// Per step: in a small cluster on the bad side.
    pub in_small_cluster: Vec<bool>,
    pub periods: Vec<Period>,
    /// Anomalous runs too short to be incidents.
    pub transients: Vec<Period>,
}

impl Default for AnomalyOptions {
    fn default() -> AnomalyOptions {
        AnomalyOptions {
            z_high: 8.0,
            z_low: 4.0,
            n_clusters: 4,
            small_cluster_share: 0.05,
            merge_gap: Duration::from_secs(10),
            flap_gap: Duration::from_secs(60),
            flap_ratio: 1.5,
            min_duration: Duration::from_secs(20),
            z_edge: 2.0,
            edge_smoothing: 5,
            max_edge_shift: Duration::from_secs(120),
        }
    }
}

// === impl Labels ===

impl Labels {
    /// Per step: healthy (not anomalous), the form scores take.
    pub fn healthy(&self) -> Vec<bool> {
        self.anomalous.iter().map(|&a| !a).collect()
    }

    pub fn spans(&self) -> Vec<Span> {
        self.periods.iter().map(|p| p.span).collect()
    }
}

/// Labels every step of `history` from its features.
pub fn detect(history: &History, features: &Features, opts: &AnomalyOptions) -> Labels {
    let n_rows = features.n_rows;
    if n_rows == 0 {
        return Labels::default();
    }
    let (score, kinds) = robust_scores(features);
    let (cluster, in_small_cluster) = small_clusters(features, &score, opts);
    let flagged: Vec<bool> = (0..n_rows)
        .map(|i| score[i] >= opts.z_high || (score[i] >= opts.z_low && in_small_cluster[i]))
        .collect();

    let step_ms = history.step.as_millis().max(1) as u64;
    let gap_steps = (opts.merge_gap.as_millis() as u64).div_ceil(step_ms) as usize;
    let min_steps = ((opts.min_duration.as_millis() as u64).div_ceil(step_ms) as usize).max(1);
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for i in (0..n_rows).filter(|&i| flagged[i]) {
        match runs.last_mut() {
            Some((_, end)) if i <= *end + gap_steps => *end = i + 1,
            _ => runs.push((i, i + 1)),
        }
    }
    let runs = merge_flaps(
        runs,
        (opts.flap_gap.as_millis() as u64).div_ceil(step_ms) as usize,
        opts.flap_ratio,
    );
    let mut anomalous = vec![false; n_rows];
    let mut periods = Vec::new();
    let mut transients = Vec::new();
    let max_shift = (opts.max_edge_shift.as_millis() as u64).div_ceil(step_ms) as usize;
    let prefix = clipped_prefix(&score, opts.z_high);
    let long_runs: Vec<(usize, usize)> = runs
        .iter()
        .copied()
        .filter(|&(start, end)| end - start >= min_steps)
        .collect();
    let edge_bar = edge_bar(
        &prefix,
        &long_runs,
        opts.edge_smoothing,
        max_shift,
        opts.z_edge,
    );
    let mut prev_end = 0;
    for (k, &(start, end)) in runs.iter().enumerate() {
        let next_start = runs.get(k + 1).map_or(n_rows, |&(next, _)| next);
        let long = end - start >= min_steps;
        let (start, end) = if long {
            let limits = (prev_end, next_start);
            let width = opts.edge_smoothing;
            widen(&prefix, (start, end), limits, width, max_shift, edge_bar)
        } else {
            (start, end)
        };
        let peak = (start..end)
            .max_by(|&a, &b| score[a].total_cmp(&score[b]))
            .unwrap_or(start);
        let end = if long {
            let kind = kinds[peak];
            edges::sharpened_end(history, features, (start, end), kind, peak, min_steps)
        } else {
            end
        };
        let period = Period {
            start_step: start,
            end_step: end,
            span: Span {
                start_ms: history.steps[start].t_ms,
                end_ms: history.steps[end - 1].t_ms + step_ms,
            },
            peak_score: score[peak],
            kind: kinds[peak],
        };
        if end - start >= min_steps {
            anomalous[start..end].fill(true);
            prev_end = end;
            periods.push(period);
        } else {
            transients.push(period);
        }
    }
    // A period whose edge moved over a transient (a slow rise flagged here and there before
    // the bar was crossed for good) takes it in: it is no longer noise.
    transients.retain(|t| {
        !periods
            .iter()
            .any(|p| t.start_step < p.end_step && t.end_step > p.start_step)
    });
    Labels {
        score,
        anomalous,
        cluster,
        in_small_cluster,
        periods,
        transients,
    }
}

/// Runs separated by a normal stretch of at most `max_gap` steps that is no longer than
/// `ratio` times the shorter of the two are merged: a dependency down 20 s, up 20 s, down
/// again is one incident, while short bursts far apart stay apart. Once a period flaps (it
/// merged a run so), the gap is judged against the longer of the two: the incident's end
/// cuts its last down phase short wherever it falls, and that stub left out would be
/// labelled healthy, a trip on it false, though the dependency is as down as before.
fn merge_flaps(runs: Vec<(usize, usize)>, max_gap: usize, ratio: f64) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::with_capacity(runs.len());
    // The length of the last run merged into the current one: a flap is judged against its
    // neighbours, not against everything merged so far.
    let mut last_len = 0;
    let mut flapping = false;
    for (start, end) in runs {
        let len = end - start;
        let against = if flapping {
            last_len.max(len)
        } else {
            last_len.min(len)
        };
        match out.last_mut() {
            Some((_, prev_end))
                if start - *prev_end <= max_gap
                    && (start - *prev_end) as f64 <= ratio * against as f64 =>
            {
                *prev_end = end;
                flapping = true;
            }
            _ => {
                out.push((start, end));
                flapping = false;
            }
        }
        last_len = len;
    }
    out
}

/// Sums of the scores before each step, each clipped to `0..=cap` so that one extreme step
/// does not carry its neighbours.
fn clipped_prefix(score: &[f64], cap: f64) -> Vec<f64> {
    let mut prefix = vec![0.0; score.len() + 1];
    for (i, &z) in score.iter().enumerate() {
        prefix[i + 1] = prefix[i] + z.clamp(0.0, cap);
    }
    prefix
}

/// The average score an edge must see beyond it to move: `z_edge`, or more when ordinary
/// stretches reach that much (the 99.9th percentile of their `width`-step averages, away
/// from every period's run by more than `reach`; transients count as ordinary) — traffic
/// whose noise comes in bursts must not stretch a period over the bursts around it.
fn edge_bar(
    prefix: &[f64],
    runs: &[(usize, usize)],
    width: usize,
    reach: usize,
    z_edge: f64,
) -> f64 {
    let width = width.max(1);
    let n_rows = prefix.len().saturating_sub(1);
    let mut in_run = vec![false; n_rows];
    for &(start, end) in runs {
        in_run[start.saturating_sub(reach)..(end + reach).min(n_rows)].fill(true);
    }
    let mut means = Vec::new();
    let mut clear = 0; // steps outside any run ending at `i`
    for i in 0..n_rows {
        clear = if in_run[i] { 0 } else { clear + 1 };
        if clear >= width {
            means.push((prefix[i + 1] - prefix[i + 1 - width]) / width as f64);
        }
    }
    if means.is_empty() {
        return z_edge;
    }
    let idx = ((means.len() - 1) as f64 * 0.999).round() as usize;
    let (_, q, _) = means.select_nth_unstable_by(idx, f64::total_cmp);
    z_edge.max(*q)
}

/// Moves a period's edges outwards while the score stays above `z_edge` on average over
/// the `width` steps beyond the edge, by at most `max_shift` steps, and never into a
/// neighbouring run (`limits`: where the previous period ends and the next run starts).
/// The average looks only outwards, so the period's own steps never carry its edges.
///
/// A step is flagged only once it is clearly bad, but a dependency that degrades slowly (or
/// recovers slowly) is already unhealthy before that: its score rises for a while before it
/// crosses the bar. Labels that start late would teach the search that tripping early is a
/// false trip; these edges start where the rise began.
fn widen(
    prefix: &[f64],
    (start, end): (usize, usize),
    (floor, ceiling): (usize, usize),
    width: usize,
    max_shift: usize,
    z_edge: f64,
) -> (usize, usize) {
    let width = width.max(1);
    // Sums of many scores lose the last digits: a mean level with the bar is not above it.
    let bar = z_edge + 1e-6;
    let mean = |lo: usize, hi: usize| (prefix[hi] - prefix[lo]) / (hi - lo).max(1) as f64;
    let lowest = start.saturating_sub(max_shift).max(floor);
    let mut new_start = start;
    while new_start > lowest && mean(new_start.saturating_sub(width).max(floor), new_start) > bar {
        new_start -= 1;
    }
    let highest = (end + max_shift).min(ceiling);
    let mut new_end = end;
    while new_end < highest && mean(new_end, (new_end + width).min(ceiling)) > bar {
        new_end += 1;
    }
    (new_start, new_end)
}

/// Per step: the largest one-sided badness score, and which kind of feature gave it.
fn robust_scores(features: &Features) -> (Vec<f64>, Vec<AnomalyKind>) {
    let n_rows = features.n_rows;
    let mut score = vec![f64::NEG_INFINITY; n_rows];
    let mut kinds = vec![AnomalyKind::Failures; n_rows];
    let mut consider = |values: Vec<f64>, kind: AnomalyKind| {
        for (i, z) in values.into_iter().enumerate() {
            if z > score[i] {
                score[i] = z;
                kinds[i] = kind;
            }
        }
    };
    let mut rate_columns = vec![(col::FAILURE_RATE, AnomalyKind::Failures)];
    rate_columns.extend((col::SLOW0..features.n_cols).map(|c| (c, AnomalyKind::Latency)));
    for (c, kind) in rate_columns {
        consider(binomial_scores(features, c), kind);
    }
    for (c, kind) in [
        (col::LOG_P50, AnomalyKind::Latency),
        (col::LOG_P99, AnomalyKind::Latency),
        (col::REJECTED_SHARE, AnomalyKind::Rejections),
    ] {
        consider(
            (0..n_rows).map(|i| features.get_scaled(i, c)).collect(),
            kind,
        );
    }
    (score, kinds)
}

/// One-sided binomial z-scores of a rate column against its median, divided by the
/// over-dispersion the history shows (the robust spread of the z-scores, at least 1).
fn binomial_scores(features: &Features, c: usize) -> Vec<f64> {
    let p0 = features.medians[c].clamp(0.002, 0.998);
    let z: Vec<f64> = (0..features.n_rows)
        .map(|i| {
            let n = features.context_calls[i] as f64;
            if n <= 0.0 {
                return 0.0;
            }
            (features.get(i, c) - p0) / (p0 * (1.0 - p0) / n).sqrt()
        })
        .collect();
    let (_, spread) = features::robust_location_scale(&z);
    let dispersion = spread.max(1.0);
    z.into_iter().map(|z| z / dispersion).collect()
}

const MAX_FIT_ROWS: usize = 3_000;

/// KMeans on the scaled features; returns each step's cluster and whether it is in a small
/// cluster whose members score on the bad side on average.
fn small_clusters(
    features: &Features,
    score: &[f64],
    opts: &AnomalyOptions,
) -> (Vec<usize>, Vec<bool>) {
    let n_rows = features.n_rows;
    let none = (vec![0; n_rows], vec![false; n_rows]);
    if n_rows < opts.n_clusters * 10 {
        return none;
    }
    // Clipping keeps one extreme step from taking a cluster of its own.
    let data: Vec<f64> = features
        .scaled
        .iter()
        .map(|x| x.clamp(-10.0, 10.0))
        .collect();
    let Ok(records) = Array2::from_shape_vec((n_rows, features.n_cols), data) else {
        return none;
    };
    // Fit on an evenly strided sample of at most `MAX_FIT_ROWS` steps (a week of minutes is
    // 10 k), then assign every step to its nearest centre.
    let stride = n_rows.div_ceil(MAX_FIT_ROWS).max(1);
    let sample = records.slice(ndarray::s![..;stride, ..]).to_owned();
    let dataset = DatasetBase::from(sample);
    let model = KMeans::params_with_rng(opts.n_clusters, Xoshiro256Plus::seed_from_u64(7))
        .n_runs(1)
        .max_n_iterations(50)
        .tolerance(1e-3)
        .fit(&dataset);
    let Ok(model) = model else {
        return none;
    };
    let cluster: Vec<usize> = model.predict(&records).to_vec();
    let mut sizes = vec![0usize; opts.n_clusters];
    let mut score_sums = vec![0.0; opts.n_clusters];
    for (i, &k) in cluster.iter().enumerate() {
        sizes[k] += 1;
        score_sums[k] += score[i].min(50.0);
    }
    let small_bad: Vec<bool> = (0..opts.n_clusters)
        .map(|k| {
            sizes[k] > 0
                && (sizes[k] as f64) < opts.small_cluster_share * n_rows as f64
                && score_sums[k] / sizes[k] as f64 >= opts.z_low
        })
        .collect();
    let in_small = cluster.iter().map(|&k| small_bad[k]).collect();
    (cluster, in_small)
}

mod edges;

#[cfg(test)]
mod tests;
