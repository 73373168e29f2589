//! Auto mode: the server applies the engine's suggestions to a breaker by itself, within the
//! guardrails an admin set, one canary instance first.
//!
//! A step for one breaker ([`step`]), run by the background task for every breaker in auto
//! mode and by `POST …/auto/run`:
//! 1. With a change on its canary: count the canary instance's openings since the change and
//!    which of them were *false trips* — openings while no peer instance (still on the
//!    previous config, so a control group) opened within 30 s; with no peer, openings beyond
//!    those of the same time before the change. More false trips than allowed: roll back (the
//!    previous config again, as a newer version, for every instance). Canary time over: promote
//!    (the change reaches every instance under the version the canary runs).
//! 2. Otherwise, after the cooldown: run the engine over the breaker's history, clamp the
//!    suggestion into the guardrails (bounds per parameter, a maximum relative change per
//!    step), and start a canary on the instance that most recently reported its config.
//!
//! Every change is audited (actor `auto-tuner`) and raises an `auto_tune` alert notice; an
//! admin's own config change cancels a running canary.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use protocol::{
    AutoTuneChange, AutoTuneSettings, AutoTuneStep, AutoTuneView, BreakerConfig, ErrorBody,
    WaitConfig, WindowConfig,
};
use sqlx::Row;

use crate::auth::{Admin, Viewer};
use crate::configs::{self, AutoEnd, NewVersion};
use crate::error::AppError;
use crate::extract::{JsonBody, Path};
use crate::state::AppState;
use crate::time::now_ms;

/// Who automatic changes are audited as.
pub const ACTOR: &str = "auto-tuner";

/// An opening of the canary is false when no peer opens within this long of it.
const PEER_WINDOW_MS: i64 = 30_000;

/// The background task: a step for every breaker in auto mode, every `period`.
pub fn spawn(app: AppState, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let breakers: Vec<(String, String)> = match sqlx::query_as(
                "SELECT b.service, b.name FROM auto_tune a JOIN breakers b ON b.id = a.breaker_id
                 WHERE a.enabled = 1 ORDER BY b.service, b.name",
            )
            .fetch_all(app.store.pool())
            .await
            {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(error = %err, "auto mode: cannot list breakers");
                    continue;
                }
            };
            for (service, breaker) in breakers {
                match step(&app, &service, &breaker).await {
                    Ok(done) => {
                        tracing::debug!(%service, %breaker, action = %done.action, "auto mode")
                    }
                    Err(err) => {
                        tracing::warn!(%service, %breaker, error = %err, "auto mode step failed")
                    }
                }
            }
        }
    })
}

// === guardrails ===

