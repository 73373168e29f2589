//! The engine's SQL: the cursor and the transitions after it, each instance's state as the
//! engine saw it, incidents (breakers not Closed everywhere), and opening, extending and
//! resolving alerts. Everything but the counts the timer looks at first runs inside the
//! engine's transaction.

use protocol::{AlertRule, State};

use crate::alerts::rules::rule_kind_str;
use crate::store::{Store, StoreError, Tx, on_db, on_tx};
use protocol::AlertStatus;

/// One stored transition, with its breaker.
pub struct Transition {
    pub id: i64,
    pub breaker_id: i64,
    pub service: String,
    pub breaker: String,
    pub instance: String,
    pub at_ms: i64,
    pub from: State,
    pub to: State,
    pub trigger_kind: Option<String>,
    pub trigger_value: Option<f64>,
    pub trigger_threshold: Option<f64>,
}

#[derive(sqlx::FromRow)]
struct TransitionRecord {
    id: i64,
    breaker_id: i64,
    service: String,
    name: String,
    instance: String,
    at_ms: i64,
    from_state: String,
    to_state: String,
    trigger_kind: Option<String>,
    trigger_value: Option<f64>,
    trigger_threshold: Option<f64>,
}

impl TransitionRecord {
    fn into_transition(self) -> Transition {
        // A state this server does not know reads as Closed: it never starts an incident.
        let parse = |text: &str| State::parse(text).unwrap_or(State::Closed);
        Transition {
            id: self.id,
            breaker_id: self.breaker_id,
            from: parse(&self.from_state),
            to: parse(&self.to_state),
            service: self.service,
            breaker: self.name,
            instance: self.instance,
            at_ms: self.at_ms,
            trigger_kind: self.trigger_kind,
            trigger_value: self.trigger_value,
            trigger_threshold: self.trigger_threshold,
        }
    }
}

/// A breaker that is not Closed on every instance, since when.
#[derive(sqlx::FromRow)]
pub struct Incident {
    pub breaker_id: i64,
    pub started_ms: i64,
    pub service: String,
    pub name: String,
}

/// A breaker named by a firing flapping alert.
#[derive(sqlx::FromRow)]
pub struct FlappingMember {
    pub alert_id: i64,
    pub rule: String,
    pub breaker_id: i64,
}

/// An alert about to be opened.
pub struct NewAlert<'a> {
    pub rule: &'a AlertRule,
    pub group_key: &'a str,
    pub title: &'a str,
    pub started_ms: i64,
    /// What crossed the threshold: (kind, value, threshold).
    pub trigger: (&'a str, f64, f64),
    /// The breaker it is about (its first member).
    pub breaker_id: i64,
}

// === the cursor and the transitions ===

/// The id of the last transition the engine evaluated.
pub async fn cursor(conn: &mut Tx) -> Result<i64, StoreError> {
    Ok(
        on_tx!(conn, c => sqlx::query_scalar("SELECT last_transition_id FROM alert_cursor WHERE id = 1")
            .fetch_one(c)
            .await)?,
    )
}

pub async fn set_cursor(conn: &mut Tx, last: i64) -> Result<(), StoreError> {
    on_tx!(conn, c => sqlx::query("UPDATE alert_cursor SET last_transition_id = $1 WHERE id = 1")
        .bind(last)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Whether transitions were stored after the cursor.
pub async fn behind(store: &Store) -> Result<bool, StoreError> {
    let mut tx = store.begin_read().await?;
    let cursor = cursor(&mut tx).await?;
    let newest: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar("SELECT MAX(id) FROM transitions")
        .fetch_one(c)
        .await)?;
    Ok(newest.unwrap_or(0) > cursor)
}

/// Up to `limit` transitions after `cursor`, in order.
pub async fn transitions_after(
    conn: &mut Tx,
    cursor: i64,
    limit: i64,
) -> Result<Vec<Transition>, StoreError> {
    let rows: Vec<TransitionRecord> = on_tx!(conn, c => sqlx::query_as(
        "SELECT t.id, t.breaker_id, b.service, b.name, t.instance, t.at_ms, t.from_state,
                t.to_state, t.trigger_kind, t.trigger_value, t.trigger_threshold
         FROM transitions t JOIN breakers b ON b.id = t.breaker_id
         WHERE t.id > $1 ORDER BY t.id LIMIT $2",
    )
    .bind(cursor)
    .bind(limit)
    .fetch_all(c)
    .await)?;
    Ok(rows
        .into_iter()
        .map(TransitionRecord::into_transition)
        .collect())
}

/// Closed → Open transitions of a breaker in `(after_ms, until_ms]` with an id up to `max_id`.
pub async fn count_openings(
    conn: &mut Tx,
    breaker_id: i64,
    (after_ms, until_ms): (i64, i64),
    max_id: i64,
) -> Result<i64, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM transitions
         WHERE breaker_id = $1 AND from_state = 'closed' AND to_state = 'open'
           AND at_ms > $2 AND at_ms <= $3 AND id <= $4",
    )
    .bind(breaker_id)
    .bind(after_ms)
    .bind(until_ms)
    .bind(max_id)
    .fetch_one(c)
    .await)?)
}

