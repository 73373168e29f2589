//! Server benchmarks; prints figures, asserts nothing. Run with
//! `cargo xtask bench --only server` (that is, `cargo bench -p backend --bench server`; add
//! `-- quick` for a shorter run; name parts, e.g. `-- quick ingest`, to run only those:
//! `ingest`, `detail`, `memory`, `fleet`, `prune`, `replicas`, `retention`).
//!
//! 1. Ingest throughput over HTTP with realistic batches vs the store's raw multi-row inserts
//!    of the same rows (SQLite, or PostgreSQL as below), in the same run (goal: HTTP ≥ 0.5× raw), for 40 reporting instances and
//!    for 8, in 1 s batches, and for 8 catching up, in the batches a reporter sends a backlog
//!    in (see `ingest_vs_raw`).
//! 2. Breaker detail (24 h series + timeline) with 10 M call outcomes stored (goal p95 ≤ 20 ms).
//! 3. Server RSS with 1,000 live breakers reporting every second (goal ≤ 150 MB); with 10,000
//!    live breakers (1,000 instances × 10 breakers, in 10 services) reporting every second
//!    (goal ≤ 300 MB, and ingest keeping up: every batch acknowledged, none refused with 503),
//!    with 50 live-stream clients and a transition posted every 250 ms timed to its event at
//!    each client (goal p99 ≤ 50 ms; see `server/fleet_stream.rs`), each figure the median of
//!    three rounds;
//!    and with 10,000 breakers (10 services × 10 instances × 100 breakers) before and after one
//!    full read of every paginated list and `/metrics`: bytes per live breaker.
//! 4. Retention on SQLite (`prune`, see `server/prune.rs`): a run of the retention job with
//!    ten times as much history kept against little, the same rows past retention in both.
//!
//! With `FUSEBOX_BENCH_POSTGRES=postgres://user@host:port` (a PostgreSQL server the bench may
//! create databases on), parts 1 and 2 run on PostgreSQL instead, a fresh database for each
//! server they start, and parts 5 and 6 run (they are PostgreSQL's only):
//! 5. Replicas (see `server/replicas.rs`): a transition posted to one replica until a live
//!    stream client of another receives it, p50/p99 with 2 replicas (goal p99 ≤ 100 ms), with
//!    nothing else ingesting and with 10,000 aggregates/s reported to both; ingest
//!    throughput with 1, 2 and 3 replicas on one database under the same load generator.
//! 6. Retention (see `server/retention.rs`): a day of raw aggregates past retention, its
//!    partition dropped against the same rows deleted and vacuumed.
//!
//! Under `cargo xtask bench` each figure with a goal is also a row of the run's goal/figure
//! summary (`summary`), with the command for its part.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use backend::server::{self, ServerOptions};
use backend::store::Store;
use backend::time::now_ms;
use protocol::{Aggregate, IngestBatch, LatencyHistogram, OutcomeCounts, State};

#[path = "server/fleet_stream.rs"]
mod fleet_stream;
#[path = "server/prune.rs"]
mod prune;
#[path = "server/replicas.rs"]
mod replicas;
#[path = "server/retention.rs"]
mod retention;
#[path = "../../xtask/src/bench/row.rs"]
mod summary;

use summary::median;

/// The command that reproduces a part's figures (`quick` and the PostgreSQL server kept when
/// this run has them).
fn part_command(part: &str) -> String {
    let quick = std::env::args().any(|a| a == "quick");
    let postgres = std::env::var(POSTGRES_VAR)
        .map(|url| format!("{POSTGRES_VAR}={url} "))
        .unwrap_or_default();
    format!(
        "{postgres}cargo xtask bench --only server -- {}{part}",
        if quick { "quick " } else { "" }
    )
}

/// A figure of this bench, for the part `part`.
fn figure(
    part: &str,
    what: impl Into<String>,
    value: f64,
    unit: &str,
    decimals: usize,
) -> summary::Row {
    summary::Row::new("server", what, value, unit, decimals).command(part_command(part))
}

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

/// The variable naming a PostgreSQL server to run the ingest and detail parts on.
const POSTGRES_VAR: &str = "FUSEBOX_BENCH_POSTGRES";

/// A fresh database for a server: a SQLite file in `dir`, or a new database on the
/// PostgreSQL server named by [`POSTGRES_VAR`].
async fn database(dir: &tempfile::TempDir, name: &str) -> String {
    let Ok(base) = std::env::var(POSTGRES_VAR) else {
        return format!("sqlite://{}", dir.path().join(name).display());
    };
    use sqlx::Connection;
    let base = base.trim_end_matches('/');
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let db = format!(
        "bench_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    let mut conn = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .unwrap();
    format!("{base}/{db}")
}

async fn start(dir: &tempfile::TempDir, name: &str) -> server::RunningServer {
    let url = database(dir, name).await;
    let mut options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)), url);
    options.anonymous_viewer = true;
    options.rollup_period = Duration::from_secs(3_600);
    server::start(options).await.unwrap()
}

