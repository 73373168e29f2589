//! The `replicas` part of the server bench (PostgreSQL only): `fusebox serve` processes on one
//! database, as in README's "Running more than one server".
//!
//! 1. Cross-replica latency: a transition posted to replica A, until a live-stream client of
//!    replica B receives it (the POST, A's commit and NOTIFY, B's listener reading the row,
//!    B's stream), one at a time with 10 ms between them, 2 replicas on loopback
//!    (goal p99 ≤ 100 ms); then again with 200 instances × 50 breakers reporting each second
//!    to both replicas (10,000 aggregates/s), so that B's listener and stream also carry the
//!    fleet's notifications and transitions.
//! 2. Ingest throughput with 1, 2 and 3 replicas: the same load generator (instances posting
//!    their 1 s batches back to back, each waiting for its acknowledgement, spread round-robin
//!    over the replicas), aggregates acknowledged per second.
//!
//! Each round starts fresh replicas on a fresh database; rounds of the throughput part
//! alternate the replica counts, so a burst of other work on the machine skews one sample
//! rather than one count; the medians of 3 rounds are printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backend::time::now_ms;

use super::{
    Ack, Form, POSTGRES_VAR, database, median, metric_value, percentile, post_all, reporter_batch,
    reporter_connection, serve,
};

const ROUNDS: usize = 3;

/// Replica processes on one database; dropping them kills them.
struct Replicas {
    children: Vec<std::process::Child>,
    urls: Vec<String>,
    key: String,
    database: String,
}

impl Replicas {
    async fn start(n: usize, name: &str) -> Replicas {
        let dir = tempfile::tempdir().unwrap();
        let url = database(&dir, name).await;
        // The schema and the key before any replica starts, as an operator would.
        let store = backend::store::Store::open(&url).await.unwrap();
        let key = backend::auth::create_api_key(&store, "bench")
            .await
            .unwrap()
            .secret;
        let (mut children, mut urls) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (child, url) = serve(&url);
            children.push(child);
            urls.push(url);
        }
        drop(store);
        Replicas {
            children,
            urls,
            key,
            database: url,
        }
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Each `transition` event of the live stream at `url`, with when it arrived: (at_ms, arrival).
async fn stream_transitions(url: &str) -> tokio::sync::mpsc::UnboundedReceiver<(i64, Instant)> {
    let mut response = reqwest::Client::new()
        .get(format!("{url}/api/v1/stream"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            let arrived = Instant::now();
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_string())
                };
                match field("event:").as_deref() {
                    Some("ready") => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(());
                        }
                    }
                    Some("transition") => {
                        let data: serde_json::Value =
                            serde_json::from_str(&field("data:").unwrap()).unwrap();
                        let at_ms = data["at_ms"].as_i64().unwrap();
                        if tx.send((at_ms, arrived)).is_err() {
                            return;
                        }
                    }
                    _ => {}
                }
            }
        }
    });
    ready_rx.await.expect("the stream says it is ready");
    rx
}

/// Reporters of `n_instances` instances × [`BREAKERS`] breakers, each posting its batch of the
/// second once a second at a phase of its own, spread round-robin over `urls`, until the
/// returned flag is set.
fn steady_load(
    urls: &[String],
    key: &str,
    n_instances: usize,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (urls, key, flag) = (urls.to_vec(), key.to_string(), stop.clone());
    let task = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let base = now_ms() - 3_600_000;
        // Each instance at its own phase of the second, as reporters started at different
        // moments are: one slot of 20 ms after another.
        const SLOTS: usize = 50;
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / SLOTS as u64));
        let mut slot = 0;
        let mut in_flight = tokio::task::JoinSet::new();
        while !flag.load(Ordering::Relaxed) {
            tick.tick().await;
            while let Some(done) = in_flight.try_join_next() {
                done.unwrap();
            }
            let second = slot / SLOTS;
            for instance in (slot % SLOTS..n_instances).step_by(SLOTS) {
                let body =
                    serde_json::to_vec(&reporter_batch(instance, second, BREAKERS, base)).unwrap();
                let request = client
                    .post(format!("{}/api/v1/ingest", urls[instance % urls.len()]))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body);
                in_flight.spawn(async move {
                    let response = request.send().await.unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                });
            }
            slot += 1;
        }
        // Every batch acknowledged before the replicas stop.
        while let Some(done) = in_flight.join_next().await {
            done.unwrap();
        }
    });
    (stop, task)
}

