//! The ingest writer: one task that owns every write of ingested data (on SQLite on a thread
//! of its own, see [`spawn_writer`]).
//!
//! Handlers validate a batch and hand it over through a bounded queue of two lanes (batches
//! with transitions first, see `queue`); the writer drains what is queued, commits it in one
//! transaction on a connection of its own (on SQLite one multi-row insert per 200 aggregates
//! of the group; on PostgreSQL one statement of column arrays for them that also notifies the
//! other replicas, one for its transitions; one for changed instance states), and only then
//! updates the [`Fleet`], answers each handler and publishes to the live [`Hub`]: transitions
//! at once (on PostgreSQL through the cluster's listener, see [`crate::cluster`]), breaker
//! summaries at most once per [`dirty::SUMMARY_PERIOD`]. A full queue is answered with 503.
//!
//! The writer also enforces the cardinality [`Limits`]: it is the only task that creates
//! breakers and instances, and it knows every name already (the ids it keeps), so it checks
//! each batch before committing, without a query, and no two batches can race past a limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::{IngestBatch, TransitionRecord};

use crate::cluster::{self, StateNews};
use crate::error::AppError;
use crate::ingest::LearnedNames;
use crate::ingest::dirty::{self, Dirty};
use crate::ingest::fleet::{BreakerKey, FastMap, FastSet, InstanceEvent, InstanceLive};
use crate::ingest::hub::Hub;
use crate::ingest::journal::Journal;
use crate::ingest::limits::Limits;
use crate::ingest::store::Committed;
use crate::metrics::Metrics;
use crate::state::SharedFleet;
use crate::store::{Store, Tx};
use crate::time::Clock;

mod admit;
mod publish;
mod queue;

pub use queue::{Arriving, IngestQueue, Taken};
use queue::{Job, Lanes, MAX_BATCHES_PER_COMMIT, Reply, Room};

/// How long the writer waits at most for more batches to join a commit ([`Writer::gather`]).
const GATHER_WAIT: Duration = Duration::from_millis(2);

/// How long the writer waits before it tries again to commit journaled batches whose commit
/// failed (they were answered already, so they are not refused).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Starts the writer task (on SQLite on a thread of its own) with a queue of two lanes of `capacity` batches each. `fleet` holds the instances
/// known so far (they count towards `limits`), `breaker_ids` every breaker; `clock` stamps what
/// it stores.
pub fn spawn_writer(
    store: Store,
    fleet: SharedFleet,
    breaker_ids: HashMap<BreakerKey, i64>,
    hub: Hub,
    metrics: Arc<Metrics>,
    (capacity, limits, clock, journal): (usize, Limits, Clock, Option<Journal>),
) -> IngestQueue {
    let (lanes, senders) = queue::lanes(capacity);
    let dirty: Arc<Mutex<Dirty>> = Arc::default();
    tokio::spawn(flush_summaries(fleet.clone(), hub.clone(), dirty.clone()));
    let mut ids = BreakerIds::default();
    for ((service, name), id) in breaker_ids {
        ids.entry(service).or_default().insert(name, id);
    }
    let mut instances: FastMap<String, FastSet<String>> = FastMap::default();
    for (service, instance) in fleet.read().expect("fleet lock poisoned").instance_names() {
        instances
            .entry(service.to_string())
            .or_default()
            .insert(instance.to_string());
    }
    metrics.set_limits(&limits);
    let learned = LearnedNames::default();
    let arriving = Arc::new(AtomicUsize::new(0));
    let writer = Writer {
        retry: Vec::new(),
        retry_due: tokio::time::Instant::now(),
        arriving: arriving.clone(),
        last_answered: Vec::new(),
        recent_reporters: 0,
        learned: learned.clone(),
        store,
        fleet,
        breaker_ids: ids,
        instances,
        limits,
        hub,
        metrics,
        dirty,
        clock,
    };
    writer.export_cardinality();
    if writer.store.is_postgres() {
        // Its connection's socket belongs to the server's runtime, which wakes it.
        tokio::spawn(writer.run(lanes));
    } else {
        // On SQLite every statement is a trip to the connection's own thread and back; on a
        // thread of its own the writer is woken at once each time, where on the server's
        // runtime it waited for its turn behind the requests being read and decoded (with
        // 1,000 reporters, a few ms per statement, while holding the database's write lock).
        std::thread::Builder::new()
            .name("fusebox-writer".into())
            .spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the writer's runtime starts")
                    .block_on(writer.run(lanes))
            })
            .expect("the writer's thread starts");
    }
    IngestQueue::new(senders, learned, arriving, journal)
}

