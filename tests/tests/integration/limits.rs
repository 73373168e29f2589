//! Bounded by design: cardinality limits at ingest (a batch beyond one is refused whole with a
//! 422 naming the limit), list endpoints walked page by page through `Link` headers, and sums
//! of counts that cannot overflow into a server error.

use std::collections::HashSet;

use backend::ingest::limits::Limits;
use backend::time::now_ms;
use protocol::{BreakerSummary, Series, ServiceSummary, Sparkline};
use serde_json::{Value, json};
use tests::TestServer;

fn aggregate(breaker: &str, start_ms: i64, success: u64) -> Value {
    json!({"breaker": breaker, "start_ms": start_ms, "interval_ms": 1000,
           "counts": {"success": success}, "state": "closed"})
}

fn batch(service: &str, instance: &str, seq: u64, aggregates: Vec<Value>) -> Value {
    json!({"service": service, "instance": instance, "seq": seq, "sent_at_ms": now_ms(),
           "aggregates": aggregates})
}

/// POSTs `body` to `path` (an ingest route) as admin; the status and the JSON answer.
async fn post(server: &TestServer, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", server.url()))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("the server answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

/// Asserts a 422 `limit_exceeded` at `path` whose detail names `limit = value`.
#[track_caller]
fn assert_refused(answer: &(u16, Value), path: &str, limit: &str, value: usize) {
    let (status, body) = answer;
    assert_eq!(*status, 422, "{body}");
    assert_eq!(body["error"], "limit_exceeded", "{body}");
    assert_eq!(body["path"], path, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("limits.{limit} = {value}")),
        "{detail}"
    );
}

async fn text(server: &TestServer, path: &str) -> String {
    reqwest::get(format!("{}{path}", server.url()))
        .await
        .expect("the server answers")
        .text()
        .await
        .expect("a body")
}

/// The value of the one sample of `/metrics` whose line starts with `series` (name and labels).
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

async fn total_success(server: &TestServer, service: &str, breaker: &str) -> u64 {
    let series: Series = server
        .get_json(
            &format!("/api/v1/breakers/{service}/{breaker}/series"),
            None,
        )
        .await;
    series.points.iter().map(|p| p.counts.success).sum()
}

#[tokio::test]
async fn a_batch_beyond_each_limit_is_refused_whole() {
    let limits = Limits {
        max_services: 2,
        max_breakers_per_service: 3,
        max_instances_per_service: 2,
        ..Limits::default()
    };
    let server = TestServer::start_with(|o| {
        o.anonymous_viewer = true;
        o.limits = limits;
    })
    .await
    .unwrap();
    let admin = server
        .user_token("root", backend::auth::Role::Admin)
        .await
        .unwrap();
    let t = now_ms() - 10_000;
    let ingest = "/api/v1/ingest";

    // Up to each limit: accepted.
    let full = batch(
        "a",
        "i-1",
        1,
        vec![
            aggregate("b0", t, 7),
            aggregate("b1", t, 1),
            aggregate("b2", t, 1),
        ],
    );
    assert_eq!(post(&server, ingest, &admin, &full).await.0, 200);

    // A new breaker beyond the limit, after an existing one: nothing of the batch is stored.
    let beyond = batch(
        "a",
        "i-1",
        2,
        vec![aggregate("b0", t + 1_000, 1_000), aggregate("b3", t, 1)],
    );
    assert_refused(
        &post(&server, ingest, &admin, &beyond).await,
        "$.aggregates[1].breaker",
        "max_breakers_per_service",
        3,
    );
    let breakers: Vec<BreakerSummary> = server.get_json("/api/v1/breakers", None).await;
    assert_eq!(breakers.len(), 3);
    assert_eq!(total_success(&server, "a", "b0").await, 7);
    // The same names again: accepted.
    let existing = batch("a", "i-1", 3, vec![aggregate("b0", t + 1_000, 5)]);
    assert_eq!(post(&server, ingest, &admin, &existing).await.0, 200);
    assert_eq!(total_success(&server, "a", "b0").await, 12);
    // Per-call events are held to the same limit, and the path points into their body.
    let calls = json!({"service": "a", "instance": "i-1", "seq": 4, "sent_at_ms": now_ms(),
        "calls": [{"breaker": "b1", "at_ms": t, "outcome": "success", "state": "closed"},
                  {"breaker": "b9", "at_ms": t, "outcome": "success", "state": "closed"}]});
    assert_refused(
        &post(&server, "/api/v1/ingest/calls", &admin, &calls).await,
        "$.calls[1].breaker",
        "max_breakers_per_service",
        3,
    );

    // Instances per service.
    let second = batch("a", "i-2", 1, vec![aggregate("b0", t, 1)]);
    assert_eq!(post(&server, ingest, &admin, &second).await.0, 200);
    let third = batch("a", "i-3", 1, vec![aggregate("b0", t, 1)]);
    assert_refused(
        &post(&server, ingest, &admin, &third).await,
        "$.instance",
        "max_instances_per_service",
        2,
    );

    // Services.
    let other = batch("b", "i-1", 1, vec![aggregate("x", t, 1)]);
    assert_eq!(post(&server, ingest, &admin, &other).await.0, 200);
    let third_service = batch("c", "i-1", 1, vec![aggregate("x", t, 1)]);
    assert_refused(
        &post(&server, ingest, &admin, &third_service).await,
        "$.service",
        "max_services",
        2,
    );
    let services: Vec<ServiceSummary> = server.get_json("/api/v1/services", None).await;
    assert_eq!(services.len(), 2);

    let metrics = text(&server, "/metrics").await;
    let rejections = |limit: &str| {
        sample(
            &metrics,
            &format!("fusebox_ingest_limit_rejections_total{{limit=\"{limit}\"}}"),
        )
    };
    assert_eq!(
        rejections("max_breakers_per_service"),
        Some(2.0),
        "{metrics}"
    );
    assert_eq!(rejections("max_instances_per_service"), Some(1.0));
    assert_eq!(rejections("max_services"), Some(1.0));
    assert_eq!(
        sample(&metrics, "fusebox_limit{limit=\"max_services\"}"),
        Some(2.0)
    );
    assert_eq!(sample(&metrics, "fusebox_services"), Some(2.0));

    // The counts are rebuilt from the store at restart.
    let server = server.restart().await.unwrap();
    assert_refused(
        &post(
            &server,
            ingest,
            &admin,
            &batch("a", "i-1", 9, vec![aggregate("b4", t, 1)]),
        )
        .await,
        "$.aggregates[0].breaker",
        "max_breakers_per_service",
        3,
    );
    assert_refused(
        &post(
            &server,
            ingest,
            &admin,
            &batch("a", "i-4", 1, vec![aggregate("b0", t, 1)]),
        )
        .await,
        "$.instance",
        "max_instances_per_service",
        2,
    );
}

