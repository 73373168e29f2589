//! Recommendations: the adaptive engine run over a breaker's stored history, its suggestions
//! kept with their evidence, accepted (a new config version, pushed to every instance) or
//! rejected by admins; and lint of current configs against the history.
//!
//! The engine does no I/O: this module reads the stored history (per second from the raw
//! aggregates for a day or less, else the 1-minute rollups) into an `engine::History`,
//! runs `engine::suggest::suggest` on a blocking thread as an [`crate::tuning::engine_run::Job`]
//! (time budget, cancelled with its client or by the server stopping), and stores the result.

use std::time::Duration;

use protocol::{
    AnomalyPeriod, BacktestSummary, BreakerConfig, LATENCY_BOUNDS_MS, LintFinding, Recommendation,
    RecommendationStatus,
};

use crate::configs;
use crate::error::AppError;
use crate::query::rollup::{Bucket, MINUTE_MS};
use crate::store::Store;
use crate::tuning::engine_run::{Job, RunCost};
use engine::stop::StopReason;

/// How much history a recommendation learns from by default.
pub const DEFAULT_DAYS: i64 = 7;

pub mod http;
pub mod store;

/// A breaker's history over `[from_ms, to_ms)` for the engine: per second from the raw
/// aggregates when `per_second` (they are kept for the last hours only, and short incidents
/// vanish into minutes), else per minute from the rollups. Instances are summed.
pub async fn history(
    store: &Store,
    breaker_id: i64,
    from_ms: i64,
    to_ms: i64,
    per_second: bool,
) -> anyhow::Result<engine::history::History> {
    // The rollups job may not have reached the newest aggregates: roll up first.
    if !per_second {
        while crate::query::rollup::roll_up_once(store).await? > 0 {}
    }
    let rows = store::history_rows(store, breaker_id, from_ms, to_ms, per_second).await?;
    let step_ms = if per_second { 1_000 } else { MINUTE_MS };
    // Sum instances (and sub-second intervals) into steps.
    let mut buckets: std::collections::BTreeMap<i64, Bucket> = Default::default();
    for (start_ms, bucket, interval_ms) in rows {
        // An interval longer than a step is spread evenly over its steps.
        let n_steps = (interval_ms / step_ms).max(1);
        for (idx, part) in spread(&bucket, n_steps as u64).into_iter().enumerate() {
            let at = start_ms + idx as i64 * step_ms;
            buckets
                .entry(at.div_euclid(step_ms) * step_ms)
                .or_default()
                .merge(&part);
        }
    }
    let n_buckets = LATENCY_BOUNDS_MS.len() + 1;
    let mut latency_buckets_ms: Vec<u32> = LATENCY_BOUNDS_MS.to_vec();
    // The open-ended last bucket, taken as twice the last bound (as percentiles do).
    latency_buckets_ms.push(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1] * 2);
    let steps = buckets
        .iter()
        .map(|(&start_ms, bucket)| step(start_ms - from_ms, bucket, n_buckets))
        .collect();
    Ok(engine::history::History {
        step: Duration::from_millis(step_ms as u64),
        latency_buckets_ms,
        steps,
    })
}

/// `bucket` split into `n` buckets whose counts add up to it (remainders go to the first ones).
fn spread(bucket: &Bucket, n: u64) -> Vec<Bucket> {
    if n <= 1 {
        return vec![bucket.clone()];
    }
    let part = |total: u64, idx: u64| total / n + u64::from(idx < total % n);
    (0..n)
        .map(|idx| {
            let c = &bucket.counts;
            Bucket {
                counts: protocol::OutcomeCounts {
                    success: part(c.success, idx),
                    failure: part(c.failure, idx),
                    timeout: part(c.timeout, idx),
                    rejected: part(c.rejected, idx),
                    slow: part(c.slow, idx),
                    ignored: part(c.ignored, idx),
                },
                latency: protocol::LatencyHistogram {
                    counts: bucket
                        .latency
                        .counts
                        .iter()
                        .map(|&t| part(t, idx))
                        .collect(),
                },
                failure_rate_threshold: bucket.failure_rate_threshold,
            }
        })
        .collect()
}

/// One minute as the engine sees it: calls the application attempted (rejected ones too) and
/// how many failed or would have. A rejected call's outcome is unknown; it is taken to fail
/// as often as the admitted calls of that minute did, or to fail when none was admitted (an
/// Open breaker usually guards a failing dependency).
fn step(t_ms: i64, bucket: &Bucket, n_buckets: usize) -> engine::history::Step {
    let c = &bucket.counts;
    let judged = c.judged();
    let rejected_failing = if judged == 0 {
        c.rejected
    } else {
        (c.rejected as f64 * c.failed() as f64 / judged as f64).round() as u64
    };
    let mut latency_counts: Vec<u32> = bucket
        .latency
        .counts
        .iter()
        .map(|&n| n.min(u64::from(u32::MAX)) as u32)
        .collect();
    latency_counts.resize(n_buckets, 0);
    let clamp = |n: u64| n.min(u64::from(u32::MAX)) as u32;
    engine::history::Step {
        t_ms: t_ms.max(0) as u64,
        n_calls: clamp(protocol::add_counts(judged, c.rejected)),
        n_failures: clamp(protocol::add_counts(c.failed(), rejected_failing)),
        n_rejected: clamp(c.rejected),
        latency_counts,
    }
}

