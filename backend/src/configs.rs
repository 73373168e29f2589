//! Versioned breaker configs pushed to instances, per-instance sync status, manual control,
//! and the audit log.
//!
//! An admin (or the engine) saves a new version; instances long-poll
//! `GET /api/v1/config/{service}/{breaker}?wait_for_version_above=N` and get it as soon as it
//! is committed ([`ConfigWatch`] wakes them); they report what they run to
//! `POST /api/v1/config-status`. Manual control (force open, disable, metrics only, automatic)
//! is a new version of the current config with another mode, so it reaches instances the same
//! way. Every change is audited with who, when and what.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use protocol::{
    AuditEntry, BreakerConfig, ConfigChange, ConfigRefusal, ConfigStatusReport, ConfigView,
    ControlRequest, ErrorBody, InstanceSync, RestoreRequest, StoredConfig,
};
use serde::Deserialize;
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::watch;

use crate::auth::{Admin, Caller, Principal, Viewer};
use crate::error::AppError;
use crate::extract::{JsonBody, Path, Query};
use crate::server::AppState;
use crate::store::Store;
use crate::time::now_ms;

/// The longest a config long poll is held.
const MAX_POLL: Duration = Duration::from_secs(60);

/// Wakes long polls when a breaker gets a new config version.
#[derive(Default)]
pub struct ConfigWatch {
    versions: Mutex<HashMap<i64, watch::Sender<u64>>>,
}

impl ConfigWatch {
    fn subscribe(&self, breaker_id: i64) -> watch::Receiver<u64> {
        let mut versions = self.versions.lock().expect("config watch lock poisoned");
        versions
            .entry(breaker_id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    fn notify(&self, breaker_id: i64, version: u64) {
        let mut versions = self.versions.lock().expect("config watch lock poisoned");
        versions
            .entry(breaker_id)
            .or_insert_with(|| watch::channel(0).0)
            .send_replace(version);
    }
}

// === store functions ===

pub async fn breaker_id(
    store: &Store,
    service: &str,
    breaker: &str,
) -> Result<Option<i64>, AppError> {
    Ok(
        sqlx::query_scalar("SELECT id FROM breakers WHERE service = ? AND name = ?")
            .bind(service)
            .bind(breaker)
            .fetch_optional(store.pool())
            .await?,
    )
}

fn stored_config(row: &sqlx::sqlite::SqliteRow) -> Result<StoredConfig, AppError> {
    let text: String = row.get(0);
    let config = serde_json::from_str(&text).map_err(|err| {
        AppError::Internal(anyhow::anyhow!("a stored config does not parse: {err}"))
    })?;
    Ok(StoredConfig {
        config,
        created_ms: row.get(1),
        created_by: row.get(2),
        reason: row.get(3),
    })
}

async fn history(
    store: &Store,
    breaker_id: i64,
    limit: i64,
) -> Result<Vec<StoredConfig>, AppError> {
    let rows = sqlx::query(
        "SELECT config, created_ms, created_by, reason FROM breaker_configs
         WHERE breaker_id = ? ORDER BY version DESC LIMIT ?",
    )
    .bind(breaker_id)
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(stored_config).collect()
}

/// The breaker's current (newest) config version, if the server holds one.
pub async fn current(store: &Store, breaker_id: i64) -> Result<Option<StoredConfig>, AppError> {
    Ok(history(store, breaker_id, 1).await?.pop())
}

async fn version(
    store: &Store,
    breaker_id: i64,
    version: u64,
) -> Result<Option<StoredConfig>, AppError> {
    let row = sqlx::query(
        "SELECT config, created_ms, created_by, reason FROM breaker_configs
         WHERE breaker_id = ? AND version = ?",
    )
    .bind(breaker_id)
    .bind(version as i64)
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(stored_config).transpose()
}

/// Checks a config the way instances will (the `breaker` crate's own rules), so a refused
/// config is refused here, with the field and rule, before it reaches any instance.
pub fn check(config: &BreakerConfig) -> Result<(), AppError> {
    breaker::subscriber::config_from_wire(config)
        .map(|_| ())
        .map_err(|err| AppError::Invalid {
            detail: err.rule.to_string(),
            path: format!("$.config.{}", err.field),
        })
}

/// A change to save: what, by whom, and how to audit it.
pub struct NewVersion<'a> {
    pub service: &'a str,
    pub breaker: &'a str,
    pub config: BreakerConfig,
    pub actor: &'a str,
    pub action: &'a str,
    pub reason: String,
    /// An automatic change this version ends, and how (see [`AutoEnd`]). Any other new
    /// version cancels the breaker's running canary: an admin's word wins.
    pub ends_auto_change: Option<(i64, AutoEnd)>,
}

/// How a new version ends an automatic change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoEnd {
    /// The canary's config reaches every instance, under the version the canary runs.
    Promoted,
    /// The base config again, as a newer version.
    RolledBack,
}

