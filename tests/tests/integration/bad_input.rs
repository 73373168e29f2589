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

/// A batch in the compact form, changed by `change` after it was made from `valid_batch(seq)`.
fn compact(seq: u64, change: impl FnOnce(&mut protocol::IngestBatch)) -> Vec<u8> {
    compact_of(valid_batch(seq), change)
}

/// `batch` in the compact form, changed by `change` first.
fn compact_of(batch: Value, change: impl FnOnce(&mut protocol::IngestBatch)) -> Vec<u8> {
    let mut batch: protocol::IngestBatch = serde_json::from_value(batch).unwrap();
    change(&mut batch);
    protocol::compact::encode(&batch)
}

/// A valid batch spoiled at one JSON pointer (a field of an object is added if missing).
fn spoiled(pointer: &str, value: Value) -> String {
    let mut batch = valid_batch(99);
    match batch.pointer_mut(pointer) {
        Some(slot) => *slot = value,
        None => {
            let (parent, field) = pointer.rsplit_once('/').unwrap();
            batch
                .pointer_mut(parent)
                .and_then(Value::as_object_mut)
                .unwrap_or_else(|| panic!("no object at {parent}"))
                .insert(field.to_string(), value);
        }
    }
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
    post_body(name, Body::Json(body), status, where_)
}

/// An ingest POST of `bytes` declared as `content_type` ("" for none).
fn post_raw(
    name: &'static str,
    content_type: &'static str,
    bytes: Vec<u8>,
    status: u16,
    where_: Option<&'static str>,
) -> Case {
    post_body(name, Body::Raw(content_type, bytes), status, where_)
}

