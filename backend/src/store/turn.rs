//! This server's write transactions on SQLite take turns, in the order they asked.
//!
//! SQLite lets one connection write at a time. Another that asks waits in SQLite's busy
//! handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms between its
//! tries, whether or not the lock came free meanwhile: a writer that asked while a job wrote
//! chunk after chunk (the rollup: a transaction of a few ms each, the next one begun as the
//! last committed) slept through every gap between them, and the ingest writer waited many
//! times as long as any chunk held the lock, holding up the transitions it carried.
//! Here each write transaction of this server ([`crate::store::Store::begin`] and
//! [`crate::store::Store::begin_ingest`]) first takes its turn from a fair queue, so it waits
//! for the transactions ahead of it only, and wakes as the last of them ends. SQLite's own
//! lock is then contended only by other processes (a shell, a backup) and by the few writes
//! of one statement outside a transaction, which still wait in its busy handler.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

/// The queue of this server's write transactions (SQLite only).
#[derive(Clone, Debug)]
pub struct WriteTurns {
    queue: Arc<Mutex<()>>,
    /// How long a transaction waits for its turn before giving up, as it would for SQLite's
    /// lock (the server's `lock_wait`).
    wait: Duration,
}

/// A write transaction's turn, held until it commits, rolls back or is dropped.
#[derive(Debug)]
pub struct WriteTurn(#[allow(dead_code)] OwnedMutexGuard<()>);

/// A write gave up waiting for this server's other write transactions to end: a lock timeout,
/// as [`crate::store::is_lock_timeout`] sees it.
#[derive(Debug, thiserror::Error)]
#[error("waited {0:?} for this server's other write transactions to end")]
pub struct TurnTimedOut(Duration);

impl WriteTurns {
    pub fn new(wait: Duration) -> WriteTurns {
        WriteTurns {
            queue: Arc::new(Mutex::new(())),
            wait,
        }
    }

    /// Waits for this transaction's turn (`tokio::sync::Mutex` serves its waiters first come,
    /// first served), for at most the server's `lock_wait`.
    pub async fn take(&self) -> Result<WriteTurn, TurnTimedOut> {
        tokio::time::timeout(self.wait, self.queue.clone().lock_owned())
            .await
            .map(WriteTurn)
            .map_err(|_| TurnTimedOut(self.wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_are_served_in_the_order_asked_and_a_long_wait_times_out() {
        let turns = WriteTurns::new(Duration::from_secs(60));
        let first = turns.take().await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        // `turns` and `first`'s guard.
        let base = Arc::strong_count(&turns.queue);
        for n in 0..3 {
            let (mine, order) = (turns.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = mine.take().await.unwrap();
                order.lock().unwrap().push(n);
            }));
            // The next asks only once this one waits: a waiting task holds two handles on the
            // queue (its copy of `turns`, and the one `take` waits on).
            while Arc::strong_count(&turns.queue) < base + 2 * (n + 1) {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for task in waiting {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2]);

        let short = WriteTurns::new(Duration::from_millis(10));
        let _held = short.take().await.unwrap();
        let err = short.take().await.unwrap_err();
        let err = anyhow::Error::new(err).context("beginning a write");
        assert!(crate::store::is_lock_timeout(&err), "{err:#}");
        // As a feature's store returns it.
        let err = anyhow::Error::new(crate::store::StoreError::Other(err));
        assert!(crate::store::is_lock_timeout(&err), "{err:#}");
    }
}
