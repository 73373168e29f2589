//! The outbox: notifications queued with their alert's event, what is due, and the outcome of
//! each attempt.

use protocol::{Alert, AlertChannel};

use super::parse_channel_kind;
use crate::store::{Store, StoreError, Tx, on_db, on_tx, parse_json};

/// One due notification, with the alert as notified and its channel.
pub struct Due {
    pub id: i64,
    pub key: String,
    pub attempts: i64,
    pub event: String,
    pub alert: Alert,
    pub channel: AlertChannel,
}

#[derive(sqlx::FromRow)]
struct DueRecord {
    id: i64,
    idempotency_key: String,
    attempts: i64,
    event: String,
    snapshot: String,
    channel_name: String,
    channel_kind: String,
    url: String,
    secret: Option<String>,
    rules: String,
}

impl DueRecord {
    fn into_due(self) -> Result<Due, StoreError> {
        Ok(Due {
            id: self.id,
            key: self.idempotency_key,
            attempts: self.attempts,
            event: self.event,
            alert: parse_json("a notified alert", &self.snapshot)?,
            channel: AlertChannel {
                name: self.channel_name,
                kind: parse_channel_kind(&self.channel_kind)?,
                url: self.url,
                secret: self.secret,
                rules: parse_json("a channel's rules", &self.rules)?,
            },
        })
    }
}

/// An undelivered notification and when it is next tried.
#[derive(sqlx::FromRow)]
pub struct Pending {
    pub id: i64,
    pub next_attempt_ms: i64,
}