/// One round of the cross-replica latency: `n` transitions, each's latency in ms, with
/// `load_instances` instances reporting to both replicas meanwhile (see [`steady_load`]).
async fn latency_round(round: usize, n: usize, load_instances: usize) -> Vec<f64> {
    let replicas = Replicas::start(2, &format!("latency_{round}_{load_instances}")).await;
    let (a, b) = (&replicas.urls[0], &replicas.urls[1]);
    let mut on_b = stream_transitions(b).await;
    let load =
        (load_instances > 0).then(|| steady_load(&replicas.urls, &replicas.key, load_instances));
    if load.is_some() {
        // Every instance has reported a few times: the fleet holds its breakers.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let client = reqwest::Client::new();
    let warm_up = 10;
    let mut times = Vec::with_capacity(n);
    let mut open = false;
    for i in 0..warm_up + n {
        let at_ms = now_ms();
        let (from, to) = if open {
            ("open", "closed")
        } else {
            ("closed", "open")
        };
        open = !open;
        let batch = serde_json::json!({
            "service": "bench", "instance": "probe", "seq": i + 1, "sent_at_ms": at_ms,
            "transitions": [{
                "breaker": "payments", "at_ms": at_ms, "from": from, "to": to,
                "trigger": {"kind": "failure_rate", "value": 0.6, "threshold": 0.5},
                "config_version": 1
            }]
        });
        let sent = Instant::now();
        let response = client
            .post(format!("{a}/api/v1/ingest"))
            .bearer_auth(&replicas.key)
            .json(&batch)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let arrived = loop {
            let (seen, arrived) = tokio::time::timeout(Duration::from_secs(10), on_b.recv())
                .await
                .expect("the transition reaches the other replica within 10 s")
                .expect("the stream stays open");
            if seen == at_ms {
                break arrived;
            }
        };
        if i >= warm_up {
            times.push(arrived.duration_since(sent).as_secs_f64() * 1e3);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if let Some((stop, task)) = load {
        stop.store(true, Ordering::Relaxed);
        task.await.unwrap();
    }
    times
}

/// One round of ingest throughput on `n_replicas`: aggregates acknowledged per second.
async fn throughput_round(
    round: usize,
    n_replicas: usize,
    bodies: &[Vec<Vec<u8>>],
) -> (f64, String) {
    let replicas = Replicas::start(n_replicas, &format!("ingest_{n_replicas}_{round}")).await;
    let rows: usize = bodies.len() * bodies[0].len() * BREAKERS;
    // Each instance on its own keep-alive connection to its replica, like a reporter.
    let mut senders = Vec::new();
    for i in 0..bodies.len() {
        let url = &replicas.urls[i % n_replicas];
        let addr = url.trim_start_matches("http://").to_string();
        senders.push((reporter_connection(&addr).await, addr));
    }
    let authorization = format!("Bearer {}", replicas.key);
    let cpu_before = replicas.cpu().await;
    let started = Instant::now();
    post_all(
        (Form::Json, Ack::Committed),
        bodies.to_vec(),
        senders,
        &authorization,
    )
    .await;
    let secs = started.elapsed().as_secs_f64();
    let cpu = replicas.cpu().await.since(&cpu_before);
    let mut commits = (0.0, 0.0);
    for url in &replicas.urls {
        let metrics = reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let metric = |name: &str| metric_value(&metrics, name);
        commits.0 += metric("fusebox_ingest_batches_per_commit_count");
        commits.1 += metric("fusebox_ingest_batches_per_commit_sum");
    }
    let detail = format!(
        "CPU s: replicas {:.1}, PostgreSQL {:.1}, load generator {:.1}, in {secs:.1} s; \
         {:.0} commits of {:.1} batches on average",
        cpu.replicas,
        cpu.postgres,
        cpu.bench,
        commits.0,
        commits.1 / commits.0.max(1.0)
    );
    (rows as f64 / secs, detail)
}

/// CPU seconds used so far by the replica processes, the database's PostgreSQL backends and
/// this process.
#[derive(Default)]
struct Cpu {
    replicas: f64,
    postgres: f64,
    bench: f64,
    /// Per PostgreSQL backend, so one that starts during a run counts from zero.
    backends: std::collections::HashMap<i32, f64>,
}

impl Cpu {
    fn since(mut self, before: &Cpu) -> Cpu {
        self.replicas -= before.replicas;
        self.bench -= before.bench;
        self.postgres = (self.backends.iter())
            .map(|(pid, s)| s - before.backends.get(pid).copied().unwrap_or(0.0))
            .sum();
        self
    }
}

/// User + system CPU seconds of process `pid` (0 once it is gone).
fn cpu_of(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let ticks = |at: usize| {
        fields
            .get(at)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0 // USER_HZ
}

impl Replicas {
    async fn cpu(&self) -> Cpu {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.database).await.unwrap();
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let backends: std::collections::HashMap<i32, f64> = (pids.into_iter())
            .map(|pid| (pid, cpu_of(&pid.to_string())))
            .collect();
        Cpu {
            replicas: (self.children.iter())
                .map(|c| cpu_of(&c.id().to_string()))
                .sum(),
            postgres: backends.values().sum(),
            bench: cpu_of("self"),
            backends,
        }
    }
}

const BREAKERS: usize = 50;

pub async fn replicas(quick: bool) {
    if std::env::var(POSTGRES_VAR).is_err() {
        println!(
            "replicas: skipped (PostgreSQL only: set {POSTGRES_VAR}=postgres://user@host:port)"
        );
        return;
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "replicas: fusebox serve processes on one PostgreSQL database, this machine's {cores} cores \
         shared by the replicas, PostgreSQL and the load generator"
    );

    let n = if quick { 50 } else { 200 };
    let load_instances = if quick { 100 } else { 200 };
    for load in [0, load_instances] {
        let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
        let mut shown = Vec::new();
        for round in 0..ROUNDS {
            let mut times = latency_round(round, n, load).await;
            times.sort_by(f64::total_cmp);
            let (p50, p99) = (percentile(&times, 0.50), percentile(&times, 0.99));
            shown.push(format!("{p50:.1}/{p99:.1}"));
            p50s.push(p50);
            p99s.push(p99);
        }
        let (beside, what) = if load == 0 {
            (
                "nothing else ingesting".to_string(),
                format!(
                    "transition posted to replica A → stream client of replica B, p99 of {n}, median of rounds"
                ),
            )
        } else {
            let rate = load * BREAKERS;
            (
                format!(
                    "{load} instances x {BREAKERS} breakers reporting each second to both ({rate} aggregates/s)"
                ),
                format!("the same with {rate} aggregates/s reported to both replicas, p99"),
            )
        };
        println!(
            "  transition posted to replica A -> live stream client of replica B, 2 replicas, {n} per round, {beside}"
        );
        println!(
            "    p50 {:>6.1} ms   p99 {:>6.1} ms   (median of rounds' p50/p99 {}; goal p99 <= 100 ms)",
            median(&p50s),
            median(&p99s),
            shown.join(" ")
        );
        super::figure("replicas", what, median(&p99s), "ms", 1)
            .at_most(100.0, 0)
            .spread_of(&p99s, 1)
            .record();
    }

    let (instances, seconds) = if quick { (12, 10) } else { (24, 60) };
    let base = now_ms() - 3_600_000;
    let bodies: Vec<Vec<Vec<u8>>> = (0..instances)
        .map(|i| {
            (0..seconds)
                .map(|s| serde_json::to_vec(&reporter_batch(i, s, BREAKERS, base)).unwrap())
                .collect()
        })
        .collect();
    let counts = [1, 2, 3];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); counts.len()];
    let mut details = vec![String::new(); counts.len()];
    for round in 0..ROUNDS {
        for (at, &n_replicas) in counts.iter().enumerate() {
            let (rate, detail) = throughput_round(round, n_replicas, &bodies).await;
            rates[at].push(rate);
            details[at] = detail;
        }
    }
    println!(
        "  ingest, {instances} instances x {BREAKERS} breakers x {seconds} s ({} aggregates per run), \
         each instance posting back to back to replica (instance mod replicas)",
        instances * BREAKERS * seconds
    );
    let one = median(&rates[0]);
    for (at, &n_replicas) in counts.iter().enumerate() {
        let rate = median(&rates[at]);
        let each: Vec<String> = rates[at]
            .iter()
            .map(|r| format!("{:.1}k", r / 1e3))
            .collect();
        println!(
            "    {n_replicas} replica(s)  {rate:>9.0} aggregates/s acked   x{:.2} of 1   (median of {})",
            rate / one,
            each.join(" ")
        );
        println!("      last round: {}", details[at]);
        super::figure(
            "replicas",
            format!("ingest with {n_replicas} replica(s) on PostgreSQL, aggregates/s acked"),
            rate,
            "aggregates/s",
            0,
        )
        .note(format!("— (×{:.2} of 1 replica)", rate / one))
        .spread_of(&rates[at], 0)
        .record();
    }
}
