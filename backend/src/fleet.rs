//! `Fleet`: the server's in-memory view of every breaker on every instance, the source of
//! breaker summaries for the API and the live stream.
//!
//! It is rebuilt from the store's `instance_states` at start and updated by the ingest writer
//! after each commit, so a read never touches SQLite.

use std::collections::{BTreeMap, HashMap, VecDeque};

use protocol::{
    Aggregate, BreakerSummary, InstanceState, LatencyHistogram, OutcomeCounts, Sparkline, State,
    Transition,
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
}

/// Seconds of calls/s history kept per breaker for sparklines.
pub const SPARKLINE_SECONDS: usize = 120;

#[derive(Default)]
struct Totals {
    counts: OutcomeCounts,
    /// (second since the epoch, calls/s), ascending, at most `SPARKLINE_SECONDS` long.
    recent: VecDeque<(i64, f64)>,
}

impl Totals {
    fn add(&mut self, aggregate: &Aggregate) {
        self.counts.merge(&aggregate.counts);
        let c = &aggregate.counts;
        let calls = (c.judged() + c.rejected + c.ignored) as f64;
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

/// Key of a breaker: (service, breaker name).
pub type BreakerKey = (String, String);

#[derive(Default)]
pub struct Fleet {
    /// Per service, per breaker, per instance. Nested so that lookups borrow `&str`s.
    breakers: FastMap<String, FastMap<String, BTreeMap<String, InstanceLive>>>,
    /// Per service and breaker: calls by outcome since the server started (for `/metrics`) and
    /// calls per second over the last `SPARKLINE_SECONDS` (for sparklines). Nested so that
    /// lookups borrow `&str`s instead of allocating a key per aggregate.
    totals: FastMap<String, FastMap<String, Totals>>,
}

// === impl InstanceLive ===

impl InstanceLive {
    /// The fields kept in `instance_states` that matter at restart: state, since, config
    /// version.
    pub fn stored_state(&self) -> (State, i64, u64) {
        (self.state, self.since_ms, self.config_version)
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
            last_interval: None,
        });
        match event {
            InstanceEvent::Transition(t) => {
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

    /// Every breaker's calls by outcome since the server started: (service, breaker, counts).
    pub fn totals(&self) -> impl Iterator<Item = (&str, &str, &OutcomeCounts)> {
        self.totals.iter().flat_map(|(service, breakers)| {
            breakers
                .iter()
                .map(move |(breaker, t)| (service.as_str(), breaker.as_str(), &t.counts))
        })
    }

    /// Calls/s per second for the `SPARKLINE_SECONDS` seconds up to the newest one reported
    /// by any breaker, zero where nothing was reported; ordered by service and breaker.
    pub fn sparklines(&self, service: Option<&str>) -> Vec<Sparkline> {
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
        let mut out: Vec<Sparkline> = self
            .totals
            .iter()
            .filter(|(s, _)| service.is_none_or(|wanted| wanted == s.as_str()))
            .flat_map(|(s, breakers)| {
                breakers.iter().map(move |(b, totals)| {
                    let mut calls_per_s = vec![0.0; SPARKLINE_SECONDS];
                    for &(second, rate) in &totals.recent {
                        if let Some(slot) = calls_per_s.get_mut((second - first) as usize)
                            && second >= first
                        {
                            *slot = rate;
                        }
                    }
                    Sparkline {
                        service: s.clone(),
                        breaker: b.clone(),
                        start_ms: first * 1_000,
                        calls_per_s,
                    }
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.breaker).cmp(&(&b.service, &b.breaker)));
        out
    }

    pub fn summary(&self, key: &BreakerKey) -> Option<BreakerSummary> {
        self.summary_of(&key.0, &key.1)
    }

    pub fn summary_of(&self, service: &str, breaker: &str) -> Option<BreakerSummary> {
        self.breakers
            .get(service)?
            .get(breaker)
            .map(|instances| summarize(service, breaker, instances))
    }

    /// Every breaker's summary, ordered by service then name.
    pub fn summaries(&self) -> Vec<BreakerSummary> {
        let mut out: Vec<BreakerSummary> = self
            .breakers
            .iter()
            .flat_map(|(service, breakers)| {
                breakers
                    .iter()
                    .map(move |(breaker, instances)| summarize(service, breaker, instances))
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.breaker).cmp(&(&b.service, &b.breaker)));
        out
    }
}

fn summarize(
    service: &str,
    breaker: &str,
    instances: &BTreeMap<String, InstanceLive>,
) -> BreakerSummary {
    let state = instances
        .values()
        .map(|i| i.state)
        .max_by_key(|s| s.severity())
        .unwrap_or(State::Closed);
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
        let calls = interval.counts.judged() + interval.counts.rejected + interval.counts.ignored;
        calls_per_s += calls as f64 * 1_000.0 / f64::from(interval.interval_ms.max(1));
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(at_ms: i64, from: State, to: State) -> Transition {
        Transition {
            breaker: "b".into(),
            at_ms,
            from,
            to,
            trigger: None,
            config_version: 3,
        }
    }

    fn aggregate(start_ms: i64, state: State, success: u64, failure: u64) -> Aggregate {
        Aggregate {
            breaker: "b".into(),
            start_ms,
            interval_ms: 1_000,
            counts: OutcomeCounts {
                success,
                failure,
                ..Default::default()
            },
            latency: Default::default(),
            state,
            failure_rate: None,
            failure_rate_threshold: Some(0.5),
            config_version: 3,
        }
    }

    #[test]
    fn a_transition_moves_state_and_dates_it() {
        let live = InstanceLive::apply(
            None,
            &InstanceEvent::Interval(&aggregate(0, State::Closed, 10, 0)),
        );
        let t = transition(1_500, State::Closed, State::Open);
        let live = InstanceLive::apply(Some(&live), &InstanceEvent::Transition(&t));
        assert_eq!(
            (live.state, live.since_ms, live.updated_ms),
            (State::Open, 1_500, 1_500)
        );
    }

    #[test]
    fn an_older_event_does_not_move_state_back() {
        let t = transition(5_000, State::Closed, State::Open);
        let live = InstanceLive::apply(None, &InstanceEvent::Transition(&t));
        let late = aggregate(1_000, State::Closed, 10, 0);
        let live = InstanceLive::apply(Some(&live), &InstanceEvent::Interval(&late));
        assert_eq!(live.state, State::Open);
        assert_eq!(live.since_ms, 5_000);
        // The late interval still counts as the latest interval seen, since none was before it.
        assert_eq!(live.last_interval.as_ref().map(|l| l.end_ms), Some(2_000));
    }

    #[test]
    fn sparklines_add_instances_and_keep_two_minutes() {
        let mut fleet = Fleet::default();
        for second in 0..200 {
            // Two instances report the same second; one arrives late.
            fleet.count("svc", &aggregate(second * 1_000, State::Closed, 3, 1));
            fleet.count("svc", &aggregate(second * 1_000, State::Closed, 1, 1));
        }
        fleet.count("svc", &aggregate(150_000, State::Closed, 10, 0));
        let lines = fleet.sparklines(None);
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line.calls_per_s.len(), SPARKLINE_SECONDS);
        assert_eq!(line.start_ms, (200 - SPARKLINE_SECONDS as i64) * 1_000);
        assert_eq!(line.calls_per_s[SPARKLINE_SECONDS - 1], 6.0);
        assert_eq!(line.calls_per_s[150 - 80], 16.0);
        assert!(fleet.sparklines(Some("other")).is_empty());
        let totals: Vec<_> = fleet.totals().collect();
        assert_eq!(totals[0].2.judged(), 200 * 6 + 10);
    }

    #[test]
    fn summary_takes_the_worst_state_and_sums_rates() {
        let mut fleet = Fleet::default();
        let key = ("svc".to_string(), "b".to_string());
        let a = InstanceLive::apply(
            None,
            &InstanceEvent::Interval(&aggregate(10_000, State::Closed, 9, 1)),
        );
        let b = InstanceLive::apply(
            None,
            &InstanceEvent::Interval(&aggregate(10_000, State::Open, 0, 10)),
        );
        // A stale instance: its last interval ended long before the others'.
        let c = InstanceLive::apply(
            None,
            &InstanceEvent::Interval(&aggregate(0, State::Closed, 100, 0)),
        );
        fleet.insert(key.clone(), "a".into(), a);
        fleet.insert(key.clone(), "b".into(), b);
        fleet.insert(key.clone(), "c".into(), c);
        let summary = fleet.summary(&key).unwrap();
        assert_eq!(summary.state, State::Open);
        assert_eq!(summary.open_instances, 1);
        assert_eq!(summary.instances.len(), 3);
        assert_eq!(summary.failure_rate, Some(11.0 / 20.0));
        assert_eq!(summary.calls_per_s, 20.0);
        assert_eq!(summary.failure_rate_threshold, Some(0.5));
    }
}
