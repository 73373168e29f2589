//! The dashboard's model of every breaker: built from the list endpoint, kept live by stream events.
//!
//! Pure and host-tested: the components only read from a [`Board`] and hand it what arrives.

use std::collections::{BTreeMap, VecDeque};

use protocol::{
    BreakerSummary, InstanceState, Sparkline, State, StreamEvent, TransitionRecord, Trigger,
};

use crate::filter::Filter;

/// How many seconds of calls/s a tile's sparkline shows.
pub const SPARK_SECONDS: usize = 120;

/// A breaker's identity: `(service, breaker)`.
pub type Key = (String, String);

/// Every breaker the page knows, by service then name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Board {
    entries: BTreeMap<Key, Entry>,
}

/// One breaker as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub summary: BreakerSummary,
    /// What last tripped it, from the latest transition to Open seen on the stream.
    pub last_trigger: Option<Trigger>,
    /// Calls/s per second, oldest first: seeded from `/api/v1/sparklines`, then one value per
    /// second from the summaries.
    pub spark: Spark,
    /// The newest time (ms since the epoch) any source told us about this breaker; a list answer
    /// older than that does not overwrite it.
    seen_ms: i64,
}

/// Calls/s, one value per second, at most [`SPARK_SECONDS`] of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spark {
    /// The second (ms since the epoch / 1000) of the newest value.
    last_second: Option<i64>,
    pub values: VecDeque<f64>,
}

/// One service's breakers in display order.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceGroup {
    pub service: String,
    pub worst: State,
    pub breakers: Vec<String>,
}

/// How many breakers are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub closed: usize,
    pub half_open: usize,
    pub open: usize,
}

// === impl Board ===

impl Board {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entry(&self, key: &Key) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Merges the list endpoint's answer.
    ///
    /// The list may have been computed before an event the stream already delivered, so an entry
    /// is replaced only when the answer is at least as new, and breakers missing from it are kept.
    pub fn apply_snapshot(&mut self, summaries: Vec<BreakerSummary>) {
        for summary in summaries {
            let key = (summary.service.clone(), summary.breaker.clone());
            match self.entries.get_mut(&key) {
                Some(entry) if summary.updated_ms < entry.seen_ms => {}
                Some(entry) => {
                    entry.seen_ms = summary.updated_ms;
                    entry.summary = summary;
                }
                None => {
                    self.entries.insert(key, Entry::new(summary));
                }
            }
        }
    }

