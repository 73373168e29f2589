//! The day partitions of PostgreSQL's `aggregates` table (`migrations/postgres/0009`): made
//! ahead of the reports that fill them, filled from the default partition when rows landed
//! there first (history copied in, a day whose partition did not exist yet), and dropped whole
//! once every row of the day is past raw retention and rolled up. SQLite keeps one table,
//! whose retention deletes rows; everything here does nothing there.
//!
//! Changes take the lock they need on the partitioned table only briefly and give up after
//! [`LOCK_TIMEOUT`], to try again on the rollup job's next run, rather than queue the ingest
//! writer behind a long read. Moving rows out of the default partition is not atomic for a
//! read planned before the move that runs into it: such a read can miss the rows moved. It
//! happens only to rows no partition was made for in time (history copied in, or reports of
//! a day older than the partitions kept), never to live reports, whose days are made ahead.

use anyhow::Context;
use sqlx::{AssertSqlSafe, PgConnection};

use crate::store::{Db, Store, Tx};

/// One partition's width: a UTC day of `start_ms`.
pub const DAY_MS: i64 = 86_400_000;
/// Days made ahead of today's: ingest takes reports up to a day ahead of the server's clock,
/// and one more day is made in case the job does not run at midnight.
const DAYS_AHEAD: i64 = 2;
/// How long a partition change waits for its table lock before it gives up until the next
/// run. Dropping a partition locks the whole table, so ingest waits behind the change for at
/// most this long.
const LOCK_TIMEOUT: &str = "1s";
/// The partition that holds rows no day partition covers.
const DEFAULT_PARTITION: &str = "aggregates_default";

/// A day partition of `aggregates`, `[from_ms, to_ms)` of `start_ms`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DayPartition {
    pub name: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// What [`maintain`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionChanges {
    /// Partitions made, by name.
    pub made: Vec<String>,
    /// Rows moved out of the default partition into the partitions made.
    pub moved: u64,
    /// Partitions dropped, by name.
    pub dropped: Vec<String>,
}

/// The name of the partition of the day that holds `from_ms`: `aggregates_20261202`.
fn partition_name(from_ms: i64) -> String {
    let date = charts::units::timestamp_utc(from_ms);
    format!("aggregates_{}", date[..10].replace('-', ""))
}

/// The day partitions of `aggregates`, oldest first (none on SQLite).
pub async fn day_partitions(store: &Store) -> anyhow::Result<Vec<DayPartition>> {
    match store.db() {
        Db::Sqlite(_) => Ok(Vec::new()),
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            list(&mut conn).await
        }
    }
}

async fn list(conn: &mut PgConnection) -> anyhow::Result<Vec<DayPartition>> {
    // The bounds as the catalogue states them: FOR VALUES FROM ('…') TO ('…'); the default
    // partition (and any partition bounded by MINVALUE or MAXVALUE) does not match.
    let rows: Vec<DayPartition> = sqlx::query_as(
        "SELECT name, bounds[1]::bigint AS from_ms, bounds[2]::bigint AS to_ms FROM (
             SELECT c.relname::text AS name,
                    regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                 '^FOR VALUES FROM \\(''?(-?[0-9]+)''?\\) TO \\(''?(-?[0-9]+)''?\\)$') AS bounds
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'aggregates'::regclass) p
         WHERE bounds IS NOT NULL
         ORDER BY from_ms",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows)
}

/// Makes the partitions of every day from the one holding `keep_from_ms` (the oldest raw
/// aggregate retention keeps) to [`DAYS_AHEAD`] days after `now_ms`'s, moving rows of those
/// days out of the default partition; then drops every partition whose day ended before
/// `keep_from_ms` and whose rows are all rolled up. Each change is a transaction of its own;
/// one that cannot take its lock in time is left for the next run.
pub async fn maintain(
    store: &Store,
    keep_from_ms: i64,
    now_ms: i64,
) -> anyhow::Result<PartitionChanges> {
    let mut changes = PartitionChanges::default();
    if !store.is_postgres() {
        return Ok(changes);
    }
    let first_day = keep_from_ms.div_euclid(DAY_MS);
    let last_day = now_ms.div_euclid(DAY_MS) + DAYS_AHEAD;
    // Read without a lock first: on most runs every day is made already, and a change takes
    // locks that hold up ingest (the change checks again under them).
    let existing = day_partitions(store).await?;
    for day in first_day..=last_day {
        let (from_ms, to_ms) = (day * DAY_MS, (day + 1) * DAY_MS);
        if overlaps(&existing, from_ms, to_ms) {
            continue;
        }
        if let Some(moved) = make(store, from_ms, to_ms).await? {
            changes.made.push(partition_name(from_ms));
            changes.moved += moved;
        }
    }
    for partition in existing {
        if partition.to_ms <= keep_from_ms && drop_rolled_up(store, &partition).await? {
            changes.dropped.push(partition.name);
        }
    }
    Ok(changes)
}