fn backtest_summary(b: &engine::suggest::Backtest) -> BacktestSummary {
    BacktestSummary {
        trips: b.trips,
        false_trips: b.false_trips,
        detected: b.detected as u32,
        anomalies: b.anomalies as u32,
        detection_delay_median_ms: b.detection_delay_median.map(|d| d.as_millis() as u64),
        lost_good: b.lost_good,
        wasted: b.wasted,
        cost: b.cost,
    }
}

/// The evidence in one sentence, e.g. "Over the last 7 days these thresholds would have
/// tripped 0 times on noise instead of 6 and caught 2 of 2 anomalies (median 12 s sooner)."
pub fn summary_sentence(
    days: f64,
    current: &BacktestSummary,
    suggested: &BacktestSummary,
) -> String {
    let mut text = format!(
        "Over the last {} these thresholds would have tripped {} time{} on noise instead of {}, \
         and caught {} of {} anomalous period{} (the current config: {})",
        if (days - 1.0).abs() < 1e-9 {
            "day".to_string()
        } else {
            format!("{days:.0} days")
        },
        suggested.false_trips,
        if suggested.false_trips == 1 { "" } else { "s" },
        current.false_trips,
        suggested.detected,
        suggested.anomalies,
        if suggested.anomalies == 1 { "" } else { "s" },
        current.detected,
    );
    if let (Some(now), Some(before)) = (
        suggested.detection_delay_median_ms,
        current.detection_delay_median_ms,
    ) && before > now
    {
        text.push_str(&format!(
            ", {:.1} s sooner at the median",
            (before - now) as f64 / 1_000.0
        ));
    }
    text.push_str(&format!(
        "; calls refused while healthy {} → {}, calls sent into trouble {} → {}.",
        current.lost_good, suggested.lost_good, current.wasted, suggested.wasted
    ));
    text
}

/// The server's current config for a breaker (its version; 0 and the default when none).
pub(super) async fn current_config(
    store: &Store,
    breaker_id: i64,
) -> Result<(u64, BreakerConfig), AppError> {
    match configs::current(store, breaker_id).await? {
        Some(stored) => Ok((stored.config.version, stored.config)),
        None => Ok((
            0,
            breaker::subscriber::config_to_wire(
                &breaker::Config::default(),
                breaker::Mode::Automatic,
            ),
        )),
    }
}

/// Runs the engine over a breaker's `days` before `to_ms` as `job` and stores the suggestion
/// (superseding open ones).
pub async fn recommend(
    store: &Store,
    service: &str,
    breaker: &str,
    (days, to_ms): (i64, i64),
    job: &Job,
) -> Result<Recommendation, AppError> {
    let id = store.breaker(service, breaker).await?;
    let from_ms = to_ms - days * 86_400_000;
    // Within the raw aggregates' retention, learn per second: short incidents stay visible.
    let history = history(store, id, from_ms, to_ms, days <= 1).await?;
    let (base_version, current_wire) = current_config(store, id).await?;
    let current = breaker::subscriber::config_from_wire(&current_wire).map_err(|err| {
        AppError::Internal(anyhow::anyhow!("the stored config is invalid: {err}"))
    })?;
    let (suggestion, warnings) = job
        .run(move |stop| {
            let opts = engine::suggest::TuneOptions {
                stop: stop.clone(),
                ..engine::suggest::TuneOptions::default()
            };
            let (suggestion, warnings) =
                engine::suggest::suggest(&history, &current, to_ms as u64, &opts);
            let stopped = warnings.iter().find_map(|warning| match warning {
                engine::Warning::Stopped { reason } => Some(*reason),
                _ => None,
            });
            match (suggestion, stopped) {
                (Some(suggestion), None) => {
                    let cost = RunCost {
                        n_replays: suggestion.n_replays as u64,
                        replayed_calls: suggestion.replayed_calls,
                    };
                    Ok(((suggestion, warnings), cost))
                }
                (_, reason) => Err(reason.unwrap_or(StopReason::Cancelled)),
            }
        })
        .await?;
    let mut suggested =
        breaker::subscriber::config_to_wire(&suggestion.suggested, breaker::Mode::Automatic);
    // A suggestion changes thresholds, never the manual mode an admin set.
    suggested.mode = current_wire.mode;
    let current_backtest = backtest_summary(&suggestion.current_backtest);
    let suggested_backtest = backtest_summary(&suggestion.suggested_backtest);
    let mut rec = Recommendation {
        id: 0,
        service: service.to_string(),
        breaker: breaker.to_string(),
        made_ms: to_ms,
        status: RecommendationStatus::Open,
        from_ms,
        to_ms,
        base_version,
        current: current_wire,
        suggested,
        summary: summary_sentence(days as f64, &current_backtest, &suggested_backtest),
        current_backtest,
        suggested_backtest,
        anomalies: suggestion
            .anomalies
            .iter()
            .map(|p| AnomalyPeriod {
                start_ms: from_ms + p.span.start_ms as i64,
                end_ms: from_ms + p.span.end_ms as i64,
                kind: format!("{:?}", p.kind).to_lowercase(),
            })
            .collect(),
        confidence: suggestion.confidence,
        explanation: suggestion.explanation.clone(),
        doubts: suggestion.doubts.iter().map(ToString::to_string).collect(),
        warnings: warnings.iter().map(ToString::to_string).collect(),
        decided_by: None,
        decided_ms: None,
        applied_version: None,
        replay: Some(replay_trace(from_ms, &suggestion.trace)),
    };
    rec.id = store::insert(store, id, &rec).await?;
    Ok(rec)
}