/// Clamps `suggested` into the guardrails around `current`; returns the config and a line
/// per parameter the guardrails changed. The manual mode is always the current one.
pub fn clamp(
    current: &BreakerConfig,
    suggested: &BreakerConfig,
    settings: &AutoTuneSettings,
) -> (BreakerConfig, Vec<String>) {
    let step = settings.max_step;
    let b = &settings.bounds;
    let mut out = suggested.clone();
    // What the engine does not tune stays as it is.
    out.mode = current.mode;
    out.call_timeout_ms = current.call_timeout_ms;
    out.half_open_max_wait_ms = current.half_open_max_wait_ms;
    let mut notes = Vec::new();
    let mut note = |name: &str, wanted: String, got: String, why: &str| {
        if wanted != got {
            notes.push(format!("{name}: {wanted} → {got} ({why})"));
        }
    };
    // A relative step from the current value, then the bounds.
    let clamp_f = |cur: Option<f64>, want: f64, [lo, hi]: [f64; 2]| -> (f64, &'static str) {
        let mut v = want;
        let mut why = "";
        if let Some(cur) = cur {
            let (a, z) = (cur * (1.0 - step).max(0.0), cur * (1.0 + step));
            if v < a || v > z {
                v = v.clamp(a, z);
                why = "maximum step";
            }
        }
        if v < lo || v > hi {
            v = v.clamp(lo, hi);
            why = "bounds";
        }
        ((v * 1e4).round() / 1e4, why)
    };
    let clamp_u = |cur: Option<u64>, want: u64, [lo, hi]: [u64; 2]| -> (u64, &'static str) {
        let (v, why) = clamp_f(cur.map(|c| c as f64), want as f64, [lo as f64, hi as f64]);
        (v.round().max(1.0) as u64, why)
    };

    if let Some(want) = suggested.failure_rate_threshold {
        let (v, why) = clamp_f(
            current.failure_rate_threshold,
            want,
            b.failure_rate_threshold,
        );
        note(
            "failure_rate_threshold",
            want.to_string(),
            v.to_string(),
            why,
        );
        out.failure_rate_threshold = Some(v);
    }
    if let Some(want) = suggested.slow_call_rate_threshold {
        let (v, why) = clamp_f(
            current.slow_call_rate_threshold,
            want,
            b.slow_call_rate_threshold,
        );
        note(
            "slow_call_rate_threshold",
            want.to_string(),
            v.to_string(),
            why,
        );
        out.slow_call_rate_threshold = Some(v);
    }
    if let (Some(want), Some(cur)) = (
        suggested.slow_call_duration_ms,
        current.slow_call_duration_ms,
    ) {
        let (v, why) = clamp_u(Some(cur), want, [1, u64::MAX]);
        note(
            "slow_call_duration_ms",
            want.to_string(),
            v.to_string(),
            why,
        );
        out.slow_call_duration_ms = Some(v);
    }
    if let Some(want) = suggested.consecutive_failures {
        let [lo, hi] = b.consecutive_failures;
        let (v, why) = clamp_u(
            current.consecutive_failures.map(u64::from),
            u64::from(want),
            [u64::from(lo), u64::from(hi)],
        );
        note("consecutive_failures", want.to_string(), v.to_string(), why);
        out.consecutive_failures = Some(v as u32);
    }
    // Auto mode never leaves a breaker without a failure policy it had.
    let mut kept_policy = false;
    if out.failure_rate_threshold.is_none() && out.consecutive_failures.is_none() {
        out.failure_rate_threshold = current.failure_rate_threshold;
        out.consecutive_failures = current.consecutive_failures;
        kept_policy = out.failure_rate_threshold.is_some() || out.consecutive_failures.is_some();
    }
    {
        let [lo, hi] = b.minimum_calls;
        let want = suggested.minimum_calls;
        let (v, why) = clamp_u(
            Some(u64::from(current.minimum_calls)),
            u64::from(want),
            [u64::from(lo), u64::from(hi)],
        );
        note("minimum_calls", want.to_string(), v.to_string(), why);
        out.minimum_calls = v as u32;
    }
    out.window = match (current.window, suggested.window) {
        (WindowConfig::Count { calls: cur }, WindowConfig::Count { calls: want }) => {
            let (v, why) = clamp_u(Some(u64::from(cur)), u64::from(want), [1, 1_000_000]);
            note("window.calls", want.to_string(), v.to_string(), why);
            WindowConfig::Count { calls: v as u32 }
        }
        (WindowConfig::Time { seconds: cur }, WindowConfig::Time { seconds: want }) => {
            let (v, why) = clamp_u(Some(u64::from(cur)), u64::from(want), [1, 86_400]);
            note("window.seconds", want.to_string(), v.to_string(), why);
            WindowConfig::Time { seconds: v as u32 }
        }
        // Another kind of window: sizes are not comparable, only the bounds apply.
        (_, WindowConfig::Count { calls }) => WindowConfig::Count {
            calls: calls.clamp(10, 100_000),
        },
        (_, WindowConfig::Time { seconds }) => WindowConfig::Time {
            seconds: seconds.clamp(5, 3_600),
        },
    };
    // Clamped one by one, the minimum calls may exceed a count window: judge on a full window.
    if let WindowConfig::Count { calls } = out.window
        && out.minimum_calls > calls
    {
        note(
            "minimum_calls",
            out.minimum_calls.to_string(),
            calls.to_string(),
            "no more than the window",
        );
        out.minimum_calls = calls;
    }
    let current_wait = match current.wait {
        WaitConfig::Fixed { ms } => ms,
        WaitConfig::Exponential { initial_ms, .. } => initial_ms,
    };
    out.wait = match suggested.wait {
        WaitConfig::Fixed { ms } => {
            let (v, why) = clamp_u(Some(current_wait), ms, b.wait_ms);
            note("wait.ms", ms.to_string(), v.to_string(), why);
            WaitConfig::Fixed { ms: v }
        }
        WaitConfig::Exponential {
            initial_ms,
            multiplier,
            max_ms,
            jitter,
        } => {
            let multiplier = match current.wait {
                WaitConfig::Exponential { multiplier, .. } => multiplier,
                WaitConfig::Fixed { .. } => multiplier.clamp(1.0, 4.0),
            };
            let (initial, why) = clamp_u(Some(current_wait), initial_ms, b.wait_ms);
            note(
                "wait.initial_ms",
                initial_ms.to_string(),
                initial.to_string(),
                why,
            );
            let [_, hi] = b.wait_ms;
            let max = max_ms.clamp(initial, hi);
            note("wait.max_ms", max_ms.to_string(), max.to_string(), "bounds");
            WaitConfig::Exponential {
                initial_ms: initial,
                multiplier,
                max_ms: max,
                jitter,
            }
        }
    };
    if kept_policy {
        notes.push("failure policy kept: auto mode does not turn the last one off".into());
    }
    (out, notes)
}

