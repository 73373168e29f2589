//! `Fleet`: the server's in-memory view of every breaker on every instance, the source of
//! breaker summaries for the API and the live stream.
//!
//! It is rebuilt from the store's `instance_states` at start and updated by the ingest writer
//! after each commit, so a read never touches SQLite.
//!
//! Breakers are kept in order (service, then name), so that lists are read a page at a time
//! from a cursor ([`Fleet::summaries_page`], [`Fleet::sparklines_page`],
//! [`Fleet::services_page`], [`Fleet::breakers_after`]): no answer or `/metrics` chunk holds
//! the whole fleet at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;

use protocol::{
    Aggregate, BreakerSummary, LatencyHistogram, OutcomeCounts, ServiceSummary, Sparkline, State,
    Transition, Trigger,
};

/// An instance stops counting towards a breaker's current rates when its newest interval ended
/// this long before the newest interval of any instance.
const STALE_AFTER_MS: i64 = 5_000;

#[derive(Clone, Debug, PartialEq)]
pub struct InstanceLive {
    pub state: State,
    pub since_ms: i64,
    pub config_version: u64,
    /// Time of the newest event applied (a transition's time or an interval's end).
    pub updated_ms: i64,
    /// Time of the oldest event applied (a transition's time or an interval's start): when the
    /// instance first reported the breaker. Timelines show no data before it.
    pub first_ms: i64,
    /// The newest Closed → Open transition with a trigger: its time and trigger.
    pub last_trip: Option<(i64, Trigger)>,
    pub last_interval: Option<IntervalLive>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IntervalLive {
    pub end_ms: i64,
    pub interval_ms: u32,
    pub counts: OutcomeCounts,
    pub latency: LatencyHistogram,
    pub failure_rate_threshold: Option<f64>,
}

/// One event from a batch that can move an instance's state, in time order.
pub enum InstanceEvent<'a> {
    Transition(&'a Transition),
    Interval(&'a Aggregate),
}

impl InstanceEvent<'_> {
    pub fn time_ms(&self) -> i64 {
        match self {
            InstanceEvent::Transition(t) => t.at_ms,
            InstanceEvent::Interval(a) => a.start_ms + i64::from(a.interval_ms),
        }
    }

    /// When what the event reports began: a transition's time, an interval's start.
    pub fn start_ms(&self) -> i64 {
        match self {
            InstanceEvent::Transition(t) => t.at_ms,
            InstanceEvent::Interval(a) => a.start_ms,
        }
    }
}

/// Seconds of calls/s history kept per breaker for sparklines.
pub const SPARKLINE_SECONDS: usize = 120;

#[derive(Default)]
pub struct Totals {
    pub counts: OutcomeCounts,
    /// (second since the epoch, calls/s), ascending, at most `SPARKLINE_SECONDS` long.
    recent: VecDeque<(i64, f64)>,
    /// Transitions since the server started, by `from * 3 + to` (see [`state_index`]);
    /// allocated at a breaker's first transition.
    transitions: Option<Box<[u64; 9]>>,
}

/// The order of states in [`Totals::transitions`].
pub const STATES: [State; 3] = [State::Closed, State::Open, State::HalfOpen];

fn state_index(state: State) -> usize {
    match state {
        State::Closed => 0,
        State::Open => 1,
        State::HalfOpen => 2,
    }
}

/// A position in the fleet's order: the last (service, breaker) of the previous page.
pub type Cursor<'a> = (&'a str, &'a str);

/// What `/metrics` shows of a breaker, read without building its whole summary.
pub struct BreakerGauges {
    pub state: State,
    pub open_instances: usize,
    pub instances: usize,
    pub failure_rate: Option<f64>,
}

impl Totals {
    /// Transitions since the server started: (from, to, count) for each pair seen.
    pub fn transitions(&self) -> impl Iterator<Item = (State, State, u64)> + '_ {
        self.transitions.iter().flat_map(|counts| {
            counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(idx, &n)| (STATES[idx / 3], STATES[idx % 3], n))
        })
    }

    fn add(&mut self, aggregate: &Aggregate) {
        self.counts.merge(&aggregate.counts);
        let c = &aggregate.counts;
        // In f64: the sum of three counts may not fit a u64.
        let calls = c.judged() as f64 + c.rejected as f64 + c.ignored as f64;
        let rate = calls * 1_000.0 / f64::from(aggregate.interval_ms.max(1));
        let second = aggregate.start_ms.div_euclid(1_000);
        // Usually the newest second; a late aggregate finds its place from the back.
        let idx = self.recent.iter().rposition(|&(s, _)| s <= second);
        match idx {
            Some(i) if self.recent[i].0 == second => self.recent[i].1 += rate,
            Some(i) => self.recent.insert(i + 1, (second, rate)),
            None if self.recent.len() < SPARKLINE_SECONDS => self.recent.push_front((second, rate)),
            None => return,
        }
        let newest = self.recent.back().map(|&(s, _)| s).unwrap_or(second);
        while self
            .recent
            .front()
            .is_some_and(|&(s, _)| s <= newest - SPARKLINE_SECONDS as i64)
        {
            self.recent.pop_front();
        }
    }
}

