//! End to end over real HTTP: a server on an ephemeral port with a temporary SQLite file,
//! breakers with their reporters, the API and the live stream.

use std::time::Duration;

use backend::auth::Role;
use backend::time::now_ms;
use breaker::reporter::{Reporter, ReporterConfig};
use breaker::{CallError, Registry};
use protocol::{IngestAck, IngestBatch, State, StreamEvent, TransitionRecord};
use serde_json::json;
use tests::{SseReader, TestServer, post_batch, tight_config};

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_breaker_is_stored_and_streamed() {
    let server = TestServer::start().await.unwrap();
    let viewer = server.user_token("watcher", Role::Viewer).await.unwrap();
    let key = server.ingest_key("checkout").await.unwrap();

    let mut stream = SseReader::connect_with_token(
        &format!("{}/api/v1/stream", server.url()),
        None,
        Some(&viewer),
    )
    .await
    .unwrap();
    let ready = stream.next(DEADLINE).await.unwrap();
    assert_eq!(ready.event, "ready");

    let registry = Registry::new();
    let reporter = Reporter::start(
        registry.clone(),
        ReporterConfig {
            api_key: Some(key),
            ..ReporterConfig::new(server.url(), "checkout", "checkout-1")
        },
    );
    let payments = registry.get_or_create("payments-api", tight_config());
    for _ in 0..5 {
        let res: Result<(), CallError<&str>> = payments.call(|| Err("connection refused"));
        assert!(matches!(res, Err(CallError::Inner(_))));
    }
    assert_eq!(payments.state(), breaker::State::Open);
    let rejected: Result<(), CallError<&str>> = payments.call(|| Ok(()));
    assert!(
        matches!(rejected, Err(CallError::Rejected(_))),
        "an open breaker rejects"
    );

    // The transition reaches the stream…
    let message = stream
        .next_matching(DEADLINE, |m| m.event == "transition")
        .await
        .unwrap();
    let StreamEvent::Transition(record) = serde_json::from_str(&message.data).unwrap() else {
        panic!("a transition event carries a transition: {}", message.data);
    };
    assert_eq!(message.id, Some(record.id.to_string()));
    assert_eq!(
        (record.service.as_str(), record.instance.as_str()),
        ("checkout", "checkout-1")
    );
    assert_eq!(record.transition.breaker, "payments-api");
    assert_eq!(
        (record.transition.from, record.transition.to),
        (State::Closed, State::Open)
    );
    let trigger = record.transition.trigger.clone().expect("a trip says why");
    assert_eq!(trigger.kind, "failure_rate");
    assert_eq!((trigger.value, trigger.threshold), (1.0, 0.5));

    // …and is stored: the API reads it back from SQLite.
    let client = reqwest::Client::new();
    let stored: Vec<TransitionRecord> = server
        .get_json(
            "/api/v1/breakers/checkout/payments-api/transitions",
            Some(&viewer),
        )
        .await;
    assert_eq!(stored, vec![record]);

    // The fleet view shows the breaker open on its instance.
    let breakers: Vec<protocol::BreakerSummary> = client
        .get(format!("{}/api/v1/breakers", server.url()))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let summary = breakers
        .iter()
        .find(|b| b.breaker == "payments-api")
        .unwrap();
    assert_eq!((summary.state, summary.open_instances), (State::Open, 1));

    reporter.shutdown().await;
    // Aggregates were flushed on shutdown: the series counts the five failed calls and the rejection.
    let series: protocol::Series = client
        .get(format!(
            "{}/api/v1/breakers/checkout/payments-api/series",
            server.url()
        ))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let failed: u64 = series.points.iter().map(|p| p.counts.failure).sum();
    let rejected: u64 = series.points.iter().map(|p| p.counts.rejected).sum();
    assert_eq!((failed, rejected), (5, 1));
}

fn batch(service: &str, seq: u64, to: State) -> IngestBatch {
    let now = now_ms();
    serde_json::from_value(json!({
        "service": service, "instance": "i-1", "seq": seq, "sent_at_ms": now,
        "aggregates": [{"breaker": "db", "start_ms": now - 1000, "interval_ms": 1000,
                        "counts": {"success": 7, "failure": 3}, "state": "closed"}],
        "transitions": [{"breaker": "db", "at_ms": now, "from": if to == State::Open { "closed" } else { "open" },
                         "to": to.as_str(), "config_version": 1}]
    }))
    .unwrap()
}

