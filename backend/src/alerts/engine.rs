//! The alert engine: reads transitions from the store by id after a persisted cursor, keeps
//! its own view of every instance's state, and opens, extends and resolves alerts.
//!
//! Each page of transitions is evaluated in one transaction with the outbox rows it creates
//! and the cursor's move, so a restart neither loses nor repeats an alert. The hub only wakes
//! the engine (it may drop news when lagging); a one-second timer wakes it too, and evaluates
//! the rules that depend on time (open longer than D, the end of flapping).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use protocol::{AlertNotice, AlertRule, AlertRuleKind, State, StreamEvent};

use crate::ingest::hub::Published;
use sqlx::{Row, SqliteConnection};
use tokio::sync::broadcast;

use crate::alerts::rules::{self, ChannelRow};
use crate::alerts::{Alerts, model};
use crate::store::Store;
use crate::time::now_ms;

/// Transitions evaluated per transaction.
const PAGE: i64 = 200;
/// How often time-based rules are evaluated.
const TICK: Duration = Duration::from_secs(1);

pub struct Engine {
    pub store: Store,
    pub alerts: Alerts,
    /// The last minute (ms / 60 000) firing alerts were re-sent to Alertmanager.
    pub refreshed_minute: AtomicI64,
}

/// One stored transition, with its breaker.
struct Row_ {
    id: i64,
    breaker_id: i64,
    service: String,
    breaker: String,
    instance: String,
    at_ms: i64,
    from: State,
    to: State,
    trigger_kind: Option<String>,
    trigger_value: Option<f64>,
    trigger_threshold: Option<f64>,
}

/// What one transaction decided, told to the stream once it commits.
#[derive(Default)]
struct Outcome {
    notices: Vec<AlertNotice>,
}

// === impl Engine ===

