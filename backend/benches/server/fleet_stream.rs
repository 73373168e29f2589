//! Part of the 10,000-breaker fleet (`memory_fleet`): 50 live-stream clients on
//! `/api/v1/stream` while the fleet posts, and a probe posting one transition at a time, each
//! on a breaker of its own (`probe-NNNN`, service `probe`). Measured: from just before the
//! transition's POST until its `transition` event reaches each client, over loopback, with the
//! load generator, the server and the clients on the same cores. The clients are plain HTTP
//! readers of the event stream, not browsers: the page's own time to show an event is
//! `browser_load`'s figure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Live-stream clients, as dashboards hold them.
pub const N_CLIENTS: usize = 50;
/// Between two probes, on average: each gap is drawn uniformly from 60–140 % of it, so that
/// the probes fall at every phase of the fleet's second (a fixed period that divides the
/// second would hit the same few phases all run long, which of them depending on when the
/// run started: in or out of a burst).
const PROBE_EVERY: Duration = Duration::from_millis(250);
/// The fleet's first seconds register its breakers; probes start after them.
const PROBE_AFTER: Duration = Duration::from_secs(3);

/// When each probe was posted, and every arrival measured.
#[derive(Default)]
struct Shared {
    sent: HashMap<String, Instant>,
    /// Each probe's POST until its acknowledgement (committed, then published to the streams).
    acks: Vec<Duration>,
    arrivals: Vec<Duration>,
    /// Each probe's latest arrival at any client.
    slowest: HashMap<String, Duration>,
    /// Bytes and `summary` events every client read, in all.
    bytes: usize,
    summaries: usize,
}

pub struct Probe {
    started: Instant,
    shared: Arc<Mutex<Shared>>,
    clients: Vec<tokio::task::JoinHandle<()>>,
    prober: tokio::task::JoinHandle<usize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// The clients' and the probe's own runtime (see [`start`]).
    runtime: tokio::runtime::Runtime,
}

