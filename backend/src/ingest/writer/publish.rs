//! What the writer does after a commit: remember new ids, update the fleet, answer the
//! handlers (and tell the journal), stream the news.

use std::collections::HashSet;

use protocol::{IngestAck, IngestBatch, StreamEvent};

use super::queue::Reply;
use super::{Pending, Writer};
use crate::ingest::fleet::BreakerKey;

// === impl Writer ===

impl Writer {
    /// After a commit: remember ids, update the fleet, answer the handlers, stream the news.
    pub(super) fn publish<'b>(
        &mut self,
        batches: &[&'b IngestBatch],
        pending: Pending<'b>,
        replies: impl IntoIterator<Item = Option<Reply>>,
    ) {
        let mut new_names = !pending.new_ids.is_empty();
        for (service, name, id) in pending.new_ids {
            self.breaker_ids
                .entry(service)
                .or_default()
                .insert(name, id);
        }
        for (batch, committed) in batches.iter().zip(&pending.committed) {
            let has_events = !(batch.aggregates.is_empty() && batch.transitions.is_empty());
            let known = self
                .instances
                .get(&batch.service)
                .is_some_and(|known| known.contains(&batch.instance));
            if !committed.duplicate && has_events && !known {
                self.instances
                    .entry(batch.service.clone())
                    .or_default()
                    .insert(batch.instance.clone());
                new_names = true;
            }
        }
        if new_names {
            self.export_cardinality();
        }
        let mut fleet = self.fleet.write().expect("fleet lock poisoned");
        for (batch, committed) in batches.iter().zip(&pending.committed) {
            if committed.duplicate {
                self.metrics.record_duplicate();
                continue;
            }
            self.metrics.record_batch(batch);
            for aggregate in &batch.aggregates {
                fleet.count(&batch.service, aggregate);
            }
            for transition in &batch.transitions {
                fleet.count_transition(&batch.service, transition);
            }
        }
        let mut touched: Vec<(&str, &str)> = Vec::with_capacity(pending.instances.len());
        for ((_, instance), staged) in pending.instances {
            if let Some(live) = staged.live {
                fleet.set(staged.service, staged.breaker, instance, live);
                touched.push((staged.service, staged.breaker));
            }
        }
        let mut committed_early = Vec::new();
        // Answered once the fleet shows the batches, so a read after the ack sees them (one
        // answered early, before its commit, may not see them yet).
        for ((batch, committed), reply) in batches.iter().zip(&pending.committed).zip(replies) {
            match reply {
                Some(Reply::Waiting(reply)) => {
                    let _ = reply.send(Ok(IngestAck {
                        seq: batch.seq,
                        duplicate: committed.duplicate,
                    }));
                }
                Some(Reply::Journaled(ticket)) => committed_early.push(ticket),
                None => {}
            }
        }
        // A breaker that changed state gets its summary at once, right after its transitions;
        // the others are streamed by the next flush.
        // On PostgreSQL the replica's listener publishes every replica's transitions, its
        // own included, in the order of their ids (see `crate::cluster`).
        let on_postgres = self.store.is_postgres();
        let mut changed: HashSet<BreakerKey> = HashSet::new();
        let mut news = Vec::new();
        for committed in pending.committed {
            for record in committed.transitions {
                changed.insert((record.service.clone(), record.transition.breaker.clone()));
                if !on_postgres {
                    news.push(StreamEvent::Transition(record));
                }
            }
        }
        let mut dirty = self.dirty.lock().expect("dirty set lock poisoned");
        for key in &changed {
            dirty.remove(key);
            if let Some(summary) = fleet.summary(key) {
                news.push(StreamEvent::Summary(summary));
            }
        }
        self.hub.publish_all(news);
        touched.sort_unstable();
        touched.dedup();
        for (service, breaker) in touched {
            let key = (service.to_string(), breaker.to_string());
            if !changed.contains(&key) {
                dirty.insert(key);
            }
        }
        // The journal may delete a segment: not while the fleet is locked.
        drop((dirty, fleet));
        for ticket in committed_early {
            ticket.done();
        }
    }
}
