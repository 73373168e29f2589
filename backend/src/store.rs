//! `Store`: the database handle, on SQLite (the embedded default, in WAL mode with
//! `synchronous=NORMAL`, so a killed process loses no committed transaction) or PostgreSQL.
//!
//! This file opens the database, applies `migrations/` (or `migrations/postgres/`) and holds what every feature shares
//! (transactions, the breaker lookup, count and histogram encodings). Each feature's SQL lives
//! in its own `store.rs` (`ingest/store.rs`, `query/store/`, …) as methods of [`Store`].

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use protocol::LatencyHistogram;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

pub mod checkpoint;
pub mod turn;

/// How long a write waits for a lock another connection holds, unless the server is told
/// otherwise (see [`Store::open_with`]).
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(5);

/// Whether `err` is a write that gave up waiting for a lock another connection held:
/// SQLite's `SQLITE_BUSY` in any of its extended codes (after the busy timeout, or at once
/// for a snapshot that another writer made stale), PostgreSQL's `lock_not_available` (after
/// `lock_timeout`). A moment's contention, not a fault, and worth retrying. SQLite's
/// `SQLITE_LOCKED` is not one: without a shared cache it is a conflict within one connection.
pub fn is_lock_timeout(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        if cause.is::<turn::TurnTimedOut>() {
            return true;
        }
        let sqlx_err = cause.downcast_ref::<sqlx::Error>().or_else(|| {
            match cause.downcast_ref::<StoreError>() {
                Some(StoreError::Database(inner)) => Some(inner),
                _ => None,
            }
        });
        // `#[error(transparent)]` hides the error inside from the chain.
        if let Some(StoreError::Other(inner)) = cause.downcast_ref::<StoreError>() {
            return is_lock_timeout(inner);
        }
        let Some(sqlx::Error::Database(db)) = sqlx_err else {
            return false;
        };
        let code = db.code();
        if db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some()
        {
            // PostgreSQL's SQLSTATE.
            code.as_deref() == Some("55P03")
        } else {
            // SQLite's extended result code; its low byte is the primary code.
            code.and_then(|code| code.parse::<i32>().ok())
                .is_some_and(|code| code & 0xff == 5)
        }
    })
}

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
static MIGRATOR_POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

/// The SQLite migrations (`migrations/`), for checking that a file is up to date.
pub(crate) fn sqlite_migrator() -> &'static sqlx::migrate::Migrator {
    &MIGRATOR
}

/// The key of the transaction-scoped advisory lock every write transaction but the ingest
/// writer's takes on PostgreSQL (see [`Store::begin`]).
pub const WRITE_LOCK: i64 = 0x0066_7573_6562_6f78; // "fusebox" in ASCII

/// The key of the transaction-scoped advisory lock the ingest writers' transactions take on
/// PostgreSQL instead of [`WRITE_LOCK`] (see [`Store::begin_ingest`]); two above it
/// (`cluster::store::LEADER_LOCK` is one above).
pub const INGEST_LOCK: i64 = WRITE_LOCK + 2;

/// A pool on either database. Most SQL is written once, with `$1…$n` placeholders and
/// constructs both dialects share, and run on whichever pool this is through [`on_db!`].
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction on either database; [`on_tx!`] runs SQL in it.
pub enum Tx {
    /// On SQLite a write transaction also holds this server's turn to write (see [`turn`]); a
    /// read transaction holds none.
    Sqlite(Transaction<'static, Sqlite>, Option<turn::WriteTurn>),
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx, _turn) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx, _turn) => tx.rollback().await,
            Tx::Postgres(tx) => tx.rollback().await,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }
}

/// Runs `$body` with `$pool` bound to the pool of a [`Db`] (`&SqlitePool` or `&PgPool`): the
/// body is compiled once per database, so one query text with one list of binds serves both.
/// The body's value must have the same type on both (map `execute`'s result to
/// `rows_affected()`); inside it, `Dialect` names the database (`sqlx::Sqlite` or
/// `sqlx::Postgres`), for a `QueryBuilder::<Dialect>`.
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool) => {
                #[allow(dead_code)]
                type Dialect = sqlx::Sqlite;
                $body
            }
            $crate::store::Db::Postgres($pool) => {
                #[allow(dead_code)]
                type Dialect = sqlx::Postgres;
                $body
            }
        }
    };
}

