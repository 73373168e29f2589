//! Rollups and retention: incremental background jobs.
//!
//! The rollup job reads aggregates by id from where it stopped, adds them into 1-minute and
//! 1-hour buckets per breaker (histograms merged bucket by bucket), writes the buckets a chunk
//! of breakers per transaction and moves its mark with the last, each transaction saying how
//! far the run got, so a crash neither loses nor double-counts ([`roll_up_in_chunks`]).
//! Reading by id rather than by time counts late aggregates too. The prune job deletes raw aggregates, minute and hour
//! rollups past their retention, a bounded number of rows at a time; on PostgreSQL it first
//! makes the aggregates' day partitions ahead and drops those past retention whole
//! ([`partitions`]).

use std::time::Duration;

use protocol::{LatencyHistogram, OutcomeCounts};

pub use super::store::partitions;
pub use super::store::rollup::{
    ROLLUP_BATCH, WRITE_CHUNK, insert_rollups, prune_once, roll_up_in_chunks, roll_up_once,
};
use crate::store::Store;
use crate::time::Clock;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;

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

/// Rolls up every aggregate not rolled up yet, [`ROLLUP_BATCH`] per run; returns how
/// many it rolled up.
pub async fn catch_up(store: &Store) -> anyhow::Result<usize> {
    let mut total = 0;
    loop {
        let n = roll_up_once(store).await?;
        total += n;
        if (n as i64) < ROLLUP_BATCH {
            return Ok(total);
        }
    }
}

/// Runs rollup and prune every `period` until the runtime shuts down (the server makes the
/// aggregates' partitions once before it starts it: [`maintain_partitions`]).
pub fn spawn(
    store: Store,
    retention: Retention,
    period: Duration,
    clock: Clock,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The first run comes a period after start, not at once: a server that just started has
        // nothing new to roll up, and tests that drive the jobs themselves must not race it.
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(err) = catch_up(&store).await {
                tracing::warn!(error = format!("{err:#}"), "rollup failed; retrying later");
            }
            let now_ms = clock.now_ms();
            maintain_partitions(&store, &retention, now_ms).await;
            if let Err(err) = prune_once(&store, &retention, now_ms).await {
                tracing::warn!(error = format!("{err:#}"), "pruning failed; retrying later");
            }
        }
    })
}

/// [`partitions::maintain`] for `retention`'s raw aggregates, its failure logged (a partition
/// not made yet only means rows wait in the default partition). Every server runs it as it
/// starts, before it takes reports, so that they land in their day's partition; then the
/// replica that runs the jobs, each period.
pub async fn maintain_partitions(store: &Store, retention: &Retention, now_ms: i64) {
    let keep_from_ms = now_ms - retention.raw.as_millis() as i64;
    if let Err(err) = partitions::maintain(store, keep_from_ms, now_ms).await {
        tracing::warn!(
            error = format!("{err:#}"),
            "changing the aggregates' partitions failed; retrying later"
        );
    }
}