/// The maps on the ingest path: hashed with foldhash (seeded per process), several times
/// cheaper than the standard SipHash for the short names used as keys here.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Key of a breaker: (service, breaker name).
pub type BreakerKey = (String, String);

#[derive(Default)]
pub struct Fleet {
    /// Per service, per breaker, per instance. Nested so that lookups borrow `&str`s.
    breakers: BTreeMap<String, BTreeMap<String, BTreeMap<String, InstanceLive>>>,
    /// Per service and breaker: calls by outcome since the server started (for `/metrics`) and
    /// calls per second over the last `SPARKLINE_SECONDS` (for sparklines). Nested so that
    /// lookups borrow `&str`s instead of allocating a key per aggregate.
    totals: BTreeMap<String, BTreeMap<String, Totals>>,
}

// === impl InstanceLive ===

impl InstanceLive {
    /// The fields kept in `instance_states` that matter at restart: state, since, config
    /// version, first report.
    pub fn stored_state(&self) -> (State, i64, u64, i64) {
        (
            self.state,
            self.since_ms,
            self.config_version,
            self.first_ms,
        )
    }

    /// Applies one event; events older than what is already known are ignored for the state
    /// (a retried or delayed batch must not move the state back in time).
    pub fn apply(current: Option<&InstanceLive>, event: &InstanceEvent<'_>) -> InstanceLive {
        let mut next = current.cloned();
        InstanceLive::update(&mut next, event);
        next.expect("update always leaves a state")
    }

    /// [`InstanceLive::apply`] in place: `live` becomes the state after `event` (it is `Some`
    /// afterwards). Reuses the latency buffer of the previous interval.
    pub fn update(live: &mut Option<InstanceLive>, event: &InstanceEvent<'_>) {
        let time_ms = event.time_ms();
        let first = live.is_none();
        let next = live.get_or_insert_with(|| InstanceLive {
            state: State::Closed,
            since_ms: time_ms,
            config_version: 0,
            updated_ms: i64::MIN,
            first_ms: event.start_ms(),
            last_trip: None,
            last_interval: None,
        });
        next.first_ms = next.first_ms.min(event.start_ms());
        match event {
            InstanceEvent::Transition(t) => {
                if let (State::Closed, State::Open, Some(trigger)) = (t.from, t.to, &t.trigger)
                    && next
                        .last_trip
                        .as_ref()
                        .is_none_or(|(at_ms, _)| t.at_ms >= *at_ms)
                {
                    next.last_trip = Some((t.at_ms, trigger.clone()));
                }
                if time_ms >= next.updated_ms {
                    if next.state != t.to || first {
                        next.since_ms = t.at_ms;
                    }
                    next.state = t.to;
                    next.config_version = t.config_version;
                    next.updated_ms = time_ms;
                }
            }
            InstanceEvent::Interval(a) => {
                if time_ms >= next.updated_ms {
                    if next.state != a.state {
                        // The state changed without a transition we saw yet; date it to the interval.
                        next.state = a.state;
                        next.since_ms = time_ms;
                    }
                    next.config_version = a.config_version;
                    next.updated_ms = time_ms;
                }
                let newer = next
                    .last_interval
                    .as_ref()
                    .is_none_or(|last| time_ms >= last.end_ms);
                if newer {
                    match &mut next.last_interval {
                        Some(last) => {
                            last.end_ms = time_ms;
                            last.interval_ms = a.interval_ms;
                            last.counts = a.counts;
                            last.latency.counts.clone_from(&a.latency.counts);
                            last.failure_rate_threshold = a.failure_rate_threshold;
                        }
                        None => {
                            next.last_interval = Some(IntervalLive {
                                end_ms: time_ms,
                                interval_ms: a.interval_ms,
                                counts: a.counts,
                                latency: a.latency.clone(),
                                failure_rate_threshold: a.failure_rate_threshold,
                            })
                        }
                    }
                }
            }
        }
    }
}

// === impl Fleet ===

impl Fleet {
    pub fn instance(&self, key: &BreakerKey, instance: &str) -> Option<&InstanceLive> {
        self.instance_of(&key.0, &key.1, instance)
    }

    pub fn instance_of(
        &self,
        service: &str,
        breaker: &str,
        instance: &str,
    ) -> Option<&InstanceLive> {
        self.breakers.get(service)?.get(breaker)?.get(instance)
    }