/// When a breaker last went Closed → Open, if ever.
pub async fn last_opening(conn: &mut Tx, breaker_id: i64) -> Result<Option<i64>, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_scalar(
        "SELECT MAX(at_ms) FROM transitions
         WHERE breaker_id = $1 AND from_state = 'closed' AND to_state = 'open'",
    )
    .bind(breaker_id)
    .fetch_one(c)
    .await)?)
}

// === instances and incidents ===

pub async fn set_instance_state(
    conn: &mut Tx,
    breaker_id: i64,
    instance: &str,
    state: State,
    since_ms: i64,
) -> Result<(), StoreError> {
    on_tx!(conn, c => sqlx::query(
        "INSERT INTO alert_instances (breaker_id, instance, state, since_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (breaker_id, instance) DO UPDATE SET state = excluded.state,
           since_ms = excluded.since_ms",
    )
    .bind(breaker_id)
    .bind(instance)
    .bind(state.as_str())
    .bind(since_ms)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Whether every instance of a breaker is Closed (as the engine saw them).
pub async fn closed_everywhere(conn: &mut Tx, breaker_id: i64) -> Result<bool, StoreError> {
    let n: i64 = on_tx!(conn, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM alert_instances WHERE breaker_id = $1 AND state != 'closed'",
    )
    .bind(breaker_id)
    .fetch_one(c)
    .await)?;
    Ok(n == 0)
}

/// How many instances of a breaker are Open.
pub async fn count_open_instances(conn: &mut Tx, breaker_id: i64) -> Result<i64, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM alert_instances WHERE breaker_id = $1 AND state = 'open'",
    )
    .bind(breaker_id)
    .fetch_one(c)
    .await)?)
}

pub async fn start_incident(
    conn: &mut Tx,
    breaker_id: i64,
    started_ms: i64,
) -> Result<(), StoreError> {
    on_tx!(conn, c => sqlx::query(
            "INSERT INTO alert_incidents (breaker_id, started_ms) VALUES ($1, $2)
             ON CONFLICT (breaker_id) DO UPDATE SET started_ms = excluded.started_ms",
        )
        .bind(breaker_id)
        .bind(started_ms)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn end_incident(conn: &mut Tx, breaker_id: i64) -> Result<(), StoreError> {
    on_tx!(conn, c => sqlx::query("DELETE FROM alert_incidents WHERE breaker_id = $1")
        .bind(breaker_id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// How many incidents started at or before `started_ms`.
pub async fn count_incidents_since(store: &Store, started_ms: i64) -> Result<i64, StoreError> {
    Ok(
        on_db!(&store.db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM alert_incidents WHERE started_ms <= $1")
            .bind(started_ms)
            .fetch_one(pool)
            .await)?,
    )
}

pub async fn incidents(conn: &mut Tx) -> Result<Vec<Incident>, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_as(
        "SELECT i.breaker_id, i.started_ms, b.service, b.name
         FROM alert_incidents i JOIN breakers b ON b.id = i.breaker_id",
    )
    .fetch_all(c)
    .await)?)
}

// === alerts ===

/// The firing alert of a rule and group, if any.
pub async fn firing(conn: &mut Tx, rule: &str, group_key: &str) -> Result<Option<i64>, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_scalar(
        "SELECT id FROM alerts WHERE rule = $1 AND group_key = $2 AND status = 'firing'",
    )
    .bind(rule)
    .bind(group_key)
    .fetch_optional(c)
    .await)?)
}

/// How many alerts of a rule and group started at or after `started_ms`.
pub async fn count_alerts_since(
    conn: &mut Tx,
    rule: &str,
    group_key: &str,
    started_ms: i64,
) -> Result<i64, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM alerts WHERE rule = $1 AND group_key = $2 AND started_ms >= $3",
    )
    .bind(rule)
    .bind(group_key)
    .bind(started_ms)
    .fetch_one(c)
    .await)?)
}

