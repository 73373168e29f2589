//! Server benchmarks; prints figures, asserts nothing. Run with
//! `cargo bench -p backend --bench server` (add `-- quick` for a shorter run).
//!
//! 1. Ingest throughput over HTTP with realistic batches vs raw multi-row SQLite inserts of
//!    the same rows, in the same run (goal: HTTP ≥ 0.5× raw).
//! 2. Breaker detail (24 h series + timeline) with 10 M call outcomes stored (goal p95 ≤ 20 ms).
//! 3. Server RSS with 1,000 live breakers reporting every second (goal ≤ 150 MB).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use backend::server::{self, ServerOptions};
use backend::store::Store;
use backend::time::now_ms;
use protocol::{Aggregate, IngestBatch, LatencyHistogram, OutcomeCounts, State};

fn aggregate(breaker: usize, start_ms: i64, calls: u64) -> Aggregate {
    let mut latency = LatencyHistogram::default();
    latency.add_to_bucket(3, calls * 7 / 10);
    latency.add_to_bucket(4, calls * 2 / 10);
    latency.add_to_bucket(6, calls - calls * 9 / 10);
    Aggregate {
        breaker: format!("dependency-{breaker:03}"),
        start_ms,
        interval_ms: 1_000,
        counts: OutcomeCounts {
            success: calls - calls / 50,
            failure: calls / 50,
            slow: calls / 100,
            ..Default::default()
        },
        latency,
        state: State::Closed,
        failure_rate: Some(0.02),
        failure_rate_threshold: Some(0.5),
        config_version: 1,
    }
}

/// One instance's batch: one aggregate per breaker for one second.
fn batch(instance: usize, seq: u64, n_breakers: usize, start_ms: i64) -> IngestBatch {
    IngestBatch {
        service: "bench".into(),
        instance: format!("bench-{instance}"),
        seq,
        sent_at_ms: now_ms(),
        aggregates: (0..n_breakers)
            .map(|b| aggregate(b, start_ms, 120))
            .collect(),
        transitions: Vec::new(),
        dropped: Default::default(),
    }
}

async fn start(dir: &tempfile::TempDir, name: &str) -> server::RunningServer {
    let url = format!("sqlite://{}", dir.path().join(name).display());
    let mut options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)), url);
    options.anonymous_viewer = true;
    options.rollup_period = Duration::from_secs(3_600);
    server::start(options).await.unwrap()
}