/// Streams the summaries of the breakers marked dirty, a slice per [`dirty::FLUSH_EVERY`]
/// (see [`dirty`]); stops when the writer is gone.
async fn flush_summaries(fleet: SharedFleet, hub: Hub, dirty: Arc<Mutex<Dirty>>) {
    let mut ticker = dirty::ticker();
    loop {
        ticker.tick().await;
        if Arc::strong_count(&dirty) == 1 {
            return;
        }
        // Taken under the lock, summarised without it: the writer marks breakers meanwhile.
        let keys = dirty.lock().expect("dirty set lock poisoned").take_next();
        dirty::publish(keys, &fleet, &hub);
    }
}

/// Sleeps until `due`, or for ever without one.
async fn sleep_until_some(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Breaker ids by service, then name: lookups borrow `&str`s.
type BreakerIds = FastMap<String, FastMap<String, i64>>;

fn lookup(ids: &BreakerIds, service: &str, name: &str) -> Option<i64> {
    ids.get(service)?.get(name).copied()
}

struct Writer {
    /// Journaled batches whose commit failed, to be tried again at `retry_due` (see
    /// [`RETRY_AFTER`]).
    retry: Vec<Job>,
    retry_due: tokio::time::Instant,
    arriving: Arc<AtomicUsize>,
    /// The reporters (hashes of service and instance) answered by the last commit, and how
    /// many distinct ones the last two commits answered (see [`Writer::gather`]).
    last_answered: Vec<u64>,
    recent_reporters: usize,
    learned: LearnedNames,
    store: Store,
    fleet: SharedFleet,
    breaker_ids: BreakerIds,
    /// Per service, the instances that reported an aggregate or a transition.
    instances: FastMap<String, FastSet<String>>,
    limits: Limits,
    hub: Hub,
    metrics: Arc<Metrics>,
    /// Breakers whose summary changed since it was last streamed (see `flush_summaries`).
    dirty: Arc<Mutex<Dirty>>,
    clock: Clock,
}

/// Names the batches admitted into the current group will create, not committed yet: they
/// count towards the limits of the batches after them.
#[derive(Default)]
struct GroupNames {
    n_new_services: usize,
    breakers: FastMap<String, FastSet<String>>,
    instances: FastMap<String, FastSet<String>>,
}

/// What one group commit will change once its transaction commits.
struct Pending<'b> {
    /// Per batch, in order.
    committed: Vec<Committed>,
    new_ids: Vec<(String, String, i64)>,
    /// Each (breaker, instance) the group touched, with its state after the group.
    instances: FastMap<(i64, &'b str), Staged<'b>>,
}

struct Staged<'b> {
    service: &'b str,
    breaker: &'b str,
    /// The stored fields (state, since, config version, first report) before the group, if known.
    stored: Option<(protocol::State, i64, u64, i64)>,
    live: Option<InstanceLive>,
}

/// The time each stage of a group commit took (`fusebox_ingest_commit_stage_seconds`).
struct Stages {
    last: std::time::Instant,
    times: Vec<(&'static str, Duration)>,
}

impl Stages {
    fn start() -> Stages {
        Stages {
            last: std::time::Instant::now(),
            times: Vec::with_capacity(8),
        }
    }

