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

use protocol::{
    AutoTuneChange, AutoTuneSettings, AutoTuneStep, BreakerConfig, ChangeStatus, Recommendation,
    StepAction,
};

use crate::configs::{self, AutoEnd, NewVersion};
use crate::error::AppError;
use crate::state::AppState;

use self::canary::{Decision, RollBack};
use self::guardrails::clamp;
use self::guardrails::same_thresholds;

pub mod canary;
pub mod guardrails;
pub mod http;
pub mod store;

/// Who automatic changes are audited as.
pub const ACTOR: &str = "auto-tuner";

/// The background task: a step for every breaker in auto mode, every `period`.
pub fn spawn(app: AppState, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let breakers = match store::enabled_breakers(&app.store).await {
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
        app.clock.now_ms(),
    )
    .await?;
    store::set_outcome(&mut tx, ending.change.id, &ending.outcome).await?;
    let notices = crate::alerts::engine::auto_tune_notice(
        &mut tx,
        breaker,
        (&ending.title, ending.trigger),
        app.clock.now_ms(),
    )
    .await?;
    tx.commit().await?;
    app.configs.notify(id, stored.config.version);
    app.alerts.committed(notices);
    Ok(stored.config.version)
}

/// Rolls a change back: the config every other instance runs, as a newer version for all.
pub(super) async fn roll_back(
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
        StepAction::RolledBack,
        format!("{outcome}; every instance gets version {version}"),
        Some(store::change(&app.store, id, change.id).await?),
    ))
}

/// The canary's openings on the change's version since it started, and how many were false
/// (see [`canary::false_trips`]).
async fn count_openings(
    app: &AppState,
    breaker_id: i64,
    change: &AutoTuneChange,
    now: i64,
) -> Result<(u32, u32), AppError> {
    let Some(canary) = &change.canary_instance else {
        return Ok((0, 0));
    };
    let canary = std::slice::from_ref(canary);
    let since = (change.started_ms, now + 1);
    let own = store::openings(&app.store, breaker_id, canary, Some(change.version), since).await?;
    let false_trips = if change.peers.is_empty() {
        let span = (now - change.started_ms).max(0);
        let before = (change.started_ms - span, change.started_ms);
        let before = store::openings(&app.store, breaker_id, canary, None, before).await?;
        canary::false_trips(&own, None, before.len())
    } else {
        let around = (
            change.started_ms - canary::PEER_WINDOW_MS,
            now + 1 + canary::PEER_WINDOW_MS + 1,
        );
        let peers = store::openings(&app.store, breaker_id, &change.peers, None, around).await?;
        canary::false_trips(&own, Some(&peers), 0)
    };
    Ok((own.len() as u32, false_trips))
}

fn done(action: StepAction, detail: String, change: Option<AutoTuneChange>) -> AutoTuneStep {
    AutoTuneStep {
        action,
        detail,
        change,
    }
}

/// One auto-mode step for a breaker (see the module documentation).
pub async fn step(app: &AppState, service: &str, breaker: &str) -> Result<AutoTuneStep, AppError> {
    let id = app.store.breaker(service, breaker).await?;
    let row = store::settings(&app.store, id).await?;
    let settings = row.settings;
    let now = app.clock.now_ms();
    let latest = store::changes(&app.store, id, None, 1).await?.pop();
    let canary = latest.clone().filter(|c| c.status == ChangeStatus::Canary);
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
            StepAction::Off,
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
                StepAction::Cooldown,
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
            StepAction::ManualMode,
            "the breaker is in a manual mode an admin set; auto mode leaves it alone".into(),
            None,
        ));
    }
    store::set_last_run(&app.store, id, now).await?;
    // Dropped with this step's future (the admin's request went away, or the server stopped
    // auto mode's task): the run stops too.
    let (job, _cancel_on_drop) = app.engine.job();
    let rec = crate::tuning::recommend::recommend(
        &app.store,
        service,
        breaker,
        (settings.days, now),
        &job,
    )
    .await?;
    if rec.confidence < settings.min_confidence {
        return Ok(done(
            StepAction::LowConfidence,
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
            StepAction::NoChange,
            format!(
                "recommendation {} (within the guardrails) is the current config",
                rec.id
            ),
            None,
        ));
    }
    if !rec.doubts.is_empty() {
        return Ok(done(
            StepAction::LowConfidence,
            format!(
                "recommendation {} is in doubt ({}); it is left for an admin",
                rec.id,
                rec.doubts.join("; ")
            ),
            None,
        ));
    }
    configs::check(&config)?;
    let proposal = Proposal {
        rec: &rec,
        config,
        clamped,
    };
    start_change(
        app,
        (id, service, breaker),
        &settings,
        &current.config,
        proposal,
        now,
    )
    .await
}

/// A suggestion clamped into the guardrails, ready to start.
struct Proposal<'a> {
    rec: &'a Recommendation,
    config: BreakerConfig,
    /// What the guardrails changed, one line each.
    clamped: Vec<String>,
}

