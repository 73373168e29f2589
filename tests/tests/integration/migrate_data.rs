//! `fusebox migrate-data`: a SQLite server's history, filled through the HTTP API, copied into
//! PostgreSQL; a server started there shows the same breakers, history, alerts, configs and
//! auto-mode settings, takes the old credentials, and gives new rows ids after the copied ones;
//! the copied aggregates are in their day's partition once it has started.
//! A target that holds data is refused unless the copy is asked to replace it.
//!
//! The PostgreSQL side is a fresh database in the test process's throwaway cluster (in the
//! SQLite run of the suite too).

use std::net::SocketAddr;
use std::time::Duration;

use backend::auth::Role;
use backend::migrate_data::{self, MigrateData};
use backend::server::{self, RunningServer, ServerOptions};
use backend::time::now_ms;
use serde_json::{Value, json};
use tests::wait::wait_for;

const DEADLINE: Duration = Duration::from_secs(30);
const MINUTE: i64 = 60_000;

async fn start(database: String) -> RunningServer {
    let options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)), database);
    server::start(options).await.unwrap()
}

async fn get(url: &str, token: &str) -> Value {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "GET {url}: {status}: {text}");
    serde_json::from_str(&text).unwrap()
}

async fn put_config(base: &str, admin: &str, threshold: f64) -> Value {
    let response = reqwest::Client::new()
        .put(format!("{base}/api/v1/breakers/shop/payments/config"))
        .bearer_auth(admin)
        .json(&json!({"config": tests::wire_config(threshold), "reason": "tighter"}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body
}

/// Aggregates of two breakers over three past minutes, and `payments` tripping on shop-1.
fn history(base: i64) -> Value {
    let mut aggregates = Vec::new();
    for minute in 0..3 {
        for (breaker, failure) in [("payments", 6), ("search", 0)] {
            aggregates.push(json!({
                "breaker": breaker, "start_ms": base + minute * MINUTE, "interval_ms": 1000,
                "counts": {"success": 10 - failure, "failure": failure, "slow": 1},
                "latency": {"counts": [0, 0, 3, 6, 0, 1]},
                "state": "closed", "failure_rate_threshold": 0.5
            }));
        }
    }
    json!({
        "service": "shop", "instance": "shop-1", "seq": 1, "sent_at_ms": now_ms(),
        "aggregates": aggregates,
        "transitions": [{
            "breaker": "payments", "at_ms": base + 2 * MINUTE, "from": "closed", "to": "open",
            "trigger": {"kind": "failure_rate", "value": 0.6, "threshold": 0.5},
            "config_version": 1
        }]
    })
}

/// What the API shows of the copied history (the same read on either server).
async fn shown(base_url: &str, admin: &str, base: i64) -> Vec<(String, Value)> {
    let paths = [
        "/api/v1/services".to_string(),
        "/api/v1/breakers/shop/payments/transitions".to_string(),
        "/api/v1/breakers/shop/payments/config".to_string(),
        "/api/v1/alerts".to_string(),
        "/api/v1/audit".to_string(),
        "/api/v1/alerts/rules".to_string(),
        "/api/v1/breakers/shop/search/auto".to_string(),
        format!(
            "/api/v1/breakers/shop/payments/series?from_ms={base}&to_ms={}",
            base + 3 * MINUTE
        ),
        format!(
            "/api/v1/breakers/shop/search/series?from_ms={base}&to_ms={}",
            base + 3 * MINUTE
        ),
    ];
    let mut out = Vec::new();
    for path in paths {
        let value = get(&format!("{base_url}{path}"), admin).await;
        out.push((path, value));
    }
    // The fleet: breakers and their states (not the rates, which age with the clock).
    let breakers = get(&format!("{base_url}/api/v1/breakers"), admin).await;
    let fleet: Vec<Value> = (breakers.as_array().unwrap().iter())
        .map(|b| json!([b["service"], b["breaker"], b["state"], b["instances"]]))
        .collect();
    out.push((
        "/api/v1/breakers (names, states)".into(),
        Value::from(fleet),
    ));
    out
}

fn max_id(values: &Value) -> i64 {
    (values.as_array().unwrap().iter())
        .map(|v| v["id"].as_i64().unwrap())
        .max()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_history_moves_to_postgres() {
    let Some(target) = tests::postgres::database_for_test() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fusebox.db");

    // A SQLite server, filled through its API: two breakers' aggregates, a trip and its
    // alert, a config, ingest keys (one revoked) and an admin.
    let sqlite = start(format!("sqlite://{}", file.display())).await;
    let store = &sqlite.state.store;
    let admin = backend::auth::add_user(store, "ada", Role::Admin)
        .await
        .unwrap()
        .secret;
    let key = backend::auth::create_api_key(store, "shop").await.unwrap();
    let old = backend::auth::create_api_key(store, "shop").await.unwrap();
    assert!(backend::auth::revoke_api_key(store, old.id).await.unwrap());
    let url = sqlite.url();
    let base = (now_ms() - 30 * MINUTE).div_euclid(MINUTE) * MINUTE;
    tests::post_batch(&url, &key.secret, &history(base)).await;
    let saved = put_config(&url, &admin, 0.4).await;
    // Auto-mode settings (kept off), for a boolean column.
    let response = reqwest::Client::new()
        .put(format!("{url}/api/v1/breakers/shop/search/auto"))
        .bearer_auth(&admin)
        .json(&json!({"enabled": false, "max_step": 0.3}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let alerts = wait_for("the trip's alert", DEADLINE, || async {
        let alerts = get(&format!("{url}/api/v1/alerts"), &admin).await;
        let firing = (alerts.as_array()?.iter())
            .any(|a| a["rule"] == "breaker-opened" && a["status"] == "firing");
        firing.then_some(alerts)
    })
    .await;
    let before = shown(&url, &admin, base).await;
    let transitions = get(
        &format!("{url}/api/v1/breakers/shop/payments/transitions"),
        &admin,
    )
    .await;
    let last_transition = max_id(&transitions);
    let last_alert = max_id(&alerts);
    sqlite.shutdown().await.unwrap();

    // The copy, into a fresh PostgreSQL database; the source given as a plain path.
    let what = MigrateData {
        from: file.display().to_string(),
        to: target.clone(),
        replace: false,
    };
    let report = migrate_data::run(&what).await.unwrap();
    let rows = |table: &str| {
        (report.tables.iter())
            .find(|t| t.table == table)
            .unwrap_or_else(|| panic!("no count for {table}: {report:?}"))
            .rows
    };
    assert_eq!(rows("breakers"), 2);
    assert_eq!(rows("aggregates"), 6);
    assert_eq!(rows("transitions"), 1);
    assert_eq!(rows("api_keys"), 2);
    assert_eq!(rows("users"), 1);
    assert_eq!(rows("alerts"), 1);
    assert_eq!(rows("breaker_configs"), 1);
    assert_eq!(rows("auto_tune"), 1);
    assert!(!report.replaced);
    let order: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
    let at = |table: &str| order.iter().position(|t| *t == table).unwrap();
    assert!(at("breakers") < at("transitions") && at("alerts") < at("alert_events"));
    assert!(at("alert_events") < at("alert_outbox") && at("alert_channels") < at("alert_outbox"));

    // Copying again is refused (the target holds data now) and changes nothing; with
    // --replace it copies the same rows again in place of what was there.
    let refused = migrate_data::run(&what).await.unwrap_err().to_string();
    assert!(
        refused.contains("already holds data")
            && refused.contains("breakers (2 rows)")
            && refused.contains("--replace")
            && refused.contains("nothing was written"),
        "{refused}"
    );
    let replaced = migrate_data::run(&MigrateData {
        replace: true,
        ..what.clone()
    })
    .await
    .unwrap();
    assert!(replaced.replaced);
    assert_eq!(replaced.tables, report.tables);

    // The copied aggregates are in their day's partition, or, when no partition of their day
    // was made yet (one older than the days the migrations make), wait in the default one
    // until a server started on PostgreSQL moves them there, before it takes reports.
    let read = |sql: &'static str| {
        let url = target.clone();
        async move {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            pool.close().await;
            n
        }
    };
    let in_default = || read("SELECT COUNT(*) FROM aggregates_default");
    let last_aggregate = || read("SELECT MAX(id) FROM aggregates");
    assert_eq!(read("SELECT COUNT(*) FROM aggregates").await, 6);
    let copied_last_aggregate = last_aggregate().await;
    // A server on PostgreSQL shows the same history to the same admin token.
    let postgres = start(target.clone()).await;
    assert_eq!(in_default().await, 0);
    let url = postgres.url();
    let after = shown(&url, &admin, base).await;
    for ((path, old), (_, new)) in before.iter().zip(&after) {
        assert_eq!(old, new, "{path} differs after the copy");
    }

    // The old ingest key still ingests, the revoked one does not; the new transition, alert
    // and config version come after the copied ones.
    let next = json!({
        "service": "shop", "instance": "shop-1", "seq": 2, "sent_at_ms": now_ms(),
        "aggregates": [{"breaker": "payments", "start_ms": now_ms() - 3_000, "interval_ms": 1000,
                        "counts": {"success": 1}, "state": "closed"}],
        "transitions": [
            {"breaker": "payments", "at_ms": now_ms() - 2_000, "from": "open", "to": "closed",
             "config_version": 2},
            {"breaker": "payments", "at_ms": now_ms() - 1_000, "from": "closed", "to": "open",
             "trigger": {"kind": "failure_rate", "value": 0.7, "threshold": 0.4},
             "config_version": 2}
        ]
    });
    tests::post_batch(&url, &key.secret, &next).await;
    let refused = reqwest::Client::new()
        .post(format!("{url}/api/v1/ingest"))
        .bearer_auth(&old.secret)
        .json(&next)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(refused, 401, "the revoked key stays revoked");
    let transitions = get(
        &format!("{url}/api/v1/breakers/shop/payments/transitions"),
        &admin,
    )
    .await;
    let ids: Vec<i64> = (transitions.as_array().unwrap().iter())
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        [last_transition + 2, last_transition + 1, last_transition]
    );
    let alerts = wait_for("the new trip's alert", DEADLINE, || async {
        let alerts = get(&format!("{url}/api/v1/alerts"), &admin).await;
        (alerts.as_array()?.len() == 2).then_some(alerts)
    })
    .await;
    assert_eq!(max_id(&alerts), last_alert + 1);
    let config = put_config(&url, &admin, 0.3).await;
    assert_eq!(
        config["config"]["version"].as_i64().unwrap(),
        saved["config"]["version"].as_i64().unwrap() + 1,
        "{config}"
    );
    assert_eq!(last_aggregate().await, copied_last_aggregate + 1);
    let fresh = backend::auth::create_api_key(&postgres.state.store, "shop")
        .await
        .unwrap();
    assert_eq!(fresh.id, old.id + 1, "a new key gets the next id");
    postgres.shutdown().await.unwrap();
}
