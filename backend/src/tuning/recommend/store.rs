//! Recommendations' SQL: the stored history the engine reads, and the recommendations
//! themselves (superseded, decided).

use protocol::{Recommendation, RecommendationStatus};

use crate::query::rollup::{Bucket, MINUTE_MS};
use crate::query::store::BucketRow;
use crate::store::{Store, StoreError, on_db, on_tx, parse_json};

/// A breaker's stored counts over `[from_ms, to_ms)`, per instance and interval: (start,
/// counts, interval length). From the raw aggregates when `per_second`, else the minute
/// rollups.
pub async fn history_rows(
    store: &Store,
    breaker_id: i64,
    from_ms: i64,
    to_ms: i64,
    per_second: bool,
) -> Result<Vec<(i64, Bucket, i64)>, StoreError> {
    let sql = if per_second {
        "SELECT start_ms, success, failure, timeout, rejected, slow, ignored, latency,
                failure_rate_threshold, interval_ms
         FROM aggregates WHERE breaker_id = $1 AND start_ms >= $3 AND start_ms < $4 AND $2 > 0
         ORDER BY start_ms"
    } else {
        "SELECT start_ms, success, failure, timeout, rejected, slow, ignored, latency,
                failure_rate_threshold, resolution_ms AS interval_ms
         FROM rollups WHERE breaker_id = $1 AND resolution_ms = $2 AND start_ms >= $3 AND start_ms < $4
         ORDER BY start_ms"
    };
    let step_ms = if per_second { 1_000 } else { MINUTE_MS };
    let rows: Vec<AggregateRow> = on_db!(&store.db, pool => sqlx::query_as(sql)
        .bind(breaker_id)
        .bind(step_ms)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(pool)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|row| (row.start_ms, row.bucket.into(), row.interval_ms))
        .collect())
}

/// Stored counts with the length of the interval they cover.
#[derive(sqlx::FromRow)]
struct AggregateRow {
    start_ms: i64,
    #[sqlx(flatten)]
    bucket: BucketRow,
    interval_ms: i64,
}

#[derive(sqlx::FromRow)]
struct RecommendationRow {
    id: i64,
    detail: String,
    status: String,
    decided_by: Option<String>,
    decided_ms: Option<i64>,
    applied_version: Option<i64>,
}

impl RecommendationRow {
    fn into_recommendation(self) -> Result<Recommendation, StoreError> {
        let mut rec: Recommendation = parse_json("a stored recommendation", &self.detail)?;
        rec.id = self.id;
        rec.status =
            RecommendationStatus::parse(&self.status).ok_or_else(|| StoreError::Corrupt {
                what: "a recommendation's status",
                detail: format!("unknown status {:?}", self.status),
            })?;
        rec.decided_by = self.decided_by;
        rec.decided_ms = self.decided_ms;
        rec.applied_version = self.applied_version.map(|v| v as u64);
        Ok(rec)
    }
}

/// Stores a new open recommendation, superseding the breaker's open ones; returns its id.
pub async fn insert(
    store: &Store,
    breaker_id: i64,
    rec: &Recommendation,
) -> Result<i64, StoreError> {
    let mut tx = store.begin().await?;
    on_tx!(&mut tx, c => sqlx::query(
        "UPDATE recommendations SET status = 'superseded' WHERE breaker_id = $1 AND status = 'open'",
    )
    .bind(breaker_id)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    let id = on_tx!(&mut tx, c => sqlx::query_scalar(
        "INSERT INTO recommendations (breaker_id, made_ms, status, detail) VALUES ($1, $2, 'open', $3)
         RETURNING id",
    )
    .bind(breaker_id)
    .bind(rec.made_ms)
    .bind(serde_json::to_string(rec).expect("a recommendation serializes"))
    .fetch_one(c)
    .await)?;
    tx.commit().await?;
    Ok(id)
}

/// One recommendation.
pub async fn load(store: &Store, id: i64) -> Result<Recommendation, StoreError> {
    let row: Option<RecommendationRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT id, detail, status, decided_by, decided_ms, applied_version FROM recommendations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await)?;
    row.ok_or_else(|| StoreError::NotFound(format!("no recommendation {id}")))?
        .into_recommendation()
}

/// The newest 200 recommendations, of one status when given.
pub async fn list(
    store: &Store,
    status: Option<RecommendationStatus>,
) -> Result<Vec<Recommendation>, StoreError> {
    let rows: Vec<RecommendationRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT id, detail, status, decided_by, decided_ms, applied_version FROM recommendations
         WHERE $1 IS NULL OR status = $1 ORDER BY id DESC LIMIT 200",
    )
    .bind(status.map(RecommendationStatus::as_str))
    .fetch_all(pool)
    .await)?;
    rows.into_iter()
        .map(RecommendationRow::into_recommendation)
        .collect()
}

/// An admin's decision on a recommendation.
pub async fn decide(
    store: &Store,
    id: i64,
    status: RecommendationStatus,
    by: &str,
    now: i64,
    applied_version: Option<u64>,
) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query(
        "UPDATE recommendations SET status = $1, decided_by = $2, decided_ms = $3, applied_version = $4
         WHERE id = $5",
    )
    .bind(status.as_str())
    .bind(by)
    .bind(now)
    .bind(applied_version.map(|v| v as i64))
    .bind(id)
    .execute(pool)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}
