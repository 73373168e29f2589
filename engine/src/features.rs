//! Features per breaker per window, from the rollups, with robust scaling.
//!
//! Per step: volume, failure rate, slow-call rate at several latency cut-offs, log p50 and
//! log p99, and rejected share. Rates are not judged from a handful of calls: each step's
//! rates, percentiles and shares are taken over the smallest window of neighbouring steps
//! (centred, at most `max_half_span` steps each side) that holds at least `min_calls` calls,
//! and rates are then smoothed towards the history's median by `prior_calls` pseudo-calls.
//! So a breaker seeing two calls a second is judged over tens of calls, never over two.
//!
//! Robust scaling: each column becomes `(x − median) / (1.4826 · MAD)`, the scale floored so
//! that a column that hardly varies does not blow up; median and MAD barely move when a
//! minority of the history is an incident, unlike mean and standard deviation.

use crate::history::History;

/// Options for [`features`].
#[derive(Clone, Debug)]
pub struct FeatureOptions {
    /// The fewest calls a step's rates are judged over.
    pub min_calls: u64,
    /// The widest the judging window grows, in steps each side.
    pub max_half_span: usize,
    /// Pseudo-calls at the history's median rate added to every rate.
    pub prior_calls: f64,
    /// How many slow-call cut-offs to use.
    pub n_slow_cutoffs: usize,
}

/// The feature matrix of one history: one row per step.
#[derive(Clone, Debug, Default)]
pub struct Features {
    /// Column names, e.g. `failure_rate`, `slow_rate_500ms`, `log_p99_ms`.
    pub names: Vec<String>,
    pub n_rows: usize,
    pub n_cols: usize,
    /// Raw values, row-major.
    pub raw: Vec<f64>,
    /// Robustly scaled values, row-major.
    pub scaled: Vec<f64>,
    /// Per step: the calls its rates were judged over.
    pub context_calls: Vec<u64>,
    /// Per step: the steps `[lo, hi)` its rates were judged over.
    pub spans: Vec<(usize, usize)>,
    /// The latency cut-offs of the slow-rate columns, in milliseconds.
    pub slow_cutoffs_ms: Vec<u32>,
    /// Per column: median and robust scale used for scaling.
    pub medians: Vec<f64>,
    pub scales: Vec<f64>,
}

/// Column indices of [`Features`] (the slow-rate columns follow `SLOW0`).
pub mod col {
    pub const LOG_VOLUME: usize = 0;
    pub const FAILURE_RATE: usize = 1;
    pub const REJECTED_SHARE: usize = 2;
    pub const LOG_P50: usize = 3;
    pub const LOG_P99: usize = 4;
    pub const SLOW0: usize = 5;
}

impl Default for FeatureOptions {
    fn default() -> FeatureOptions {
        FeatureOptions {
            min_calls: 40,
            max_half_span: 15,
            prior_calls: 10.0,
            n_slow_cutoffs: 3,
        }
    }
}

// === impl Features ===

impl Features {
    pub fn get(&self, row: usize, col: usize) -> f64 {
        self.raw[row * self.n_cols + col]
    }

    pub fn get_scaled(&self, row: usize, col: usize) -> f64 {
        self.scaled[row * self.n_cols + col]
    }

    /// The raw column `col`.
    pub fn column(&self, col: usize) -> Vec<f64> {
        (0..self.n_rows).map(|row| self.get(row, col)).collect()
    }
}