#[tokio::test]
async fn a_retried_batch_is_stored_once() {
    let server = TestServer::start_with(|o| o.anonymous_viewer = true)
        .await
        .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let first = batch("svc", 7, State::Open);
    let ack = post_batch(&server.url(), &key, &first).await;
    assert_eq!(
        ack,
        IngestAck {
            seq: 7,
            duplicate: false
        }
    );
    let again = post_batch(&server.url(), &key, &first).await;
    assert_eq!(
        again,
        IngestAck {
            seq: 7,
            duplicate: true
        }
    );
    let n_transitions = server.scalar("SELECT COUNT(*) FROM transitions").await;
    let n_aggregates = server.scalar("SELECT COUNT(*) FROM aggregates").await;
    assert_eq!((n_transitions, n_aggregates), (1, 1));
}

#[tokio::test]
async fn ingest_needs_the_services_own_key() {
    let server = TestServer::start().await.unwrap();
    let other_key = server.ingest_key("other").await.unwrap();
    let viewer = server.user_token("v", Role::Viewer).await.unwrap();
    let b = batch("svc", 1, State::Open);
    let cases = [
        (None, 401),
        (Some("fbk_0000"), 401),
        (Some(other_key.as_str()), 403),
        (Some(viewer.as_str()), 403),
    ];
    for (key, status) in cases {
        let mut request = reqwest::Client::new()
            .post(format!("{}/api/v1/ingest", server.url()))
            .json(&b);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "key {key:?}");
        let body: protocol::ErrorBody = response.json().await.unwrap();
        assert!(!body.detail.is_empty());
    }
    let n = server.scalar("SELECT COUNT(*) FROM batches").await;
    assert_eq!(n, 0, "nothing was stored");
}

#[tokio::test]
async fn reconnecting_with_last_event_id_loses_no_transition() {
    let server = TestServer::start_with(|o| o.anonymous_viewer = true)
        .await
        .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let url = format!("{}/api/v1/stream", server.url());
    let mut stream = SseReader::connect(&url, None).await.unwrap();
    stream.next(DEADLINE).await.unwrap();
    post_batch(&server.url(), &key, &batch("svc", 1, State::Open)).await;
    let first = stream
        .next_matching(DEADLINE, |m| m.event == "transition")
        .await
        .unwrap();
    drop(stream);
    // While disconnected, two more transitions happen.
    post_batch(&server.url(), &key, &batch("svc", 2, State::HalfOpen)).await;
    post_batch(&server.url(), &key, &batch("svc", 3, State::Open)).await;
    let mut stream = SseReader::connect(&url, first.id.as_deref()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let message = stream
            .next_matching(DEADLINE, |m| m.event == "transition")
            .await
            .unwrap();
        let StreamEvent::Transition(record) = serde_json::from_str(&message.data).unwrap() else {
            panic!("{}", message.data)
        };
        seen.push(record.transition.to);
    }
    assert_eq!(seen, vec![State::HalfOpen, State::Open]);
}