    /// Ends the stage `name` now.
    fn mark(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.times.push((name, now - self.last));
        self.last = now;
    }
}

// === impl Writer ===

impl Writer {
    async fn run(mut self, mut lanes: Lanes) {
        let mut jobs = Vec::with_capacity(MAX_BATCHES_PER_COMMIT);
        loop {
            // Batches kept to be tried again are a group of their own once due; the queue is
            // served meanwhile. Once the queue is closed and empty (the server stopping), the
            // journal keeps them for the next start.
            let due = (!self.retry.is_empty()).then_some(self.retry_due);
            tokio::select! {
                biased;
                () = sleep_until_some(due) => {
                    jobs.append(&mut self.retry);
                    tracing::info!(batches = jobs.len(), "trying again to commit batches answered early");
                }
                n = lanes.recv_many(&mut jobs, Room::left_after(&[])) => {
                    if n == 0 {
                        break;
                    }
                }
            }
            // On SQLite the transaction begins while the group gathers: its first statement
            // wakes the connection's thread, idle since the last commit (a wait for the cores
            // longer than any other statement of a commit), and the write lock held for the
            // gather's 2 ms at most costs the other writers no more than a commit would. On
            // PostgreSQL the ingest lock is every replica's: taken once the group is whole.
            let begun = if self.store.is_postgres() {
                self.gather(&mut lanes, &mut jobs).await;
                None
            } else {
                let (begun, ()) = tokio::join!(
                    self.store.begin_ingest(),
                    self.gather(&mut lanes, &mut jobs)
                );
                Some(begun)
            };
            if (self.learned).take_into(&mut self.breaker_ids, &mut self.instances) {
                self.export_cardinality();
            }
            let mut replies = Vec::with_capacity(jobs.len());
            let mut owned: Vec<IngestBatch> = Vec::with_capacity(jobs.len());
            let mut group = GroupNames::default();
            for job in jobs.drain(..) {
                match self.admit(&job.batch, &mut group) {
                    Ok(()) => {
                        replies.push(Some(job.reply));
                        owned.push(job.batch);
                    }
                    Err(err) => {
                        self.metrics.record_limit_rejection(err.limit);
                        match job.reply {
                            Reply::Waiting(reply) => {
                                let _ = reply.send(Err(AppError::LimitExceeded(err)));
                            }
                            Reply::Journaled(ticket) => {
                                // Journaled only when every name was known, which no limit
                                // refuses (a database replaced under its journal, say): it
                                // was answered, so it is committed all the same.
                                tracing::warn!(
                                    error = ?err,
                                    "a batch answered early is over a limit; committed all the same"
                                );
                                replies.push(Some(Reply::Journaled(ticket)));
                                owned.push(job.batch);
                            }
                        }
                    }
                }
            }
            if owned.is_empty() {
                // Nothing to write: the transaction begun, if any, rolls back before the next
                // writer's turn (dropped, it would give the turn up first).
                if let Some(Ok(tx)) = begun {
                    let _ = tx.rollback().await;
                }
                continue;
            }
            let batches: Vec<&IngestBatch> = owned.iter().collect();
            self.count_reporters(&batches);
            let started = std::time::Instant::now();
            match self.commit(&batches, begun).await {
                Ok(pending) => {
                    self.metrics.record_commit(started.elapsed(), batches.len());
                    let publishing = std::time::Instant::now();
                    self.publish(&batches, pending, replies);
                    (self.metrics).record_commit_stages(&[("publish", publishing.elapsed())]);
                    // What a periodic checkpoint left of the log, between two commits.
                    self.store.checkpoint_tail().await;
                }
                Err(err) => {
                    // Another connection holding the database's lock (a backup, a shell):
                    // each batch alone would wait as long again, so the group is refused
                    // with 503, to be sent again by its reporters; none of it was stored.
                    // Else one batch should not sink the others: commit them one by one.
                    let mut locked = crate::store::is_lock_timeout(&err);
                    tracing::warn!(
                        error = format!("{err:#}"),
                        batches = replies.len(),
                        "group commit failed; {}",
                        if locked {
                            "the database stayed locked: refused with 503 (retried later when answered already)"
                        } else {
                            "retrying singly"
                        }
                    );
                    for (batch, reply) in batches.iter().zip(replies.iter_mut()) {
                        let journaled = matches!(reply, Some(Reply::Journaled(_)));
                        if locked {
                            // Each would wait for the lock in turn: refused at once, but for
                            // those answered already, which are tried again later.
                            if let Some(Reply::Waiting(reply)) = reply.take_if(|_| !journaled) {
                                let _ = reply.send(Err(AppError::database_locked()));
                            }
                            continue;
                        }
                        match self.commit(&[batch], None).await {
                            Ok(pending) => self.publish(&[batch], pending, [reply.take()]),
                            Err(err) => {
                                locked = crate::store::is_lock_timeout(&err);
                                if let Some(Reply::Waiting(reply)) = reply.take_if(|_| !journaled) {
                                    let _ = reply.send(Err(AppError::from(err)));
                                }
                            }
                        }
                    }
                    // What is left was answered before its commit: kept, to be tried again.
                    let before = self.retry.len();
                    for (batch, reply) in owned.into_iter().zip(replies) {
                        if let Some(reply) = reply {
                            self.retry.push(Job { batch, reply });
                        }
                    }
                    if before == 0 && !self.retry.is_empty() {
                        self.retry_due = tokio::time::Instant::now() + RETRY_AFTER;
                    }
                    (self.metrics).record_commit_retries(self.retry.len() - before);
                }
            }
        }
    }