/// Whether two configs set the same thresholds (versions aside).
fn same_thresholds(a: &BreakerConfig, b: &BreakerConfig) -> bool {
    let mut b = b.clone();
    b.version = a.version;
    *a == b
}

// === store ===

/// A breaker's auto-mode row: settings, who set them and when, and the last engine run.
struct Row_ {
    settings: AutoTuneSettings,
    updated_by: Option<String>,
    updated_ms: Option<i64>,
    last_run_ms: Option<i64>,
}

async fn settings(app: &AppState, breaker_id: i64) -> Result<Row_, AppError> {
    let row = sqlx::query(
        "SELECT settings, updated_by, updated_ms, last_run_ms FROM auto_tune WHERE breaker_id = ?",
    )
    .bind(breaker_id)
    .fetch_optional(app.store.pool())
    .await?;
    Ok(match row {
        None => Row_ {
            settings: AutoTuneSettings::default(),
            updated_by: None,
            updated_ms: None,
            last_run_ms: None,
        },
        Some(row) => Row_ {
            settings: json_column(&row, 0)?,
            updated_by: row.get(1),
            updated_ms: row.get(2),
            last_run_ms: row.get(3),
        },
    })
}

fn json_column<T: serde::de::DeserializeOwned>(
    row: &sqlx::sqlite::SqliteRow,
    idx: usize,
) -> Result<T, AppError> {
    serde_json::from_str(&row.get::<String, _>(idx)).map_err(|err| {
        AppError::Internal(anyhow::anyhow!(
            "a stored auto-mode row does not parse: {err}"
        ))
    })
}

fn change_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<AutoTuneChange, AppError> {
    Ok(AutoTuneChange {
        id: row.get(0),
        recommendation_id: row.get(1),
        status: row.get(2),
        canary_instance: row.get(3),
        peers: json_column(row, 4)?,
        version: row.get::<i64, _>(5) as u64,
        base_version: row.get::<i64, _>(6) as u64,
        config: json_column(row, 7)?,
        clamped: json_column(row, 8)?,
        started_ms: row.get(9),
        canary_ends_ms: row.get(10),
        canary_openings: row.get::<i64, _>(11) as u32,
        false_trips: row.get::<i64, _>(12) as u32,
        ended_ms: row.get(13),
        outcome: row.get(14),
    })
}

/// The breaker's latest `limit` automatic changes, newest first.
async fn changes(
    app: &AppState,
    breaker_id: i64,
    limit: i64,
) -> Result<Vec<AutoTuneChange>, AppError> {
    select_changes(app, breaker_id, None, limit).await
}

/// One automatic change of the breaker.
async fn change(
    app: &AppState,
    breaker_id: i64,
    change_id: i64,
) -> Result<AutoTuneChange, AppError> {
    select_changes(app, breaker_id, Some(change_id), 1)
        .await?
        .pop()
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("automatic change {change_id} is gone")))
}