/// Opens a firing alert with its first breaker; returns its id.
pub async fn open_alert(conn: &mut Tx, alert: NewAlert<'_>) -> Result<i64, StoreError> {
    let (trigger_kind, value, threshold) = alert.trigger;
    let id: i64 = on_tx!(conn, c => sqlx::query_scalar(
        "INSERT INTO alerts (rule, kind, severity, group_key, status, title, started_ms,
                             trigger_kind, trigger_value, threshold)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&alert.rule.name)
    .bind(rule_kind_str(alert.rule.kind))
    .bind(&alert.rule.severity)
    .bind(alert.group_key)
    .bind(AlertStatus::Firing.as_str())
    .bind(alert.title)
    .bind(alert.started_ms)
    .bind(trigger_kind)
    .bind(value)
    .bind(threshold)
    .fetch_one(c)
    .await)?;
    on_tx!(conn, c => sqlx::query("INSERT INTO alert_members (alert_id, breaker_id) VALUES ($1, $2)")
        .bind(id)
        .bind(alert.breaker_id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(id)
}

/// Adds a breaker to an alert; false when the alert named it already.
pub async fn add_member(conn: &mut Tx, alert_id: i64, breaker_id: i64) -> Result<bool, StoreError> {
    let res = on_tx!(conn, c => sqlx::query(
            "INSERT INTO alert_members (alert_id, breaker_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
            .bind(alert_id)
            .bind(breaker_id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
    Ok(res == 1)
}

/// The (service, breaker) names an alert is about, ordered by service and breaker.
pub async fn member_names(
    conn: &mut Tx,
    alert_id: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_as(
        "SELECT b.service, b.name FROM alert_members m JOIN breakers b ON b.id = m.breaker_id
         WHERE m.alert_id = $1 ORDER BY b.service, b.name",
    )
    .bind(alert_id)
    .fetch_all(c)
    .await)?)
}

pub async fn set_title(conn: &mut Tx, alert_id: i64, title: &str) -> Result<(), StoreError> {
    on_tx!(conn, c => sqlx::query("UPDATE alerts SET title = $1 WHERE id = $2")
        .bind(title)
        .bind(alert_id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The firing alerts naming a breaker that resolve with their breakers (all but flapping ones,
/// which wait for their window).
pub async fn firing_resolvable(conn: &mut Tx, breaker_id: i64) -> Result<Vec<i64>, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_scalar(
        "SELECT a.id FROM alerts a JOIN alert_members m ON m.alert_id = a.id
         WHERE m.breaker_id = $1 AND a.status = 'firing' AND a.kind != 'flapping'",
    )
    .bind(breaker_id)
    .fetch_all(c)
    .await)?)
}

/// How many instances of an alert's breakers are not Closed.
pub async fn count_open_members(conn: &mut Tx, alert_id: i64) -> Result<i64, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_scalar(
        "SELECT COUNT(*) FROM alert_members m JOIN alert_instances i
           ON i.breaker_id = m.breaker_id
         WHERE m.alert_id = $1 AND i.state != 'closed'",
    )
    .bind(alert_id)
    .fetch_one(c)
    .await)?)
}

/// How many flapping alerts are firing.
pub async fn count_firing_flapping(store: &Store) -> Result<i64, StoreError> {
    Ok(on_db!(&store.db, pool => sqlx::query_scalar(
        "SELECT COUNT(*) FROM alerts WHERE status = 'firing' AND kind = 'flapping'",
    )
    .fetch_one(pool)
    .await)?)
}

/// The breakers of every firing flapping alert.
pub async fn firing_flapping(conn: &mut Tx) -> Result<Vec<FlappingMember>, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_as(
        "SELECT a.id AS alert_id, a.rule, m.breaker_id
         FROM alerts a JOIN alert_members m ON m.alert_id = a.id
         WHERE a.status = 'firing' AND a.kind = 'flapping'",
    )
    .fetch_all(c)
    .await)?)
}

pub async fn mark_resolved(conn: &mut Tx, alert_id: i64, now: i64) -> Result<(), StoreError> {
    on_tx!(conn, c => sqlx::query("UPDATE alerts SET status = $1, resolved_ms = $2 WHERE id = $3")
        .bind(AlertStatus::Resolved.as_str())
        .bind(now)
        .bind(alert_id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}