    /// Applies one stream event: a summary replaces the tile's summary, a transition changes the
    /// state of its instance at once.
    pub fn apply(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Summary(summary) => {
                let key = (summary.service.clone(), summary.breaker.clone());
                let entry = match self.entries.get_mut(&key) {
                    Some(entry) => {
                        entry.seen_ms = entry.seen_ms.max(summary.updated_ms);
                        entry.summary = summary;
                        entry
                    }
                    None => self.entries.entry(key).or_insert(Entry::new(summary)),
                };
                let second = entry.summary.updated_ms.div_euclid(1000);
                entry.spark.record(second, entry.summary.calls_per_s);
            }
            StreamEvent::Transition(record) => self.apply_transition(record),
        }
    }

    /// Seeds the sparklines of known breakers with the server's last minutes.
    pub fn apply_sparklines(&mut self, sparklines: Vec<Sparkline>) {
        for sparkline in sparklines {
            let key = (sparkline.service, sparkline.breaker);
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.spark.seed(sparkline.start_ms, &sparkline.calls_per_s);
            }
        }
    }

    fn apply_transition(&mut self, record: TransitionRecord) {
        let TransitionRecord {
            service,
            instance,
            transition,
            ..
        } = record;
        let key = (service, transition.breaker.clone());
        let entry = self
            .entries
            .entry(key)
            .or_insert_with_key(|(service, breaker)| {
                Entry::new(BreakerSummary {
                    service: service.clone(),
                    breaker: breaker.clone(),
                    state: transition.from,
                    since_ms: transition.at_ms,
                    instances: Vec::new(),
                    open_instances: 0,
                    failure_rate: None,
                    failure_rate_threshold: None,
                    calls_per_s: 0.0,
                    slow_call_rate: None,
                    p99_ms: None,
                    updated_ms: transition.at_ms,
                })
            });
        let summary = &mut entry.summary;
        match summary
            .instances
            .iter_mut()
            .find(|known| known.instance == instance)
        {
            // A transition older than the instance's current state is stale: ignore it.
            Some(known) if transition.at_ms < known.since_ms => return,
            Some(known) => {
                known.state = transition.to;
                known.since_ms = transition.at_ms;
                known.config_version = transition.config_version;
            }
            None => summary.instances.push(InstanceState {
                instance,
                state: transition.to,
                since_ms: transition.at_ms,
                config_version: transition.config_version,
            }),
        }
        if transition.to == State::Open {
            entry.last_trigger = transition.trigger;
        }
        entry.seen_ms = entry.seen_ms.max(transition.at_ms);
        recompute_worst(summary);
    }

    /// The breakers `filter` admits, grouped by service and ordered by its sort: within a
    /// service, and services by their first breaker.
    pub fn groups(&self, filter: &Filter) -> Vec<ServiceGroup> {
        let mut groups: Vec<(ServiceGroup, Vec<&BreakerSummary>)> = Vec::new();
        for ((service, _), entry) in &self.entries {
            if !filter.matches(&entry.summary) {
                continue;
            }
            match groups.last_mut() {
                Some((group, members)) if &group.service == service => {
                    members.push(&entry.summary);
                    if entry.summary.state.severity() > group.worst.severity() {
                        group.worst = entry.summary.state;
                    }
                }
                _ => groups.push((
                    ServiceGroup {
                        service: service.clone(),
                        worst: entry.summary.state,
                        breakers: Vec::new(),
                    },
                    vec![&entry.summary],
                )),
            }
        }
        for (_, members) in &mut groups {
            members.sort_by(|a, b| filter.sort.compare(a, b));
        }
        groups.sort_by(|(a_group, a), (b_group, b)| match filter.sort {
            crate::filter::SortBy::Name => a_group.service.cmp(&b_group.service),
            sort => sort
                .compare(a[0], b[0])
                .then_with(|| a_group.service.cmp(&b_group.service)),
        });
        groups
            .into_iter()
            .map(|(mut group, members)| {
                group.breakers = members
                    .iter()
                    .map(|summary| summary.breaker.clone())
                    .collect();
                group
            })
            .collect()
    }

    /// How many breakers there are in all.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn counts(&self) -> StateCounts {
        let mut counts = StateCounts::default();
        for entry in self.entries.values() {
            match entry.summary.state {
                State::Closed => counts.closed += 1,
                State::HalfOpen => counts.half_open += 1,
                State::Open => counts.open += 1,
            }
        }
        counts
    }
}

// === impl Entry ===

impl Entry {
    fn new(summary: BreakerSummary) -> Entry {
        Entry {
            seen_ms: summary.updated_ms,
            summary,
            last_trigger: None,
            spark: Spark::default(),
        }
    }
}

// === impl Spark ===

impl Spark {
    /// Replaces the values with `calls_per_s`, one per second from `start_ms`.
    pub fn seed(&mut self, start_ms: i64, calls_per_s: &[f64]) {
        let skip = calls_per_s.len().saturating_sub(SPARK_SECONDS);
        self.values = calls_per_s[skip..].iter().copied().collect();
        self.last_second = (!calls_per_s.is_empty())
            .then(|| start_ms.div_euclid(1000) + calls_per_s.len() as i64 - 1);
    }

    /// Records the value of `second`: a later value of the same second replaces it, seconds
    /// skipped count as no calls, and an older second is ignored.
    pub fn record(&mut self, second: i64, calls_per_s: f64) {
        match self.last_second {
            Some(last) if second < last => return,
            Some(last) if second == last => {
                self.values.pop_back();
            }
            Some(last) => {
                let gap = (second - last - 1).clamp(0, SPARK_SECONDS as i64);
                self.values.extend(std::iter::repeat_n(0.0, gap as usize));
            }
            None => {}
        }
        self.values.push_back(calls_per_s);
        self.last_second = Some(second);
        while self.values.len() > SPARK_SECONDS {
            self.values.pop_front();
        }
    }
}

/// The breaker's state is the worst over its instances, since the earliest instance entered it.
fn recompute_worst(summary: &mut BreakerSummary) {
    let Some(worst) = summary
        .instances
        .iter()
        .map(|known| known.state)
        .max_by_key(|state| state.severity())
    else {
        return;
    };
    summary.state = worst;
    summary.since_ms = summary
        .instances
        .iter()
        .filter(|known| known.state == worst)
        .map(|known| known.since_ms)
        .min()
        .unwrap_or(summary.since_ms);
    summary.open_instances = summary
        .instances
        .iter()
        .filter(|known| known.state == State::Open)
        .count() as u32;
}

#[cfg(test)]
mod tests;
