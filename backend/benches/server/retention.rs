//! The `retention` part of the server bench (PostgreSQL only): what removing a day of raw
//! aggregates past retention costs, the same rows both ways in one database:
//!
//! - dropped whole: the rows in their day's partition, which `partitions::maintain` drops;
//! - deleted: the same number of rows in the default partition (a day no partition was made
//!   for), which `prune_once` deletes at most 2,000 rows per transaction, as SQLite's
//!   retention does; then the `VACUUM` that makes their space reusable,
//!   which autovacuum would otherwise do later.
//!
//! Each is timed with the write-ahead log it wrote (`pg_current_wal_lsn()` before and after,
//! after a `CHECKPOINT`, so that both pay the full-page images a first change after a
//! checkpoint writes). Each round is a fresh database; medians of the rounds are printed.

use std::time::Instant;

use backend::query::rollup::{self, Retention, partitions};
use backend::store::{Db, Store};
use backend::time::now_ms;
use protocol::Aggregate;

use super::{POSTGRES_VAR, aggregate, database, figure, median};

const DAY_MS: i64 = partitions::DAY_MS;

/// A round's figures: seconds and WAL bytes of each way.
struct Round {
    rows: u64,
    delete_secs: f64,
    vacuum_secs: f64,
    delete_wal: f64,
    drop_secs: f64,
    drop_wal: f64,
}

async fn wal_lsn(pool: &sqlx::PgPool) -> f64 {
    // Bytes since the start of the log: an LSN minus '0/0'.
    sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Writes a day of 1 s aggregates from `from_ms` for `instances` instances of one breaker.
async fn load_day(store: &Store, breaker_id: i64, instances: &[String], from_ms: i64) -> u64 {
    let mut rows = 0;
    for hour in 0..24 {
        let aggregates: Vec<(usize, Aggregate)> = (0..3_600i64)
            .flat_map(|s| (0..instances.len()).map(move |i| (i, s)))
            .map(|(i, s)| (i, aggregate(0, from_ms + hour * 3_600_000 + s * 1000, 29)))
            .collect();
        let batch: Vec<(i64, &str, &Aggregate)> = (aggregates.iter())
            .map(|(i, a)| (breaker_id, instances[*i].as_str(), a))
            .collect();
        let mut tx = store.begin().await.unwrap();
        Store::insert_aggregates(&mut tx, &batch).await.unwrap();
        tx.commit().await.unwrap();
        rows += batch.len() as u64;
    }
    rows
}

async fn round(n_instances: usize) -> Round {
    let dir = tempfile::tempdir().unwrap();
    let url = database(&dir, "retention").await;
    let store = Store::open(&url).await.unwrap();
    let Db::Postgres(pool) = store.db().clone() else {
        unreachable!("the retention part runs on PostgreSQL only")
    };
    let now = now_ms();
    let today = now.div_euclid(DAY_MS);
    let retention = Retention::default();
    // The partitions a server makes at start: from two days back (48 h of raw aggregates) to
    // two days ahead. Yesterday's gets a day of rows; a day ten days back has no partition,
    // so its rows go to the default one.
    partitions::maintain(&store, now - retention.raw.as_millis() as i64, now)
        .await
        .unwrap();
    let mut tx = store.begin().await.unwrap();
    let breaker_id = Store::breaker_id(&mut tx, "shop", "payments", 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let instances: Vec<String> = (0..n_instances).map(|i| format!("shop-{i}")).collect();
    let partitioned = load_day(&store, breaker_id, &instances, (today - 1) * DAY_MS).await;
    let unpartitioned = load_day(&store, breaker_id, &instances, (today - 10) * DAY_MS).await;
    assert_eq!(partitioned, unpartitioned);
    // Both ways remove only rolled-up rows. Rolling 2 days up is not what is measured: the
    // mark is moved past them instead.
    sqlx::query(
        "UPDATE rollup_progress SET last_aggregate_id = (SELECT MAX(id) FROM aggregates) WHERE id = 1",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("VACUUM ANALYZE aggregates")
        .execute(&pool)
        .await
        .unwrap();

    // Deleted: every row of the default partition is past retention.
    sqlx::query("CHECKPOINT").execute(&pool).await.unwrap();
    let wal = wal_lsn(&pool).await;
    let started = Instant::now();
    let mut deleted = 0;
    loop {
        let n = rollup::prune_once(&store, &retention, now).await.unwrap();
        if n == 0 {
            break;
        }
        deleted += n;
    }
    let delete_secs = started.elapsed().as_secs_f64();
    let started = Instant::now();
    sqlx::query("VACUUM aggregates_default")
        .execute(&pool)
        .await
        .unwrap();
    let vacuum_secs = started.elapsed().as_secs_f64();
    let delete_wal = wal_lsn(&pool).await - wal;
    assert_eq!(deleted, unpartitioned);

    // Dropped: yesterday's partition, once the day is past retention.
    sqlx::query("CHECKPOINT").execute(&pool).await.unwrap();
    let wal = wal_lsn(&pool).await;
    let started = Instant::now();
    let changes = partitions::maintain(&store, today * DAY_MS, now)
        .await
        .unwrap();
    let drop_secs = started.elapsed().as_secs_f64();
    let drop_wal = wal_lsn(&pool).await - wal;
    assert_eq!(changes.dropped.len(), 2, "{changes:?}"); // the empty day before it too
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM aggregates")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    drop(store);
    pool.close().await;
    Round {
        rows: partitioned,
        delete_secs,
        vacuum_secs,
        delete_wal,
        drop_secs,
        drop_wal,
    }
}

pub async fn retention(quick: bool) {
    if std::env::var(POSTGRES_VAR).is_err() {
        println!("retention: skipped (PostgreSQL only: set {POSTGRES_VAR})");
        return;
    }
    let (n_instances, n_rounds) = if quick { (1, 1) } else { (4, 3) };
    let mut rounds = Vec::new();
    for _ in 0..n_rounds {
        rounds.push(round(n_instances).await);
    }
    let of_rounds = |f: fn(&Round) -> f64| median(&rounds.iter().map(f).collect::<Vec<_>>());
    let rows = rounds[0].rows;
    let (delete, vacuum, drop) = (
        of_rounds(|r| r.delete_secs),
        of_rounds(|r| r.vacuum_secs),
        of_rounds(|r| r.drop_secs),
    );
    let (delete_wal, drop_wal) = (of_rounds(|r| r.delete_wal), of_rounds(|r| r.drop_wal));
    println!(
        "retention: a day of raw aggregates ({rows} rows, {n_instances} instances x 86,400 s) \
         past retention, medians of {n_rounds} round(s)"
    );
    println!(
        "  deleted row by row: {:>8.2} s + VACUUM {:>6.2} s, WAL {:>8.1} MB",
        delete,
        vacuum,
        delete_wal / 1e6
    );
    println!(
        "  its partition dropped: {:>8.3} s, WAL {:>8.3} MB   ({:.4}x the time of delete + vacuum)",
        drop,
        drop_wal / 1e6,
        drop / (delete + vacuum)
    );
    figure(
        "retention",
        format!("a day of raw aggregates ({rows} rows) past retention: partition dropped / rows deleted and vacuumed, time"),
        drop / (delete + vacuum),
        "x",
        4,
    )
    .spread_of(
        &rounds
            .iter()
            .map(|r| r.drop_secs / (r.delete_secs + r.vacuum_secs))
            .collect::<Vec<_>>(),
        4,
    )
    .record();
}
