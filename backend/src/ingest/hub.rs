//! `Hub`: fans committed news out to every live-stream subscriber.
//!
//! Each event is serialized once, when published, however many streams send it. Events
//! published together (a flush of summaries, a breaker's transitions) travel as one message
//! of the channel, so a flush of 10,000 summaries does not overrun its capacity.
//! A slow subscriber that falls behind the channel's capacity skips ahead; its stream then
//! refetches missed transitions from the store by id, so no transition is lost to it.
//! A message of summaries only (a flush) also renders its Server-Sent Events once per
//! [`SummaryForm`], on first use, as one buffer that every stream wanting all of them sends as
//! it is ([`Batch::summaries_block`]).

use std::hash::BuildHasher;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use protocol::StreamEvent;
use tokio::sync::broadcast;

/// Messages buffered per subscriber before it lags.
const CAPACITY: usize = 4_096;

/// Events published together, in order.
pub type News = Arc<Batch>;

/// Events published together, in order (it derefs to them).
pub struct Batch {
    events: Box<[Published]>,
    /// Whether every event is a summary.
    summaries_only: bool,
    /// The events' Server-Sent Events in each [`SummaryForm`], made on first use.
    blocks: [OnceLock<Bytes>; 2],
}

/// How a stream sends summaries: a message each (`event: summary`, the default), or the
/// summaries it has at once as one message (`event: summaries`, a summary's JSON per line of
/// data), which spares a client thousands of messages a second from a large fleet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SummaryForm {
    #[default]
    Each,
    Batched,
}

impl Deref for Batch {
    type Target = [Published];

    fn deref(&self) -> &[Published] {
        &self.events
    }
}

impl FromIterator<Published> for News {
    fn from_iter<I: IntoIterator<Item = Published>>(events: I) -> News {
        let events: Box<[Published]> = events.into_iter().collect();
        let summaries_only = !events.is_empty()
            && (events.iter()).all(|published| matches!(published.event, StreamEvent::Summary(_)));
        Arc::new(Batch {
            events,
            summaries_only,
            blocks: Default::default(),
        })
    }
}

impl Batch {
    /// Whether there are events and every one is a summary (a flush).
    pub fn summaries_only(&self) -> bool {
        self.summaries_only
    }

    /// Every event rendered by `render` in `form`, in order, as one buffer made on first use
    /// however many streams send it (they all pass the same `render`, the stream's SSE
    /// messages); `None` unless every event is a summary.
    pub fn summaries_block(
        &self,
        form: SummaryForm,
        render: fn(&mut BytesMut, SummaryForm, &mut dyn Iterator<Item = &str>),
    ) -> Option<&Bytes> {
        if !self.summaries_only {
            return None;
        }
        Some(self.blocks[form as usize].get_or_init(|| {
            let size = self.events.iter().map(|p| p.json.len() + 32).sum();
            let mut out = BytesMut::with_capacity(size);
            render(
                &mut out,
                form,
                &mut self.events.iter().map(|p| p.json.as_str()),
            );
            out.freeze()
        }))
    }
}

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
