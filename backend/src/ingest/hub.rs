//! `Hub`: fans committed news out to every live-stream subscriber.
//!
//! Each event is serialized once, when published, however many streams send it. Events
//! published together (a flush of summaries, a breaker's transitions) travel as one message
//! of the channel, so a flush of 10,000 summaries does not overrun its capacity.
//! A slow subscriber that falls behind the channel's capacity skips ahead; its stream then
//! refetches missed transitions from the store by id, so no transition is lost to it.

use std::hash::BuildHasher;
use std::sync::Arc;

use protocol::StreamEvent;
use tokio::sync::broadcast;

/// Messages buffered per subscriber before it lags.
const CAPACITY: usize = 4_096;

/// Events published together, in order.
pub type News = Arc<[Published]>;

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<News>,
}

/// An event with its JSON.
pub struct Published {
    pub event: StreamEvent,
    pub json: String,
    /// A hash of the event's service and breaker, the same for every event of one breaker
    /// (a stream keeps only the newest pending summary of each, see `crate::query::stream`).
    /// Two breakers whose 64-bit hashes collide would share one pending summary: about one
    /// chance in four billion for a fleet of 100,000 breakers.
    pub breaker: u64,
}

impl Published {
    pub fn new(event: StreamEvent) -> Published {
        let json = serde_json::to_string(&event).expect("stream events serialize");
        let breaker = match &event {
            StreamEvent::Transition(record) => {
                breaker_hash(&record.service, &record.transition.breaker)
            }
            StreamEvent::Summary(summary) => breaker_hash(&summary.service, &summary.breaker),
        };
        Published {
            event,
            json,
            breaker,
        }
    }
}

/// The hash [`Published::breaker`] holds.
pub fn breaker_hash(service: &str, breaker: &str) -> u64 {
    foldhash::fast::FixedState::default().hash_one((service, breaker))
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Hub {
    pub fn publish(&self, event: StreamEvent) {
        self.publish_all(vec![event]);
    }

    /// Publishes `events` as one message, in order; nothing when there are none.
    pub fn publish_all(&self, events: Vec<StreamEvent>) {
        if events.is_empty() {
            return;
        }
        let news: News = events.into_iter().map(Published::new).collect();
        // No subscriber is not an error: nobody is watching.
        let _ = self.tx.send(news);
    }

    /// Whether anyone is listening; news nobody will read need not be built.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<News> {
        self.tx.subscribe()
    }
}