#[tokio::test]
async fn summaries_can_come_batched_as_one_message_per_read() {
    let server = TestServer::start_with(|o| o.anonymous_viewer = true)
        .await
        .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let url = format!("{}/api/v1/stream?summaries=batched", server.url());
    let mut stream = SseReader::connect(&url, None).await.unwrap();
    assert_eq!(stream.next(DEADLINE).await.unwrap().event, "ready");
    let now = now_ms();
    let breakers = ["cache", "db", "queue"];
    let batch: IngestBatch = serde_json::from_value(json!({
        "service": "svc", "instance": "i-1", "seq": 1, "sent_at_ms": now,
        "aggregates": breakers.map(|breaker| json!({"breaker": breaker, "start_ms": now - 1000,
            "interval_ms": 1000, "counts": {"success": 5}, "state": "closed"})),
    }))
    .unwrap();
    post_batch(&server.url(), &key, &batch).await;
    // Every summary comes inside a `summaries` message (a flush streams a slice of the
    // breakers, so three may take more than one), none as a message of its own. (That one
    // message carries all a write has is `outbox`'s unit tests' part.)
    let mut seen = Vec::new();
    while seen.len() < breakers.len() {
        let message = stream.next(DEADLINE).await.unwrap();
        assert_eq!(message.event, "summaries", "{message:?}");
        // A summary per line of data.
        for line in message.data.lines() {
            let event: StreamEvent = serde_json::from_str(line).unwrap();
            let StreamEvent::Summary(summary) = event else {
                panic!("a summary: {line}")
            };
            assert_eq!(
                (summary.service.as_str(), summary.calls_per_s),
                ("svc", 5.0)
            );
            seen.push(summary.breaker);
        }
    }
    seen.sort();
    assert_eq!(seen, breakers);

    // A form the server does not know is refused, saying which parameter is wrong.
    let response = reqwest::get(format!("{}/api/v1/stream?summaries=bunched", server.url()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: protocol::ErrorBody = response.json().await.unwrap();
    assert!(body.detail.contains("summaries"), "{}", body.detail);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let server = TestServer::start().await.unwrap();
    let doc: serde_json::Value = server.get_json("/api/openapi.json", None).await;
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/ingest",
        "/api/v1/services",
        "/api/v1/breakers",
        "/api/v1/breakers/{service}/{breaker}/series",
        "/api/v1/breakers/{service}/{breaker}/timeline",
        "/api/v1/breakers/{service}/{breaker}/transitions",
        "/api/v1/stream",
        "/metrics",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} is missing from {:?}",
            paths.keys()
        );
    }
    for schema in [
        "IngestBatch",
        "Aggregate",
        "Transition",
        "ErrorBody",
        "StreamEvent",
        "Series",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} is missing"
        );
    }
}

