//! Checkpoints of SQLite's write-ahead log, mostly off the ingest writer's path.
//!
//! SQLite's automatic checkpoint runs inside the commit that fills the log past its limit, on
//! the connection that made it: on the ingest writer's, that commit took 30–100 ms instead of
//! a few (a 10,000-breaker fleet fills 16 MB of log about every 1.2 s), and every batch
//! queued behind it, transitions included, waited as long. The writer's connection therefore
//! checkpoints by itself only past a backstop of 64 MB of log. This task copies the log into
//! the database every [`PERIOD`] with a `PASSIVE` checkpoint on a connection of the read
//! pool, while the writer goes on committing; then it leaves the pages committed meanwhile to
//! the writer, which checkpoints them between two commits ([`Store::checkpoint_tail`]): a few
//! hundred pages at most, so that the log is wholly checkpointed and the next write starts it
//! again from its beginning, where under a load that never pauses it would only grow. (`FULL`
//! on this task's connection did the same but held the writer back for 10 ms to 1.4 s while
//! it waited for its turn.) With nothing new in the log, a checkpoint is a look at its header.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::SqlitePool;

use crate::store::{Db, Store};

/// How often the log is checkpointed.
pub const PERIOD: Duration = Duration::from_secs(1);

/// Pages in the log and pages copied into the database (`PRAGMA wal_checkpoint`'s answer).
async fn passive(pool: &SqlitePool) -> sqlx::Result<(i64, i64)> {
    let (_, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok((log, copied))
}

impl Store {
    /// Checkpoints the log's pages that the last periodic checkpoint left, if it left any
    /// (see the [module](self)): the ingest writer calls it between two commits, on its
    /// own connection, after every commit until none are left. A failure is logged.
    pub async fn checkpoint_tail(&self) {
        if let Db::Sqlite(writer) = &self.ingest
            && self.log_tail_due.swap(false, Ordering::AcqRel)
        {
            match passive(writer).await {
                // A reader's snapshot kept pages back: again after the next commit.
                Ok((log, copied)) if copied < log => {
                    self.log_tail_due.store(true, Ordering::Release)
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "checkpoint of the log's tail failed"),
            }
        }
    }
}

/// Starts the task that checkpoints `store`'s log every [`PERIOD`] until aborted.
pub fn spawn(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(PERIOD);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match passive(store.pool()).await {
                Ok((log, copied)) if copied < log => {
                    store.log_tail_due.store(true, Ordering::Release);
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "checkpoint of the log failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer's connection leaves the log alone, a checkpoint copies all of it into the
    /// database, so the next write starts the log again from its beginning, and the writer
    /// checkpoints what a periodic checkpoint left to it, again while a reader holds it back.
    #[tokio::test]
    async fn the_writer_leaves_the_log_to_the_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("log.db").display());
        let store = Store::open(&url).await.unwrap();
        let Db::Sqlite(writer) = &store.ingest else {
            unreachable!("a SQLite store")
        };
        let write = |bytes: usize| async move {
            sqlx::query("INSERT INTO scratch VALUES (zeroblob($1))")
                .bind(bytes as i64)
                .execute(writer)
                .await
                .unwrap();
        };
        sqlx::query("CREATE TABLE scratch (b BLOB)")
            .execute(writer)
            .await
            .unwrap();
        // Past SQLite's default automatic checkpoint (1,000 pages) and the writer's old one
        // (4,096), short of its backstop (16,384).
        write(24_000_000).await;
        let pool = store.pool();
        // The database file grows only when a checkpoint copies the log into it.
        let file_size = || std::fs::metadata(dir.path().join("log.db")).unwrap().len();
        assert!(
            file_size() < 4_000_000,
            "the writer checkpointed itself: the database file is {} bytes",
            file_size()
        );
        let (log, copied) = passive(pool).await.unwrap();
        assert!(
            copied > 4_096 && copied == log,
            "{copied} of {log} pages copied"
        );
        assert!(
            file_size() > 24_000_000,
            "not copied: {} bytes",
            file_size()
        );
        // Wholly checkpointed: the next commit writes the log from its start.
        write(1).await;
        let (after, _) = passive(pool).await.unwrap();
        assert!(after < 100, "the log was not started again: {after} pages");

        // The writer checkpoints the pages left to it, and only when some were.
        write(8_000_000).await;
        let size = file_size();
        store.checkpoint_tail().await;
        assert_eq!(file_size(), size, "checkpointed with no tail due");
        store.log_tail_due.store(true, Ordering::Release);
        store.checkpoint_tail().await;
        assert!(
            file_size() > size + 7_000_000,
            "the tail was not checkpointed"
        );
        assert!(!store.log_tail_due.load(Ordering::Acquire));

        // A reader's snapshot keeps the pages written after it back: the writer tries again
        // after its next commit, and once the reader is gone the tail is copied.
        let mut reader = pool.begin().await.unwrap();
        let _: (i64,) = sqlx::query_as("SELECT count(*) FROM scratch")
            .fetch_one(&mut *reader)
            .await
            .unwrap();
        write(8_000_000).await;
        store.log_tail_due.store(true, Ordering::Release);
        store.checkpoint_tail().await;
        assert!(
            store.log_tail_due.load(Ordering::Acquire),
            "a held-back tail counted as done"
        );
        reader.rollback().await.unwrap();
        store.checkpoint_tail().await;
        assert!(
            !store.log_tail_due.load(Ordering::Acquire),
            "the tail stayed due"
        );
    }
}