async fn select_changes(
    app: &AppState,
    breaker_id: i64,
    change_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AutoTuneChange>, AppError> {
    let rows = sqlx::query(
        "SELECT id, recommendation_id, status, canary_instance, peers, version, base_version,
                config, clamped, started_ms, canary_ends_ms, canary_openings, false_trips,
                ended_ms, outcome
         FROM auto_tune_changes WHERE breaker_id = ?1 AND (?2 IS NULL OR id = ?2)
         ORDER BY id DESC LIMIT ?3",
    )
    .bind(breaker_id)
    .bind(change_id)
    .bind(limit)
    .fetch_all(app.store.pool())
    .await?;
    rows.iter().map(change_from_row).collect()
}

/// How a change ended, its alert notice, and the new config version that ends it — one
/// transaction — then the long polls and the alert stream are told.
struct Ending<'a> {
    change: &'a AutoTuneChange,
    end: AutoEnd,
    actor: &'a str,
    outcome: String,
    title: String,
    trigger: (&'a str, f64, f64),
}

async fn end_change(
    app: &AppState,
    breaker: (i64, &str, &str),
    ending: Ending<'_>,
) -> Result<u64, AppError> {
    let (id, service, name) = breaker;
    let config = match ending.end {
        AutoEnd::Promoted => ending.change.config.clone(),
        AutoEnd::RolledBack => {
            configs::current(&app.store, id)
                .await?
                .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the base config is gone")))?
                .config
        }
    };
    let (action, reason) = match ending.end {
        AutoEnd::Promoted => (
            "auto-promote",
            format!("auto mode promoted its canary: {}", ending.outcome),
        ),
        AutoEnd::RolledBack => (
            "auto-rollback",
            format!(
                "auto mode rolled back version {}: {}",
                ending.change.version, ending.outcome
            ),
        ),
    };
    let mut tx = app.store.begin().await?;
    let (_, stored) = configs::save_version_in(
        &mut tx,
        NewVersion {
            service,
            breaker: name,
            config,
            actor: ending.actor,
            action,
            reason,
            ends_auto_change: Some((ending.change.id, ending.end)),
        },
    )
    .await?;
    sqlx::query("UPDATE auto_tune_changes SET outcome = ? WHERE id = ?")
        .bind(&ending.outcome)
        .bind(ending.change.id)
        .execute(&mut *tx)
        .await?;
    let notices =
        crate::alerts::engine::auto_tune_notice(&mut tx, breaker, &ending.title, ending.trigger)
            .await?;
    tx.commit().await?;
    app.configs.notify(id, stored.config.version);
    app.alerts.committed(notices);
    Ok(stored.config.version)
}

/// Rolls a change back: the config every other instance runs, as a newer version for all.
async fn roll_back(
    app: &AppState,
    breaker: (i64, &str, &str),
    change: &AutoTuneChange,
    actor: &str,
    outcome: String,
    trigger: (&str, f64, f64),
) -> Result<AutoTuneStep, AppError> {
    let (id, service, name) = breaker;
    let title = format!(
        "Auto mode rolled back {service}/{name} version {}: {outcome}",
        change.version
    );
    let version = end_change(
        app,
        breaker,
        Ending {
            change,
            end: AutoEnd::RolledBack,
            actor,
            outcome: outcome.clone(),
            title,
            trigger,
        },
    )
    .await?;
    Ok(done(
        "rolled_back",
        format!("{outcome}; every instance gets version {version}"),
        Some(self::change(app, id, change.id).await?),
    ))
}

/// Openings (Closed → Open) of `instance` running `version` in `[from_ms, to_ms)`.
async fn openings(
    app: &AppState,
    breaker_id: i64,
    instance: &str,
    version: Option<u64>,
    (from_ms, to_ms): (i64, i64),
) -> Result<Vec<i64>, AppError> {
    Ok(sqlx::query_scalar(
        "SELECT at_ms FROM transitions
         WHERE breaker_id = ?1 AND instance = ?2 AND from_state = 'closed' AND to_state = 'open'
           AND (?5 IS NULL OR config_version = ?5) AND at_ms >= ?3 AND at_ms < ?4 ORDER BY at_ms",
    )
    .bind(breaker_id)
    .bind(instance)
    .bind(from_ms)
    .bind(to_ms)
    .bind(version.map(|v| v as i64))
    .fetch_all(app.store.pool())
    .await?)
}

/// The canary's openings on the change's version since it started, and how many were false.
async fn judge_canary(
    app: &AppState,
    breaker_id: i64,
    change: &AutoTuneChange,
    now: i64,
) -> Result<(u32, u32), AppError> {
    let Some(canary) = &change.canary_instance else {
        return Ok((0, 0));
    };
    let own = openings(
        app,
        breaker_id,
        canary,
        Some(change.version),
        (change.started_ms, now + 1),
    )
    .await?;
    let n = own.len() as u32;
    if change.peers.is_empty() {
        let span = (now - change.started_ms).max(0);
        let before = openings(
            app,
            breaker_id,
            canary,
            None,
            (change.started_ms - span, change.started_ms),
        )
        .await?
        .len() as u32;
        return Ok((n, n.saturating_sub(before)));
    }
    let peers = serde_json::to_string(&change.peers).map_err(anyhow::Error::from)?;
    let mut false_trips = 0;
    for at in own {
        let peers_opened: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM transitions
             WHERE breaker_id = ? AND instance IN (SELECT value FROM json_each(?))
               AND from_state = 'closed' AND to_state = 'open' AND at_ms >= ? AND at_ms <= ?",
        )
        .bind(breaker_id)
        .bind(&peers)
        .bind(at - PEER_WINDOW_MS)
        .bind(at + PEER_WINDOW_MS)
        .fetch_one(app.store.pool())
        .await?;
        if peers_opened == 0 {
            false_trips += 1;
        }
    }
    Ok((n, false_trips))
}

// === the step ===

fn done(action: &str, detail: String, change: Option<AutoTuneChange>) -> AutoTuneStep {
    AutoTuneStep {
        action: action.into(),
        detail,
        change,
    }
}