/// Queues the notification of an event to a channel, due at once.
pub async fn queue(
    conn: &mut Tx,
    event_id: i64,
    channel_id: i64,
    idempotency_key: &str,
    now: i64,
) -> Result<(), StoreError> {
    on_tx!(conn, c => sqlx::query(
        "INSERT INTO alert_outbox (event_id, channel_id, idempotency_key, created_ms, next_attempt_ms)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(event_id)
    .bind(channel_id)
    .bind(idempotency_key)
    .bind(now)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Queues each firing alert older than a minute again, as its latest event, for the
/// Alertmanager channels that were told of it, once per alert, channel and minute of `now`
/// (the idempotency key names the minute). Returns how many it queued.
pub async fn queue_alertmanager_refresh(store: &Store, now: i64) -> Result<u64, StoreError> {
    let res = on_db!(&store.db, pool => sqlx::query(
        "INSERT INTO alert_outbox (event_id, channel_id, idempotency_key, created_ms, next_attempt_ms)
         SELECT MAX(o.event_id), o.channel_id,
                'fusebox-alert-' || a.id || '-refresh-' || $1 || '-' || o.channel_id, $2, $2
         FROM alerts a
         JOIN alert_events e ON e.alert_id = a.id
         JOIN alert_outbox o ON o.event_id = e.id
         JOIN alert_channels c ON c.id = o.channel_id
         WHERE a.status = 'firing' AND c.kind = 'alertmanager' AND a.started_ms <= $2 - 60000
         GROUP BY a.id, o.channel_id
         ON CONFLICT DO NOTHING",
    )
    .bind(now / 60_000)
    .bind(now)
    .execute(pool)
    .await.map(|r| r.rows_affected()))?;
    Ok(res)
}

/// How long a claimed notification is left to the replica that claimed it: far longer than
/// one request may take ([`crate::alerts::outbox::REQUEST_TIMEOUT`]); only a deliverer that
/// died between claiming and recording leaves a claim to run out.
pub const CLAIM_MS: i64 = 30_000;

/// The condition that an outbox row `o` of the event `e` is first in its line: no earlier
/// notification of the same alert to the same channel is undelivered (see [`claim_due`]).
macro_rules! first_in_line {
    () => {
        "NOT EXISTS (
             SELECT 1 FROM alert_outbox p JOIN alert_events pe ON pe.id = p.event_id
             WHERE p.delivered_ms IS NULL AND p.channel_id = o.channel_id
               AND pe.alert_id = e.alert_id AND p.id < o.id)"
    };
}

/// Claims up to `limit` undelivered notifications due at `now`, oldest first: in one write
/// transaction (one at a time across replicas), each is put off by [`CLAIM_MS`], so no other
/// deliverer takes it while this one sends it and records the outcome.
///
/// A channel hears of one alert in order: a notification is claimed only once every earlier one
/// of the same alert to the same channel is delivered, so "resolved" (or an update) never
/// overtakes the "firing" it follows, even while that one is being retried.
pub async fn claim_due(store: &Store, now: i64, limit: i64) -> Result<Vec<Due>, StoreError> {
    let mut tx = store.begin().await?;
    let rows = due_in(&mut tx, now, limit).await?;
    for row in &rows {
        claim(&mut tx, row.id, now + CLAIM_MS).await?;
    }
    tx.commit().await?;
    rows.into_iter().map(DueRecord::into_due).collect()
}

async fn due_in(tx: &mut Tx, now: i64, limit: i64) -> Result<Vec<DueRecord>, sqlx::Error> {
    on_tx!(tx, c => sqlx::query_as(concat!(
        "SELECT o.id, o.idempotency_key, o.attempts, e.kind AS event, e.snapshot,
                c.name AS channel_name, c.kind AS channel_kind, c.url, c.secret, c.rules
         FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id
         JOIN alert_channels c ON c.id = o.channel_id
         WHERE o.delivered_ms IS NULL AND o.next_attempt_ms <= $1 AND ",
        first_in_line!(),
        " ORDER BY o.id LIMIT $2",
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(c)
    .await)
}

async fn claim(tx: &mut Tx, id: i64, until_ms: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE alert_outbox SET next_attempt_ms = $1 WHERE id = $2 AND delivered_ms IS NULL",
    )
    .bind(until_ms)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The `limit` undelivered notifications tried next, soonest first: only those first in line
/// (see [`claim_due`]), since one behind another waits for it, not for its own time.
pub async fn next_pending(store: &Store, limit: i64) -> Result<Vec<Pending>, StoreError> {
    Ok(on_db!(&store.db, pool => sqlx::query_as(concat!(
        "SELECT o.id, o.next_attempt_ms FROM alert_outbox o JOIN alert_events e ON e.id = o.event_id
         WHERE o.delivered_ms IS NULL AND ",
        first_in_line!(),
        " ORDER BY o.next_attempt_ms LIMIT $1",
    ))
    .bind(limit)
    .fetch_all(pool)
    .await)?)
}

/// Puts a notification off without counting an attempt (it was not sent).
pub async fn postpone(
    store: &Store,
    id: i64,
    next_attempt_ms: i64,
    reason: &str,
) -> Result<(), StoreError> {
    reschedule(store, id, (next_attempt_ms, reason), 0).await
}

/// Schedules a notification's next attempt at `next_attempt_ms` with why the last one did not
/// deliver it, counting `attempts` more attempts.
async fn reschedule(
    store: &Store,
    id: i64,
    (next_attempt_ms, reason): (i64, &str),
    attempts: i64,
) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query(
        "UPDATE alert_outbox SET attempts = attempts + $1, next_attempt_ms = $2, last_error = $3
         WHERE id = $4",
    )
    .bind(attempts)
    .bind(next_attempt_ms)
    .bind(reason)
    .bind(id)
    .execute(pool)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn mark_delivered(store: &Store, id: i64, now: i64) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query(
        "UPDATE alert_outbox SET delivered_ms = $1, attempts = attempts + 1,
             last_error = NULL WHERE id = $2",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Counts a failed attempt and schedules the next.
pub async fn mark_failed(
    store: &Store,
    id: i64,
    next_attempt_ms: i64,
    reason: &str,
) -> Result<(), StoreError> {
    reschedule(store, id, (next_attempt_ms, reason), 1).await
}