/// The engine's trace as the wire carries it (f32: a chart needs no more).
fn replay_trace(from_ms: i64, trace: &engine::suggest::Trace) -> protocol::ReplayTrace {
    let f32s = |values: &[f64]| values.iter().map(|&v| v as f32).collect();
    protocol::ReplayTrace {
        t_ms: trace.t_ms.iter().map(|&t| from_ms + t as i64).collect(),
        step_ms: trace.step.as_millis() as i64,
        failure_rate: trace
            .failure_rate
            .iter()
            .map(|v| v.map(|v| v as f32))
            .collect(),
        current_refused: f32s(&trace.current_refused),
        suggested_refused: f32s(&trace.suggested_refused),
        anomalous: trace.anomalous.clone(),
    }
}

/// Lint of a config against per-minute history: `(calls, failed, judged)` per minute.
pub fn lint(config: &BreakerConfig, minutes: &[(u64, u64, u64)]) -> Vec<LintFinding> {
    let mut findings = Vec::new();
    let finding = |rule: &str, detail: String| LintFinding {
        rule: rule.into(),
        detail,
    };
    if let protocol::WindowConfig::Time { seconds } = config.window
        && let Some(busiest) = minutes.iter().map(|m| m.0).max()
    {
        let most_in_window = busiest as f64 * f64::from(seconds) / 60.0;
        if busiest > 0 && most_in_window < f64::from(config.minimum_calls) {
            findings.push(finding(
                "minimum_calls_never_reached",
                format!(
                    "at most about {most_in_window:.0} calls fall in the {seconds} s window, \
                     fewer than minimum_calls ({}): the rates are never judged",
                    config.minimum_calls
                ),
            ));
        }
    }
    if let Some(threshold) = config.failure_rate_threshold {
        let mut rates: Vec<f64> = minutes
            .iter()
            .filter(|m| m.2 >= 20)
            .map(|m| m.1 as f64 / m.2 as f64)
            .collect();
        if rates.len() >= 10 {
            rates.sort_by(f64::total_cmp);
            let median = rates[rates.len() / 2];
            if median >= threshold {
                findings.push(finding(
                    "threshold_below_normal_failure_rate",
                    format!(
                        "the usual failure rate ({:.1} %, the median minute) is at or above the \
                         threshold ({:.1} %): the breaker trips on normal traffic",
                        median * 100.0,
                        threshold * 100.0
                    ),
                ));
            }
        }
    }
    let wait_ms = match config.wait {
        protocol::WaitConfig::Fixed { ms } => ms,
        protocol::WaitConfig::Exponential { initial_ms, .. } => initial_ms,
    };
    if wait_ms < 1_000 {
        findings.push(finding(
            "wait_shorter_than_report_interval",
            format!(
                "the wait in Open ({wait_ms} ms) is shorter than the 1 s report interval: \
                 Open periods may not show on the dashboard"
            ),
        ));
    }
    if let (protocol::WindowConfig::Time { seconds }, Some(timeout_ms)) =
        (config.window, config.call_timeout_ms)
        && u64::from(seconds) * 1_000 < timeout_ms
    {
        findings.push(finding(
            "window_shorter_than_call_timeout",
            format!(
                "the {seconds} s window is shorter than the call timeout ({timeout_ms} ms): \
                 a timed-out call is judged after its window has moved on"
            ),
        ));
    }
    findings
}

#[cfg(test)]
mod tests;