/// Starts a proposal on a canary instance, or on every
/// instance at once when none listens for configs: one transaction that records the change,
/// accepts the recommendation, audits and raises the alert notice.
async fn start_change(
    app: &AppState,
    target: (i64, &str, &str),
    settings: &AutoTuneSettings,
    current: &BreakerConfig,
    proposal: Proposal<'_>,
    now: i64,
) -> Result<AutoTuneStep, AppError> {
    let Proposal {
        rec,
        mut config,
        clamped,
    } = proposal;
    let (id, service, breaker) = target;
    let subscribed = store::subscribed_instances(&app.store, id).await?;
    let known: Vec<String> = {
        let fleet = app.fleet.read().expect("fleet lock poisoned");
        fleet
            .summary(&(service.to_string(), breaker.to_string()))
            .map(|s| s.instances.into_iter().map(|i| i.instance).collect())
            .unwrap_or_default()
    };
    let (canary, peers) = canary::choose(&subscribed, known);

    let mut tx = app.store.begin().await?;
    // The engine ran outside any transaction: the config must still be the one the suggestion
    // changes (an admin may have saved another, or another step started a canary).
    let version = configs::next_version(&mut tx, id).await?;
    if version != current.version + 1 {
        return Ok(done(
            StepAction::Superseded,
            format!(
                "the config changed while the engine ran (version {} is taken); the next step starts over",
                version - 1
            ),
            None,
        ));
    }
    config.version = version;
    let text = serde_json::to_string(&config).map_err(anyhow::Error::from)?;
    let change_id = store::insert_change(
        &mut tx,
        store::NewChange {
            breaker_id: id,
            recommendation_id: rec.id,
            canary_instance: canary.as_deref(),
            peers: &peers,
            version,
            base_version: current.version,
            config: &text,
            clamped: &clamped,
            started_ms: now,
            canary_ends_ms: now.saturating_add(settings.canary_ms),
        },
    )
    .await?;
    store::accept_recommendation(&mut tx, rec.id, ACTOR, now, version).await?;
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
            at_ms: now,
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
            StepAction::CanaryStarted,
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
                now,
            )
            .await?;
            store::set_outcome(
                &mut tx,
                change_id,
                "applied to every instance at once: none listened for configs",
            )
            .await?;
            (
                StepAction::Applied,
                format!("Auto mode changed {service}/{breaker} to config version {version}"),
                ("auto_applied", version as f64, 0.0),
            )
        }
    };
    let notices = crate::alerts::engine::auto_tune_notice(
        &mut tx,
        (id, service, breaker),
        (&title, trigger),
        now,
    )
    .await?;
    tx.commit().await?;
    app.configs.notify(id, version);
    app.alerts.committed(notices);
    Ok(done(
        action,
        what,
        Some(store::change(&app.store, id, change_id).await?),
    ))
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
    let (n_openings, false_trips) = count_openings(app, id, &change, now).await?;
    store::set_canary_counts(&app.store, change.id, n_openings, false_trips).await?;
    let change = AutoTuneChange {
        canary_openings: n_openings,
        false_trips,
        ..change
    };
    let canary = change.canary_instance.clone().unwrap_or_default();
    // Only what the canary ran is promoted: it must say it runs the change.
    let running = store::running_version(&app.store, id, &canary).await?;
    let runs_it = running == Some(change.version);
    let facts = canary::Facts {
        now_ms: now,
        canary_ends_ms: change.canary_ends_ms,
        canary_ms: settings.canary_ms,
        false_trips,
        max_false_trips: settings.max_false_trips,
        runs_it,
    };
    match canary::decide(&facts) {
        Decision::RollBack(RollBack::FalseTrips) => {
            let outcome = format!(
                "rolled back: canary {canary} opened {n_openings} time(s) on version {}, {false_trips} \
                 of them while its peers stayed closed (allowed {})",
                change.version, settings.max_false_trips
            );
            let trigger = (
                "false_trips",
                f64::from(false_trips),
                f64::from(settings.max_false_trips),
            );
            return roll_back(app, breaker, &change, ACTOR, outcome, trigger).await;
        }
        Decision::RollBack(RollBack::Silent) => {
            let outcome = format!(
                "rolled back unjudged: canary {canary} never reported running version {}",
                change.version
            );
            let trigger = ("canary_silent", 0.0, 0.0);
            return roll_back(app, breaker, &change, ACTOR, outcome, trigger).await;
        }
        Decision::Wait => {
            let wait = if runs_it {
                format!("{} s to go", (change.canary_ends_ms - now + 999) / 1_000)
            } else {
                format!("waiting for {canary} to report running it")
            };
            return Ok(done(
                StepAction::CanaryRunning,
                format!(
                    "version {} on {canary}: {n_openings} opening(s), {false_trips} false; {wait}",
                    change.version
                ),
                Some(change),
            ));
        }
        Decision::Promote => {}
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
        StepAction::Promoted,
        outcome,
        Some(store::change(&app.store, id, change.id).await?),
    ))
}
