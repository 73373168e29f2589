//! Breakers whose summary changed since it was last streamed, and the pace their summaries go
//! out at.
//!
//! Each breaker's summary is streamed at most once per [`SUMMARY_PERIOD`], whatever the number
//! of its instances: every instance reports each second, and one summary per breaker per
//! period keeps the stream (and each open dashboard) from doing that work per instance. The
//! breakers are split into [`SLICES`] slices by a hash of their names, and each tick of
//! [`FLUSH_EVERY`] streams one slice. A fleet of 10,000 breakers reporting each second so
//! makes twenty flushes of about 500 summaries a second, not two of 5,000: a flush is written
//! to every client at once, and a transition published just after one waits in each client's
//! socket behind a tenth of the bytes it did (`cargo bench -p backend --bench server -- fleet`
//! measures the transition's way to 50 clients).

use std::collections::HashSet;
use std::time::Duration;

use protocol::StreamEvent;

use crate::ingest::fleet::BreakerKey;
use crate::ingest::hub::{Hub, breaker_hash};
use crate::state::SharedFleet;

/// A breaker's summary is streamed at most once per period.
pub const SUMMARY_PERIOD: Duration = Duration::from_millis(500);

/// The slices of the breakers, one streamed per [`FLUSH_EVERY`] (50 ms).
pub const SLICES: usize = 10;

/// How often a slice's summaries are streamed.
pub const FLUSH_EVERY: Duration =
    Duration::from_millis(SUMMARY_PERIOD.as_millis() as u64 / SLICES as u64);

/// The breakers to summarise, by slice.
#[derive(Default)]
pub struct Dirty {
    slices: [HashSet<BreakerKey>; SLICES],
    /// The slice the next flush takes.
    next: usize,
}

impl Dirty {
    fn slice(key: &BreakerKey) -> usize {
        (breaker_hash(&key.0, &key.1) % SLICES as u64) as usize
    }

    /// Marks a breaker's summary as changed.
    pub fn insert(&mut self, key: BreakerKey) {
        self.slices[Dirty::slice(&key)].insert(key);
    }

    /// Unmarks a breaker (its summary was just streamed with its transition).
    pub fn remove(&mut self, key: &BreakerKey) {
        self.slices[Dirty::slice(key)].remove(key);
    }

    /// The breakers of the next slice, which are unmarked; every slice comes round once in
    /// [`SLICES`] calls.
    pub fn take_next(&mut self) -> HashSet<BreakerKey> {
        let taken = std::mem::take(&mut self.slices[self.next]);
        self.next = (self.next + 1) % SLICES;
        taken
    }
}

/// Streams the summaries of `keys` (a slice [`Dirty::take_next`] took) as one message of the
/// hub, unless nobody is listening.
pub fn publish(keys: HashSet<BreakerKey>, fleet: &SharedFleet, hub: &Hub) {
    if keys.is_empty() || !hub.has_subscribers() {
        return;
    }
    let summaries: Vec<_> = {
        let fleet = fleet.read().expect("fleet lock poisoned");
        keys.iter().filter_map(|key| fleet.summary(key)).collect()
    };
    hub.publish_all(summaries.into_iter().map(StreamEvent::Summary).collect());
}

/// A ticker of [`FLUSH_EVERY`] that skips the ticks it missed.
pub fn ticker() -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: usize) -> BreakerKey {
        (format!("service-{}", n % 7), format!("dependency-{n:05}"))
    }

    #[test]
    fn every_marked_breaker_is_taken_once_within_one_period_of_slices() {
        let mut dirty = Dirty::default();
        for n in 0..10_000 {
            dirty.insert(key(n));
            // Marked twice, taken once.
            dirty.insert(key(n));
        }
        dirty.remove(&key(42));
        let mut seen = HashSet::new();
        let mut sizes = Vec::new();
        for _ in 0..SLICES {
            let slice = dirty.take_next();
            sizes.push(slice.len());
            for key in slice {
                assert!(seen.insert(key), "taken twice");
            }
        }
        assert_eq!(seen.len(), 9_999);
        assert!(!seen.contains(&key(42)), "an unmarked breaker is not taken");
        // The slices share the breakers out: none holds more than twice its share.
        let share = 10_000 / SLICES;
        assert!(
            sizes.iter().all(|&n| n > share / 2 && n < share * 2),
            "{sizes:?}"
        );
        // Nothing is left for the next round.
        assert!((0..SLICES).all(|_| dirty.take_next().is_empty()));
    }

    #[test]
    fn a_breaker_is_marked_in_one_slice_only() {
        let mut dirty = Dirty::default();
        dirty.insert(key(7));
        let slices: Vec<usize> = (0..SLICES).map(|_| dirty.take_next().len()).collect();
        assert_eq!(slices.iter().sum::<usize>(), 1);
        // Marked again, it comes back in the same slice, a full round later.
        dirty.insert(key(7));
        let again: Vec<usize> = (0..SLICES).map(|_| dirty.take_next().len()).collect();
        assert_eq!(slices, again);
    }
}