/// One instance's batch for one second of a realistic reporter: one 1 s aggregate per
/// breaker, and now and then an incident on one breaker: it trips (Closed → Open), probes
/// after 5 s (Open → Half-Open) and recovers a second later (Half-Open → Closed), with its
/// aggregates reporting the state it is in. Incidents are staggered across instances: each
/// instance has one every 20 s.
fn reporter_batch(instance: usize, second: usize, n_breakers: usize, base_ms: i64) -> IngestBatch {
    let start_ms = base_ms + second as i64 * 1000;
    let mut b = batch(instance, second as u64 + 1, n_breakers, start_ms);
    let phase = (second + instance * 3) % 20;
    let incident = (instance * 7 + (second + instance * 3) / 20) % n_breakers;
    let state = match phase {
        0..5 => State::Open,
        5 => State::HalfOpen,
        _ => State::Closed,
    };
    b.aggregates[incident].state = state;
    if state == State::Open {
        b.aggregates[incident].counts.rejected = 100;
    }
    let transition = |at_ms: i64, from: State, to: State| protocol::Transition {
        breaker: format!("dependency-{incident:03}"),
        at_ms,
        from,
        to,
        trigger: (to == State::Open).then(|| protocol::Trigger {
            kind: "failure_rate".into(),
            value: 0.62,
            threshold: 0.5,
        }),
        config_version: 1,
    };
    match phase {
        0 => b
            .transitions
            .push(transition(start_ms + 400, State::Closed, State::Open)),
        5 => b
            .transitions
            .push(transition(start_ms, State::Open, State::HalfOpen)),
        6 => b
            .transitions
            .push(transition(start_ms + 200, State::HalfOpen, State::Closed)),
        _ => {}
    }
    b
}

/// How an ingest body is written: JSON (adapters, curl) or the compact form the Rust
/// reporter sends (`protocol::compact`).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Form {
    Json,
    Compact,
}

impl Form {
    fn content_type(self) -> &'static str {
        match self {
            Form::Json => "application/json",
            Form::Compact => protocol::compact::MEDIA_TYPE,
        }
    }

    fn encode(self, batch: &IngestBatch) -> Vec<u8> {
        match self {
            Form::Json => serde_json::to_vec(batch).unwrap(),
            Form::Compact => protocol::compact::encode(batch),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Form::Json => "JSON",
            Form::Compact => "compact",
        }
    }
}

/// The form of the large fleet's ingest bodies.
const FLEET_FORM: Form = Form::Compact;

/// When a batch is answered: once committed, or (asked for with `Prefer: respond-async`, as a
/// reporter does when it has more to send) once journaled, before its commit.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ack {
    Committed,
    Early,
}

/// A keep-alive HTTP/1 connection to `addr`, as a reporter holds one.
async fn reporter_connection(
    addr: &str,
) -> hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