/// One auto-mode step for a breaker (see the module documentation).
pub async fn step(app: &AppState, service: &str, breaker: &str) -> Result<AutoTuneStep, AppError> {
    let id = app.store.breaker(service, breaker).await?;
    let row = settings(app, id).await?;
    let settings = row.settings;
    let now = now_ms();
    let latest = changes(app, id, 1).await?.pop();
    let canary = latest.clone().filter(|c| c.status == "canary");
    if !settings.enabled {
        // A canary left behind (auto mode was switched off while it ran) goes back.
        if let Some(change) = canary {
            return roll_back(
                app,
                (id, service, breaker),
                &change,
                ACTOR,
                "rolled back: auto mode is off".into(),
                ("auto_off", 0.0, 0.0),
            )
            .await;
        }
        return Ok(done(
            "off",
            format!("{service}/{breaker} is not in auto mode"),
            None,
        ));
    }
    if let Some(change) = canary {
        return judge(app, (id, service, breaker), &settings, change, now).await;
    }
    // The cooldown runs from the last change and from the last engine run alike, so a
    // breaker whose suggestion was not applied is not re-learned on every tick.
    let last = latest
        .as_ref()
        .map(|c| c.started_ms)
        .into_iter()
        .chain(row.last_run_ms)
        .max();
    if let Some(last) = last {
        let next = last.saturating_add(settings.cooldown_ms);
        if now < next {
            return Ok(done(
                "cooldown",
                format!(
                    "the last automatic change or engine run was {} s ago; the cooldown ends in {} s",
                    (now - last) / 1_000,
                    (next - now + 999) / 1_000
                ),
                None,
            ));
        }
    }
    let current = configs::current(&app.store, id)
        .await?
        .ok_or_else(|| AppError::Conflict {
            detail: format!(
                "the server holds no config for {service}/{breaker}; auto mode changes a config it holds"
            ),
        })?;
    if current
        .config
        .mode
        .is_some_and(|m| m != protocol::BreakerMode::Automatic)
    {
        return Ok(done(
            "manual_mode",
            "the breaker is in a manual mode an admin set; auto mode leaves it alone".into(),
            None,
        ));
    }
    sqlx::query("UPDATE auto_tune SET last_run_ms = ? WHERE breaker_id = ?")
        .bind(now)
        .bind(id)
        .execute(app.store.pool())
        .await?;
    // Dropped with this step's future (the admin's request went away, or the server stopped
    // auto mode's task): the run stops too.
    let (job, _cancel_on_drop) = app.engine.job();
    let rec =
        crate::tuning::recommend::recommend(&app.store, service, breaker, settings.days, &job)
            .await?;
    if rec.confidence < settings.min_confidence {
        return Ok(done(
            "low_confidence",
            format!(
                "recommendation {} has confidence {:.2}, below the {:.2} auto mode needs; it is left for an admin",
                rec.id, rec.confidence, settings.min_confidence
            ),
            None,
        ));
    }
    let (mut config, clamped) = clamp(&current.config, &rec.suggested, &settings);
    if same_thresholds(&current.config, &config) {
        return Ok(done(
            "no_change",
            format!(
                "recommendation {} (within the guardrails) is the current config",
                rec.id
            ),
            None,
        ));
    }
    if !rec.doubts.is_empty() {
        return Ok(done(
            "low_confidence",
            format!(
                "recommendation {} is in doubt ({}); it is left for an admin",
                rec.id,
                rec.doubts.join("; ")
            ),
            None,
        ));
    }
    configs::check(&config)?;
    // The canary: the instance that reported its config most recently (it listens for
    // configs); every other known instance is a peer.
    let subscribed: Vec<String> = sqlx::query_scalar(
        "SELECT instance FROM config_status WHERE breaker_id = ? ORDER BY reported_ms DESC, instance",
    )
    .bind(id)
    .fetch_all(app.store.pool())
    .await?;
    let mut peers: Vec<String> = {
        let fleet = app.fleet.read().expect("fleet lock poisoned");
        fleet
            .summary(&(service.to_string(), breaker.to_string()))
            .map(|s| s.instances.into_iter().map(|i| i.instance).collect())
            .unwrap_or_default()
    };
    for instance in &subscribed {
        if !peers.contains(instance) {
            peers.push(instance.clone());
        }
    }
    let canary = subscribed.first().cloned();
    peers.retain(|p| Some(p) != canary.as_ref());
    peers.sort();

    let mut tx = app.store.begin().await?;
    // The engine ran outside any transaction: the config must still be the one the suggestion
    // changes (an admin may have saved another, or another step started a canary).
    let version = configs::next_version(&mut tx, id).await?;
    if version != current.config.version + 1 {
        return Ok(done(
            "superseded",
            format!(
                "the config changed while the engine ran (version {} is taken); the next step starts over",
                version - 1
            ),
            None,
        ));
    }
    config.version = version;
    let text = serde_json::to_string(&config).map_err(anyhow::Error::from)?;
    let change_id: i64 = sqlx::query_scalar(
        "INSERT INTO auto_tune_changes (breaker_id, recommendation_id, status, canary_instance,
             peers, version, base_version, config, clamped, started_ms, canary_ends_ms)
         VALUES (?, ?, 'canary', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(id)
    .bind(rec.id)
    .bind(&canary)
    .bind(serde_json::to_string(&peers).map_err(anyhow::Error::from)?)
    .bind(version as i64)
    .bind(current.config.version as i64)
    .bind(&text)
    .bind(serde_json::to_string(&clamped).map_err(anyhow::Error::from)?)
    .bind(now)
    .bind(now.saturating_add(settings.canary_ms))
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE recommendations SET status = 'accepted', decided_by = ?, decided_ms = ?, applied_version = ?
         WHERE id = ?",
    )
    .bind(ACTOR)
    .bind(now)
    .bind(version as i64)
    .bind(rec.id)
    .execute(&mut *tx)
    .await?;
    let what = match &canary {
        Some(instance) => format!(
            "version {version} from recommendation {} on canary instance {instance} for {} s before {} other instance(s)",
            rec.id,
            settings.canary_ms / 1_000,
            peers.len()
        ),
        None => format!(
            "version {version} from recommendation {} applied to every instance at once: none listens for configs yet",
            rec.id
        ),
    };
    let guardrails = if clamped.is_empty() {
        "none applied".to_string()
    } else {
        clamped.join("; ")
    };
    configs::write_audit(
        &mut tx,
        configs::Audit {
            actor: ACTOR,
            action: "auto-canary",
            service: Some(service),
            breaker: Some(breaker),
            detail: format!("{what}; guardrails: {guardrails} ({text})"),
        },
    )
    .await?;
    let (action, title, trigger) = match &canary {
        Some(instance) => (
            "canary_started",
            format!(
                "Auto mode started a canary of {service}/{breaker} config version {version} on {instance}"
            ),
            ("auto_canary", version as f64, 0.0),
        ),
        None => {
            // Nobody to try it on first: the change is promoted at once.
            configs::save_version_in(
                &mut tx,
                NewVersion {
                    service,
                    breaker,
                    config: config.clone(),
                    actor: ACTOR,
                    action: "auto-promote",
                    reason: format!("auto mode applied recommendation {}", rec.id),
                    ends_auto_change: Some((change_id, AutoEnd::Promoted)),
                },
            )
            .await?;
            sqlx::query("UPDATE auto_tune_changes SET outcome = ? WHERE id = ?")
                .bind("applied to every instance at once: none listened for configs")
                .bind(change_id)
                .execute(&mut *tx)
                .await?;
            (
                "applied",
                format!("Auto mode changed {service}/{breaker} to config version {version}"),
                ("auto_applied", version as f64, 0.0),
            )
        }
    };
    let notices =
        crate::alerts::engine::auto_tune_notice(&mut tx, (id, service, breaker), &title, trigger)
            .await?;
    tx.commit().await?;
    app.configs.notify(id, version);
    app.alerts.committed(notices);
    Ok(done(action, what, Some(change(app, id, change_id).await?)))
}

