//! The ingest writer: one task that owns every write of ingested data.
//!
//! Handlers validate a batch and hand it over through a bounded queue; the writer drains
//! what is queued, commits it in one transaction (multi-row inserts), and only then answers
//! each handler, updates the [`Fleet`] and publishes to the live [`Hub`]: transitions at once,
//! breaker summaries at most once per [`SUMMARY_PERIOD`]. A full queue is
//! answered with 503 and `Retry-After` rather than growing without bound.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use protocol::{IngestAck, IngestBatch, StreamEvent, TransitionRecord};
use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;
use crate::fleet::{BreakerKey, Fleet, InstanceEvent, InstanceLive};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::{Committed, Store};
use crate::time::now_ms;

/// Batches committed together in one transaction at most.
const MAX_BATCHES_PER_COMMIT: usize = 64;

struct Job {
    batch: IngestBatch,
    reply: oneshot::Sender<anyhow::Result<IngestAck>>,
}

/// The handlers' end of the writer's queue.
#[derive(Clone)]
pub struct IngestQueue {
    tx: mpsc::Sender<Job>,
}

impl IngestQueue {
    /// Queues a validated batch and waits until it is committed.
    pub async fn submit(&self, batch: IngestBatch) -> Result<IngestAck, AppError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Job { batch, reply })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => AppError::Overloaded {
                    detail: "the ingest queue is full; retry later".into(),
                    retry_after_s: 1,
                },
                mpsc::error::TrySendError::Closed(_) => {
                    AppError::Internal(anyhow::anyhow!("the ingest writer has stopped"))
                }
            })?;
        let ack = answer.await.map_err(|_| {
            AppError::Internal(anyhow::anyhow!("the ingest writer dropped a batch"))
        })??;
        Ok(ack)
    }

    pub fn depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Starts the writer task with a queue of `capacity` batches.
pub fn spawn_writer(
    store: Store,
    fleet: Arc<RwLock<Fleet>>,
    breaker_ids: HashMap<BreakerKey, i64>,
    hub: Hub,
    metrics: Arc<Metrics>,
    capacity: usize,
) -> IngestQueue {
    let (tx, rx) = mpsc::channel(capacity);
    let dirty: Arc<Mutex<HashSet<BreakerKey>>> = Arc::default();
    tokio::spawn(flush_summaries(fleet.clone(), hub.clone(), dirty.clone()));
    let writer = Writer {
        store,
        fleet,
        breaker_ids,
        hub,
        metrics,
        dirty,
    };
    tokio::spawn(writer.run(rx));
    IngestQueue { tx }
}

/// How often the summaries of breakers with new aggregates are streamed. Every instance of a
/// breaker reports each second; one summary per breaker per period, whatever the number of
/// instances, keeps the stream (and each open dashboard) from doing that work per instance.
pub const SUMMARY_PERIOD: Duration = Duration::from_millis(500);

/// Streams the summaries of the breakers marked dirty, once per `SUMMARY_PERIOD`; stops when
/// the writer is gone.
async fn flush_summaries(
    fleet: Arc<RwLock<Fleet>>,
    hub: Hub,
    dirty: Arc<Mutex<HashSet<BreakerKey>>>,
) {
    let mut ticker = tokio::time::interval(SUMMARY_PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if Arc::strong_count(&dirty) == 1 {
            return;
        }
        let keys = std::mem::take(&mut *dirty.lock().expect("dirty set lock poisoned"));
        if keys.is_empty() || !hub.has_subscribers() {
            continue;
        }
        let summaries: Vec<_> = {
            let fleet = fleet.read().expect("fleet lock poisoned");
            keys.iter().filter_map(|key| fleet.summary(key)).collect()
        };
        for summary in summaries {
            hub.publish(StreamEvent::Summary(summary));
        }
    }
}

struct Writer {
    store: Store,
    fleet: Arc<RwLock<Fleet>>,
    breaker_ids: HashMap<BreakerKey, i64>,
    hub: Hub,
    metrics: Arc<Metrics>,
    /// Breakers whose summary changed since the last flush (see `flush_summaries`).
    dirty: Arc<Mutex<HashSet<BreakerKey>>>,
}

/// What one batch will change once its transaction commits.
struct Pending {
    committed: Committed,
    new_ids: Vec<(BreakerKey, i64)>,
    instances: Vec<(BreakerKey, String, InstanceLive)>,
}

