//! The read routes' SQL: series (raw or rolled up), timelines and transitions.

use anyhow::Context;
use protocol::{
    Series, SeriesPoint, State, StateInterval, Timeline, TimelineLane, Transition,
    TransitionRecord, Trigger,
};

use super::rollup::{Bucket, HOUR_MS, MINUTE_MS};
use crate::store::{Db, Store, count_from_db, decode_histogram, on_db, on_tx};

pub mod partitions;
pub mod rollup;

/// The counts, histogram and threshold columns shared by `aggregates` and `rollups`.
#[derive(sqlx::FromRow)]
pub struct BucketRow {
    success: i64,
    failure: i64,
    timeout: i64,
    rejected: i64,
    slow: i64,
    ignored: i64,
    latency: String,
    failure_rate_threshold: Option<f64>,
}

impl From<BucketRow> for Bucket {
    fn from(row: BucketRow) -> Bucket {
        Bucket {
            counts: protocol::OutcomeCounts {
                success: count_from_db(row.success),
                failure: count_from_db(row.failure),
                timeout: count_from_db(row.timeout),
                rejected: count_from_db(row.rejected),
                slow: count_from_db(row.slow),
                ignored: count_from_db(row.ignored),
            },
            latency: decode_histogram(&row.latency),
            failure_rate_threshold: row.failure_rate_threshold,
        }
    }
}

/// A bucket with its start.
#[derive(sqlx::FromRow)]
pub struct TimedBucketRow {
    pub start_ms: i64,
    #[sqlx(flatten)]
    pub bucket: BucketRow,
}

