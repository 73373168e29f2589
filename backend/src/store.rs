//! `Store`: the only code that touches the database. SQLite through sqlx, in WAL mode with
//! `synchronous=NORMAL`, so a killed process loses no committed transaction.
//!
//! Writes come from the single ingest writer ([`crate::ingest`]); reads come from handlers.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use protocol::{
    Aggregate, IngestBatch, LatencyHistogram, Series, SeriesPoint, State, StateInterval, Timeline,
    TimelineLane, Transition, TransitionRecord, Trigger,
};
use sqlx::Arguments;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};

use crate::fleet::{BreakerKey, InstanceLive};
use crate::rollup::{Bucket, HOUR_MS, MINUTE_MS, bucket_from_row};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Rows per multi-row INSERT: 16 columns × 200 rows stays well under SQLite's 32 766 parameters.
const ROWS_PER_INSERT: usize = 200;
/// Values bound per row of `aggregates`.
const AGGREGATE_COLUMNS: usize = 15;

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// One connection kept for the ingest writer (see [`Store::begin_ingest`]).
    ingest: SqlitePool,
}

/// What committing one batch did.
#[derive(Debug)]
pub struct Committed {
    pub duplicate: bool,
    /// The batch's transitions as stored, with their ids (empty for a duplicate).
    pub transitions: Vec<TransitionRecord>,
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

    /// The id of a breaker, creating its row when it is new.
    pub async fn breaker_id(
        tx: &mut Transaction<'static, Sqlite>,
        service: &str,
        name: &str,
        now_ms: i64,
    ) -> anyhow::Result<i64> {
        sqlx::query("INSERT OR IGNORE INTO breakers (service, name, created_ms) VALUES (?, ?, ?)")
            .bind(service)
            .bind(name)
            .bind(now_ms)
            .execute(&mut **tx)
            .await?;
        let id = sqlx::query_scalar("SELECT id FROM breakers WHERE service = ? AND name = ?")
            .bind(service)
            .bind(name)
            .fetch_one(&mut **tx)
            .await?;
        Ok(id)
    }