// === impl Writer ===

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut jobs = Vec::with_capacity(MAX_BATCHES_PER_COMMIT);
        while rx.recv_many(&mut jobs, MAX_BATCHES_PER_COMMIT).await > 0 {
            let batches: Vec<&IngestBatch> = jobs.iter().map(|job| &job.batch).collect();
            let started = std::time::Instant::now();
            match self.commit(&batches).await {
                Ok(results) => {
                    self.metrics.record_commit(started.elapsed(), results.len());
                    for (job, pending) in jobs.drain(..).zip(results) {
                        self.publish(&job.batch, pending, job.reply);
                    }
                }
                Err(err) => {
                    // One batch should not sink the others: commit them one by one.
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "group commit failed; retrying singly"
                    );
                    for job in jobs.drain(..) {
                        match self.commit(&[&job.batch]).await {
                            Ok(mut results) => {
                                let pending = results.pop().expect("one result per batch");
                                self.publish(&job.batch, pending, job.reply);
                            }
                            Err(err) => {
                                let _ = job.reply.send(Err(err));
                            }
                        }
                    }
                }
            }
        }
    }

    async fn commit(&self, batches: &[&IngestBatch]) -> anyhow::Result<Vec<Pending>> {
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let mut local_ids: HashMap<BreakerKey, i64> = HashMap::new();
        // Instance states as they will be after this transaction, for batches in order.
        let mut staged: HashMap<(BreakerKey, String), InstanceLive> = HashMap::new();
        let mut results = Vec::with_capacity(batches.len());
        // Every batch's aggregates go in together: fewer, larger multi-row inserts.
        let mut all_rows: Vec<(i64, &str, &protocol::Aggregate)> = Vec::new();
        let claimed = Store::claim_batches(&mut tx, batches, now).await?;
        for (batch, is_new) in batches.iter().zip(claimed) {
            if !is_new {
                results.push(Pending {
                    committed: Committed {
                        duplicate: true,
                        transitions: Vec::new(),
                    },
                    new_ids: Vec::new(),
                    instances: Vec::new(),
                });
                continue;
            }
            let mut new_ids = Vec::new();
            let mut events: BTreeMap<BreakerKey, Vec<InstanceEvent<'_>>> = BTreeMap::new();
            for aggregate in &batch.aggregates {
                events
                    .entry((batch.service.clone(), aggregate.breaker.clone()))
                    .or_default()
                    .push(InstanceEvent::Interval(aggregate));
            }
            for transition in &batch.transitions {
                events
                    .entry((batch.service.clone(), transition.breaker.clone()))
                    .or_default()
                    .push(InstanceEvent::Transition(transition));
            }
            let mut ids: HashMap<BreakerKey, i64> = HashMap::new();
            for key in events.keys() {
                let id = match self.breaker_ids.get(key).or_else(|| local_ids.get(key)) {
                    Some(&id) => id,
                    None => {
                        let id = Store::breaker_id(&mut tx, &key.0, &key.1, now).await?;
                        local_ids.insert(key.clone(), id);
                        new_ids.push((key.clone(), id));
                        id
                    }
                };
                ids.insert(key.clone(), id);
            }
            let rows: Vec<(i64, &str, &protocol::Aggregate)> = batch
                .aggregates
                .iter()
                .map(|a| {
                    let key = (batch.service.clone(), a.breaker.clone());
                    (ids[&key], batch.instance.as_str(), a)
                })
                .collect();
            all_rows.extend(rows);
            let mut transitions = Vec::with_capacity(batch.transitions.len());
            for transition in &batch.transitions {
                let key = (batch.service.clone(), transition.breaker.clone());
                let id =
                    Store::insert_transition(&mut tx, ids[&key], &batch.instance, transition, now)
                        .await?;
                transitions.push(TransitionRecord {
                    id,
                    service: batch.service.clone(),
                    instance: batch.instance.clone(),
                    transition: transition.clone(),
                });
            }
            let mut instances = Vec::with_capacity(events.len());
            for (key, mut breaker_events) in events {
                breaker_events.sort_by_key(InstanceEvent::time_ms);
                let slot = (key.clone(), batch.instance.clone());
                let before = staged.get(&slot).cloned().or_else(|| {
                    let fleet = self.fleet.read().expect("fleet lock poisoned");
                    fleet.instance(&key, &batch.instance).cloned()
                });
                let mut live = before.clone();
                for event in &breaker_events {
                    live = Some(InstanceLive::apply(live.as_ref(), event));
                }
                let live = live.expect("a breaker in a batch has at least one event");
                // The stored state only matters at restart: write it when it changes, not
                // every interval.
                if before.as_ref().is_none_or(|b| !b.same_stored_state(&live)) {
                    Store::upsert_instance_state(&mut tx, ids[&key], &batch.instance, &live)
                        .await?;
                }
                staged.insert(slot, live.clone());
                instances.push((key, batch.instance.clone(), live));
            }
            results.push(Pending {
                committed: Committed {
                    duplicate: false,
                    transitions,
                },
                new_ids,
                instances,
            });
        }
        Store::insert_aggregates(&mut tx, &all_rows).await?;
        tx.commit().await?;
        Ok(results)
    }

    /// After a commit: answer the handler, remember ids, update the fleet, stream the news.
    fn publish(
        &mut self,
        batch: &IngestBatch,
        pending: Pending,
        reply: oneshot::Sender<anyhow::Result<IngestAck>>,
    ) {
        let _ = reply.send(Ok(IngestAck {
            seq: batch.seq,
            duplicate: pending.committed.duplicate,
        }));
        if pending.committed.duplicate {
            self.metrics.record_duplicate();
            return;
        }
        self.metrics.record_batch(batch);
        self.breaker_ids.extend(pending.new_ids);
        let mut fleet = self.fleet.write().expect("fleet lock poisoned");
        for aggregate in &batch.aggregates {
            fleet.count(&batch.service, aggregate);
        }
        let mut touched = Vec::with_capacity(pending.instances.len());
        for (key, instance, live) in pending.instances {
            fleet.insert(key.clone(), instance, live);
            touched.push(key);
        }
        // A breaker that changed state gets its summary at once, right after its transitions;
        // the others are streamed by the next flush.
        let mut changed: HashSet<BreakerKey> = HashSet::new();
        for record in pending.committed.transitions {
            changed.insert((record.service.clone(), record.transition.breaker.clone()));
            self.hub.publish(StreamEvent::Transition(record));
        }
        let mut dirty = self.dirty.lock().expect("dirty set lock poisoned");
        for key in touched {
            if changed.contains(&key) {
                dirty.remove(&key);
                if let Some(summary) = fleet.summary(&key) {
                    self.hub.publish(StreamEvent::Summary(summary));
                }
            } else {
                dirty.insert(key);
            }
        }
    }
}