impl Engine {
    pub async fn run(self, mut live: broadcast::Receiver<Arc<Published>>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if let Err(err) = self.catch_up().await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "alert evaluation failed; retrying"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            tokio::select! {
                event = live.recv() => match event {
                    Ok(event) if !matches!(event.event, StreamEvent::Transition(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                    _ => {}
                },
                _ = tick.tick() => {
                    if let Err(err) = self.tick().await {
                        tracing::warn!(error = format!("{err:#}"), "alert timer failed");
                    }
                }
            }
        }
    }

    /// Evaluates every transition after the cursor.
    async fn catch_up(&self) -> anyhow::Result<()> {
        loop {
            let cursor: i64 =
                sqlx::query_scalar("SELECT last_transition_id FROM alert_cursor WHERE id = 1")
                    .fetch_one(self.store.pool())
                    .await?;
            let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM transitions")
                .fetch_one(self.store.pool())
                .await?;
            if newest.unwrap_or(0) <= cursor {
                return Ok(());
            }
            if self.page().await? < PAGE {
                return Ok(());
            }
        }
    }

    /// One transaction: a page of transitions, the alerts and outbox rows they make, the cursor.
    async fn page(&self) -> anyhow::Result<i64> {
        let rules = active_rules(&self.store).await?;
        let channels = rules::load_channels(&self.store).await?;
        // `begin` takes the write lock at once (BEGIN IMMEDIATE): the cursor read below
        // cannot go stale before this transaction commits.
        let mut tx = self.store.begin().await?;
        let cursor: i64 =
            sqlx::query_scalar("SELECT last_transition_id FROM alert_cursor WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let rows = sqlx::query(
            "SELECT t.id, t.breaker_id, b.service, b.name, t.instance, t.at_ms, t.from_state,
                    t.to_state, t.trigger_kind, t.trigger_value, t.trigger_threshold
             FROM transitions t JOIN breakers b ON b.id = t.breaker_id
             WHERE t.id > ? ORDER BY t.id LIMIT ?",
        )
        .bind(cursor)
        .bind(PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let n = rows.len() as i64;
        let mut outcome = Outcome::default();
        let mut last = cursor;
        for row in rows {
            let parse =
                |idx: usize| State::parse(&row.get::<String, _>(idx)).unwrap_or(State::Closed);
            let transition = Row_ {
                id: row.get(0),
                breaker_id: row.get(1),
                service: row.get(2),
                breaker: row.get(3),
                instance: row.get(4),
                at_ms: row.get(5),
                from: parse(6),
                to: parse(7),
                trigger_kind: row.get(8),
                trigger_value: row.get(9),
                trigger_threshold: row.get(10),
            };
            apply(&mut tx, &rules, &channels, &transition, &mut outcome).await?;
            last = transition.id;
        }
        sqlx::query("UPDATE alert_cursor SET last_transition_id = ? WHERE id = 1")
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.alerts.committed(outcome.notices);
        Ok(n)
    }

    /// Re-sends firing alerts to Alertmanager once a minute (see [`refresh_alertmanager`]).
    async fn refresh_alertmanager(&self, now: i64) -> anyhow::Result<()> {
        let minute = now / 60_000;
        if self.refreshed_minute.swap(minute, Ordering::Relaxed) != minute {
            refresh_alertmanager(&self.store, now).await?;
        }
        Ok(())
    }

    /// Time-based rules: open longer than D, and the end of flapping; Alertmanager refreshes.
    async fn tick(&self) -> anyhow::Result<()> {
        let now = now_ms();
        self.refresh_alertmanager(now).await?;
        let rules = active_rules(&self.store).await?;
        let longest_wanted = rules
            .iter()
            .filter(|r| r.kind == AlertRuleKind::OpenLonger)
            .filter_map(|r| r.for_ms)
            .min();
        let n_flapping: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM alerts WHERE status = 'firing' AND kind = 'flapping'",
        )
        .fetch_one(self.store.pool())
        .await?;
        let n_due: i64 = match longest_wanted {
            None => 0,
            Some(for_ms) => {
                sqlx::query_scalar("SELECT COUNT(*) FROM alert_incidents WHERE started_ms <= ?")
                    .bind(now - for_ms)
                    .fetch_one(self.store.pool())
                    .await?
            }
        };
        if n_flapping == 0 && n_due == 0 {
            return Ok(());
        }
        let channels = rules::load_channels(&self.store).await?;
        let mut tx = self.store.begin().await?;
        let mut outcome = Outcome::default();
        // Open longer than D.
        let incidents = sqlx::query(
            "SELECT i.breaker_id, i.started_ms, b.service, b.name
             FROM alert_incidents i JOIN breakers b ON b.id = i.breaker_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        for incident in incidents {
            let (breaker_id, started_ms): (i64, i64) = (incident.get(0), incident.get(1));
            let (service, breaker): (String, String) = (incident.get(2), incident.get(3));
            for rule in &rules {
                let Some(for_ms) = rule.for_ms else { continue };
                if rule.kind != AlertRuleKind::OpenLonger
                    || now - started_ms < for_ms
                    || !rules::in_scope(rule, &service, &breaker)
                {
                    continue;
                }
                let key = breaker_key(&service, &breaker);
                // Once per incident: not again after it resolved (it resolves only when the
                // incident ends, and a new incident starts later).
                let seen: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM alerts WHERE rule = ? AND group_key = ? AND started_ms >= ?",
                )
                .bind(&rule.name)
                .bind(&key)
                .bind(started_ms)
                .fetch_one(&mut *tx)
                .await?;
                if seen > 0 {
                    continue;
                }
                let title = format!(
                    "{service}/{breaker} has not been Closed for {} s",
                    (now - started_ms) / 1_000
                );
                let alert_id = open_alert(
                    &mut tx,
                    rule,
                    &key,
                    &title,
                    started_ms,
                    ("open_for_ms", (now - started_ms) as f64, for_ms as f64),
                    breaker_id,
                )
                .await?;
                let alert =
                    model::add_event(&mut tx, alert_id, "firing", None, &channels, &rules, now)
                        .await?;
                outcome.notices.push(notice("firing", alert));
            }
        }
        // The end of flapping: Closed everywhere and no opening within the rule's window.
        let flapping = sqlx::query(
            "SELECT a.id, a.rule, m.breaker_id FROM alerts a JOIN alert_members m ON m.alert_id = a.id
             WHERE a.status = 'firing' AND a.kind = 'flapping'",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in flapping {
            let (alert_id, rule_name, breaker_id): (i64, String, i64) =
                (row.get(0), row.get(1), row.get(2));
            let within_ms = rules
                .iter()
                .find(|r| r.name == rule_name)
                .and_then(|r| r.within_ms)
                .unwrap_or(0);
            let last_opening: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(at_ms) FROM transitions
                 WHERE breaker_id = ? AND from_state = 'closed' AND to_state = 'open'",
            )
            .bind(breaker_id)
            .fetch_one(&mut *tx)
            .await?;
            if !closed_everywhere(&mut tx, breaker_id).await?
                || last_opening.is_some_and(|at| at > now - within_ms)
            {
                continue;
            }
            let alert = resolve(&mut tx, alert_id, now, &channels, &rules).await?;
            outcome.notices.push(notice("resolved", alert));
        }
        tx.commit().await?;
        self.alerts.committed(outcome.notices);
        Ok(())
    }
}

