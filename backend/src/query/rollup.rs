//! Rollups and retention: incremental background jobs.
//!
//! The rollup job reads aggregates by id from where it stopped, adds them into 1-minute and
//! 1-hour buckets per breaker (histograms merged bucket by bucket) and moves its mark, all in
//! one transaction, so a crash neither loses nor double-counts. Reading by id rather than by
//! time counts late aggregates too. The prune job deletes raw aggregates, minute and hour
//! rollups past their retention, a bounded number of rows at a time.

use std::collections::HashMap;
use std::time::Duration;

use protocol::{LatencyHistogram, OutcomeCounts};
use sqlx::Row;

use crate::store::{Store, count_from_db, count_to_db, decode_histogram, encode_histogram};
use crate::time::now_ms;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;

/// Aggregates read per rollup transaction.
const ROLLUP_BATCH: i64 = 20_000;
/// Rows deleted per prune statement.
const PRUNE_BATCH: i64 = 20_000;

/// How long each resolution is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub raw: Duration,
    pub minute: Duration,
    pub hour: Duration,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            raw: Duration::from_secs(48 * 3_600),
            minute: Duration::from_secs(30 * 86_400),
            hour: Duration::from_secs(400 * 86_400),
        }
    }
}

/// Counts and a merged histogram for one time bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bucket {
    pub counts: OutcomeCounts,
    pub latency: LatencyHistogram,
    pub failure_rate_threshold: Option<f64>,
}

impl Bucket {
    pub fn merge(&mut self, other: &Bucket) {
        self.counts.merge(&other.counts);
        self.latency.merge(&other.latency);
        self.failure_rate_threshold = other.failure_rate_threshold.or(self.failure_rate_threshold);
    }
}

/// Rolls up to `ROLLUP_BATCH` new aggregates; returns how many it read.
pub async fn roll_up_once(store: &Store) -> anyhow::Result<usize> {
    let mut tx = store.begin().await?;
    let last_id: i64 =
        sqlx::query_scalar("SELECT last_aggregate_id FROM rollup_progress WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let rows = sqlx::query(
        "SELECT id, breaker_id, start_ms, success, failure, timeout, rejected, slow, ignored,
                latency, failure_rate_threshold
         FROM aggregates WHERE id > ? ORDER BY id LIMIT ?",
    )
    .bind(last_id)
    .bind(ROLLUP_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let Some(new_last_id) = rows.last().map(|row| row.get::<i64, _>(0)) else {
        return Ok(0);
    };
    let n_rows = rows.len();
    let mut buckets: HashMap<(i64, i64, i64), Bucket> = HashMap::new();
    for row in &rows {
        let breaker_id: i64 = row.get(1);
        let start_ms: i64 = row.get(2);
        let bucket = bucket_from_row(row, 3);
        for resolution in [MINUTE_MS, HOUR_MS] {
            let key = (
                breaker_id,
                resolution,
                start_ms.div_euclid(resolution) * resolution,
            );
            buckets.entry(key).or_default().merge(&bucket);
        }
    }
    for ((breaker_id, resolution, start_ms), mut bucket) in buckets {
        let existing = sqlx::query(
            "SELECT success, failure, timeout, rejected, slow, ignored, latency, failure_rate_threshold
             FROM rollups WHERE breaker_id = ? AND resolution_ms = ? AND start_ms = ?",
        )
        .bind(breaker_id)
        .bind(resolution)
        .bind(start_ms)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let mut merged = bucket_from_row(&row, 0);
            merged.merge(&bucket);
            bucket = merged;
        }
        let c = &bucket.counts;
        sqlx::query(
            "INSERT OR REPLACE INTO rollups (breaker_id, resolution_ms, start_ms, success, failure,
                 timeout, rejected, slow, ignored, latency, failure_rate_threshold)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(breaker_id)
        .bind(resolution)
        .bind(start_ms)
        .bind(count_to_db(c.success))
        .bind(count_to_db(c.failure))
        .bind(count_to_db(c.timeout))
        .bind(count_to_db(c.rejected))
        .bind(count_to_db(c.slow))
        .bind(count_to_db(c.ignored))
        .bind(encode_histogram(&bucket.latency))
        .bind(bucket.failure_rate_threshold)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE rollup_progress SET last_aggregate_id = ? WHERE id = 1")
        .bind(new_last_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(n_rows)
}

/// Reads counts, histogram and threshold from 8 columns starting at `first`.
pub fn bucket_from_row(row: &sqlx::sqlite::SqliteRow, first: usize) -> Bucket {
    let count = |idx: usize| count_from_db(row.get::<i64, _>(first + idx));
    Bucket {
        counts: OutcomeCounts {
            success: count(0),
            failure: count(1),
            timeout: count(2),
            rejected: count(3),
            slow: count(4),
            ignored: count(5),
        },
        latency: decode_histogram(&row.get::<String, _>(first + 6)),
        failure_rate_threshold: row.get(first + 7),
    }
}

/// Deletes what is past retention, `PRUNE_BATCH` rows per statement; returns rows deleted.
/// Raw aggregates are only deleted once rolled up.
pub async fn prune_once(store: &Store, retention: &Retention, now_ms: i64) -> anyhow::Result<u64> {
    let cutoff = |keep: Duration| now_ms - keep.as_millis() as i64;
    let raw = sqlx::query(
        "DELETE FROM aggregates WHERE id IN (
             SELECT id FROM aggregates
             WHERE start_ms < ? AND id <= (SELECT last_aggregate_id FROM rollup_progress WHERE id = 1)
             LIMIT ?)",
    )
    .bind(cutoff(retention.raw))
    .bind(PRUNE_BATCH)
    .execute(store.pool())
    .await?
    .rows_affected();
    let mut rollups = 0;
    for (resolution, keep) in [(MINUTE_MS, retention.minute), (HOUR_MS, retention.hour)] {
        rollups += sqlx::query(
            "DELETE FROM rollups WHERE (breaker_id, resolution_ms, start_ms) IN (
                 SELECT breaker_id, resolution_ms, start_ms FROM rollups
                 WHERE resolution_ms = ? AND start_ms < ? LIMIT ?)",
        )
        .bind(resolution)
        .bind(cutoff(keep))
        .bind(PRUNE_BATCH)
        .execute(store.pool())
        .await?
        .rows_affected();
    }
    Ok(raw + rollups)
}

/// Runs rollup and prune every `period` until the runtime shuts down.
pub fn spawn(store: Store, retention: Retention, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The first run comes a period after start, not at once: a server that just started has
        // nothing new to roll up, and tests that drive the jobs themselves must not race it.
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            loop {
                match roll_up_once(&store).await {
                    Ok(n) if n as i64 == ROLLUP_BATCH => continue,
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(error = format!("{err:#}"), "rollup failed; retrying later");
                        break;
                    }
                }
            }
            if let Err(err) = prune_once(&store, &retention, now_ms()).await {
                tracing::warn!(error = format!("{err:#}"), "pruning failed; retrying later");
            }
        }
    })
}
