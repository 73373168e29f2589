//! The demo's past: [`DAYS`] days of plausible history for the demo's breakers, made before the
//! simulated services start, so that every time range of the dashboard has data and the engine
//! has a week to learn from.
//!
//! - The last [`PER_SECOND_MS`] is per-second aggregates per instance, as reporters send them
//!   (the rollup job turns them into minutes later, as it does live ones), so the engine's
//!   per-second path and the 1 h range have data.
//! - Before that, 1-minute and 1-hour rollups summed over instances.
//! - Past incidents: `past_incidents_per_day` a day per dependency at seeded times, each a few
//!   minutes long. While one lasts, and throughout the per-second hours, each instance's
//!   breaker — the real state machine, `breaker::Machine`, running its config in virtual time —
//!   decides which calls were rejected and which transitions happened, with their trigger
//!   values. So the demo's wrong breaker, whose threshold is above what its outages fail,
//!   stays Closed through them.
//!
//! Everything here is computed, nothing is written: [`super::start`] writes it through the
//! stores. A seeded generator makes the same history for the same `now_ms`.

use std::time::Duration;

use breaker::reporter::{wire_state, wire_transition};
use breaker::{Admission, Config, Machine, Outcome};
use protocol::{Aggregate, LatencyHistogram, OutcomeCounts, Transition};

use super::{Dependency, INCIDENT_SLOWDOWN, XorShift};
use crate::query::rollup::{Bucket, HOUR_MS, MINUTE_MS};

/// How far back the history goes.
pub const DAYS: i64 = 7;
/// The most recent part, kept per second per instance.
pub const PER_SECOND_MS: i64 = 2 * HOUR_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// No past incident ends closer to now than this: the live one comes soon enough.
const QUIET_BEFORE_NOW_MS: i64 = 15 * MINUTE_MS;

/// One dependency of one service, as the history sees it.
pub(super) struct Series<'a> {
    pub service: &'static str,
    pub instances: &'static [&'static str],
    pub dependency: &'a Dependency,
    /// The config the breaker ran.
    pub config: Config,
    /// The config version the breaker ran.
    pub config_version: u64,
}

/// What [`generate`] made, ready for the stores.
#[derive(Default)]
pub(super) struct DemoHistory {
    /// `(service, breaker, resolution_ms, start_ms, bucket)`, instances summed.
    pub rollups: Vec<(&'static str, &'static str, i64, i64, Bucket)>,
    /// `(service, instance, aggregate)`, one per second per instance and breaker.
    pub aggregates: Vec<(&'static str, &'static str, Aggregate)>,
    /// `(service, instance, transition)`, oldest first per instance.
    pub transitions: Vec<(&'static str, &'static str, Transition)>,
}

/// Where the per-second part starts: `PER_SECOND_MS` before `now_ms`, on a minute.
pub fn split_ms(now_ms: i64) -> i64 {
    (now_ms - PER_SECOND_MS).div_euclid(MINUTE_MS) * MINUTE_MS
}

/// Where the history starts: `DAYS` days before `now_ms`, on a minute.
pub fn from_ms(now_ms: i64) -> i64 {
    split_ms(now_ms) + PER_SECOND_MS - DAYS * DAY_MS
}

