//! Crash soak; prints figures, asserts nothing. Run with
//! `cargo xtask bench --only soak` (that is, `cargo bench -p backend --bench soak`;
//! `-- --rounds N` for another number of kills).
//!
//! A real `fusebox serve` process on one SQLite file is killed with SIGKILL 20 times while
//! instances push breaker events at a paced 10,000 events/s (an event: one per-second aggregate
//! or one transition). Each instance behaves as the reporter does: a batch whose request failed
//! is sent again, with the same `seq`, once the server is back. After the last round the file
//! is read directly and compared with what the server acknowledged:
//! - lost: a batch acknowledged (200, or 202 once journaled: half of the instances ask for an
//!   early answer, as a reporter with more to send does) but not stored, or stored without all
//!   of its events (the server is started once more first, committing what its journal holds);
//! - duplicated: a batch's events stored more than once (a resend must be recognised);
//! - partial: a stored batch with fewer events than it carried.
//!
//! Printed: the events acknowledged, the rate reached per round (median), the restart time
//! (median, from spawn to the first accepted connection), and the three counts above; under
//! `cargo xtask bench` also as rows of the run's goal/figure summary.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backend::time::now_ms;

#[path = "../../xtask/src/bench/row.rs"]
mod summary;

const BIN: &str = env!("CARGO_BIN_EXE_fusebox");
/// Reporting instances, each a task sending batches at its share of the rate.
const INSTANCES: usize = 8;
/// Breakers per instance: one aggregate each per batch, plus one transition per batch.
const BREAKERS: usize = 49;
const EVENTS_PER_BATCH: usize = BREAKERS + 1;
/// The offered load.
const EVENTS_PER_S: usize = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(20usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(soak(rounds));
}

fn cli(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("fusebox runs");
    assert!(out.status.success(), "fusebox {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `fusebox serve` on an ephemeral port; the child, its URL, and how long it took.
fn serve(database: &str) -> (Child, String, Duration) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--database", database])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("fusebox serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("fusebox printed its URL").unwrap();
        if let Some(idx) = line.find("http://") {
            break line[idx..].trim().to_string();
        }
    };
    let took = started.elapsed();
    std::thread::spawn(move || for _ in lines {});
    (child, url, took)
}

fn batch(instance: &str, seq: u64, base_ms: i64) -> serde_json::Value {
    let at_ms = base_ms + seq as i64 * 1_000;
    serde_json::json!({
        "service": "soak", "instance": instance, "seq": seq, "sent_at_ms": now_ms(),
        "aggregates": (0..BREAKERS).map(|breaker| serde_json::json!({
            "breaker": format!("dep-{breaker:02}"), "start_ms": at_ms, "interval_ms": 1000,
            "counts": {"success": 90, "failure": 10}, "state": "closed",
            "latency": {"counts": [10, 20, 30, 40]}
        })).collect::<Vec<_>>(),
        "transitions": [{"breaker": "dep-00", "at_ms": at_ms,
                         "from": if seq.is_multiple_of(2) { "open" } else { "closed" },
                         "to": if seq.is_multiple_of(2) { "closed" } else { "open" }, "config_version": 1}]
    })
}

#[derive(Default)]
struct Tally {
    /// (instance, seq) acknowledged, with how many times.
    acked: BTreeMap<(String, u64), u32>,
    /// Acknowledgements that said `duplicate` (a resend of a batch stored before the kill).
    duplicate_acks: u64,
    /// Batches answered early (202: journaled, not committed yet).
    early_acks: u64,
}

