//! Bad input gets a clear 4xx with a JSON body saying what is wrong and where, never a 5xx,
//! and never disturbs what was stored before.

use backend::auth::Role;
use backend::time::now_ms;
use serde_json::{Value, json};
use tests::TestServer;

fn valid_batch(seq: u64) -> Value {
    let now = now_ms();
    json!({
        "service": "svc", "instance": "i-1", "seq": seq, "sent_at_ms": now,
        "aggregates": [{"breaker": "db", "start_ms": now - 1000, "interval_ms": 1000,
                        "counts": {"success": 7, "failure": 3}, "state": "closed", "failure_rate": 0.3,
                        "latency": {"counts": [0, 1, 2]}}],
        "transitions": [{"breaker": "db", "at_ms": now, "from": "closed", "to": "open",
                         "trigger": {"kind": "failure_rate", "value": 0.6, "threshold": 0.5},
                         "config_version": 1}]
    })
}

/// A valid batch spoiled at one JSON pointer.
fn spoiled(pointer: &str, value: Value) -> String {
    let mut batch = valid_batch(99);
    *batch
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer}")) = value;
    batch.to_string()
}

enum Body {
    Json(String),
    Raw(&'static str, Vec<u8>),
}

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Body>,
    status: u16,
    /// The JSON path the error must name, for 422s.
    where_: Option<&'static str>,
}

fn post(name: &'static str, body: String, status: u16, where_: Option<&'static str>) -> Case {
    Case {
        name,
        method: "POST",
        path: "/api/v1/ingest".into(),
        body: Some(Body::Json(body)),
        status,
        where_,
    }
}

