//! Tests of the reporter against a stand-in ingest server that is down, slow, or answers errors.

use std::sync::atomic::AtomicUsize;

use axum::Json;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::*;
use crate::config::{Config, Window};
use crate::machine::Mode;
use crate::{CallError, CircuitBreaker};

/// A stand-in ingest server: answers the first `n_failures` requests with `failure_status`
/// (or stalls them for `stall` first), then acknowledges, and passes every request on.
#[derive(Clone)]
struct Server {
    n_failures: usize,
    failure_status: StatusCode,
    stall: Duration,
    /// While set, every request gets a 503.
    down: Arc<std::sync::atomic::AtomicBool>,
    n_requests: Arc<AtomicUsize>,
    received: mpsc::UnboundedSender<(Option<String>, protocol::IngestBatch)>,
    /// Whether compact bodies are taken; else they get a 415, as from a server older than
    /// the form.
    takes_compact: bool,
    /// The `Content-Type` of every request that reached the handler, in order.
    content_types: Arc<Mutex<Vec<String>>>,
    /// Per request, in order: the batch's seq and whether it asked for an early answer.
    prefers: Arc<Mutex<Vec<(u64, bool)>>>,
}

async fn ingest(
    AxumState(server): AxumState<Server>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let content_type = headers
        .get("content-type")
        .map_or("", |value| value.to_str().unwrap())
        .to_owned();
    (server.content_types.lock().unwrap()).push(content_type.clone());
    let batch: protocol::IngestBatch = if content_type == protocol::compact::MEDIA_TYPE {
        if !server.takes_compact {
            return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected JSON").into_response();
        }
        protocol::compact::decode(&body).unwrap()
    } else {
        assert_eq!(content_type, "application/json");
        serde_json::from_slice(&body).unwrap()
    };
    let prefers = headers
        .get("prefer")
        .map(|v| v.to_str().unwrap().to_owned());
    (server.prefers.lock().unwrap()).push((batch.seq, prefers.as_deref() == Some("respond-async")));
    let n = server.n_requests.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .map(|value| value.to_str().unwrap().to_owned());
    let _ = server.received.send((auth, batch.clone()));
    if server.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
    }
    if n < server.n_failures {
        if !server.stall.is_zero() {
            tokio::time::sleep(server.stall).await;
        }
        return (server.failure_status, "try later").into_response();
    }
    Json(protocol::IngestAck {
        seq: batch.seq,
        duplicate: false,
    })
    .into_response()
}

type Received = mpsc::UnboundedReceiver<(Option<String>, protocol::IngestBatch)>;

async fn serve(
    n_failures: usize,
    failure_status: StatusCode,
    stall: Duration,
) -> (String, Received) {
    let (endpoint, received, _down) = serve_switchable(n_failures, failure_status, stall).await;
    (endpoint, received)
}

async fn serve_switchable(
    n_failures: usize,
    failure_status: StatusCode,
    stall: Duration,
) -> (String, Received, Arc<std::sync::atomic::AtomicBool>) {
    let (endpoint, received, down, _) = serve_watched(n_failures, failure_status, stall).await;
    (endpoint, received, down)
}

/// [`serve_switchable`], with what each request asked for (see `Server::prefers`).
async fn serve_watched(
    n_failures: usize,
    failure_status: StatusCode,
    stall: Duration,
) -> (
    String,
    Received,
    Arc<std::sync::atomic::AtomicBool>,
    Arc<Mutex<Vec<(u64, bool)>>>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prefers: Arc<Mutex<Vec<(u64, bool)>>> = Arc::default();
    let server = Server {
        n_failures,
        failure_status,
        stall,
        down: down.clone(),
        n_requests: Arc::default(),
        received: tx,
        takes_compact: true,
        content_types: Arc::default(),
        prefers: prefers.clone(),
    };
    (listen(server).await, rx, down, prefers)
}

