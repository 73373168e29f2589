//! The rollup and prune jobs' SQL (see [`crate::query::rollup`]).

use std::collections::HashMap;
use std::time::Duration;

use super::BucketRow;
use crate::query::rollup::{Bucket, HOUR_MS, MINUTE_MS, Retention};
use crate::store::{Db, Store, Tx, count_to_db, encode_histogram, on_db, on_tx};

/// Aggregates merged per rollup run at most: a run writes each bucket it touched once, so
/// the larger the run, the fewer writes per aggregate (with 10,000 breakers, a run of 20,000
/// aggregates wrote 20,000 buckets).
pub const ROLLUP_BATCH: i64 = 100_000;
/// Aggregates read per statement of a run.
const READ_PAGE: i64 = 20_000;
/// Buckets written per transaction (a breaker's are never split): ingest waits for the write
/// lock while one runs (on SQLite for its turn, `store::turn`), so a transition waits for at
/// most one chunk, a few milliseconds. Larger chunks save little: each is one statement.
pub const WRITE_CHUNK: usize = 500;
/// Breakers a prune step looks at, and rows it deletes at most (see [`prune_once`]).
const PRUNE_BREAKERS: i64 = 1_000;
const PRUNE_ROWS: i64 = 2_000;
/// How long a prune run goes on at most before it leaves the rest to the next.
const PRUNE_BUDGET: Duration = Duration::from_secs(5);

/// An aggregate as the rollup job reads it.
#[derive(sqlx::FromRow)]
struct AggregateRow {
    id: i64,
    breaker_id: i64,
    start_ms: i64,
    #[sqlx(flatten)]
    bucket: BucketRow,
}

/// A stored rollup with its key, as [`existing_rollups`] reads it.
#[derive(sqlx::FromRow)]
struct KeyedRollupRow {
    breaker_id: i64,
    resolution_ms: i64,
    start_ms: i64,
    #[sqlx(flatten)]
    bucket: BucketRow,
}

/// A rollup's key: breaker id, resolution and start, ms.
type RollupKey = (i64, i64, i64);

/// Where the rollup job stands (`rollup_progress`, see `migrations/0010_rollup_partial.sql`).
#[derive(Clone, Copy, Debug, PartialEq, sqlx::FromRow)]
struct Progress {
    last_aggregate_id: i64,
    partial_through_id: Option<i64>,
    partial_breaker_id: Option<i64>,
}

const PROGRESS: &str = "SELECT last_aggregate_id, partial_through_id, partial_breaker_id FROM rollup_progress WHERE id = 1";
const PROGRESS_FOR_UPDATE: &str = "SELECT last_aggregate_id, partial_through_id, partial_breaker_id
     FROM rollup_progress WHERE id = 1 FOR UPDATE";

/// Rolls up to [`ROLLUP_BATCH`] new aggregates; returns how many it read.
pub async fn roll_up_once(store: &Store) -> anyhow::Result<usize> {
    roll_up_in_chunks(store, WRITE_CHUNK, None).await
}