/// [`on_db!`] for a [`Tx`]: `$conn` is the transaction's connection (`&mut SqliteConnection`
/// or `&mut PgConnection`; reborrow it with `&mut *$conn` to run more than one statement).
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(tx, _) => {
                #[allow(dead_code)]
                type Dialect = sqlx::Sqlite;
                let $conn = &mut **tx;
                $body
            }
            $crate::store::Tx::Postgres(tx) => {
                #[allow(dead_code)]
                type Dialect = sqlx::Postgres;
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

pub(crate) use {on_db, on_tx};

/// The database URL for what a user typed: a `sqlite:`, `postgres://` or `postgresql://` URL
/// as it is, anything else as the path of a SQLite file.
pub fn database_url(text: &str) -> String {
    if text.starts_with("sqlite:") || is_postgres_url(text) {
        text.to_string()
    } else {
        format!("sqlite://{text}")
    }
}

/// Which database a URL names: `postgres://` and `postgresql://` are PostgreSQL, anything else
/// SQLite.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

#[derive(Clone)]
pub struct Store {
    pub(crate) db: Db,
    /// One connection kept for the ingest writer (see [`Store::begin_ingest`]).
    pub(crate) ingest: Db,
    /// On SQLite one connection kept for the other write transactions ([`Store::begin`]):
    /// each takes its turn first (see [`turn`]), and whoever holds the turn finds this
    /// connection free, so no writer holds the turn while it waits for a connection behind the
    /// reads, which share `db`'s four. On PostgreSQL `db` itself.
    write: Db,
    /// This server's name among the replicas on one database (random, per start): what it
    /// signs its notifications with (see [`crate::cluster`]).
    replica: std::sync::Arc<str>,
    /// The queue of this server's write transactions on SQLite (see [`turn`]).
    turns: turn::WriteTurns,
    /// Set when the log's last pages are left for the writer to checkpoint (see [`checkpoint`]).
    pub(crate) log_tail_due: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

// === impl Store ===

impl Store {
    /// Opens the database at `url` (a SQLite file, created when missing, or a PostgreSQL
    /// database) and applies its pending migrations: `migrations/` on SQLite,
    /// `migrations/postgres/` on PostgreSQL. A write waits at most [`DEFAULT_LOCK_WAIT`] for
    /// the database's lock.
    pub async fn open(url: &str) -> anyhow::Result<Store> {
        Store::open_with(url, DEFAULT_LOCK_WAIT).await
    }

    /// [`Store::open`] with writes that wait at most `lock_wait` for a lock another connection
    /// holds (SQLite's busy timeout, PostgreSQL's `lock_timeout`) before failing with an error
    /// that [`is_lock_timeout`] recognises.
    pub async fn open_with(url: &str, lock_wait: Duration) -> anyhow::Result<Store> {
        if is_postgres_url(url) {
            return Store::open_postgres(url, lock_wait).await;
        }
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid database URL {url:?}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(lock_wait)
            .foreign_keys(true)
            // A read hands its rows from the connection's worker thread to the request's task
            // through a channel; with sqlx's default of 50 the worker waits for the task every
            // 50 rows of a day's 1,440 minute rollups.
            .row_buffer_size(2048);
        // Reads take a connection without a test query first (a round trip to the worker
        // thread each, eight per breaker detail): a SQLite connection cannot break while
        // idle, and the pool still tests each one when it comes back.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        MIGRATOR
            .run(&pool)
            .await
            .context("cannot apply the migrations")?;
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(lock_wait.max(Duration::from_secs(1)))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        // The writer's connection checkpoints the log itself only past 64 MB of it, a backstop:
        // the commit that does takes as long as copying the log (see `checkpoint`, the
        // server's task that does instead).
        let ingest = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.pragma("wal_autocheckpoint", "16384"))
            .await
            .with_context(|| format!("cannot open the database {url}"))?;
        Ok(Store {
            db: Db::Sqlite(pool),
            ingest: Db::Sqlite(ingest),
            write: Db::Sqlite(write),
            replica: replica_name()?,
            turns: turn::WriteTurns::new(lock_wait),
            log_tail_due: Default::default(),
        })
    }

    async fn open_postgres(url: &str, lock_wait: Duration) -> anyhow::Result<Store> {
        // A write waits at most `lock_wait` for a lock, as SQLite's busy timeout has it. Every
        // statement is planned for its values: a generic plan cannot tell that `id > $4`
        // leaves few rows and scans a breaker's whole day in the time index instead.
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("invalid database URL {:?}", redact(url)))?
            .options([(
                "lock_timeout",
                format!("{}ms", lock_wait.as_millis().max(1)),
            )]);
        let ingest_options = options.clone();
        let options = options.options([("plan_cache_mode", "force_custom_plan")]);
        // Eight for the server's work, one for the cluster's listener, which keeps its own.
        // Taken without a test query, like the ingest writer's below: a breaker detail is
        // eight short queries, and a ping before each doubled its round trips. A connection
        // is still tested when it comes back to the pool and replaced when that fails; one
        // the server dropped while it sat idle fails the one read that finds it.
        let pool = PgPoolOptions::new()
            .max_connections(9)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .with_context(|| format!("cannot open the database {}", redact(url)))?;
        MIGRATOR_POSTGRES
            .run(&pool)
            .await
            .context("cannot apply the migrations")?;
        // The ingest writer's connection, taken without a test query: a group commit is a few
        // round trips, and a ping before each was one more. The pool still pings it when it
        // comes back (after the commit, while the writer answers and gathers the next group)
        // and replaces it when that fails. Its statements (inserts) keep PostgreSQL's default
        // plan caching: planning anew for every row the foreign key check of every inserted
        // aggregate (which `force_custom_plan` does) nearly doubled the cost of an insert.
        let ingest = PgPoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(ingest_options)
            .await
            .with_context(|| format!("cannot open the database {}", redact(url)))?;
        Ok(Store {
            write: Db::Postgres(pool.clone()),
            db: Db::Postgres(pool),
            ingest: Db::Postgres(ingest),
            replica: replica_name()?,
            turns: turn::WriteTurns::new(lock_wait),
            log_tail_due: Default::default(),
        })
    }

    /// The pool on either database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.db, Db::Postgres(_))
    }

    /// This server's name among the replicas on the same database.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The SQLite pool, for tests and benchmarks that read what was stored in a SQLite file.
    /// The server's own code runs SQL only in the features' stores (`tests/tests/layout.rs`
    /// checks it).
    ///
    /// # Panics
    /// On PostgreSQL.
    pub fn pool(&self) -> &SqlitePool {
        match &self.db {
            Db::Sqlite(pool) => pool,
            Db::Postgres(_) => panic!("Store::pool is SQLite's; this store is on PostgreSQL"),
        }
    }

    /// A write transaction. On SQLite, `BEGIN IMMEDIATE` takes the write lock up front (waiting
    /// up to the busy timeout), so a transaction that reads before it writes never fails with
    /// "database is locked" when another writer committed in between. On PostgreSQL, every
    /// write transaction takes the same transaction-scoped advisory lock first, so write
    /// transactions run one at a time there too and a read-then-write (the next config
    /// version, an alert's incident) sees what the previous one committed.
    pub async fn begin(&self) -> anyhow::Result<Tx> {
        begin(&self.write, WRITE_LOCK, &self.turns).await
    }

    /// A write transaction like [`Store::begin`], on SQLite always on the same connection,
    /// which the ingest writer uses. SQLite drops a connection's page cache whenever another
    /// connection changed the database; on a connection of its own, the pages the writer
    /// touches (index leaves, table tails) stay cached from one commit to the next instead of
    /// being read again for each one. On PostgreSQL on a connection of its own too, taken
    /// without the test query the shared pool sends first, and holding [`INGEST_LOCK`], not
    /// [`WRITE_LOCK`]: the ingest writers (one per replica) run one at a time, but neither
    /// wait for nor hold up the other writes (alerts, their delivery, configs, rollups).
    /// Nothing else writes the rows they write (batches, transitions, aggregates, instance
    /// states; a config may create a breaker row, which `INSERT … ON CONFLICT DO NOTHING`
    /// makes safe), and what reads transitions or aggregates after an id still reads them in
    /// commit order: a transaction holding `INGEST_LOCK` takes its ids only after the previous
    /// one's are visible (PostgreSQL releases a transaction's locks after its commit shows).
    pub async fn begin_ingest(&self) -> anyhow::Result<Tx> {
        begin(&self.ingest, INGEST_LOCK, &self.turns).await
    }

    /// A read transaction: one consistent snapshot for several reads while writers keep
    /// committing (a deferred transaction on SQLite, `REPEATABLE READ` on PostgreSQL).
    pub async fn begin_read(&self) -> anyhow::Result<Tx> {
        Ok(match &self.db {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?, None),
            Db::Postgres(pool) => Tx::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
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
        on_db!(&self.db, pool => sqlx::query_scalar(
            "SELECT service FROM breakers WHERE name = $1 AND ($2 IS NULL OR service = $2) ORDER BY service",
        )
        .bind(breaker)
        .bind(service)
        .fetch_all(pool)
        .await)
    }

    /// [`Store::find_breaker`] inside a transaction.
    pub async fn find_breaker_in(
        tx: &mut Tx,
        service: &str,
        breaker: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        on_tx!(tx, conn => sqlx::query_scalar(FIND_BREAKER).bind(service).bind(breaker).fetch_optional(conn).await)
    }

    /// The id of a known breaker; `None` when no report named it yet.
    pub async fn find_breaker(
        &self,
        service: &str,
        breaker: &str,
    ) -> Result<Option<i64>, sqlx::Error> {
        on_db!(&self.db, pool => sqlx::query_scalar(FIND_BREAKER).bind(service).bind(breaker).fetch_optional(pool).await)
    }
}