/// Alertmanager forgets an alert it has not heard of for its `resolve_timeout` (5 minutes by
/// default), so each firing alert older than a minute is queued again, as its latest event,
/// for the Alertmanager channels that were told of it. The idempotency key names the minute
/// of `now`, so this queues at most once per alert, channel and minute, restarts included.
/// Returns how many deliveries it queued.
pub async fn refresh_alertmanager(store: &Store, now: i64) -> anyhow::Result<u64> {
    let res = sqlx::query(
        "INSERT OR IGNORE INTO alert_outbox (event_id, channel_id, idempotency_key, created_ms, next_attempt_ms)
         SELECT MAX(o.event_id), o.channel_id,
                'fusebox-alert-' || a.id || '-refresh-' || ?1 || '-' || o.channel_id, ?2, ?2
         FROM alerts a
         JOIN alert_events e ON e.alert_id = a.id
         JOIN alert_outbox o ON o.event_id = e.id
         JOIN alert_channels c ON c.id = o.channel_id
         WHERE a.status = 'firing' AND c.kind = 'alertmanager' AND a.started_ms <= ?2 - 60000
         GROUP BY a.id, o.channel_id",
    )
    .bind(now / 60_000)
    .bind(now)
    .execute(store.pool())
    .await?;
    Ok(res.rows_affected())
}

/// The enabled rules.
async fn active_rules(store: &Store) -> anyhow::Result<Vec<AlertRule>> {
    Ok(rules::load_rules(store)
        .await?
        .into_iter()
        .map(|(rule, _)| rule)
        .filter(|rule| rule.enabled)
        .collect())
}

fn notice(event: &str, alert: protocol::Alert) -> AlertNotice {
    AlertNotice {
        event: event.to_string(),
        alert,
    }
}

fn breaker_key(service: &str, breaker: &str) -> String {
    format!("breaker:{service}/{breaker}")
}

async fn closed_everywhere(conn: &mut SqliteConnection, breaker_id: i64) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM alert_instances WHERE breaker_id = ? AND state != 'closed'",
    )
    .bind(breaker_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n == 0)
}

async fn firing(conn: &mut SqliteConnection, rule: &str, key: &str) -> anyhow::Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM alerts WHERE rule = ? AND group_key = ? AND status = 'firing'",
    )
    .bind(rule)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?)
}

async fn open_alert(
    conn: &mut SqliteConnection,
    rule: &AlertRule,
    key: &str,
    title: &str,
    started_ms: i64,
    (trigger_kind, value, threshold): (&str, f64, f64),
    breaker_id: i64,
) -> anyhow::Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO alerts (rule, kind, severity, group_key, status, title, started_ms,
                             trigger_kind, trigger_value, threshold)
         VALUES (?, ?, ?, ?, 'firing', ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&rule.name)
    .bind(rules::rule_kind_str(rule.kind))
    .bind(&rule.severity)
    .bind(key)
    .bind(title)
    .bind(started_ms)
    .bind(trigger_kind)
    .bind(value)
    .bind(threshold)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO alert_members (alert_id, breaker_id) VALUES (?, ?)")
        .bind(id)
        .bind(breaker_id)
        .execute(&mut *conn)
        .await?;
    Ok(id)
}

async fn resolve(
    conn: &mut SqliteConnection,
    alert_id: i64,
    now: i64,
    channels: &[ChannelRow],
    rules: &[AlertRule],
) -> anyhow::Result<protocol::Alert> {
    sqlx::query("UPDATE alerts SET status = 'resolved', resolved_ms = ? WHERE id = ?")
        .bind(now)
        .bind(alert_id)
        .execute(&mut *conn)
        .await?;
    model::add_event(conn, alert_id, "resolved", None, channels, rules, now).await
}

