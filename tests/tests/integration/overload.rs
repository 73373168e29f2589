//! A full ingest queue answers 503 with `Retry-After` instead of growing, and loses nothing it
//! accepted; so does a database whose lock another connection holds too long, and a batch
//! answered early (journaled) waits the lock out.

use std::time::Duration;

use backend::time::now_ms;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use sqlx::Connection;
use tests::TestServer;
use tests::wait::wait_for;

const DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_and_keeps_what_it_took() {
    // The writer waits for the lock as long as this test holds it, however slow the machine
    // (a minute: the 20 requests take well under a second): giving up on it is the next test's.
    let server = TestServer::start_with(|o| {
        o.ingest_queue = 2;
        o.lock_wait = Duration::from_secs(60);
    })
    .await
    .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    // Another connection holds the write lock (SQLite's, or on PostgreSQL the advisory lock
    // the ingest writer's transactions take), so the writer cannot commit and its queue fills.
    let blocker = Blocker::hold(&server).await;

    let n = 20;
    let client = reqwest::Client::new();
    let mut pending: FuturesUnordered<_> = (0..n)
        .map(|seq| {
            let request = client
                .post(format!("{}/api/v1/ingest", server.url()))
                .bearer_auth(&key)
                .json(&serde_json::json!({
                    "service": "svc", "instance": "i", "seq": seq, "sent_at_ms": now_ms(),
                    "aggregates": [{"breaker": "db", "start_ms": now_ms() - 1000, "interval_ms": 1000,
                                    "counts": {"success": 1}, "state": "closed"}]
                }))
                .send();
            async move {
                let response = request.await.unwrap();
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                let body: serde_json::Value = response.json().await.unwrap();
                (status, retry_after, body)
            }
        })
        .collect();
    // At most the writer's group (1–2 batches) and the queue (2) wait; every other request is
    // refused at once.
    let mut refused = 0;
    let mut accepted = 0;
    while refused < n - 4 {
        let (status, retry_after, body) = pending.next().await.unwrap();
        assert_eq!(
            status, 503,
            "only refusals come back while the writer is blocked: {body}"
        );
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["error"], "overloaded");
        refused += 1;
    }
    blocker.release().await;
    while let Some((status, _, body)) = pending.next().await {
        match status {
            200 => accepted += 1,
            503 => refused += 1,
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(accepted >= 1, "the batches the writer held were committed");
    assert_eq!(accepted + refused, n);
    let stored = server.scalar("SELECT COUNT(*) FROM batches").await;
    assert_eq!(
        stored, accepted as i64,
        "every acknowledged batch is stored, no refused one is"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_too_long_answers_503_and_the_batch_sent_again_is_stored_once() {
    let server = TestServer::start_with(|o| o.lock_wait = Duration::from_millis(200))
        .await
        .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let batch = serde_json::json!({
        "service": "svc", "instance": "i", "seq": 1, "sent_at_ms": now_ms(),
        "aggregates": [{"breaker": "db", "start_ms": now_ms() - 1000, "interval_ms": 1000,
                        "counts": {"success": 3}, "state": "closed"}],
        "transitions": [{"breaker": "db", "from": "closed", "to": "open", "at_ms": now_ms() - 500,
                         "trigger": {"kind": "failure_rate", "value": 0.6, "threshold": 0.5}}]
    });
    let client = reqwest::Client::new();
    let post = || {
        client
            .post(format!("{}/api/v1/ingest", server.url()))
            .bearer_auth(&key)
            .json(&batch)
            .send()
    };

    let blocker = Blocker::hold(&server).await;
    // The lock is held until released below: the writer can only give up on it.
    let response = post().await.unwrap();
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "overloaded", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("locked"),
        "the answer says why: {body}"
    );
    blocker.release().await;
    assert_eq!(server.scalar("SELECT COUNT(*) FROM batches").await, 0);
    assert_eq!(server.scalar("SELECT COUNT(*) FROM transitions").await, 0);

    // The reporter sends it again: stored once, not a duplicate of anything.
    let response = post().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let ack: serde_json::Value = response.json().await.unwrap();
    assert_eq!(ack["duplicate"], false, "{ack}");
    let again: serde_json::Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(server.scalar("SELECT COUNT(*) FROM batches").await, 1);
    assert_eq!(server.scalar("SELECT COUNT(*) FROM transitions").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_answered_early_outlasts_a_locked_database_and_is_stored_once_released() {
    if tests::on_postgres() {
        // PostgreSQL keeps no journal: every batch is answered once committed.
        return;
    }
    let server = TestServer::start_with(|o| {
        o.lock_wait = Duration::from_millis(200);
        o.anonymous_viewer = true;
        // Lanes of 4: at most 2 batches answered early and not committed.
        o.ingest_queue = 4;
    })
    .await
    .unwrap();
    let key = server.ingest_key("svc").await.unwrap();
    let batch = |seq: u64| {
        serde_json::json!({
            "service": "svc", "instance": "i", "seq": seq, "sent_at_ms": now_ms(),
            "aggregates": [{"breaker": "db", "start_ms": now_ms() - 1000 * seq as i64,
                            "interval_ms": 1000, "counts": {"success": 3}, "state": "closed"}],
        })
    };
    let client = reqwest::Client::new();
    let post = |seq: u64| {
        client
            .post(format!("{}/api/v1/ingest", server.url()))
            .bearer_auth(&key)
            .header("prefer", "respond-async")
            .json(&batch(seq))
            .send()
    };
    // Its names known, the next batch may be answered early.
    assert_eq!(post(1).await.unwrap().status().as_u16(), 200);

    let blocker = Blocker::hold(&server).await;
    // Answered although the database is locked: the journal holds it.
    assert_eq!(post(2).await.unwrap().status().as_u16(), 202);
    let retries = |text: &str| {
        (text.lines())
            .find_map(|line| line.strip_prefix("fusebox_ingest_commit_retries_total "))
            .map(|value| value.trim().parse::<f64>().unwrap())
            .unwrap_or(0.0)
    };
    wait_for(
        "the writer to give up on the lock once",
        DEADLINE,
        async || {
            let text = reqwest::get(format!("{}/metrics", server.url()))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (retries(&text) >= 1.0).then_some(())
        },
    )
    .await;
    assert_eq!(server.scalar("SELECT COUNT(*) FROM batches").await, 1);
    assert_eq!(server.server.state.ingest.journaled(), 1);
    assert_eq!(post(3).await.unwrap().status().as_u16(), 202);
    // Two answered early are not committed: the next is answered once committed, asked or
    // not, so it waits for the lock as well, and is refused with 503 when the writer gives up
    // on it (the writer serves the queue while the others wait to be tried again).
    assert_eq!(post(4).await.unwrap().status().as_u16(), 503);
    blocker.release().await;
    wait_for("the batches kept to be committed", DEADLINE, async || {
        (server.server.state.ingest.journaled() == 0).then_some(())
    })
    .await;
    assert_eq!(server.scalar("SELECT COUNT(*) FROM batches").await, 3);
    assert_eq!(server.scalar("SELECT COUNT(*) FROM aggregates").await, 3);
}

/// A connection of its own holding the ingest writer's lock until released.
enum Blocker {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Blocker {
    async fn hold(server: &TestServer) -> Blocker {
        match server.server.state.store.db() {
            backend::store::Db::Sqlite(_) => {
                let url = format!("sqlite://{}", server.database_path().display());
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Blocker::Sqlite(conn)
            }
            backend::store::Db::Postgres(pool) => {
                let mut conn = pool.acquire().await.unwrap().detach();
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(backend::store::INGEST_LOCK)
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Blocker::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Blocker::Sqlite(mut conn) => {
                sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
            }
            Blocker::Postgres(mut conn) => {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(backend::store::INGEST_LOCK)
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }
}
