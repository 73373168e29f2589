//! Checks that a well-formed batch makes sense, naming the first field that does not.

use crate::{IngestBatch, OutcomeCounts};

/// The longest service, instance or breaker name accepted, in characters.
pub const MAX_NAME_LEN: usize = 200;

/// How far a timestamp may be from the server's clock: one day.
const MAX_CLOCK_SKEW_MS: i64 = 24 * 60 * 60 * 1_000;

/// The longest reporting interval accepted: one hour.
const MAX_INTERVAL_MS: u32 = 60 * 60 * 1_000;

/// What a reporter may send as a `Trigger::kind`: every kind the breaker crate's state machine
/// names (`breaker::TriggerKind::as_str`).
pub const TRIGGER_KINDS: [&str; 8] = [
    "failure_rate",
    "slow_call_rate",
    "consecutive_failures",
    "wait_elapsed",
    "probe_succeeded",
    "probe_failed",
    "half_open_timeout",
    "manual",
];

/// Bounds on what one batch may claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// The most calls one instance's breaker may report per second of an aggregate's interval
    /// (all outcomes, rejected ones included). With the longest interval (1 h) the default
    /// allows 3.6e9 calls, far under 2^53, so sums stay exact even as `f64`.
    pub max_calls_per_s: u64,
}

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits {
            max_calls_per_s: 1_000_000,
        }
    }
}

/// What is wrong with a batch, and where (a JSON path into the batch).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {detail}")]
pub struct ValidationError {
    pub path: String,
    pub detail: String,
}

fn invalid(path: String, detail: impl Into<String>) -> ValidationError {
    ValidationError {
        path,
        detail: detail.into(),
    }
}

