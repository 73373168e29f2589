//! A live stream's outbox: what its feed has for the client and the client has not read yet.
//!
//! Transitions, alerts and the stream's own messages go out in order, and before any breaker
//! summary. Summaries are conflated: a newer summary of a breaker replaces the pending one
//! (which keeps its place), and a transition of a breaker drops its pending summary, which is
//! older than the transition (the summary published with the transition follows it). A client
//! that reads slowly — a dashboard on a busy laptop, 10,000 breakers summarised twice a
//! second — so gets every transition as soon as it can read one, and each breaker's newest
//! summary, instead of a backlog of stale ones in front of the news. The client's end reads
//! what is pending as one chunk of messages (up to [`CHUNK_BYTES`]), one lock and one write
//! for many messages.
//!
//! A client that keeps up costs less: a flush of summaries it wants whole, queued while no
//! other summary is pending, waits as the flush itself and goes out as the flush's one shared
//! buffer ([`crate::ingest::hub::Batch::summaries_block`]), rendered once for every stream
//! and copied for none. Only when something must come out of it or be merged with it (a
//! transition of one of its breakers, more summaries before the client read it) is it
//! spread into the per-breaker queue above.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::ingest::hub::{News, SummaryForm};

/// Ordered messages held before the feed waits for the client to read.
const URGENT_CAPACITY: usize = 256;

/// A chunk of messages stops growing past this size.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// One Server-Sent Events message: its type, optional id and one line of data (JSON, which
/// holds no raw line break).
pub fn message(event: &str, id: Option<&str>, data: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(event.len() + data.len() + 32);
    write_message(&mut out, event, id, data);
    out.freeze()
}

/// Summaries' SSE messages in `form`: an `event: summary` message each, or one
/// `event: summaries` message with a `data:` line each, which a client reads as their JSON
/// one per line (nothing for none). Lines, not a JSON array: a client splits them at line
/// breaks, which JSON text holds none of, where an array would have it scan every summary
/// once more to find their ends.
fn write_summaries(
    out: &mut BytesMut,
    form: SummaryForm,
    summaries: &mut dyn Iterator<Item = &str>,
) {
    let mut writer = SummaryWriter::new(form);
    for json in summaries {
        writer.push(out, json);
    }
    writer.finish(out);
}

/// [`write_summaries`] one summary at a time, so a chunk can stop at its size.
struct SummaryWriter {
    form: SummaryForm,
    /// A `summaries` message is begun and not ended yet.
    open: bool,
}

impl SummaryWriter {
    fn new(form: SummaryForm) -> SummaryWriter {
        SummaryWriter { form, open: false }
    }

    fn push(&mut self, out: &mut BytesMut, json: &str) {
        match self.form {
            SummaryForm::Each => write_message(out, "summary", None, json),
            SummaryForm::Batched => {
                debug_assert!(!json.contains(['\n', '\r']), "one line of data");
                if !self.open {
                    out.extend_from_slice(b"event: summaries\n");
                    self.open = true;
                }
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(json.as_bytes());
                out.extend_from_slice(b"\n");
            }
        }
    }

    fn finish(self, out: &mut BytesMut) {
        if self.open {
            out.extend_from_slice(b"\n");
        }
    }
}

