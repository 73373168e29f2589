//! The rollup and prune jobs' SQL (see [`crate::query::rollup`]).

use std::collections::HashMap;
use std::time::Duration;

use super::BucketRow;
use crate::query::rollup::{Bucket, HOUR_MS, MINUTE_MS, Retention};
use crate::store::{Db, Store, Tx, count_to_db, encode_histogram, on_db, on_tx};

/// Aggregates read per rollup transaction.
pub const ROLLUP_BATCH: i64 = 20_000;
/// Rows deleted per prune statement.
const PRUNE_BATCH: i64 = 20_000;

/// An aggregate as the rollup job reads it.
#[derive(sqlx::FromRow)]
struct AggregateRow {
    id: i64,
    breaker_id: i64,
    start_ms: i64,
    #[sqlx(flatten)]
    bucket: BucketRow,
}

/// Rolls up to `ROLLUP_BATCH` new aggregates; returns how many it read.
pub async fn roll_up_once(store: &Store) -> anyhow::Result<usize> {
    let mut tx = store.begin().await?;
    // Two runs at once (the job and the demo's catch-up) never roll the same aggregates up:
    // on PostgreSQL the second waits for the first's mark; on SQLite the second cannot write
    // over the snapshot it read and fails.
    let last_id: i64 = match &mut tx {
        Tx::Sqlite(tx) => {
            sqlx::query_scalar("SELECT last_aggregate_id FROM rollup_progress WHERE id = 1")
                .fetch_one(&mut **tx)
                .await?
        }
        Tx::Postgres(tx) => {
            sqlx::query_scalar(
                "SELECT last_aggregate_id FROM rollup_progress WHERE id = 1 FOR UPDATE",
            )
            .fetch_one(&mut **tx)
            .await?
        }
    };
    let rows: Vec<AggregateRow> = on_tx!(&mut tx, c => sqlx::query_as(
        "SELECT id, breaker_id, start_ms, success, failure, timeout, rejected, slow, ignored,
                latency, failure_rate_threshold
         FROM aggregates WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(last_id)
    .bind(ROLLUP_BATCH)
    .fetch_all(c)
    .await)?;
    let Some(new_last_id) = rows.last().map(|row| row.id) else {
        return Ok(0);
    };
    let n_rows = rows.len();
    let mut buckets: HashMap<(i64, i64, i64), Bucket> = HashMap::new();
    for row in rows {
        let (breaker_id, start_ms) = (row.breaker_id, row.start_ms);
        let bucket = Bucket::from(row.bucket);
        for resolution in [MINUTE_MS, HOUR_MS] {
            let key = (
                breaker_id,
                resolution,
                start_ms.div_euclid(resolution) * resolution,
            );
            buckets.entry(key).or_default().merge(&bucket);
        }
    }
    let mut merged = Vec::with_capacity(buckets.len());
    for ((breaker_id, resolution, start_ms), bucket) in buckets {
        let existing: Option<BucketRow> = on_tx!(&mut tx, c => sqlx::query_as(
            "SELECT success, failure, timeout, rejected, slow, ignored, latency, failure_rate_threshold
             FROM rollups WHERE breaker_id = $1 AND resolution_ms = $2 AND start_ms = $3",
        )
        .bind(breaker_id)
        .bind(resolution)
        .bind(start_ms)
        .fetch_optional(c)
        .await)?;
        let bucket = match existing {
            Some(row) => {
                let mut sum = Bucket::from(row);
                sum.merge(&bucket);
                sum
            }
            None => bucket,
        };
        merged.push((breaker_id, resolution, start_ms, bucket));
    }
    write_rollups(&mut tx, &merged).await?;
    on_tx!(&mut tx, c => sqlx::query("UPDATE rollup_progress SET last_aggregate_id = $1 WHERE id = 1")
        .bind(new_last_id)
        .execute(c)
        .await
        .map(|_| ()))?;
    tx.commit().await?;
    Ok(n_rows)
}

/// Writes rollups as they are, replacing any of the same breaker, resolution and start, in one
/// transaction: for history that was never reported as aggregates (the demo's past). Rows are
/// `(breaker_id, resolution_ms, start_ms, bucket)`.
pub async fn insert_rollups(store: &Store, rows: &[(i64, i64, i64, Bucket)]) -> anyhow::Result<()> {
    let mut tx = store.begin().await?;
    write_rollups(&mut tx, rows).await?;
    tx.commit().await?;
    Ok(())
}

/// [`insert_rollups`] inside the caller's transaction, with multi-row statements.
async fn write_rollups(tx: &mut Tx, rows: &[(i64, i64, i64, Bucket)]) -> anyhow::Result<()> {
    // 11 values per row × 500 rows stays well under SQLite's 32 766 parameters.
    const ROWS_PER_INSERT: usize = 500;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        on_tx!(tx, c => {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO rollups (breaker_id, resolution_ms, start_ms, success, failure,
                 timeout, rejected, slow, ignored, latency, failure_rate_threshold) ",
        );
        insert.push_values(
            chunk,
            |mut row, (breaker_id, resolution, start_ms, bucket)| {
                let c = &bucket.counts;
                row.push_bind(*breaker_id)
                    .push_bind(*resolution)
                    .push_bind(*start_ms)
                    .push_bind(count_to_db(c.success))
                    .push_bind(count_to_db(c.failure))
                    .push_bind(count_to_db(c.timeout))
                    .push_bind(count_to_db(c.rejected))
                    .push_bind(count_to_db(c.slow))
                    .push_bind(count_to_db(c.ignored))
                    .push_bind(encode_histogram(&bucket.latency))
                    .push_bind(bucket.failure_rate_threshold);
            },
        );
        insert.push(
            " ON CONFLICT (breaker_id, resolution_ms, start_ms) DO UPDATE SET
               success = excluded.success, failure = excluded.failure,
               timeout = excluded.timeout, rejected = excluded.rejected, slow = excluded.slow,
               ignored = excluded.ignored, latency = excluded.latency,
               failure_rate_threshold = excluded.failure_rate_threshold",
        );
        insert.build().execute(c).await.map(|_| ())
        })?;
    }
    Ok(())
}