    /// Adds to `jobs` the batches queued meanwhile, while it has room (see [`Room`]: none once
    /// it carries news), for at most [`GATHER_WAIT`], while a request is on its way (see
    /// [`Arriving`]) or the group holds fewer batches than the reporters the last two commits
    /// answered. Every commit costs the same whatever its size (on SQLite, one write of each
    /// index page it touches), and reporters posting back to back (catching up after an
    /// outage, say) split into cohorts that alternate, each posting while the other's commit
    /// runs, unless a commit waits for the cohort just answered: one commit then does what two
    /// did, and the others' writes no longer share the cores with commits of their own.
    async fn gather(&self, lanes: &mut Lanes, jobs: &mut Vec<Job>) {
        let deadline = tokio::time::Instant::now() + GATHER_WAIT;
        loop {
            let room = Room::left_after(jobs);
            let expected =
                self.arriving.load(Ordering::Acquire) > 0 || jobs.len() < self.recent_reporters;
            if !(room.is_left() && expected) {
                break;
            }
            match tokio::time::timeout_at(deadline, lanes.recv_many(jobs, room)).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    /// Remembers the reporters of a group, for [`Writer::gather`].
    fn count_reporters(&mut self, batches: &[&IngestBatch]) {
        use std::hash::BuildHasher;
        let hasher = foldhash::fast::FixedState::default();
        let group: Vec<u64> = batches
            .iter()
            .map(|b| hasher.hash_one((&b.service, &b.instance)))
            .collect();
        let mut both: Vec<u64> = group.iter().chain(&self.last_answered).copied().collect();
        both.sort_unstable();
        both.dedup();
        self.recent_reporters = both.len().min(MAX_BATCHES_PER_COMMIT);
        self.last_answered = group;
    }

    /// Commits `batches` in one transaction: `begun`'s when the transaction began already
    /// (see [`Writer::run`]), else a new one.
    async fn commit<'b>(
        &self,
        batches: &[&'b IngestBatch],
        begun: Option<anyhow::Result<Tx>>,
    ) -> anyhow::Result<Pending<'b>> {
        let now = self.clock.now_ms();
        let mut stages = Stages::start();
        let mut tx = match begun {
            Some(begun) => begun?,
            None => self.store.begin_ingest().await?,
        };
        stages.mark("begin");
        let claimed = Store::claim_batches(&mut tx, batches, now).await?;
        stages.mark("claim");
        // Breakers seen for the first time get their rows (and ids) first.
        let mut local_ids = BreakerIds::default();
        let mut new_ids = Vec::new();
        for (batch, _) in batches.iter().zip(&claimed).filter(|(_, new)| **new) {
            let names = batch
                .aggregates
                .iter()
                .map(|a| a.breaker.as_str())
                .chain(batch.transitions.iter().map(|t| t.breaker.as_str()));
            for name in names {
                if lookup(&self.breaker_ids, &batch.service, name).is_some()
                    || lookup(&local_ids, &batch.service, name).is_some()
                {
                    continue;
                }
                let id = Store::breaker_id(&mut tx, &batch.service, name, now).await?;
                local_ids
                    .entry(batch.service.clone())
                    .or_default()
                    .insert(name.to_string(), id);
                new_ids.push((batch.service.clone(), name.to_string(), id));
            }
        }
        stages.mark("breakers");
        let id_of = |service: &str, name: &str| {
            lookup(&self.breaker_ids, service, name)
                .or_else(|| lookup(&local_ids, service, name))
                .expect("every breaker of the group has an id")
        };

        // Instance states as they will be after this transaction, batches in order. Every
        // batch's aggregates go in together: fewer, larger multi-row inserts.
        let mut instances: FastMap<(i64, &'b str), Staged<'b>> = FastMap::default();
        let mut rows: Vec<(i64, &str, &protocol::Aggregate)> = Vec::new();
        let mut transitions: Vec<(usize, i64, &'b protocol::Transition)> = Vec::new();
        let mut events: Vec<(&'b str, InstanceEvent<'b>)> = Vec::new();
        {
            let fleet = self.fleet.read().expect("fleet lock poisoned");
            for (index, (batch, _)) in batches
                .iter()
                .zip(&claimed)
                .enumerate()
                .filter(|(_, (_, new))| **new)
            {
                let batch: &'b IngestBatch = batch;
                // A breaker's events in time order (aggregates before transitions at equal
                // times, each in batch order: the sort is stable).
                events.clear();
                events.extend(
                    batch
                        .aggregates
                        .iter()
                        .map(|a| (a.breaker.as_str(), InstanceEvent::Interval(a))),
                );
                events.extend(
                    batch
                        .transitions
                        .iter()
                        .map(|t| (t.breaker.as_str(), InstanceEvent::Transition(t))),
                );
                events.sort_by(|(a, ea), (b, eb)| {
                    a.cmp(b).then_with(|| ea.time_ms().cmp(&eb.time_ms()))
                });
                for chunk in events.chunk_by(|(a, _), (b, _)| a == b) {
                    let name = chunk[0].0;
                    let id = id_of(&batch.service, name);
                    let staged = instances
                        .entry((id, batch.instance.as_str()))
                        .or_insert_with(|| {
                            let live = fleet
                                .instance_of(&batch.service, name, &batch.instance)
                                .cloned();
                            Staged {
                                service: &batch.service,
                                breaker: name,
                                stored: live.as_ref().map(InstanceLive::stored_state),
                                live,
                            }
                        });
                    for (_, event) in chunk {
                        InstanceLive::update(&mut staged.live, event);
                        if let InstanceEvent::Interval(a) = event {
                            rows.push((id, &batch.instance, a));
                        }
                    }
                }
                for t in &batch.transitions {
                    transitions.push((index, id_of(&batch.service, &t.breaker), t));
                }
            }
        }

        stages.mark("stage");
        // Transitions in batch order, with their ids.
        let mut committed: Vec<Committed> = claimed
            .iter()
            .map(|new| Committed {
                duplicate: !new,
                transitions: Vec::new(),
            })
            .collect();
        let stored: Vec<_> = (transitions.iter())
            .map(|&(index, id, t)| (id, batches[index].instance.as_str(), t))
            .collect();
        let ids = Store::insert_transitions(&mut tx, &stored, now).await?;
        stages.mark("transitions");
        for ((index, _, transition), stored) in transitions.into_iter().zip(ids) {
            let batch = batches[index];
            committed[index].transitions.push(TransitionRecord {
                id: stored,
                service: batch.service.clone(),
                instance: batch.instance.clone(),
                transition: transition.clone(),
            });
        }
        // The stored state only matters at restart: write it when it changes, not every
        // interval.
        let changed: Vec<(i64, &str, &InstanceLive)> = instances
            .iter()
            .filter_map(|(&(id, instance), staged)| {
                let live = staged.live.as_ref()?;
                (staged.stored != Some(live.stored_state())).then_some((id, instance, live))
            })
            .collect();
        Store::upsert_instance_states(&mut tx, &changed).await?;
        stages.mark("states");
        if tx.is_postgres() {
            // The other replicas learn of the commit when it commits, from the statement that
            // inserts the aggregates (see `crate::cluster`).
            let states: Vec<StateNews> = instances
                .iter()
                .filter_map(|(&(id, instance), staged)| {
                    let live = staged.live.as_ref()?;
                    let names = (staged.service, staged.breaker, id);
                    (staged.stored != Some(live.stored_state()))
                        .then(|| StateNews::new(names, instance, live))
                })
                .collect();
            let transitions = committed.iter().any(|c| !c.transitions.is_empty());
            let head = cluster::ingest_news_head(self.store.replica(), &states, transitions);
            Store::insert_aggregates_announcing(&mut tx, &rows, &head).await?;
        } else {
            Store::insert_aggregates(&mut tx, &rows).await?;
        }
        stages.mark("aggregates");
        tx.commit().await?;
        stages.mark("commit");
        self.metrics.record_commit_stages(&stages.times);
        Ok(Pending {
            committed,
            new_ids,
            instances,
        })
    }
}
