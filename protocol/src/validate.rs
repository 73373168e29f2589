//! Checks that a well-formed batch makes sense, naming the first field that does not.

use crate::IngestBatch;

/// The longest service, instance or breaker name accepted, in characters.
pub const MAX_NAME_LEN: usize = 200;

/// How far a timestamp may be from the server's clock: one day.
const MAX_CLOCK_SKEW_MS: i64 = 24 * 60 * 60 * 1_000;

/// The longest reporting interval accepted: one hour.
const MAX_INTERVAL_MS: u32 = 60 * 60 * 1_000;

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

/// A name must be 1–200 characters long and hold no control characters.
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
    Ok(())
}

fn check_time(path: String, at_ms: i64, now_ms: i64) -> Result<(), ValidationError> {
    if (at_ms - now_ms).abs() > MAX_CLOCK_SKEW_MS {
        return Err(invalid(
            path,
            format!("timestamp {at_ms} is more than a day away from the server's clock ({now_ms})"),
        ));
    }
    Ok(())
}

/// Checks names, timestamps (within a day of `now_ms`), intervals and histogram shapes.
pub fn validate_batch(batch: &IngestBatch, now_ms: i64) -> Result<(), ValidationError> {
    validate_name(&batch.service).map_err(|d| invalid("$.service".into(), d))?;
    validate_name(&batch.instance).map_err(|d| invalid("$.instance".into(), d))?;
    check_time("$.sent_at_ms".into(), batch.sent_at_ms, now_ms)?;
    for (i, aggregate) in batch.aggregates.iter().enumerate() {
        let at = |field: &str| format!("$.aggregates[{i}].{field}");
        validate_name(&aggregate.breaker).map_err(|d| invalid(at("breaker"), d))?;
        check_time(at("start_ms"), aggregate.start_ms, now_ms)?;
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
        check_time(at("at_ms"), transition.at_ms, now_ms)?;
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
            validate_name(&trigger.kind).map_err(|d| invalid(at("trigger.kind"), d))?;
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