/// The title of a trip alert: the dependency and every service whose breaker of it opened.
async fn trip_title(conn: &mut SqliteConnection, alert_id: i64) -> anyhow::Result<String> {
    let members = sqlx::query(
        "SELECT b.service, b.name FROM alert_members m JOIN breakers b ON b.id = m.breaker_id
         WHERE m.alert_id = ? ORDER BY b.service, b.name",
    )
    .bind(alert_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut names: Vec<String> = members.iter().map(|m| m.get::<String, _>(1)).collect();
    names.dedup();
    let services: Vec<String> = members.iter().map(|m| m.get::<String, _>(0)).collect();
    Ok(format!(
        "Breaker {} opened in {}",
        names.join(", "),
        services.join(", ")
    ))
}

/// Evaluates one transition.
async fn apply(
    conn: &mut SqliteConnection,
    rules: &[AlertRule],
    channels: &[ChannelRow],
    t: &Row_,
    outcome: &mut Outcome,
) -> anyhow::Result<()> {
    let now = now_ms();
    let was_closed = closed_everywhere(conn, t.breaker_id).await?;
    sqlx::query(
        "INSERT INTO alert_instances (breaker_id, instance, state, since_ms) VALUES (?, ?, ?, ?)
         ON CONFLICT (breaker_id, instance) DO UPDATE SET state = excluded.state,
           since_ms = excluded.since_ms",
    )
    .bind(t.breaker_id)
    .bind(&t.instance)
    .bind(t.to.as_str())
    .bind(t.at_ms)
    .execute(&mut *conn)
    .await?;
    let is_closed = closed_everywhere(conn, t.breaker_id).await?;
    if was_closed && !is_closed {
        sqlx::query(
            "INSERT OR REPLACE INTO alert_incidents (breaker_id, started_ms) VALUES (?, ?)",
        )
        .bind(t.breaker_id)
        .bind(t.at_ms)
        .execute(&mut *conn)
        .await?;
    } else if !was_closed && is_closed {
        sqlx::query("DELETE FROM alert_incidents WHERE breaker_id = ?")
            .bind(t.breaker_id)
            .execute(&mut *conn)
            .await?;
    }
    let opened = t.from == State::Closed && t.to == State::Open;
    let trigger = (
        t.trigger_kind.as_deref().unwrap_or("unknown"),
        t.trigger_value.unwrap_or(0.0),
        t.trigger_threshold.unwrap_or(0.0),
    );
    for rule in rules {
        if !rules::in_scope(rule, &t.service, &t.breaker) {
            continue;
        }
        match rule.kind {
            AlertRuleKind::Trip if opened => {
                let key = match rule.group_by.as_deref() {
                    Some("breaker") => breaker_key(&t.service, &t.breaker),
                    _ => format!("dependency:{}", t.breaker),
                };
                match firing(conn, &rule.name, &key).await? {
                    Some(alert_id) => {
                        let res = sqlx::query(
                            "INSERT OR IGNORE INTO alert_members (alert_id, breaker_id) VALUES (?, ?)",
                        )
                        .bind(alert_id)
                        .bind(t.breaker_id)
                        .execute(&mut *conn)
                        .await?;
                        if res.rows_affected() == 1 {
                            let title = trip_title(conn, alert_id).await?;
                            sqlx::query("UPDATE alerts SET title = ? WHERE id = ?")
                                .bind(&title)
                                .bind(alert_id)
                                .execute(&mut *conn)
                                .await?;
                            let detail = format!("{} joined", t.service);
                            let alert = model::add_event(
                                conn,
                                alert_id,
                                "updated",
                                Some(&detail),
                                channels,
                                rules,
                                now,
                            )
                            .await?;
                            outcome.notices.push(notice("updated", alert));
                        }
                    }
                    None => {
                        let title = format!("Breaker {} opened in {}", t.breaker, t.service);
                        let alert_id =
                            open_alert(conn, rule, &key, &title, t.at_ms, trigger, t.breaker_id)
                                .await?;
                        let alert =
                            model::add_event(conn, alert_id, "firing", None, channels, rules, now)
                                .await?;
                        outcome.notices.push(notice("firing", alert));
                    }
                }
            }
            AlertRuleKind::Flapping if opened => {
                let (Some(openings), Some(within_ms)) = (rule.openings, rule.within_ms) else {
                    continue;
                };
                let key = breaker_key(&t.service, &t.breaker);
                if firing(conn, &rule.name, &key).await?.is_some() {
                    continue;
                }
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM transitions
                     WHERE breaker_id = ? AND from_state = 'closed' AND to_state = 'open'
                       AND at_ms > ? AND at_ms <= ? AND id <= ?",
                )
                .bind(t.breaker_id)
                .bind(t.at_ms - within_ms)
                .bind(t.at_ms)
                .bind(t.id)
                .fetch_one(&mut *conn)
                .await?;
                if n < i64::from(openings) {
                    continue;
                }
                let title = format!(
                    "{}/{} is flapping: {n} openings within {} s",
                    t.service,
                    t.breaker,
                    within_ms / 1_000
                );
                let alert_id = open_alert(
                    conn,
                    rule,
                    &key,
                    &title,
                    t.at_ms,
                    ("openings", n as f64, f64::from(openings)),
                    t.breaker_id,
                )
                .await?;
                let alert =
                    model::add_event(conn, alert_id, "firing", None, channels, rules, now).await?;
                outcome.notices.push(notice("firing", alert));
            }
            AlertRuleKind::MinInstances if t.to == State::Open => {
                let Some(min_open) = rule.min_open else {
                    continue;
                };
                let key = breaker_key(&t.service, &t.breaker);
                if firing(conn, &rule.name, &key).await?.is_some() {
                    continue;
                }
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM alert_instances WHERE breaker_id = ? AND state = 'open'",
                )
                .bind(t.breaker_id)
                .fetch_one(&mut *conn)
                .await?;
                if n < i64::from(min_open) {
                    continue;
                }
                let title = format!("{}/{} is Open on {n} instances", t.service, t.breaker);
                let alert_id = open_alert(
                    conn,
                    rule,
                    &key,
                    &title,
                    t.at_ms,
                    ("open_instances", n as f64, f64::from(min_open)),
                    t.breaker_id,
                )
                .await?;
                let alert =
                    model::add_event(conn, alert_id, "firing", None, channels, rules, now).await?;
                outcome.notices.push(notice("firing", alert));
            }
            _ => {}
        }
    }
    if is_closed && !was_closed {
        // Alerts resolve when every breaker they name is Closed on every instance (flapping
        // alerts wait for their window too, on the timer).
        let candidates: Vec<i64> = sqlx::query_scalar(
            "SELECT a.id FROM alerts a JOIN alert_members m ON m.alert_id = a.id
             WHERE m.breaker_id = ? AND a.status = 'firing' AND a.kind != 'flapping'",
        )
        .bind(t.breaker_id)
        .fetch_all(&mut *conn)
        .await?;
        for alert_id in candidates {
            let open_members: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM alert_members m JOIN alert_instances i
                   ON i.breaker_id = m.breaker_id
                 WHERE m.alert_id = ? AND i.state != 'closed'",
            )
            .bind(alert_id)
            .fetch_one(&mut *conn)
            .await?;
            if open_members == 0 {
                let alert = resolve(conn, alert_id, now, channels, rules).await?;
                outcome.notices.push(notice("resolved", alert));
            }
        }
    }
    Ok(())
}