/// A random name for a server's replica, 16 hex digits.
fn replica_name() -> anyhow::Result<std::sync::Arc<str>> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no system randomness: {err}"))?;
    Ok(bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into())
}

/// A write transaction: `BEGIN IMMEDIATE` on SQLite; on PostgreSQL, holding the advisory lock
/// `lock`. (Not begun and locked in one simple query of two statements: when the lock timed
/// out, sqlx would not know the transaction had begun, and the connection would go back to
/// the pool inside the failed transaction.) On SQLite it takes this server's turn to write
/// first (see [`turn`]).
async fn begin(db: &Db, lock: i64, turns: &turn::WriteTurns) -> anyhow::Result<Tx> {
    match db {
        Db::Sqlite(pool) => {
            let turn = turns.take().await?;
            Ok(Tx::Sqlite(
                pool.begin_with("BEGIN IMMEDIATE").await?,
                Some(turn),
            ))
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock)
                .execute(&mut *tx)
                .await?;
            Ok(Tx::Postgres(tx))
        }
    }
}

/// A URL as it may be shown: without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

const FIND_BREAKER: &str = "SELECT id FROM breakers WHERE service = $1 AND name = $2";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_is_a_sqlite_path_or_a_url_of_either_kind() {
        assert_eq!(database_url("fusebox.db"), "sqlite://fusebox.db");
        assert_eq!(database_url("/var/lib/f.db"), "sqlite:///var/lib/f.db");
        assert_eq!(database_url("sqlite://x.db"), "sqlite://x.db");
        for url in [
            "postgres://u@h/db",
            "postgresql://u:p@h:5433/db?sslmode=disable",
        ] {
            assert_eq!(database_url(url), url);
            assert!(is_postgres_url(url));
        }
        assert!(!is_postgres_url("sqlite://postgres.db"));
    }

    #[test]
    fn a_shown_url_has_no_password() {
        assert_eq!(
            redact("postgres://fusebox:s3cret@db:5432/fusebox"),
            "postgres://fusebox:***@db:5432/fusebox"
        );
        assert_eq!(
            redact("postgres://fusebox@db/fusebox"),
            "postgres://fusebox@db/fusebox"
        );
        assert_eq!(redact("sqlite://fusebox.db"), "sqlite://fusebox.db");
    }
}