/// [`roll_up_once`], writing about `chunk` buckets per transaction; with `stop_after`, it
/// returns after that many transactions as if the server had stopped there (for tests).
///
/// A run reads its aggregates and the stored rollups they add to, and merges them, before any
/// write transaction; then it writes the buckets in breaker order, a chunk per transaction,
/// each checking that the progress is still what the run last left and saying how far the
/// run got; the last one moves the mark. Only rollup runs move the progress and add to
/// rollups (the demo writes its past's rollups before their aggregates; prune deletes only
/// expired ones), so an unchanged progress means the rollups read are still current; a run
/// that finds it changed (another run committed meanwhile) starts again from there. A run that stopped half way is finished by
/// the next one, which reads the same aggregates and writes only the breakers not written yet.
pub async fn roll_up_in_chunks(
    store: &Store,
    chunk: usize,
    stop_after: Option<usize>,
) -> anyhow::Result<usize> {
    'run: loop {
        let progress: Progress = on_db!(&store.db, pool => sqlx::query_as(PROGRESS)
            .fetch_one(pool)
            .await)?;
        let end = progress.partial_through_id;
        let written_up_to = progress.partial_breaker_id.unwrap_or(i64::MIN);
        let mut buckets: HashMap<RollupKey, Bucket> = HashMap::new();
        let (mut n_rows, mut through) = (0_usize, progress.last_aggregate_id);
        loop {
            let rows: Vec<AggregateRow> = on_db!(&store.db, pool => sqlx::query_as(
                "SELECT id, breaker_id, start_ms, success, failure, timeout, rejected, slow,
                        ignored, latency, failure_rate_threshold
                 FROM aggregates WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3",
            )
            .bind(through)
            .bind(end.unwrap_or(i64::MAX))
            .bind(READ_PAGE)
            .fetch_all(pool)
            .await)?;
            let page = rows.len();
            n_rows += page;
            through = rows.last().map_or(through, |row| row.id);
            for row in rows
                .into_iter()
                .filter(|row| row.breaker_id > written_up_to)
            {
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
            if (page as i64) < READ_PAGE || (end.is_none() && n_rows as i64 >= ROLLUP_BATCH) {
                break;
            }
        }
        if n_rows == 0 && end.is_none() {
            return Ok(0);
        }
        let through = end.unwrap_or(through);
        let keys: Vec<RollupKey> = buckets.keys().copied().collect();
        for (key, stored) in existing_rollups(&store.db, &keys).await? {
            if let Some(bucket) = buckets.get_mut(&key) {
                let mut sum = stored;
                sum.merge(bucket);
                *bucket = sum;
            }
        }
        let mut merged: Vec<_> = buckets
            .into_iter()
            .map(|((breaker_id, resolution, start_ms), bucket)| {
                (breaker_id, resolution, start_ms, bucket)
            })
            .collect();
        merged.sort_unstable_by_key(|row| (row.0, row.1, row.2));
        // Chunks of at least `chunk` buckets, ending where a breaker's end.
        let mut chunks: Vec<&[(i64, i64, i64, Bucket)]> = Vec::new();
        let mut rest = &merged[..];
        while !rest.is_empty() {
            let mut cut = chunk.clamp(1, rest.len());
            while cut < rest.len() && rest[cut].0 == rest[cut - 1].0 {
                cut += 1;
            }
            let (head, tail) = rest.split_at(cut);
            chunks.push(head);
            rest = tail;
        }
        if chunks.is_empty() {
            chunks.push(&[]);
        }
        let mut expected = progress;
        let n_chunks = chunks.len();
        for (index, rows) in chunks.into_iter().enumerate() {
            let mut tx = store.begin().await?;
            // On PostgreSQL `FOR UPDATE` makes a second run wait here for the first's commit.
            let found: Progress = match &mut tx {
                Tx::Sqlite(tx, _) => sqlx::query_as(PROGRESS).fetch_one(&mut **tx).await?,
                Tx::Postgres(tx) => {
                    sqlx::query_as(PROGRESS_FOR_UPDATE)
                        .fetch_one(&mut **tx)
                        .await?
                }
            };
            if found != expected {
                tx.rollback().await?;
                continue 'run;
            }
            write_rollups(&mut tx, rows).await?;
            expected = match (index + 1 == n_chunks, rows.last()) {
                (false, Some(last)) => Progress {
                    partial_through_id: Some(through),
                    partial_breaker_id: Some(last.0),
                    ..expected
                },
                _ => Progress {
                    last_aggregate_id: through,
                    partial_through_id: None,
                    partial_breaker_id: None,
                },
            };
            on_tx!(&mut tx, c => sqlx::query(
                "UPDATE rollup_progress
                 SET last_aggregate_id = $1, partial_through_id = $2, partial_breaker_id = $3
                 WHERE id = 1",
            )
            .bind(expected.last_aggregate_id)
            .bind(expected.partial_through_id)
            .bind(expected.partial_breaker_id)
            .execute(c)
            .await
            .map(|_| ()))?;
            tx.commit().await?;
            if stop_after == Some(index + 1) {
                break;
            }
        }
        return Ok(n_rows);
    }
}

/// The stored rollups of `keys` (those that exist), read in one statement per
/// [`KEYS_PER_READ`] keys: the keys go as one JSON array of `[breaker, resolution, start]`
/// on SQLite, as three arrays on PostgreSQL.
async fn existing_rollups(db: &Db, keys: &[RollupKey]) -> anyhow::Result<Vec<(RollupKey, Bucket)>> {
    const KEYS_PER_READ: usize = 5_000;
    let mut found = Vec::new();
    for chunk in keys.chunks(KEYS_PER_READ) {
        let rows: Vec<KeyedRollupRow> = match db {
            Db::Sqlite(pool) => {
                let list = serde_json::to_string(chunk)?;
                sqlx::query_as(
                    "SELECT r.breaker_id, r.resolution_ms, r.start_ms, r.success, r.failure,
                            r.timeout, r.rejected, r.slow, r.ignored, r.latency,
                            r.failure_rate_threshold
                     FROM json_each($1) AS k
                     JOIN rollups AS r ON r.breaker_id = json_extract(k.value, '$[0]')
                                      AND r.resolution_ms = json_extract(k.value, '$[1]')
                                      AND r.start_ms = json_extract(k.value, '$[2]')",
                )
                .bind(list)
                .fetch_all(pool)
                .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as(
                    "SELECT r.breaker_id, r.resolution_ms, r.start_ms, r.success, r.failure,
                            r.timeout, r.rejected, r.slow, r.ignored, r.latency,
                            r.failure_rate_threshold
                     FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[]) AS k (b, r, s)
                     JOIN rollups AS r ON r.breaker_id = k.b AND r.resolution_ms = k.r
                                      AND r.start_ms = k.s",
                )
                .bind(chunk.iter().map(|k| k.0).collect::<Vec<_>>())
                .bind(chunk.iter().map(|k| k.1).collect::<Vec<_>>())
                .bind(chunk.iter().map(|k| k.2).collect::<Vec<_>>())
                .fetch_all(pool)
                .await?
            }
        };
        found.extend(rows.into_iter().map(|row| {
            let key = (row.breaker_id, row.resolution_ms, row.start_ms);
            (key, Bucket::from(row.bucket))
        }));
    }
    Ok(found)
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
    // 11 values per row × 2,500 rows stays under SQLite's 32,766 parameters; a write
    // transaction holds ingest up, and each statement is a round trip.
    const ROWS_PER_INSERT: usize = 2_500;
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