/// The transaction of one change: [`Store::begin`]'s (so two changes, from two replicas or
/// from the job and a test, run one after the other), waiting at most [`LOCK_TIMEOUT`] for
/// table locks, and holding `breakers` against writes first. Attaching or dropping a
/// partition adds or removes its foreign key's triggers on `breakers`, which locks it in that
/// mode; the ingest writer writes `breakers` (a new breaker) before `aggregates`, so the
/// change must lock them in the same order, or each could wait for the other.
async fn begin(store: &Store) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let Tx::Postgres(mut tx) = store.begin().await? else {
        anyhow::bail!("partitions are PostgreSQL's");
    };
    sqlx::query(AssertSqlSafe(format!(
        "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query("LOCK TABLE breakers IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .context("locking breakers for a partition change")?;
    Ok(tx)
}

/// Whether one of `partitions` covers part of `[from_ms, to_ms)`.
fn overlaps(partitions: &[DayPartition], from_ms: i64, to_ms: i64) -> bool {
    partitions
        .iter()
        .any(|p| p.from_ms < to_ms && from_ms < p.to_ms)
}

/// Makes the partition `[from_ms, to_ms)` unless a partition covers part of it already;
/// returns the rows it moved out of the default partition, `None` when it made none.
async fn make(store: &Store, from_ms: i64, to_ms: i64) -> anyhow::Result<Option<u64>> {
    let mut tx = begin(store).await?;
    if overlaps(&list(&mut tx).await?, from_ms, to_ms) {
        tx.rollback().await?;
        return Ok(None);
    }
    let name = partition_name(from_ms);
    // Made apart and attached, not `CREATE TABLE ... PARTITION OF`, which locks the whole
    // table against ingest; attaching locks it only against other schema changes. After
    // `breakers` ([`begin`]), the default partition is locked, so inserts of rows that belong
    // in it wait until the day's rows have moved; nothing asked for on the table after that (a
    // share lock to copy its shape, the lock against schema changes to attach) conflicts with
    // what the ingest writer or a reader holds on it, so neither can be waiting for this while
    // this waits for them.
    let statements = [
        format!("LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE"),
        format!("CREATE TABLE {name} (LIKE aggregates INCLUDING DEFAULTS)"),
        format!(
            "INSERT INTO {name} SELECT * FROM {DEFAULT_PARTITION}
             WHERE start_ms >= {from_ms} AND start_ms < {to_ms}"
        ),
        format!(
            "DELETE FROM {DEFAULT_PARTITION} WHERE start_ms >= {from_ms} AND start_ms < {to_ms}"
        ),
        format!(
            "ALTER TABLE aggregates ATTACH PARTITION {name} FOR VALUES FROM ({from_ms}) TO ({to_ms})"
        ),
    ];
    let mut moved = 0;
    for (step, sql) in statements.into_iter().enumerate() {
        let done = sqlx::query(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("making the partition {name}"))?;
        if step == 3 {
            moved = done.rows_affected();
        }
    }
    tx.commit().await?;
    tracing::info!(partition = name, moved, "made a partition of aggregates");
    Ok(Some(moved))
}

/// Drops `partition` if every row in it is rolled up; returns whether it did.
async fn drop_rolled_up(store: &Store, partition: &DayPartition) -> anyhow::Result<bool> {
    let mut tx = begin(store).await?;
    let name = &partition.name;
    // Locked first, so no row can be added between the check and the drop.
    sqlx::query("LOCK TABLE aggregates IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .with_context(|| format!("locking aggregates to drop {name}"))?;
    // Another server may have dropped it since the list was read.
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
    if !exists {
        tx.rollback().await?;
        return Ok(false);
    }
    let not_rolled_up: bool = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT EXISTS (SELECT 1 FROM {name}
             WHERE id > (SELECT last_aggregate_id FROM rollup_progress WHERE id = 1))"
    )))
    .fetch_one(&mut *tx)
    .await?;
    if not_rolled_up {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query(AssertSqlSafe(format!("DROP TABLE {name}")))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("dropping the partition {name}"))?;
    tx.commit().await?;
    tracing::info!(partition = name, "dropped a partition of aggregates");
    Ok(true)
}