/// Judges a change on its canary: roll back, promote, or keep waiting.
async fn judge(
    app: &AppState,
    breaker: (i64, &str, &str),
    settings: &AutoTuneSettings,
    change: AutoTuneChange,
    now: i64,
) -> Result<AutoTuneStep, AppError> {
    let (id, service, name) = breaker;
    let (n_openings, false_trips) = judge_canary(app, id, &change, now).await?;
    sqlx::query("UPDATE auto_tune_changes SET canary_openings = ?, false_trips = ? WHERE id = ?")
        .bind(i64::from(n_openings))
        .bind(i64::from(false_trips))
        .bind(change.id)
        .execute(app.store.pool())
        .await?;
    let change = AutoTuneChange {
        canary_openings: n_openings,
        false_trips,
        ..change
    };
    let canary = change.canary_instance.clone().unwrap_or_default();
    if false_trips > settings.max_false_trips {
        let outcome = format!(
            "rolled back: canary {canary} opened {n_openings} time(s) on version {}, {false_trips} \
             of them while its peers stayed closed (allowed {})",
            change.version, settings.max_false_trips
        );
        return roll_back(
            app,
            breaker,
            &change,
            ACTOR,
            outcome,
            (
                "false_trips",
                f64::from(false_trips),
                f64::from(settings.max_false_trips),
            ),
        )
        .await;
    }
    // Only what the canary ran is promoted: it must say it runs the change.
    let running: Option<i64> = sqlx::query_scalar(
        "SELECT running_version FROM config_status WHERE breaker_id = ? AND instance = ?",
    )
    .bind(id)
    .bind(&canary)
    .fetch_optional(app.store.pool())
    .await?;
    let runs_it = running == Some(change.version as i64);
    if now < change.canary_ends_ms || !runs_it {
        // A canary that never takes the change (it stopped, or polls without its name) is
        // given one more canary period, then rolled back unjudged.
        let grace_end = change
            .canary_ends_ms
            .saturating_add(settings.canary_ms.max(60_000));
        if !runs_it && now >= grace_end {
            let outcome = format!(
                "rolled back unjudged: canary {canary} never reported running version {}",
                change.version
            );
            return roll_back(
                app,
                breaker,
                &change,
                ACTOR,
                outcome,
                ("canary_silent", 0.0, 0.0),
            )
            .await;
        }
        let wait = if runs_it {
            format!("{} s to go", (change.canary_ends_ms - now + 999) / 1_000)
        } else {
            format!("waiting for {canary} to report running it")
        };
        return Ok(done(
            "canary_running",
            format!(
                "version {} on {canary}: {n_openings} opening(s), {false_trips} false; {wait}",
                change.version
            ),
            Some(change),
        ));
    }
    let outcome = format!(
        "promoted: canary {canary} ran it {} s with {n_openings} opening(s), {false_trips} false",
        (now - change.started_ms) / 1_000
    );
    let title = format!(
        "Auto mode promoted {service}/{name} config version {} to every instance",
        change.version
    );
    end_change(
        app,
        breaker,
        Ending {
            change: &change,
            end: AutoEnd::Promoted,
            actor: ACTOR,
            outcome: outcome.clone(),
            title,
            trigger: ("auto_promoted", change.version as f64, 0.0),
        },
    )
    .await?;
    Ok(done(
        "promoted",
        outcome,
        Some(self::change(app, id, change.id).await?),
    ))
}

