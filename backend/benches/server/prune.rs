//! The `prune` part of the server bench (SQLite): what one run of the retention job costs
//! with little and with ten times as much history kept, the same rows past retention in
//! both. 1,000 breakers with an aggregate a second and a minute rollup a minute (kept: none
//! expires); each run deletes the next 10 seconds of aggregates (10,000 rows), 10 s after the
//! run before. Medians of three runs per size.

use std::time::{Duration, Instant};

use backend::query::rollup::{self, Retention};
use backend::store::Store;

use super::figure;
use super::median;

const BREAKERS: i64 = 1_000;

/// Three retention runs 10 s apart over `seconds` of history (and as many minute rollups);
/// their durations, seconds.
async fn runs(seconds: i64) -> Vec<f64> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/prune.db", dir.path().display());
    let store = Store::open(&url).await.unwrap();
    let pool = store.pool();
    let now: i64 = 1_700_000_000_000;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO breakers (id, service, name, created_ms) SELECT i, 's', 'b' || i, 0 FROM n",
    )
    .bind(BREAKERS)
    .execute(pool)
    .await
    .unwrap();
    // In time order, as ingest adds them: every breaker's second, then the next second.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 * $3 - 1)
         INSERT INTO aggregates (breaker_id, instance, start_ms, interval_ms, success, failure,
             timeout, rejected, slow, ignored, latency, state, failure_rate,
             failure_rate_threshold, config_version)
         SELECT 1 + i % $3, 'i', $1 - $2 * 1000 + (i / $3) * 1000, 1000, 70, 5, 1, 0, 2, 0,
             '0,0,0,49,14,7', 'closed', 0.07, 0.5, 1 FROM n",
    )
    .bind(now)
    .bind(seconds)
    .bind(BREAKERS)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $2 * $3 - 1)
         INSERT INTO rollups (breaker_id, resolution_ms, start_ms, success, failure, timeout,
             rejected, slow, ignored, latency, failure_rate_threshold)
         SELECT 1 + i % $3, 60000, $1 - $2 * 60000 + (i / $3) * 60000, 70, 5, 1, 0, 2, 0,
             '0,0,0,49,14,7', 0.5 FROM n",
    )
    .bind(now)
    .bind(seconds)
    .bind(BREAKERS)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE rollup_progress SET last_aggregate_id = $1")
        .bind(seconds * BREAKERS)
        .execute(pool)
        .await
        .unwrap();
    // The oldest 10 s of aggregates past retention; every rollup within it.
    let retention = Retention {
        raw: Duration::from_secs(seconds as u64 - 10),
        minute: Duration::from_secs(60 * (seconds as u64 + 60)),
        ..Retention::default()
    };
    let mut durations = Vec::new();
    for run in 0..3 {
        let started = Instant::now();
        let pruned = rollup::prune_once(&store, &retention, now + run * 10_000)
            .await
            .unwrap();
        durations.push(started.elapsed().as_secs_f64());
        assert_eq!(pruned, 10_000, "run {run}");
    }
    durations
}

pub async fn prune(quick: bool) {
    let small = if quick { 100 } else { 200 };
    let large = 10 * small;
    let (few, many) = (median(&runs(small).await), median(&runs(large).await));
    println!(
        "prune: a retention run deleting 10 s of {BREAKERS} breakers' aggregates: {:.0} ms with \
         {small} s and {:.0} ms with {large} s of history kept (and as many minute rollups): \
         {:.2}x",
        few * 1e3,
        many * 1e3,
        many / few
    );
    figure(
        "prune",
        format!(
            "retention run deleting 10 s of {BREAKERS} breakers' aggregates (SQLite), {large} s \
             of history kept against {small} s: × time ({:.0} against {:.0} ms)",
            many * 1e3,
            few * 1e3
        ),
        many / few,
        "×",
        2,
    )
    .note("— (a run's work grows with what it deletes, not with what is kept)")
    .record();
}
