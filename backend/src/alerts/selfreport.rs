//! The server's own breakers (one per alert channel) reported into its own fleet as the
//! service `fusebox`, in-process: the same aggregates and transitions a reporter would send,
//! handed straight to the ingest writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use breaker::reporter::{wire_state, wire_transition};
use breaker::{Counters, Event, EventKind, Interests, Listener, Registry};
use tokio::sync::Notify;

use crate::ingest::IngestQueue;
use crate::time::Clock;

/// The service the server's own breakers report as.
pub const SERVICE: &str = "fusebox";
/// Their instance name.
pub const INSTANCE: &str = "server";
const INTERVAL: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Capture {
    transitions: Mutex<Vec<protocol::Transition>>,
    wake: Notify,
}

impl Listener for Capture {
    fn interests(&self) -> Interests {
        Interests {
            transitions: true,
            ..Interests::default()
        }
    }

    fn on_event(&self, event: &Event<'_>) {
        if let EventKind::Transition(transition) = event.kind {
            self.transitions
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(wire_transition(event.breaker, event.at_wall_ms, transition));
            self.wake.notify_one();
        }
    }
}

/// Starts reporting `registry`'s breakers into `ingest`.
pub fn spawn(registry: Registry, ingest: IngestQueue, clock: Clock) -> tokio::task::JoinHandle<()> {
    let capture = Arc::new(Capture::default());
    registry.add_listener(capture.clone());
    tokio::spawn(async move {
        let mut seq = clock.now_ms().max(1) as u64;
        let mut previous: HashMap<String, Counters> = HashMap::new();
        let mut interval_start = clock.now_ms();
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            let aggregates_due = tokio::select! {
                _ = tick.tick() => true,
                _ = capture.wake.notified() => false,
            };
            let transitions = std::mem::take(
                &mut *capture
                    .transitions
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            );
            let mut aggregates = Vec::new();
            if aggregates_due {
                let now = clock.now_ms();
                for breaker in registry.breakers() {
                    let counters = breaker.counters();
                    let before = previous
                        .insert(breaker.name().to_string(), counters)
                        .unwrap_or_default();
                    let snapshot = breaker.snapshot();
                    aggregates.push(protocol::Aggregate {
                        breaker: breaker.name().to_string(),
                        start_ms: interval_start,
                        interval_ms: (now - interval_start).clamp(1, 60_000) as u32,
                        counts: protocol::OutcomeCounts {
                            success: counters.success - before.success,
                            failure: counters.failure - before.failure,
                            timeout: counters.timeout - before.timeout,
                            rejected: counters.rejected - before.rejected,
                            slow: counters.slow - before.slow,
                            ignored: counters.ignored - before.ignored,
                        },
                        latency: protocol::LatencyHistogram {
                            counts: counters
                                .latency
                                .iter()
                                .zip(before.latency.iter())
                                .map(|(now, then)| now - then)
                                .collect(),
                        },
                        state: wire_state(snapshot.state),
                        failure_rate: snapshot.failure_rate,
                        failure_rate_threshold: snapshot.failure_rate_threshold,
                        config_version: snapshot.config_version,
                    });
                }
                interval_start = now;
            }
            if aggregates.is_empty() && transitions.is_empty() {
                continue;
            }
            let batch = protocol::IngestBatch {
                service: SERVICE.to_string(),
                instance: INSTANCE.to_string(),
                seq,
                sent_at_ms: clock.now_ms(),
                aggregates,
                transitions,
                dropped: protocol::DropCounters::default(),
            };
            seq += 1;
            if let Err(err) = ingest.submit(batch).await {
                tracing::debug!(error = %err, "the server's own breaker report was not taken");
            }
        }
    })
}