/// Connects the clients, then probes every [`PROBE_EVERY`] until [`Probe::finish`].
///
/// The clients and the probe run on a runtime of their own, on a thread of their own: the
/// load generator's 1,000 reporters are tasks of the bench's runtime, and a dashboard does
/// not wait for its turn behind another program's tasks (a browser is a process of its own;
/// the cores are still shared, as they are with a browser on the same machine).
pub async fn start(url: &str, token: &str) -> Probe {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("stream-clients")
        .enable_all()
        .build()
        .unwrap();
    let shared = Arc::new(Mutex::new(Shared::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (url, token) = (url.to_owned(), token.to_owned());
    let (shared_, stop_) = (shared.clone(), stop.clone());
    let (clients, prober) = runtime
        .spawn(async move {
            let client = reqwest::Client::new();
            let mut clients = Vec::new();
            for _ in 0..N_CLIENTS {
                let response = client
                    .get(format!("{url}/api/v1/stream"))
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                clients.push(tokio::spawn(read_stream(response, shared_.clone())));
            }
            let prober = tokio::spawn(probe(client, url, token, shared_, stop_));
            (clients, prober)
        })
        .await
        .unwrap();
    Probe {
        started: Instant::now(),
        shared,
        clients,
        prober,
        stop,
        runtime,
    }
}

/// Reads one client's stream, timing each probe's `transition` event. It looks only for
/// those (a byte search per chunk), so the clients, which share the cores with the server,
/// cost little beside it: dashboards run on other machines.
async fn read_stream(mut response: reqwest::Response, shared: Arc<Mutex<Shared>>) {
    let transition = memchr::memmem::Finder::new(b"event: transition\n");
    let summary = memchr::memmem::Finder::new(b"event: summary\n");
    // What follows the last whole message, kept for the next chunk.
    let mut pending: Vec<u8> = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let at = Instant::now();
        pending.extend_from_slice(&chunk);
        let whole = memchr::memmem::rfind(&pending, b"\n\n").map_or(0, |end| end + 2);
        let text = &pending[..whole];
        let n_summaries = summary.find_iter(text).count();
        let mut arrived = Vec::new();
        for start in transition.find_iter(text) {
            let rest = &text[start..];
            let Some(name) = memchr::memmem::find(rest, b"\"probe-") else {
                continue;
            };
            let name = &rest[name + 1..];
            if let Some(end) = memchr::memchr(b'"', name) {
                arrived.push(String::from_utf8_lossy(&name[..end]).into_owned());
            }
        }
        {
            let mut shared = shared.lock().unwrap();
            shared.bytes += chunk.len();
            shared.summaries += n_summaries;
            for name in arrived {
                if let Some(sent) = shared.sent.get(&name).copied() {
                    shared.arrivals.push(at - sent);
                    let slowest = shared.slowest.entry(name).or_default();
                    *slowest = (*slowest).max(at - sent);
                }
            }
        }
        pending.drain(..whole);
    }
}

/// Posts one probe transition at a time; returns how many it posted.
async fn probe(
    client: reqwest::Client,
    url: String,
    token: String,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> usize {
    tokio::time::sleep(PROBE_AFTER).await;
    use rand_xoshiro::rand_core::{RngCore, SeedableRng};
    // Seeded: the same gaps every run.
    let mut rng = rand_xoshiro::Xoshiro256Plus::seed_from_u64(250);
    let mut next_at = tokio::time::Instant::now();
    let mut seq = 0;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        tokio::time::sleep_until(next_at).await;
        let uniform = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        next_at += PROBE_EVERY.mul_f64(0.6 + 0.8 * uniform);
        seq += 1;
        let breaker = format!("probe-{seq:04}");
        let now_ms = backend::time::now_ms();
        let batch = serde_json::json!({
            "service": "probe", "instance": "prober", "seq": seq, "sent_at_ms": now_ms,
            "transitions": [{
                "breaker": breaker, "at_ms": now_ms, "from": "closed", "to": "open",
                "trigger": {"kind": "failure_rate", "value": 0.9, "threshold": 0.5},
                "config_version": 1
            }]
        });
        let sent = Instant::now();
        shared.lock().unwrap().sent.insert(breaker, sent);
        let response = client
            .post(format!("{url}/api/v1/ingest"))
            .bearer_auth(&token)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        shared.lock().unwrap().acks.push(sent.elapsed());
    }
    seq as usize
}

/// The `q` quantile of sorted durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    ms(super::percentile(sorted, q))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// What one round's probe measured.
pub struct Figures {
    /// Transition posted → event at a client, p99 over every client's arrivals, ms.
    pub p99_ms: f64,
    pub arrivals: usize,
    /// Events that never reached a client.
    pub missed: usize,
}

impl Probe {
    /// Stops probing, lets the last events arrive and prints the figures; `None` when no
    /// probe reached a client.
    pub async fn finish(self) -> Option<Figures> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n_probes = self.prober.await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        for client in &self.clients {
            client.abort();
        }
        // Dropped without waiting for its tasks (the bench's runtime may not block).
        self.runtime.shutdown_background();
        let (mut arrivals, mut acks, bytes, summaries) = {
            let mut shared = self.shared.lock().unwrap();
            // The three slowest probes, with when they were posted: what to look at first
            // when the p99 is off.
            let mut slowest: Vec<(Duration, Duration)> = shared
                .slowest
                .iter()
                .map(|(name, took)| (*took, shared.sent[name] - self.started))
                .collect();
            slowest.sort_unstable_by(|a, b| b.cmp(a));
            let slowest: Vec<String> = slowest
                .iter()
                .take(3)
                .map(|(took, at)| format!("{:.1} ms at {:.3} s", ms(*took), at.as_secs_f64()))
                .collect();
            println!(
                "  stream: slowest probes (last client reached; posted after the clients connected): {}",
                slowest.join(", ")
            );
            let arrivals = std::mem::take(&mut shared.arrivals);
            let acks = std::mem::take(&mut shared.acks);
            (arrivals, acks, shared.bytes, shared.summaries)
        };
        let per_client_s = (N_CLIENTS as f64 * self.started.elapsed().as_secs_f64()).max(1e-9);
        println!(
            "  stream: each client read {:.2} MB/s, {:.0} summaries/s",
            bytes as f64 / 1e6 / per_client_s,
            summaries as f64 / per_client_s
        );
        arrivals.sort();
        let expected = n_probes * N_CLIENTS;
        let missed = expected.saturating_sub(arrivals.len());
        if arrivals.is_empty() {
            println!("  stream: no probe reached a client ({n_probes} probes)");
            return None;
        }
        acks.sort();
        let (p50, p99, max) = (
            percentile_ms(&arrivals, 0.5),
            percentile_ms(&arrivals, 0.99),
            percentile_ms(&arrivals, 1.0),
        );
        // The stream's share is what the arrivals add to the acknowledgement (the server
        // publishes a commit's transitions before it answers their POST).
        println!(
            "  stream: probe acknowledged p50 {:.1} ms, p99 {:.1} ms",
            percentile_ms(&acks, 0.5),
            percentile_ms(&acks, 0.99)
        );
        println!(
            "  stream: transition posted -> event at each of {N_CLIENTS} live-stream clients, \
             {n_probes} probes: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms, {missed} of \
             {expected} never arrived (goal p99 <= 50 ms)"
        );
        Some(Figures {
            p99_ms: p99,
            arrivals: arrivals.len(),
            missed,
        })
    }
}