/// The history of every series over the `DAYS` days before `now_ms`.
pub(super) fn generate(series: &[Series<'_>], now_ms: i64) -> DemoHistory {
    let split_ms = split_ms(now_ms);
    let from_ms = from_ms(now_ms);
    let mut out = DemoHistory::default();
    for (series_idx, series) in series.iter().enumerate() {
        let mut rng = XorShift((series_idx as u64 + 7).wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
        let incidents = incidents(series.dependency, from_ms, now_ms, &mut rng);
        let mut minutes: Vec<(i64, Bucket)> = Vec::new();
        // Old minutes: expected counts, except around incidents, which are simulated per second.
        let mut sims: Vec<Sim> = series.instances.iter().map(|_| Sim::default()).collect();
        let mut minute_ms = from_ms;
        while minute_ms < split_ms {
            let eventful = incidents
                .iter()
                .any(|&(start, end)| minute_ms < end + MINUTE_MS && minute_ms + MINUTE_MS > start);
            let mut bucket = Bucket {
                failure_rate_threshold: series.config.failure_rate_threshold(),
                ..Bucket::default()
            };
            for (instance_idx, instance) in series.instances.iter().enumerate() {
                if !eventful {
                    sims[instance_idx] = Sim::default();
                    bucket.merge(&quiet_minute(series, minute_ms, &mut rng));
                    continue;
                }
                for second in 0..60 {
                    let second_ms = minute_ms + second * 1_000;
                    let (aggregate, transitions) =
                        sims[instance_idx].second(series, second_ms, &incidents, &mut rng);
                    bucket.counts.merge(&aggregate.counts);
                    bucket.latency.merge(&aggregate.latency);
                    out.transitions.extend(
                        transitions
                            .into_iter()
                            .map(|transition| (series.service, *instance, transition)),
                    );
                }
            }
            minutes.push((minute_ms, bucket));
            minute_ms += MINUTE_MS;
        }
        // The last hours, per second and per instance, as reported.
        for instance in series.instances {
            let mut sim = Sim::default();
            let mut second_ms = split_ms;
            while second_ms + 1_000 <= now_ms {
                let (aggregate, transitions) = sim.second(series, second_ms, &incidents, &mut rng);
                out.aggregates.push((series.service, *instance, aggregate));
                out.transitions.extend(
                    transitions
                        .into_iter()
                        .map(|transition| (series.service, *instance, transition)),
                );
                second_ms += 1_000;
            }
        }
        let breaker = series.dependency.breaker;
        let mut hours: std::collections::BTreeMap<i64, Bucket> = Default::default();
        for (start_ms, bucket) in &minutes {
            hours
                .entry(start_ms.div_euclid(HOUR_MS) * HOUR_MS)
                .or_default()
                .merge(bucket);
        }
        out.rollups.extend(
            minutes
                .into_iter()
                .map(|(start_ms, bucket)| (series.service, breaker, MINUTE_MS, start_ms, bucket)),
        );
        out.rollups.extend(
            hours
                .into_iter()
                .map(|(start_ms, bucket)| (series.service, breaker, HOUR_MS, start_ms, bucket)),
        );
    }
    out
}

/// `(start_ms, end_ms)` of each past incident of `dependency`, oldest first.
fn incidents(
    dependency: &Dependency,
    from_ms: i64,
    now_ms: i64,
    rng: &mut XorShift,
) -> Vec<(i64, i64)> {
    let mut incidents = Vec::new();
    for day in 0..DAYS {
        for _ in 0..dependency.past_incidents_per_day {
            let start = from_ms + day * DAY_MS + (rng.next_f64() * DAY_MS as f64) as i64;
            let length = (3.0 + rng.next_f64() * 9.0) * MINUTE_MS as f64;
            let end = start + length as i64;
            if end < now_ms - QUIET_BEFORE_NOW_MS {
                incidents.push((start, end));
            }
        }
    }
    incidents.sort_unstable();
    incidents
}

/// Traffic through the day: busiest in the afternoon, a third lower at night.
fn traffic(at_ms: i64) -> f64 {
    let day_fraction = at_ms.rem_euclid(DAY_MS) as f64 / DAY_MS as f64;
    0.85 + 0.15 * (std::f64::consts::TAU * (day_fraction - 0.375)).sin()
}

/// One quiet minute of one instance: expected counts with some noise, no transitions.
fn quiet_minute(series: &Series<'_>, minute_ms: i64, rng: &mut XorShift) -> Bucket {
    let dependency = series.dependency;
    let calls = (dependency.calls_per_s * 60.0 * traffic(minute_ms) * (0.95 + 0.1 * rng.next_f64()))
        .round() as u64;
    let failure_p = dependency.base_failure * (0.6 + 0.8 * rng.next_f64());
    let failures = (calls as f64 * failure_p).round() as u64;
    let mut latency = LatencyHistogram::default();
    // A quarter of the calls at each of four points spread like the live simulation's.
    for (idx, factor) in [0.62, 0.87, 1.12, 1.37].into_iter().enumerate() {
        let n = calls / 4 + u64::from((idx as u64) < calls % 4);
        let micros = (dependency.latency_ms * factor * 1_000.0) as u64;
        latency.add_to_bucket(LatencyHistogram::bucket_of_micros(micros), n);
    }
    Bucket {
        counts: OutcomeCounts {
            success: calls - failures,
            failure: failures,
            ..OutcomeCounts::default()
        },
        latency,
        failure_rate_threshold: series.config.failure_rate_threshold(),
    }
}

/// One instance's breaker through the history: the real state machine (`breaker::Machine`),
/// driven a second at a time in virtual time, as the engine replays histories.
#[derive(Default)]
struct Sim {
    /// Created at the first second it sees, so its windows start there.
    machine: Option<Machine>,
    /// Calls not yet made (fractions of a call carry over to the next second).
    carry: f64,
}

impl Sim {
    /// One second from `second_ms`: its aggregate and its transitions.
    fn second(
        &mut self,
        series: &Series<'_>,
        second_ms: i64,
        incidents: &[(i64, i64)],
        rng: &mut XorShift,
    ) -> (Aggregate, Vec<Transition>) {
        let dependency = series.dependency;
        let at = |ms: i64| Duration::from_millis(ms.max(0) as u64);
        let machine = self.machine.get_or_insert_with(|| {
            Machine::new(series.config.clone(), at(second_ms), second_ms as u64)
        });
        let failing = incidents
            .iter()
            .any(|&(start, end)| (start..end).contains(&second_ms));
        let (failure_p, slowdown) = if failing {
            (dependency.incident_failure, INCIDENT_SLOWDOWN)
        } else {
            (dependency.base_failure, 1.0)
        };
        self.carry += dependency.calls_per_s * traffic(second_ms);
        let n_calls = self.carry.floor() as u64;
        self.carry -= n_calls as f64;
        let mut counts = OutcomeCounts::default();
        let mut latency = LatencyHistogram::default();
        let mut transitions = Vec::new();
        let mut wire = |at_ms: i64, transition: Option<breaker::Transition>| {
            if let Some(transition) = transition {
                let mut wire = wire_transition(dependency.breaker, at_ms, &transition);
                wire.config_version = series.config_version;
                transitions.push(wire);
            }
        };
        // A wait that ends within a quiet second still moves the breaker on.
        wire(second_ms, machine.poll(at(second_ms)));
        for call in 0..n_calls {
            // Calls spread evenly over the second.
            let at_ms = second_ms + (call * 1_000 / n_calls.max(1)) as i64;
            let (admission, moved) = machine.acquire(at(at_ms));
            wire(at_ms, moved);
            let Admission::Granted(granted) = admission else {
                counts.rejected += 1;
                continue;
            };
            let micros = dependency.latency_ms * (0.5 + rng.next_f64()) * slowdown * 1_000.0;
            latency.record_micros(micros as u64);
            let outcome = if rng.next_f64() < failure_p {
                counts.failure += 1;
                Outcome::Failure
            } else {
                counts.success += 1;
                Outcome::Success
            };
            let took = Duration::from_micros(micros as u64);
            wire(at_ms, machine.record(at(at_ms), granted, outcome, took));
        }
        let aggregate = Aggregate {
            breaker: dependency.breaker.to_string(),
            start_ms: second_ms,
            interval_ms: 1_000,
            failure_rate: machine.failure_rate(at(second_ms + 999)),
            failure_rate_threshold: series.config.failure_rate_threshold(),
            state: wire_state(machine.state()),
            counts,
            latency,
            config_version: series.config_version,
        };
        (aggregate, transitions)
    }
}

#[cfg(test)]
mod tests;
