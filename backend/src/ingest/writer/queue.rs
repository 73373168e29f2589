//! The writer's queue: two lanes, one for batches that carry transitions and one for the rest.
//!
//! A transition is what a dashboard and an on-call engineer wait for; aggregates are what
//! every instance posts each second. Each second of a large fleet brings a burst of batches,
//! and a transition queued behind that burst would wait for every commit before its own. So
//! the writer takes batches with transitions first (in the order they came, so transitions keep
//! their order), then the rest (in order); a group that carries a transition just sent takes
//! few of the rest and commits without waiting for more (see [`carries_news`]). A reporter
//! waiting for each answer has one batch in flight at a time, so its batches are not
//! reordered; one answered early (see `crate::ingest::journal`) may have its next batch, in
//! the other lane, committed first (so may one whose commit failed and is tried again). An
//! instance's live state only ever moves to a newer event (see `InstanceLive::update`),
//! whatever order batches commit in; transitions are stored and streamed in commit order.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use protocol::{IngestAck, IngestBatch};
use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;
use crate::ingest::LearnedNames;
use crate::ingest::journal::{Journal, Ticket};

pub(super) struct Job {
    pub(super) batch: IngestBatch,
    pub(super) reply: Reply,
}

/// Who learns of a batch's commit.
pub(super) enum Reply {
    /// Its handler, waiting to answer.
    Waiting(oneshot::Sender<Result<IngestAck, AppError>>),
    /// The journal, which holds it until then (its reporter was answered already).
    Journaled(Ticket),
}

/// How a batch was taken: committed, or journaled and answered at once (`early`).
pub struct Taken {
    pub ack: IngestAck,
    pub early: bool,
}

/// The handlers' end of the writer's queue.
#[derive(Clone)]
pub struct IngestQueue {
    senders: Senders,
    /// Names other replicas created, for the limits (see [`LearnedNames`]).
    pub learned: LearnedNames,
    /// Ingest requests on their way to the queue (see [`Arriving`]).
    arriving: Arc<AtomicUsize>,
    /// On SQLite, where batches answered before their commit wait (see [`Journal`]).
    journal: Option<Journal>,
}

/// The two lanes' senders.
#[derive(Clone)]
pub(super) struct Senders {
    transitions: mpsc::Sender<Job>,
    rest: mpsc::Sender<Job>,
}

impl Senders {
    /// The lane `batch` goes to: the one for batches with transitions, or the other.
    fn lane_for(&self, batch: &IngestBatch) -> &mpsc::Sender<Job> {
        match batch.transitions.is_empty() {
            true => &self.rest,
            false => &self.transitions,
        }
    }
}

/// The writer's end: both lanes.
pub(super) struct Lanes {
    transitions: mpsc::Receiver<Job>,
    rest: mpsc::Receiver<Job>,
}

/// Two lanes of `capacity` batches each.
pub(super) fn lanes(capacity: usize) -> (Lanes, Senders) {
    let (transitions_tx, transitions) = mpsc::channel(capacity);
    let (rest_tx, rest) = mpsc::channel(capacity);
    (
        Lanes { transitions, rest },
        Senders {
            transitions: transitions_tx,
            rest: rest_tx,
        },
    )
}

/// Batches committed together in one transaction at most.
pub(super) const MAX_BATCHES_PER_COMMIT: usize = 64;

/// Rows (aggregates and transitions) a group takes at most, past its first batch, so that a
/// transition that comes while a group commits waits for 2,000 rows at most (the raw insert's
/// transaction in the server bench), not for 64 batches of a large fleet's burst (6,400 rows
/// with 100 breakers an instance).
const MAX_ROWS_PER_COMMIT: usize = 2_000;

/// A transition is news when its batch was sent within this long of it (both times from the
/// reporter's clock): reporters send a transition as soon as it happens, so only a backlog
/// (a reporter catching up after an outage of the server) carries older ones.
const NEWS_WITHIN_MS: i64 = 10_000;

