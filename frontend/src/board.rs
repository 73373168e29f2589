//! The dashboard's model of every breaker: built from the list endpoint, kept live by stream events.
//!
//! Pure and host-tested: the components only read from a [`Board`] and hand it what arrives.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;

use protocol::{
    BreakerSummary, InstanceState, Sparkline, State, StreamEvent, TransitionRecord, Trip,
};

use crate::filter::SortBy;

pub use group::Grouping;
use group::{Changed, ServiceChanges};

/// How many seconds of calls/s a tile's sparkline shows.
pub const SPARK_SECONDS: usize = 120;

/// A breaker's identity: `(service, breaker)`.
pub type Key = (String, String);

/// Every breaker the page knows, by service then name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Board {
    entries: BTreeMap<Key, Entry>,
    /// When each service's breakers last appeared or changed a key the overview sorts or
    /// filters by, so [`Board::regroup`] rebuilds only the services that changed.
    changes: ServiceChanges,
}

/// One breaker as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub summary: BreakerSummary,
    /// What last tripped it and when: the newest Closed → Open transition, from the server's
    /// summaries (`last_trip`) or seen on the stream, whichever is newer. A Half-Open → Open
    /// transition (a failed probe) does not replace it.
    pub last_trip: Option<Trip>,
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
    /// How many of `breakers` are in each state (a matrix row's heading shows them).
    pub counts: StateCounts,
    /// Shared, so the views that keep a service's list take it without copying the names.
    pub breakers: Arc<[String]>,
}

/// What applying events changed, so the page updates only that: the tiles of `touched`, and the
/// overview's order only when a breaker appeared or a key it sorts or filters by changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Breakers whose entry changed, each once, in the order first touched.
    pub touched: Vec<Key>,
    /// A breaker new to the board.
    pub added: bool,
    /// Some breaker's state changed (state sort, state filter, counts).
    pub states: bool,
    /// Some breaker's failure rate changed (failure-rate sort).
    pub failure_rates: bool,
    /// Some breaker's calls/s changed (volume sort).
    pub volumes: bool,
    /// The keys of `touched`, to keep each once however many times it is touched.
    touched_set: HashSet<Key>,
}

/// How many breakers are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub closed: usize,
    pub half_open: usize,
    pub open: usize,
}

// === impl StateCounts ===

impl StateCounts {
    /// Counts one more breaker in `state`.
    pub fn add(&mut self, state: State) {
        match state {
            State::Closed => self.closed += 1,
            State::HalfOpen => self.half_open += 1,
            State::Open => self.open += 1,
        }
    }
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
    pub fn apply_snapshot(&mut self, summaries: Vec<BreakerSummary>) -> Applied {
        let mut applied = Applied::default();
        for summary in summaries {
            let key = (summary.service.clone(), summary.breaker.clone());
            match self.entries.get_mut(&key) {
                Some(entry) if summary.updated_ms < entry.seen_ms => {}
                Some(entry) => {
                    entry.seen_ms = summary.updated_ms;
                    let before = entry.comparable();
                    entry.summary = summary;
                    entry.adopt_trip();
                    let changed = applied.note_comparable(key, Some(before), entry);
                    self.changes.note(&entry.summary.service, changed);
                }
                None => {
                    let entry = Entry::new(summary);
                    let changed = applied.note_comparable(key.clone(), None, &entry);
                    self.changes.note(&entry.summary.service, changed);
                    self.entries.insert(key, entry);
                }
            }
        }
        applied
    }

    /// Applies one stream event: a summary replaces the tile's summary, a transition changes the
    /// state of its instance at once.
    pub fn apply(&mut self, event: StreamEvent) -> Applied {
        let mut applied = Applied::default();
        match event {
            StreamEvent::Summary(summary) => {
                let spark = [(summary.updated_ms.div_euclid(1000), summary.calls_per_s)];
                self.apply_summary(summary, &spark, &mut applied);
            }
            StreamEvent::Transition(record) => self.apply_transition(record, &mut applied),
        }
        applied
    }

    /// Applies a breaker's newest summary and the sparkline values (`(second, calls/s)`, oldest
    /// first) of the summaries it superseded, noting what changed in `applied`.
    pub fn apply_summary(
        &mut self,
        summary: BreakerSummary,
        spark: &[(i64, f64)],
        applied: &mut Applied,
    ) {
        let key = (summary.service.clone(), summary.breaker.clone());
        let (before, entry) = match self.entries.get_mut(&key) {
            Some(entry) => {
                let before = Some(entry.comparable());
                entry.seen_ms = entry.seen_ms.max(summary.updated_ms);
                entry.summary = summary;
                entry.adopt_trip();
                (before, entry)
            }
            None => (
                None,
                self.entries
                    .entry(key.clone())
                    .or_insert(Entry::new(summary)),
            ),
        };
        for &(second, calls_per_s) in spark {
            entry.spark.record(second, calls_per_s);
        }
        let changed = applied.note_comparable(key, before, entry);
        self.changes.note(&entry.summary.service, changed);
    }

