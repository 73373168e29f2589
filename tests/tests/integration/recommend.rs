//! The adaptive engine over stored history: a recommendation with evidence, accepted by an
//! admin as a new config version; lint of the current config.

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
    assert!(rec.suggested_backtest.cost <= rec.current_backtest.cost);
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