fn cases() -> Vec<Case> {
    let now = now_ms();
    let day = 24 * 3_600_000;
    vec![
        post("not JSON", "hello".into(), 400, None),
        post("truncated JSON", r#"{"service": "svc", "#.into(), 400, None),
        post(
            "trailing garbage",
            format!("{} x", valid_batch(1)),
            400,
            None,
        ),
        post("an array, not an object", "[]".into(), 422, Some("$")),
        post(
            "missing service",
            {
                let mut b = valid_batch(1);
                b.as_object_mut().unwrap().remove("service");
                b.to_string()
            },
            422,
            Some("$"),
        ),
        post(
            "unknown state",
            spoiled("/transitions/0/to", json!("ajar")),
            422,
            Some("$.transitions[0].to"),
        ),
        post(
            "negative count",
            spoiled("/aggregates/0/counts/failure", json!(-3)),
            422,
            Some("$.aggregates[0].counts.failure"),
        ),
        post(
            "counts not an object",
            spoiled("/aggregates/0/counts", json!(12)),
            422,
            Some("$.aggregates[0].counts"),
        ),
        post(
            "negative seq",
            spoiled("/seq", json!(-1)),
            422,
            Some("$.seq"),
        ),
        post(
            "seq as a string",
            spoiled("/seq", json!("7")),
            422,
            Some("$.seq"),
        ),
        post(
            "seq beyond u64",
            r#"{"service":"svc","instance":"i","seq":1e30,"sent_at_ms":0}"#.into(),
            422,
            Some("$.seq"),
        ),
        post(
            "name too long",
            spoiled("/aggregates/0/breaker", json!("x".repeat(201))),
            422,
            Some("$.aggregates[0].breaker"),
        ),
        post(
            "control character in a name",
            spoiled("/instance", json!("i\u{1b}[31m")),
            422,
            Some("$.instance"),
        ),
        post(
            "empty service",
            spoiled("/service", json!("")),
            422,
            Some("$.service"),
        ),
        post(
            "timestamp two days ahead",
            spoiled("/transitions/0/at_ms", json!(now + 2 * day)),
            422,
            Some("$.transitions[0].at_ms"),
        ),
        post(
            "timestamp two days back",
            spoiled("/aggregates/0/start_ms", json!(now - 2 * day)),
            422,
            Some("$.aggregates[0].start_ms"),
        ),
        post(
            "zero interval",
            spoiled("/aggregates/0/interval_ms", json!(0)),
            422,
            Some("$.aggregates[0].interval_ms"),
        ),
        post(
            "rate above one",
            spoiled("/aggregates/0/failure_rate", json!(1.5)),
            422,
            Some("$.aggregates[0].failure_rate"),
        ),
        post(
            "transition to the same state",
            spoiled("/transitions/0/to", json!("closed")),
            422,
            Some("$.transitions[0].to"),
        ),
        post(
            "too many histogram buckets",
            spoiled("/aggregates/0/latency/counts", json!(vec![1; 40])),
            422,
            Some("$.aggregates[0].latency.counts"),
        ),
        post(
            "body over the limit",
            format!("{{\"service\": \"{}\"}}", "x".repeat(1_100_000)),
            413,
            None,
        ),
        Case {
            name: "no content type",
            method: "POST",
            path: "/api/v1/ingest".into(),
            body: Some(Body::Raw("", valid_batch(1).to_string().into_bytes())),
            status: 415,
            where_: None,
        },
        Case {
            name: "text content type",
            method: "POST",
            path: "/api/v1/ingest".into(),
            body: Some(Body::Raw(
                "text/plain",
                valid_batch(1).to_string().into_bytes(),
            )),
            status: 415,
            where_: None,
        },
        Case {
            name: "series with from after to",
            method: "GET",
            path: "/api/v1/breakers/svc/db/series?from_ms=2000&to_ms=1000".into(),
            body: None,
            status: 400,
            where_: None,
        },
        Case {
            name: "series with a non-numeric bound",
            method: "GET",
            path: "/api/v1/breakers/svc/db/series?from_ms=yesterday".into(),
            body: None,
            status: 400,
            where_: None,
        },
        Case {
            name: "series of an unknown breaker",
            method: "GET",
            path: "/api/v1/breakers/svc/nope/series".into(),
            body: None,
            status: 404,
            where_: None,
        },
        Case {
            name: "transitions with a zero limit",
            method: "GET",
            path: "/api/v1/breakers/svc/db/transitions?limit=0".into(),
            body: None,
            status: 400,
            where_: None,
        },
        Case {
            name: "transitions into an unknown state",
            method: "GET",
            path: "/api/v1/breakers/svc/db/transitions?to=ajar".into(),
            body: None,
            status: 400,
            where_: None,
        },
        Case {
            name: "an unknown API route",
            method: "GET",
            path: "/api/v1/nothing-here".into(),
            body: None,
            status: 404,
            where_: None,
        },
    ]
}

#[tokio::test]
async fn malformed_requests_get_a_json_4xx_and_change_nothing() {
    let server = TestServer::start().await.unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let viewer = server.user_token("viewer", Role::Viewer).await.unwrap();
    let client = reqwest::Client::new();
    let ok = client
        .post(format!("{}/api/v1/ingest", server.url()))
        .bearer_auth(&key)
        .json(&valid_batch(1))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200, "{}", ok.text().await.unwrap());
    let pool = server.server.state.store.pool();
    let snapshot = || async {
        let a: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM batches")
            .fetch_one(pool)
            .await
            .unwrap();
        let b: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM aggregates")
            .fetch_one(pool)
            .await
            .unwrap();
        let c: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM transitions")
            .fetch_one(pool)
            .await
            .unwrap();
        (a, b, c)
    };
    let before = snapshot().await;
    assert_eq!(before, (1, 1, 1));

    let cases = cases();
    assert!(cases.len() >= 20);
    for case in cases {
        let url = format!("{}{}", server.url(), case.path);
        let token = if case.method == "POST" { &key } else { &viewer };
        let mut request = match case.method {
            "POST" => client.post(&url),
            _ => client.get(&url),
        }
        .bearer_auth(token);
        request = match case.body {
            Some(Body::Json(text)) => request
                .header("content-type", "application/json")
                .body(text),
            Some(Body::Raw("", bytes)) => request.body(bytes),
            Some(Body::Raw(content_type, bytes)) => {
                request.header("content-type", content_type).body(bytes)
            }
            None => request,
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, case.status, "{}: {text}", case.name);
        let body: protocol::ErrorBody = serde_json::from_str(&text).unwrap_or_else(|err| {
            panic!(
                "{}: the body is not an error JSON ({err}): {text}",
                case.name
            )
        });
        assert!(
            !body.error.is_empty() && !body.detail.is_empty(),
            "{}: {text}",
            case.name
        );
        if let Some(path) = case.where_ {
            assert_eq!(body.path.as_deref(), Some(path), "{}: {text}", case.name);
        }
    }
    assert_eq!(
        snapshot().await,
        before,
        "bad input changed what was stored"
    );
}
