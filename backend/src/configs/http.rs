//! The configs' routes: the instances' long poll and status reports, and the admins' view,
//! edit, manual control, restore and audit log.

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

use super::{NewVersion, save_version, store};
use crate::auth::{Admin, Caller, Principal, Viewer};
use crate::error::AppError;
use crate::extract::{JsonBody, Path, Query};
use crate::state::AppState;

/// The longest a config long poll is held.
const MAX_POLL: Duration = Duration::from_secs(60);

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
    ))]
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
    let id = app
        .store
        .find_breaker(&service, &breaker)
        .await?
        .ok_or_else(no_config)?;
    let mut changes = app.configs.subscribe(id);
    let timeout = Duration::from_millis(query.timeout_ms.unwrap_or(30_000)).min(MAX_POLL);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let Some(stored) = store::current(&app.store, id).await? else {
            return Err(no_config());
        };
        // The canary instance of a running automatic change gets the change first.
        let mut config = stored.config;
        if let Some(instance) = &query.instance
            && let Some(canary) = store::canary_for(&app.store, id, instance).await?
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
    ))]
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
    let now = app.clock.now_ms();
    let mut tx = app.store.begin().await?;
    // A new instance counts against the instance limit, as at ingest: the service's instances
    // are those the fleet knows from aggregates and those that reported status before. Most
    // reports come from a known instance, which is all this checks for them; the service's
    // instances are counted only for a new one.
    let in_fleet = {
        let fleet = app.fleet.read().expect("fleet lock poisoned");
        fleet.has_instance(&report.service, &report.instance)
    };
    let reported_before =
        in_fleet || store::reported_before(&mut tx, &report.service, &report.instance).await?;
    if !reported_before {
        let reported = store::reporting_instances(&mut tx, &report.service).await?;
        let current = {
            let fleet = app.fleet.read().expect("fleet lock poisoned");
            let mut instances = fleet.instances_of_service(&report.service);
            instances.extend(reported.iter().map(String::as_str));
            instances.len()
        };
        app.limits
            .check(
                crate::ingest::limits::Limit::InstancesPerService,
                current,
                &report.service,
                &report.instance,
                || "$.instance".into(),
            )
            .map_err(AppError::LimitExceeded)?;
    }
    store::save_status(&mut tx, &report, now).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/breakers/{service}/{breaker}/config", tag = "config",
    params(("service" = String, Path), ("breaker" = String, Path)),
    responses((status = 200, body = ConfigView), (status = 404, body = ErrorBody)))]
pub async fn view(
    State(app): State<AppState>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
) -> Result<Json<ConfigView>, AppError> {
    let id = app
        .store
        .find_breaker(&service, &breaker)
        .await?
        .ok_or_else(|| AppError::NotFound {
            detail: format!("no breaker {breaker:?} in service {service:?}"),
        })?;
    let history = store::history(&app.store, id, 100).await?;
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
    for status in store::statuses(&app.store, id).await? {
        let entry = running
            .entry(status.instance)
            .or_insert((status.running_version, None));
        entry.0 = entry.0.max(status.running_version);
        entry.1 = status.refused;
    }
    // The canary instance is in sync when it runs the canary's version.
    let canary = store::canary_instance(&app.store, id).await?;
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
    ))]
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
        &app.store,
        &app.configs,
        NewVersion {
            service: &service,
            breaker: &breaker,
            config: change.config,
            actor: &admin.name,
            action: "config",
            reason: change.reason.unwrap_or_else(|| "set by an admin".into()),
            ends_auto_change: None,
        },
        app.clock.now_ms(),
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
    let id = app
        .store
        .find_breaker(service, breaker)
        .await?
        .ok_or_else(none)?;
    store::current(&app.store, id).await?.ok_or_else(none)
}

#[utoipa::path(post, path = "/api/v1/breakers/{service}/{breaker}/control", tag = "config",
    params(("service" = String, Path), ("breaker" = String, Path)),
    request_body = ControlRequest,
    responses(
        (status = 200, description = "The current config with the new mode, saved as the next version", body = StoredConfig),
        (status = 409, description = "No config is stored for this breaker yet", body = ErrorBody),
    ))]
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
        &app.store,
        &app.configs,
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
        app.clock.now_ms(),
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
    ))]
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
    let id = app
        .store
        .find_breaker(&service, &breaker)
        .await?
        .ok_or_else(missing)?;
    let earlier = store::version(&app.store, id, request.version)
        .await?
        .ok_or_else(missing)?;
    let stored = save_version(
        &app.store,
        &app.configs,
        NewVersion {
            service: &service,
            breaker: &breaker,
            config: earlier.config,
            actor: &admin.name,
            action: "restore",
            reason: format!("restored version {}", request.version),
            ends_auto_change: None,
        },
        app.clock.now_ms(),
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
    responses((status = 200, description = "Newest first", body = Vec<AuditEntry>)))]
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
    Ok(Json(
        store::audit_page(&app.store, query.before_id.unwrap_or(i64::MAX), limit).await?,
    ))
}
