//! The reporter: sends per-interval aggregates and every transition to a fusebox server.
//!
//! A listener on the registry queues each transition (rare, so a mutex is fine) and wakes the
//! reporter task, which sends it within milliseconds. Every `interval` the task also adds
//! one [`protocol::Aggregate`] per breaker, read from the breakers' lock-free counters.
//! Calls never wait for the reporter and never fail because of it.
//!
//! Delivery: batches are numbered (`seq`) when first sent and retried with the same number
//! and content until the server acknowledges them, with exponential backoff while it is
//! down. Memory is bounded by `max_buffered` items: past it, aggregates are first coalesced
//! per breaker, then dropped, and transitions are dropped only when nothing else is left;
//! every such loss is counted and reported in the next batch's `dropped`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::events::{Event, EventKind, Interests, Listener};
use crate::machine::{State, Transition};
use crate::registry::Registry;
use crate::shard::Counters;

/// Where and how to report.
#[derive(Clone, Debug)]
pub struct ReporterConfig {
    /// The server's base URL, like `http://127.0.0.1:7878`.
    pub endpoint: String,
    pub service: String,
    pub instance: String,
    /// How often aggregates are made. Default 1 s.
    pub interval: Duration,
    /// Sent as `Authorization: Bearer …`.
    pub api_key: Option<String>,
    /// Aggregates and transitions held while the server is unreachable. Default 10 000.
    pub max_buffered: usize,
    /// Aggregates and transitions per batch. Default 2 000.
    pub max_batch_items: usize,
    /// Measure every call's latency for the histograms. Default true.
    pub measure_latency: bool,
    /// Send batches in the compact form (`protocol::compact`: about a quarter of JSON's bytes,
    /// and cheaper for the server to read) rather than JSON. A server that answers 415 to it
    /// (one older than the form) gets the same batch again as JSON, and JSON from then on.
    /// Default true.
    pub compact_bodies: bool,
    /// How long one request may take. Default 10 s.
    pub request_timeout: Duration,
    /// The first retry delay; doubled per failure up to `max_backoff`. Default 100 ms.
    pub min_backoff: Duration,
    /// Default 30 s.
    pub max_backoff: Duration,
    /// How long `shutdown` keeps trying to deliver what is left. Default 5 s.
    pub shutdown_timeout: Duration,
}

/// Starts reporters.
#[derive(Debug)]
pub struct Reporter;

/// A running reporter; [`ReporterHandle::shutdown`] flushes and stops it.
#[derive(Debug)]
pub struct ReporterHandle {
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// What a reporter has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReporterStats {
    pub batches_acked: u64,
    pub failed_attempts: u64,
    /// Transitions and aggregates waiting to be sent, the batch in flight included.
    pub pending_items: u64,
    pub drops: protocol::DropCounters,
}

#[derive(Debug, Default)]
struct Shared {
    transitions: Mutex<VecDeque<protocol::Transition>>,
    wake: Notify,
    batches_acked: AtomicU64,
    failed_attempts: AtomicU64,
    pending_items: AtomicU64,
    drops: Mutex<protocol::DropCounters>,
    /// Transitions the listener dropped since the task last looked.
    queue_drops: AtomicU64,
}

struct TransitionListener {
    shared: Arc<Shared>,
    measure_latency: bool,
    max_queued: usize,
}

struct Task {
    registry: Registry,
    config: ReporterConfig,
    shared: Arc<Shared>,
    client: reqwest::Client,
    url: String,
    next_seq: u64,
    previous_counters: HashMap<String, Counters>,
    interval_start_ms: i64,
    pending_aggregates: VecDeque<protocol::Aggregate>,
    pending_transitions: VecDeque<protocol::Transition>,
    pending_drops: protocol::DropCounters,
    in_flight: Option<protocol::IngestBatch>,
    backoff: Duration,
    /// Batches go out in the compact form (until a server refuses it).
    compact: bool,
}

enum SendError {
    /// Worth retrying: the server is down, slow, overloaded, or refused our key.
    Transient(String),
    /// The server does not take the compact form (415): send it as JSON.
    CompactRefused(String),
    /// The server will never accept this batch.
    Permanent(String),
}

// === impl ReporterConfig ===