    /// Whether `instance` has a state for some breaker of `service`.
    pub fn has_instance(&self, service: &str, instance: &str) -> bool {
        self.breakers.get(service).is_some_and(|breakers| {
            breakers
                .values()
                .any(|instances| instances.contains_key(instance))
        })
    }

    /// The instances with a state for some breaker of `service` (they sent an aggregate or a
    /// transition).
    pub fn instances_of_service(&self, service: &str) -> std::collections::BTreeSet<&str> {
        self.breakers
            .get(service)
            .into_iter()
            .flat_map(|breakers| breakers.values())
            .flat_map(|instances| instances.keys().map(String::as_str))
            .collect()
    }

    /// Every (service, instance) with a state, once per breaker it has a state for.
    pub fn instance_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.breakers.iter().flat_map(|(service, breakers)| {
            breakers.values().flat_map(move |instances| {
                instances
                    .keys()
                    .map(move |instance| (service.as_str(), instance.as_str()))
            })
        })
    }

    pub fn insert(&mut self, key: BreakerKey, instance: String, live: InstanceLive) {
        self.breakers
            .entry(key.0)
            .or_default()
            .entry(key.1)
            .or_default()
            .insert(instance, live);
    }

    /// Like [`Fleet::insert`], allocating keys only for a breaker or instance not seen before.
    pub fn set(&mut self, service: &str, breaker: &str, instance: &str, live: InstanceLive) {
        if let Some(slot) = self
            .breakers
            .get_mut(service)
            .and_then(|breakers| breakers.get_mut(breaker))
            .and_then(|instances| instances.get_mut(instance))
        {
            *slot = live;
            return;
        }
        self.insert(
            (service.to_string(), breaker.to_string()),
            instance.to_string(),
            live,
        );
    }

    /// Adds an ingested aggregate to its breaker's running totals and recent calls/s.
    pub fn count(&mut self, service: &str, aggregate: &Aggregate) {
        let breakers = match self.totals.get_mut(service) {
            Some(breakers) => breakers,
            None => self.totals.entry(service.to_string()).or_default(),
        };
        match breakers.get_mut(&aggregate.breaker) {
            Some(totals) => totals.add(aggregate),
            None => breakers
                .entry(aggregate.breaker.clone())
                .or_default()
                .add(aggregate),
        }
    }

    /// Counts a committed transition for `/metrics`.
    pub fn count_transition(&mut self, service: &str, transition: &Transition) {
        let breakers = match self.totals.get_mut(service) {
            Some(breakers) => breakers,
            None => self.totals.entry(service.to_string()).or_default(),
        };
        let totals = match breakers.get_mut(&transition.breaker) {
            Some(totals) => totals,
            None => breakers.entry(transition.breaker.clone()).or_default(),
        };
        let counts = totals.transitions.get_or_insert_with(Default::default);
        let slot = &mut counts[state_index(transition.from) * 3 + state_index(transition.to)];
        *slot = slot.saturating_add(1);
    }

    /// The running totals of the breakers after `after` (of `service` only, when given), in
    /// order.
    pub fn totals_after<'a>(
        &'a self,
        service: Option<&'a str>,
        after: Option<Cursor<'a>>,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a Totals)> + 'a {
        ordered_after(&self.totals, service, after)
    }

    /// The breakers after `after` (of `service` only, when given), in order, with their
    /// instances.
    pub fn breakers_after<'a>(
        &'a self,
        service: Option<&'a str>,
        after: Option<Cursor<'a>>,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a BTreeMap<String, InstanceLive>)> + 'a {
        ordered_after(&self.breakers, service, after)
    }

    /// Calls/s per second for the `SPARKLINE_SECONDS` seconds up to the newest one reported
    /// by any breaker, zero where nothing was reported; at most `limit` breakers after
    /// `after`, ordered by service and breaker.
    pub fn sparklines_page(
        &self,
        service: Option<&str>,
        after: Option<Cursor<'_>>,
        limit: usize,
    ) -> Vec<Sparkline> {
        let newest = self
            .totals
            .values()
            .flat_map(|b| b.values())
            .filter_map(|t| t.recent.back().map(|&(s, _)| s))
            .max();
        let Some(newest) = newest else {
            return Vec::new();
        };
        let first = newest - SPARKLINE_SECONDS as i64 + 1;
        self.totals_after(service, after)
            .take(limit)
            .map(|(s, b, totals)| {
                let mut calls_per_s = vec![0.0; SPARKLINE_SECONDS];
                for &(second, rate) in &totals.recent {
                    if let Some(slot) = calls_per_s.get_mut((second - first) as usize)
                        && second >= first
                    {
                        *slot = rate;
                    }
                }
                Sparkline {
                    service: s.to_string(),
                    breaker: b.to_string(),
                    start_ms: first * 1_000,
                    calls_per_s,
                }
            })
            .collect()
    }

    pub fn summary(&self, key: &BreakerKey) -> Option<BreakerSummary> {
        self.summary_of(&key.0, &key.1)
    }

    pub fn summary_of(&self, service: &str, breaker: &str) -> Option<BreakerSummary> {
        self.breakers
            .get(service)?
            .get(breaker)
            .map(|instances| summary::summarize(service, breaker, instances))
    }

    /// The summaries of at most `limit` breakers after `after` (of `service` only, when
    /// given), ordered by service then name.
    pub fn summaries_page(
        &self,
        service: Option<&str>,
        after: Option<Cursor<'_>>,
        limit: usize,
    ) -> Vec<BreakerSummary> {
        self.breakers_after(service, after)
            .take(limit)
            .map(|(service, breaker, instances)| summary::summarize(service, breaker, instances))
            .collect()
    }

    /// At most `limit` services after `after`, in order, each with its number of breakers,
    /// of open breakers, and the most instances of one of its breakers.
    pub fn services_page(&self, after: Option<&str>, limit: usize) -> Vec<ServiceSummary> {
        let services: Box<dyn Iterator<Item = (&String, &BTreeMap<_, _>)>> = match after {
            Some(after) => Box::new(
                self.breakers
                    .range::<str, _>((Bound::Excluded(after), Bound::Unbounded)),
            ),
            None => Box::new(self.breakers.iter()),
        };
        services
            .take(limit)
            .map(|(service, breakers)| {
                let mut summary = ServiceSummary {
                    service: service.clone(),
                    breakers: 0,
                    open_breakers: 0,
                    instances: 0,
                };
                for instances in breakers.values() {
                    let gauges = breaker_gauges(instances);
                    summary.breakers = summary.breakers.saturating_add(1);
                    summary.open_breakers = summary
                        .open_breakers
                        .saturating_add(u32::from(gauges.state == State::Open));
                    summary.instances = summary
                        .instances
                        .max(u32::try_from(gauges.instances).unwrap_or(u32::MAX));
                }
                summary
            })
            .collect()
    }
}

