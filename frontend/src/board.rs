//! The dashboard's model of every breaker: built from the list endpoint, kept live by stream events.
//!
//! Pure and host-tested: the components only read from a [`Board`] and hand it what arrives.

use std::collections::BTreeMap;

use protocol::{BreakerSummary, InstanceState, State, StreamEvent, TransitionRecord, Trigger};

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
    /// The newest time (ms since the epoch) any source told us about this breaker; a list answer
    /// older than that does not overwrite it.
    seen_ms: i64,
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
                match self.entries.get_mut(&key) {
                    Some(entry) => {
                        entry.seen_ms = entry.seen_ms.max(summary.updated_ms);
                        entry.summary = summary;
                    }
                    None => {
                        self.entries.insert(key, Entry::new(summary));
                    }
                }
            }
            StreamEvent::Transition(record) => self.apply_transition(record),
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

    /// Services with the worst state first (then by name); within a service, the same order.
    pub fn groups(&self) -> Vec<ServiceGroup> {
        let mut groups: Vec<ServiceGroup> = Vec::new();
        for ((service, breaker), entry) in &self.entries {
            let state = entry.summary.state;
            match groups.last_mut() {
                Some(group) if &group.service == service => {
                    group.breakers.push(breaker.clone());
                    if state.severity() > group.worst.severity() {
                        group.worst = state;
                    }
                }
                _ => groups.push(ServiceGroup {
                    service: service.clone(),
                    worst: state,
                    breakers: vec![breaker.clone()],
                }),
            }
        }
        for group in &mut groups {
            let service = group.service.clone();
            // Stable sort: names stay alphabetical within one severity.
            group.breakers.sort_by_key(|breaker| {
                let key = (service.clone(), breaker.clone());
                std::cmp::Reverse(self.entries[&key].summary.state.severity())
            });
        }
        groups.sort_by_key(|group| std::cmp::Reverse(group.worst.severity()));
        groups
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