/// Computes the features of every step of `history`.
pub fn features(history: &History, opts: &FeatureOptions) -> Features {
    let n_rows = history.len();
    let bounds = &history.latency_buckets_ms;
    let n_buckets = bounds.len();
    // Prefix sums: calls, failures, rejected, and each latency bucket.
    let mut pre_calls = vec![0u64; n_rows + 1];
    let mut pre_failures = vec![0u64; n_rows + 1];
    let mut pre_rejected = vec![0u64; n_rows + 1];
    let mut pre_buckets = vec![0u64; (n_rows + 1) * n_buckets];
    for (i, step) in history.steps.iter().enumerate() {
        pre_calls[i + 1] = pre_calls[i] + u64::from(step.n_calls);
        pre_failures[i + 1] = pre_failures[i] + u64::from(step.n_failures);
        pre_rejected[i + 1] = pre_rejected[i] + u64::from(step.n_rejected);
        for b in 0..n_buckets {
            let count = step.latency_counts.get(b).copied().unwrap_or(0);
            pre_buckets[(i + 1) * n_buckets + b] =
                pre_buckets[i * n_buckets + b] + u64::from(count);
        }
    }
    let total_hist: Vec<u64> = (0..n_buckets)
        .map(|b| pre_buckets[n_rows * n_buckets + b])
        .collect();
    let slow_cutoffs = slow_cutoff_buckets(&total_hist, opts.n_slow_cutoffs);
    let slow_cutoffs_ms: Vec<u32> = slow_cutoffs.iter().map(|&b| bounds[b]).collect();

    let mut names: Vec<String> = [
        "log_volume",
        "failure_rate",
        "rejected_share",
        "log_p50_ms",
        "log_p99_ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(slow_cutoffs_ms.iter().map(|ms| format!("slow_rate_{ms}ms")));
    let n_cols = names.len();

    // Each step's judging window: [lo, hi).
    let spans: Vec<(usize, usize)> = (0..n_rows)
        .map(|i| {
            let (mut lo, mut hi) = (i, i + 1);
            while pre_calls[hi] - pre_calls[lo] < opts.min_calls {
                let can_lower = lo > 0 && i - lo < opts.max_half_span;
                let can_raise = hi < n_rows && hi - i - 1 < opts.max_half_span;
                if !can_lower && !can_raise {
                    break;
                }
                lo -= usize::from(can_lower);
                hi += usize::from(can_raise);
            }
            (lo, hi)
        })
        .collect();
    let context_calls: Vec<u64> = spans
        .iter()
        .map(|&(lo, hi)| pre_calls[hi] - pre_calls[lo])
        .collect();

    // Unsmoothed context rates first, to find the medians that smoothing pulls towards.
    let rate = |num: &[u64], lo: usize, hi: usize, den: u64| -> Option<f64> {
        (den > 0).then(|| (num[hi] - num[lo]) as f64 / den as f64)
    };
    let slow_count = |b_from: usize, lo: usize, hi: usize| -> u64 {
        (b_from..n_buckets)
            .map(|b| pre_buckets[hi * n_buckets + b] - pre_buckets[lo * n_buckets + b])
            .sum()
    };
    let median_of = |values: Vec<f64>| -> f64 { median(values).unwrap_or(0.0) };
    let prior_failure = median_of(
        spans
            .iter()
            .zip(&context_calls)
            .filter_map(|(&(lo, hi), &n)| rate(&pre_failures, lo, hi, n))
            .collect(),
    );
    let prior_slow: Vec<f64> = slow_cutoffs
        .iter()
        .map(|&b| {
            median_of(
                spans
                    .iter()
                    .zip(&context_calls)
                    .filter(|(_, n)| **n > 0)
                    .map(|(&(lo, hi), &n)| slow_count(b, lo, hi) as f64 / n as f64)
                    .collect(),
            )
        })
        .collect();
    let overall_p50 = percentile_ms(&total_hist, bounds, 0.5);
    let overall_p99 = percentile_ms(&total_hist, bounds, 0.99);

    let mut raw = vec![0.0; n_rows * n_cols];
    let mut hist = vec![0u64; n_buckets];
    let a = opts.prior_calls;
    for (i, &(lo, hi)) in spans.iter().enumerate() {
        let n = context_calls[i] as f64;
        let row = &mut raw[i * n_cols..(i + 1) * n_cols];
        row[col::LOG_VOLUME] = (f64::from(history.steps[i].n_calls) + 1.0).ln();
        row[col::FAILURE_RATE] =
            ((pre_failures[hi] - pre_failures[lo]) as f64 + a * prior_failure) / (n + a);
        let attempted = n + (pre_rejected[hi] - pre_rejected[lo]) as f64;
        row[col::REJECTED_SHARE] = if attempted > 0.0 {
            (pre_rejected[hi] - pre_rejected[lo]) as f64 / attempted
        } else {
            0.0
        };
        for b in 0..n_buckets {
            hist[b] = pre_buckets[hi * n_buckets + b] - pre_buckets[lo * n_buckets + b];
        }
        let has_calls = hist.iter().any(|&c| c > 0);
        row[col::LOG_P50] = if has_calls {
            percentile_ms(&hist, bounds, 0.5)
        } else {
            overall_p50
        }
        .ln();
        row[col::LOG_P99] = if has_calls {
            percentile_ms(&hist, bounds, 0.99)
        } else {
            overall_p99
        }
        .ln();
        for (k, &b) in slow_cutoffs.iter().enumerate() {
            row[col::SLOW0 + k] = (slow_count(b, lo, hi) as f64 + a * prior_slow[k]) / (n + a);
        }
    }

    // Robust scaling, with floors that keep near-constant columns from exploding.
    let floors: Vec<f64> = (0..n_cols)
        .map(|c| match c {
            col::LOG_VOLUME => 0.1,
            // Percentiles move a whole bucket at a time (×2–2.5 on the usual ladder), so one
            // bucket up must not look like an outlier.
            col::LOG_P50 | col::LOG_P99 => 0.7,
            _ => 0.005,
        })
        .collect();
    let mut medians = Vec::with_capacity(n_cols);
    let mut scales = Vec::with_capacity(n_cols);
    for c in 0..n_cols {
        let column: Vec<f64> = (0..n_rows).map(|r| raw[r * n_cols + c]).collect();
        let (med, scale) = robust_location_scale(&column);
        medians.push(med);
        scales.push(scale.max(floors[c]));
    }
    let scaled = raw
        .iter()
        .enumerate()
        .map(|(idx, &x)| (x - medians[idx % n_cols]) / scales[idx % n_cols])
        .collect();
    Features {
        names,
        n_rows,
        n_cols,
        raw,
        scaled,
        context_calls,
        spans,
        slow_cutoffs_ms,
        medians,
        scales,
    }
}

/// Median and `1.4826 · MAD` of `values` (0 and 0 when empty).
pub fn robust_location_scale(values: &[f64]) -> (f64, f64) {
    let Some(med) = median(values.to_vec()) else {
        return (0.0, 0.0);
    };
    let mad = median(values.iter().map(|x| (x - med).abs()).collect()).unwrap_or(0.0);
    (med, 1.4826 * mad)
}

/// The median of `values`, ignoring NaN.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|x| !x.is_nan());
    if values.is_empty() {
        return None;
    }
    let mid = values.len() / 2;
    let (_, &mut m, _) = values.select_nth_unstable_by(mid, |a, b| a.total_cmp(b));
    if values.len() % 2 == 1 {
        Some(m)
    } else {
        let lower = values[..mid]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        Some((lower + m) / 2.0)
    }
}

