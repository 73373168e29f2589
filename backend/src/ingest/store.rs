//! The ingest writer's SQL: batches claimed once, transitions, aggregates, instance states, and
//! the fleet rebuilt at start.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use protocol::{Aggregate, IngestBatch, State, Transition, TransitionRecord, Trigger};
use sqlx::Arguments;
use sqlx::sqlite::SqliteArguments;
use sqlx::{AssertSqlSafe, QueryBuilder};

use super::fleet::{BreakerKey, InstanceLive};
use crate::cluster::store::INGEST_CHANNEL;
use crate::store::{Store, Tx, count_to_db, encode_histogram, on_db, on_tx};

/// Rows per multi-row INSERT: 16 columns × 200 rows stays well under SQLite's 32 766
/// parameters (and PostgreSQL's 65 535).
const ROWS_PER_INSERT: usize = 200;
/// Values bound per row of `aggregates`.
const AGGREGATE_COLUMNS: usize = 15;

/// The text of the SQLite insert of `n` aggregates (1 to [`ROWS_PER_INSERT`]), made once per
/// size: building 3,000 placeholders for every statement cost more than binding the values.
fn insert_aggregates_text(n: usize) -> AssertSqlSafe<Arc<str>> {
    static TEXTS: [OnceLock<Arc<str>>; ROWS_PER_INSERT] =
        [const { OnceLock::new() }; ROWS_PER_INSERT];
    let text = TEXTS[n - 1].get_or_init(|| {
        let mut text = String::from(
            "INSERT INTO aggregates (breaker_id, instance, start_ms, interval_ms, success, failure,
             timeout, rejected, slow, ignored, latency, state, failure_rate,
             failure_rate_threshold, config_version) VALUES ",
        );
        // Anonymous `?` placeholders, bound in order: SQLite finds a named one (`$1`) by
        // walking the statement's list of names, which for 3,000 of them costs more than the
        // insert itself.
        let row = format!("({})", vec!["?"; AGGREGATE_COLUMNS].join(", "));
        text.push_str(&vec![row; n].join(", "));
        text.into()
    });
    AssertSqlSafe(text.clone())
}

/// What committing one batch did.
#[derive(Debug)]
pub struct Committed {
    pub duplicate: bool,
    /// The batch's transitions as stored, with their ids (empty for a duplicate).
    pub transitions: Vec<TransitionRecord>,
}

