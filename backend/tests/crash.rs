//! A `fusebox serve` process killed with SIGKILL under ingest load loses no acknowledged batch.
//!
//! This test lives in the backend package (not in `tests/`) because it runs the `fusebox`
//! binary itself, which Cargo only hands to the binary's own package's tests.

use backend::time::now_ms;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_fusebox");
/// `fusebox serve` prints its URL this soon after it starts.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// The senders get this many batches acknowledged before the kill…
const ACKED_BEFORE_KILL: usize = 200;
/// …within this long.
const LOAD_DEADLINE: Duration = Duration::from_secs(60);
/// The senders stop this soon after the server is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// Runs a CLI command and returns its stdout.
fn cli(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("fusebox runs");
    assert!(
        out.status.success(),
        "fusebox {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Starts `fusebox serve` on an ephemeral port; returns the child and its base URL.
fn serve(database: &str) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0", "--database", database])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("fusebox serve starts");
    let stdout = child.stdout.take().unwrap();
    // A thread reads stdout, so waiting for the URL can have a deadline; it keeps draining
    // after the URL so the child never blocks on a full pipe.
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(idx) = line.find("http://") {
                let _ = url_tx.send(line[idx..].trim().to_string());
            }
        }
    });
    let url = match url_rx.recv_timeout(START_DEADLINE) {
        Ok(url) => url,
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fusebox serve printed no URL within {START_DEADLINE:?} ({err})");
        }
    };
    (child, url)
}

fn batch(instance: &str, seq: u64, base_ms: i64) -> serde_json::Value {
    serde_json::json!({
        "service": "svc", "instance": instance, "seq": seq, "sent_at_ms": now_ms(),
        "aggregates": (0..20).map(|breaker| serde_json::json!({
            "breaker": format!("b{breaker}"), "start_ms": base_ms + seq as i64 * 1000, "interval_ms": 1000,
            "counts": {"success": seq, "failure": 15}, "state": "closed",
            "latency": {"counts": [1, 2, 3, 4, 5]}
        })).collect::<Vec<_>>(),
        "transitions": [{"breaker": "b0", "at_ms": base_ms + seq as i64 * 1000,
                         "from": if seq.is_multiple_of(2) { "open" } else { "closed" },
                         "to": if seq.is_multiple_of(2) { "closed" } else { "open" }, "config_version": 1}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_loses_no_acknowledged_batch() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("crash.db").display().to_string();
    let created = cli(&[
        "keys",
        "create",
        "--service",
        "svc",
        "--database",
        &database,
    ]);
    let key = created.lines().last().unwrap().trim().to_string();
    assert!(key.starts_with("fbk_"), "{created}");

    let (mut child, url) = serve(&database);
    let acked: Arc<Mutex<BTreeSet<(String, u64)>>> = Default::default();
    let base_ms = now_ms() - 3_600_000;
    let client = reqwest::Client::new();
    let mut senders = Vec::new();
    for sender in 0..4 {
        let (client, url, key, acked) = (client.clone(), url.clone(), key.clone(), acked.clone());
        senders.push(tokio::spawn(async move {
            let instance = format!("i-{sender}");
            for seq in 1.. {
                let res = client
                    .post(format!("{url}/api/v1/ingest"))
                    .bearer_auth(&key)
                    .json(&batch(&instance, seq, base_ms))
                    .send()
                    .await;
                match res {
                    Ok(response) if response.status().is_success() => {
                        acked.lock().unwrap().insert((instance.clone(), seq));
                    }
                    // The server is gone: stop sending.
                    _ => return,
                }
            }
        }));
    }
    // Kill it mid-load, once a good number of batches have been acknowledged.
    let load_started = tokio::time::Instant::now();
    loop {
        let n_acked = acked.lock().unwrap().len();
        if n_acked >= ACKED_BEFORE_KILL {
            break;
        }
        if load_started.elapsed() >= LOAD_DEADLINE
            || senders.iter().all(|sender| sender.is_finished())
        {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "only {n_acked} batches acknowledged before the kill ({:?} of load; \
                 senders still sending: {})",
                load_started.elapsed(),
                senders
                    .iter()
                    .filter(|sender| !sender.is_finished())
                    .count()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    tokio::time::timeout(STOP_DEADLINE, async {
        for sender in senders {
            sender.await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the senders still sent {STOP_DEADLINE:?} after the kill"));
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= ACKED_BEFORE_KILL);

    // Restart on the same file: every acknowledged batch is there, with its rows.
    let (mut child, url) = serve(&database);
    let health = reqwest::get(format!("{url}/healthz")).await.unwrap();
    assert!(health.status().is_success());
    let store = backend::store::Store::open(&format!("sqlite://{database}"))
        .await
        .unwrap();
    let stored: BTreeSet<(String, u64)> = sqlx::query_as::<_, (String, i64)>(
        "SELECT instance, seq FROM batches WHERE service = 'svc'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .into_iter()
    .map(|(instance, seq)| (instance, seq as u64))
    .collect();
    let missing: Vec<_> = acked.difference(&stored).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    for (instance, seq) in &acked {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM aggregates WHERE instance = ? AND start_ms = ? AND success = ?",
        )
        .bind(instance)
        .bind(base_ms + *seq as i64 * 1000)
        .bind(*seq as i64)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(n, 20, "batch {instance}/{seq} lost aggregates");
    }
    // Stored batches are whole: no batch row without its aggregates (one transaction each).
    let orphans: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM batches b WHERE b.n_aggregates !=
             (SELECT COUNT(*) FROM aggregates a WHERE a.instance = b.instance AND a.start_ms = ? + b.seq * 1000)",
    )
    .bind(base_ms)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(orphans, 0);
    child.kill().unwrap();
    child.wait().unwrap();
}
