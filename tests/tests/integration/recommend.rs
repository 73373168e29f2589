//! The adaptive engine over stored history: a recommendation with evidence, accepted by an
//! admin as a new config version; lint of the current config.

use std::time::Duration;

use backend::auth::Role;
use backend::time::now_ms;
use protocol::{ConfigView, LintFinding, Recommendation};
use serde_json::{Value, json};
use tests::TestServer;

const MINUTE: i64 = 60_000;

/// Three hours of one-minute aggregates, 20 calls/s with 1 % failures, and a 12-minute outage
/// (70 % failures, slow) in the middle.
pub(crate) fn history(start: i64) -> Vec<Value> {
    (0..180)
        .map(|minute| {
            let outage = (90..102).contains(&minute);
            let calls = 1_200u64;
            let failures = if outage { 840 } else { 12 };
            let latency = if outage {
                json!([0, 0, 0, 0, 0, 0, 0, 0, 100, 1100])
            } else {
                json!([0, 0, 0, 300, 800, 100])
            };
            json!({"breaker": "payments", "start_ms": start + minute * MINUTE, "interval_ms": 60_000,
                   "counts": {"success": calls - failures, "failure": failures},
                   "latency": {"counts": latency}, "state": "closed"})
        })
        .collect()
}

pub(crate) async fn call(
    client: &reqwest::Client,
    method: &str,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    }
    .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recommendation_is_made_from_history_and_accepted() {
    let server = TestServer::start().await.unwrap();
    let key = server.ingest_key("shop").await.unwrap();
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let viewer = server.user_token("vic", Role::Viewer).await.unwrap();
    let client = reqwest::Client::new();
    let base = server.url();
    let start = (now_ms() - 181 * MINUTE).div_euclid(MINUTE) * MINUTE;
    let (status, body) = call(
        &client,
        "POST",
        format!("{base}/api/v1/ingest"),
        &key,
        Some(
            json!({"service": "shop", "instance": "shop-1", "seq": 1, "sent_at_ms": now_ms(),
                    "aggregates": history(start)}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let create = format!("{base}/api/v1/breakers/shop/payments/recommendations?days=1");
    let (status, _) = call(&client, "POST", create.clone(), &viewer, None).await;
    assert_eq!(status, 403, "only admins run the engine");
    let (status, body) = call(&client, "POST", create, &admin, None).await;
    assert_eq!(status, 200, "{body}");
    let rec: Recommendation = serde_json::from_value(body).unwrap();
    assert_eq!((rec.status.as_str(), rec.base_version), ("open", 0));
    // The outage is found in the history and the suggestion catches it.
    let outage = (start + 90 * MINUTE, start + 102 * MINUTE);
    assert!(
        rec.anomalies
            .iter()
            .any(|a| a.start_ms < outage.1 && a.end_ms > outage.0),
        "the outage is an anomaly: {:?}",
        rec.anomalies
    );
    assert_eq!(
        rec.suggested_backtest.detected,
        rec.suggested_backtest.anomalies
    );
    assert!(
        rec.suggested_backtest.cost <= rec.current_backtest.cost,
        "suggested {:?}, current {:?}: {:?}",
        rec.suggested_backtest,
        rec.current_backtest,
        rec.explanation
    );
    // The suggestion in words: its rules, against the one outage found, with no doubt.
    let words = rec.explanation.join("\n");
    assert!(
        rec.explanation[0].starts_with("Trips when at least"),
        "{words}"
    );
    assert!(
        words.contains("the one anomalous period here lasted 12 min"),
        "{words}"
    );
    assert_eq!(rec.doubts, Vec::<String>::new(), "{words}");
    assert!(
        rec.summary.starts_with("Over the last day"),
        "{}",
        rec.summary
    );
    assert!((0.0..=1.0).contains(&rec.confidence));

    let (status, listed) = call(
        &client,
        "GET",
        format!("{base}/api/v1/recommendations?status=open"),
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // Accepting makes the suggestion the breaker's next config version.
    let accept = format!("{base}/api/v1/recommendations/{}/accept", rec.id);
    let (status, _) = call(&client, "POST", accept.clone(), &viewer, None).await;
    assert_eq!(status, 403);
    let (status, body) = call(&client, "POST", accept.clone(), &admin, None).await;
    assert_eq!(status, 200, "{body}");
    let accepted: Recommendation = serde_json::from_value(body).unwrap();
    assert_eq!(accepted.status, "accepted");
    assert_eq!(accepted.decided_by.as_deref(), Some("ada"));
    assert_eq!(accepted.applied_version, Some(1));
    let (_, view) = call(
        &client,
        "GET",
        format!("{base}/api/v1/breakers/shop/payments/config"),
        &viewer,
        None,
    )
    .await;
    let view: ConfigView = serde_json::from_value(view).unwrap();
    let current = view.current.unwrap();
    let mut expected = rec.suggested.clone();
    expected.version = 1;
    assert_eq!(current.config, expected);
    assert_eq!(current.created_by, "ada");
    let (status, _) = call(&client, "POST", accept, &admin, None).await;
    assert_eq!(
        status, 409,
        "a decided recommendation cannot be accepted again"
    );

    let (status, body) = call(
        &client,
        "GET",
        format!("{base}/api/v1/breakers/shop/payments/lint"),
        &viewer,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let _: Vec<LintFinding> = serde_json::from_value(body).unwrap();
}

// === engine runs: bounded work, time budget, cancellation, shutdown ===

/// Seconds of history in [`enormous_history`].
const ENORMOUS_SECONDS: i64 = 1_800;

/// Half an hour of one-second aggregates with a million calls each, the most validation
/// accepts per second (1 % failing, with a two-minute outage).
fn enormous_history(start: i64) -> Vec<Value> {
    (0..ENORMOUS_SECONDS)
        .map(|second| {
            let calls = protocol::BatchLimits::default().max_calls_per_s;
            let failures = if (900..1_020).contains(&second) {
                calls
            } else {
                calls / 100
            };
            json!({"breaker": "payments", "start_ms": start + second * 1_000, "interval_ms": 1_000,
                   "counts": {"success": calls - failures, "failure": failures},
                   "latency": {"counts": [0, 0, 0, calls]}, "state": "closed"})
        })
        .collect()
}

/// A server with the given engine budget, holding `aggregates` for shop/payments; its admin
/// token.
async fn server_with(
    budget: Duration,
    aggregates: impl FnOnce(i64) -> Vec<Value>,
    span_ms: i64,
) -> (TestServer, String) {
    let server = TestServer::start_with(|options| options.engine_budget = budget)
        .await
        .unwrap();
    let key = server.ingest_key("shop").await.unwrap();
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let start = (now_ms() - span_ms - MINUTE).div_euclid(1_000) * 1_000;
    let (status, body) = call(
        &reqwest::Client::new(),
        "POST",
        format!("{}/api/v1/ingest", server.url()),
        &key,
        Some(
            json!({"service": "shop", "instance": "shop-1", "seq": 1, "sent_at_ms": now_ms(),
                    "aggregates": aggregates(start)}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (server, admin)
}

/// The value of a metric line (`name` including its labels), 0 when it is not there yet.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

async fn metrics_text(base: &str, token: &str) -> String {
    reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Polls `/metrics` (every 100 ms, for at most a minute) until `name` reaches `value`.
async fn wait_for_metric(base: &str, token: &str, name: &str, value: f64) -> String {
    tests::wait::wait_for_every(
        &format!("{name} to reach {value}"),
        Duration::from_secs(60),
        Duration::from_millis(100),
        async || {
            let text = metrics_text(base, token).await;
            (metric(&text, name) >= value).then_some(text)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recommendation_over_enormous_call_counts_replays_a_bounded_number_of_calls() {
    let (server, admin) = server_with(
        Duration::from_secs(600),
        enormous_history,
        ENORMOUS_SECONDS * 1_000,
    )
    .await;
    let base = server.url();
    let (status, body) = call(
        &reqwest::Client::new(),
        "POST",
        format!("{base}/api/v1/breakers/shop/payments/recommendations?days=1"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rec: Recommendation = serde_json::from_value(body).unwrap();
    assert_eq!(rec.suggested_backtest.anomalies, 1, "{rec:?}");

    let text = metrics_text(&base, &admin).await;
    assert_eq!(
        metric(&text, r#"fusebox_engine_runs_total{outcome="completed"}"#),
        1.0
    );
    let replays = metric(&text, "fusebox_engine_replays_total");
    let replayed = metric(&text, "fusebox_engine_replayed_calls_total");
    // Every replay covers at most the history's steps (injected incidents are stretches of
    // it), and at most the cap of each step.
    let bound = replays * ENORMOUS_SECONDS as f64 * f64::from(engine::replay::MAX_CALLS_PER_STEP);
    assert!(replays > 0.0 && replayed > 0.0, "{text}");
    assert!(replayed <= bound, "{replayed} replayed calls > {bound}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recommendation_past_its_time_budget_answers_503_and_is_counted() {
    let (server, admin) = server_with(Duration::from_millis(1), history, 181 * MINUTE).await;
    let base = server.url();
    let response = reqwest::Client::new()
        .post(format!(
            "{base}/api/v1/breakers/shop/payments/recommendations?days=1"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "engine_budget_exceeded", "{body}");
    assert!(body["detail"].as_str().unwrap().contains("1 ms"), "{body}");
    let text = metrics_text(&base, &admin).await;
    assert_eq!(
        metric(&text, r#"fusebox_engine_runs_total{outcome="budget"}"#),
        1.0,
        "{text}"
    );
    assert_eq!(metric(&text, "fusebox_engine_runs_in_progress"), 0.0);
}

/// Starts a recommendation over the enormous history and returns once the run is in
/// progress, with the request's task.
async fn start_long_run(
    base: &str,
    admin: &str,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let request = reqwest::Client::new()
        .post(format!(
            "{base}/api/v1/breakers/shop/payments/recommendations?days=1"
        ))
        .bearer_auth(admin)
        .send();
    let task = tokio::spawn(request);
    wait_for_metric(base, admin, "fusebox_engine_runs_in_progress", 1.0).await;
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recommendation_whose_client_hangs_up_is_cancelled() {
    let (server, admin) = server_with(
        Duration::from_secs(600),
        enormous_history,
        ENORMOUS_SECONDS * 1_000,
    )
    .await;
    let base = server.url();
    let task = start_long_run(&base, &admin).await;
    // Dropping the request closes its connection.
    task.abort();
    let _ = task.await;
    let text = wait_for_metric(
        &base,
        &admin,
        r#"fusebox_engine_runs_total{outcome="cancelled"}"#,
        1.0,
    )
    .await;
    assert_eq!(
        metric(&text, r#"fusebox_engine_runs_total{outcome="completed"}"#),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_server_cuts_a_running_recommendation_short() {
    let (server, admin) = server_with(
        Duration::from_secs(600),
        enormous_history,
        ENORMOUS_SECONDS * 1_000,
    )
    .await;
    let base = server.url();
    let state = server.server.state.clone();
    let task = start_long_run(&base, &admin).await;
    let TestServer { server, .. } = server;
    // Without the stop the run would hold the shutdown for as long as it takes; the timeout
    // only keeps a broken build from hanging the test run.
    tokio::time::timeout(Duration::from_secs(120), server.shutdown())
        .await
        .expect("the server stops while the engine runs")
        .unwrap();
    let response = task.await.unwrap().unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let text = state.metrics.render_server(0, 0);
    assert_eq!(
        metric(&text, r#"fusebox_engine_runs_total{outcome="shutdown"}"#),
        1.0,
        "{text}"
    );
}