/// Rows (past its batches with transitions) that a group carrying news takes from the other
/// lane: a few milliseconds of insert rather than up to [`MAX_ROWS_PER_COMMIT`]'s ten or so,
/// so that a trip that comes during a burst of a large fleet's batches reaches the streams
/// after one short commit, not after a full one of its own.
const ROWS_BESIDE_NEWS: usize = 200;

/// Whether `batch` carries a transition someone may be watching for (see [`NEWS_WITHIN_MS`]).
pub(super) fn carries_news(batch: &IngestBatch) -> bool {
    (batch.transitions.iter()).any(|t| batch.sent_at_ms.saturating_sub(t.at_ms) < NEWS_WITHIN_MS)
}

/// How much more a group may take (see `Writer::run`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Room {
    pub(super) batches: usize,
    /// Aggregates and transitions.
    pub(super) rows: usize,
}

impl Room {
    /// What a group holding `jobs` may still take: nothing once it carries news, so that it
    /// commits at once.
    pub(super) fn left_after(jobs: &[Job]) -> Room {
        if jobs.iter().any(|job| carries_news(&job.batch)) {
            return Room {
                batches: 0,
                rows: 0,
            };
        }
        let rows: usize = jobs.iter().map(|job| rows_of(&job.batch)).sum();
        Room {
            batches: MAX_BATCHES_PER_COMMIT.saturating_sub(jobs.len()),
            rows: MAX_ROWS_PER_COMMIT.saturating_sub(rows),
        }
    }

    pub(super) fn is_left(self) -> bool {
        self.batches > 0 && self.rows > 0
    }

    fn take(&mut self, job: &Job) {
        self.batches = self.batches.saturating_sub(1);
        self.rows = self.rows.saturating_sub(rows_of(&job.batch));
    }
}

/// The rows a batch writes: its aggregates and transitions.
fn rows_of(batch: &IngestBatch) -> usize {
    batch.aggregates.len() + batch.transitions.len()
}

impl Lanes {
    /// Waits for a batch, then adds to `jobs` those queued while `room` is left (the first
    /// whatever its size): batches with transitions first, then the others, fewer of them
    /// when a batch taken carries news (see [`ROWS_BESIDE_NEWS`]). 0 once both lanes are
    /// closed and empty.
    pub(super) async fn recv_many(&mut self, jobs: &mut Vec<Job>, mut room: Room) -> usize {
        let first = tokio::select! {
            biased;
            job = self.transitions.recv() => job,
            job = self.rest.recv() => job,
        };
        let Some(first) = first else {
            // One lane is closed (the queue's senders are dropped together): drain the other.
            let limit = room.batches.max(1);
            return match self.rest.recv_many(jobs, limit).await {
                0 => self.transitions.recv_many(jobs, limit).await,
                n => n,
            };
        };
        let before = jobs.len();
        let mut news = carries_news(&first.batch);
        room.take(&first);
        jobs.push(first);
        while room.is_left()
            && let Ok(job) = self.transitions.try_recv()
        {
            news |= carries_news(&job.batch);
            room.take(&job);
            jobs.push(job);
        }
        if news {
            room.rows = room.rows.min(ROWS_BESIDE_NEWS);
        }
        while room.is_left()
            && let Ok(job) = self.rest.try_recv()
        {
            room.take(&job);
            jobs.push(job);
        }
        jobs.len() - before
    }
}

/// An ingest request on its way to the writer's queue, counted from when its headers are read
/// until its batch is queued or refused: a writer that has a batch waits a moment for it (see
/// `Writer::gather`).
pub struct Arriving {
    count: Arc<AtomicUsize>,
}

impl Drop for Arriving {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Release);
    }
}

impl IngestQueue {
    pub(super) fn new(
        senders: Senders,
        learned: LearnedNames,
        arriving: Arc<AtomicUsize>,
        journal: Option<Journal>,
    ) -> IngestQueue {
        IngestQueue {
            senders,
            learned,
            arriving,
            journal,
        }
    }