/// Characters that render as nothing or reorder the text around them, so that a name holding
/// one can pass for another on the dashboard: bidirectional controls, line and paragraph
/// separators, zero-width and other invisible format characters.
fn is_spoofing(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// A name must be 1–200 characters long and hold no control characters and no invisible or
/// text-reordering ones (see `is_spoofing`).
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    let n_chars = name.chars().count();
    if n_chars > MAX_NAME_LEN {
        return Err(format!(
            "is {n_chars} characters long; at most {MAX_NAME_LEN} are allowed"
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    if let Some(c) = name.chars().find(|&c| is_spoofing(c)) {
        return Err(format!(
            "contains U+{:04X}, an invisible or text-reordering character that lets a name \
             pass for another",
            u32::from(c)
        ));
    }
    Ok(())
}

fn check_time(
    path: impl FnOnce() -> String,
    at_ms: i64,
    now_ms: i64,
) -> Result<(), ValidationError> {
    if at_ms.abs_diff(now_ms) > MAX_CLOCK_SKEW_MS.unsigned_abs() {
        return Err(invalid(
            path(),
            format!("timestamp {at_ms} is more than a day away from the server's clock ({now_ms})"),
        ));
    }
    Ok(())
}

fn check_int64(path: impl FnOnce() -> String, value: u64) -> Result<(), ValidationError> {
    if value > crate::MAX_INT64 {
        return Err(invalid(
            path(),
            format!("{value} is over the int64 maximum {}", crate::MAX_INT64),
        ));
    }
    Ok(())
}

/// Checks an aggregate's counts against each other and against its interval; `at` makes the
/// JSON path of a field.
fn check_counts(
    counts: &OutcomeCounts,
    latency_total: u128,
    interval_ms: u32,
    limits: &BatchLimits,
    at: impl Fn(&str) -> String,
) -> Result<(), ValidationError> {
    let OutcomeCounts {
        success,
        failure,
        timeout,
        rejected,
        slow,
        ignored,
    } = *counts;
    for (field, value) in [
        ("success", success),
        ("failure", failure),
        ("timeout", timeout),
        ("rejected", rejected),
        ("slow", slow),
        ("ignored", ignored),
    ] {
        check_int64(|| at(&format!("counts.{field}")), value)?;
    }
    // u128: five values below 2^63 cannot overflow it, nor can the limit times the interval.
    let ran = u128::from(success) + u128::from(failure) + u128::from(timeout) + u128::from(ignored);
    let calls = ran + u128::from(rejected);
    let max_calls = u128::from(limits.max_calls_per_s) * u128::from(interval_ms) / 1_000;
    if calls > max_calls {
        return Err(invalid(
            at("counts"),
            format!(
                "{calls} calls in {interval_ms} ms exceeds max_calls_per_s = {} × interval \
                 ({max_calls} calls)",
                limits.max_calls_per_s
            ),
        ));
    }
    if u128::from(slow) > ran {
        return Err(invalid(
            at("counts.slow"),
            format!(
                "{slow} slow calls, but only {ran} calls ran (success + failure + timeout + \
                 ignored; rejected calls never run)"
            ),
        ));
    }
    if latency_total > ran {
        return Err(invalid(
            at("latency.counts"),
            format!(
                "the histogram holds {latency_total} calls, but only {ran} calls ran \
                 (success + failure + timeout + ignored)"
            ),
        ));
    }
    Ok(())
}

/// [`validate_batch_with`] with the default [`BatchLimits`].
pub fn validate_batch(batch: &IngestBatch, now_ms: i64) -> Result<(), ValidationError> {
    validate_batch_with(batch, now_ms, &BatchLimits::default())
}

/// Checks names, timestamps (within a day of `now_ms`), intervals, histogram shapes, trigger
/// kinds, that every integer fits int64, and that an aggregate's counts are consistent (no more
/// slow or timed calls than calls that ran) and within what its interval could hold.
pub fn validate_batch_with(
    batch: &IngestBatch,
    now_ms: i64,
    limits: &BatchLimits,
) -> Result<(), ValidationError> {
    validate_name(&batch.service).map_err(|d| invalid("$.service".into(), d))?;
    validate_name(&batch.instance).map_err(|d| invalid("$.instance".into(), d))?;
    check_time(|| "$.sent_at_ms".into(), batch.sent_at_ms, now_ms)?;
    check_int64(|| "$.seq".into(), batch.seq)?;
    let dropped = &batch.dropped;
    for (field, value) in [
        ("aggregates_coalesced", dropped.aggregates_coalesced),
        ("aggregates_dropped", dropped.aggregates_dropped),
        ("transitions_dropped", dropped.transitions_dropped),
    ] {
        check_int64(|| format!("$.dropped.{field}"), value)?;
    }
    for (i, aggregate) in batch.aggregates.iter().enumerate() {
        let at = |field: &str| format!("$.aggregates[{i}].{field}");
        validate_name(&aggregate.breaker).map_err(|d| invalid(at("breaker"), d))?;
        check_time(|| at("start_ms"), aggregate.start_ms, now_ms)?;
        if aggregate.interval_ms == 0 || aggregate.interval_ms > MAX_INTERVAL_MS {
            return Err(invalid(
                at("interval_ms"),
                format!("must be between 1 and {MAX_INTERVAL_MS} ms"),
            ));
        }
        if aggregate.latency.counts.len() > crate::LatencyHistogram::BUCKETS {
            return Err(invalid(
                at("latency.counts"),
                format!(
                    "has {} buckets; at most {} are defined",
                    aggregate.latency.counts.len(),
                    crate::LatencyHistogram::BUCKETS
                ),
            ));
        }
        for (bucket, &n) in aggregate.latency.counts.iter().enumerate() {
            check_int64(|| at(&format!("latency.counts[{bucket}]")), n)?;
        }
        let latency_total = aggregate
            .latency
            .counts
            .iter()
            .map(|&n| u128::from(n))
            .sum();
        check_counts(
            &aggregate.counts,
            latency_total,
            aggregate.interval_ms,
            limits,
            at,
        )?;
        check_int64(|| at("config_version"), aggregate.config_version)?;
        for (field, value) in [
            ("failure_rate", aggregate.failure_rate),
            ("failure_rate_threshold", aggregate.failure_rate_threshold),
        ] {
            if let Some(rate) = value
                && !(0.0..=1.0).contains(&rate)
            {
                return Err(invalid(
                    at(field),
                    format!("{rate} is not a rate between 0 and 1"),
                ));
            }
        }
    }
    for (i, transition) in batch.transitions.iter().enumerate() {
        let at = |field: &str| format!("$.transitions[{i}].{field}");
        validate_name(&transition.breaker).map_err(|d| invalid(at("breaker"), d))?;
        check_time(|| at("at_ms"), transition.at_ms, now_ms)?;
        check_int64(|| at("config_version"), transition.config_version)?;
        if transition.from == transition.to {
            return Err(invalid(
                at("to"),
                format!(
                    "a transition must change state; both are {}",
                    transition.to.as_str()
                ),
            ));
        }
        if let Some(trigger) = &transition.trigger {
            if !TRIGGER_KINDS.contains(&trigger.kind.as_str()) {
                return Err(invalid(
                    at("trigger.kind"),
                    format!(
                        "{:?} is not a trigger kind; the kinds are {}",
                        trigger.kind.chars().take(MAX_NAME_LEN).collect::<String>(),
                        TRIGGER_KINDS.join(", ")
                    ),
                ));
            }
            if !trigger.value.is_finite() || !trigger.threshold.is_finite() {
                return Err(invalid(
                    at("trigger"),
                    "value and threshold must be finite numbers",
                ));
            }
        }
    }
    Ok(())
}