impl Store {
    /// The id of a breaker, creating its row when it is new.
    pub async fn breaker_id(
        tx: &mut Tx,
        service: &str,
        name: &str,
        now_ms: i64,
    ) -> anyhow::Result<i64> {
        on_tx!(tx, c => sqlx::query("INSERT INTO breakers (service, name, created_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(service)
            .bind(name)
            .bind(now_ms)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        let id = on_tx!(tx, c => sqlx::query_scalar("SELECT id FROM breakers WHERE service = $1 AND name = $2")
            .bind(service)
            .bind(name)
            .fetch_one(c)
            .await)?;
        Ok(id)
    }

    /// Records the batches as seen, in one statement per 500; for each batch, false when it
    /// had been stored before (or appears earlier in `batches`).
    pub async fn claim_batches(
        tx: &mut Tx,
        batches: &[&IngestBatch],
        now_ms: i64,
    ) -> anyhow::Result<Vec<bool>> {
        let mut claimed: std::collections::HashSet<(String, String, i64)> = Default::default();
        for chunk in batches.chunks(500) {
            let rows: Vec<(String, String, i64)> = on_tx!(tx, c => {
                let mut insert = QueryBuilder::<Dialect>::new(
                    "INSERT INTO batches (service, instance, seq, received_ms, n_aggregates, n_transitions) ",
                );
                insert.push_values(chunk, |mut row, batch| {
                    row.push_bind(batch.service.clone())
                        .push_bind(batch.instance.clone())
                        .push_bind(batch.seq as i64)
                        .push_bind(now_ms)
                        .push_bind(batch.aggregates.len() as i64)
                        .push_bind(batch.transitions.len() as i64);
                });
                insert.push(" ON CONFLICT DO NOTHING RETURNING service, instance, seq");
                insert.build_query_as().fetch_all(c).await
            })?;
            claimed.extend(rows);
        }
        Ok(batches
            .iter()
            .map(|b| claimed.remove(&(b.service.clone(), b.instance.clone(), b.seq as i64)))
            .collect())
    }

    pub async fn insert_transition(
        tx: &mut Tx,
        breaker_id: i64,
        instance: &str,
        transition: &Transition,
        now_ms: i64,
    ) -> anyhow::Result<i64> {
        let trigger = transition.trigger.as_ref();
        let id = on_tx!(tx, c => sqlx::query_scalar(
            "INSERT INTO transitions (breaker_id, instance, at_ms, from_state, to_state, trigger_kind,
                                      trigger_value, trigger_threshold, config_version, received_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
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
        .fetch_one(c)
        .await)?;
        Ok(id)
    }

    /// Inserts transitions in order; their ids, in the same order. On PostgreSQL in one
    /// statement of column arrays: the `SELECT` feeds the rows to the insert sorted by their
    /// position, and the identity's `nextval` runs as each is inserted, so the ids it returns,
    /// sorted, are theirs in order.
    pub async fn insert_transitions(
        tx: &mut Tx,
        rows: &[(i64, &str, &Transition)],
        now_ms: i64,
    ) -> anyhow::Result<Vec<i64>> {
        let conn = match tx {
            Tx::Postgres(conn) if rows.len() > 1 => conn,
            _ => {
                let mut ids = Vec::with_capacity(rows.len());
                for &(breaker_id, instance, transition) in rows {
                    ids.push(
                        Store::insert_transition(tx, breaker_id, instance, transition, now_ms)
                            .await?,
                    );
                }
                return Ok(ids);
            }
        };
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO transitions (breaker_id, instance, at_ms, from_state, to_state, trigger_kind,
                                      trigger_value, trigger_threshold, config_version, received_ms)
             SELECT breaker_id, instance, at_ms, from_state, to_state, trigger_kind, trigger_value,
                    trigger_threshold, config_version, $10
             FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                         $6::text[], $7::float8[], $8::float8[], $9::bigint[]) WITH ORDINALITY
                  AS t (breaker_id, instance, at_ms, from_state, to_state, trigger_kind,
                        trigger_value, trigger_threshold, config_version, n)
             ORDER BY n
             RETURNING id",
        )
        .bind(rows.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.at_ms).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.from.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.to.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.trigger.as_ref().map(|t| t.kind.as_str())).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.trigger.as_ref().map(|t| t.value)).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.trigger.as_ref().map(|t| t.threshold)).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2.config_version as i64).collect::<Vec<_>>())
        .bind(now_ms)
        .fetch_all(&mut **conn)
        .await?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Inserts aggregates: on SQLite with multi-row statements, on PostgreSQL in one
    /// statement of arrays ([`insert_aggregates_unnest`]).
    pub async fn insert_aggregates(
        tx: &mut Tx,
        rows: &[(i64, &str, &Aggregate)],
    ) -> anyhow::Result<()> {
        let tx = match tx {
            Tx::Postgres(tx) => return Ok(insert_aggregates_unnest(tx, rows, None).await?),
            Tx::Sqlite(tx, _) => tx,
        };
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
            for &(breaker_id, name, aggregate) in chunk {
                let c = &aggregate.counts;
                let instance = match &instance {
                    Some((last, text)) if *last == name => text.clone(),
                    _ => {
                        let text = Arc::<str>::from(name);
                        instance = Some((name, text.clone()));
                        text
                    }
                };
                let row = (arguments.add(breaker_id))
                    .and_then(|()| arguments.add(instance))
                    .and_then(|()| arguments.add(aggregate.start_ms))
                    .and_then(|()| arguments.add(i64::from(aggregate.interval_ms)))
                    .and_then(|()| arguments.add(count_to_db(c.success)))
                    .and_then(|()| arguments.add(count_to_db(c.failure)))
                    .and_then(|()| arguments.add(count_to_db(c.timeout)))
                    .and_then(|()| arguments.add(count_to_db(c.rejected)))
                    .and_then(|()| arguments.add(count_to_db(c.slow)))
                    .and_then(|()| arguments.add(count_to_db(c.ignored)))
                    .and_then(|()| arguments.add(encode_histogram(&aggregate.latency)))
                    .and_then(|()| arguments.add(state_text(aggregate.state)))
                    .and_then(|()| arguments.add(aggregate.failure_rate))
                    .and_then(|()| arguments.add(aggregate.failure_rate_threshold))
                    .and_then(|()| arguments.add(aggregate.config_version as i64));
                row.map_err(sqlx::Error::Encode)?;
            }
            sqlx::query_with(insert_aggregates_text(chunk.len()), arguments)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// [`Store::insert_aggregates`] on PostgreSQL, notifying the other replicas in the same
    /// statement: `news_head` is an ingest notification's payload up to the ids of the
    /// aggregates added, which the statement appends (see
    /// [`crate::cluster::ingest_news_head`]); PostgreSQL sends it when (and only if) the
    /// transaction commits. One round trip where inserting, reading the ids and notifying
    /// took three (four with the newest id read before the insert).
    pub async fn insert_aggregates_announcing(
        tx: &mut Tx,
        rows: &[(i64, &str, &Aggregate)],
        news_head: &str,
    ) -> anyhow::Result<()> {
        match tx {
            Tx::Postgres(tx) => Ok(insert_aggregates_unnest(tx, rows, Some(news_head)).await?),
            Tx::Sqlite(..) => anyhow::bail!("notifications are PostgreSQL's"),
        }
    }

    /// Writes instances' stored state (state, since, config version, first report), with
    /// multi-row statements; one row per (breaker, instance).
    pub async fn upsert_instance_states(
        tx: &mut Tx,
        states: &[(i64, &str, &InstanceLive)],
    ) -> anyhow::Result<()> {
        for chunk in states.chunks(ROWS_PER_INSERT) {
            on_tx!(&mut *tx, c => {
            let mut upsert = QueryBuilder::<Dialect>::new(
                "INSERT INTO instance_states (breaker_id, instance, state, since_ms, config_version, updated_ms, first_report_ms) ",
            );
            upsert.push_values(chunk, |mut row, &(breaker_id, instance, live)| {
                row.push_bind(breaker_id)
                    .push_bind(instance)
                    .push_bind(live.state.as_str())
                    .push_bind(live.since_ms)
                    .push_bind(live.config_version as i64)
                    .push_bind(live.updated_ms)
                    .push_bind(live.first_ms);
            });
            // The first report only moves earlier (a late batch may hold older events).
            upsert.push(
                " ON CONFLICT (breaker_id, instance) DO UPDATE SET
                   state = excluded.state, since_ms = excluded.since_ms,
                   config_version = excluded.config_version, updated_ms = excluded.updated_ms,
                   first_report_ms = CASE
                     WHEN instance_states.first_report_ms < excluded.first_report_ms
                     THEN instance_states.first_report_ms ELSE excluded.first_report_ms END",
            );
            upsert.build().execute(c).await.map(|_| ())
            })?;
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
        let ids =
            on_db!(&self.db, pool => sqlx::query_as::<_, (i64, String, String)>("SELECT id, service, name FROM breakers")
                .fetch_all(pool)
                .await)?
                .into_iter()
                .map(|(id, service, name)| ((service, name), id))
                .collect();
        let rows: Vec<InstanceStateRow> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT b.service, b.name, s.instance, s.state, s.since_ms, s.config_version, s.updated_ms,
                    COALESCE(s.first_report_ms, s.since_ms) AS first_report_ms
             FROM instance_states s JOIN breakers b ON b.id = s.breaker_id",
        )
        .fetch_all(pool)
        .await)?;
        // What last tripped each instance that is not Closed: few rows, each found from the
        // newest of its breaker's transitions backwards.
        let trips: Vec<TripRow> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT b.service, b.name, s.instance, t.at_ms, t.trigger_kind, t.trigger_value,
                    t.trigger_threshold
             FROM instance_states s
             JOIN breakers b ON b.id = s.breaker_id
             JOIN transitions t ON t.id = (
                 SELECT id FROM transitions
                 WHERE breaker_id = s.breaker_id AND instance = s.instance
                   AND from_state = 'closed' AND to_state = 'open' AND trigger_kind IS NOT NULL
                 ORDER BY at_ms DESC, id DESC LIMIT 1)
             WHERE s.state <> 'closed'",
        )
        .fetch_all(pool)
        .await)?;
        let mut trips: HashMap<(String, String, String), (i64, Trigger)> = trips
            .into_iter()
            .map(|row| {
                let trigger = Trigger {
                    kind: row.trigger_kind,
                    value: row.trigger_value.unwrap_or(0.0),
                    threshold: row.trigger_threshold.unwrap_or(0.0),
                };
                ((row.service, row.name, row.instance), (row.at_ms, trigger))
            })
            .collect();
        let mut instances = Vec::with_capacity(rows.len());
        for row in rows {
            let last_trip =
                trips.remove(&(row.service.clone(), row.name.clone(), row.instance.clone()));
            instances.push((
                (row.service, row.name),
                row.instance,
                InstanceLive {
                    state: State::parse(&row.state).context("unknown state in instance_states")?,
                    since_ms: row.since_ms,
                    config_version: row.config_version as u64,
                    updated_ms: row.updated_ms,
                    first_ms: row.first_report_ms,
                    last_trip,
                    last_interval: None,
                },
            ));
        }
        Ok((ids, instances))
    }
}