/// Saves `change` as the breaker's next version (creating the breaker when new), audits it,
/// and wakes the instances' long polls.
pub async fn save_version(
    app: &AppState,
    change: NewVersion<'_>,
) -> Result<StoredConfig, AppError> {
    let mut tx = app.store.begin().await?;
    let (breaker_id, stored) = save_version_in(&mut tx, change).await?;
    tx.commit().await?;
    app.configs.notify(breaker_id, stored.config.version);
    Ok(stored)
}

/// [`save_version`] inside the caller's transaction; returns the breaker's id with the stored
/// version. The caller commits, then wakes the long polls with [`wake`].
pub async fn save_version_in(
    tx: &mut Transaction<'static, Sqlite>,
    change: NewVersion<'_>,
) -> Result<(i64, StoredConfig), AppError> {
    check(&change.config)?;
    let now = now_ms();
    let breaker_id = Store::breaker_id(tx, change.service, change.breaker, now).await?;
    let mut config = change.config;
    config.version = next_version(tx, breaker_id).await?;
    match change.ends_auto_change {
        Some((change_id, AutoEnd::Promoted)) => {
            config.version = sqlx::query_scalar::<_, i64>(
                "SELECT version FROM auto_tune_changes WHERE id = ? AND status = 'canary'",
            )
            .bind(change_id)
            .fetch_optional(&mut **tx)
            .await?
            .ok_or_else(|| AppError::Conflict {
                detail: format!("automatic change {change_id} is no longer on its canary"),
            })? as u64;
            end_auto_change(tx, change_id, "promoted", now).await?;
        }
        Some((change_id, AutoEnd::RolledBack)) => {
            end_auto_change(tx, change_id, "rolled_back", now).await?;
        }
        None => {
            sqlx::query(
                "UPDATE auto_tune_changes SET status = 'cancelled', ended_ms = ?, outcome = ?
                 WHERE breaker_id = ? AND status = 'canary'",
            )
            .bind(now)
            .bind(format!(
                "cancelled: {} saved version {} ({})",
                change.actor, config.version, change.action
            ))
            .bind(breaker_id)
            .execute(&mut **tx)
            .await?;
        }
    }
    let text = serde_json::to_string(&config).map_err(anyhow::Error::from)?;
    sqlx::query(
        "INSERT INTO breaker_configs (breaker_id, version, config, created_ms, created_by, reason)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(breaker_id)
    .bind(config.version as i64)
    .bind(&text)
    .bind(now)
    .bind(change.actor)
    .bind(&change.reason)
    .execute(&mut **tx)
    .await?;
    write_audit(
        tx,
        Audit {
            actor: change.actor,
            action: change.action,
            service: Some(change.service),
            breaker: Some(change.breaker),
            detail: format!("version {}: {} ({text})", config.version, change.reason),
        },
    )
    .await?;
    Ok((
        breaker_id,
        StoredConfig {
            config,
            created_ms: now,
            created_by: change.actor.to_string(),
            reason: change.reason,
        },
    ))
}

/// The number a breaker's next config version gets. Canary versions are numbered with the
/// rest: a version an instance ran as a canary is never reused for another config.
pub async fn next_version(
    tx: &mut Transaction<'static, Sqlite>,
    breaker_id: i64,
) -> Result<u64, AppError> {
    let latest: i64 = sqlx::query_scalar(
        "SELECT COALESCE(MAX(v), 0) FROM (
             SELECT MAX(version) AS v FROM breaker_configs WHERE breaker_id = ?1
             UNION ALL SELECT MAX(version) FROM auto_tune_changes WHERE breaker_id = ?1)",
    )
    .bind(breaker_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(latest as u64 + 1)
}

/// One audit log entry; `service` and `breaker` when it is about a breaker.
pub struct Audit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub service: Option<&'a str>,
    pub breaker: Option<&'a str>,
    pub detail: String,
}