    /// Counts an ingest request on its way until the guard is dropped.
    pub fn arriving(&self) -> Arriving {
        self.arriving.fetch_add(1, Ordering::AcqRel);
        Arriving {
            count: self.arriving.clone(),
        }
    }

    /// Queues a validated batch and waits until it is committed.
    pub async fn submit(&self, batch: IngestBatch) -> Result<IngestAck, AppError> {
        Ok(self.submit_arrived(batch, None, false).await?.ack)
    }

    /// [`IngestQueue::submit`] for a request counted by `arriving`, which stops counting once
    /// the batch is queued (or refused). With `early` (and a journal), the batch is journaled
    /// and answered as soon as it is queued; else, or when its lane is over half full or the
    /// journal cannot take it, once it is committed.
    pub async fn submit_arrived(
        &self,
        batch: IngestBatch,
        arriving: Option<Arriving>,
        early: bool,
    ) -> Result<Taken, AppError> {
        let lane = self.senders.lane_for(&batch);
        // Answered early only while the lane is at most half full and the batches answered
        // early and not committed yet (queued, committing, or kept to be tried again while the
        // database is locked) are fewer than half a lane: past that a reporter waits for its
        // commit again, so those asking can neither fill the queue (and be answered 503) nor
        // grow what the writer holds.
        let half = lane.max_capacity() / 2;
        let early = early
            && lane.capacity() > half
            && self
                .journal
                .as_ref()
                .is_some_and(|j| j.outstanding() < half);
        let permit = lane.try_reserve().map_err(|err| match err {
            mpsc::error::TrySendError::Full(()) => AppError::Overloaded {
                detail: "the ingest queue is full; retry later".into(),
                retry_after_s: 1,
            },
            mpsc::error::TrySendError::Closed(()) => {
                AppError::Internal(anyhow::anyhow!("the ingest writer has stopped"))
            }
        })?;
        if early && let Some(journal) = &self.journal {
            match journal.append(&batch) {
                Ok(ticket) => {
                    let seq = batch.seq;
                    permit.send(Job {
                        batch,
                        reply: Reply::Journaled(ticket),
                    });
                    drop(arriving);
                    let ack = IngestAck {
                        seq,
                        duplicate: false,
                    };
                    return Ok(Taken { ack, early: true });
                }
                Err(err) => tracing::warn!(
                    error = %err,
                    "cannot append to the ingest journal; the batch is answered once committed"
                ),
            }
        }
        let (reply, answer) = oneshot::channel();
        permit.send(Job {
            batch,
            reply: Reply::Waiting(reply),
        });
        drop(arriving);
        let ack = answer.await.map_err(|_| {
            AppError::Internal(anyhow::anyhow!("the ingest writer dropped a batch"))
        })??;
        Ok(Taken { ack, early: false })
    }

    /// Queues the batches a journal held at start (see [`Journal::open`]), in order, waiting
    /// for room in the queue.
    pub async fn replay(&self, held: Vec<(IngestBatch, Ticket)>) -> anyhow::Result<()> {
        for (batch, ticket) in held {
            let lane = self.senders.lane_for(&batch);
            let job = Job {
                batch,
                reply: Reply::Journaled(ticket),
            };
            if lane.send(job).await.is_err() {
                anyhow::bail!("the ingest writer stopped while the journal was replayed");
            }
        }
        Ok(())
    }

    /// Batches answered before their commit and not committed yet.
    pub fn journaled(&self) -> usize {
        self.journal.as_ref().map_or(0, Journal::outstanding)
    }

    /// Batches queued, in both lanes.
    pub fn depth(&self) -> usize {
        [&self.senders.transitions, &self.senders.rest]
            .iter()
            .map(|lane| lane.max_capacity() - lane.capacity())
            .sum()
    }
}

#[cfg(test)]
mod tests;