// === handlers ===

async fn view(app: &AppState, service: String, breaker: String) -> Result<AutoTuneView, AppError> {
    let id = app.store.breaker(&service, &breaker).await?;
    let row = settings(app, id).await?;
    let changes = changes(app, id, 20).await?;
    Ok(AutoTuneView {
        service,
        breaker,
        settings: row.settings,
        updated_by: row.updated_by,
        updated_ms: row.updated_ms,
        canary: changes.iter().find(|c| c.status == "canary").cloned(),
        changes,
    })
}

#[utoipa::path(get, path = "/api/v1/breakers/{service}/{breaker}/auto", tag = "engine",
    params(("service" = String, Path), ("breaker" = String, Path)),
    responses((status = 200, description = "Auto-mode settings, the canary and the latest automatic changes", body = AutoTuneView),
        (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
) -> Result<Json<AutoTuneView>, AppError> {
    Ok(Json(view(&app, service, breaker).await?))
}

#[utoipa::path(put, path = "/api/v1/breakers/{service}/{breaker}/auto", tag = "engine",
    params(("service" = String, Path), ("breaker" = String, Path)),
    request_body = AutoTuneSettings,
    responses((status = 200, description = "Saved (and audited); switching off rolls a canary back", body = AutoTuneView),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A setting out of range; `path` names it", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put(
    State(app): State<AppState>,
    admin: Admin,
    Path((service, breaker)): Path<(String, String)>,
    JsonBody(new): JsonBody<AutoTuneSettings>,
) -> Result<Json<AutoTuneView>, AppError> {
    new.check()
        .map_err(|(path, detail)| AppError::Invalid { detail, path })?;
    let id = app.store.breaker(&service, &breaker).await?;
    let now = now_ms();
    let text = serde_json::to_string(&new).map_err(anyhow::Error::from)?;
    let mut tx = app.store.begin().await?;
    sqlx::query(
        "INSERT INTO auto_tune (breaker_id, settings, enabled, updated_by, updated_ms)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (breaker_id) DO UPDATE SET settings = excluded.settings,
             enabled = excluded.enabled, updated_by = excluded.updated_by,
             updated_ms = excluded.updated_ms",
    )
    .bind(id)
    .bind(&text)
    .bind(new.enabled)
    .bind(&admin.name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    configs::write_audit(
        &mut tx,
        configs::Audit {
            actor: &admin.name,
            action: "auto-mode",
            service: Some(&service),
            breaker: Some(&breaker),
            detail: format!(
                "auto mode {}: {text}",
                if new.enabled { "on" } else { "off" }
            ),
        },
    )
    .await?;
    tx.commit().await?;
    // Switched off with a change on its canary: the canary goes back to the config every other
    // instance runs. Should this fail, the next step (which sees auto mode off) does it.
    if !new.enabled
        && let Some(change) = changes(&app, id, 1)
            .await?
            .pop()
            .filter(|c| c.status == "canary")
    {
        roll_back(
            &app,
            (id, &service, &breaker),
            &change,
            &admin.name,
            format!("rolled back: {} switched auto mode off", admin.name),
            ("auto_off", 0.0, 0.0),
        )
        .await?;
    }
    Ok(Json(view(&app, service, breaker).await?))
}

#[utoipa::path(post, path = "/api/v1/breakers/{service}/{breaker}/auto/run", tag = "engine",
    params(("service" = String, Path), ("breaker" = String, Path)),
    responses((status = 200, description = "What the step did", body = AutoTuneStep),
        (status = 404, body = ErrorBody),
        (status = 503, description = "The engine ran out of its time budget (`engine_budget_exceeded`, \
            with Retry-After) or the server is stopping", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn run(
    State(app): State<AppState>,
    _: Admin,
    Path((service, breaker)): Path<(String, String)>,
) -> Result<Json<AutoTuneStep>, AppError> {
    Ok(Json(step(&app, &service, &breaker).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: f64, min_calls: u32, wait_ms: u64) -> BreakerConfig {
        BreakerConfig {
            version: 3,
            failure_rate_threshold: Some(rate),
            slow_call_rate_threshold: None,
            slow_call_duration_ms: None,
            consecutive_failures: None,
            window: WindowConfig::Count { calls: 100 },
            minimum_calls: min_calls,
            wait: WaitConfig::Fixed { ms: wait_ms },
            half_open_probes: 1,
            half_open_successes: 1,
            half_open_rule: Default::default(),
            half_open_max_wait_ms: None,
            call_timeout_ms: None,
            mode: None,
        }
    }

    #[test]
    fn a_suggestion_within_the_guardrails_is_kept() {
        let settings = AutoTuneSettings::default();
        let (out, notes) = clamp(
            &config(0.5, 20, 10_000),
            &config(0.4, 25, 12_000),
            &settings,
        );
        assert_eq!(out.failure_rate_threshold, Some(0.4));
        assert_eq!(out.minimum_calls, 25);
        assert_eq!(out.wait, WaitConfig::Fixed { ms: 12_000 });
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn a_large_step_is_cut_to_the_maximum_step_and_the_bounds() {
        let mut settings = AutoTuneSettings {
            max_step: 0.5,
            ..AutoTuneSettings::default()
        };
        settings.bounds.wait_ms = [1_000, 15_000];
        let (out, notes) = clamp(
            &config(0.5, 20, 10_000),
            &config(0.05, 200, 60_000),
            &settings,
        );
        assert_eq!(out.failure_rate_threshold, Some(0.25));
        assert_eq!(out.minimum_calls, 30);
        // +50 % would be 15 s, which the bounds allow; 60 s is cut to that.
        assert_eq!(out.wait, WaitConfig::Fixed { ms: 15_000 });
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].starts_with("failure_rate_threshold: 0.05 → 0.25 (maximum step)"));
    }

    #[test]
    fn minimum_calls_never_exceed_a_count_window_after_clamping() {
        let settings = AutoTuneSettings::default();
        let mut current = config(0.5, 250, 10_000);
        current.window = WindowConfig::Count { calls: 400 };
        let mut suggested = config(0.5, 250, 10_000);
        suggested.window = WindowConfig::Count { calls: 100 };
        let (out, notes) = clamp(&current, &suggested, &settings);
        assert_eq!(out.window, WindowConfig::Count { calls: 200 });
        assert_eq!(out.minimum_calls, 200);
        assert!(crate::configs::check(&out).is_ok());
        assert_eq!(notes.len(), 2, "{notes:?}");
    }

    #[test]
    fn the_bounds_hold_even_within_a_step() {
        let mut settings = AutoTuneSettings::default();
        settings.bounds.failure_rate_threshold = [0.3, 0.6];
        let (out, notes) = clamp(
            &config(0.4, 20, 10_000),
            &config(0.25, 20, 10_000),
            &settings,
        );
        assert_eq!(out.failure_rate_threshold, Some(0.3));
        assert_eq!(notes, vec!["failure_rate_threshold: 0.25 → 0.3 (bounds)"]);
    }

    #[test]
    fn the_last_failure_policy_and_the_manual_mode_are_kept() {
        let settings = AutoTuneSettings::default();
        let mut current = config(0.5, 20, 10_000);
        current.mode = Some(protocol::BreakerMode::MetricsOnly);
        let mut suggested = config(0.5, 20, 10_000);
        suggested.failure_rate_threshold = None;
        let (out, notes) = clamp(&current, &suggested, &settings);
        assert_eq!(out.failure_rate_threshold, Some(0.5));
        assert_eq!(out.mode, Some(protocol::BreakerMode::MetricsOnly));
        assert_eq!(notes.len(), 1);
        assert!(same_thresholds(&current, &out));
    }

    #[test]
    fn settings_out_of_range_name_their_path() {
        let mut settings = AutoTuneSettings::default();
        settings.bounds.failure_rate_threshold = [0.6, 0.3];
        assert_eq!(
            settings.check().unwrap_err().0,
            "$.bounds.failure_rate_threshold"
        );
        let settings = AutoTuneSettings {
            canary_ms: 10,
            ..AutoTuneSettings::default()
        };
        assert_eq!(settings.check().unwrap_err().0, "$.canary_ms");
    }
}