/// An instance's stored state, with its breaker's names.
#[derive(sqlx::FromRow)]
struct InstanceStateRow {
    service: String,
    name: String,
    instance: String,
    state: String,
    since_ms: i64,
    config_version: i64,
    updated_ms: i64,
    first_report_ms: i64,
}

/// The newest Closed → Open transition of an instance that is not Closed.
#[derive(sqlx::FromRow)]
struct TripRow {
    service: String,
    name: String,
    instance: String,
    at_ms: i64,
    trigger_kind: String,
    trigger_value: Option<f64>,
    trigger_threshold: Option<f64>,
}

/// The PostgreSQL insert of a group's aggregates: each column bound as one array and expanded
/// by `UNNEST`, so the statement's text and its parameters are the same whatever the group's
/// size (prepared once per connection).
macro_rules! insert_unnest {
    () => {
        "INSERT INTO aggregates (breaker_id, instance, start_ms, interval_ms, success, failure,
             timeout, rejected, slow, ignored, latency, state, failure_rate,
             failure_rate_threshold, config_version)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::bigint[],
             $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
             $11::text[], $12::text[], $13::float8[], $14::float8[], $15::bigint[])"
    };
}

/// [`insert_unnest!`] that also notifies channel `$16` with the text `$17` completed by the
/// ids added, `[after,up_to]}` (`[0,0]}` for none): no other transaction inserts aggregates
/// meanwhile (ingest transactions hold `INGEST_LOCK`), so the ids in `(MIN - 1, MAX]` are this
/// statement's.
const INSERT_ANNOUNCING: &str = concat!(
    "WITH added AS (",
    insert_unnest!(),
    " RETURNING id)
     SELECT pg_notify($16, $17::text || '[' || COALESCE(MIN(id) - 1, 0) || ','
                           || COALESCE(MAX(id), 0) || ']}')
     FROM added"
);