async fn ingest_vs_raw(quick: bool) {
    let n_instances = 8;
    let n_breakers = 50;
    let seconds = if quick { 60 } else { 300 };
    let n_rows = n_instances * n_breakers * seconds;
    let base = now_ms() - 3_600_000;
    let batches: Vec<IngestBatch> = (0..seconds)
        .flat_map(|s| {
            (0..n_instances)
                .map(move |i| batch(i, s as u64 + 1, n_breakers, base + s as i64 * 1000))
        })
        .collect();

    // Raw: the same rows through the store's multi-row insert, 2,000 rows per transaction.
    let dir = tempfile::tempdir().unwrap();
    let raw_server = start(&dir, "raw.db").await;
    let store = raw_server.state.store.clone();
    let mut tx = store.begin().await.unwrap();
    let mut breaker_ids = Vec::new();
    for b in 0..n_breakers {
        let name = format!("dependency-{b:03}");
        breaker_ids.push(Store::breaker_id(&mut tx, "bench", &name, 0).await.unwrap());
    }
    tx.commit().await.unwrap();
    let rows: Vec<(i64, &str, &Aggregate)> = batches
        .iter()
        .flat_map(|batch| {
            batch
                .aggregates
                .iter()
                .enumerate()
                .map(|(b, a)| (breaker_ids[b], batch.instance.as_str(), a))
        })
        .collect();
    let started = Instant::now();
    for chunk in rows.chunks(2_000) {
        let mut tx = store.begin().await.unwrap();
        Store::insert_aggregates(&mut tx, chunk).await.unwrap();
        tx.commit().await.unwrap();
    }
    let raw_secs = started.elapsed().as_secs_f64();

    // HTTP: the same batches, from concurrent reporters, each waiting for its ack.
    let server = start(&dir, "http.db").await;
    let key = backend::auth::create_api_key(&server.state.store, "bench")
        .await
        .unwrap()
        .secret;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/ingest", server.url());
    let bodies: Vec<Vec<Vec<u8>>> = (0..n_instances)
        .map(|i| {
            let instance = format!("bench-{i}");
            batches
                .iter()
                .filter(|b| b.instance == instance)
                .map(|b| serde_json::to_vec(b).unwrap())
                .collect()
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for instance_bodies in bodies {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for body in instance_bodies {
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "{}", response.status());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let http_secs = started.elapsed().as_secs_f64();
    let raw_rate = n_rows as f64 / raw_secs;
    let http_rate = n_rows as f64 / http_secs;
    println!(
        "ingest: {n_rows} aggregate rows ({n_instances} instances x {n_breakers} breakers x {seconds} s)"
    );
    println!("  raw multi-row insert   {raw_rate:>10.0} rows/s");
    println!(
        "  HTTP ingest (acked)    {http_rate:>10.0} rows/s  ({:.0} batches/s)",
        batches.len() as f64 / http_secs
    );
    println!(
        "  ratio HTTP / raw       {:>10.2}   (goal >= 0.5)",
        http_rate / raw_rate
    );
    let metrics = client
        .get(format!("{}/metrics", server.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in metrics.lines().filter(|l| {
        l.starts_with("fusebox_ingest_write_seconds_")
            || l.starts_with("fusebox_ingest_batches_per_commit_")
    }) {
        println!("  {line}");
    }
    raw_server.shutdown().await.unwrap();
    server.shutdown().await.unwrap();
}

async fn detail_query(quick: bool) {
    // 24 h of 1 s aggregates on 4 instances, 29 calls each: 86,400 x 4 x 29 ≈ 10 M outcomes.
    let n_instances = 4;
    let calls = 29;
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir, "detail.db").await;
    let store = server.state.store.clone();
    let end = now_ms().div_euclid(1000) * 1000;
    let start_ms = end - 86_400_000;
    let mut tx = store.begin().await.unwrap();
    let id = Store::breaker_id(&mut tx, "shop", "payments", 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let started = Instant::now();
    let instances: Vec<String> = (0..n_instances).map(|i| format!("shop-{i}")).collect();
    let mut outcomes = 0u64;
    for chunk_start in (0..86_400i64).step_by(3_600) {
        let aggregates: Vec<(usize, Aggregate)> = (chunk_start..chunk_start + 3_600)
            .flat_map(|s| (0..n_instances).map(move |i| (i, s)))
            .map(|(i, s)| (i, aggregate(0, start_ms + s * 1000, calls)))
            .collect();
        outcomes += aggregates
            .iter()
            .map(|(_, a)| a.counts.judged())
            .sum::<u64>();
        let rows: Vec<(i64, &str, &Aggregate)> = aggregates
            .iter()
            .map(|(i, a)| (id, instances[*i].as_str(), a))
            .collect();
        let mut tx = store.begin().await.unwrap();
        Store::insert_aggregates(&mut tx, &rows).await.unwrap();
        tx.commit().await.unwrap();
    }
    // A trip and a recovery per hour per instance, for the timeline.
    let mut tx = store.begin().await.unwrap();
    for hour in 0..24 {
        for instance in &instances {
            for (offset, from, to) in [
                (0, State::Closed, State::Open),
                (30_000, State::Open, State::Closed),
            ] {
                let transition = protocol::Transition {
                    breaker: "payments".into(),
                    at_ms: start_ms + hour * 3_600_000 + offset,
                    from,
                    to,
                    trigger: None,
                    config_version: 1,
                };
                Store::insert_transition(&mut tx, id, instance, &transition, 0)
                    .await
                    .unwrap();
            }
        }
    }
    tx.commit().await.unwrap();
    let load_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    while backend::rollup::roll_up_once(&store).await.unwrap() > 0 {}
    let rollup_secs = started.elapsed().as_secs_f64();

    let client = reqwest::Client::new();
    let base = server.url();
    let n = if quick { 30 } else { 200 };
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let series = client
            .get(format!(
                "{base}/api/v1/breakers/shop/payments/series?from_ms={start_ms}&to_ms={end}"
            ))
            .send();
        let timeline = client
            .get(format!(
                "{base}/api/v1/breakers/shop/payments/timeline?from_ms={start_ms}&to_ms={end}"
            ))
            .send();
        let (series, timeline) = tokio::join!(series, timeline);
        let series: protocol::Series = series.unwrap().json().await.unwrap();
        let timeline: protocol::Timeline = timeline.unwrap().json().await.unwrap();
        times.push(started.elapsed());
        assert!((288..=289).contains(&series.points.len()));
        assert_eq!(timeline.lanes.len(), n_instances);
    }
    times.sort();
    let pct = |q: f64| times[((times.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "breaker detail: 24 h series (288 points) + timeline, {:.1} M call outcomes stored",
        outcomes as f64 / 1e6
    );
    println!("  load {load_secs:.1} s, rollup {rollup_secs:.1} s");
    println!(
        "  p50 {:>7.2} ms   p95 {:>7.2} ms   (goal p95 <= 20 ms)",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3
    );
    server.shutdown().await.unwrap();
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

async fn memory(quick: bool) {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("memory.db").display().to_string();
    let bin = env!("CARGO_BIN_EXE_fusebox");
    let out = std::process::Command::new(bin)
        .args([
            "keys",
            "create",
            "--service",
            "bench",
            "--database",
            &database,
        ])
        .output()
        .unwrap();
    let key = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let mut child = std::process::Command::new(bin)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database",
            &database,
            "--anonymous-viewer",
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(idx) = line.find("http://") {
            break line[idx..].trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    // 100 instances x 10 breakers = 1,000 live breakers, each instance reporting every second,
    // with 10 dashboards on the live stream.
    let n_instances = 100;
    let seconds = if quick { 10 } else { 30 };
    let client = reqwest::Client::new();
    let mut streams = Vec::new();
    for _ in 0..10 {
        let mut response = client
            .get(format!("{url}/api/v1/stream"))
            .send()
            .await
            .unwrap();
        streams.push(tokio::spawn(async move {
            while let Ok(Some(_)) = response.chunk().await {}
        }));
    }
    let started = now_ms();
    let mut tasks = Vec::new();
    for instance in 0..n_instances {
        let (client, url, key) = (client.clone(), url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            for seq in 1..=seconds as u64 {
                ticker.tick().await;
                let mut b = batch(instance, seq, 10, started + seq as i64 * 1000);
                for (idx, a) in b.aggregates.iter_mut().enumerate() {
                    a.breaker = format!("dependency-{:04}", instance * 10 + idx);
                }
                client
                    .post(format!("{url}/api/v1/ingest"))
                    .bearer_auth(&key)
                    .json(&b)
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let breakers: Vec<protocol::BreakerSummary> = client
        .get(format!("{url}/api/v1/breakers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pid = child.id();
    println!(
        "memory: {} live breakers, {n_instances} instances reporting every second for {seconds} s, 10 live streams",
        breakers.len()
    );
    println!(
        "  RSS {:>6.1} MB   peak {:>6.1} MB   (goal <= 150 MB)",
        status_kb(pid, "VmRSS:") as f64 / 1024.0,
        status_kb(pid, "VmHWM:") as f64 / 1024.0
    );
    child.kill().unwrap();
    child.wait().unwrap();
    for stream in streams {
        stream.abort();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `quick` shortens every part.
    let quick = std::env::args().any(|a| a == "quick");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        ingest_vs_raw(quick).await;
        detail_query(quick).await;
        memory(quick).await;
    });
}