    /// Records the batches as seen, in one statement per 500; for each batch, false when it
    /// had been stored before (or appears earlier in `batches`).
    pub async fn claim_batches(
        tx: &mut Transaction<'static, Sqlite>,
        batches: &[&IngestBatch],
        now_ms: i64,
    ) -> anyhow::Result<Vec<bool>> {
        let mut claimed: std::collections::HashSet<(String, String, i64)> = Default::default();
        for chunk in batches.chunks(500) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT OR IGNORE INTO batches (service, instance, seq, received_ms, n_aggregates, n_transitions) ",
            );
            insert.push_values(chunk, |mut row, batch| {
                row.push_bind(batch.service.clone())
                    .push_bind(batch.instance.clone())
                    .push_bind(batch.seq as i64)
                    .push_bind(now_ms)
                    .push_bind(batch.aggregates.len() as i64)
                    .push_bind(batch.transitions.len() as i64);
            });
            insert.push(" RETURNING service, instance, seq");
            for row in insert.build().fetch_all(&mut **tx).await? {
                claimed.insert((row.get(0), row.get(1), row.get(2)));
            }
        }
        Ok(batches
            .iter()
            .map(|b| claimed.remove(&(b.service.clone(), b.instance.clone(), b.seq as i64)))
            .collect())
    }

    pub async fn insert_transition(
        tx: &mut Transaction<'static, Sqlite>,
        breaker_id: i64,
        instance: &str,
        transition: &Transition,
        now_ms: i64,
    ) -> anyhow::Result<i64> {
        let trigger = transition.trigger.as_ref();
        let id = sqlx::query_scalar(
            "INSERT INTO transitions (breaker_id, instance, at_ms, from_state, to_state, trigger_kind,
                                      trigger_value, trigger_threshold, config_version, received_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(breaker_id)
        .bind(instance)
        .bind(transition.at_ms)
        .bind(transition.from.as_str())
        .bind(transition.to.as_str())
        .bind(trigger.map(|t| t.kind.as_str()))
        .bind(trigger.map(|t| t.value))
        .bind(trigger.map(|t| t.threshold))
        .bind(transition.config_version as i64)
        .bind(now_ms)
        .fetch_one(&mut **tx)
        .await?;
        Ok(id)
    }

    /// Inserts aggregates with multi-row statements.
    pub async fn insert_aggregates(
        tx: &mut Transaction<'static, Sqlite>,
        rows: &[(i64, &str, &Aggregate)],
    ) -> anyhow::Result<()> {
        // Text arguments are shared, not copied per row: rows come in runs of one instance,
        // and a state is one of three words.
        let mut instance: Option<(&str, Arc<str>)> = None;
        let states =
            [State::Closed, State::Open, State::HalfOpen].map(|s| Arc::<str>::from(s.as_str()));
        let state_text = |state: State| match state {
            State::Closed => states[0].clone(),
            State::Open => states[1].clone(),
            State::HalfOpen => states[2].clone(),
        };
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut arguments = SqliteArguments::default();
            arguments.reserve(chunk.len() * AGGREGATE_COLUMNS, 0);
            let mut insert = QueryBuilder::<Sqlite>::with_arguments(
                "INSERT INTO aggregates (breaker_id, instance, start_ms, interval_ms, success, failure,
                 timeout, rejected, slow, ignored, latency, state, failure_rate,
                 failure_rate_threshold, config_version) ",
                arguments,
            );
            insert.push_values(chunk, |mut row, &(breaker_id, name, aggregate)| {
                let c = &aggregate.counts;
                let instance = match &instance {
                    Some((last, text)) if *last == name => text.clone(),
                    _ => {
                        let text = Arc::<str>::from(name);
                        instance = Some((name, text.clone()));
                        text
                    }
                };
                row.push_bind(breaker_id)
                    .push_bind(instance)
                    .push_bind(aggregate.start_ms)
                    .push_bind(i64::from(aggregate.interval_ms))
                    .push_bind(count_to_db(c.success))
                    .push_bind(count_to_db(c.failure))
                    .push_bind(count_to_db(c.timeout))
                    .push_bind(count_to_db(c.rejected))
                    .push_bind(count_to_db(c.slow))
                    .push_bind(count_to_db(c.ignored))
                    .push_bind(encode_histogram(&aggregate.latency))
                    .push_bind(state_text(aggregate.state))
                    .push_bind(aggregate.failure_rate)
                    .push_bind(aggregate.failure_rate_threshold)
                    .push_bind(aggregate.config_version as i64);
            });
            insert.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Writes instances' stored state (state, since, config version), with multi-row
    /// statements; one row per (breaker, instance).
    pub async fn upsert_instance_states(
        tx: &mut Transaction<'static, Sqlite>,
        states: &[(i64, &str, &InstanceLive)],
    ) -> anyhow::Result<()> {
        for chunk in states.chunks(ROWS_PER_INSERT) {
            let mut upsert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO instance_states (breaker_id, instance, state, since_ms, config_version, updated_ms) ",
            );
            upsert.push_values(chunk, |mut row, &(breaker_id, instance, live)| {
                row.push_bind(breaker_id)
                    .push_bind(instance)
                    .push_bind(live.state.as_str())
                    .push_bind(live.since_ms)
                    .push_bind(live.config_version as i64)
                    .push_bind(live.updated_ms);
            });
            upsert.push(
                " ON CONFLICT (breaker_id, instance) DO UPDATE SET
                   state = excluded.state, since_ms = excluded.since_ms,
                   config_version = excluded.config_version, updated_ms = excluded.updated_ms",
            );
            upsert.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Every breaker's id and every instance's last known state, to rebuild the fleet at start.
    pub async fn load_fleet(
        &self,
    ) -> anyhow::Result<(
        HashMap<BreakerKey, i64>,
        Vec<(BreakerKey, String, InstanceLive)>,
    )> {
        let ids = sqlx::query("SELECT id, service, name FROM breakers")
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|row| {
                (
                    (row.get::<String, _>(1), row.get::<String, _>(2)),
                    row.get::<i64, _>(0),
                )
            })
            .collect();
        let rows = sqlx::query(
            "SELECT b.service, b.name, s.instance, s.state, s.since_ms, s.config_version, s.updated_ms
             FROM instance_states s JOIN breakers b ON b.id = s.breaker_id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut instances = Vec::with_capacity(rows.len());
        for row in rows {
            let state: String = row.get(3);
            instances.push((
                (row.get(0), row.get(1)),
                row.get(2),
                InstanceLive {
                    state: State::parse(&state).context("unknown state in instance_states")?,
                    since_ms: row.get(4),
                    config_version: row.get::<i64, _>(5) as u64,
                    updated_ms: row.get(6),
                    last_interval: None,
                },
            ));
        }
        Ok((ids, instances))
    }

    async fn find_breaker(&self, service: &str, breaker: &str) -> anyhow::Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT id FROM breakers WHERE service = ? AND name = ?")
                .bind(service)
                .bind(breaker)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// A breaker's series over `[from_ms, to_ms)` in steps of `step_ms`; `None` for an unknown
    /// breaker. Steps without data are present with zero counts.
    ///
    /// Steps under a minute read raw aggregates; longer steps read the minute or hour rollups
    /// plus the raw aggregates the rollup job has not reached yet, so the newest data shows
    /// at every range.
    pub async fn series(
        &self,
        service: &str,
        breaker: &str,
        from_ms: i64,
        to_ms: i64,
        step_ms: i64,
    ) -> anyhow::Result<Option<Series>> {
        let Some(breaker_id) = self.find_breaker(service, breaker).await? else {
            return Ok(None);
        };
        let n_steps = ((to_ms - from_ms) + step_ms - 1) / step_ms;
        let mut buckets = vec![Bucket::default(); n_steps as usize];
        let mut add = |start_ms: i64, bucket: &Bucket| {
            if let Some(slot) = buckets.get_mut(((start_ms - from_ms) / step_ms) as usize)
                && start_ms >= from_ms
            {
                slot.merge(bucket);
            }
        };
        let resolution = if step_ms % HOUR_MS == 0 {
            Some(HOUR_MS)
        } else if step_ms % MINUTE_MS == 0 {
            Some(MINUTE_MS)
        } else {
            None
        };
        let raw_after_id = match resolution {
            None => 0,
            Some(resolution) => {
                let rows = sqlx::query(
                    "SELECT start_ms, success, failure, timeout, rejected, slow, ignored, latency,
                            failure_rate_threshold
                     FROM rollups
                     WHERE breaker_id = ? AND resolution_ms = ? AND start_ms >= ? AND start_ms < ?",
                )
                .bind(breaker_id)
                .bind(resolution)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(&self.pool)
                .await?;
                for row in &rows {
                    add(row.get(0), &bucket_from_row(row, 1));
                }
                sqlx::query_scalar("SELECT last_aggregate_id FROM rollup_progress WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await?
            }
        };
        // Raw rows: by breaker and time for short steps; for long steps only the few rows the
        // rollup job has not reached, found by id (NOT INDEXED keeps SQLite on the id range
        // instead of scanning the breaker's whole day in the time index).
        let raw_sql = if resolution.is_some() {
            "SELECT start_ms, success, failure, timeout, rejected, slow, ignored, latency,
                    failure_rate_threshold
             FROM aggregates NOT INDEXED
             WHERE id > ?4 AND breaker_id = ?1 AND start_ms >= ?2 AND start_ms < ?3"
        } else {
            "SELECT start_ms, success, failure, timeout, rejected, slow, ignored, latency,
                    failure_rate_threshold
             FROM aggregates
             WHERE breaker_id = ?1 AND start_ms >= ?2 AND start_ms < ?3 AND id > ?4"
        };
        let rows = sqlx::query(raw_sql)
            .bind(breaker_id)
            .bind(from_ms)
            .bind(to_ms)
            .bind(raw_after_id)
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            add(row.get(0), &bucket_from_row(row, 1));
        }
        let threshold = buckets.iter().rev().find_map(|b| b.failure_rate_threshold);
        let points = buckets
            .into_iter()
            .enumerate()
            .map(|(idx, bucket)| series_point(from_ms + idx as i64 * step_ms, bucket))
            .collect();
        Ok(Some(Series {
            service: service.to_string(),
            breaker: breaker.to_string(),
            from_ms,
            to_ms,
            step_ms,
            failure_rate_threshold: threshold,
            points,
        }))
    }

    /// A breaker's state timeline over `[from_ms, to_ms)`: per instance, the state it was in at
    /// `from_ms` and every transition up to `to_ms`.
    pub async fn timeline(
        &self,
        service: &str,
        breaker: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> anyhow::Result<Option<Timeline>> {
        let Some(breaker_id) = self.find_breaker(service, breaker).await? else {
            return Ok(None);
        };
        // The last transition before the range, per instance, gives the state at its start.
        let before = sqlx::query(
            "SELECT t.instance, t.to_state, t.at_ms, t.config_version
             FROM transitions t
             JOIN (SELECT instance, MAX(id) AS id FROM transitions
                   WHERE breaker_id = ?1 AND at_ms < ?2 GROUP BY instance) last ON last.id = t.id",
        )
        .bind(breaker_id)
        .bind(from_ms)
        .fetch_all(&self.pool)
        .await?;
        let within = sqlx::query(
            "SELECT instance, at_ms, from_state, to_state, trigger_kind, trigger_value,
                    trigger_threshold, config_version
             FROM transitions WHERE breaker_id = ?1 AND at_ms >= ?2 AND at_ms < ?3
             ORDER BY at_ms, id",
        )
        .bind(breaker_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(&self.pool)
        .await?;
        // Instances that reported without ever changing state are Closed throughout.
        let quiet: Vec<String> =
            sqlx::query_scalar("SELECT instance FROM instance_states WHERE breaker_id = ?")
                .bind(breaker_id)
                .fetch_all(&self.pool)
                .await?;
        let mut lanes: std::collections::BTreeMap<String, Vec<StateInterval>> = Default::default();
        for instance in quiet {
            lanes.entry(instance).or_default();
        }
        for row in &before {
            let state: String = row.get(1);
            lanes.entry(row.get(0)).or_default().push(StateInterval {
                state: State::parse(&state).context("unknown state in transitions")?,
                start_ms: from_ms,
                end_ms: None,
                trigger: None,
                config_version: row.get::<i64, _>(3) as u64,
            });
        }
        for row in &within {
            let at_ms: i64 = row.get(1);
            let from_state: String = row.get(2);
            let to_state: String = row.get(3);
            let lane = lanes.entry(row.get(0)).or_default();
            match lane.last_mut() {
                Some(last) => last.end_ms = Some(at_ms),
                None => lane.push(StateInterval {
                    state: State::parse(&from_state).context("unknown state in transitions")?,
                    start_ms: from_ms,
                    end_ms: Some(at_ms),
                    trigger: None,
                    config_version: row.get::<i64, _>(7) as u64,
                }),
            }
            lane.push(StateInterval {
                state: State::parse(&to_state).context("unknown state in transitions")?,
                start_ms: at_ms,
                end_ms: None,
                trigger: row.get::<Option<String>, _>(4).map(|kind| Trigger {
                    kind,
                    value: row.get::<Option<f64>, _>(5).unwrap_or(0.0),
                    threshold: row.get::<Option<f64>, _>(6).unwrap_or(0.0),
                }),
                config_version: row.get::<i64, _>(7) as u64,
            });
        }
        let lanes = lanes
            .into_iter()
            .map(|(instance, mut intervals)| {
                if intervals.is_empty() {
                    intervals.push(StateInterval {
                        state: State::Closed,
                        start_ms: from_ms,
                        end_ms: None,
                        trigger: None,
                        config_version: 0,
                    });
                }
                TimelineLane {
                    instance,
                    intervals,
                }
            })
            .collect();
        Ok(Some(Timeline {
            service: service.to_string(),
            breaker: breaker.to_string(),
            from_ms,
            to_ms,
            lanes,
        }))
    }

    /// Transitions with an id above `after_id`, oldest first, optionally of one service.
    pub async fn transitions_after(
        &self,
        after_id: i64,
        service: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<TransitionRecord>> {
        let rows = sqlx::query(
            "SELECT t.id, b.service, t.instance, b.name, t.at_ms, t.from_state, t.to_state,
                    t.trigger_kind, t.trigger_value, t.trigger_threshold, t.config_version
             FROM transitions t JOIN breakers b ON b.id = t.breaker_id
             WHERE t.id > ?1 AND (?2 IS NULL OR b.service = ?2)
             ORDER BY t.id LIMIT ?3",
        )
        .bind(after_id)
        .bind(service)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(transition_record).collect()
    }

    /// A breaker's transitions matching `filter`, newest first, with ids below `before_id`.
    pub async fn breaker_transitions(
        &self,
        service: &str,
        breaker: &str,
        filter: &TransitionFilter,
        limit: i64,
    ) -> anyhow::Result<Option<Vec<TransitionRecord>>> {
        let Some(breaker_id) = self.find_breaker(service, breaker).await? else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT t.id, b.service, t.instance, b.name, t.at_ms, t.from_state, t.to_state,
                    t.trigger_kind, t.trigger_value, t.trigger_threshold, t.config_version
             FROM transitions t JOIN breakers b ON b.id = t.breaker_id
             WHERE t.breaker_id = ?1 AND t.id < ?2
               AND (?4 IS NULL OR t.instance = ?4) AND (?5 IS NULL OR t.to_state = ?5)
               AND (?6 IS NULL OR t.at_ms >= ?6) AND (?7 IS NULL OR t.at_ms < ?7)
             ORDER BY t.id DESC LIMIT ?3",
        )
        .bind(breaker_id)
        .bind(filter.before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .bind(filter.instance.as_deref())
        .bind(filter.to_state.map(State::as_str))
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(transition_record)
            .collect::<anyhow::Result<Vec<_>>>()
            .map(Some)
    }
}

/// Which transitions of a breaker to list.
#[derive(Clone, Debug, Default)]
pub struct TransitionFilter {
    /// Paging: only ids below this.
    pub before_id: Option<i64>,
    pub instance: Option<String>,
    /// Only transitions into this state.
    pub to_state: Option<State>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
}

fn series_point(t_ms: i64, bucket: Bucket) -> SeriesPoint {
    let judged = bucket.counts.judged();
    let rate = |n: u64| (judged > 0).then(|| n as f64 / judged as f64);
    SeriesPoint {
        t_ms,
        failure_rate: rate(bucket.counts.failed()),
        slow_call_rate: rate(bucket.counts.slow),
        p50_ms: bucket.latency.quantile_ms(0.50),
        p95_ms: bucket.latency.quantile_ms(0.95),
        p99_ms: bucket.latency.quantile_ms(0.99),
        counts: bucket.counts,
    }
}

fn transition_record(row: sqlx::sqlite::SqliteRow) -> anyhow::Result<TransitionRecord> {
    let parse = |idx: usize| -> anyhow::Result<State> {
        let text: String = row.get(idx);
        State::parse(&text).with_context(|| format!("unknown state {text:?} in transitions"))
    };
    let trigger = row.get::<Option<String>, _>(7).map(|kind| Trigger {
        kind,
        value: row.get::<Option<f64>, _>(8).unwrap_or(f64::NAN),
        threshold: row.get::<Option<f64>, _>(9).unwrap_or(f64::NAN),
    });
    Ok(TransitionRecord {
        id: row.get(0),
        service: row.get(1),
        instance: row.get(2),
        transition: Transition {
            breaker: row.get(3),
            at_ms: row.get(4),
            from: parse(5)?,
            to: parse(6)?,
            trigger,
            config_version: row.get::<i64, _>(10) as u64,
        },
    })
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
