//! `Store`: the database handle. SQLite through sqlx, in WAL mode with `synchronous=NORMAL`, so a
//! killed process loses no committed transaction.
//!
//! This file opens the database, applies `migrations/` and holds what every feature shares
//! (transactions, the breaker lookup, count and histogram encodings). Each feature's SQL lives
//! in its own `store.rs` (`ingest/store.rs`, `query/store/`, …) as methods of [`Store`].

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use protocol::LatencyHistogram;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

/// What a feature's store returns when it cannot do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A stored value that no longer parses (written by a newer or broken server).
    #[error("{what} does not parse: {detail}")]
    Corrupt { what: &'static str, detail: String },
    /// No such breaker (or other named thing).
    #[error("{0}")]
    NotFound(String),
    /// The row changed under the caller (e.g. a canary that ended meanwhile).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// A JSON column read back into its type.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|err| StoreError::Corrupt {
        what,
        detail: err.to_string(),
    })
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    /// One connection kept for the ingest writer (see [`Store::begin_ingest`]).
    pub(crate) ingest: SqlitePool,
}

// === impl Store ===

impl Store {
    /// Opens (creating when missing) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid database URL {url:?}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        MIGRATOR
            .run(&pool)
            .await
            .context("cannot apply the migrations")?;
        let ingest = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        Ok(Store { pool, ingest })
    }

    /// The pool, for tests and benchmarks that read what was stored. The server's own code
    /// runs SQL only in the features' stores (`tests/tests/layout.rs` checks it).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front (waiting up to the
    /// busy timeout), so a transaction that reads before it writes never fails with "database
    /// is locked" when another writer committed in between.
    pub async fn begin(&self) -> anyhow::Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// A write transaction like [`Store::begin`], always on the same connection, which the
    /// ingest writer uses. SQLite drops a connection's page cache whenever another
    /// connection changed the database; on a connection of its own, the pages the writer
    /// touches (index leaves, table tails) stay cached from one commit to the next instead of
    /// being read again for each one.
    pub async fn begin_ingest(&self) -> anyhow::Result<Transaction<'static, Sqlite>> {
        Ok(self.ingest.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// The id of a known breaker, or [`StoreError::NotFound`].
    pub async fn breaker(&self, service: &str, breaker: &str) -> Result<i64, StoreError> {
        self.find_breaker(service, breaker).await?.ok_or_else(|| {
            StoreError::NotFound(format!("no breaker {breaker:?} in service {service:?}"))
        })
    }

    /// The services that have a breaker named `breaker` (only `service`, when given).
    pub async fn services_with_breaker(
        &self,
        breaker: &str,
        service: Option<&str>,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT service FROM breakers WHERE name = ? AND (?2 IS NULL OR service = ?2) ORDER BY service",
        )
        .bind(breaker)
        .bind(service)
        .fetch_all(&self.pool)
        .await
    }

    /// [`Store::find_breaker`] inside a transaction.
    pub async fn find_breaker_in(
        tx: &mut Transaction<'static, Sqlite>,
        service: &str,
        breaker: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        find_breaker(&mut **tx, service, breaker).await
    }

    /// The id of a known breaker; `None` when no report named it yet.
    pub async fn find_breaker(
        &self,
        service: &str,
        breaker: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        find_breaker(&self.pool, service, breaker).await
    }
}

async fn find_breaker<'e>(
    executor: impl sqlx::Executor<'e, Database = Sqlite>,
    service: &str,
    breaker: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM breakers WHERE service = ? AND name = ?")
        .bind(service)
        .bind(breaker)
        .fetch_optional(executor)
        .await
}

/// A count as stored: counts are int64 columns, and sums saturate at `i64::MAX` rather than
/// wrapping to a negative number.
pub fn count_to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count back; a negative one (never written by this server) reads as 0.
pub fn count_from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Bucket counts as comma-separated integers; the empty string for an empty histogram.
pub fn encode_histogram(histogram: &LatencyHistogram) -> String {
    let mut out = String::with_capacity(histogram.counts.len() * 4);
    let mut digits = itoa::Buffer::new();
    for (i, &n) in histogram.counts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(digits.format(n));
    }
    out
}

pub fn decode_histogram(text: &str) -> LatencyHistogram {
    LatencyHistogram {
        counts: text
            .split(',')
            .filter(|part| !part.is_empty())
            .map(|part| part.parse().unwrap_or(0))
            .collect(),
    }
}