#[tokio::test]
async fn per_call_events_are_folded_into_aggregates() {
    let server = TestServer::start_with(|o| o.anonymous_viewer = true)
        .await
        .unwrap();
    let key = server.ingest_key("legacy").await.unwrap();
    let now = now_ms();
    let second = now.div_euclid(1000) * 1000 - 5_000;
    let calls: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            json!({"breaker": "opossum-db", "at_ms": second + i * 50,
                   "outcome": if i < 4 { "failure" } else { "success" }, "latency_ms": 12.5})
        })
        .collect();
    let body = json!({"service": "legacy", "instance": "node-1", "seq": 1, "sent_at_ms": now,
        "calls": calls,
        "transitions": [{"breaker": "opossum-db", "at_ms": second + 600, "from": "closed", "to": "open",
                         "trigger": {"kind": "failure_rate", "value": 0.4, "threshold": 0.3}}]});
    let client = reqwest::Client::new();
    let ack: IngestAck = server.post_json("/api/v1/ingest/calls", &key, &body).await;
    assert_eq!(
        ack,
        IngestAck {
            seq: 1,
            duplicate: false
        }
    );
    let series: protocol::Series = client
        .get(format!(
            "{}/api/v1/breakers/legacy/opossum-db/series",
            server.url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let point = series
        .points
        .iter()
        .find(|p| p.counts.judged() > 0)
        .unwrap();
    assert_eq!((point.counts.success, point.counts.failure), (6, 4));
    assert_eq!(point.p50_ms, Some(20.0));
    let breakers: Vec<protocol::BreakerSummary> = client
        .get(format!("{}/api/v1/breakers?service=legacy", server.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(breakers[0].state, State::Open);
}

#[tokio::test]
async fn per_call_events_without_a_version_keep_the_instance_version() {
    let server = TestServer::start_with(|o| o.anonymous_viewer = true)
        .await
        .unwrap();
    let key = server.ingest_key("mixed").await.unwrap();
    let now = now_ms();
    let second = now.div_euclid(1000) * 1000 - 5_000;
    // The instance first reports version 3 through aggregates, as the Rust reporter does.
    let aggregate = json!({"service": "mixed", "instance": "node-1", "seq": 1, "sent_at_ms": now,
        "aggregates": [{"breaker": "db", "start_ms": second - 1_000, "interval_ms": 1_000,
                        "counts": {"success": 1}, "state": "closed", "config_version": 3}]});
    post_batch(&server.url(), &key, &aggregate).await;
    let version = async |server: &TestServer| -> (u64, Option<f64>) {
        let breakers: Vec<protocol::BreakerSummary> = server
            .get_json("/api/v1/breakers?service=mixed", None)
            .await;
        (
            breakers[0].instances[0].config_version,
            breakers[0].failure_rate_threshold,
        )
    };
    assert_eq!(version(&server).await.0, 3);
    // Calls and a transition without a version, later: the instance still runs version 3.
    let calls = json!({"service": "mixed", "instance": "node-1", "seq": 2, "sent_at_ms": now,
        "calls": [{"breaker": "db", "at_ms": second + 100, "outcome": "success", "latency_ms": 1.0}],
        "transitions": [{"breaker": "db", "at_ms": second + 200, "from": "closed", "to": "open"}]});
    let _: IngestAck = server.post_json("/api/v1/ingest/calls", &key, &calls).await;
    assert_eq!(version(&server).await.0, 3);
    let transitions: Vec<TransitionRecord> = server
        .get_json("/api/v1/breakers/mixed/db/transitions", None)
        .await;
    assert_eq!(transitions[0].transition.config_version, 3);
    // A call that carries its version and failure-rate threshold moves both.
    let calls = json!({"service": "mixed", "instance": "node-1", "seq": 3, "sent_at_ms": now,
        "calls": [{"breaker": "db", "at_ms": second + 1_100, "outcome": "failure", "latency_ms": 1.0,
                   "state": "open", "config_version": 4, "failure_rate": 0.75,
                   "failure_rate_threshold": 0.5}]});
    let _: IngestAck = server.post_json("/api/v1/ingest/calls", &key, &calls).await;
    assert_eq!(version(&server).await, (4, Some(0.5)));
}

#[tokio::test]
async fn a_first_call_batch_without_a_version_takes_the_reported_running_version() {
    let server = TestServer::start_with(|o| o.anonymous_viewer = true)
        .await
        .unwrap();
    let key = server.ingest_key("fresh").await.unwrap();
    let now = now_ms();
    let second = now.div_euclid(1000) * 1000 - 5_000;
    // Another instance made the breaker known (a status report never creates one).
    let aggregate = json!({"service": "fresh", "instance": "py-0", "seq": 1, "sent_at_ms": now,
        "aggregates": [{"breaker": "db", "start_ms": second - 1_000, "interval_ms": 1_000,
                        "counts": {"success": 1}, "state": "closed", "config_version": 1}]});
    post_batch(&server.url(), &key, &aggregate).await;
    // This instance is known only through its config status, as an adapter reports it at start.
    let status = reqwest::Client::new()
        .post(format!("{}/api/v1/config-status", server.url()))
        .bearer_auth(&key)
        .json(
            &json!({"service": "fresh", "instance": "py-1", "at_ms": now,
            "breakers": [{"breaker": "db", "running_version": 2, "refused": null}]}),
        )
        .send()
        .await
        .unwrap();
    assert!(status.status().is_success(), "{}", status.status());
    // Its first call batch carries no version: the reported one, not 0.
    let calls = json!({"service": "fresh", "instance": "py-1", "seq": 1, "sent_at_ms": now,
        "calls": [{"breaker": "db", "at_ms": second + 100, "outcome": "failure", "latency_ms": 1.0}],
        "transitions": [{"breaker": "db", "at_ms": second + 200, "from": "closed", "to": "open"}]});
    let _: IngestAck = server.post_json("/api/v1/ingest/calls", &key, &calls).await;
    let breakers: Vec<protocol::BreakerSummary> = server
        .get_json("/api/v1/breakers?service=fresh", None)
        .await;
    let instance = breakers[0].instances.iter().find(|i| i.instance == "py-1");
    assert_eq!(instance.map(|i| i.config_version), Some(2));
    let transitions: Vec<TransitionRecord> = server
        .get_json("/api/v1/breakers/fresh/db/transitions", None)
        .await;
    assert_eq!(transitions[0].instance, "py-1");
    assert_eq!(transitions[0].transition.config_version, 2);
}
