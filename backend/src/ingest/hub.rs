//! `Hub`: fans committed news out to every live-stream subscriber.
//!
//! Each event is serialized once, when published, however many streams send it.
//! A slow subscriber that falls behind the channel's capacity skips ahead; its stream then
//! refetches missed transitions from the store by id, so no transition is lost to it.

use std::sync::Arc;

use protocol::StreamEvent;
use tokio::sync::broadcast;

/// Events buffered per subscriber before it lags.
const CAPACITY: usize = 4_096;

#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Arc<Published>>,
}

/// An event with its JSON.
pub struct Published {
    pub event: StreamEvent,
    pub json: String,
}

impl Published {
    pub fn new(event: StreamEvent) -> Published {
        let json = serde_json::to_string(&event).expect("stream events serialize");
        Published { event, json }
    }
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
        // No subscriber is not an error: nobody is watching.
        let _ = self.tx.send(Arc::new(Published::new(event)));
    }

    /// Whether anyone is listening; news nobody will read need not be built.
    pub fn has_subscribers(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.tx.subscribe()
    }
}