/// [`Store::insert_aggregates`] on PostgreSQL: the whole group in one statement
/// ([`insert_unnest!`]); with `news_head`, notifying the other replicas too
/// ([`INSERT_ANNOUNCING`]).
async fn insert_aggregates_unnest(
    conn: &mut sqlx::PgConnection,
    rows: &[(i64, &str, &Aggregate)],
    news_head: Option<&str>,
) -> Result<(), sqlx::Error> {
    let n = rows.len();
    let mut breaker_id = Vec::with_capacity(n);
    let mut instance = Vec::with_capacity(n);
    let mut start_ms = Vec::with_capacity(n);
    let mut interval_ms = Vec::with_capacity(n);
    let mut counts: [Vec<i64>; 6] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut latency = Vec::with_capacity(n);
    let mut state = Vec::with_capacity(n);
    let mut failure_rate = Vec::with_capacity(n);
    let mut threshold = Vec::with_capacity(n);
    let mut config_version = Vec::with_capacity(n);
    for &(id, name, aggregate) in rows {
        let c = &aggregate.counts;
        breaker_id.push(id);
        instance.push(name);
        start_ms.push(aggregate.start_ms);
        interval_ms.push(i64::from(aggregate.interval_ms));
        for (column, n) in counts.iter_mut().zip([
            c.success, c.failure, c.timeout, c.rejected, c.slow, c.ignored,
        ]) {
            column.push(count_to_db(n));
        }
        latency.push(encode_histogram(&aggregate.latency));
        state.push(aggregate.state.as_str());
        failure_rate.push(aggregate.failure_rate);
        threshold.push(aggregate.failure_rate_threshold);
        config_version.push(aggregate.config_version as i64);
    }
    let [success, failure, timeout, rejected, slow, ignored] = counts;
    let query = match news_head {
        None => sqlx::query(insert_unnest!()),
        Some(_) => sqlx::query(INSERT_ANNOUNCING),
    };
    let query = query
        .bind(breaker_id)
        .bind(instance)
        .bind(start_ms)
        .bind(interval_ms)
        .bind(success)
        .bind(failure)
        .bind(timeout)
        .bind(rejected)
        .bind(slow)
        .bind(ignored)
        .bind(latency)
        .bind(state)
        .bind(failure_rate)
        .bind(threshold)
        .bind(config_version);
    let query = match news_head {
        None => query,
        Some(head) => query.bind(INGEST_CHANNEL).bind(head),
    };
    query.execute(conn).await?;
    Ok(())
}