impl ReporterConfig {
    pub fn new(
        endpoint: impl Into<String>,
        service: impl Into<String>,
        instance: impl Into<String>,
    ) -> ReporterConfig {
        ReporterConfig {
            endpoint: endpoint.into(),
            service: service.into(),
            instance: instance.into(),
            interval: Duration::from_secs(1),
            api_key: None,
            max_buffered: 10_000,
            max_batch_items: 2_000,
            measure_latency: true,
            compact_bodies: true,
            request_timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
        }
    }
}

// === impl Reporter ===

impl Reporter {
    /// Starts reporting every breaker of `registry`, present and future, on the current tokio
    /// runtime.
    pub fn start(registry: Registry, config: ReporterConfig) -> ReporterHandle {
        let shared = Arc::new(Shared::default());
        registry.add_listener(Arc::new(TransitionListener {
            shared: shared.clone(),
            measure_latency: config.measure_latency,
            max_queued: config.max_buffered.max(1),
        }));
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
            // A connection idle this long is not taken again: a fusebox server closes one idle
            // for 20 s (`header_read_timeout_s`), and a batch sent on it just then would come
            // back unanswered, to be retried after a backoff.
            .pool_idle_timeout(Duration::from_secs(15))
            .build()
            .unwrap_or_default();
        let wall_ms = registry.clock().wall_ms();
        let task = Task {
            url: format!("{}/api/v1/ingest", config.endpoint.trim_end_matches('/')),
            // Starting from the wall clock keeps numbers increasing across restarts of an
            // instance that keeps its name, so the server never takes new batches for retries.
            next_seq: wall_ms.max(1) as u64,
            interval_start_ms: wall_ms,
            backoff: config.min_backoff,
            compact: config.compact_bodies,
            registry,
            config,
            shared: shared.clone(),
            client,
            previous_counters: HashMap::new(),
            pending_aggregates: VecDeque::new(),
            pending_transitions: VecDeque::new(),
            pending_drops: protocol::DropCounters::default(),
            in_flight: None,
        };
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let span = tracing::info_span!(
            "breaker_reporter",
            service = %task.config.service,
            instance = %task.config.instance
        );
        let task = tokio::spawn(tracing::Instrument::instrument(task.run(shutdown_rx), span));
        ReporterHandle {
            shutdown: Some(shutdown_tx),
            task: Some(task),
            shared,
        }
    }
}

// === impl ReporterHandle ===

impl ReporterHandle {
    /// Sends a last aggregate, tries to deliver everything pending within the
    /// `shutdown_timeout`, and stops.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn stats(&self) -> ReporterStats {
        ReporterStats {
            batches_acked: self.shared.batches_acked.load(Ordering::Relaxed),
            failed_attempts: self.shared.failed_attempts.load(Ordering::Relaxed),
            pending_items: self.shared.pending_items.load(Ordering::Relaxed),
            drops: *self.shared.drops.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }
}

