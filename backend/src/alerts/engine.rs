//! The alert engine: reads transitions from the store by id after a persisted cursor, keeps
//! its own view of every instance's state, and opens, extends and resolves alerts.
//!
//! Each page of transitions is evaluated in one transaction with the outbox rows it creates
//! and the cursor's move, so a restart neither loses nor repeats an alert. The hub only wakes
//! the engine (it may drop news when lagging); a one-second timer wakes it too, and evaluates
//! the rules that depend on time (open longer than D, the end of flapping).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use protocol::{AlertNotice, AlertRule, AlertRuleKind, State, StreamEvent};
use tokio::sync::broadcast;

use crate::alerts::Alerts;
use crate::alerts::model::{self, EventKind};
use crate::alerts::rules::{self, ChannelRow};
use crate::alerts::store;
use crate::alerts::store::engine::{NewAlert, Transition};
use crate::ingest::hub::News;
use crate::store::{Store, StoreError, Tx};

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

/// What one transaction decided, told to the stream once it commits.
#[derive(Default)]
struct Outcome {
    notices: Vec<AlertNotice>,
}

// === impl Engine ===

impl Engine {
    pub async fn run(self, mut live: broadcast::Receiver<News>) {
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
                    Ok(news)
                        if !news
                            .iter()
                            .any(|p| matches!(p.event, StreamEvent::Transition(_))) =>
                    {
                        continue;
                    }
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
            if !store::engine::behind(&self.store).await? {
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
        let channels = store::rules::load_channels(&self.store).await?;
        // `begin` takes the write lock at once (BEGIN IMMEDIATE): the cursor read below
        // cannot go stale before this transaction commits.
        let mut tx = self.store.begin().await?;
        let cursor = store::engine::cursor(&mut tx).await?;
        let transitions = store::engine::transitions_after(&mut tx, cursor, PAGE).await?;
        let n = transitions.len() as i64;
        let mut outcome = Outcome::default();
        let mut last = cursor;
        for transition in transitions {
            let now = self.alerts.now_ms();
            apply(&mut tx, (&rules, &channels), &transition, now, &mut outcome).await?;
            last = transition.id;
        }
        store::engine::set_cursor(&mut tx, last).await?;
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
        let now = self.alerts.now_ms();
        self.refresh_alertmanager(now).await?;
        let rules = active_rules(&self.store).await?;
        let longest_wanted = rules
            .iter()
            .filter(|r| r.kind == AlertRuleKind::OpenLonger)
            .filter_map(|r| r.for_ms)
            .min();
        let n_flapping = store::engine::count_firing_flapping(&self.store).await?;
        let n_due = match longest_wanted {
            None => 0,
            Some(for_ms) => store::engine::count_incidents_since(&self.store, now - for_ms).await?,
        };
        if n_flapping == 0 && n_due == 0 {
            return Ok(());
        }
        let channels = store::rules::load_channels(&self.store).await?;
        let mut tx = self.store.begin().await?;
        let mut outcome = Outcome::default();
        // Open longer than D.
        for incident in store::engine::incidents(&mut tx).await? {
            let (service, breaker) = (&incident.service, &incident.name);
            let started_ms = incident.started_ms;
            for rule in &rules {
                let Some(for_ms) = rule.for_ms else { continue };
                if rule.kind != AlertRuleKind::OpenLonger
                    || now - started_ms < for_ms
                    || !rules::in_scope(rule, service, breaker)
                {
                    continue;
                }
                let key = breaker_key(service, breaker);
                // Once per incident: not again after it resolved (it resolves only when the
                // incident ends, and a new incident starts later).
                let seen = store::engine::count_alerts_since(&mut tx, &rule.name, &key, started_ms)
                    .await?;
                if seen > 0 {
                    continue;
                }
                let title = format!(
                    "{service}/{breaker} has not been Closed for {}",
                    charts::words::duration(now - started_ms)
                );
                let alert_id = store::engine::open_alert(
                    &mut tx,
                    NewAlert {
                        rule,
                        group_key: &key,
                        title: &title,
                        started_ms,
                        trigger: ("open_for_ms", (now - started_ms) as f64, for_ms as f64),
                        breaker_id: incident.breaker_id,
                    },
                )
                .await?;
                let alert = model::add_event(
                    &mut tx,
                    alert_id,
                    EventKind::Firing,
                    None,
                    &channels,
                    &rules,
                    now,
                )
                .await?;
                outcome.notices.push(notice(EventKind::Firing, alert));
            }
        }
        // The end of flapping: Closed everywhere and no opening within the rule's window.
        for member in store::engine::firing_flapping(&mut tx).await? {
            let within_ms = rules
                .iter()
                .find(|r| r.name == member.rule)
                .and_then(|r| r.within_ms)
                .unwrap_or(0);
            let last_opening = store::engine::last_opening(&mut tx, member.breaker_id).await?;
            if !store::engine::closed_everywhere(&mut tx, member.breaker_id).await?
                || last_opening.is_some_and(|at| at > now - within_ms)
            {
                continue;
            }
            let alert = resolve(&mut tx, member.alert_id, now, &channels, &rules).await?;
            outcome.notices.push(notice(EventKind::Resolved, alert));
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
    Ok(store::outbox::queue_alertmanager_refresh(store, now).await?)
}

/// The enabled rules.
async fn active_rules(store: &Store) -> Result<Vec<AlertRule>, StoreError> {
    Ok(store::rules::load_rules(store)
        .await?
        .into_iter()
        .map(|(rule, _)| rule)
        .filter(|rule| rule.enabled)
        .collect())
}

fn notice(event: EventKind, alert: protocol::Alert) -> AlertNotice {
    AlertNotice {
        event: event.as_str().to_string(),
        alert,
    }
}

fn breaker_key(service: &str, breaker: &str) -> String {
    format!("breaker:{service}/{breaker}")
}

async fn resolve(
    conn: &mut Tx,
    alert_id: i64,
    now: i64,
    channels: &[ChannelRow],
    rules: &[AlertRule],
) -> Result<protocol::Alert, StoreError> {
    store::engine::mark_resolved(conn, alert_id, now).await?;
    model::add_event(
        conn,
        alert_id,
        EventKind::Resolved,
        None,
        channels,
        rules,
        now,
    )
    .await
}

/// The title of a trip alert: the dependency and every service whose breaker of it opened.
async fn trip_title(conn: &mut Tx, alert_id: i64) -> Result<String, StoreError> {
    let members = store::engine::member_names(conn, alert_id).await?;
    let mut names: Vec<&str> = members.iter().map(|(_, name)| name.as_str()).collect();
    names.dedup();
    let services: Vec<&str> = members
        .iter()
        .map(|(service, _)| service.as_str())
        .collect();
    Ok(format!(
        "Breaker {} opened in {}",
        names.join(", "),
        services.join(", ")
    ))
}

/// Evaluates one transition.
async fn apply(
    conn: &mut Tx,
    (rules, channels): (&[AlertRule], &[ChannelRow]),
    t: &Transition,
    now: i64,
    outcome: &mut Outcome,
) -> Result<(), StoreError> {
    let was_closed = store::engine::closed_everywhere(conn, t.breaker_id).await?;
    store::engine::set_instance_state(conn, t.breaker_id, &t.instance, t.to, t.at_ms).await?;
    let is_closed = store::engine::closed_everywhere(conn, t.breaker_id).await?;
    if was_closed && !is_closed {
        store::engine::start_incident(conn, t.breaker_id, t.at_ms).await?;
    } else if !was_closed && is_closed {
        store::engine::end_incident(conn, t.breaker_id).await?;
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
                match store::engine::firing(conn, &rule.name, &key).await? {
                    Some(alert_id) => {
                        if store::engine::add_member(conn, alert_id, t.breaker_id).await? {
                            let title = trip_title(conn, alert_id).await?;
                            store::engine::set_title(conn, alert_id, &title).await?;
                            let detail = format!("{} joined", t.service);
                            let alert = model::add_event(
                                conn,
                                alert_id,
                                EventKind::Updated,
                                Some(&detail),
                                channels,
                                rules,
                                now,
                            )
                            .await?;
                            outcome.notices.push(notice(EventKind::Updated, alert));
                        }
                    }
                    None => {
                        let title = format!("Breaker {} opened in {}", t.breaker, t.service);
                        let alert_id = store::engine::open_alert(
                            conn,
                            NewAlert {
                                rule,
                                group_key: &key,
                                title: &title,
                                started_ms: t.at_ms,
                                trigger,
                                breaker_id: t.breaker_id,
                            },
                        )
                        .await?;
                        let alert = model::add_event(
                            conn,
                            alert_id,
                            EventKind::Firing,
                            None,
                            channels,
                            rules,
                            now,
                        )
                        .await?;
                        outcome.notices.push(notice(EventKind::Firing, alert));
                    }
                }
            }
            AlertRuleKind::Flapping if opened => {
                let (Some(openings), Some(within_ms)) = (rule.openings, rule.within_ms) else {
                    continue;
                };
                let key = breaker_key(&t.service, &t.breaker);
                if store::engine::firing(conn, &rule.name, &key)
                    .await?
                    .is_some()
                {
                    continue;
                }
                let n = store::engine::count_openings(
                    conn,
                    t.breaker_id,
                    (t.at_ms - within_ms, t.at_ms),
                    t.id,
                )
                .await?;
                if n < i64::from(openings) {
                    continue;
                }
                let title = format!(
                    "{}/{} is flapping: {n} openings within {}",
                    t.service,
                    t.breaker,
                    charts::words::duration(within_ms)
                );
                let alert_id = store::engine::open_alert(
                    conn,
                    NewAlert {
                        rule,
                        group_key: &key,
                        title: &title,
                        started_ms: t.at_ms,
                        trigger: ("openings", n as f64, f64::from(openings)),
                        breaker_id: t.breaker_id,
                    },
                )
                .await?;
                let alert = model::add_event(
                    conn,
                    alert_id,
                    EventKind::Firing,
                    None,
                    channels,
                    rules,
                    now,
                )
                .await?;
                outcome.notices.push(notice(EventKind::Firing, alert));
            }
            AlertRuleKind::MinInstances if t.to == State::Open => {
                let Some(min_open) = rule.min_open else {
                    continue;
                };
                let key = breaker_key(&t.service, &t.breaker);
                if store::engine::firing(conn, &rule.name, &key)
                    .await?
                    .is_some()
                {
                    continue;
                }
                let n = store::engine::count_open_instances(conn, t.breaker_id).await?;
                if n < i64::from(min_open) {
                    continue;
                }
                let title = format!("{}/{} is Open on {n} instances", t.service, t.breaker);
                let alert_id = store::engine::open_alert(
                    conn,
                    NewAlert {
                        rule,
                        group_key: &key,
                        title: &title,
                        started_ms: t.at_ms,
                        trigger: ("open_instances", n as f64, f64::from(min_open)),
                        breaker_id: t.breaker_id,
                    },
                )
                .await?;
                let alert = model::add_event(
                    conn,
                    alert_id,
                    EventKind::Firing,
                    None,
                    channels,
                    rules,
                    now,
                )
                .await?;
                outcome.notices.push(notice(EventKind::Firing, alert));
            }
            _ => {}
        }
    }
    if is_closed && !was_closed {
        // Alerts resolve when every breaker they name is Closed on every instance (flapping
        // alerts wait for their window too, on the timer).
        for alert_id in store::engine::firing_resolvable(conn, t.breaker_id).await? {
            if store::engine::count_open_members(conn, alert_id).await? == 0 {
                let alert = resolve(conn, alert_id, now, channels, rules).await?;
                outcome.notices.push(notice(EventKind::Resolved, alert));
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
    conn: &mut Tx,
    breaker: (i64, &str, &str),
    (title, trigger): (&str, (&str, f64, f64)),
    now: i64,
) -> anyhow::Result<Vec<AlertNotice>> {
    let (breaker_id, service, name) = breaker;
    let rules: Vec<AlertRule> = store::rules::load_rules_on(conn)
        .await?
        .into_iter()
        .map(|(rule, _)| rule)
        .filter(|rule| rule.enabled)
        .collect();
    let channels = store::rules::load_channels_on(conn).await?;
    let mut notices = Vec::new();
    for rule in rules
        .iter()
        .filter(|r| r.kind == AlertRuleKind::AutoTune && rules::in_scope(r, service, name))
    {
        let key = format!("auto:{}:{now}", breaker_key(service, name));
        let alert_id = store::engine::open_alert(
            conn,
            NewAlert {
                rule,
                group_key: &key,
                title,
                started_ms: now,
                trigger,
                breaker_id,
            },
        )
        .await?;
        let alert = model::add_event(
            conn,
            alert_id,
            EventKind::Firing,
            None,
            &channels,
            &rules,
            now,
        )
        .await?;
        notices.push(notice(EventKind::Firing, alert));
        let alert = resolve(conn, alert_id, now, &channels, &rules).await?;
        notices.push(notice(EventKind::Resolved, alert));
    }
    Ok(notices)
}