/// Posts every instance's ingest bodies, written in `form`, in order on its own connection (to
/// the host named beside it), all instances at once, and checks each answer.
async fn post_all(
    (form, ack): (Form, Ack),
    bodies: Vec<Vec<Vec<u8>>>,
    senders: Vec<(
        hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>,
        String,
    )>,
    authorization: &str,
) {
    let mut tasks = Vec::new();
    for (instance_bodies, (mut sender, host)) in bodies.into_iter().zip(senders) {
        let authorization = authorization.to_owned();
        tasks.push(tokio::spawn(async move {
            let n_bodies = instance_bodies.len();
            for (i, body) in instance_bodies.into_iter().enumerate() {
                let mut request = hyper::Request::post("/api/v1/ingest")
                    .header("host", &host)
                    .header("authorization", &authorization)
                    .header("content-type", form.content_type());
                // Asked for while more is to be sent, as the reporter does.
                if ack == Ack::Early && i + 1 < n_bodies {
                    request = request.header("prefer", "respond-async");
                }
                let request = request
                    .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                http_body_util::BodyExt::collect(response.into_body())
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Ingest throughput: the same rows over HTTP, acknowledged after commit, in either body form
/// (the compact one the Rust reporter sends, and JSON), and through the store's multi-row
/// insert directly ("raw"), in the same run.
///
/// Each of `n_instances` instances of a service with 50 breakers posts its 1 s batches (see
/// [`reporter_batch`]) back to back, one at a time, waiting for each acknowledgement, as the
/// reporter does, so the server sees `n_instances` requests in flight. With 40 instances that
/// is a modest fleet; 8 instances posting as fast as they can is a harsher case for group
/// commit, since a group can never hold more than 8 batches. The load generator runs in this
/// process, on the same cores as the server; the raw insert commits 2,000 rows per
/// transaction. Raw, compact and JSON take turns three times, each on a fresh database, and
/// the medians are compared, so that a burst of other work on the machine skews one sample
/// rather than the ratio.
///
/// With `catch_up`, each instance posts the same seconds as a reporter sends a backlog (after
/// an outage of the server, say): as many whole seconds per batch as fit in
/// [`BACKLOG_BATCH_ITEMS`] aggregates and transitions, the reporters' default
/// `max_batch_items`. Only then does a reporter post back to back; 1 s batches back to back
/// are a harsher shape than any reporter sends.
async fn ingest_vs_raw(n_instances: usize, seconds: usize, catch_up: bool) {
    let n_breakers = 50;
    let n_rows = n_instances * n_breakers * seconds;
    let base = now_ms() - 3_600_000;
    let batches: Vec<IngestBatch> = (0..seconds)
        .flat_map(|s| (0..n_instances).map(move |i| reporter_batch(i, s, n_breakers, base)))
        .collect();
    let n_transitions: usize = batches.iter().map(|b| b.transitions.len()).sum();
    let forms = [Form::Compact, Form::Json];
    let variants = [
        (Form::Compact, Ack::Early),
        (Form::Json, Ack::Early),
        (Form::Compact, Ack::Committed),
        (Form::Json, Ack::Committed),
    ];
    let posted: Vec<Vec<IngestBatch>> = (0..n_instances)
        .map(|i| {
            let instance = format!("bench-{i}");
            let seconds = batches.iter().filter(|b| b.instance == instance).cloned();
            match catch_up {
                true => backlog_batches(seconds),
                false => seconds.collect(),
            }
        })
        .collect();
    let bodies_as = |form: Form| -> Vec<Vec<Vec<u8>>> {
        (posted.iter())
            .map(|instance| instance.iter().map(|b| form.encode(b)).collect())
            .collect()
    };
    let bodies: Vec<Vec<Vec<Vec<u8>>>> = forms.iter().map(|&form| bodies_as(form)).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut raw_secs = Vec::new();
    let mut http_secs = vec![Vec::new(); variants.len()];
    let mut raw_cpu = String::new();
    let mut http_cpu = vec![String::new(); variants.len()];
    let mut commits = vec![String::new(); variants.len()];
    let form_index = |form: Form| forms.iter().position(|&f| f == form).unwrap();
    for round in 0..3 {
        let (secs, cpu) = raw_run(&dir, round, &batches, base).await;
        raw_secs.push(secs);
        raw_cpu = cpu;
        for (v, &(form, ack)) in variants.iter().enumerate() {
            let (secs, cpu, groups) = http_run(
                &dir,
                &format!("{}-{ack:?}-{round}", form.name()),
                (form, ack),
                bodies[form_index(form)].clone(),
            )
            .await;
            http_secs[v].push(secs);
            http_cpu[v] = cpu;
            commits[v] = groups;
        }
    }
    let rates = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{:.0}k", n_rows as f64 / s / 1e3))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let raw_rate = n_rows as f64 / median(&raw_secs);
    let shape = match catch_up {
        true => format!(
            ", catching up: {} batches of up to {BACKLOG_BATCH_ITEMS} items",
            posted.iter().map(Vec::len).sum::<usize>()
        ),
        false => String::new(),
    };
    println!(
        "ingest: {n_rows} aggregate rows + {n_transitions} transitions ({n_instances} instances x {n_breakers} breakers x {seconds} s{shape})"
    );
    println!(
        "  raw multi-row insert      {raw_rate:>10.0} rows/s   (median of {})",
        rates(&raw_secs)
    );
    println!("  CPU s by thread in the last round, raw:  {raw_cpu}");
    for (v, &(form, ack)) in variants.iter().enumerate() {
        let f = form_index(form);
        let n_posted = bodies[f].iter().map(Vec::len).sum::<usize>();
        let body_bytes = bodies[f].iter().flatten().map(Vec::len).sum::<usize>() / n_posted;
        let http_rate = n_rows as f64 / median(&http_secs[v]);
        let acked = match ack {
            Ack::Early => "answered early, until committed",
            Ack::Committed => "answered once committed",
        };
        println!(
            "  HTTP ingest, {:<7} ({acked}) {http_rate:>10.0} rows/s   (median of {}; {:.0} batches/s; ~{:.1} KB per batch)",
            form.name(),
            rates(&http_secs[v]),
            n_posted as f64 * http_rate / n_rows as f64,
            body_bytes as f64 / 1024.0,
        );
        println!(
            "  ratio HTTP ({}, {acked}) / raw {:>10.2}{}",
            form.name(),
            http_rate / raw_rate,
            match ack {
                Ack::Early => "   (goal >= 0.5)",
                Ack::Committed => "",
            }
        );
        println!("  {}", commits[v]);
        println!(
            "  CPU s by thread in the last round, HTTP ({}, {acked}): {}",
            form.name(),
            http_cpu[v]
        );
        let ratios: Vec<f64> = raw_secs
            .iter()
            .zip(&http_secs[v])
            .map(|(raw, http)| raw / http)
            .collect();
        let what = match form {
            Form::Compact => "the reporter's compact bodies",
            Form::Json => "JSON bodies",
        };
        let how = match catch_up {
            true => format!(" catching up (a backlog in batches of ≤ {BACKLOG_BATCH_ITEMS} items)"),
            false => String::new(),
        };
        let row = figure(
            "ingest",
            format!(
                "ingest, {n_instances} instances × {n_breakers} breakers{how}, {what}, {}: HTTP / raw insert ({http_rate:.0} rows/s)",
                match ack {
                    Ack::Early => "answered early as reporters with more to send ask (`Prefer: respond-async`), timed until all is committed",
                    Ack::Committed => "each answered once committed",
                }
            ),
            http_rate / raw_rate,
            "×",
            2,
        )
        .spread_of(&ratios, 2);
        match ack {
            Ack::Early => row.at_least(0.5, 2).record(),
            Ack::Committed => row.record(),
        }
    }
}

/// The items (aggregates and transitions) a reporter puts in one batch at most: the Rust
/// reporter's, pybreaker's and opossum's default `max_batch_items`.
const BACKLOG_BATCH_ITEMS: usize = 2_000;

/// One instance's 1 s batches (in order) as its reporter sends them from a backlog: whole
/// seconds merged while the batch holds at most [`BACKLOG_BATCH_ITEMS`] items, numbered anew.
fn backlog_batches(seconds: impl Iterator<Item = IngestBatch>) -> Vec<IngestBatch> {
    let mut merged: Vec<IngestBatch> = Vec::new();
    for second in seconds {
        let items = |b: &IngestBatch| b.aggregates.len() + b.transitions.len();
        match merged.last_mut() {
            Some(last) if items(last) + items(&second) <= BACKLOG_BATCH_ITEMS => {
                last.aggregates.extend(second.aggregates);
                last.transitions.extend(second.transitions);
            }
            _ => {
                let seq = merged.len() as u64 + 1;
                merged.push(IngestBatch { seq, ..second });
            }
        }
    }
    merged
}

/// The raw insert of `batches` into a fresh database: seconds taken and CPU by thread.
async fn raw_run(
    dir: &tempfile::TempDir,
    round: usize,
    batches: &[IngestBatch],
    base: i64,
) -> (f64, String) {
    let n_breakers = batches[0].aggregates.len();
    let raw_server = start(dir, &format!("raw-{round}.db")).await;
    let store = raw_server.state.store.clone();
    let mut tx = store.begin().await.unwrap();
    let mut breaker_ids = std::collections::HashMap::new();
    for b in 0..n_breakers {
        let name = format!("dependency-{b:03}");
        let id = Store::breaker_id(&mut tx, "bench", &name, 0).await.unwrap();
        breaker_ids.insert(name, id);
    }
    tx.commit().await.unwrap();
    type Group<'a> = (
        Vec<(i64, &'a str, &'a Aggregate)>,
        Vec<(i64, &'a str, &'a protocol::Transition)>,
    );
    let groups: Vec<Group<'_>> = batches
        .chunks(2_000 / n_breakers)
        .map(|group| {
            let rows = group
                .iter()
                .flat_map(|b| {
                    b.aggregates
                        .iter()
                        .map(|a| (breaker_ids[&a.breaker], b.instance.as_str(), a))
                })
                .collect();
            let transitions = group
                .iter()
                .flat_map(|b| {
                    b.transitions
                        .iter()
                        .map(|t| (breaker_ids[&t.breaker], b.instance.as_str(), t))
                })
                .collect();
            (rows, transitions)
        })
        .collect();
    // The same rows (and transitions) through the store's inserts, 2,000 aggregate rows per
    // transaction, on the connection the ingest writer uses.
    let cpu = cpu_by_thread();
    let started = Instant::now();
    for (rows, transitions) in &groups {
        let mut tx = store.begin_ingest().await.unwrap();
        Store::insert_aggregates(&mut tx, rows).await.unwrap();
        for &(id, instance, transition) in transitions {
            Store::insert_transition(&mut tx, id, instance, transition, base)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_since(&cpu);
    raw_server.shutdown().await.unwrap();
    (secs, cpu)
}

/// Posts each instance's `bodies` over its own connection to a fresh server, waiting for
/// each acknowledgement: seconds taken, CPU by thread, and the group commits' figures.
async fn http_run(
    dir: &tempfile::TempDir,
    name: &str,
    (form, ack): (Form, Ack),
    bodies: Vec<Vec<Vec<u8>>>,
) -> (f64, String, String) {
    let server = start(dir, &format!("http-{name}.db")).await;
    let key = backend::auth::create_api_key(&server.state.store, "bench")
        .await
        .unwrap()
        .secret;
    // Each instance on its own keep-alive connection, like a reporter. The client is plain
    // hyper rather than reqwest: reporters run on other hosts, and a leaner load generator
    // leaves more of these cores to the server it measures.
    let host = server.addr.to_string();
    let mut senders = Vec::new();
    for _ in 0..bodies.len() {
        senders.push((reporter_connection(&host).await, host.clone()));
    }
    let authorization = format!("Bearer {key}");
    let cpu = cpu_by_thread();
    let started = Instant::now();
    post_all((form, ack), bodies, senders, &authorization).await;
    // Batches answered early count once committed.
    while server.state.ingest.journaled() > 0 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_since(&cpu);
    let metrics = metrics_text(&server.url()).await;
    let metric = |name: &str| metric_value(&metrics, name);
    let n = metric("fusebox_ingest_batches_per_commit_count");
    let commits = format!(
        "group commits in the last round: {n:.0}, {:.1} batches and {:.2} ms each on average\n  {}",
        metric("fusebox_ingest_batches_per_commit_sum") / n.max(1.0),
        metric("fusebox_ingest_write_seconds_sum") * 1e3 / n.max(1.0),
        commit_stages(&metrics, secs),
    );
    server.shutdown().await.unwrap();
    (secs, cpu, commits)
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
    while backend::query::rollup::roll_up_once(&store).await.unwrap() > 0 {}
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
    let pct = |q: f64| percentile(&times, q);
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
    figure(
        "detail",
        format!(
            "breaker detail (24 h series + timeline), {:.1} M outcomes stored: p95 of {n}",
            outcomes as f64 / 1e6
        ),
        pct(0.95).as_secs_f64() * 1e3,
        "ms",
        1,
    )
    .at_most(20.0, 0)
    .record();
    server.shutdown().await.unwrap();
}

/// CPU seconds used so far by this process's threads, summed per thread name (without digits).
fn cpu_by_thread() -> std::collections::BTreeMap<String, f64> {
    let ticks = 100.0; // USER_HZ on Linux
    let mut out = std::collections::BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name: String = stat[open + 1..close]
            .chars()
            .filter(|c| !c.is_ascii_digit())
            .collect();
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let cpu: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        *out.entry(name.trim_end_matches('-').to_string())
            .or_default() += cpu / ticks;
    }
    out
}

fn cpu_since(before: &std::collections::BTreeMap<String, f64>) -> String {
    cpu_by_thread()
        .into_iter()
        .map(|(name, s)| (s - before.get(&name).copied().unwrap_or(0.0), name))
        .filter(|(s, _)| *s > 0.0)
        .map(|(s, name)| format!("{name} {s:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
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

/// The `q` quantile of sorted values (nearest rank).
fn percentile<T: Copy>(sorted: &[T], q: f64) -> T {
    sorted[((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1)]
}

/// The CPU time a process has used so far (user and system), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command's name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // utime and stime, the 14th and 15th fields of the whole line, in clock ticks.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    let per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_s
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
    let breakers: Vec<protocol::BreakerSummary> = read_all(&client, &url, "/api/v1/breakers").await;
    let pid = child.id();
    println!(
        "memory: {} live breakers, {n_instances} instances reporting every second for {seconds} s, 10 live streams",
        breakers.len()
    );
    let (rss_mb, peak_mb) = (
        status_kb(pid, "VmRSS:") as f64 / 1024.0,
        status_kb(pid, "VmHWM:") as f64 / 1024.0,
    );
    println!("  RSS {rss_mb:>6.1} MB   peak {peak_mb:>6.1} MB   (goal <= 150 MB)");
    figure(
        "memory",
        format!(
            "RSS, {} live breakers reporting every second, 10 live streams (peak {peak_mb:.0} MB)",
            breakers.len()
        ),
        rss_mb,
        "MB",
        0,
    )
    .at_most(150.0, 0)
    .record();
    child.kill().unwrap();
    child.wait().unwrap();
    for stream in streams {
        stream.abort();
    }
}

/// Every page of a list, following `Link: <…>; rel="next"`.
async fn read_all<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    path: &str,
) -> Vec<T> {
    let mut items = Vec::new();
    let mut next = Some(path.to_string());
    while let Some(path) = next.take() {
        let response = client.get(format!("{url}{path}")).send().await.unwrap();
        next = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|link| link.split_once('>'))
            .map(|(target, _)| target.trim_start_matches('<').to_string());
        let page: Vec<T> = response.json().await.unwrap();
        items.extend(page);
    }
    items
}

/// Starts `fusebox serve` on `database`; the child and its URL.
fn serve(database: &str) -> (std::process::Child, String) {
    serve_with(database, &[])
}

/// [`serve`] with more environment variables.
fn serve_with(database: &str, env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fusebox"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--database",
            database,
            "--anonymous-viewer",
        ])
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
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
    (child, url)
}

/// The token of a new admin of the database at `database`, made by `fusebox users add`.
fn admin_token(database: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fusebox"))
        .args(["users", "add", "bench", "--admin", "--database", database])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
}

/// The `/metrics` text of the server at `url` (its benches' servers let anonymous viewers read).
async fn metrics_text(url: &str) -> String {
    let response = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.text().await.unwrap()
}

/// The value of the sample `name` (with its labels, if any) in a `/metrics` text; 0 when absent.
fn metric_value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// Where the ingest writer's time went, from a `/metrics` text: the commits, the batches per
/// commit, and each stage's share of `seconds` of wall time with its mean.
fn commit_stages(metrics: &str, seconds: f64) -> String {
    let metric = |name: &str| metric_value(metrics, name);
    let commits = metric("fusebox_ingest_write_seconds_count");
    let batches = metric("fusebox_ingest_batches_per_commit_sum");
    let mut line = format!(
        "writer: {commits:.0} commits of {:.1} batches on average; busy {:.0} % of the wall time:",
        batches / commits.max(1.0),
        100.0 * metric("fusebox_ingest_write_seconds_sum") / seconds
    );
    for stage in [
        "begin",
        "claim",
        "breakers",
        "stage",
        "transitions",
        "states",
        "aggregates",
        "commit",
        "publish",
    ] {
        let labels = format!("{{stage=\"{stage}\"}}");
        let sum = metric(&format!("fusebox_ingest_commit_stage_seconds_sum{labels}"));
        let count = metric(&format!(
            "fusebox_ingest_commit_stage_seconds_count{labels}"
        ));
        line += &format!(
            " {stage} {:.0} % ({:.2} ms)",
            100.0 * sum / seconds,
            1e3 * sum / count.max(1.0)
        );
    }
    // A commit that also checkpoints the log (SQLite) takes tens of ms in its `COMMIT` alone.
    let commit = "fusebox_ingest_commit_stage_seconds";
    let slow = metric(&format!("{commit}_count{{stage=\"commit\"}}"))
        - metric(&format!("{commit}_bucket{{stage=\"commit\",le=\"0.02\"}}"));
    line += &format!("; COMMIT over 20 ms: {slow:.0}");
    line
}

/// 10,000 live breakers: 1,000 instances (10 services × 100) × 10 breakers, each instance
/// posting its batch every second: RSS, and whether ingest keeps up (every batch
/// acknowledged, none refused with 503, and how long the acknowledgements took); meanwhile 50
/// live-stream clients and a transition posted to them every 250 ms ([`fleet_stream`]).
/// `spread`: each instance posts at a phase of the second of its own, as reporters started at
/// different moments do; otherwise all of them at the same instant each second (a burst of
/// 1,000 requests, as after they all reconnected at once).
///
/// Each figure is the median of three rounds (one with `quick`), each on a server and
/// database of its own, with the range of the rounds beside it: a p99 of about a hundred
/// probes is the second-slowest of them, and one round's says as much of the round as of
/// the server.
async fn memory_fleet(quick: bool, spread: bool) {
    let n_rounds = if quick { 1 } else { 3 };
    let mut rounds = Vec::new();
    for round in 1..=n_rounds {
        rounds.push(fleet_round(quick, spread, (round, n_rounds)).await);
    }
    let timing = match spread {
        true => "phases spread over the second",
        false => "all posting at the same instant",
    };
    let first = &rounds[0];
    let fleet = format!(
        "{} live breakers ({} instances × {}, {timing})",
        first.n_breakers, first.n_instances, first.breakers_each
    );
    let of_rounds = |figure: fn(&FleetRound) -> f64| {
        let values: Vec<f64> = rounds.iter().map(figure).collect();
        (median(&values), values)
    };
    let (rss, rss_rounds) = of_rounds(|r| r.rss_mb);
    let peak = rounds.iter().map(|r| r.peak_mb).fold(0.0, f64::max);
    figure(
        "memory",
        format!("RSS, {fleet} reporting every second (peak {peak:.0} MB)"),
        rss,
        "MB",
        0,
    )
    .at_most(300.0, 0)
    .spread_of(&rss_rounds, 0)
    .record();
    let n_batches: usize = rounds.iter().map(|r| r.n_batches).sum();
    let n_overloaded: u64 = rounds.iter().map(|r| r.n_overloaded).sum();
    let n_failed: u64 = rounds.iter().map(|r| r.n_failed).sum();
    figure(
        "memory",
        format!(
            "{fleet}: batches refused with 503 (of {n_batches} in {n_rounds} rounds; \
             {n_failed} failed otherwise)"
        ),
        n_overloaded as f64,
        "",
        0,
    )
    .goal(
        "0, every batch acknowledged",
        n_overloaded == 0 && n_failed == 0,
    )
    .record();
    let (ack, ack_rounds) = of_rounds(|r| r.ack_p99_ms);
    let ack_max = rounds.iter().map(|r| r.ack_max_ms).fold(0.0, f64::max);
    figure(
        "memory",
        format!("{fleet}: batch acknowledged, p99"),
        ack,
        "ms",
        1,
    )
    .note(format!(
        "— (keeping up: each instance posts every 1 s; max {ack_max:.0} ms)"
    ))
    .spread_of(&ack_rounds, 1)
    .record();
    let probed: Vec<&fleet_stream::Figures> =
        rounds.iter().filter_map(|r| r.stream.as_ref()).collect();
    let p99s: Vec<f64> = probed.iter().map(|f| f.p99_ms).collect();
    let missed: usize = probed.iter().map(|f| f.missed).sum();
    let arrivals = probed.iter().map(|f| f.arrivals).min().unwrap_or(0);
    let mut row = figure(
        "memory",
        format!(
            "{fleet}: transition posted → event at each of {} SSE clients (not browsers), \
             p99 of each round's {arrivals}+ arrivals",
            fleet_stream::N_CLIENTS
        ),
        median(&p99s),
        "ms",
        1,
    )
    .at_most(50.0, 0)
    .spread_of(&p99s, 1);
    if missed > 0 || probed.len() < rounds.len() {
        row = row.goal(
            format!("≤ 50 ms, every event arriving ({missed} missed)"),
            false,
        );
    }
    row.record();
}

/// What one round of [`memory_fleet`] measured.
struct FleetRound {
    n_breakers: usize,
    n_instances: usize,
    breakers_each: usize,
    rss_mb: f64,
    peak_mb: f64,
    n_batches: usize,
    n_overloaded: u64,
    n_failed: u64,
    ack_p99_ms: f64,
    ack_max_ms: f64,
    stream: Option<fleet_stream::Figures>,
}

/// One round of [`memory_fleet`], on a server and database of its own; prints its figures.
async fn fleet_round(quick: bool, spread: bool, (round, n_rounds): (usize, usize)) -> FleetRound {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("fleet.db").display().to_string();
    let token = admin_token(&database);
    // Every instance posts from this one address, over a connection of its own: more than the
    // 512 connections per address a server allows by default.
    let (mut child, url) = serve_with(&database, &[("FUSEBOX_MAX_CONNECTIONS_PER_IP", "2048")]);
    let pid = child.id();
    let client = reqwest::Client::new();
    let (n_services, n_instances, n_breakers) = (10, 100, 10);
    let seconds = if quick { 10 } else { 30 };
    let overloaded = std::sync::Arc::new(AtomicU64::new(0));
    let failed = std::sync::Arc::new(AtomicU64::new(0));
    let probe = fleet_stream::start(&url, &token).await;
    let started = now_ms();
    let mut tasks = Vec::new();
    let n_reporters = n_services * n_instances;
    for service in 0..n_services {
        for instance in 0..n_instances {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            let (overloaded, failed) = (overloaded.clone(), failed.clone());
            let phase = match spread {
                true => {
                    Duration::from_secs(1) * (instance * n_services + service) as u32
                        / n_reporters as u32
                }
                false => Duration::ZERO,
            };
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(phase).await;
                let mut ticker = tokio::time::interval(Duration::from_secs(1));
                let mut times = Vec::with_capacity(seconds);
                for seq in 1..=seconds as u64 {
                    ticker.tick().await;
                    let mut b = batch(instance, seq, n_breakers, started + seq as i64 * 1000);
                    b.service = format!("service-{service:02}");
                    for (idx, a) in b.aggregates.iter_mut().enumerate() {
                        a.breaker = format!("dependency-{:04}", instance * n_breakers + idx);
                    }
                    let sent = Instant::now();
                    // In the compact form, as the Rust reporter sends it.
                    let response = client
                        .post(format!("{url}/api/v1/ingest"))
                        .bearer_auth(&token)
                        .header("content-type", FLEET_FORM.content_type())
                        .body(FLEET_FORM.encode(&b))
                        .send()
                        .await
                        .unwrap();
                    times.push(sent.elapsed());
                    if response.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                        overloaded.fetch_add(1, Ordering::Relaxed);
                    } else if !response.status().is_success() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                times
            }));
        }
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await.unwrap());
    }
    let cpu_s = cpu_seconds(pid);
    let load_s = (now_ms() - started) as f64 / 1e3;
    times.sort();
    let pct = |q: f64| percentile(&times, q);
    let live_kb = status_kb(pid, "VmRSS:");
    let peak_kb = status_kb(pid, "VmHWM:");
    let timing = match spread {
        true => "phases spread over the second",
        false => "all posting at the same instant",
    };
    // The header comes first: the writer's and the stream's lines below are this run's.
    println!(
        "memory, large fleet: {} breakers, {} instances x {n_breakers} breakers reporting every second for {seconds} s, {timing} (round {round} of {n_rounds})",
        n_reporters * n_breakers,
        n_reporters
    );
    println!(
        "  {}",
        commit_stages(&metrics_text(&url).await, seconds as f64)
    );
    let stream = probe.finish().await;
    let breakers: Vec<protocol::BreakerSummary> = read_all(&client, &url, "/api/v1/breakers").await;
    // The probe's breakers are not the fleet's.
    let n_live = breakers.iter().filter(|b| b.service != "probe").count();
    println!("  {n_live} live breakers listed");
    println!(
        "  RSS {:>6.1} MB   peak {:>6.1} MB   (goal <= 300 MB); server CPU {:.2} s a second of load ({cpu_s:.1} s in all)",
        live_kb as f64 / 1024.0,
        peak_kb as f64 / 1024.0,
        cpu_s / load_s.max(1e-9)
    );
    let (n_overloaded, n_failed) = (
        overloaded.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    println!(
        "  {} batches posted: {n_overloaded} refused with 503, {n_failed} failed otherwise; acknowledged in {:.1} ms p50, {:.1} ms p99, {:.1} ms at most",
        times.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    child.kill().unwrap();
    child.wait().unwrap();
    FleetRound {
        n_breakers: n_live,
        n_instances: n_services * n_instances,
        breakers_each: n_breakers,
        rss_mb: live_kb as f64 / 1024.0,
        peak_mb: peak_kb as f64 / 1024.0,
        n_batches: times.len(),
        n_overloaded,
        n_failed,
        ack_p99_ms: pct(0.99).as_secs_f64() * 1e3,
        ack_max_ms: pct(1.0).as_secs_f64() * 1e3,
        stream,
    }
}

/// 10,000 breakers: RSS before and after they report, and after one read of every page of
/// the lists and of `/metrics`.
async fn memory_per_breaker(quick: bool) {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("large.db").display().to_string();
    let token = admin_token(&database);
    let (mut child, url) = serve(&database);
    let pid = child.id();
    let mb = |kb: u64| kb as f64 / 1024.0;
    let client = reqwest::Client::new();
    // Let the server settle before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let baseline_kb = status_kb(pid, "VmRSS:");
    let (n_services, n_instances, n_breakers) = (10, 10, 100);
    let seconds = if quick { 5 } else { 15 };
    let started = now_ms();
    let mut tasks = Vec::new();
    for service in 0..n_services {
        for instance in 0..n_instances {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut ticker = tokio::time::interval(Duration::from_secs(1));
                for seq in 1..=seconds as u64 {
                    ticker.tick().await;
                    let mut b = batch(instance, seq, n_breakers, started + seq as i64 * 1000);
                    b.service = format!("service-{service:02}");
                    for (idx, a) in b.aggregates.iter_mut().enumerate() {
                        a.breaker = format!("dependency-{:04}", instance * n_breakers + idx);
                    }
                    // In the compact form, as the Rust reporter sends it.
                    let response = client
                        .post(format!("{url}/api/v1/ingest"))
                        .bearer_auth(&token)
                        .header("content-type", FLEET_FORM.content_type())
                        .body(FLEET_FORM.encode(&b))
                        .send()
                        .await
                        .unwrap();
                    assert!(response.status().is_success(), "{}", response.status());
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let live_kb = status_kb(pid, "VmRSS:");
    let breakers: Vec<protocol::BreakerSummary> = read_all(&client, &url, "/api/v1/breakers").await;
    let lines: Vec<protocol::Sparkline> = read_all(&client, &url, "/api/v1/sparklines").await;
    let services: Vec<protocol::ServiceSummary> = read_all(&client, &url, "/api/v1/services").await;
    let metrics = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let after_kb = status_kb(pid, "VmRSS:");
    let n = breakers.len();
    println!(
        "memory per breaker: {n} breakers ({} services, {} sparklines), {n_instances} instances per service reporting every second for {seconds} s",
        services.len(),
        lines.len()
    );
    println!(
        "  RSS idle {:>6.1} MB   live {:>6.1} MB   after reading every list and /metrics {:>6.1} MB   peak {:>6.1} MB",
        mb(baseline_kb),
        mb(live_kb),
        mb(after_kb),
        mb(status_kb(pid, "VmHWM:"))
    );
    println!(
        "  {:>6.0} bytes of RSS per live breaker ({:.0} after the reads); /metrics {:.1} MB, {:.0} bytes per breaker",
        (live_kb.saturating_sub(baseline_kb) * 1024) as f64 / n as f64,
        (after_kb.saturating_sub(baseline_kb) * 1024) as f64 / n as f64,
        metrics.len() as f64 / 1e6,
        metrics.len() as f64 / n as f64
    );
    figure(
        "memory",
        format!(
            "RSS per live breaker, {n} breakers ({:.1} MB idle, {:.1} MB live)",
            mb(baseline_kb),
            mb(live_kb)
        ),
        (live_kb.saturating_sub(baseline_kb) * 1024) as f64 / n as f64 / 1024.0,
        "KB",
        1,
    )
    .note("— (docs/protocol.md's budget: about 18 KB)")
    .record();
    child.kill().unwrap();
    child.wait().unwrap();
}

fn main() {
    // `cargo bench` passes `--bench`; `quick` shortens every part.
    let quick = std::env::args().any(|a| a == "quick");
    let parts = [
        "ingest",
        "detail",
        "memory",
        "fleet",
        "replicas",
        "retention",
        "prune",
    ];
    let named: Vec<String> = std::env::args()
        .filter(|a| parts.contains(&a.as_str()))
        .collect();
    let run = |part: &str| named.is_empty() || named.iter().any(|n| n == part);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if run("ingest") {
            // Same number of rows both ways: 120,000 (24,000 quick).
            let scale = if quick { 1 } else { 5 };
            ingest_vs_raw(40, 12 * scale, false).await;
            ingest_vs_raw(8, 60 * scale, false).await;
            ingest_vs_raw(8, 60 * scale, true).await;
        }
        if run("detail") {
            detail_query(quick).await;
        }
        if run("memory") {
            memory(quick).await;
        }
        if run("memory") || run("fleet") {
            memory_fleet(quick, true).await;
            memory_fleet(quick, false).await;
        }
        if run("memory") {
            memory_per_breaker(quick).await;
        }
        if run("replicas") {
            replicas::replicas(quick).await;
        }
        if run("prune") {
            prune::prune(quick).await;
        }
        if run("retention") {
            retention::retention(quick).await;
        }
    });
}
