//! The SQL of running several servers on one PostgreSQL database: the leader's session lock,
//! the notifications between replicas, and the stored instance states a replica reloads.

use protocol::{Aggregate, OutcomeCounts, State};
use sqlx::postgres::{PgConnection, PgListener};

use crate::store::{Db, Store, StoreError, count_from_db, decode_histogram, on_db};

/// The key of the session-level advisory lock the replica that runs the singleton jobs holds
/// (see [`crate::cluster`]); one above [`crate::store::WRITE_LOCK`].
pub const LEADER_LOCK: i64 = crate::store::WRITE_LOCK + 1;

/// The channel a commit of ingested data notifies (payload: [`super::IngestNews`]).
pub const INGEST_CHANNEL: &str = "fusebox_ingest";
/// The channel a saved config version notifies (payload: `breaker_id:version`).
pub const CONFIG_CHANNEL: &str = "fusebox_config";
/// The channel an alert notice is told on (payload: [`super::AlertNews`]).
pub const ALERT_CHANNEL: &str = "fusebox_alert";

/// A connection of its own, out of the pool, for the leader's session lock.
pub async fn dedicated_connection(store: &Store) -> Result<PgConnection, sqlx::Error> {
    match &store.db {
        Db::Postgres(pool) => Ok(pool.acquire().await?.detach()),
        Db::Sqlite(_) => Err(sqlx::Error::Configuration(
            "a dedicated connection is PostgreSQL's".into(),
        )),
    }
}

/// Takes the leader's lock on `conn` if no other session holds it; it stays held until the
/// session ends (the process exits or the connection breaks).
pub async fn try_lead(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(conn)
        .await
}

/// Whether the session still answers (and so still holds its locks).
pub async fn ping(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(conn).await.map(|_| ())
}

/// A listener on the cluster's channels.
pub async fn listen(store: &Store) -> Result<PgListener, sqlx::Error> {
    let Db::Postgres(pool) = &store.db else {
        return Err(sqlx::Error::Configuration(
            "notifications are PostgreSQL's".into(),
        ));
    };
    let mut listener = PgListener::connect_with(pool).await?;
    listener
        .listen_all([INGEST_CHANNEL, CONFIG_CHANNEL, ALERT_CHANNEL])
        .await?;
    Ok(listener)
}

/// Notifies `channel` at once; nothing on SQLite.
pub async fn notify(store: &Store, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    if let Db::Postgres(pool) = &store.db {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// An aggregate as stored, with its breaker's service and its instance.
#[derive(sqlx::FromRow)]
struct AggregateRow {
    service: String,
    breaker_id: i64,
    breaker: String,
    instance: String,
    start_ms: i64,
    interval_ms: i64,
    success: i64,
    failure: i64,
    timeout: i64,
    rejected: i64,
    slow: i64,
    ignored: i64,
    latency: String,
    state: String,
    failure_rate: Option<f64>,
    failure_rate_threshold: Option<f64>,
    config_version: i64,
}

/// The aggregates with ids in `(after, up_to]`, in id order: (service, breaker id, instance,
/// aggregate).
pub async fn aggregates_between(
    store: &Store,
    after: i64,
    up_to: i64,
) -> Result<Vec<(String, i64, String, Aggregate)>, StoreError> {
    let rows: Vec<AggregateRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT b.service, a.breaker_id, b.name AS breaker, a.instance, a.start_ms, a.interval_ms, a.success,
                a.failure, a.timeout, a.rejected, a.slow, a.ignored, a.latency, a.state,
                a.failure_rate, a.failure_rate_threshold, a.config_version
         FROM aggregates a JOIN breakers b ON b.id = a.breaker_id
         WHERE a.id > $1 AND a.id <= $2 ORDER BY a.id",
    )
    .bind(after)
    .bind(up_to)
    .fetch_all(pool)
    .await)?;
    rows.into_iter()
        .map(|row| {
            let state = State::parse(&row.state).ok_or_else(|| StoreError::Corrupt {
                what: "an aggregate's state",
                detail: row.state.clone(),
            })?;
            let aggregate = Aggregate {
                breaker: row.breaker,
                start_ms: row.start_ms,
                interval_ms: u32::try_from(row.interval_ms).unwrap_or(u32::MAX),
                counts: OutcomeCounts {
                    success: count_from_db(row.success),
                    failure: count_from_db(row.failure),
                    timeout: count_from_db(row.timeout),
                    rejected: count_from_db(row.rejected),
                    slow: count_from_db(row.slow),
                    ignored: count_from_db(row.ignored),
                },
                latency: decode_histogram(&row.latency),
                state,
                failure_rate: row.failure_rate,
                failure_rate_threshold: row.failure_rate_threshold,
                config_version: count_from_db(row.config_version),
            };
            Ok((row.service, row.breaker_id, row.instance, aggregate))
        })
        .collect()
}
