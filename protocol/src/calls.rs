//! Per-call events, for adapters of breaker libraries that would rather send each call than
//! count them. The server folds them into the same per-second aggregates a reporter sends.
//!
//! A call or transition that carries no `config_version` takes, for its breaker: the version of
//! the latest earlier event of the same batch that carries one; else the version the server
//! knows the instance runs (the caller of [`CallBatch::into_ingest_batch`] says which); else
//! the first version a later event of the batch carries; else 0, the protocol's version of a
//! breaker that runs no pushed config. So an event without a version never moves the fleet's
//! view of an instance back to an older version, or to 0 while a version is known.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Aggregate, IngestBatch, LatencyHistogram, OutcomeCounts, State, Transition, Trigger};
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
    /// The config version the breaker ran when the call ended; absent: the version the
    /// instance last reported for this breaker.
    #[serde(default, deserialize_with = "crate::int64::option")]
    pub config_version: Option<u64>,
    /// The failure rate (0–1) the breaker judged over its window when the call ended.
    #[serde(default)]
    pub failure_rate: Option<f64>,
    /// The failure-rate threshold (0–1) it trips at.
    #[serde(default)]
    pub failure_rate_threshold: Option<f64>,
}

/// A state transition sent with per-call events: a [`Transition`] whose `config_version` may be
/// absent (then the version the instance last reported for this breaker).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CallTransition {
    pub breaker: String,
    pub at_ms: i64,
    pub from: State,
    pub to: State,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default, deserialize_with = "crate::int64::option")]
    pub config_version: Option<u64>,
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
    pub transitions: Vec<CallTransition>,
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
            for (field, rate) in [
                ("failure_rate", call.failure_rate),
                ("failure_rate_threshold", call.failure_rate_threshold),
            ] {
                if let Some(rate) = rate
                    && !(0.0..=1.0).contains(&rate)
                {
                    return Err(ValidationError {
                        path: at(field),
                        detail: format!("{rate} is not a rate between 0 and 1"),
                    });
                }
            }
        }
        Ok(())
    }

    /// Folds the calls into one aggregate per breaker per second (ascending), with the state
    /// at the end of each second (the last call's, or a later transition's) and the last call's
    /// config version and failure rate. `known_version` gives, per breaker, the version the
    /// server knows the instance runs, if any. A second whose calls carry no version, and a
    /// transition without one, take the version of the breaker's latest earlier event in the
    /// batch that carries one, else `known_version`, else the first version a later event of
    /// the batch carries, else 0 (see the module's documentation).
    pub fn into_ingest_batch(self, known_version: impl Fn(&str) -> Option<u64>) -> IngestBatch {
        let carried = CarriedVersions::new(&self.calls, &self.transitions);
        let version_at = |breaker: &str, at_ms: i64| {
            carried
                .latest_before(breaker, at_ms)
                .or_else(|| known_version(breaker))
                .or_else(|| carried.first(breaker))
                .unwrap_or(0)
        };
        let mut seconds: BTreeMap<(String, i64), (Aggregate, i64)> = BTreeMap::new();
        // The newest version a call carried, per aggregate, with its call's time.
        let mut versions: BTreeMap<(String, i64), (i64, u64)> = BTreeMap::new();
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
                if call.failure_rate.is_some() {
                    aggregate.failure_rate = call.failure_rate;
                }
                if call.failure_rate_threshold.is_some() {
                    aggregate.failure_rate_threshold = call.failure_rate_threshold;
                }
            }
            if let Some(version) = call.config_version {
                let newest = versions
                    .entry((call.breaker.clone(), start_ms))
                    .or_insert((call.at_ms, version));
                if call.at_ms >= newest.0 {
                    *newest = (call.at_ms, version);
                }
            }
        }
        // An aggregate's state is the state at the end of its second: a transition after the
        // second's last call moves it.
        let aggregates = seconds
            .into_iter()
            .map(|(key, (mut aggregate, last_call_ms))| {
                aggregate.config_version = match versions.get(&key) {
                    Some(&(_, version)) => version,
                    // Before the second ends: an event earlier in this second or before it.
                    None => version_at(&aggregate.breaker, aggregate.start_ms.saturating_add(999)),
                };
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
            transitions: self
                .transitions
                .into_iter()
                .map(|t| Transition {
                    config_version: t
                        .config_version
                        .unwrap_or_else(|| version_at(&t.breaker, t.at_ms)),
                    breaker: t.breaker,
                    at_ms: t.at_ms,
                    from: t.from,
                    to: t.to,
                    trigger: t.trigger,
                })
                .collect(),
            dropped: Default::default(),
        }
    }
}

/// The versions the events of one batch carry, per breaker, in time order.
struct CarriedVersions {
    by_breaker: BTreeMap<String, Vec<(i64, u64)>>,
}

// === impl CarriedVersions ===

impl CarriedVersions {
    fn new(calls: &[CallEvent], transitions: &[CallTransition]) -> CarriedVersions {
        let mut by_breaker: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
        let calls = calls
            .iter()
            .filter_map(|c| Some((&c.breaker, c.at_ms, c.config_version?)));
        let transitions = transitions
            .iter()
            .filter_map(|t| Some((&t.breaker, t.at_ms, t.config_version?)));
        for (breaker, at_ms, version) in calls.chain(transitions) {
            by_breaker
                .entry(breaker.clone())
                .or_default()
                .push((at_ms, version));
        }
        for versions in by_breaker.values_mut() {
            // Stable: of events at the same time, the one sent last counts as the later.
            versions.sort_by_key(|&(at_ms, _)| at_ms);
        }
        CarriedVersions { by_breaker }
    }

    /// The version of the latest event of `breaker` at or before `at_ms`.
    fn latest_before(&self, breaker: &str, at_ms: i64) -> Option<u64> {
        let versions = self.by_breaker.get(breaker)?;
        let n_before = versions.partition_point(|&(event_ms, _)| event_ms <= at_ms);
        n_before.checked_sub(1).map(|idx| versions[idx].1)
    }

    /// The version of the earliest event of `breaker` that carries one.
    fn first(&self, breaker: &str) -> Option<u64> {
        self.by_breaker
            .get(breaker)?
            .first()
            .map(|&(_, version)| version)
    }
}