/// Writes `entry` to the audit log (in the caller's transaction, when it has one).
pub async fn write_audit(
    conn: &mut sqlx::SqliteConnection,
    entry: Audit<'_>,
) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO audit_log (at_ms, actor, action, service, breaker, detail) VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(now_ms())
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.service)
    .bind(entry.breaker)
    .bind(entry.detail)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn end_auto_change(
    tx: &mut Transaction<'static, Sqlite>,
    change_id: i64,
    status: &str,
    now: i64,
) -> Result<(), AppError> {
    let res = sqlx::query(
        "UPDATE auto_tune_changes SET status = ?, ended_ms = ? WHERE id = ? AND status = 'canary'",
    )
    .bind(status)
    .bind(now)
    .bind(change_id)
    .execute(&mut **tx)
    .await?;
    if res.rows_affected() == 0 {
        return Err(AppError::Conflict {
            detail: format!("automatic change {change_id} is no longer on its canary"),
        });
    }
    Ok(())
}

/// The config a breaker's running canary serves to its canary instance: (version, config).
async fn canary_for(
    store: &Store,
    breaker_id: i64,
    instance: &str,
) -> Result<Option<BreakerConfig>, AppError> {
    let text: Option<String> = sqlx::query_scalar(
        "SELECT config FROM auto_tune_changes
         WHERE breaker_id = ? AND status = 'canary' AND canary_instance = ?",
    )
    .bind(breaker_id)
    .bind(instance)
    .fetch_optional(store.pool())
    .await?;
    text.map(|text| {
        serde_json::from_str(&text).map_err(|err| {
            AppError::Internal(anyhow::anyhow!(
                "a stored canary config does not parse: {err}"
            ))
        })
    })
    .transpose()
}

/// Wakes the long polls of a breaker after a commit that gave it `version`.
pub fn wake(app: &AppState, breaker_id: i64, version: u64) {
    app.configs.notify(breaker_id, version);
}

// === handlers ===

#[derive(Deserialize)]
pub struct PollQuery {
    #[serde(default)]
    wait_for_version_above: u64,
    timeout_ms: Option<u64>,
    instance: Option<String>,
}

/// Instances read their breaker's config with their ingest key; people with a token.
fn may_read_config(caller: &Caller, service: &str, anonymous_viewer: bool) -> Result<(), AppError> {
    match &caller.0 {
        Some(Principal::Ingest { service: own, .. }) if own == service => Ok(()),
        Some(Principal::Ingest { .. }) => Err(AppError::Forbidden {
            detail: format!("this key reports for another service than {service:?}"),
        }),
        Some(Principal::User { .. } | Principal::Anonymous) => Ok(()),
        None if anonymous_viewer => Ok(()),
        None => Err(AppError::Unauthorized {
            detail: "reading a config needs the service's ingest key or a user token".into(),
        }),
    }
}