impl Drop for ReporterHandle {
    fn drop(&mut self) {
        // Dropped without `shutdown`: stop the task rather than leak it.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

// === impl TransitionListener ===

impl Listener for TransitionListener {
    fn interests(&self) -> Interests {
        Interests {
            transitions: true,
            calls: false,
            latency: self.measure_latency,
        }
    }

    fn on_event(&self, event: &Event<'_>) {
        let EventKind::Transition(transition) = event.kind else {
            return;
        };
        let record = wire_transition(event.breaker, event.at_wall_ms, transition);
        let mut queue = self
            .shared
            .transitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if queue.len() >= self.max_queued {
            // The task has not drained the queue for a long time; count what cannot be kept.
            queue.pop_front();
            self.shared.queue_drops.fetch_add(1, Ordering::Relaxed);
            self.shared
                .drops
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .transitions_dropped += 1;
        }
        queue.push_back(record);
        drop(queue);
        self.shared.wake.notify_one();
    }
}

// === impl Task ===

impl Task {
    async fn run(mut self, mut shutdown: oneshot::Receiver<()>) {
        let period = self.config.interval.max(Duration::from_millis(1));
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut retry_at: Option<Instant> = None;
        loop {
            self.take_transitions();
            self.enforce_cap();
            if retry_at.is_none() && self.ready_batch() {
                match self.send_in_flight().await {
                    Ok(()) => continue,
                    Err(()) => retry_at = Some(Instant::now() + self.next_backoff()),
                }
            }
            self.publish_pending();
            let retry = async {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = ticker.tick() => self.collect_aggregates(),
                _ = self.shared.wake.notified() => {}
                _ = retry => retry_at = None,
                _ = &mut shutdown => break,
            }
        }
        self.flush().await;
    }

    /// Delivers what is left until everything is acknowledged or the shutdown time is up.
    async fn flush(&mut self) {
        let deadline = Instant::now() + self.config.shutdown_timeout;
        self.take_transitions();
        self.collect_aggregates();
        while self.ready_batch() && Instant::now() < deadline {
            if self.send_in_flight().await.is_err() {
                let wait = self.next_backoff();
                tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
            }
        }
        if self.in_flight.is_some() || !self.pending_transitions.is_empty() {
            tracing::warn!(
                pending = self.pending_len(),
                "reporter stopped before the server acknowledged everything"
            );
        }
        self.publish_pending();
    }

    /// Makes sure a batch is in flight if anything is pending; false when nothing is.
    fn ready_batch(&mut self) -> bool {
        if self.in_flight.is_some() {
            return true;
        }
        if self.pending_aggregates.is_empty()
            && self.pending_transitions.is_empty()
            && self.pending_drops == protocol::DropCounters::default()
        {
            return false;
        }
        let max_items = self.config.max_batch_items.max(1);
        let n_transitions = self.pending_transitions.len().min(max_items);
        let transitions: Vec<_> = self.pending_transitions.drain(..n_transitions).collect();
        let n_aggregates = self.pending_aggregates.len().min(max_items - n_transitions);
        let aggregates: Vec<_> = self.pending_aggregates.drain(..n_aggregates).collect();
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight = Some(protocol::IngestBatch {
            service: self.config.service.clone(),
            instance: self.config.instance.clone(),
            seq,
            sent_at_ms: self.registry.clock().wall_ms(),
            aggregates,
            transitions,
            dropped: std::mem::take(&mut self.pending_drops),
        });
        true
    }

    /// Sends the batch in flight once; clears it when acknowledged or refused for good.
    async fn send_in_flight(&mut self) -> Result<(), ()> {
        let Some(batch) = &self.in_flight else {
            return Ok(());
        };
        // With more to send, the batch may be answered before its commit (the server
        // journals it), so the next one is on its way while this one commits.
        let more = self.pending_len() > 0;
        let mut outcome = self.post(batch, self.compact, more).await;
        if let Err(SendError::CompactRefused(reason)) = &outcome {
            tracing::info!(%reason, "the server does not take compact batches; sending JSON from now on");
            self.compact = false;
            outcome = self.post(batch, false, more).await;
        }
        match outcome {
            Ok(()) => {
                self.in_flight = None;
                self.backoff = self.config.min_backoff;
                self.shared.batches_acked.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(SendError::Permanent(reason)) => {
                tracing::warn!(seq = batch.seq, %reason, "server refused a batch; dropping it");
                self.pending_drops.transitions_dropped += batch.transitions.len() as u64;
                self.pending_drops.aggregates_dropped += batch.aggregates.len() as u64;
                self.add_shared_drops(protocol::DropCounters {
                    aggregates_coalesced: 0,
                    aggregates_dropped: batch.aggregates.len() as u64,
                    transitions_dropped: batch.transitions.len() as u64,
                });
                self.in_flight = None;
                Ok(())
            }
            Err(SendError::Transient(reason) | SendError::CompactRefused(reason)) => {
                let attempts = self.shared.failed_attempts.fetch_add(1, Ordering::Relaxed);
                if attempts == 0 || self.backoff >= self.config.max_backoff {
                    tracing::warn!(seq = batch.seq, %reason, "reporting failed; retrying");
                } else {
                    tracing::debug!(seq = batch.seq, %reason, "reporting failed; retrying");
                }
                Err(())
            }
        }
    }

    /// Posts `batch` once, in the compact form or as JSON; with `more` to send, asking for an
    /// answer before the commit (`Prefer: respond-async`: a `202 Accepted` once journaled).
    async fn post(
        &self,
        batch: &protocol::IngestBatch,
        compact: bool,
        more: bool,
    ) -> Result<(), SendError> {
        let mut request = self.client.post(&self.url);
        if more {
            request = request.header("prefer", "respond-async");
        }
        request = match compact {
            true => request
                .header(reqwest::header::CONTENT_TYPE, protocol::compact::MEDIA_TYPE)
                .body(protocol::compact::encode(batch)),
            false => request.json(batch),
        };
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request
            .send()
            .await
            .map_err(|err| SendError::Transient(err.to_string()))?;
        let status = response.status();
        if status.is_success() {
            let ack: protocol::IngestAck = response.json().await.map_err(|err| {
                SendError::Transient(format!("unreadable acknowledgement: {err}"))
            })?;
            if ack.seq != batch.seq {
                return Err(SendError::Transient(format!(
                    "acknowledged seq {} for batch {}",
                    ack.seq, batch.seq
                )));
            }
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let reason = format!("{status}: {}", body.chars().take(300).collect::<String>());
        if compact && status == reqwest::StatusCode::UNSUPPORTED_MEDIA_TYPE {
            return Err(SendError::CompactRefused(reason));
        }
        // 4xx other than these means the batch itself is wrong and will never be taken.
        let retryable = status.is_server_error()
            || matches!(status.as_u16(), 401 | 403 | 404 | 408 | 425 | 429);
        Err(if retryable {
            SendError::Transient(reason)
        } else {
            SendError::Permanent(reason)
        })
    }

    fn next_backoff(&mut self) -> Duration {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.config.max_backoff);
        wait
    }

    fn take_transitions(&mut self) {
        let mut queue = self
            .shared
            .transitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.pending_transitions.extend(queue.drain(..));
        drop(queue);
        // Transitions the listener could not queue join the counters of the next batch.
        let dropped = self.shared.queue_drops.swap(0, Ordering::Relaxed);
        self.pending_drops.transitions_dropped += dropped;
    }

    fn collect_aggregates(&mut self) {
        let clock = self.registry.clock().clone();
        let now_ms = clock.wall_ms();
        let start_ms = self.interval_start_ms;
        let interval_ms = (now_ms - start_ms).clamp(1, i64::from(u32::MAX)) as u32;
        for breaker in self.registry.breakers() {
            let counters = breaker.counters();
            let previous = self
                .previous_counters
                .get(breaker.name())
                .copied()
                .unwrap_or_default();
            let (counts, latency, reported) = interval_counts(&counters, &previous);
            self.previous_counters
                .insert(breaker.name().to_owned(), reported);
            let snapshot = breaker.snapshot();
            self.pending_aggregates.push_back(protocol::Aggregate {
                breaker: breaker.name().to_owned(),
                start_ms,
                interval_ms,
                counts,
                latency,
                state: wire_state(snapshot.state),
                failure_rate: snapshot.failure_rate,
                failure_rate_threshold: snapshot.failure_rate_threshold,
                config_version: snapshot.config_version,
            });
        }
        self.interval_start_ms = now_ms;
        // Transitions noticed while taking snapshots (an elapsed wait) go in the same batch.
        self.take_transitions();
        self.enforce_cap();
    }

    /// Keeps the pending items within `max_buffered`: coalesce aggregates per breaker, then
    /// drop the oldest aggregates, and only then the oldest transitions.
    fn enforce_cap(&mut self) {
        let cap = self.config.max_buffered.max(1);
        if self.pending_len() <= cap {
            return;
        }
        let mut coalesced: BTreeMap<String, protocol::Aggregate> = BTreeMap::new();
        let n_before = self.pending_aggregates.len();
        for aggregate in self.pending_aggregates.drain(..) {
            match coalesced.get_mut(&aggregate.breaker) {
                Some(earlier) => merge_aggregate(earlier, aggregate),
                None => {
                    coalesced.insert(aggregate.breaker.clone(), aggregate);
                }
            }
        }
        let mut drops = protocol::DropCounters {
            aggregates_coalesced: (n_before - coalesced.len()) as u64,
            ..Default::default()
        };
        self.pending_aggregates = coalesced.into_values().collect();
        while self.pending_len() > cap && self.pending_aggregates.pop_front().is_some() {
            drops.aggregates_dropped += 1;
        }
        while self.pending_len() > cap && self.pending_transitions.pop_front().is_some() {
            drops.transitions_dropped += 1;
        }
        if drops.transitions_dropped > 0 {
            tracing::warn!(
                n = drops.transitions_dropped,
                "reporter buffer full of transitions; dropped the oldest"
            );
        }
        self.pending_drops.aggregates_coalesced += drops.aggregates_coalesced;
        self.pending_drops.aggregates_dropped += drops.aggregates_dropped;
        self.pending_drops.transitions_dropped += drops.transitions_dropped;
        self.add_shared_drops(drops);
    }

    fn pending_len(&self) -> usize {
        self.pending_aggregates.len() + self.pending_transitions.len()
    }

    fn publish_pending(&self) {
        let in_flight = self
            .in_flight
            .as_ref()
            .map_or(0, |batch| batch.aggregates.len() + batch.transitions.len());
        self.shared
            .pending_items
            .store((self.pending_len() + in_flight) as u64, Ordering::Relaxed);
    }

    fn add_shared_drops(&self, add: protocol::DropCounters) {
        let mut drops = self.shared.drops.lock().unwrap_or_else(|p| p.into_inner());
        drops.aggregates_coalesced += add.aggregates_coalesced;
        drops.aggregates_dropped += add.aggregates_dropped;
        drops.transitions_dropped += add.transitions_dropped;
    }
}

/// One interval's counts: what the cumulative `now` holds beyond `reported` (what earlier
/// intervals reported), and the new `reported`.
///
/// A call adds its outcome, then its slow mark, then its latency, each to a counter of its
/// own, and the counters are read one after another without a lock: a read in the middle of a
/// call can see its slow mark or latency but not yet its outcome. The server refuses an
/// aggregate with more slow or timed calls than calls that ran, so such marks are held back
/// (left out of `reported`) and sent with the next interval, where their outcome is.
fn interval_counts(
    now: &Counters,
    reported: &Counters,
) -> (
    protocol::OutcomeCounts,
    protocol::LatencyHistogram,
    Counters,
) {
    let mut counts = protocol::OutcomeCounts {
        success: now.success - reported.success,
        failure: now.failure - reported.failure,
        timeout: now.timeout - reported.timeout,
        rejected: now.rejected - reported.rejected,
        slow: now.slow - reported.slow,
        ignored: now.ignored - reported.ignored,
    };
    let ran = counts.ran();
    counts.slow = counts.slow.min(ran);
    let mut next = *now;
    next.slow = reported.slow + counts.slow;
    let mut latency = protocol::LatencyHistogram::default();
    let mut room = ran;
    for (bucket, (&now, &before)) in now.latency.iter().zip(reported.latency.iter()).enumerate() {
        let n = (now - before).min(room);
        room -= n;
        if n > 0 {
            latency.add_to_bucket(bucket, n);
        }
        next.latency[bucket] = before + n;
    }
    (counts, latency, next)
}

fn merge_aggregate(earlier: &mut protocol::Aggregate, later: protocol::Aggregate) {
    let end_ms = later.start_ms + i64::from(later.interval_ms);
    earlier.start_ms = earlier.start_ms.min(later.start_ms);
    earlier.interval_ms = (end_ms - earlier.start_ms).clamp(1, i64::from(u32::MAX)) as u32;
    earlier.counts.merge(&later.counts);
    earlier.latency.merge(&later.latency);
    earlier.state = later.state;
    earlier.failure_rate = later.failure_rate;
    earlier.failure_rate_threshold = later.failure_rate_threshold;
    earlier.config_version = later.config_version;
}

/// The wire form of a state.
pub fn wire_state(state: State) -> protocol::State {
    match state {
        State::Closed => protocol::State::Closed,
        State::Open => protocol::State::Open,
        State::HalfOpen => protocol::State::HalfOpen,
    }
}

/// The wire form of a transition of breaker `breaker` at `at_wall_ms`.
pub fn wire_transition(
    breaker: &str,
    at_wall_ms: i64,
    transition: &Transition,
) -> protocol::Transition {
    protocol::Transition {
        breaker: breaker.to_owned(),
        at_ms: at_wall_ms,
        from: wire_state(transition.from),
        to: wire_state(transition.to),
        trigger: Some(protocol::Trigger {
            kind: transition.trigger.kind.as_str().to_owned(),
            value: transition.trigger.value,
            threshold: transition.trigger.threshold,
        }),
        config_version: transition.config_version,
    }
}

#[cfg(test)]
mod tests;
