//! Raw retention on PostgreSQL by day partitions of the aggregates table: the server makes the
//! days from the oldest one raw retention keeps to two days ahead when it starts; a report
//! lands in its day's partition; history that landed in the default partition (copied in,
//! older than the partitions made) moves into its day's partition when one is made; a day past
//! retention is dropped whole, only once every row of it is rolled up, and the rollups stay;
//! the row-by-row prune leaves day partitions alone. (SQLite's row-by-row retention:
//! `storage.rs`.)
//!
//! On a fresh database in the test process's throwaway cluster (in the SQLite run of the suite
//! too).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use backend::query::rollup::{self, Retention, partitions};
use backend::server::{self, ServerOptions};
use backend::store::{Db, Store};
use backend::time::{Clock, now_ms};
use serde_json::json;
use sqlx::PgPool;

const DAY: i64 = 86_400_000;

/// Raw aggregates per partition (the default one included), by partition name.
async fn rows_by_partition(pool: &PgPool) -> BTreeMap<String, i64> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT tableoid::regclass::text, COUNT(*) FROM aggregates GROUP BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

/// The name of the day partition that holds `at_ms`.
async fn partition_of(store: &Store, at_ms: i64) -> String {
    let all = partitions::day_partitions(store).await.unwrap();
    (all.iter())
        .find(|p| p.from_ms <= at_ms && at_ms < p.to_ms)
        .unwrap_or_else(|| panic!("no partition holds {at_ms}: {all:?}"))
        .name
        .clone()
}

/// One aggregate of `success` calls of breaker `db` at `start_ms`, sent at `now_ms`.
fn report(seq: u64, start_ms: i64, success: u64, now_ms: i64) -> serde_json::Value {
    json!({"service": "svc", "instance": "a", "seq": seq, "sent_at_ms": now_ms,
           "aggregates": [{"breaker": "db", "start_ms": start_ms, "interval_ms": 1000,
                           "counts": {"success": success}, "state": "closed"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregates_live_in_day_partitions_that_retention_drops_whole() {
    let Some(database) = tests::postgres::database_for_test() else {
        return;
    };
    let mut options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)), database);
    // The test drives rollups and retention itself (the job still makes partitions at start).
    options.rollup_period = Duration::from_secs(3_600);
    // Noon today on the server's clock, so that each time below is in the day it names
    // whenever the test runs.
    let today = now_ms().div_euclid(DAY);
    let now = today * DAY + DAY / 2;
    options.clock = Clock::manual(now);
    let server = server::start(options).await.unwrap();
    let store = &server.state.store;
    let Db::Postgres(pool) = store.db() else {
        unreachable!("a postgres:// URL opens PostgreSQL")
    };

    // Before it started: the days from the one 48 hours back (default raw retention) to two
    // ahead (the migration made today's and the next two already).
    let made: Vec<i64> = (partitions::day_partitions(store).await.unwrap().iter())
        .map(|p| p.from_ms / DAY)
        .collect();
    assert_eq!(made, (today - 2..=today + 2).collect::<Vec<_>>());
    for p in partitions::day_partitions(store).await.unwrap() {
        assert_eq!(p.to_ms - p.from_ms, DAY, "{p:?}");
        assert!(p.name.starts_with("aggregates_20"), "{p:?}");
    }

    // Reports land in their day's partition, none in the default one.
    let key = backend::auth::create_api_key(store, "svc")
        .await
        .unwrap()
        .secret;
    let (earlier, recent, ahead) = (now - 20 * 3_600_000, now - 60_000, now + 20 * 3_600_000);
    for (seq, at) in [(1, earlier), (2, recent), (3, ahead)] {
        tests::post_batch(&server.url(), &key, &report(seq, at, 10, now)).await;
    }
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for at in [earlier, recent, ahead] {
        *expected.entry(partition_of(store, at).await).or_default() += 1;
    }
    assert_eq!(rows_by_partition(pool).await, expected);

    // History older than the partitions made (as `migrate-data` copies it in) waits in the
    // default partition, and moves into its day's partition when that is made.
    let old = now - 5 * DAY;
    for at in [old, old + 1_000] {
        sqlx::query(
            "INSERT INTO aggregates (breaker_id, instance, start_ms, interval_ms, success, failure,
                 timeout, rejected, slow, ignored, latency, state, config_version)
             SELECT breaker_id, instance, $1, interval_ms, 7, 0, 0, 0, 0, 0, latency, state,
                 config_version
             FROM aggregates WHERE start_ms = $2",
        )
        .bind(at)
        .bind(recent)
        .execute(pool)
        .await
        .unwrap();
    }
    assert_eq!(rows_by_partition(pool).await["aggregates_default"], 2);
    let changes = partitions::maintain(store, now - 7 * DAY, now)
        .await
        .unwrap();
    assert_eq!(changes.made.len(), 5, "{changes:?}"); // 7 to 3 days back
    assert_eq!(changes.moved, 2);
    assert!(changes.dropped.is_empty(), "{changes:?}");
    let old_day = partition_of(store, old).await;
    let rows = rows_by_partition(pool).await;
    assert_eq!((rows.get("aggregates_default"), rows[&old_day]), (None, 2));
    assert_eq!(
        partitions::maintain(store, now - 7 * DAY, now)
            .await
            .unwrap(),
        partitions::PartitionChanges::default(),
        "nothing more to make"
    );

    // Everything is rolled up but one more report of today's. Once every day up to today's is
    // past retention, all of them but today's are dropped; today's goes once rolled up too.
    assert_eq!(rollup::catch_up(store).await.unwrap(), 5);
    tests::post_batch(&server.url(), &key, &report(4, recent + 1_000, 10, now)).await;
    let tomorrow = (today + 1) * DAY;
    let older: Vec<String> = (partitions::day_partitions(store).await.unwrap().into_iter())
        .filter(|p| p.to_ms <= today * DAY)
        .map(|p| p.name)
        .collect();
    assert_eq!(older.len(), 7, "{older:?}");
    let changes = partitions::maintain(store, tomorrow, now + DAY)
        .await
        .unwrap();
    let today_partition = partition_of(store, recent).await;
    let mut dropped = changes.dropped.clone();
    dropped.sort();
    assert_eq!(dropped, older, "{changes:?}");
    assert_eq!(rows_by_partition(pool).await[&today_partition], 2);
    assert_eq!(rollup::catch_up(store).await.unwrap(), 1);
    let changes = partitions::maintain(store, tomorrow, now + DAY)
        .await
        .unwrap();
    assert_eq!(changes.dropped, [today_partition]);
    let rows = rows_by_partition(pool).await;
    assert_eq!(rows.values().sum::<i64>(), 1, "tomorrow's report: {rows:?}");
    assert_eq!(rows[&partition_of(store, ahead).await], 1);

    // The rollups hold every call that was reported or copied in.
    let rolled: i64 =
        sqlx::query_scalar("SELECT SUM(success)::bigint FROM rollups WHERE resolution_ms = 60000")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(rolled, 4 * 10 + 2 * 7);

    // The row-by-row prune deletes only from the default partition: tomorrow's report, past a
    // 48-hour retention three days on, stays until its partition goes.
    let pruned = rollup::prune_once(store, &Retention::default(), now + 3 * DAY)
        .await
        .unwrap();
    assert_eq!(pruned, 0);
    assert_eq!(rows_by_partition(pool).await.values().sum::<i64>(), 1);
    server.shutdown().await.unwrap();
}