async fn soak(rounds: usize) {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("soak.db").display().to_string();
    let key = cli(&[
        "keys",
        "create",
        "--service",
        "soak",
        "--database",
        &database,
    ])
    .lines()
    .last()
    .unwrap()
    .trim()
    .to_string();
    let base_ms = now_ms() - 6 * 3_600_000;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let tally = Arc::new(Mutex::new(Tally::default()));
    // Each instance's next seq; a batch that failed stays the next one, so it is resent.
    let next_seq: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![1; INSTANCES]));
    let batches_per_s = EVENTS_PER_S as f64 / EVENTS_PER_BATCH as f64 / INSTANCES as f64;
    let period = Duration::from_secs_f64(1.0 / batches_per_s);
    let mut rates = Vec::new();
    let mut restarts = Vec::new();
    println!(
        "soak: {rounds} SIGKILLs, {INSTANCES} instances × {EVENTS_PER_BATCH} events per batch, \
         offered {EVENTS_PER_S} events/s"
    );
    for round in 0..rounds {
        let (mut child, url, took) = serve(&database);
        restarts.push(took.as_secs_f64() * 1e3);
        // Kill after 1.0–2.9 s, a different moment each round.
        let kill_after = Duration::from_millis(1_000 + (round as u64 * 379) % 1_900);
        let acked_before: u64 = tally.lock().unwrap().acked.len() as u64;
        let started = Instant::now();
        let mut senders = Vec::new();
        for instance in 0..INSTANCES {
            let (client, url, key) = (client.clone(), url.clone(), key.clone());
            let (tally, next_seq) = (tally.clone(), next_seq.clone());
            senders.push(tokio::spawn(async move {
                let name = format!("soak-{instance}");
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let seq = next_seq.lock().unwrap()[instance];
                    let mut request = client
                        .post(format!("{url}/api/v1/ingest"))
                        .bearer_auth(&key)
                        .json(&batch(&name, seq, base_ms));
                    if instance % 2 == 0 {
                        request = request.header("prefer", "respond-async");
                    }
                    let Ok(response) = request.send().await else {
                        return;
                    };
                    if !response.status().is_success() {
                        return;
                    }
                    let early = response.status() == reqwest::StatusCode::ACCEPTED;
                    let Ok(ack) = response.json::<serde_json::Value>().await else {
                        return;
                    };
                    let mut tally = tally.lock().unwrap();
                    *tally.acked.entry((name.clone(), seq)).or_default() += 1;
                    if ack["duplicate"] == true {
                        tally.duplicate_acks += 1;
                    }
                    tally.early_acks += u64::from(early);
                    next_seq.lock().unwrap()[instance] = seq + 1;
                }
            }));
        }
        tokio::time::sleep(kill_after).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let elapsed = started.elapsed().as_secs_f64();
        for sender in senders {
            sender.await.unwrap();
        }
        let acked_now = tally.lock().unwrap().acked.len() as u64;
        rates.push((acked_now - acked_before) as f64 * EVENTS_PER_BATCH as f64 / elapsed);
    }

    // One more start commits what the journal of the last kill holds: done once its folder
    // holds only the new server's segment.
    let (mut child, _, _) = serve(&database);
    let journal = std::path::PathBuf::from(format!("{database}.ingest-journal"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(&journal).map_or(0, |dir| dir.count()) > 1 {
        assert!(
            Instant::now() < deadline,
            "the journal was not committed within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Read the file as the server left it.
    let store = backend::store::Store::open(&format!("sqlite://{database}"))
        .await
        .unwrap();
    let stored: BTreeMap<(String, u64), (i64, i64)> = sqlx::query_as::<_, (String, i64, i64, i64)>(
        "SELECT instance, seq, n_aggregates, n_transitions FROM batches WHERE service = 'soak'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(instance, seq, a, t)| ((instance, seq as u64), (a, t)))
    .collect();
    let aggregates: BTreeMap<(String, i64), i64> = sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT instance, start_ms, COUNT(*) FROM aggregates GROUP BY instance, start_ms",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(instance, start_ms, n)| ((instance, start_ms), n))
    .collect();
    let transitions: BTreeMap<(String, i64), i64> = sqlx::query_as::<_, (String, i64, i64)>(
        "SELECT instance, at_ms, COUNT(*) FROM transitions GROUP BY instance, at_ms",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(instance, at_ms, n)| ((instance, at_ms), n))
    .collect();
    let tally = tally.lock().unwrap();
    let (mut lost, mut duplicated, mut partial) = (0u64, 0u64, 0u64);
    for (instance, seq) in tally.acked.keys() {
        let at_ms = base_ms + *seq as i64 * 1_000;
        let n_aggregates = aggregates
            .get(&(instance.clone(), at_ms))
            .copied()
            .unwrap_or(0);
        let n_transitions = transitions
            .get(&(instance.clone(), at_ms))
            .copied()
            .unwrap_or(0);
        if !stored.contains_key(&(instance.clone(), *seq))
            || n_aggregates < BREAKERS as i64
            || n_transitions < 1
        {
            lost += 1;
        }
    }
    for ((instance, seq), (n_aggregates, n_transitions)) in &stored {
        let at_ms = base_ms + *seq as i64 * 1_000;
        let have_aggregates = aggregates
            .get(&(instance.clone(), at_ms))
            .copied()
            .unwrap_or(0);
        let have_transitions = transitions
            .get(&(instance.clone(), at_ms))
            .copied()
            .unwrap_or(0);
        if have_aggregates > *n_aggregates || have_transitions > *n_transitions {
            duplicated += 1;
        }
        if have_aggregates < BREAKERS as i64 || have_transitions < 1 {
            partial += 1;
        }
    }
    let events_acked = tally.acked.len() * EVENTS_PER_BATCH;
    println!(
        "soak: {} batches ({events_acked} events) acknowledged over {rounds} rounds ({} answered \
         early); {} resends answered `duplicate`",
        tally.acked.len(),
        tally.early_acks,
        tally.duplicate_acks
    );
    println!(
        "soak: events/s acknowledged per round: median {:.0} (min {:.0}, max {:.0}); offered {EVENTS_PER_S}",
        summary::median(&rates),
        rates.iter().copied().fold(f64::INFINITY, f64::min),
        rates.iter().copied().fold(0.0, f64::max)
    );
    println!(
        "soak: restart to listening: median {:.0} ms",
        summary::median(&restarts)
    );
    println!(
        "soak: lost {lost}, duplicated {duplicated}, partial {partial} (of {} stored batches)",
        stored.len()
    );
    summary::Row::new(
        "soak",
        format!(
            "{rounds} SIGKILLs under {EVENTS_PER_S} events/s: batches lost + duplicated + partial \
             ({lost} + {duplicated} + {partial} of {} stored)",
            stored.len()
        ),
        (lost + duplicated + partial) as f64,
        "",
        0,
    )
    .goal("0", lost + duplicated + partial == 0)
    .record();
    summary::Row::new(
        "soak",
        format!("{rounds} SIGKILLs: events/s acknowledged per round, median"),
        summary::median(&rates),
        "events/s",
        0,
    )
    .note(format!("— (offered {EVENTS_PER_S})"))
    .spread_of(&rates, 0)
    .record();
}