#[utoipa::path(get, path = "/api/v1/config/{service}/{breaker}", tag = "config",
    params(
        ("service" = String, Path), ("breaker" = String, Path),
        ("wait_for_version_above" = Option<u64>, Query, description = "Hold the request until the version is above this"),
        ("timeout_ms" = Option<u64>, Query, description = "How long to hold it (at most 60 s; default 30 s)"),
        ("instance" = Option<String>, Query, description = "The polling instance"),
    ),
    responses(
        (status = 200, description = "A config with a version above the one asked for", body = BreakerConfig),
        (status = 204, description = "No newer version before the timeout"),
        (status = 404, description = "The server holds no config for this breaker", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn poll(
    State(app): State<AppState>,
    caller: Caller,
    Path((service, breaker)): Path<(String, String)>,
    Query(query): Query<PollQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, AppError> {
    may_read_config(&caller, &service, app.anonymous_viewer)?;
    crate::extract::name_param("instance", query.instance.as_deref())?;
    // A poll is held for up to a minute: it ends with 401 as soon as its credential is revoked.
    let revoked = crate::auth::revoked(
        app.clone(),
        crate::auth::presented_secret_in(&headers).map(str::to_string),
    );
    tokio::pin!(revoked);
    let no_config = || AppError::NotFound {
        detail: format!("the server holds no config for {service}/{breaker}"),
    };
    let id = breaker_id(&app.store, &service, &breaker)
        .await?
        .ok_or_else(no_config)?;
    let mut changes = app.configs.subscribe(id);
    let timeout = Duration::from_millis(query.timeout_ms.unwrap_or(30_000)).min(MAX_POLL);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let Some(stored) = current(&app.store, id).await? else {
            return Err(no_config());
        };
        // The canary instance of a running automatic change gets the change first.
        let mut config = stored.config;
        if let Some(instance) = &query.instance
            && let Some(canary) = canary_for(&app.store, id, instance).await?
            && canary.version > config.version
        {
            config = canary;
        }
        if config.version > query.wait_for_version_above {
            return Ok(Json(config).into_response());
        }
        tokio::select! {
            changed = tokio::time::timeout_at(deadline, changes.changed()) => match changed {
                Ok(Ok(())) => continue,
                Ok(Err(_)) | Err(_) => return Ok(StatusCode::NO_CONTENT.into_response()),
            },
            () = &mut revoked => {
                return Err(AppError::Unauthorized {
                    detail: "the presented key or token was revoked".into(),
                });
            }
        }
    }
}

#[utoipa::path(post, path = "/api/v1/config-status", tag = "config",
    request_body = ConfigStatusReport,
    responses(
        (status = 204, description = "Recorded"),
        (status = 403, description = "Another service's key", body = ErrorBody),
        (status = 422, description = "Invalid report", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn report_status(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(report): JsonBody<ConfigStatusReport>,
) -> Result<StatusCode, AppError> {
    match &caller.0 {
        Some(Principal::Ingest { service, .. }) if *service == report.service => {}
        Some(Principal::User {
            role: crate::auth::Role::Admin,
            ..
        }) => {}
        Some(_) => {
            return Err(AppError::Forbidden {
                detail: format!(
                    "this key cannot report for the service {:?}",
                    report.service
                ),
            });
        }
        None => {
            return Err(AppError::Unauthorized {
                detail: "reporting config status needs the service's ingest key".into(),
            });
        }
    }
    for (path, name) in [
        ("$.service", &report.service),
        ("$.instance", &report.instance),
    ] {
        protocol::validate_name(name).map_err(|detail| AppError::Invalid {
            detail,
            path: path.into(),
        })?;
    }
    for (idx, status) in report.breakers.iter().enumerate() {
        protocol::validate_name(&status.breaker).map_err(|detail| AppError::Invalid {
            detail,
            path: format!("$.breakers[{idx}].breaker"),
        })?;
    }
    let now = now_ms();
    let mut tx = app.store.begin().await?;
    // A new instance counts against the instance limit, as at ingest: the service's instances
    // are those the fleet knows from aggregates and those that reported status before. Most
    // reports come from a known instance, which is all this checks for them; the service's
    // instances are counted only for a new one.
    let in_fleet = {
        let fleet = app.fleet.read().expect("fleet lock poisoned");
        fleet.has_instance(&report.service, &report.instance)
    };
    let reported_before: bool = in_fleet
        || sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM config_status s JOIN breakers b ON b.id = s.breaker_id
                            WHERE b.service = ? AND s.instance = ?)",
        )
        .bind(&report.service)
        .bind(&report.instance)
        .fetch_one(&mut *tx)
        .await?;
    if !reported_before {
        let reported: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT s.instance FROM config_status s JOIN breakers b ON b.id = s.breaker_id
             WHERE b.service = ?",
        )
        .bind(&report.service)
        .fetch_all(&mut *tx)
        .await?;
        let current = {
            let fleet = app.fleet.read().expect("fleet lock poisoned");
            let mut instances = fleet.instances_of_service(&report.service);
            instances.extend(reported.iter().map(String::as_str));
            instances.len()
        };
        app.limits
            .check(
                crate::limits::Limit::InstancesPerService,
                current,
                &report.service,
                &report.instance,
                || "$.instance".into(),
            )
            .map_err(AppError::LimitExceeded)?;
    }
    for status in &report.breakers {
        // Status is kept for breakers the server knows; a report never creates one (ingest
        // does, within its limits).
        let Some(id): Option<i64> =
            sqlx::query_scalar("SELECT id FROM breakers WHERE service = ? AND name = ?")
                .bind(&report.service)
                .bind(&status.breaker)
                .fetch_optional(&mut *tx)
                .await?
        else {
            continue;
        };
        let refused = status.refused.as_ref();
        sqlx::query(
            "INSERT INTO config_status (breaker_id, instance, running_version, refused_version,
                                        refused_field, refused_rule, reported_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (breaker_id, instance) DO UPDATE SET
               running_version = excluded.running_version, refused_version = excluded.refused_version,
               refused_field = excluded.refused_field, refused_rule = excluded.refused_rule,
               reported_ms = excluded.reported_ms",
        )
        .bind(id)
        .bind(&report.instance)
        .bind(status.running_version as i64)
        .bind(refused.map(|r| r.version as i64))
        .bind(refused.map(|r| r.field.as_str()))
        .bind(refused.map(|r| r.rule.as_str()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/breakers/{service}/{breaker}/config", tag = "config",
    params(("service" = String, Path), ("breaker" = String, Path)),
    responses((status = 200, body = ConfigView), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn view(
    State(app): State<AppState>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
) -> Result<Json<ConfigView>, AppError> {
    let id = breaker_id(&app.store, &service, &breaker)
        .await?
        .ok_or_else(|| AppError::NotFound {
            detail: format!("no breaker {breaker:?} in service {service:?}"),
        })?;
    let history = history(&app.store, id, 100).await?;
    let current = history.first().cloned();
    let current_version = current.as_ref().map(|c| c.config.version).unwrap_or(0);
    // Every instance the fleet knows, with what it reported (status reports, else aggregates).
    let mut running: std::collections::BTreeMap<String, (u64, Option<ConfigRefusal>)> = {
        let fleet = app.fleet.read().expect("fleet lock poisoned");
        fleet
            .summary(&(service.clone(), breaker.clone()))
            .map(|s| {
                s.instances
                    .into_iter()
                    .map(|i| (i.instance, (i.config_version, None)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let rows = sqlx::query(
        "SELECT instance, running_version, refused_version, refused_field, refused_rule
         FROM config_status WHERE breaker_id = ?",
    )
    .bind(id)
    .fetch_all(app.store.pool())
    .await?;
    for row in rows {
        let refused = row.get::<Option<i64>, _>(2).map(|version| ConfigRefusal {
            version: version as u64,
            field: row.get::<Option<String>, _>(3).unwrap_or_default(),
            rule: row.get::<Option<String>, _>(4).unwrap_or_default(),
        });
        let reported = row.get::<i64, _>(1) as u64;
        let entry = running.entry(row.get(0)).or_insert((reported, None));
        entry.0 = entry.0.max(reported);
        entry.1 = refused;
    }
    // The canary instance is in sync when it runs the canary's version.
    let canary: Option<(String, u64)> = sqlx::query(
        "SELECT canary_instance, version FROM auto_tune_changes
         WHERE breaker_id = ? AND status = 'canary' AND canary_instance IS NOT NULL",
    )
    .bind(id)
    .fetch_optional(app.store.pool())
    .await?
    .map(|row| (row.get(0), row.get::<i64, _>(1) as u64));
    let instances = running
        .into_iter()
        .map(|(instance, (running_version, refused))| {
            let expected = match &canary {
                Some((name, version)) if *name == instance => *version,
                _ => current_version,
            };
            InstanceSync {
                in_sync: current.is_none() || running_version == expected,
                refused: refused.filter(|r| r.version == expected),
                instance,
                running_version,
            }
        })
        .collect();
    Ok(Json(ConfigView {
        service,
        breaker,
        current,
        history,
        instances,
    }))
}

#[utoipa::path(put, path = "/api/v1/breakers/{service}/{breaker}/config", tag = "config",
    params(("service" = String, Path), ("breaker" = String, Path)),
    request_body = ConfigChange,
    responses(
        (status = 200, description = "Saved as the next version and pushed", body = StoredConfig),
        (status = 422, description = "The config breaks a rule; `path` names the field", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn put(
    State(app): State<AppState>,
    admin: Admin,
    Path((service, breaker)): Path<(String, String)>,
    JsonBody(change): JsonBody<ConfigChange>,
) -> Result<Json<StoredConfig>, AppError> {
    for (path, name) in [("service", &service), ("breaker", &breaker)] {
        protocol::validate_name(name).map_err(|detail| AppError::Invalid {
            detail,
            path: path.into(),
        })?;
    }
    let stored = save_version(
        &app,
        NewVersion {
            service: &service,
            breaker: &breaker,
            config: change.config,
            actor: &admin.name,
            action: "config",
            reason: change.reason.unwrap_or_else(|| "set by an admin".into()),
            ends_auto_change: None,
        },
    )
    .await?;
    Ok(Json(stored))
}

async fn require_current(
    app: &AppState,
    service: &str,
    breaker: &str,
) -> Result<StoredConfig, AppError> {
    let none = || AppError::Conflict {
        detail: format!(
            "the server holds no config for {service}/{breaker}; PUT one to \
             /api/v1/breakers/{service}/{breaker}/config first"
        ),
    };
    let id = breaker_id(&app.store, service, breaker)
        .await?
        .ok_or_else(none)?;
    current(&app.store, id).await?.ok_or_else(none)
}

#[utoipa::path(post, path = "/api/v1/breakers/{service}/{breaker}/control", tag = "config",
    params(("service" = String, Path), ("breaker" = String, Path)),
    request_body = ControlRequest,
    responses(
        (status = 200, description = "The current config with the new mode, saved as the next version", body = StoredConfig),
        (status = 409, description = "No config is stored for this breaker yet", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn control(
    State(app): State<AppState>,
    admin: Admin,
    Path((service, breaker)): Path<(String, String)>,
    JsonBody(request): JsonBody<ControlRequest>,
) -> Result<Json<StoredConfig>, AppError> {
    let mut config = require_current(&app, &service, &breaker).await?.config;
    config.mode = match request.mode {
        protocol::BreakerMode::Automatic => None,
        mode => Some(mode),
    };
    let mode = serde_json::to_value(request.mode).map_err(anyhow::Error::from)?;
    let stored = save_version(
        &app,
        NewVersion {
            service: &service,
            breaker: &breaker,
            config,
            actor: &admin.name,
            action: "control",
            reason: request
                .reason
                .unwrap_or_else(|| format!("manual mode {}", mode.as_str().unwrap_or("?"))),
            ends_auto_change: None,
        },
    )
    .await?;
    Ok(Json(stored))
}

#[utoipa::path(post, path = "/api/v1/breakers/{service}/{breaker}/config/restore", tag = "config",
    params(("service" = String, Path), ("breaker" = String, Path)),
    request_body = RestoreRequest,
    responses(
        (status = 200, description = "The earlier version, saved again as the next version", body = StoredConfig),
        (status = 404, description = "No such version", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn restore(
    State(app): State<AppState>,
    admin: Admin,
    Path((service, breaker)): Path<(String, String)>,
    JsonBody(request): JsonBody<RestoreRequest>,
) -> Result<Json<StoredConfig>, AppError> {
    let missing = || AppError::NotFound {
        detail: format!(
            "{service}/{breaker} has no config version {}",
            request.version
        ),
    };
    let id = breaker_id(&app.store, &service, &breaker)
        .await?
        .ok_or_else(missing)?;
    let earlier = version(&app.store, id, request.version)
        .await?
        .ok_or_else(missing)?;
    let stored = save_version(
        &app,
        NewVersion {
            service: &service,
            breaker: &breaker,
            config: earlier.config,
            actor: &admin.name,
            action: "restore",
            reason: format!("restored version {}", request.version),
            ends_auto_change: None,
        },
    )
    .await?;
    Ok(Json(stored))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    limit: Option<i64>,
    before_id: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "config",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("before_id" = Option<i64>, Query, description = "Paging: entries older than this id"),
    ),
    responses((status = 200, description = "Newest first", body = Vec<AuditEntry>)),
    security(("bearer" = [])))]
pub async fn audit(
    State(app): State<AppState>,
    _: Viewer,
    Query(query): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(AppError::BadQuery {
            detail: format!("limit must be between 1 and 1000, not {limit}"),
        });
    }
    let rows = sqlx::query(
        "SELECT id, at_ms, actor, action, service, breaker, detail FROM audit_log
         WHERE id < ? ORDER BY id DESC LIMIT ?",
    )
    .bind(query.before_id.unwrap_or(i64::MAX))
    .bind(limit)
    .fetch_all(app.store.pool())
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| AuditEntry {
                id: row.get(0),
                at_ms: row.get(1),
                actor: row.get(2),
                action: row.get(3),
                service: row.get(4),
                breaker: row.get(5),
                detail: row.get(6),
            })
            .collect(),
    ))
}