/// The latency (a bucket's upper bound, ms) below which `q` of the calls fall.
pub fn percentile_ms(hist: &[u64], bounds: &[u32], q: f64) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 || bounds.is_empty() {
        return 1.0;
    }
    let target = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (count, &bound) in hist.iter().zip(bounds) {
        seen += count;
        if seen >= target {
            return f64::from(bound).max(1.0);
        }
    }
    f64::from(*bounds.last().unwrap()).max(1.0)
}

/// Slow-call cut-offs: the buckets at roughly 4×, 16× and 64× the history's median latency
/// (every second bucket above the median's, on the usual 1-2-5 bucket ladder), so one cut-off
/// sits just above normal latency and the others catch heavier slow-downs.
fn slow_cutoff_buckets(total_hist: &[u64], n_cutoffs: usize) -> Vec<usize> {
    let n_buckets = total_hist.len();
    if n_buckets == 0 {
        return Vec::new();
    }
    let total: u64 = total_hist.iter().sum();
    let mut p50_bucket = 0;
    let mut seen = 0;
    for (b, &count) in total_hist.iter().enumerate() {
        seen += count;
        if total > 0 && 2 * seen >= total {
            p50_bucket = b;
            break;
        }
    }
    let mut cutoffs: Vec<usize> = (1..=n_cutoffs)
        .map(|k| (p50_bucket + 2 * k).min(n_buckets - 1))
        .collect();
    cutoffs.dedup();
    cutoffs
}

#[cfg(test)]
pub(crate) mod tests;