impl Store {
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
        // Rollups, the mark and the raw rows after it in one snapshot: a rollup transaction
        // committing between two of the reads would count some calls twice or not at all.
        let mut tx = self.begin_read().await?;
        let raw_after_id = match resolution {
            None => 0_i64,
            Some(resolution) => {
                let rows: Vec<TimedBucketRow> = on_tx!(&mut tx, pool => sqlx::query_as(
                    "SELECT start_ms, success, failure, timeout, rejected, slow, ignored, latency,
                            failure_rate_threshold
                     FROM rollups
                     WHERE breaker_id = $1 AND resolution_ms = $2 AND start_ms >= $3 AND start_ms < $4",
                )
                .bind(breaker_id)
                .bind(resolution)
                .bind(from_ms)
                .bind(to_ms)
                .fetch_all(pool)
                .await)?;
                for row in rows {
                    add(row.start_ms, &row.bucket.into());
                }
                // While a rollup run is half written, the breakers it wrote already count the
                // aggregates up to its end (see `rollup::roll_up_in_chunks`).
                on_tx!(&mut tx, pool => sqlx::query_scalar(
                    "SELECT CASE WHEN partial_breaker_id >= $1 THEN partial_through_id
                                 ELSE last_aggregate_id END
                     FROM rollup_progress WHERE id = 1",
                )
                .bind(breaker_id)
                .fetch_one(pool)
                .await)?
            }
        };
        // Raw rows: by breaker and time for short steps; for long steps only the few rows the
        // rollup job has not reached, found by id, kept off the time index (which would scan
        // the breaker's whole day) by `NOT INDEXED` on SQLite and by `+ 0` on PostgreSQL,
        // whose planner may otherwise trust statistics taken before the day was written. There
        // the id range is closed above by the largest id (read from each partition's id index)
        // too: a day partition without statistics yet (written faster than autovacuum analyzes
        // it) would otherwise be estimated to hold a third of its rows above the mark and
        // scanned whole instead of through its id index.
        let raw_sql = match (resolution, &self.db) {
            (Some(_), Db::Sqlite(_)) => {
                "SELECT start_ms, success, failure, timeout, rejected, slow, ignored, latency,
                        failure_rate_threshold
                 FROM aggregates NOT INDEXED
                 WHERE id > $4 AND breaker_id = $1 AND start_ms >= $2 AND start_ms < $3"
            }
            (Some(_), Db::Postgres(_)) => {
                "SELECT start_ms, success, failure, timeout, rejected, slow, ignored, latency,
                        failure_rate_threshold
                 FROM aggregates
                 WHERE id > $4 AND id <= (SELECT MAX(id) FROM aggregates)
                   AND breaker_id + 0 = $1 AND start_ms + 0 >= $2 AND start_ms + 0 < $3"
            }
            (None, _) => {
                "SELECT start_ms, success, failure, timeout, rejected, slow, ignored, latency,
                        failure_rate_threshold
                 FROM aggregates
                 WHERE breaker_id = $1 AND start_ms >= $2 AND start_ms < $3 AND id > $4"
            }
        };
        let rows: Vec<TimedBucketRow> = on_tx!(&mut tx, pool => sqlx::query_as(raw_sql)
            .bind(breaker_id)
            .bind(from_ms)
            .bind(to_ms)
            .bind(raw_after_id)
            .fetch_all(pool)
            .await)?;
        for row in rows {
            add(row.start_ms, &row.bucket.into());
        }
        tx.rollback().await?;
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
    /// `from_ms` (or from its first report, when later) and every transition up to `to_ms`.
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
        let before: Vec<(String, String, i64, i64)> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT t.instance, t.to_state, t.at_ms, t.config_version
             FROM transitions t
             JOIN (SELECT instance, MAX(id) AS id FROM transitions
                   WHERE breaker_id = $1 AND at_ms < $2 GROUP BY instance) last ON last.id = t.id",
        )
        .bind(breaker_id)
        .bind(from_ms)
        .fetch_all(pool)
        .await)?;
        let within: Vec<TimelineRow> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT instance, at_ms, from_state, to_state, trigger_kind, trigger_value,
                    trigger_threshold, config_version
             FROM transitions WHERE breaker_id = $1 AND at_ms >= $2 AND at_ms < $3
             ORDER BY at_ms, id",
        )
        .bind(breaker_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(pool)
        .await)?;
        // Every instance that reported, with its first report: instances that never changed
        // state are Closed from it on, and no lane says a state before it.
        let reported: Vec<(String, Option<i64>)> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT instance, first_report_ms FROM instance_states WHERE breaker_id = $1",
        )
        .bind(breaker_id)
        .fetch_all(pool)
        .await)?;
        let first_reports: std::collections::HashMap<String, i64> = reported
            .iter()
            .filter_map(|(instance, first_ms)| Some((instance.clone(), (*first_ms)?)))
            .collect();
        // Where an instance's lane starts: the range's start, or its first report when later.
        let lane_start = |instance: &str| {
            first_reports
                .get(instance)
                .map_or(from_ms, |&first_ms| first_ms.max(from_ms))
        };
        let mut lanes: std::collections::BTreeMap<String, Vec<StateInterval>> = Default::default();
        for (instance, _) in reported {
            lanes.entry(instance).or_default();
        }
        for (instance, state, _at_ms, config_version) in before {
            lanes.entry(instance).or_default().push(StateInterval {
                state: parse_state(&state)?,
                start_ms: from_ms,
                end_ms: None,
                trigger: None,
                config_version: config_version as u64,
            });
        }
        for row in within {
            let at_ms = row.at_ms;
            let start_ms = lane_start(&row.instance).min(at_ms);
            let lane = lanes.entry(row.instance).or_default();
            match lane.last_mut() {
                Some(last) => last.end_ms = Some(at_ms),
                None if start_ms < at_ms => lane.push(StateInterval {
                    state: parse_state(&row.from_state)?,
                    start_ms,
                    end_ms: Some(at_ms),
                    trigger: None,
                    config_version: row.config_version as u64,
                }),
                None => {}
            }
            lane.push(StateInterval {
                state: parse_state(&row.to_state)?,
                start_ms: at_ms,
                end_ms: None,
                trigger: row.trigger.into_trigger(0.0),
                config_version: row.config_version as u64,
            });
        }
        let lanes = lanes
            .into_iter()
            .map(|(instance, mut intervals)| {
                let start_ms = lane_start(&instance);
                // Closed from its first report, unless that came after the range.
                if intervals.is_empty() && start_ms < to_ms {
                    intervals.push(StateInterval {
                        state: State::Closed,
                        start_ms,
                        end_ms: None,
                        trigger: None,
                        config_version: 0,
                    });
                }
                TimelineLane {
                    first_report_ms: first_reports.get(&instance).copied(),
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

    /// The id of the newest stored transition (0 when none is).
    pub async fn newest_transition_id(&self) -> Result<i64, sqlx::Error> {
        let id: Option<i64> = on_db!(&self.db, pool => sqlx::query_scalar("SELECT MAX(id) FROM transitions")
            .fetch_one(pool)
            .await)?;
        Ok(id.unwrap_or(0))
    }

    /// Transitions with an id above `after_id`, oldest first, optionally of one service.
    pub async fn transitions_after(
        &self,
        after_id: i64,
        service: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<TransitionRecord>> {
        let rows: Vec<TransitionRow> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT t.id, b.service, t.instance, b.name, t.at_ms, t.from_state, t.to_state,
                    t.trigger_kind, t.trigger_value, t.trigger_threshold, t.config_version
             FROM transitions t JOIN breakers b ON b.id = t.breaker_id
             WHERE t.id > $1 AND ($2 IS NULL OR b.service = $2)
             ORDER BY t.id LIMIT $3",
        )
        .bind(after_id)
        .bind(service)
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        rows.into_iter().map(TransitionRow::into_record).collect()
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
        let rows: Vec<TransitionRow> = on_db!(&self.db, pool => sqlx::query_as(
            "SELECT t.id, b.service, t.instance, b.name, t.at_ms, t.from_state, t.to_state,
                    t.trigger_kind, t.trigger_value, t.trigger_threshold, t.config_version
             FROM transitions t JOIN breakers b ON b.id = t.breaker_id
             WHERE t.breaker_id = $1 AND t.id < $2
               AND ($4 IS NULL OR t.instance = $4) AND ($5 IS NULL OR t.to_state = $5)
               AND ($6 IS NULL OR t.at_ms >= $6) AND ($7 IS NULL OR t.at_ms < $7)
             ORDER BY t.id DESC LIMIT $3",
        )
        .bind(breaker_id)
        .bind(filter.before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .bind(filter.instance.as_deref())
        .bind(filter.to_state.map(State::as_str))
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .fetch_all(pool)
        .await)?;
        rows.into_iter()
            .map(TransitionRow::into_record)
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

fn parse_state(text: &str) -> anyhow::Result<State> {
    State::parse(text).with_context(|| format!("unknown state {text:?} in transitions"))
}

/// A transition's trigger columns.
#[derive(sqlx::FromRow)]
struct TriggerColumns {
    trigger_kind: Option<String>,
    trigger_value: Option<f64>,
    trigger_threshold: Option<f64>,
}

impl TriggerColumns {
    /// The trigger, a missing value or threshold read as `missing`.
    fn into_trigger(self, missing: f64) -> Option<Trigger> {
        self.trigger_kind.map(|kind| Trigger {
            kind,
            value: self.trigger_value.unwrap_or(missing),
            threshold: self.trigger_threshold.unwrap_or(missing),
        })
    }
}

/// A transition within a timeline's range.
#[derive(sqlx::FromRow)]
struct TimelineRow {
    instance: String,
    at_ms: i64,
    from_state: String,
    to_state: String,
    #[sqlx(flatten)]
    trigger: TriggerColumns,
    config_version: i64,
}

/// A stored transition with its breaker's names.
#[derive(sqlx::FromRow)]
struct TransitionRow {
    id: i64,
    service: String,
    instance: String,
    name: String,
    at_ms: i64,
    from_state: String,
    to_state: String,
    #[sqlx(flatten)]
    trigger: TriggerColumns,
    config_version: i64,
}

impl TransitionRow {
    fn into_record(self) -> anyhow::Result<TransitionRecord> {
        Ok(TransitionRecord {
            id: self.id,
            service: self.service,
            instance: self.instance,
            transition: Transition {
                breaker: self.name,
                at_ms: self.at_ms,
                from: parse_state(&self.from_state)?,
                to: parse_state(&self.to_state)?,
                trigger: self.trigger.into_trigger(f64::NAN),
                config_version: self.config_version as u64,
            },
        })
    }
}