fn post_body(name: &'static str, body: Body, status: u16, where_: Option<&'static str>) -> Case {
    Case {
        name,
        method: "POST",
        path: "/api/v1/ingest".into(),
        body: Some(body),
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
        post_raw(
            "no content type",
            "",
            valid_batch(1).to_string().into_bytes(),
            415,
            None,
        ),
        post_raw(
            "text content type",
            "text/plain",
            valid_batch(1).to_string().into_bytes(),
            415,
            None,
        ),
        post_raw(
            "compact body cut short",
            protocol::compact::MEDIA_TYPE,
            {
                let bytes = compact(98, |_| {});
                bytes[..bytes.len() - 3].to_vec()
            },
            400,
            None,
        ),
        post_raw(
            "compact body with bytes after the batch",
            protocol::compact::MEDIA_TYPE,
            {
                let mut bytes = compact(98, |_| {});
                bytes.push(0);
                bytes
            },
            400,
            None,
        ),
        // By position: the compact form has no field names.
        post_raw(
            "compact body with a number beyond int64",
            protocol::compact::MEDIA_TYPE,
            compact(98, |b| b.aggregates[0].counts.success = u64::MAX),
            422,
            Some("$[4][0][3][0]"),
        ),
        post_raw(
            "compact body with an invalid field",
            protocol::compact::MEDIA_TYPE,
            compact(98, |b| b.aggregates[0].failure_rate = Some(1.5)),
            422,
            Some("$.aggregates[0].failure_rate"),
        ),
        post_raw(
            "compact body in an unknown version",
            "application/vnd.fusebox.ingest+postcard; version=2",
            compact(98, |_| {}),
            415,
            None,
        ),
        post_raw(
            "compact body without its version",
            "application/vnd.fusebox.ingest+postcard",
            compact(98, |_| {}),
            415,
            None,
        ),
        Case {
            name: "series before the epoch",
            method: "GET",
            path: "/api/v1/breakers/svc/db/series?from_ms=-1000&to_ms=1000".into(),
            body: None,
            status: 400,
            where_: None,
        },
        Case {
            name: "timeline past the year 9999",
            method: "GET",
            path: "/api/v1/breakers/svc/db/timeline?to_ms=9223372036854775807".into(),
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
    let snapshot = || async {
        (
            server.scalar("SELECT COUNT(*) FROM batches").await,
            server.scalar("SELECT COUNT(*) FROM aggregates").await,
            server.scalar("SELECT COUNT(*) FROM transitions").await,
        )
    };
    let before = snapshot().await;
    assert_eq!(before, (1, 1, 1));

    let cases = cases();
    assert!(cases.len() >= 20);
    for case in cases {
        // A body in the compact form that is not a batch in it is `malformed_body`, not JSON's.
        let compact_body =
            matches!(&case.body, Some(Body::Raw(t, _)) if *t == protocol::compact::MEDIA_TYPE);
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
        if compact_body && status == 400 {
            assert_eq!(body.error, "malformed_body", "{}: {text}", case.name);
        }
    }
    assert_eq!(
        snapshot().await,
        before,
        "bad input changed what was stored"
    );
}

/// Row counts of the tables a request could write, to show that refused input changed nothing.
async fn stored(server: &TestServer) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for (table, query) in [
        ("batches", "SELECT COUNT(*) FROM batches"),
        ("aggregates", "SELECT COUNT(*) FROM aggregates"),
        ("transitions", "SELECT COUNT(*) FROM transitions"),
        ("breakers", "SELECT COUNT(*) FROM breakers"),
        ("instance_states", "SELECT COUNT(*) FROM instance_states"),
        ("breaker_configs", "SELECT COUNT(*) FROM breaker_configs"),
        ("config_status", "SELECT COUNT(*) FROM config_status"),
        ("audit_log", "SELECT COUNT(*) FROM audit_log"),
    ] {
        counts.push((table, server.scalar(query).await));
    }
    counts
}

/// A server holding one valid batch and one stored config, with an ingest key and an admin token.
struct Stocked {
    server: TestServer,
    key: String,
    admin: String,
}

async fn stocked() -> Stocked {
    let server = TestServer::start().await.unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let _: Value = server
        .post_json("/api/v1/ingest", &key, &valid_batch(1))
        .await;
    let response = reqwest::Client::new()
        .put(format!("{}/api/v1/breakers/svc/db/config", server.url()))
        .bearer_auth(&admin)
        .json(&json!({"config": {
            "version": 0, "failure_rate_threshold": 0.5,
            "window": {"kind": "count", "calls": 20}, "minimum_calls": 10,
            "wait": {"kind": "fixed", "ms": 5000},
            "half_open_probes": 3, "half_open_successes": 3}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{}",
        response.text().await.unwrap()
    );
    Stocked { server, key, admin }
}

impl Stocked {
    /// Sends `body` and checks the answer is `status` with an error naming `path`, whose detail
    /// holds `detail`, and that nothing stored changed. Returns the error body.
    async fn refused(
        &self,
        (method, route): (&str, &str),
        body: String,
        (status, path, detail): (u16, &str, &str),
    ) -> protocol::ErrorBody {
        let before = stored(&self.server).await;
        let url = format!("{}{route}", self.server.url());
        let client = reqwest::Client::new();
        let (request, token) = match method {
            "PUT" => (client.put(url), &self.admin),
            _ if route.starts_with("/api/v1/ingest") => (client.post(url), &self.key),
            _ => (client.post(url), &self.admin),
        };
        let response = request
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let got = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(got, status, "{body} answered {text}");
        let error: protocol::ErrorBody = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("not an error JSON ({err}): {text}"));
        assert_eq!(error.path.as_deref(), Some(path), "{body} answered {text}");
        assert!(error.detail.contains(detail), "{body} answered {text}");
        assert_eq!(
            stored(&self.server).await,
            before,
            "{body} changed the store"
        );
        error
    }

    async fn ingest_refused(&self, body: String, path: &str, detail: &str) {
        self.refused(("POST", "/api/v1/ingest"), body, (422, path, detail))
            .await;
    }
}

#[tokio::test]
async fn counts_beyond_what_an_interval_holds_are_refused() {
    let s = stocked().await;
    // i64::MAX fits the wire's int64 but no 1 s interval holds that many calls.
    s.ingest_refused(
        spoiled("/aggregates/0/counts/success", json!(i64::MAX)),
        "$.aggregates[0].counts",
        "max_calls_per_s = 1000000",
    )
    .await;
    // Two counts whose sum wraps a u64.
    let mut batch = valid_batch(2);
    batch["aggregates"][0]["counts"] = json!({"success": i64::MAX, "failure": i64::MAX,
                                              "timeout": i64::MAX});
    s.ingest_refused(
        batch.to_string(),
        "$.aggregates[0].counts",
        "max_calls_per_s",
    )
    .await;
    // One more call than a second at the default limit.
    s.ingest_refused(
        spoiled("/aggregates/0/counts/success", json!(1_000_000 - 3 + 1)),
        "$.aggregates[0].counts",
        "exceeds max_calls_per_s",
    )
    .await;
}

#[tokio::test]
async fn numbers_beyond_int64_are_refused() {
    let s = stocked().await;
    // u64::MAX decodes as a u64 but is over the int64 the schema states: 422, not 400.
    for (pointer, path) in [
        (
            "/aggregates/0/counts/success",
            "$.aggregates[0].counts.success",
        ),
        ("/seq", "$.seq"),
        (
            "/aggregates/0/config_version",
            "$.aggregates[0].config_version",
        ),
        (
            "/transitions/0/config_version",
            "$.transitions[0].config_version",
        ),
        (
            "/aggregates/0/latency/counts/1",
            "$.aggregates[0].latency.counts[1]",
        ),
    ] {
        s.ingest_refused(spoiled(pointer, json!(u64::MAX)), path, "int64")
            .await;
    }
    let mut batch = valid_batch(2);
    batch["dropped"] = json!({"aggregates_dropped": u64::MAX});
    s.ingest_refused(batch.to_string(), "$.dropped.aggregates_dropped", "int64")
        .await;
    s.refused(
        ("POST", "/api/v1/breakers/svc/db/config/restore"),
        json!({"version": u64::MAX}).to_string(),
        (422, "$.version", "int64"),
    )
    .await;
}

#[tokio::test]
async fn slow_calls_beyond_the_calls_that_ran_are_refused() {
    let s = stocked().await;
    // 7 successes and 3 failures ran; 10 rejected calls never did, so they cannot be slow.
    let mut batch = valid_batch(2);
    batch["aggregates"][0]["counts"] =
        json!({"success": 7, "failure": 3, "rejected": 10, "slow": 11});
    s.ingest_refused(batch.to_string(), "$.aggregates[0].counts.slow", "11")
        .await;
}

#[tokio::test]
async fn histograms_beyond_the_calls_that_ran_are_refused() {
    let s = stocked().await;
    s.ingest_refused(
        spoiled("/aggregates/0/latency/counts", json!([0, 5, 6])),
        "$.aggregates[0].latency.counts",
        "11",
    )
    .await;
}

#[tokio::test]
async fn unknown_trigger_kinds_are_refused() {
    let s = stocked().await;
    s.ingest_refused(
        spoiled("/transitions/0/trigger/kind", json!("gremlins")),
        "$.transitions[0].trigger.kind",
        "failure_rate",
    )
    .await;
}

#[tokio::test]
async fn names_that_spoof_others_are_refused() {
    let s = stocked().await;
    s.ingest_refused(
        spoiled("/aggregates/0/breaker", json!("db\u{202E}nimda")),
        "$.aggregates[0].breaker",
        "U+202E",
    )
    .await;
    s.ingest_refused(
        spoiled("/instance", json!("i-1\u{2028}i-2")),
        "$.instance",
        "U+2028",
    )
    .await;
    let now = now_ms();
    s.refused(
        ("POST", "/api/v1/ingest/calls"),
        json!({"service": "svc", "instance": "i-1", "seq": 2, "sent_at_ms": now,
               "calls": [{"breaker": "d\u{200B}b", "at_ms": now, "outcome": "success"}]})
        .to_string(),
        (422, "$.calls[0].breaker", "U+200B"),
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_are_refused() {
    let s = stocked().await;
    let mut batch = valid_batch(2);
    batch["priority"] = json!("high");
    s.ingest_refused(batch.to_string(), "$.priority", "unknown field")
        .await;
    s.ingest_refused(
        spoiled("/aggregates/0/counts/sucess", json!(1)),
        "$.aggregates[0].counts.sucess",
        "unknown field",
    )
    .await;
    s.ingest_refused(
        spoiled("/transitions/0/trigger/why", json!("x")),
        "$.transitions[0].trigger.why",
        "unknown field",
    )
    .await;
    let now = now_ms();
    s.refused(
        ("POST", "/api/v1/ingest/calls"),
        json!({"service": "svc", "instance": "i-1", "seq": 2, "sent_at_ms": now,
               "calls": [{"breaker": "db", "at_ms": now, "outcome": "success", "ms": 3}]})
        .to_string(),
        (422, "$.calls[0].ms", "unknown field"),
    )
    .await;
    // Admin bodies: a mistyped field must not be dropped silently.
    s.refused(
        ("POST", "/api/v1/breakers/svc/db/control"),
        json!({"mode": "forced_open", "for_ms": 60000}).to_string(),
        (422, "$.for_ms", "unknown field"),
    )
    .await;
    s.refused(
        ("PUT", "/api/v1/breakers/svc/db/config"),
        json!({"config": {
            "version": 0, "failure_rate_threshold": 0.5,
            "window": {"kind": "count", "calls": 20}, "minimum_calls": 10,
            "wait": {"kind": "fixed", "ms": 5000, "jitter": 0.1},
            "half_open_probes": 3, "half_open_successes": 3}})
        .to_string(),
        (422, "$.config.wait.jitter", "unknown field"),
    )
    .await;
}

#[tokio::test]
async fn a_compact_batch_is_stored_as_its_json_twin_would_be() {
    let server = TestServer::start().await.unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let client = reqwest::Client::new();
    let post = |content_type: &'static str, body: Vec<u8>| {
        client
            .post(format!("{}/api/v1/ingest", server.url()))
            .bearer_auth(&key)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let ack = |response: reqwest::Response| async move {
        let ack: protocol::IngestAck = response.json().await.unwrap();
        (ack.seq, ack.duplicate)
    };
    // One batch, from instance i-1 in the compact form and from i-2 as JSON.
    let batch = valid_batch(7);
    let mut twin = batch.clone();
    twin["instance"] = json!("i-2");
    let compact_body = compact_of(batch.clone(), |_| {});
    let sent = post(protocol::compact::MEDIA_TYPE, compact_body)
        .await
        .unwrap();
    assert_eq!(ack(sent).await, (7, false));
    let sent = post("application/json", twin.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(ack(sent).await, (7, false));
    // The same batch as JSON from i-1 is the one already stored.
    let sent = post("application/json", batch.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(ack(sent).await, (7, true));
    // Each instance stored one aggregate and one transition, and the two are the same rows.
    assert_eq!(
        (
            server
                .scalar("SELECT COUNT(*) FROM aggregates WHERE instance = 'i-1'")
                .await,
            server
                .scalar("SELECT COUNT(*) FROM aggregates WHERE instance = 'i-2'")
                .await,
            server
                .scalar("SELECT COUNT(*) FROM transitions WHERE instance = 'i-1'")
                .await,
            server
                .scalar("SELECT COUNT(*) FROM transitions WHERE instance = 'i-2'")
                .await,
        ),
        (1, 1, 1, 1)
    );
    let same_aggregates = server
        .scalar(
            "SELECT COUNT(*) FROM (
                SELECT breaker_id, start_ms, interval_ms, success, failure, timeout, rejected,
                       slow, ignored, latency, state, failure_rate, failure_rate_threshold,
                       config_version
                FROM aggregates WHERE instance = 'i-1'
                INTERSECT
                SELECT breaker_id, start_ms, interval_ms, success, failure, timeout, rejected,
                       slow, ignored, latency, state, failure_rate, failure_rate_threshold,
                       config_version
                FROM aggregates WHERE instance = 'i-2') AS same",
        )
        .await;
    let same_transitions = server
        .scalar(
            "SELECT COUNT(*) FROM (
                SELECT breaker_id, at_ms, from_state, to_state, trigger_kind, trigger_value,
                       trigger_threshold, config_version
                FROM transitions WHERE instance = 'i-1'
                INTERSECT
                SELECT breaker_id, at_ms, from_state, to_state, trigger_kind, trigger_value,
                       trigger_threshold, config_version
                FROM transitions WHERE instance = 'i-2') AS same",
        )
        .await;
    assert_eq!((same_aggregates, same_transitions), (1, 1));
    assert_eq!(
        server
            .scalar("SELECT COUNT(*) FROM aggregates WHERE success = 7 AND failure = 3")
            .await,
        2
    );
}
