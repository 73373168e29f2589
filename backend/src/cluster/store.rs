//! The SQL of running several servers on one PostgreSQL database: the leader's session lock,
//! the notifications between replicas, and the stored instance states a replica reloads.

use sqlx::postgres::{PgConnection, PgListener};

use crate::store::{Db, Store, Tx};

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

/// Notifies `channel` when (and only if) `tx` commits; nothing on SQLite.
pub async fn notify_in(tx: &mut Tx, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
    if let Tx::Postgres(tx) = tx {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
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
