//! Transition ingested → webhook delivered, on loopback: a real server with a temporary SQLite
//! file and a webhook channel, a receiver in the same process, one breaker tripping at a time.
//!
//! `cargo xtask bench --only alerts` (that is, `cargo bench -p backend --bench alerts`) prints
//! p50, p99 and max (goal: p99 ≤ 1 s).
//! `FUSEBOX_BENCH_ALERTS=N` sets the number of trips (default 300). Under `cargo xtask bench`
//! the p99 is also a row of the run's goal/figure summary.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use backend::server::{self, ServerOptions};
use tokio::sync::mpsc;

#[path = "../../xtask/src/bench/row.rs"]
mod summary;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn receive(State(tx): State<mpsc::UnboundedSender<(Instant, String)>>, body: Bytes) {
    let at = Instant::now();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    if value["event"] == "firing" {
        let breaker = value["alert"]["breakers"][0]["breaker"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let _ = tx.send((at, breaker));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n_trips: usize = std::env::var("FUSEBOX_BENCH_ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(tx);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let hook = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)), url);
    options.alerts.channels = vec![protocol::AlertChannel {
        name: "bench".into(),
        kind: protocol::AlertChannelKind::Webhook,
        url: hook,
        secret: Some("bench-secret".into()),
        rules: vec![],
    }];
    let running = server::start(options).await?;
    let key = backend::auth::create_api_key(&running.state.store, "bench")
        .await?
        .secret;
    let client = reqwest::Client::new();
    let ingest = format!("{}/api/v1/ingest", running.url());
    let first_seq = now_ms() as u64;

    let mut latencies = Vec::with_capacity(n_trips);
    for i in 0..n_trips + 10 {
        let breaker = format!("dependency-{i}");
        let batch = serde_json::json!({
            "service": "bench", "instance": "bench-1", "seq": first_seq + i as u64, "sent_at_ms": now_ms(),
            "transitions": [{
                "breaker": breaker, "at_ms": now_ms(), "from": "closed", "to": "open",
                "trigger": {"kind": "failure_rate", "value": 0.6, "threshold": 0.5},
                "config_version": 1,
            }],
        });
        let started = Instant::now();
        client
            .post(&ingest)
            .bearer_auth(&key)
            .json(&batch)
            .send()
            .await?
            .error_for_status()?;
        loop {
            let (at, name) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await?
                .expect("the receiver runs");
            if name == breaker {
                // The first few trips warm up connections and caches.
                if i >= 10 {
                    latencies.push(at - started);
                }
                break;
            }
        }
    }
    latencies.sort();
    println!(
        "alerts: transition ingested -> webhook delivered on loopback, {} trips: \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    summary::Row::new(
        "alerts",
        format!(
            "transition ingested → webhook delivered (loopback), p99 of {} trips",
            latencies.len()
        ),
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        "ms",
        1,
    )
    .at_most(1000.0, 0)
    .record();
    running.shutdown().await?;
    Ok(())
}