/// GETs every page of `path`, following `Link: <…>; rel="next"`; the items and the page count.
async fn walk<T: serde::de::DeserializeOwned>(server: &TestServer, path: &str) -> (Vec<T>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut next = Some(format!("{}{path}", server.url()));
    while let Some(url) = next.take() {
        let response = reqwest::get(&url).await.expect("the server answers");
        assert_eq!(response.status(), 200, "{url}");
        next = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(|link| {
                let (target, rel) = link.split_once(';')?;
                rel.contains("rel=\"next\"").then(|| {
                    let target = target.trim().trim_start_matches('<').trim_end_matches('>');
                    format!("{}{target}", server.url())
                })
            });
        let page: Vec<T> = response.json().await.expect("a JSON array");
        items.extend(page);
        pages += 1;
        assert!(pages <= 100, "the walk does not end");
    }
    (items, pages)
}

#[tokio::test]
async fn pages_walk_every_breaker_exactly_once() {
    let server = TestServer::start_with(|o| o.anonymous_viewer = true)
        .await
        .unwrap();
    let admin = server
        .user_token("root", backend::auth::Role::Admin)
        .await
        .unwrap();
    let t = now_ms() - 5_000;
    let mut expected = Vec::new();
    for (service, n) in [("s0", 900), ("s1", 900), ("s2", 700)] {
        let aggregates = (0..n)
            .map(|idx| {
                let name = format!("b{idx:04}");
                expected.push((service.to_string(), name.clone()));
                aggregate(&name, t, 1)
            })
            .collect();
        let answer = post(
            &server,
            "/api/v1/ingest",
            &admin,
            &batch(service, "i-1", 1, aggregates),
        )
        .await;
        assert_eq!(answer.0, 200, "{}", answer.1);
    }
    expected.sort();

    let (breakers, pages) = walk::<BreakerSummary>(&server, "/api/v1/breakers?limit=1000").await;
    assert_eq!(pages, 3);
    let seen: Vec<_> = breakers
        .iter()
        .map(|b| (b.service.clone(), b.breaker.clone()))
        .collect();
    assert_eq!(seen, expected, "every breaker once, in order");

    let (lines, pages) = walk::<Sparkline>(&server, "/api/v1/sparklines?limit=1000").await;
    assert_eq!(pages, 3);
    let seen: Vec<_> = lines
        .iter()
        .map(|b| (b.service.clone(), b.breaker.clone()))
        .collect();
    assert_eq!(seen, expected);

    // Filtered by service, and the default page size.
    let (one, pages) = walk::<BreakerSummary>(&server, "/api/v1/breakers?service=s1").await;
    assert_eq!((one.len(), pages), (900, 1));
    let unique: HashSet<_> = one.iter().map(|b| b.breaker.clone()).collect();
    assert_eq!(unique.len(), 900);

    let (services, pages) = walk::<ServiceSummary>(&server, "/api/v1/services?limit=2").await;
    assert_eq!(pages, 2);
    let names: Vec<_> = services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(names, ["s0", "s1", "s2"]);
    assert_eq!(services[0].breakers, 900);

    for bad in ["limit=0", "limit=5001"] {
        let response = reqwest::get(format!("{}/api/v1/breakers?{bad}", server.url()))
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "bad_query", "{bad}");
    }
    // A cursor that is no `[service, breaker]` array is a service name to start from.
    let (from_s1, _) = walk::<BreakerSummary>(&server, "/api/v1/breakers?after=s1").await;
    let want: Vec<_> = breakers
        .iter()
        .filter(|b| b.service.as_str() >= "s1")
        .map(|b| (&b.service, &b.breaker))
        .collect();
    assert!(!want.is_empty() && want.len() < breakers.len());
    let got: Vec<_> = from_s1.iter().map(|b| (&b.service, &b.breaker)).collect();
    assert_eq!(got, want);
}

