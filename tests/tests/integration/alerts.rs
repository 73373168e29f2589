//! Alerting end to end: transitions ingested over HTTP, alerts opened once per incident, and
//! notifications received by a test webhook (signature checked, idempotency keys recorded)
//! and by a real Alertmanager (without one installed that test skips loudly, or fails under
//! `FUSEBOX_REQUIRE_ALERTMANAGER=1`, which `cargo xtask test` sets).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode};
use backend::auth::Role;
use backend::time::{Clock, now_ms};
use hmac::{Hmac, Mac};
use protocol::{
    Alert, AlertChannel, AlertChannelKind, AlertChannelView, AlertRule, AlertRuleKind, State,
};
use serde_json::{Value, json};
use sha2::Sha256;
use tests::TestServer;
use tests::wait::wait_for;

const DEADLINE: Duration = Duration::from_secs(20);
const SECRET: &str = "test-signing-secret";

// === a test webhook receiver ===

#[derive(Clone, Debug)]
struct Received {
    key: String,
    event: String,
    body: Value,
}

#[derive(Clone, Default)]
struct ReceiverState {
    accepting: Arc<AtomicBool>,
    /// Refuses "firing" notifications only (a receiver that fails on one payload).
    refusing_firing: Arc<AtomicBool>,
    received: Arc<Mutex<Vec<Received>>>,
    refused: Arc<AtomicU64>,
    bad_signatures: Arc<AtomicU64>,
}

struct Receiver {
    url: String,
    state: ReceiverState,
}

impl Receiver {
    async fn start(accepting: bool) -> Receiver {
        let state = ReceiverState::default();
        state.accepting.store(accepting, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, state }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    fn events(&self, event: &str, alert_id: i64) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.event == event && r.body["alert"]["id"] == alert_id)
            .collect()
    }

    async fn wait_event(&self, event: &str, alert_id: i64) -> Received {
        wait_for(
            &format!("a {event} notification of alert {alert_id}"),
            DEADLINE,
            || async { self.events(event, alert_id).pop() },
        )
        .await
    }
}

/// Verifies the documented signature: HMAC-SHA256(secret, "<timestamp>.<body>"), hex.
fn signature_ok(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(timestamp), Some(signature)) =
        (header("x-fusebox-timestamp"), header("x-fusebox-signature"))
    else {
        return false;
    };
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(expected) = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

