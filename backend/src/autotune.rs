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
use crate::server::AppState;
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
    out.mode = current.mode;
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
        (_, other) => other,
    };
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

async fn breaker_id(app: &AppState, service: &str, breaker: &str) -> Result<i64, AppError> {
    sqlx::query_scalar("SELECT id FROM breakers WHERE service = ? AND name = ?")
        .bind(service)
        .bind(breaker)
        .fetch_optional(app.store.pool())
        .await?
        .ok_or_else(|| AppError::NotFound {
            detail: format!("no breaker {service}/{breaker}"),
        })
}

async fn settings(
    app: &AppState,
    breaker_id: i64,
) -> Result<(AutoTuneSettings, Option<String>, Option<i64>), AppError> {
    let row =
        sqlx::query("SELECT settings, updated_by, updated_ms FROM auto_tune WHERE breaker_id = ?")
            .bind(breaker_id)
            .fetch_optional(app.store.pool())
            .await?;
    Ok(match row {
        None => (AutoTuneSettings::default(), None, None),
        Some(row) => (
            serde_json::from_str(&row.get::<String, _>(0)).map_err(|err| {
                AppError::Internal(anyhow::anyhow!(
                    "stored auto-mode settings do not parse: {err}"
                ))
            })?,
            row.get(1),
            row.get(2),
        ),
    })
}