/// A stand-in that acknowledges everything it can read, taking compact bodies or not; the
/// content types it was sent.
async fn serve_forms(takes_compact: bool) -> (String, Received, Arc<Mutex<Vec<String>>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let content_types: Arc<Mutex<Vec<String>>> = Arc::default();
    let server = Server {
        n_failures: 0,
        failure_status: StatusCode::OK,
        stall: Duration::ZERO,
        down: Arc::default(),
        n_requests: Arc::default(),
        received: tx,
        takes_compact,
        content_types: content_types.clone(),
        prefers: Arc::default(),
    };
    (listen(server).await, rx, content_types)
}

/// Serves `server` on a port of its own; its base URL.
async fn listen(server: Server) -> String {
    let app = axum::Router::new()
        .route("/api/v1/ingest", axum::routing::post(ingest))
        .with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn trip_config() -> Config {
    Config::builder()
        .window(Window::Count(10))
        .minimum_calls(2)
        .version(3)
        .build()
        .unwrap()
}

fn reporter_config(endpoint: String) -> ReporterConfig {
    ReporterConfig {
        // Long enough that only a transition can cause a send during the test.
        interval: Duration::from_secs(3_600),
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        api_key: Some("secret".into()),
        ..ReporterConfig::new(endpoint, "checkout", "checkout-1")
    }
}

/// How long a test waits for anything: a batch, a count, a loop of batches.
const DEADLINE: Duration = Duration::from_secs(20);

async fn next(received: &mut Received) -> (Option<String>, protocol::IngestBatch) {
    // A bound so a broken reporter fails the test instead of hanging it.
    tokio::time::timeout(DEADLINE, received.recv())
        .await
        .expect("no batch arrived")
        .expect("server gone")
}

#[tokio::test]
async fn a_transition_is_sent_without_waiting_for_the_interval() {
    let (endpoint, mut received) = serve(0, StatusCode::OK, Duration::ZERO).await;
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", trip_config());
    let reporter = Reporter::start(registry.clone(), reporter_config(endpoint));
    for _ in 0..2 {
        let _: Result<(), CallError<()>> = payments.call(|| Err(()));
    }
    let (auth, batch) = next(&mut received).await;
    assert_eq!(auth.as_deref(), Some("Bearer secret"));
    assert_eq!(
        (batch.service.as_str(), batch.instance.as_str()),
        ("checkout", "checkout-1")
    );
    assert_eq!(batch.transitions.len(), 1);
    let transition = &batch.transitions[0];
    assert_eq!(
        (transition.from, transition.to),
        (protocol::State::Closed, protocol::State::Open)
    );
    let trigger = transition.trigger.as_ref().unwrap();
    assert_eq!(
        (trigger.kind.as_str(), trigger.value, trigger.threshold),
        ("failure_rate", 1.0, 0.5)
    );
    assert_eq!(transition.config_version, 3);
    assert!(batch.aggregates.is_empty());
    reporter.shutdown().await;
}

#[tokio::test]
async fn shutdown_flushes_an_aggregate_with_the_counts() {
    let (endpoint, mut received) = serve(0, StatusCode::OK, Duration::ZERO).await;
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", trip_config());
    let reporter = Reporter::start(registry.clone(), reporter_config(endpoint));
    for _ in 0..5 {
        payments.call(|| Ok::<_, ()>(())).unwrap();
    }
    let _ = payments.call(|| Err::<(), _>(()));
    reporter.shutdown().await;
    let (_, batch) = next(&mut received).await;
    let aggregate = &batch.aggregates[0];
    assert_eq!(aggregate.breaker, "payments");
    assert_eq!((aggregate.counts.success, aggregate.counts.failure), (5, 1));
    assert_eq!(
        aggregate.latency.total(),
        6,
        "every call's latency is measured"
    );
    assert_eq!(aggregate.state, protocol::State::Closed);
    assert_eq!(aggregate.failure_rate, Some(1.0 / 6.0));
    assert_eq!(aggregate.failure_rate_threshold, Some(0.5));
    assert_eq!(aggregate.config_version, 3);
}

#[tokio::test]
async fn a_batch_is_retried_with_the_same_number_and_content_until_acknowledged() {
    for status in [
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let (endpoint, mut received) = serve(3, status, Duration::ZERO).await;
        let registry = Registry::new();
        let payments = registry.get_or_create("payments", trip_config());
        let reporter = Reporter::start(registry.clone(), reporter_config(endpoint));
        payments.set_mode(Mode::ForcedOpen);
        let (_, first) = next(&mut received).await;
        for _ in 0..3 {
            let (_, retried) = next(&mut received).await;
            assert_eq!(retried, first, "{status}");
        }
        let stats = reporter.stats();
        assert_eq!(stats.failed_attempts, 3);
        payments.set_mode(Mode::Automatic);
        let (_, second) = next(&mut received).await;
        assert_eq!(second.seq, first.seq + 1);
        reporter.shutdown().await;
    }
}

#[tokio::test]
async fn a_slow_server_delays_nothing_but_the_report() {
    let (endpoint, mut received) = serve(
        1,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_millis(300),
    )
    .await;
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", trip_config());
    let reporter = Reporter::start(registry.clone(), reporter_config(endpoint));
    payments.set_mode(Mode::ForcedOpen);
    let (_, first) = next(&mut received).await;
    // The server is stalling the first request; calls go on regardless.
    for _ in 0..1_000 {
        assert!(payments.call(|| Ok::<_, ()>(())).is_err());
    }
    let (_, retried) = next(&mut received).await;
    assert_eq!(retried.seq, first.seq);
    reporter.shutdown().await;
}

#[tokio::test]
async fn a_server_that_is_down_keeps_memory_bounded_and_reports_drops_later() {
    // Nothing listens on this port while the breakers flap.
    let registry = Registry::new();
    let breakers: Vec<CircuitBreaker> = (0..3)
        .map(|i| registry.get_or_create(&format!("dep-{i}"), trip_config()))
        .collect();
    let config = ReporterConfig {
        max_buffered: 8,
        ..reporter_config("http://127.0.0.1:9".into())
    };
    let reporter = Reporter::start(registry.clone(), config);
    for _ in 0..10 {
        for breaker in &breakers {
            breaker.set_mode(Mode::ForcedOpen);
            breaker.set_mode(Mode::Automatic);
        }
    }
    // 60 transitions against a cap of 8.
    let stats = tokio::time::timeout(DEADLINE, async {
        loop {
            let stats = reporter.stats();
            if stats.drops.transitions_dropped >= 52 {
                break stats;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "fewer than 52 of 60 transitions dropped within {DEADLINE:?}: {:?}",
            reporter.stats()
        )
    });
    assert!(stats.pending_items <= 8 + 8, "{stats:?}");
    drop(reporter);
}

#[tokio::test]
async fn drops_during_an_outage_are_reported_once_the_server_is_back() {
    let (endpoint, mut received, down) = serve_switchable(0, StatusCode::OK, Duration::ZERO).await;
    down.store(true, Ordering::SeqCst);
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", trip_config());
    let config = ReporterConfig {
        max_buffered: 4,
        ..reporter_config(endpoint)
    };
    let reporter = Reporter::start(registry.clone(), config);
    for _ in 0..20 {
        payments.set_mode(Mode::ForcedOpen);
        payments.set_mode(Mode::Automatic);
    }
    // Wait until the reporter has had to drop some of the 40 transitions.
    tokio::time::timeout(DEADLINE, async {
        while reporter.stats().drops.transitions_dropped == 0 {
            let (_, batch) = next(&mut received).await;
            assert!(
                batch.transitions.len() <= 4 + 1,
                "{}",
                batch.transitions.len()
            );
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no transition dropped within {DEADLINE:?} of the outage"));
    down.store(false, Ordering::SeqCst);
    // Every transition is either delivered or counted as dropped; a batch sent several times
    // (same seq, same content) counts once.
    let mut batches: BTreeMap<u64, protocol::IngestBatch> = BTreeMap::new();
    let accounted = |batches: &BTreeMap<u64, protocol::IngestBatch>| -> u64 {
        batches
            .values()
            .map(|b| b.transitions.len() as u64 + b.dropped.transitions_dropped)
            .sum()
    };
    tokio::time::timeout(DEADLINE, async {
        while accounted(&batches) < 40 {
            let (_, batch) = next(&mut received).await;
            if let Some(earlier) = batches.get(&batch.seq) {
                assert_eq!(earlier, &batch, "a retried batch keeps its content");
            }
            batches.insert(batch.seq, batch);
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "only {} of 40 transitions delivered or counted as dropped within {DEADLINE:?}",
            accounted(&batches)
        )
    });
    assert_eq!(accounted(&batches), 40);
    assert!(batches.values().any(|b| b.dropped.transitions_dropped > 0));
    reporter.shutdown().await;
}

#[tokio::test]
async fn a_batch_with_more_behind_it_asks_for_an_early_answer_and_the_last_does_not() {
    let (endpoint, mut received, down, prefers) =
        serve_watched(0, StatusCode::OK, Duration::ZERO).await;
    down.store(true, Ordering::SeqCst);
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", trip_config());
    let config = ReporterConfig {
        max_batch_items: 3,
        ..reporter_config(endpoint)
    };
    let reporter = Reporter::start(registry.clone(), config);
    // Ten transitions queue up while the server is down.
    for _ in 0..5 {
        payments.set_mode(Mode::ForcedOpen);
        payments.set_mode(Mode::Automatic);
    }
    next(&mut received).await;
    down.store(false, Ordering::SeqCst);
    let mut delivered: BTreeMap<u64, usize> = BTreeMap::new();
    tokio::time::timeout(DEADLINE, async {
        while delivered.values().sum::<usize>() < 10 {
            let (_, batch) = next(&mut received).await;
            delivered.insert(batch.seq, batch.transitions.len());
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not all 10 transitions delivered: {delivered:?}"));
    // What each batch last asked for (its acknowledged request).
    let last_asked: BTreeMap<u64, bool> = prefers.lock().unwrap().iter().copied().collect();
    let (&last_seq, _) = delivered.last_key_value().unwrap();
    assert!(delivered.len() >= 4, "batches of 3 at most: {delivered:?}");
    for (seq, asked) in last_asked {
        assert_eq!(
            asked,
            seq != last_seq,
            "batch {seq}: asks for an early answer only with more behind it"
        );
    }
    reporter.shutdown().await;
}

#[test]
fn slow_marks_and_latencies_ahead_of_their_outcome_wait_for_the_next_interval() {
    // Read mid-call: the slow mark and latency of a third call, not yet its success.
    let mut now = Counters {
        success: 2,
        slow: 3,
        ..Default::default()
    };
    now.latency[4] = 1;
    now.latency[9] = 2;
    let (counts, latency, reported) = interval_counts(&now, &Counters::default());
    assert_eq!((counts.success, counts.slow), (2, 2));
    assert_eq!(latency.total(), 2);
    assert_eq!(reported.slow, 2);
    assert_eq!(reported.latency.iter().sum::<u64>(), 2);
    let batch = |counts, latency| protocol::IngestBatch {
        service: "s".into(),
        instance: "i".into(),
        seq: 1,
        sent_at_ms: 0,
        aggregates: vec![protocol::Aggregate {
            breaker: "b".into(),
            start_ms: 0,
            interval_ms: 1_000,
            counts,
            latency,
            state: protocol::State::Closed,
            failure_rate: None,
            failure_rate_threshold: None,
            config_version: 0,
        }],
        transitions: vec![],
        dropped: Default::default(),
    };
    assert_eq!(protocol::validate_batch(&batch(counts, latency), 0), Ok(()));
    // The call's success arrives: the held-back mark and latency go with it.
    now.success = 3;
    let (counts, latency, reported) = interval_counts(&now, &reported);
    assert_eq!((counts.success, counts.slow, latency.total()), (1, 1, 1));
    assert_eq!(reported, now);
    assert_eq!(protocol::validate_batch(&batch(counts, latency), 0), Ok(()));
}

#[test]
fn every_trigger_kind_is_one_the_server_accepts() {
    use crate::machine::TriggerKind;
    let kinds = [
        TriggerKind::FailureRate,
        TriggerKind::SlowCallRate,
        TriggerKind::ConsecutiveFailures,
        TriggerKind::WaitElapsed,
        TriggerKind::ProbeSucceeded,
        TriggerKind::ProbeFailed,
        TriggerKind::HalfOpenTimeout,
        TriggerKind::Manual,
    ];
    // A new kind fails to compile here until it is listed above (and in protocol).
    for kind in kinds {
        match kind {
            TriggerKind::FailureRate
            | TriggerKind::SlowCallRate
            | TriggerKind::ConsecutiveFailures
            | TriggerKind::WaitElapsed
            | TriggerKind::ProbeSucceeded
            | TriggerKind::ProbeFailed
            | TriggerKind::HalfOpenTimeout
            | TriggerKind::Manual => {}
        }
        assert!(
            protocol::TRIGGER_KINDS.contains(&kind.as_str()),
            "{}",
            kind.as_str()
        );
    }
    assert_eq!(kinds.len(), protocol::TRIGGER_KINDS.len());
}

#[tokio::test]
async fn batches_go_out_in_the_compact_form_or_as_json_when_asked() {
    for (compact_bodies, expected) in [
        (true, protocol::compact::MEDIA_TYPE),
        (false, "application/json"),
    ] {
        let (endpoint, mut received, content_types) = serve_forms(true).await;
        let registry = Registry::new();
        let payments = registry.get_or_create("payments", trip_config());
        let config = ReporterConfig {
            compact_bodies,
            ..reporter_config(endpoint)
        };
        let reporter = Reporter::start(registry.clone(), config);
        for _ in 0..2 {
            let _: Result<(), CallError<()>> = payments.call(|| Err(()));
        }
        let (_, batch) = next(&mut received).await;
        assert_eq!(batch.transitions.len(), 1);
        reporter.shutdown().await;
        let content_types = content_types.lock().unwrap().clone();
        assert!(content_types.len() >= 2, "{content_types:?}");
        assert!(
            content_types.iter().all(|t| t == expected),
            "{content_types:?}"
        );
    }
}

#[tokio::test]
async fn a_server_that_refuses_the_compact_form_gets_the_same_batch_as_json_and_json_after() {
    let (endpoint, mut received, content_types) = serve_forms(false).await;
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", trip_config());
    let reporter = Reporter::start(registry.clone(), reporter_config(endpoint));
    for _ in 0..2 {
        let _: Result<(), CallError<()>> = payments.call(|| Err(()));
    }
    // Only the JSON copy reaches the handler's end; the 415 refused the compact one.
    let (_, first) = next(&mut received).await;
    assert_eq!(first.transitions.len(), 1);
    let _: Result<(), CallError<()>> = payments.call(|| Ok(()));
    let stats = reporter.stats();
    reporter.shutdown().await;
    let (_, last) = next(&mut received).await;
    assert_eq!(last.seq, first.seq + 1, "nothing was lost or sent twice");
    assert_eq!(last.aggregates.len(), 1);
    assert_eq!(stats.failed_attempts, 0, "the fallback is not a failure");
    let content_types = content_types.lock().unwrap().clone();
    assert_eq!(
        content_types,
        [
            protocol::compact::MEDIA_TYPE,
            "application/json",
            "application/json"
        ],
    );
}