/// `[limits] max_calls_per_s` bounds what one aggregate may claim for its interval.
#[tokio::test]
async fn the_call_rate_limit_is_configurable() {
    let server = TestServer::start_with(|o| o.limits.max_calls_per_s = 50)
        .await
        .unwrap();
    let admin = server
        .user_token("root", backend::auth::Role::Admin)
        .await
        .unwrap();
    let t = now_ms() - 5_000;
    let answer = post(
        &server,
        "/api/v1/ingest",
        &admin,
        &batch("s", "i", 1, vec![aggregate("db", t, 50)]),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let answer = post(
        &server,
        "/api/v1/ingest",
        &admin,
        &batch("s", "i", 2, vec![aggregate("db", t, 51)]),
    )
    .await;
    assert_eq!(answer.0, 422, "{}", answer.1);
    assert_eq!(answer.1["path"], "$.aggregates[0].counts");
    let detail = answer.1["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("max_calls_per_s = 50"), "{detail}");
}

/// Config-status reports neither create breakers nor add instances beyond the limit: the
/// service's instances are those seen at ingest and those that reported status before.
#[tokio::test]
async fn status_reports_are_held_to_the_limits() {
    let server = TestServer::start_with(|o| {
        o.anonymous_viewer = true;
        o.limits.max_instances_per_service = 2;
    })
    .await
    .unwrap();
    let key = server.ingest_key("s").await.unwrap();
    let t = now_ms() - 5_000;
    let answer = post(
        &server,
        "/api/v1/ingest",
        &key,
        &batch("s", "i-1", 1, vec![aggregate("db", t, 1)]),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let report = |instance: &str, breaker: &str| {
        json!({"service": "s", "instance": instance, "at_ms": now_ms(),
               "breakers": [{"breaker": breaker, "running_version": 0}]})
    };
    let send = |body: Value| {
        let (url, key) = (server.url(), key.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{url}/api/v1/config-status"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // i-1 is known from ingest; x-1 is the second instance; x-2 would be a third.
    assert_eq!(send(report("i-1", "db")).await.status(), 204);
    assert_eq!(send(report("x-1", "db")).await.status(), 204);
    assert_eq!(
        send(report("x-1", "db")).await.status(),
        204,
        "a known one again"
    );
    let refused = send(report("x-2", "db")).await;
    assert_eq!(refused.status(), 422);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        (&body["error"], &body["path"]),
        (&json!("limit_exceeded"), &json!("$.instance"))
    );
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("limits.max_instances_per_service = 2"),
        "{body}"
    );
    // A status for a breaker the server does not know is not kept, and creates nothing.
    assert_eq!(send(report("i-1", "ghost")).await.status(), 204);
    let breakers: Vec<BreakerSummary> = server.get_json("/api/v1/breakers", None).await;
    let names: Vec<_> = breakers.iter().map(|b| b.breaker.as_str()).collect();
    assert_eq!(names, ["db"]);
    let ghost = reqwest::get(format!("{}/api/v1/breakers/s/ghost/config", server.url()))
        .await
        .unwrap();
    assert_eq!(ghost.status(), 404);
}