/// The entries of a two-level ordered map after `after` (exclusive), within `service` when
/// given.
fn ordered_after<'a, T>(
    map: &'a BTreeMap<String, BTreeMap<String, T>>,
    service: Option<&'a str>,
    after: Option<Cursor<'a>>,
) -> impl Iterator<Item = (&'a str, &'a str, &'a T)> + 'a {
    let services: Box<dyn Iterator<Item = (&'a String, &'a BTreeMap<String, T>)> + 'a> =
        match (service, after) {
            (Some(service), _) => Box::new(map.get_key_value(service).into_iter()),
            (None, Some((after, _))) => {
                Box::new(map.range::<str, _>((Bound::Included(after), Bound::Unbounded)))
            }
            (None, None) => Box::new(map.iter()),
        };
    services.flat_map(move |(service, breakers)| {
        let breakers: Box<dyn Iterator<Item = (&'a String, &'a T)> + 'a> = match after {
            Some((after_service, _)) if service.as_str() < after_service => {
                Box::new(std::iter::empty())
            }
            Some((after_service, after_breaker)) if service.as_str() == after_service => Box::new(
                breakers.range::<str, _>((Bound::Excluded(after_breaker), Bound::Unbounded)),
            ),
            _ => Box::new(breakers.iter()),
        };
        breakers.map(move |(breaker, value)| (service.as_str(), breaker.as_str(), value))
    })
}

/// The worst state among a breaker's instances (Closed when it has none).
fn worst_state(instances: &BTreeMap<String, InstanceLive>) -> State {
    instances
        .values()
        .map(|i| i.state)
        .max_by_key(|s| s.severity())
        .unwrap_or(State::Closed)
}

/// A breaker's state (the worst of its instances'), its open instances, instances and
/// failure rate over the fresh intervals, as [`summary::summarize`] computes them.
pub fn breaker_gauges(instances: &BTreeMap<String, InstanceLive>) -> BreakerGauges {
    let state = worst_state(instances);
    let newest_end = instances
        .values()
        .filter_map(|i| i.last_interval.as_ref().map(|l| l.end_ms))
        .max()
        .unwrap_or(0);
    let mut counts = OutcomeCounts::default();
    for interval in instances
        .values()
        .filter_map(|i| i.last_interval.as_ref())
        .filter(|l| l.end_ms >= newest_end - STALE_AFTER_MS)
    {
        counts.merge(&interval.counts);
    }
    let judged = counts.judged();
    BreakerGauges {
        state,
        open_instances: instances
            .values()
            .filter(|i| i.state == State::Open)
            .count(),
        instances: instances.len(),
        failure_rate: (judged > 0).then(|| counts.failed() as f64 / judged as f64),
    }
}

mod summary;
#[cfg(test)]
mod tests;