/// Deletes what is past retention; returns rows deleted. It goes [`PRUNE_BREAKERS`] breakers
/// at a time, finding each breaker's expired rows through an index that starts with the
/// breaker and its time (`aggregates_by_breaker`, the rollups' key), and deletes at most
/// [`PRUNE_ROWS`] rows per write transaction, so ingest waits for one short step at most (on
/// SQLite it takes its turn between them, `store::turn`), and a run's work follows what it
/// deletes, not what is kept (`cargo xtask bench --only server -- prune` times a run with ten
/// times the history kept against little). One statement per table that looked for the
/// expired rows scanned all of the table whenever it found fewer than its limit, every run,
/// holding the write lock meanwhile; 48 hours of 1,000 breakers' aggregates are 173 M rows.
/// A run stops after [`PRUNE_BUDGET`]: a backlog (after an outage, or a shorter retention) is
/// worked off over several runs, each finding the breakers done before with nothing left.
///
/// Raw aggregates are only deleted once rolled up. On PostgreSQL only those in the default
/// partition: a day partition goes whole once its day is past retention
/// ([`super::partitions::maintain`]), so raw rows stay up to a day longer there.
pub async fn prune_once(store: &Store, retention: &Retention, now_ms: i64) -> anyhow::Result<u64> {
    let cutoff = |keep: Duration| now_ms - keep.as_millis() as i64;
    let deadline = std::time::Instant::now() + PRUNE_BUDGET;
    // The rollups' statement serves both databases; the raw aggregates' names PostgreSQL's
    // default partition there.
    let raw = match store.db() {
        Db::Sqlite(_) => {
            "DELETE FROM aggregates WHERE id IN (SELECT id FROM aggregates
                 WHERE breaker_id IN (SELECT id FROM breakers WHERE id > $1 AND id <= $2)
                   AND start_ms < $3
                   AND id <= (SELECT last_aggregate_id FROM rollup_progress WHERE id = 1)
                 LIMIT $4)"
        }
        Db::Postgres(_) => {
            "DELETE FROM aggregates_default WHERE id IN (SELECT id FROM aggregates_default
                 WHERE breaker_id IN (SELECT id FROM breakers WHERE id > $1 AND id <= $2)
                   AND start_ms < $3
                   AND id <= (SELECT last_aggregate_id FROM rollup_progress WHERE id = 1)
                 LIMIT $4)"
        }
    };
    let rollups = "DELETE FROM rollups WHERE (breaker_id, resolution_ms, start_ms) IN (
                 SELECT breaker_id, resolution_ms, start_ms FROM rollups
                 WHERE breaker_id IN (SELECT id FROM breakers WHERE id > $1 AND id <= $2)
                   AND resolution_ms = $5
                   AND start_ms < $3 LIMIT $4)";
    let steps = [
        (raw, cutoff(retention.raw), None),
        (rollups, cutoff(retention.minute), Some(MINUTE_MS)),
        (rollups, cutoff(retention.hour), Some(HOUR_MS)),
    ];
    let (mut after, mut pruned) = (i64::MIN, 0);
    while let Some(end) = next_breakers(store, after).await? {
        for (sql, cutoff_ms, resolution_ms) in steps {
            loop {
                if std::time::Instant::now() > deadline {
                    return Ok(pruned);
                }
                let mut tx = store.begin().await?;
                let deleted = on_tx!(&mut tx, c => {
                    let query = sqlx::query(sql)
                        .bind(after)
                        .bind(end)
                        .bind(cutoff_ms)
                        .bind(PRUNE_ROWS);
                    // The raw aggregates' statement has no resolution.
                    match resolution_ms {
                        Some(resolution_ms) => query.bind(resolution_ms),
                        None => query,
                    }
                    .execute(&mut *c)
                    .await
                    .map(|r| r.rows_affected())
                })?;
                tx.commit().await?;
                pruned += deleted;
                if deleted < PRUNE_ROWS as u64 {
                    break;
                }
            }
        }
        after = end;
    }
    Ok(pruned)
}

/// The last of the next [`PRUNE_BREAKERS`] breaker ids after `after`, if any.
async fn next_breakers(store: &Store, after: i64) -> anyhow::Result<Option<i64>> {
    Ok(on_db!(&store.db, pool => sqlx::query_scalar(
        "SELECT MAX(id) FROM (SELECT id FROM breakers WHERE id > $1 ORDER BY id LIMIT $2) AS chunk",
    )
    .bind(after)
    .bind(PRUNE_BREAKERS)
    .fetch_one(pool)
    .await)?)
}