/// Raises a notice of an automatic config change: for each enabled `auto_tune` rule in scope,
/// an alert that is resolved at once (a change is an event, not a condition), with its
/// notifications queued in the same transaction as the change. Returns the notices for
/// [`Alerts::committed`], to be called once the transaction commits.
pub async fn auto_tune_notice(
    conn: &mut SqliteConnection,
    breaker: (i64, &str, &str),
    title: &str,
    (trigger_kind, value, threshold): (&str, f64, f64),
) -> anyhow::Result<Vec<AlertNotice>> {
    let (breaker_id, service, name) = breaker;
    let rules: Vec<AlertRule> = rules::load_rules_on(conn)
        .await?
        .into_iter()
        .map(|(rule, _)| rule)
        .filter(|rule| rule.enabled)
        .collect();
    let channels = rules::load_channels_on(conn).await?;
    let now = now_ms();
    let mut notices = Vec::new();
    for rule in rules
        .iter()
        .filter(|r| r.kind == AlertRuleKind::AutoTune && rules::in_scope(r, service, name))
    {
        let key = format!("auto:{}:{now}", breaker_key(service, name));
        let alert_id = open_alert(
            conn,
            rule,
            &key,
            title,
            now,
            (trigger_kind, value, threshold),
            breaker_id,
        )
        .await?;
        let alert =
            model::add_event(conn, alert_id, "firing", None, &channels, &rules, now).await?;
        notices.push(notice("firing", alert));
        let alert = resolve(conn, alert_id, now, &channels, &rules).await?;
        notices.push(notice("resolved", alert));
    }
    Ok(notices)
}