async fn receive(
    AxumState(state): AxumState<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !state.accepting.load(Ordering::SeqCst) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if !signature_ok(&headers, &body) {
        state.bad_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let body: Value = serde_json::from_slice(&body).unwrap();
    if state.refusing_firing.load(Ordering::SeqCst) && body["event"] == "firing" {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        body["idempotency_key"],
        key.as_str(),
        "header and body agree"
    );
    let mut received = state.received.lock().unwrap();
    // A receiver deduplicates on the key; the test records every arrival to count them.
    received.push(Received {
        key,
        event: body["event"].as_str().unwrap_or_default().to_string(),
        body,
    });
    StatusCode::OK
}

// === helpers ===

fn webhook(url: &str, rules: &[&str]) -> AlertChannel {
    AlertChannel {
        name: "hook".into(),
        kind: AlertChannelKind::Webhook,
        url: url.into(),
        secret: Some(SECRET.into()),
        rules: rules.iter().map(|r| r.to_string()).collect(),
    }
}

fn rule(name: &str, kind: AlertRuleKind) -> AlertRule {
    AlertRule {
        name: name.into(),
        kind,
        service: "*".into(),
        breaker: "*".into(),
        severity: "warning".into(),
        enabled: true,
        for_ms: None,
        openings: None,
        within_ms: None,
        min_open: None,
        group_by: None,
    }
}

struct Client {
    http: reqwest::Client,
    url: String,
    admin: String,
    keys: std::collections::HashMap<String, String>,
    seq: AtomicU64,
    /// The server's clock: transitions happen at its time.
    clock: Clock,
}

impl Client {
    async fn new(server: &TestServer, services: &[&str]) -> Client {
        let mut keys = std::collections::HashMap::new();
        for service in services {
            keys.insert(
                service.to_string(),
                server.ingest_key(service).await.unwrap(),
            );
        }
        Client {
            http: reqwest::Client::new(),
            url: server.url(),
            admin: server.user_token("admin", Role::Admin).await.unwrap(),
            keys,
            seq: AtomicU64::new(now_ms() as u64),
            clock: server.server.state.clock.clone(),
        }
    }

    /// Points this client at a restarted server (same database, so the same credentials).
    fn at(mut self, server: &TestServer) -> Client {
        self.url = server.url();
        self.clock = server.server.state.clock.clone();
        self
    }

    async fn transition(
        &self,
        service: &str,
        instance: &str,
        breaker: &str,
        from: State,
        to: State,
    ) {
        let batch = json!({
            "service": service, "instance": instance,
            "seq": self.seq.fetch_add(1, Ordering::SeqCst), "sent_at_ms": self.clock.now_ms(),
            "transitions": [{
                "breaker": breaker, "at_ms": self.clock.now_ms(), "from": from, "to": to,
                "trigger": {"kind": "failure_rate", "value": 0.6, "threshold": 0.5},
                "config_version": 1,
            }],
        });
        tests::post_batch(&self.url, &self.keys[service], &batch).await;
    }

    async fn alerts(&self) -> Vec<Alert> {
        self.http
            .get(format!("{}/api/v1/alerts", self.url))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits for an alert of `rule` satisfying `want`.
    async fn wait_alert(&self, rule: &str, want: impl Fn(&Alert) -> bool) -> Alert {
        wait_for(&format!("an alert of {rule}"), DEADLINE, || async {
            self.alerts()
                .await
                .into_iter()
                .find(|a| a.rule == rule && want(a))
        })
        .await
    }
}

// === tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_is_one_signed_alert_across_instances_and_recovers() {
    let receiver = Receiver::start(true).await;
    let url = receiver.url.clone();
    let server = TestServer::start_with(move |options| {
        options.alerts.channels = vec![webhook(&url, &[])];
        options.alerts.rules = vec![rule("recovered", AlertRuleKind::Recovery)];
    })
    .await
    .unwrap();
    let client = Client::new(&server, &["checkout"]).await;

    client
        .transition(
            "checkout",
            "checkout-1",
            "payments-api",
            State::Closed,
            State::Open,
        )
        .await;
    client
        .transition(
            "checkout",
            "checkout-2",
            "payments-api",
            State::Closed,
            State::Open,
        )
        .await;
    let alert = client
        .wait_alert("breaker-opened", |a| {
            a.breakers.len() == 1 && a.breakers[0].instances.len() == 2
        })
        .await;
    assert_eq!(alert.status, "firing");
    assert_eq!(alert.breakers[0].service, "checkout");
    assert_eq!((alert.trigger_value, alert.threshold), (0.6, 0.5));

    let firing = receiver.wait_event("firing", alert.id).await;
    let body = &firing.body["alert"];
    assert_eq!(body["trigger"]["kind"], "failure_rate");
    assert_eq!(body["trigger"]["value"], 0.6);
    assert_eq!(body["trigger"]["threshold"], 0.5);
    assert_eq!(body["severity"], "critical");
    let breaker = &body["breakers"][0];
    assert_eq!(breaker["breaker"], "payments-api");
    assert!(
        breaker["url"]
            .as_str()
            .unwrap()
            .ends_with("/breaker?service=checkout&breaker=payments-api")
    );

    // The chart the notification links to renders on the server.
    let chart = client
        .http
        .get(breaker["chart_url"].as_str().unwrap())
        .bearer_auth(&client.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(chart.status(), 200);
    assert_eq!(chart.headers()["content-type"], "image/svg+xml");
    assert!(chart.text().await.unwrap().starts_with("<svg"));

    // Closed on one instance only: still firing. Closed everywhere: resolved, with a notice.
    client
        .transition(
            "checkout",
            "checkout-1",
            "payments-api",
            State::Open,
            State::Closed,
        )
        .await;
    client
        .transition(
            "checkout",
            "checkout-2",
            "payments-api",
            State::Open,
            State::HalfOpen,
        )
        .await;
    client
        .transition(
            "checkout",
            "checkout-2",
            "payments-api",
            State::HalfOpen,
            State::Closed,
        )
        .await;
    let resolved = client
        .wait_alert("breaker-opened", |a| a.status == "resolved")
        .await;
    assert_eq!(resolved.id, alert.id);
    let events: Vec<&str> = resolved.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(events, ["firing", "resolved"]);
    receiver.wait_event("resolved", alert.id).await;

    assert_eq!(
        receiver.events("firing", alert.id).len(),
        1,
        "one page per incident"
    );
    assert_eq!(receiver.events("resolved", alert.id).len(), 1);
    assert_eq!(receiver.state.bad_signatures.load(Ordering::SeqCst), 0);
    assert_eq!(client.alerts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_of_one_dependency_share_one_alert() {
    let receiver = Receiver::start(true).await;
    let url = receiver.url.clone();
    let server = TestServer::start_with(move |options| {
        options.alerts.channels = vec![webhook(&url, &["breaker-opened"])];
    })
    .await
    .unwrap();
    let client = Client::new(&server, &["checkout", "search", "billing"]).await;

    client
        .transition(
            "checkout",
            "checkout-1",
            "payments-api",
            State::Closed,
            State::Open,
        )
        .await;
    client
        .transition(
            "search",
            "search-1",
            "payments-api",
            State::Closed,
            State::Open,
        )
        .await;
    client
        .transition(
            "billing",
            "billing-1",
            "payments-api",
            State::Closed,
            State::Open,
        )
        .await;
    let alert = client
        .wait_alert("breaker-opened", |a| a.breakers.len() == 3)
        .await;
    let services: Vec<&str> = alert.breakers.iter().map(|b| b.service.as_str()).collect();
    assert_eq!(services, ["billing", "checkout", "search"]);
    assert_eq!(
        alert.title,
        "Breaker payments-api opened in billing, checkout, search"
    );

    // The newest notification names every caller.
    wait_for(
        "a notification naming the three callers",
        DEADLINE,
        || async {
            receiver
                .received()
                .into_iter()
                .find(|r| r.body["alert"]["breakers"].as_array().map(Vec::len) == Some(3))
        },
    )
    .await;
    assert_eq!(receiver.events("firing", alert.id).len(), 1);
    let received = receiver.received();
    assert_eq!(received[0].event, "firing", "updates follow the firing one");
    assert!(
        received.iter().all(|r| r.body["alert"]["id"] == alert.id),
        "every notification is about the one alert"
    );
    assert_eq!(client.alerts().await.len(), 1);

    // It resolves when every caller's breaker is closed everywhere.
    for service in ["checkout", "search"] {
        let instance = format!("{service}-1");
        client
            .transition(
                service,
                &instance,
                "payments-api",
                State::Open,
                State::Closed,
            )
            .await;
    }
    assert_eq!(client.alerts().await[0].status, "firing");
    client
        .transition(
            "billing",
            "billing-1",
            "payments-api",
            State::Open,
            State::Closed,
        )
        .await;
    client
        .wait_alert("breaker-opened", |a| a.status == "resolved")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_breaker_alerts_once_and_settles() {
    let receiver = Receiver::start(true).await;
    let url = receiver.url.clone();
    // On a manual clock: the flaps happen within a minute, and the quiet minute after them
    // passes when the test says so.
    let server = TestServer::start_with(move |options| {
        options.clock = Clock::manual(now_ms());
        options.alerts.channels = vec![webhook(&url, &["flaps"])];
        options.alerts.rules = vec![AlertRule {
            openings: Some(3),
            within_ms: Some(60_000),
            breaker: "pay*".into(),
            ..rule("flaps", AlertRuleKind::Flapping)
        }];
    })
    .await
    .unwrap();
    let client = Client::new(&server, &["checkout"]).await;
    for _ in 0..3 {
        for (from, to) in [
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed),
        ] {
            client
                .transition("checkout", "checkout-1", "payments-api", from, to)
                .await;
            server.server.state.clock.advance(Duration::from_secs(1));
        }
        // Out of the rule's scope: never flapping.
        client
            .transition(
                "checkout",
                "checkout-1",
                "inventory",
                State::Closed,
                State::Open,
            )
            .await;
        client
            .transition(
                "checkout",
                "checkout-1",
                "inventory",
                State::Open,
                State::Closed,
            )
            .await;
    }
    let alert = client.wait_alert("flaps", |_| true).await;
    assert_eq!((alert.trigger_value, alert.threshold), (3.0, 3.0));
    assert_eq!(alert.trigger_kind, "openings");
    receiver.wait_event("firing", alert.id).await;

    // Quiet for the rule's window and Closed everywhere: resolved by the timer (the engine
    // looks every second) once the server's clock has passed the window.
    server.server.state.clock.advance(Duration::from_secs(60));
    let resolved = client.wait_alert("flaps", |a| a.status == "resolved").await;
    assert_eq!(resolved.id, alert.id);
    let flapping: Vec<Alert> = client
        .alerts()
        .await
        .into_iter()
        .filter(|a| a.rule == "flaps")
        .collect();
    assert_eq!(flapping.len(), 1, "{flapping:?}");
    // The channel takes only the flapping rule, so the trips themselves did not reach it.
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.body["alert"]["rule"] == "flaps")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolution_never_overtakes_the_firing_being_retried() {
    let receiver = Receiver::start(true).await;
    receiver.state.refusing_firing.store(true, Ordering::SeqCst);
    let url = receiver.url.clone();
    let server = TestServer::start_with(move |options| {
        options.alerts.channels = vec![webhook(&url, &[])];
        options.alerts.rules = vec![rule("recovered", AlertRuleKind::Recovery)];
    })
    .await
    .unwrap();
    let client = Client::new(&server, &["checkout"]).await;
    client
        .transition(
            "checkout",
            "checkout-1",
            "payments-api",
            State::Closed,
            State::Open,
        )
        .await;
    client
        .wait_alert("breaker-opened", |a| {
            a.deliveries.first().is_some_and(|d| d.attempts >= 1)
        })
        .await;
    client
        .transition(
            "checkout",
            "checkout-1",
            "payments-api",
            State::Open,
            State::Closed,
        )
        .await;
    let resolved = client
        .wait_alert("breaker-opened", |a| a.status == "resolved")
        .await;
    let firing_attempts = resolved.deliveries[0].attempts;
    // The firing notification fails once more after the resolution was queued: a deliverer
    // free to send out of order has sent the resolution by then.
    let alert = client
        .wait_alert("breaker-opened", |a| {
            a.deliveries[0].attempts > firing_attempts
        })
        .await;
    assert_eq!(alert.deliveries.len(), 2);
    assert!(alert.deliveries.iter().all(|d| d.delivered_ms.is_none()));
    assert!(receiver.received().is_empty(), "{:?}", receiver.received());

    receiver
        .state
        .refusing_firing
        .store(false, Ordering::SeqCst);
    receiver.wait_event("resolved", alert.id).await;
    let events: Vec<String> = receiver.received().into_iter().map(|r| r.event).collect();
    assert_eq!(events, ["firing", "resolved"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_survives_a_restart_and_is_delivered_once() {
    let receiver = Receiver::start(false).await;
    let url = receiver.url.clone();
    let server = TestServer::start_with(move |options| {
        options.alerts.channels = vec![webhook(&url, &[])];
    })
    .await
    .unwrap();
    let client = Client::new(&server, &["checkout"]).await;
    client
        .transition(
            "checkout",
            "checkout-1",
            "payments-api",
            State::Closed,
            State::Open,
        )
        .await;
    // The receiver is down: the delivery is attempted and fails.
    let alert = client
        .wait_alert("breaker-opened", |a| {
            a.deliveries.first().is_some_and(|d| d.attempts >= 1)
        })
        .await;
    assert!(alert.deliveries[0].delivered_ms.is_none());
    assert!(receiver.state.refused.load(Ordering::SeqCst) >= 1);

    let server = server.restart().await.unwrap();
    let client = client.at(&server);
    receiver.state.accepting.store(true, Ordering::SeqCst);
    let delivered = client
        .wait_alert("breaker-opened", |a| {
            a.deliveries
                .first()
                .is_some_and(|d| d.delivered_ms.is_some())
        })
        .await;
    assert_eq!(delivered.id, alert.id);
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].key, alert.deliveries[0].idempotency_key);
    assert_eq!(
        client.alerts().await.len(),
        1,
        "the restart made no second alert"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_set_rules_and_channels_and_secrets_stay_hidden() {
    // On a manual clock: "open longer than" fires when the test moves the server's time on.
    let server = TestServer::start_with(|options| options.clock = Clock::manual(now_ms()))
        .await
        .unwrap();
    let client = Client::new(&server, &["checkout"]).await;
    let viewer = server.user_token("viewer", Role::Viewer).await.unwrap();
    let channel = webhook("http://127.0.0.1:9/secret-path", &[]);
    let put = |token: &str| {
        client
            .http
            .put(format!("{}/api/v1/alerts/channels/hook", client.url))
            .bearer_auth(token)
            .json(&channel)
    };
    assert_eq!(put(&viewer).send().await.unwrap().status(), 403);
    assert_eq!(put(&client.admin).send().await.unwrap().status(), 200);
    let read = |token: String| {
        let http = client.http.clone();
        let url = format!("{}/api/v1/alerts/channels", client.url);
        async move {
            let text = http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(!text.contains(SECRET), "the secret is never read back");
            serde_json::from_str::<Vec<AlertChannelView>>(&text).unwrap()
        }
    };
    let as_admin = read(client.admin.clone()).await;
    assert_eq!(as_admin[0].url, "http://127.0.0.1:9/secret-path");
    assert!(as_admin[0].has_secret);
    let as_viewer = read(viewer.clone()).await;
    assert!(!as_viewer[0].url.contains("secret-path"));

    let bad = AlertRule {
        openings: None,
        ..rule("flaps", AlertRuleKind::Flapping)
    };
    let res = client
        .http
        .put(format!("{}/api/v1/alerts/rules/flaps", client.url))
        .bearer_auth(&client.admin)
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: protocol::ErrorBody = res.json().await.unwrap();
    assert_eq!(body.path.as_deref(), Some("$.openings"));

    let long = AlertRule {
        for_ms: Some(300),
        ..rule("stuck", AlertRuleKind::OpenLonger)
    };
    let res = client
        .http
        .put(format!("{}/api/v1/alerts/rules/stuck", client.url))
        .bearer_auth(&client.admin)
        .json(&long)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    client
        .transition(
            "checkout",
            "checkout-1",
            "payments-api",
            State::Closed,
            State::Open,
        )
        .await;
    server
        .server
        .state
        .clock
        .advance(Duration::from_millis(300));
    let stuck = client.wait_alert("stuck", |_| true).await;
    assert_eq!(stuck.threshold, 300.0);
    assert!(stuck.trigger_value >= 300.0);

    // Acknowledge and silence are admin writes recorded in the history.
    let ack = |token: &str| {
        client
            .http
            .post(format!("{}/api/v1/alerts/{}/ack", client.url, stuck.id))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(ack(&viewer).await.unwrap().status(), 403);
    let acked: Alert = ack(&client.admin).await.unwrap().json().await.unwrap();
    assert_eq!(acked.acknowledged_by.as_deref(), Some("admin"));
    let silenced: Alert = client
        .http
        .post(format!("{}/api/v1/alerts/{}/silence", client.url, stuck.id))
        .bearer_auth(&client.admin)
        .json(&json!({"for_ms": 60_000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(silenced.silenced_until_ms.is_some());
    let kinds: Vec<&str> = silenced.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["firing", "acknowledged", "silenced"]);
}

// === Alertmanager ===

/// A real Alertmanager on loopback, killed on drop.
struct Alertmanager {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// A server with one Alertmanager channel at `url`, where `checkout/payments-api` has just
/// tripped and its alert fired.
async fn trip_with_alertmanager(url: String) -> (TestServer, Client, Alert) {
    let server = TestServer::start_with(move |options| {
        options.alerts.channels = vec![AlertChannel {
            name: "am".into(),
            kind: AlertChannelKind::Alertmanager,
            url,
            secret: None,
            rules: vec![],
        }];
    })
    .await
    .unwrap();
    let client = Client::new(&server, &["checkout"]).await;
    client
        .transition(
            "checkout",
            "checkout-1",
            "payments-api",
            State::Closed,
            State::Open,
        )
        .await;
    let alert = client.wait_alert("breaker-opened", |_| true).await;
    (server, client, alert)
}

/// A real Alertmanager on loopback, or `None` after the running test was skipped (a panic
/// instead when `FUSEBOX_REQUIRE_ALERTMANAGER=1`).
async fn start_alertmanager() -> Option<Alertmanager> {
    if !std::path::Path::new(ALERTMANAGER).exists() {
        tests::skip::skip(
            &tests::skip::current_test(),
            "FUSEBOX_REQUIRE_ALERTMANAGER",
            &format!(
                "{ALERTMANAGER} is missing (apt-get install prometheus-alertmanager, \
                 or run `cargo xtask test`)"
            ),
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: none\nreceivers:\n  - name: none\n",
    )
    .unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let child = std::process::Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let alertmanager = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    let ready = format!("{}/-/ready", alertmanager.url);
    wait_for("Alertmanager to be ready", DEADLINE, || async {
        let res = http.get(&ready).send().await.ok()?;
        res.status().is_success().then_some(())
    })
    .await;
    Some(alertmanager)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_shows_the_alert_and_its_resolution() {
    let Some(alertmanager) = start_alertmanager().await else {
        return;
    };
    let (_server, client, alert) = trip_with_alertmanager(alertmanager.url.clone()).await;

    let http = reqwest::Client::new();
    let list = format!(
        "{}/api/v2/alerts?filter=fusebox_alert_id%3D%22{}%22",
        alertmanager.url, alert.id
    );
    let shown: Value = wait_for("Alertmanager to show the alert", DEADLINE, || async {
        let alerts: Vec<Value> = http.get(&list).send().await.ok()?.json().await.ok()?;
        alerts.into_iter().next()
    })
    .await;
    assert_eq!(shown["labels"]["service"], "checkout");
    assert_eq!(shown["labels"]["breaker"], "payments-api");
    assert_eq!(shown["labels"]["severity"], "critical");
    assert_eq!(shown["status"]["state"], "active");
    assert!(
        shown["annotations"]["chart_url"]
            .as_str()
            .unwrap()
            .contains("/chart.svg?")
    );

    client
        .transition(
            "checkout",
            "checkout-1",
            "payments-api",
            State::Open,
            State::Closed,
        )
        .await;
    client
        .wait_alert("breaker-opened", |a| a.status == "resolved")
        .await;
    // Resolved alerts leave Alertmanager's list of active ones.
    wait_for("Alertmanager to resolve the alert", DEADLINE, || async {
        let alerts: Vec<Value> = http
            .get(format!("{list}&active=true"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        alerts.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_alerts_are_resent_to_alertmanager_every_minute() {
    // A stand-in for Alertmanager's v2 API that records what it is sent.
    let posts: Arc<Mutex<Vec<Value>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/api/v2/alerts",
            axum::routing::post(
                |AxumState(posts): AxumState<Arc<Mutex<Vec<Value>>>>, body: Bytes| async move {
                    posts
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    StatusCode::OK
                },
            ),
        )
        .with_state(posts.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let am_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (server, _client, _alert) = trip_with_alertmanager(am_url).await;
    wait_for("the first send", DEADLINE, || async {
        (posts.lock().unwrap().len() == 1).then_some(())
    })
    .await;

    let store = &server.server.state.store;
    // Younger than a minute: nothing to refresh yet.
    assert_eq!(
        backend::alerts::engine::refresh_alertmanager(store, now_ms())
            .await
            .unwrap(),
        0
    );
    // Later (the alert backdated rather than the clock moved): sent again, once a minute. The
    // refresh is asked for as of half an hour ago, a minute the engine's own once-a-minute
    // refresh never names, so the two cannot meet on one idempotency key; the engine may
    // still send its own refresh of the backdated alert when the clock's minute turns.
    server
        .execute("UPDATE alerts SET started_ms = started_ms - 7200000")
        .await;
    let now = now_ms() - 30 * 60_000;
    assert_eq!(
        backend::alerts::engine::refresh_alertmanager(store, now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        backend::alerts::engine::refresh_alertmanager(store, now)
            .await
            .unwrap(),
        0
    );
    wait_for("the refresh", DEADLINE, || async {
        (posts.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    let posts = posts.lock().unwrap().clone();
    let first = &posts[0][0];
    for post in &posts[1..] {
        let again = &post[0];
        assert_eq!(first["labels"], again["labels"], "the same alert");
        assert!(
            again.get("endsAt").is_none_or(|v| v.is_null()),
            "still firing: {again}"
        );
    }
}