    /// Seeds the sparklines of known breakers with the server's last minutes.
    pub fn apply_sparklines(&mut self, sparklines: Vec<Sparkline>) -> Applied {
        let mut applied = Applied::default();
        for sparkline in sparklines {
            let key = (sparkline.service, sparkline.breaker);
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.spark.seed(sparkline.start_ms, &sparkline.calls_per_s);
                applied.touch(key);
            }
        }
        applied
    }

    /// Changes the state of the transition's instance at once, noting what changed in `applied`.
    pub fn apply_transition(&mut self, record: TransitionRecord, applied: &mut Applied) {
        let TransitionRecord {
            service,
            instance,
            transition,
            ..
        } = record;
        let key = (service, transition.breaker.clone());
        let before = self.entries.get(&key).map(Entry::comparable);
        let entry = self
            .entries
            .entry(key.clone())
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
                    last_trip: None,
                })
            });
        let summary = &mut entry.summary;
        match summary
            .instances
            .iter_mut()
            .find(|known| known.instance == instance)
        {
            // A transition older than the instance's current state is stale: ignore it.
            Some(known) if transition.at_ms < known.since_ms => {
                if before.is_none() {
                    let changed = applied.note_comparable(key, None, entry);
                    self.changes.note(&entry.summary.service, changed);
                }
                return;
            }
            Some(known) => {
                known.state = transition.to;
                known.since_ms = transition.at_ms;
                known.config_version = transition.config_version;
            }
            None => summary.instances.push(InstanceState {
                instance: instance.clone(),
                state: transition.to,
                since_ms: transition.at_ms,
                config_version: transition.config_version,
            }),
        }
        if let (State::Closed, State::Open, Some(trigger)) =
            (transition.from, transition.to, transition.trigger)
        {
            entry.note_trip(Trip {
                instance,
                at_ms: transition.at_ms,
                trigger,
            });
        }
        entry.seen_ms = entry.seen_ms.max(transition.at_ms);
        recompute_worst(&mut entry.summary);
        let changed = applied.note_comparable(key, before, entry);
        self.changes.note(&entry.summary.service, changed);
    }

    /// How many breakers there are in all.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn counts(&self) -> StateCounts {
        let mut counts = StateCounts::default();
        for entry in self.entries.values() {
            counts.add(entry.summary.state);
        }
        counts
    }
}

// === impl Applied ===

impl Applied {
    /// Whether the overview's order or filtering may have changed under `sort`.
    pub fn reorders(&self, sort: SortBy) -> bool {
        self.added
            || self.states
            || match sort {
                SortBy::FailureRate => self.failure_rates,
                SortBy::Volume => self.volumes,
                SortBy::State | SortBy::Name => false,
            }
    }

    fn touch(&mut self, key: Key) {
        if !self.touched_set.contains(&key) {
            self.touched_set.insert(key.clone());
            self.touched.push(key);
        }
    }

    /// Notes what changed between `before` and `after`, and returns which of the keys the
    /// overview sorts or filters by did (all of them for a new breaker).
    fn note_comparable(&mut self, key: Key, before: Option<Comparable>, after: &Entry) -> Changed {
        let after_view = after.comparable();
        match before {
            None => {
                self.added = true;
                self.states = true;
                self.touch(key);
                Changed {
                    members: true,
                    failure_rate: true,
                    volume: true,
                }
            }
            Some(before) if before == after_view => Changed::default(),
            Some(before) => {
                let changed = Changed {
                    members: before.state != after_view.state,
                    failure_rate: before.failure_rate != after_view.failure_rate,
                    volume: before.calls_per_s != after_view.calls_per_s,
                };
                self.states |= changed.members;
                self.failure_rates |= changed.failure_rate;
                self.volumes |= changed.volume;
                self.touch(key);
                changed
            }
        }
    }
}

/// What of an entry the page shows, to tell whether it changed without cloning it.
#[derive(Clone, Debug, PartialEq)]
struct Comparable {
    state: State,
    failure_rate: Option<f64>,
    calls_per_s: f64,
    /// A cheap fingerprint of the rest: everything a tile shows.
    rest: u64,
    spark_last_second: Option<i64>,
    spark_last: Option<f64>,
}

// === impl Entry ===

impl Entry {
    fn comparable(&self) -> Comparable {
        use std::hash::{Hash, Hasher};
        let summary = &self.summary;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        summary.since_ms.hash(&mut hasher);
        summary.open_instances.hash(&mut hasher);
        summary
            .failure_rate_threshold
            .map(f64::to_bits)
            .hash(&mut hasher);
        summary.slow_call_rate.map(f64::to_bits).hash(&mut hasher);
        summary.p99_ms.map(f64::to_bits).hash(&mut hasher);
        summary.instances.len().hash(&mut hasher);
        for known in &summary.instances {
            known.instance.hash(&mut hasher);
            known.state.as_str().hash(&mut hasher);
            known.since_ms.hash(&mut hasher);
        }
        self.last_trip
            .as_ref()
            .map(|trip| {
                (
                    trip.at_ms,
                    &trip.trigger.kind,
                    trip.trigger.value.to_bits(),
                    trip.trigger.threshold.to_bits(),
                )
            })
            .hash(&mut hasher);
        Comparable {
            state: summary.state,
            failure_rate: summary.failure_rate,
            calls_per_s: summary.calls_per_s,
            rest: hasher.finish(),
            spark_last_second: self.spark.last_second,
            spark_last: self.spark.values.back().copied(),
        }
    }

    fn new(summary: BreakerSummary) -> Entry {
        let mut entry = Entry {
            seen_ms: summary.updated_ms,
            summary,
            last_trip: None,
            spark: Spark::default(),
        };
        entry.adopt_trip();
        entry
    }

    /// Takes the summary's trip when it is at least as new as the one known.
    fn adopt_trip(&mut self) {
        if let Some(trip) = &self.summary.last_trip {
            self.note_trip(trip.clone());
        }
    }

    fn note_trip(&mut self, trip: Trip) {
        if self
            .last_trip
            .as_ref()
            .is_none_or(|known| trip.at_ms >= known.at_ms)
        {
            self.last_trip = Some(trip);
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

mod group;
#[cfg(test)]
mod tests;