fn write_message(out: &mut BytesMut, event: &str, id: Option<&str>, data: &str) {
    debug_assert!(!data.contains(['\n', '\r']), "one line of data");
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    if let Some(id) = id {
        out.extend_from_slice(b"\nid: ");
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// Makes an outbox whose client reads summaries in `form`: the feed's end and the client's end.
pub fn outbox(form: SummaryForm) -> (Feeder, Reader) {
    let shared = Arc::new(Shared {
        form,
        ..Shared::default()
    });
    (Feeder(shared.clone()), Reader(shared))
}

/// The client went away.
#[derive(Debug)]
pub struct Gone;

#[derive(Default)]
struct Shared {
    form: SummaryForm,
    inner: Mutex<Inner>,
    /// Something to read, or the feed ended.
    readable: Notify,
    /// Room in the urgent queue, or the client went away.
    writable: Notify,
}

#[derive(Default)]
struct Inner {
    urgent: VecDeque<Bytes>,
    /// Breakers with a pending summary, oldest first; a breaker may appear twice once its
    /// summary was dropped and a newer one came (the first place then sends the newer one).
    order: VecDeque<u64>,
    /// The newest pending summary of each breaker: the news it came in, and its index there.
    summaries: HashMap<u64, (News, usize)>,
    /// A flush of summaries, sent whole; only while `summaries` is empty.
    block: Option<News>,
    feed_ended: bool,
    reader_gone: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("outbox lock poisoned")
    }
}

impl Inner {
    /// Queues the summaries `news[index]`, each replacing the pending one of its breaker.
    fn queue(&mut self, news: &News, indices: impl IntoIterator<Item = usize>) {
        for index in indices {
            let breaker = news[index].breaker;
            if self
                .summaries
                .insert(breaker, (news.clone(), index))
                .is_none()
            {
                self.order.push_back(breaker);
            }
        }
    }

    /// Spreads the pending block into the per-breaker queue (it is older than anything
    /// queued after this).
    fn spread_block(&mut self) {
        if let Some(news) = self.block.take() {
            self.queue(&news, 0..news.len());
        }
    }
}

/// The feed's end of an outbox; dropping it ends the client's stream once it has read the rest.
pub struct Feeder(Arc<Shared>);

impl Feeder {
    /// Queues a message that must go out in order (waits while the client is far behind).
    pub async fn send(&self, event: Bytes) -> Result<(), Gone> {
        self.send_urgent(event, None).await
    }

    /// Queues the transition of `breaker` (see [`crate::ingest::hub::Published::breaker`]),
    /// dropping that breaker's pending summary.
    pub async fn send_transition(&self, event: Bytes, breaker: u64) -> Result<(), Gone> {
        self.send_urgent(event, Some(breaker)).await
    }

    async fn send_urgent(&self, event: Bytes, breaker: Option<u64>) -> Result<(), Gone> {
        loop {
            {
                let mut inner = self.0.lock();
                if inner.reader_gone {
                    return Err(Gone);
                }
                if inner.urgent.len() < URGENT_CAPACITY {
                    if let Some(breaker) = breaker {
                        let in_block = (inner.block.as_ref())
                            .is_some_and(|news| news.iter().any(|p| p.breaker == breaker));
                        if in_block {
                            inner.spread_block();
                        }
                        inner.summaries.remove(&breaker);
                    }
                    inner.urgent.push_back(event);
                    drop(inner);
                    self.0.readable.notify_one();
                    return Ok(());
                }
            }
            self.0.writable.notified().await;
        }
    }

    /// Queues the summaries `news[index]` for each of `indices`, each replacing the pending
    /// one of its breaker.
    pub fn summaries(&self, news: &News, indices: &[usize]) {
        if indices.is_empty() {
            return;
        }
        let mut inner = self.0.lock();
        inner.spread_block();
        inner.queue(news, indices.iter().copied());
        drop(inner);
        self.0.readable.notify_one();
    }

    /// Queues every summary of `news`, a message of summaries only: as the message itself
    /// while no other summary is pending, else each replacing the pending one of its breaker.
    pub fn summary_block(&self, news: &News) {
        debug_assert!(news.summaries_only());
        let mut inner = self.0.lock();
        if inner.block.is_none() && inner.summaries.is_empty() {
            inner.block = Some(news.clone());
        } else {
            inner.spread_block();
            inner.queue(news, 0..news.len());
        }
        drop(inner);
        self.0.readable.notify_one();
    }

    /// Resolves once the client has gone away.
    pub async fn reader_gone(&self) {
        loop {
            if self.0.lock().reader_gone {
                return;
            }
            self.0.writable.notified().await;
        }
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        self.0.lock().feed_ended = true;
        self.0.readable.notify_one();
    }
}

/// The client's end of an outbox.
pub struct Reader(Arc<Shared>);

impl Reader {
    /// The messages pending, as one chunk: ordered ones first, then the pending block (as a
    /// chunk of its own) or the oldest pending summaries, up to about [`CHUNK_BYTES`]; waits
    /// while there are none; `None` once the feed ended and everything was read.
    pub async fn next_chunk(&self) -> Option<Bytes> {
        loop {
            {
                let mut inner = self.0.lock();
                let mut out = BytesMut::new();
                let mut took_urgent = false;
                while out.len() < CHUNK_BYTES
                    && let Some(message) = inner.urgent.pop_front()
                {
                    out.extend_from_slice(&message);
                    took_urgent = true;
                }
                if out.is_empty()
                    && let Some(news) = inner.block.take()
                {
                    drop(inner);
                    let block = news.summaries_block(self.0.form, write_summaries);
                    return Some(block.expect("a block holds summaries only").clone());
                }
                // The oldest pending summaries, up to the chunk's size.
                let mut summaries = SummaryWriter::new(self.0.form);
                while out.len() < CHUNK_BYTES
                    && let Some(breaker) = inner.order.pop_front()
                {
                    if let Some((news, index)) = inner.summaries.remove(&breaker) {
                        summaries.push(&mut out, &news[index].json);
                    }
                }
                summaries.finish(&mut out);
                let ended = inner.feed_ended;
                drop(inner);
                if took_urgent {
                    self.0.writable.notify_one();
                }
                if !out.is_empty() {
                    return Some(out.freeze());
                }
                if ended {
                    return None;
                }
            }
            self.0.readable.notified().await;
        }
    }

    /// How many summaries are pending (for tests).
    #[cfg(test)]
    fn n_summaries(&self) -> usize {
        self.0.lock().summaries.len()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.lock().reader_gone = true;
        self.0.writable.notify_one();
    }
}

#[cfg(test)]
mod tests;
