//! Alerts as read (a snapshot for notifications and the stream, or in full with history and
//! deliveries for the API), and what admins do to them (acknowledge, silence, note).

use protocol::{Alert, AlertBreaker, AlertDelivery, AlertEventRecord};

use super::parse_rule_kind;
use crate::alerts::model::EventKind;
use crate::store::{Store, StoreError, Tx, on_db, on_tx};
use protocol::AlertStatus;

/// A row of `alerts`, as read.
#[derive(sqlx::FromRow)]
struct AlertRecord {
    id: i64,
    rule: String,
    kind: String,
    severity: String,
    status: String,
    title: String,
    started_ms: i64,
    resolved_ms: Option<i64>,
    trigger_kind: String,
    trigger_value: f64,
    threshold: f64,
    acknowledged_by: Option<String>,
    acknowledged_ms: Option<i64>,
    silenced_until_ms: Option<i64>,
}

/// A breaker an alert names.
#[derive(sqlx::FromRow)]
struct MemberRecord {
    breaker_id: i64,
    service: String,
    name: String,
}

#[derive(sqlx::FromRow)]
struct EventRecord {
    id: i64,
    kind: String,
    at_ms: i64,
    detail: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRecord {
    channel: String,
    event_id: i64,
    idempotency_key: String,
    attempts: i64,
    delivered_ms: Option<i64>,
    next_attempt_ms: i64,
    last_error: Option<String>,
}

/// An alert without its history: what notifications and the stream carry.
pub async fn snapshot(conn: &mut Tx, alert_id: i64) -> Result<Alert, StoreError> {
    let row: AlertRecord = on_tx!(conn, c => sqlx::query_as(
        "SELECT id, rule, kind, severity, status, title, started_ms, resolved_ms, trigger_kind,
                trigger_value, threshold, acknowledged_by, acknowledged_ms, silenced_until_ms
         FROM alerts WHERE id = $1",
    )
    .bind(alert_id)
    .fetch_one(c)
    .await)?;
    let members: Vec<MemberRecord> = on_tx!(conn, c => sqlx::query_as(
        "SELECT b.id AS breaker_id, b.service, b.name
         FROM alert_members m JOIN breakers b ON b.id = m.breaker_id
         WHERE m.alert_id = $1 ORDER BY b.service, b.name",
    )
    .bind(alert_id)
    .fetch_all(c)
    .await)?;
    let mut breakers = Vec::with_capacity(members.len());
    for member in members {
        let instances: Vec<String> = on_tx!(conn, c => sqlx::query_scalar(
            "SELECT instance FROM alert_instances WHERE breaker_id = $1 AND state != 'closed'
             ORDER BY instance",
        )
        .bind(member.breaker_id)
        .fetch_all(c)
        .await)?;
        breakers.push(AlertBreaker {
            service: member.service,
            breaker: member.name,
            instances,
        });
    }
    Ok(Alert {
        id: row.id,
        rule: row.rule,
        kind: parse_rule_kind(&row.kind)?,
        severity: row.severity,
        status: AlertStatus::parse(&row.status).ok_or_else(|| StoreError::Corrupt {
            what: "an alert's status",
            detail: format!("unknown status {:?}", row.status),
        })?,
        title: row.title,
        started_ms: row.started_ms,
        resolved_ms: row.resolved_ms,
        trigger_kind: row.trigger_kind,
        trigger_value: row.trigger_value,
        threshold: row.threshold,
        acknowledged_by: row.acknowledged_by,
        acknowledged_ms: row.acknowledged_ms,
        silenced_until_ms: row.silenced_until_ms,
        breakers,
        events: Vec::new(),
        deliveries: Vec::new(),
    })
}

/// An alert with its history and deliveries, for the API.
pub async fn full(conn: &mut Tx, alert_id: i64) -> Result<Alert, StoreError> {
    let mut alert = snapshot(conn, alert_id).await?;
    let events: Vec<EventRecord> = on_tx!(conn, c => sqlx::query_as(
        "SELECT id, kind, at_ms, detail FROM alert_events WHERE alert_id = $1 ORDER BY id",
    )
    .bind(alert_id)
    .fetch_all(c)
    .await)?;
    alert.events = events
        .into_iter()
        .map(|row| AlertEventRecord {
            id: row.id,
            kind: row.kind,
            at_ms: row.at_ms,
            detail: row.detail,
        })
        .collect();
    let deliveries: Vec<DeliveryRecord> = on_tx!(conn, c => sqlx::query_as(
        "SELECT c.name AS channel, o.event_id, o.idempotency_key, o.attempts, o.delivered_ms,
                o.next_attempt_ms, o.last_error
         FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id
         JOIN alert_channels c ON c.id = o.channel_id
         WHERE e.alert_id = $1 ORDER BY o.id",
    )
    .bind(alert_id)
    .fetch_all(c)
    .await)?;
    alert.deliveries = deliveries
        .into_iter()
        .map(|row| AlertDelivery {
            channel: row.channel,
            event_id: row.event_id,
            idempotency_key: row.idempotency_key,
            attempts: row.attempts as u32,
            delivered_ms: row.delivered_ms,
            next_attempt_ms: row.delivered_ms.is_none().then_some(row.next_attempt_ms),
            last_error: row.last_error,
        })
        .collect();
    Ok(alert)
}

/// Alerts with an id below `before_id`, of one status when given, newest first, in full.
pub async fn list(
    store: &Store,
    status: Option<AlertStatus>,
    before_id: i64,
    limit: i64,
) -> Result<Vec<Alert>, StoreError> {
    // One read transaction: a consistent snapshot while the engine keeps committing.
    let mut tx = store.begin_read().await?;
    let ids: Vec<i64> = on_tx!(&mut tx, c => sqlx::query_scalar(
        "SELECT id FROM alerts WHERE ($1 IS NULL OR status = $1) AND id < $2
         ORDER BY id DESC LIMIT $3",
    )
    .bind(status.map(AlertStatus::as_str))
    .bind(before_id)
    .bind(limit)
    .fetch_all(c)
    .await)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.push(full(&mut tx, id).await?);
    }
    Ok(out)
}