/// Deletes what is past retention, `PRUNE_BATCH` rows per statement; returns rows deleted.
/// Raw aggregates are only deleted once rolled up. On PostgreSQL only those in the default
/// partition: a day partition goes whole once its day is past retention
/// ([`super::partitions::maintain`]), so raw rows stay up to a day longer there.
pub async fn prune_once(store: &Store, retention: &Retention, now_ms: i64) -> anyhow::Result<u64> {
    let cutoff = |keep: Duration| now_ms - keep.as_millis() as i64;
    let raw_sql = match store.db() {
        Db::Sqlite(_) => {
            "DELETE FROM aggregates WHERE id IN (
                 SELECT id FROM aggregates
                 WHERE start_ms < $1 AND id <= (SELECT last_aggregate_id FROM rollup_progress WHERE id = 1)
                 LIMIT $2)"
        }
        Db::Postgres(_) => {
            "DELETE FROM aggregates_default WHERE id IN (
                 SELECT id FROM aggregates_default
                 WHERE start_ms < $1 AND id <= (SELECT last_aggregate_id FROM rollup_progress WHERE id = 1)
                 LIMIT $2)"
        }
    };
    let raw = on_db!(&store.db, pool => sqlx::query(raw_sql)
        .bind(cutoff(retention.raw))
        .bind(PRUNE_BATCH)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    let mut rollups = 0;
    for (resolution, keep) in [(MINUTE_MS, retention.minute), (HOUR_MS, retention.hour)] {
        rollups += on_db!(&store.db, pool => sqlx::query(
            "DELETE FROM rollups WHERE (breaker_id, resolution_ms, start_ms) IN (
                 SELECT breaker_id, resolution_ms, start_ms FROM rollups
                 WHERE resolution_ms = $1 AND start_ms < $2 LIMIT $3)",
        )
        .bind(resolution)
        .bind(cutoff(keep))
        .bind(PRUNE_BATCH)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    }
    Ok(raw + rollups)
}