fn json_column<T: serde::de::DeserializeOwned>(
    row: &sqlx::sqlite::SqliteRow,
    idx: usize,
) -> Result<T, AppError> {
    serde_json::from_str(&row.get::<String, _>(idx)).map_err(|err| {
        AppError::Internal(anyhow::anyhow!(
            "a stored automatic change does not parse: {err}"
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

async fn changes(
    app: &AppState,
    breaker_id: i64,
    limit: i64,
) -> Result<Vec<AutoTuneChange>, AppError> {
    let rows = sqlx::query(
        "SELECT id, recommendation_id, status, canary_instance, peers, version, base_version,
                config, clamped, started_ms, canary_ends_ms, canary_openings, false_trips,
                ended_ms, outcome
         FROM auto_tune_changes WHERE breaker_id = ? ORDER BY id DESC LIMIT ?",
    )
    .bind(breaker_id)
    .bind(limit)
    .fetch_all(app.store.pool())
    .await?;
    rows.iter().map(change_from_row).collect()
}

async fn set_outcome(app: &AppState, change_id: i64, outcome: &str) -> Result<(), AppError> {
    sqlx::query("UPDATE auto_tune_changes SET outcome = ? WHERE id = ?")
        .bind(outcome)
        .bind(change_id)
        .execute(app.store.pool())
        .await?;
    Ok(())
}

/// Raises the `auto_tune` alert notice of a change, in its own transaction.
async fn notify(
    app: &AppState,
    breaker: (i64, &str, &str),
    title: &str,
    trigger: (&str, f64, f64),
) -> Result<(), AppError> {
    let mut tx = app.store.begin().await?;
    let notices = crate::alerts::engine::auto_tune_notice(&mut tx, breaker, title, trigger).await?;
    tx.commit().await?;
    app.alerts.committed(notices);
    Ok(())
}

/// Openings (Closed → Open) of `instance` in `[from_ms, to_ms)`.
async fn openings(
    app: &AppState,
    breaker_id: i64,
    instance: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<i64>, AppError> {
    Ok(sqlx::query_scalar(
        "SELECT at_ms FROM transitions
         WHERE breaker_id = ? AND instance = ? AND from_state = 'closed' AND to_state = 'open'
           AND at_ms >= ? AND at_ms < ? ORDER BY at_ms",
    )
    .bind(breaker_id)
    .bind(instance)
    .bind(from_ms)
    .bind(to_ms)
    .fetch_all(app.store.pool())
    .await?)
}

/// The canary's openings since the change started, and how many were false.
async fn judge_canary(
    app: &AppState,
    breaker_id: i64,
    change: &AutoTuneChange,
    now: i64,
) -> Result<(u32, u32), AppError> {
    let Some(canary) = &change.canary_instance else {
        return Ok((0, 0));
    };
    let own = openings(app, breaker_id, canary, change.started_ms, now + 1).await?;
    let n = own.len() as u32;
    if change.peers.is_empty() {
        let span = (now - change.started_ms).max(0);
        let before = openings(
            app,
            breaker_id,
            canary,
            change.started_ms - span,
            change.started_ms,
        )
        .await?
        .len() as u32;
        return Ok((n, n.saturating_sub(before)));
    }
    let mut false_trips = 0;
    for at in own {
        let peers_opened: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM transitions
             WHERE breaker_id = ? AND instance != ? AND to_state = 'open'
               AND at_ms >= ? AND at_ms <= ?",
        )
        .bind(breaker_id)
        .bind(canary)
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
    let id = breaker_id(app, service, breaker).await?;
    let (settings, _, _) = settings(app, id).await?;
    if !settings.enabled {
        return Ok(done(
            "off",
            format!("{service}/{breaker} is not in auto mode"),
            None,
        ));
    }
    let now = now_ms();
    let latest = changes(app, id, 1).await?.pop();
    if let Some(change) = latest.clone().filter(|c| c.status == "canary") {
        return judge(app, (id, service, breaker), &settings, change, now).await;
    }
    if let Some(last) = &latest {
        let next = last.started_ms + settings.cooldown_ms;
        if now < next {
            return Ok(done(
                "cooldown",
                format!(
                    "the last automatic change started {} s ago; the cooldown ends in {} s",
                    (now - last.started_ms) / 1_000,
                    (next - now + 999) / 1_000
                ),
                None,
            ));
        }
    }
    let current = configs::current_config(&app.store, id).await?.ok_or_else(|| AppError::Conflict {
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
    let rec = crate::recommend::recommend(&app.store, service, breaker, settings.days).await?;
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
    let (config, clamped) = clamp(&current.config, &rec.suggested, &settings);
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
    let version: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(v), 0) + 1 FROM (
             SELECT MAX(version) AS v FROM breaker_configs WHERE breaker_id = ?1
             UNION ALL SELECT MAX(version) FROM auto_tune_changes WHERE breaker_id = ?1)",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let mut config = config;
    config.version = version as u64;
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
    .bind(version)
    .bind(current.config.version as i64)
    .bind(&text)
    .bind(serde_json::to_string(&clamped).map_err(anyhow::Error::from)?)
    .bind(now)
    .bind(now + settings.canary_ms)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE recommendations SET status = 'accepted', decided_by = ?, decided_ms = ?, applied_version = ?
         WHERE id = ?",
    )
    .bind(ACTOR)
    .bind(now)
    .bind(version)
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
            "version {version} from recommendation {} (no instance listens for configs yet: applied to all)",
            rec.id
        ),
    };
    sqlx::query(
        "INSERT INTO audit_log (at_ms, actor, action, service, breaker, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(now)
    .bind(ACTOR)
    .bind("auto-canary")
    .bind(service)
    .bind(breaker)
    .bind(format!("{what}; guardrails: {} ({text})", if clamped.is_empty() { "none applied".to_string() } else { clamped.join("; ") }))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    if canary.is_none() {
        // Nobody to try it on first: the change is promoted at once.
        configs::save_version(
            app,
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
        set_outcome(
            app,
            change_id,
            "applied to every instance at once: none listened for configs",
        )
        .await?;
        notify(
            app,
            (id, service, breaker),
            &format!("Auto mode changed {service}/{breaker} to config version {version}"),
            ("auto_applied", version as f64, 0.0),
        )
        .await?;
        let change = changes(app, id, 1).await?.pop();
        return Ok(done("applied", what, change));
    }
    configs::wake(app, id, version as u64);
    notify(
        app,
        (id, service, breaker),
        &format!(
            "Auto mode started a canary of {service}/{breaker} config version {version} on {}",
            canary.as_deref().unwrap_or("?")
        ),
        ("auto_canary", version as f64, 0.0),
    )
    .await?;
    let change = changes(app, id, 1).await?.pop();
    Ok(done("canary_started", what, change))
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
    let canary = change.canary_instance.clone().unwrap_or_default();
    if false_trips > settings.max_false_trips {
        let base = configs::current_config(&app.store, id)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the base config is gone")))?;
        let outcome = format!(
            "rolled back: canary {canary} opened {n_openings} time(s), {false_trips} of them false \
             (allowed {}), while its peers stayed closed",
            settings.max_false_trips
        );
        let stored = configs::save_version(
            app,
            NewVersion {
                service,
                breaker: name,
                config: base.config,
                actor: ACTOR,
                action: "auto-rollback",
                reason: format!(
                    "auto mode rolled back version {}: {outcome}",
                    change.version
                ),
                ends_auto_change: Some((change.id, AutoEnd::RolledBack)),
            },
        )
        .await?;
        set_outcome(app, change.id, &outcome).await?;
        notify(
            app,
            breaker,
            &format!(
                "Auto mode rolled back {service}/{name} version {} on {canary}: {false_trips} false trip(s)",
                change.version
            ),
            ("false_trips", f64::from(false_trips), f64::from(settings.max_false_trips)),
        )
        .await?;
        let change = changes(app, id, 1).await?.pop();
        return Ok(done(
            "rolled_back",
            format!(
                "{outcome}; every instance gets version {}",
                stored.config.version
            ),
            change,
        ));
    }
    if now < change.canary_ends_ms {
        return Ok(done(
            "canary_running",
            format!(
                "version {} on {canary}: {n_openings} opening(s), {false_trips} false; {} s to go",
                change.version,
                (change.canary_ends_ms - now + 999) / 1_000
            ),
            Some(AutoTuneChange {
                canary_openings: n_openings,
                false_trips,
                ..change
            }),
        ));
    }
    let outcome = format!(
        "promoted: canary {canary} ran it {} s with {n_openings} opening(s), {false_trips} false",
        (now - change.started_ms) / 1_000
    );
    configs::save_version(
        app,
        NewVersion {
            service,
            breaker: name,
            config: change.config.clone(),
            actor: ACTOR,
            action: "auto-promote",
            reason: format!("auto mode promoted its canary: {outcome}"),
            ends_auto_change: Some((change.id, AutoEnd::Promoted)),
        },
    )
    .await?;
    set_outcome(app, change.id, &outcome).await?;
    notify(
        app,
        breaker,
        &format!(
            "Auto mode promoted {service}/{name} config version {} to every instance",
            change.version
        ),
        ("auto_promoted", change.version as f64, 0.0),
    )
    .await?;
    let change = changes(app, id, 1).await?.pop();
    Ok(done("promoted", outcome, change))
}

// === handlers ===

async fn view(app: &AppState, service: String, breaker: String) -> Result<AutoTuneView, AppError> {
    let id = breaker_id(app, &service, &breaker).await?;
    let (settings, updated_by, updated_ms) = settings(app, id).await?;
    let changes = changes(app, id, 20).await?;
    Ok(AutoTuneView {
        service,
        breaker,
        settings,
        updated_by,
        updated_ms,
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
    responses((status = 200, description = "Saved (and audited)", body = AutoTuneView),
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
    let id = breaker_id(&app, &service, &breaker).await?;
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
    sqlx::query(
        "INSERT INTO audit_log (at_ms, actor, action, service, breaker, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(now)
    .bind(&admin.name)
    .bind("auto-mode")
    .bind(&service)
    .bind(&breaker)
    .bind(format!(
        "auto mode {}: {text}",
        if new.enabled { "on" } else { "off" }
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // Switched off with a change on its canary: the canary instance goes back to the config
    // every other instance runs.
    if !new.enabled
        && let Some(change) = changes(&app, id, 1)
            .await?
            .pop()
            .filter(|c| c.status == "canary")
    {
        let base = configs::current_config(&app.store, id)
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the base config is gone")))?;
        let outcome = format!("rolled back: {} switched auto mode off", admin.name);
        configs::save_version(
            &app,
            NewVersion {
                service: &service,
                breaker: &breaker,
                config: base.config,
                actor: &admin.name,
                action: "auto-rollback",
                reason: format!("version {} {outcome}", change.version),
                ends_auto_change: Some((change.id, AutoEnd::RolledBack)),
            },
        )
        .await?;
        set_outcome(&app, change.id, &outcome).await?;
    }
    Ok(Json(view(&app, service, breaker).await?))
}

#[utoipa::path(post, path = "/api/v1/breakers/{service}/{breaker}/auto/run", tag = "engine",
    params(("service" = String, Path), ("breaker" = String, Path)),
    responses((status = 200, description = "What the step did", body = AutoTuneStep),
        (status = 404, body = ErrorBody)),
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
        let mut settings = AutoTuneSettings::default();
        settings.max_step = 0.5;
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