/// One alert in full, if it exists.
pub async fn find(store: &Store, id: i64) -> Result<Option<Alert>, StoreError> {
    let mut tx = store.begin_read().await?;
    let exists: Option<i64> = on_tx!(&mut tx, c => sqlx::query_scalar("SELECT id FROM alerts WHERE id = $1")
        .bind(id)
        .fetch_optional(c)
        .await)?;
    match exists {
        None => Ok(None),
        Some(_) => Ok(Some(full(&mut tx, id).await?)),
    }
}

/// Records an event of an alert, with the alert as notified when it notifies anyone; returns
/// the event's id.
pub async fn insert_event(
    conn: &mut Tx,
    alert_id: i64,
    kind: EventKind,
    at_ms: i64,
    detail: Option<&str>,
    notified: Option<&Alert>,
) -> Result<i64, StoreError> {
    Ok(on_tx!(conn, c => sqlx::query_scalar(
        "INSERT INTO alert_events (alert_id, kind, at_ms, detail, snapshot) VALUES ($1, $2, $3, $4, $5)
         RETURNING id",
    )
    .bind(alert_id)
    .bind(kind.as_str())
    .bind(at_ms)
    .bind(detail)
    .bind(notified.map(|alert| serde_json::to_string(alert).expect("an alert serializes")))
    .fetch_one(c)
    .await)?)
}

/// Records a history entry that notifies no channel (acknowledged, silenced); returns the
/// alert in full.
pub async fn add_note(
    store: &Store,
    alert_id: i64,
    kind: EventKind,
    detail: String,
    now: i64,
) -> Result<Alert, StoreError> {
    let mut tx = store.begin().await?;
    insert_event(&mut tx, alert_id, kind, now, Some(&detail), None).await?;
    let alert = full(&mut tx, alert_id).await?;
    tx.commit().await?;
    Ok(alert)
}

pub async fn acknowledge(
    store: &Store,
    alert_id: i64,
    by: &str,
    now: i64,
) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query("UPDATE alerts SET acknowledged_by = $1, acknowledged_ms = $2 WHERE id = $3")
        .bind(by)
        .bind(now)
        .bind(alert_id)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Silences an alert's notifications until `until_ms`; `None` lifts the silence.
pub async fn set_silence(
    store: &Store,
    alert_id: i64,
    until_ms: Option<i64>,
) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query("UPDATE alerts SET silenced_until_ms = $1 WHERE id = $2")
        .bind(until_ms)
        .bind(alert_id)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Holds back the notifications of an alert still queued (all but its recovery), marking them
/// delivered as `silenced`.
pub async fn hold_back_queued(store: &Store, alert_id: i64, now: i64) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query(
        "UPDATE alert_outbox SET delivered_ms = $1, last_error = 'silenced'
         WHERE delivered_ms IS NULL AND event_id IN
           (SELECT id FROM alert_events WHERE alert_id = $2 AND kind != 'resolved')",
    )
    .bind(now)
    .bind(alert_id)
    .execute(pool)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}
