//! Reading and writing alerts: snapshots for notifications, history, and new events with
//! their outbox rows, all on one connection so the engine can do it inside its transaction.

use protocol::{
    Alert, AlertBreaker, AlertChannelKind, AlertDelivery, AlertEventRecord, AlertRule,
    AlertRuleKind,
};
use sqlx::{Row, SqliteConnection};

use crate::alerts::rules::{self, ChannelRow};

/// An alert without its history: what notifications and the stream carry.
pub async fn snapshot(conn: &mut SqliteConnection, alert_id: i64) -> anyhow::Result<Alert> {
    let row = sqlx::query(
        "SELECT id, rule, kind, severity, status, title, started_ms, resolved_ms, trigger_kind,
                trigger_value, threshold, acknowledged_by, acknowledged_ms, silenced_until_ms
         FROM alerts WHERE id = ?",
    )
    .bind(alert_id)
    .fetch_one(&mut *conn)
    .await?;
    let kind: String = row.get(2);
    let members = sqlx::query(
        "SELECT b.id, b.service, b.name FROM alert_members m JOIN breakers b ON b.id = m.breaker_id
         WHERE m.alert_id = ? ORDER BY b.service, b.name",
    )
    .bind(alert_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut breakers = Vec::with_capacity(members.len());
    for member in members {
        let instances: Vec<String> = sqlx::query_scalar(
            "SELECT instance FROM alert_instances WHERE breaker_id = ? AND state != 'closed'
             ORDER BY instance",
        )
        .bind(member.get::<i64, _>(0))
        .fetch_all(&mut *conn)
        .await?;
        breakers.push(AlertBreaker {
            service: member.get(1),
            breaker: member.get(2),
            instances,
        });
    }
    Ok(Alert {
        id: row.get(0),
        rule: row.get(1),
        kind: serde_json::from_value(serde_json::Value::String(kind))?,
        severity: row.get(3),
        status: row.get(4),
        title: row.get(5),
        started_ms: row.get(6),
        resolved_ms: row.get(7),
        trigger_kind: row.get(8),
        trigger_value: row.get(9),
        threshold: row.get(10),
        acknowledged_by: row.get(11),
        acknowledged_ms: row.get(12),
        silenced_until_ms: row.get(13),
        breakers,
        events: Vec::new(),
        deliveries: Vec::new(),
    })
}

/// An alert with its history and deliveries, for the API.
pub async fn full(conn: &mut SqliteConnection, alert_id: i64) -> anyhow::Result<Alert> {
    let mut alert = snapshot(conn, alert_id).await?;
    alert.events = sqlx::query(
        "SELECT id, kind, at_ms, detail FROM alert_events WHERE alert_id = ? ORDER BY id",
    )
    .bind(alert_id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|row| AlertEventRecord {
        id: row.get(0),
        kind: row.get(1),
        at_ms: row.get(2),
        detail: row.get(3),
    })
    .collect();
    alert.deliveries = sqlx::query(
        "SELECT c.name, o.event_id, o.idempotency_key, o.attempts, o.delivered_ms,
                o.next_attempt_ms, o.last_error
         FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id
         JOIN alert_channels c ON c.id = o.channel_id
         WHERE e.alert_id = ? ORDER BY o.id",
    )
    .bind(alert_id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|row| {
        let delivered: Option<i64> = row.get(4);
        AlertDelivery {
            channel: row.get(0),
            event_id: row.get(1),
            idempotency_key: row.get(2),
            attempts: row.get::<i64, _>(3) as u32,
            delivered_ms: delivered,
            next_attempt_ms: delivered.is_none().then(|| row.get(5)),
            last_error: row.get(6),
        }
    })
    .collect();
    Ok(alert)
}

/// Whether a channel is to be told of an event of `alert`.
fn wants(
    channel: &ChannelRow,
    alert: &Alert,
    event: &str,
    rules: &[AlertRule],
    now_ms: i64,
) -> bool {
    if !channel.spec.rules.is_empty() && !channel.spec.rules.contains(&alert.rule) {
        return false;
    }
    let alertmanager = channel.spec.kind == AlertChannelKind::Alertmanager;
    match event {
        "firing" | "updated" => alert.silenced_until_ms.is_none_or(|until| until <= now_ms),
        // Alertmanager needs the end of every alert it was told of; other channels get a
        // recovery notice only when a recovery rule covers one of the alert's breakers.
        "resolved" => {
            alertmanager
                || (alert.silenced_until_ms.is_none_or(|until| until <= now_ms)
                    && alert.breakers.iter().any(|b| {
                        rules.iter().any(|rule| {
                            rule.kind == AlertRuleKind::Recovery
                                && rules::in_scope(rule, &b.service, &b.breaker)
                        })
                    }))
        }
        _ => false,
    }
}

/// Records an event of an alert and queues its notifications; returns the alert as notified.
pub async fn add_event(
    conn: &mut SqliteConnection,
    alert_id: i64,
    kind: &str,
    detail: Option<&str>,
    channels: &[ChannelRow],
    rules: &[AlertRule],
    now_ms: i64,
) -> anyhow::Result<Alert> {
    let alert = snapshot(conn, alert_id).await?;
    let event_id: i64 = sqlx::query_scalar(
        "INSERT INTO alert_events (alert_id, kind, at_ms, detail, snapshot) VALUES (?, ?, ?, ?, ?)
         RETURNING id",
    )
    .bind(alert_id)
    .bind(kind)
    .bind(now_ms)
    .bind(detail)
    .bind(serde_json::to_string(&alert)?)
    .fetch_one(&mut *conn)
    .await?;
    for channel in channels {
        if !wants(channel, &alert, kind, rules, now_ms) {
            continue;
        }
        sqlx::query(
            "INSERT INTO alert_outbox (event_id, channel_id, idempotency_key, created_ms, next_attempt_ms)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(event_id)
        .bind(channel.id)
        .bind(format!("fusebox-alert-{alert_id}-{kind}-{event_id}-{}", channel.id))
        .bind(now_ms)
        .bind(now_ms)
        .execute(&mut *conn)
        .await?;
    }
    Ok(alert)
}
