//! Per-call events, for adapters of breaker libraries that only expose those (opossum,
//! pybreaker). The server folds them into the same per-second aggregates a reporter sends.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Aggregate, IngestBatch, LatencyHistogram, OutcomeCounts, State, Transition};
use crate::{ValidationError, validate_name};

/// How one call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    Success,
    Failure,
    Timeout,
    Rejected,
    Ignored,
}

/// One call through one breaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CallEvent {
    pub breaker: String,
    pub at_ms: i64,
    pub outcome: CallOutcome,
    /// How long the call took; absent for rejected calls.
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// Whether the library judged the call slow.
    #[serde(default)]
    pub slow: bool,
    /// The breaker's state when the call ended.
    #[serde(default = "closed")]
    pub state: State,
}

fn closed() -> State {
    State::Closed
}

/// A numbered batch of per-call events and transitions from one instance; numbered like
/// [`IngestBatch`] (same `seq` space), so a retried batch is stored once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CallBatch {
    pub service: String,
    pub instance: String,
    #[serde(deserialize_with = "crate::int64::u64")]
    pub seq: u64,
    pub sent_at_ms: i64,
    #[serde(default)]
    pub calls: Vec<CallEvent>,
    #[serde(default)]
    pub transitions: Vec<Transition>,
}

impl CallBatch {
    /// Checks what the folded batch cannot show: call names and latencies.
    pub fn validate_calls(&self) -> Result<(), ValidationError> {
        for (i, call) in self.calls.iter().enumerate() {
            let at = |field: &str| format!("$.calls[{i}].{field}");
            validate_name(&call.breaker).map_err(|detail| ValidationError {
                path: at("breaker"),
                detail,
            })?;
            if let Some(ms) = call.latency_ms
                && !(ms.is_finite() && ms >= 0.0)
            {
                return Err(ValidationError {
                    path: at("latency_ms"),
                    detail: format!("{ms} is not a duration in ms"),
                });
            }
        }
        Ok(())
    }

    /// Folds the calls into one aggregate per breaker per second (ascending), with the state
    /// at the end of each second (the last call's, or a later transition's).
    pub fn into_ingest_batch(self) -> IngestBatch {
        let mut seconds: BTreeMap<(String, i64), (Aggregate, i64)> = BTreeMap::new();
        for call in self.calls {
            // Saturating: a time near i64::MIN folds without overflow; validation refuses it.
            let start_ms = call.at_ms.div_euclid(1_000).saturating_mul(1_000);
            let (aggregate, last_at) = seconds
                .entry((call.breaker.clone(), start_ms))
                .or_insert_with(|| {
                    (
                        Aggregate {
                            breaker: call.breaker.clone(),
                            start_ms,
                            interval_ms: 1_000,
                            counts: OutcomeCounts::default(),
                            latency: LatencyHistogram::default(),
                            state: call.state,
                            failure_rate: None,
                            failure_rate_threshold: None,
                            config_version: 0,
                        },
                        i64::MIN,
                    )
                });
            let counts = &mut aggregate.counts;
            let count = match call.outcome {
                CallOutcome::Success => &mut counts.success,
                CallOutcome::Failure => &mut counts.failure,
                CallOutcome::Timeout => &mut counts.timeout,
                CallOutcome::Rejected => &mut counts.rejected,
                CallOutcome::Ignored => &mut counts.ignored,
            };
            *count = count.saturating_add(1);
            // A rejected call never ran, so it is neither slow nor timed (validation would
            // refuse the folded aggregate otherwise).
            if call.slow && call.outcome != CallOutcome::Rejected {
                counts.slow = counts.slow.saturating_add(1);
            }
            if let Some(ms) = call.latency_ms
                && call.outcome != CallOutcome::Rejected
            {
                aggregate.latency.record_micros((ms * 1_000.0) as u64);
            }
            if call.at_ms >= *last_at {
                aggregate.state = call.state;
                *last_at = call.at_ms;
            }
        }
        // An aggregate's state is the state at the end of its second: a transition after the
        // second's last call moves it.
        let aggregates = seconds
            .into_values()
            .map(|(mut aggregate, last_call_ms)| {
                let end_ms = aggregate.start_ms.saturating_add(1_000);
                if let Some(latest) = self
                    .transitions
                    .iter()
                    .filter(|t| t.breaker == aggregate.breaker)
                    .filter(|t| t.at_ms >= last_call_ms && t.at_ms < end_ms)
                    .max_by_key(|t| t.at_ms)
                {
                    aggregate.state = latest.to;
                }
                aggregate
            })
            .collect();
        IngestBatch {
            service: self.service,
            instance: self.instance,
            seq: self.seq,
            sent_at_ms: self.sent_at_ms,
            aggregates,
            transitions: self.transitions,
            dropped: Default::default(),
        }
    }
}
