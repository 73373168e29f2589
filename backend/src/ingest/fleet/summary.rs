//! A breaker's summary from its instances: the worst state, rates over the fresh intervals, and
//! what last tripped it.

use std::collections::BTreeMap;

use protocol::{BreakerSummary, InstanceState, LatencyHistogram, OutcomeCounts, State, Trip};

use super::{InstanceLive, STALE_AFTER_MS};

/// The summary of `service`'s `breaker` over its `instances`.
pub(super) fn summarize(
    service: &str,
    breaker: &str,
    instances: &BTreeMap<String, InstanceLive>,
) -> BreakerSummary {
    let state = super::worst_state(instances);
    let since_ms = instances
        .values()
        .filter(|i| i.state == state)
        .map(|i| i.since_ms)
        .min()
        .unwrap_or(0);
    let newest_end = instances
        .values()
        .filter_map(|i| i.last_interval.as_ref().map(|l| l.end_ms))
        .max()
        .unwrap_or(0);
    let mut counts = OutcomeCounts::default();
    let mut latency = LatencyHistogram::default();
    let mut calls_per_s = 0.0;
    let mut threshold = None;
    for interval in instances
        .values()
        .filter_map(|i| i.last_interval.as_ref())
        .filter(|l| l.end_ms >= newest_end - STALE_AFTER_MS)
    {
        counts.merge(&interval.counts);
        latency.merge(&interval.latency);
        let c = &interval.counts;
        let calls = c.judged() as f64 + c.rejected as f64 + c.ignored as f64;
        calls_per_s += calls * 1_000.0 / f64::from(interval.interval_ms.max(1));
        threshold = threshold.or(interval.failure_rate_threshold);
    }
    let judged = counts.judged();
    let failure_rate = (judged > 0).then(|| counts.failed() as f64 / judged as f64);
    let slow_call_rate = (judged > 0).then(|| counts.slow as f64 / judged as f64);
    BreakerSummary {
        service: service.to_string(),
        breaker: breaker.to_string(),
        state,
        since_ms,
        instances: instances
            .iter()
            .map(|(name, live)| InstanceState {
                instance: name.clone(),
                state: live.state,
                since_ms: live.since_ms,
                config_version: live.config_version,
            })
            .collect(),
        open_instances: instances
            .values()
            .filter(|i| i.state == State::Open)
            .count() as u32,
        failure_rate,
        failure_rate_threshold: threshold,
        calls_per_s,
        slow_call_rate,
        p99_ms: latency.quantile_ms(0.99),
        updated_ms: newest_end,
        last_trip: instances
            .iter()
            .filter(|(_, live)| live.state != State::Closed)
            .filter_map(|(name, live)| Some((name, live.last_trip.as_ref()?)))
            .max_by_key(|(_, (at_ms, _))| *at_ms)
            .map(|(name, (at_ms, trigger))| Trip {
                instance: name.clone(),
                at_ms: *at_ms,
                trigger: trigger.clone(),
            }),
    }
}
