//! `/api/v1/alerts…`: alerts with their history (viewers), acknowledge and silence (admins),
//! rules and channels (admins write, viewers read without secrets), and the chart image that
//! notifications link to.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use protocol::{
    Alert, AlertChannel, AlertChannelView, AlertNotice, AlertRule, AlertRuleView, ErrorBody,
    SilenceRequest,
};
use serde::Deserialize;

use crate::alerts::model::EventKind;
use crate::alerts::{rules, store};
use crate::auth::{Admin, Principal, Role, Viewer};
use crate::error::AppError;
use crate::extract::{JsonBody, Path, Query};
use crate::state::AppState;
use protocol::AlertStatus;

#[derive(Deserialize)]
pub struct AlertsQuery {
    status: Option<String>,
    before_id: Option<i64>,
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts",
    params(
        ("status" = Option<String>, Query, description = "`firing` or `resolved`"),
        ("before_id" = Option<i64>, Query, description = "Only alerts with a smaller id (paging)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "1 to 500, default 50"),
    ),
    responses((status = 200, description = "Newest first, with history and deliveries", body = Vec<Alert>),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
    ))]
pub async fn list(
    State(app): State<AppState>,
    _: Viewer,
    Query(query): Query<AlertsQuery>,
) -> Result<Json<Vec<Alert>>, AppError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(AppError::BadQuery {
            detail: format!("limit must be between 1 and 500, not {limit}"),
        });
    }
    let status = match &query.status {
        None => None,
        Some(text) => Some(AlertStatus::parse(text).ok_or_else(|| AppError::BadQuery {
            detail: format!("status is `firing` or `resolved`, not {text:?}"),
        })?),
    };
    let before_id = query.before_id.unwrap_or(i64::MAX);
    Ok(Json(
        store::alerts::list(&app.store, status, before_id, limit).await?,
    ))
}

async fn one(app: &AppState, id: i64) -> Result<Alert, AppError> {
    store::alerts::find(&app.store, id)
        .await?
        .ok_or_else(|| AppError::NotFound {
            detail: format!("no alert {id}"),
        })
}

#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts",
    params(("id" = i64, Path, description = "Alert id")),
    responses((status = 200, body = Alert),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody),
    ))]
pub async fn get(
    State(app): State<AppState>,
    _: Viewer,
    Path(id): Path<i64>,
) -> Result<Json<Alert>, AppError> {
    Ok(Json(one(&app, id).await?))
}

/// Records a history entry that notifies no channel (acknowledged, silenced) and streams it.
async fn note(app: &AppState, id: i64, kind: EventKind, detail: String) -> Result<Alert, AppError> {
    let alert = store::alerts::add_note(&app.store, id, kind, detail, app.clock.now_ms()).await?;
    app.alerts.committed(vec![AlertNotice {
        event: kind.as_str().to_string(),
        alert: Alert {
            events: Vec::new(),
            deliveries: Vec::new(),
            ..alert.clone()
        },
    }]);
    Ok(alert)
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/ack", tag = "alerts",
    params(("id" = i64, Path, description = "Alert id")),
    responses((status = 200, body = Alert),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody),
    ))]
pub async fn acknowledge(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Alert>, AppError> {
    one(&app, id).await?;
    store::alerts::acknowledge(&app.store, id, &admin.name, app.clock.now_ms()).await?;
    let detail = format!("by {}", admin.name);
    Ok(Json(note(&app, id, EventKind::Acknowledged, detail).await?))
}

#[utoipa::path(post, path = "/api/v1/alerts/{id}/silence", tag = "alerts",
    params(("id" = i64, Path, description = "Alert id")),
    request_body = SilenceRequest,
    responses((status = 200, description = "Its notifications are held back until then", body = Alert),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such alert", body = ErrorBody),
        (status = 422, description = "for_ms out of range", body = ErrorBody),
    ))]
pub async fn silence(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
    JsonBody(request): JsonBody<SilenceRequest>,
) -> Result<Json<Alert>, AppError> {
    if !(0..=30 * 24 * 3_600_000).contains(&request.for_ms) {
        return Err(AppError::Invalid {
            detail: "between 0 (lift the silence) and 30 days".into(),
            path: "$.for_ms".into(),
        });
    }
    one(&app, id).await?;
    let until = app.clock.now_ms() + request.for_ms;
    store::alerts::set_silence(&app.store, id, (request.for_ms > 0).then_some(until)).await?;
    // Notifications already queued for it are held back too.
    if request.for_ms > 0 {
        store::alerts::hold_back_queued(&app.store, id, app.clock.now_ms()).await?;
    }
    let detail = format!("by {} for {} s", admin.name, request.for_ms / 1_000);
    Ok(Json(note(&app, id, EventKind::Silenced, detail).await?))
}

// === rules ===

#[utoipa::path(get, path = "/api/v1/alerts/rules", tag = "alerts",
    responses((status = 200, body = Vec<AlertRuleView>),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
    ))]
pub async fn list_rules(
    State(app): State<AppState>,
    _: Viewer,
) -> Result<Json<Vec<AlertRuleView>>, AppError> {
    Ok(Json(
        store::rules::load_rules(&app.store)
            .await?
            .into_iter()
            .map(|(rule, source)| AlertRuleView { rule, source })
            .collect(),
    ))
}

#[utoipa::path(put, path = "/api/v1/alerts/rules/{name}", tag = "alerts",
    params(("name" = String, Path, description = "Rule name; the body's name must match")),
    request_body = AlertRule,
    responses((status = 200, body = AlertRuleView),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A field is invalid; `path` says which", body = ErrorBody),
    ))]
pub async fn put_rule(
    State(app): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    JsonBody(rule): JsonBody<AlertRule>,
) -> Result<Json<AlertRuleView>, AppError> {
    if rule.name != name {
        return Err(AppError::Invalid {
            detail: format!("the body names {:?}, the path {name:?}", rule.name),
            path: "$.name".into(),
        });
    }
    rules::check_rule(&rule)?;
    store::rules::upsert_rule(&app.store, &rule, "api", app.clock.now_ms()).await?;
    let text = serde_json::to_string(&rule).map_err(anyhow::Error::from)?;
    store::rules::audit(
        &app.store,
        (&admin.name, app.clock.now_ms()),
        "alert_rule_put",
        text,
    )
    .await?;
    Ok(Json(AlertRuleView {
        rule,
        source: "api".into(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/alerts/rules/{name}", tag = "alerts",
    params(("name" = String, Path, description = "Rule name")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
    ))]
pub async fn delete_rule(
    State(app): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    if !store::rules::delete_rule(&app.store, &name).await? {
        return Err(AppError::NotFound {
            detail: format!("no alert rule {name:?}"),
        });
    }
    store::rules::audit(
        &app.store,
        (&admin.name, app.clock.now_ms()),
        "alert_rule_delete",
        name,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// === channels ===

/// A URL without its path, query or credentials, for readers who are not admins (a Slack
/// webhook's path is its secret).
fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}/…",
            parsed.scheme(),
            parsed.host_str().unwrap_or("?")
        ),
        Err(_) => "…".into(),
    }
}

fn view(row: rules::ChannelRow, admin: bool) -> AlertChannelView {
    AlertChannelView {
        url: if admin {
            row.spec.url.clone()
        } else {
            redact(&row.spec.url)
        },
        name: row.spec.name,
        kind: row.spec.kind,
        has_secret: row.spec.secret.is_some(),
        rules: row.spec.rules,
        source: row.source,
    }
}

#[utoipa::path(get, path = "/api/v1/alerts/channels", tag = "alerts",
    responses((status = 200, description = "Never with secrets; URLs in full for admins only", body = Vec<AlertChannelView>),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
    ))]
pub async fn list_channels(
    State(app): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Vec<AlertChannelView>>, AppError> {
    let admin = matches!(
        viewer.0,
        Principal::User {
            role: Role::Admin,
            ..
        }
    );
    Ok(Json(
        store::rules::load_channels(&app.store)
            .await?
            .into_iter()
            .map(|row| view(row, admin))
            .collect(),
    ))
}

#[utoipa::path(put, path = "/api/v1/alerts/channels/{name}", tag = "alerts",
    params(("name" = String, Path, description = "Channel name; the body's name must match")),
    request_body(content = AlertChannel, description = "Without `secret`, an existing secret is kept"),
    responses((status = 200, body = AlertChannelView),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "A field is invalid; `path` says which", body = ErrorBody),
    ))]
pub async fn put_channel(
    State(app): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
    JsonBody(mut channel): JsonBody<AlertChannel>,
) -> Result<Json<AlertChannelView>, AppError> {
    if channel.name != name {
        return Err(AppError::Invalid {
            detail: format!("the body names {:?}, the path {name:?}", channel.name),
            path: "$.name".into(),
        });
    }
    rules::check_channel(&channel)?;
    if channel.secret.is_none() {
        channel.secret = store::rules::channel_secret(&app.store, &name).await?;
    }
    store::rules::upsert_channel(&app.store, &channel, "api", app.clock.now_ms()).await?;
    let detail = format!(
        "{name}: {} {}",
        rules::kind_str(channel.kind),
        redact(&channel.url)
    );
    store::rules::audit(
        &app.store,
        (&admin.name, app.clock.now_ms()),
        "alert_channel_put",
        detail,
    )
    .await?;
    Ok(Json(view(
        rules::ChannelRow {
            id: 0,
            spec: channel,
            source: "api".into(),
        },
        true,
    )))
}

#[utoipa::path(delete, path = "/api/v1/alerts/channels/{name}", tag = "alerts",
    params(("name" = String, Path, description = "Channel name")),
    responses((status = 204, description = "Deleted, with its undelivered notifications"),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such channel", body = ErrorBody),
    ))]
pub async fn delete_channel(
    State(app): State<AppState>,
    admin: Admin,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    if !store::rules::delete_channel(&app.store, &name).await? {
        return Err(AppError::NotFound {
            detail: format!("no alert channel {name:?}"),
        });
    }
    store::rules::audit(
        &app.store,
        (&admin.name, app.clock.now_ms()),
        "alert_channel_delete",
        name,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// === chart ===

#[utoipa::path(get, path = "/api/v1/breakers/{service}/{breaker}/chart.svg", tag = "read",
    params(
        ("service" = String, Path, description = "Service name"),
        ("breaker" = String, Path, description = "Breaker name"),
        ("from_ms" = Option<i64>, Query, description = "Range start (default: 15 min before to_ms)"),
        ("to_ms" = Option<i64>, Query, description = "Range end (default: now)"),
    ),
    responses((status = 200, description = "The failure rate and threshold as SVG", content_type = "image/svg+xml"),
        (status = 400, description = "Bad range", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 404, description = "Unknown breaker", body = ErrorBody),
    ))]
pub async fn chart(
    State(app): State<AppState>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
    Query(query): Query<crate::query::http::RangeQuery>,
) -> Result<impl IntoResponse, AppError> {
    let (from_ms, to_ms) = query.resolve(app.clock.now_ms())?;
    let step_ms = crate::query::http::auto_step_ms(to_ms - from_ms);
    let from_ms = from_ms.div_euclid(step_ms) * step_ms;
    let series = app
        .store
        .series(&service, &breaker, from_ms, to_ms, step_ms)
        .await?
        .ok_or_else(|| AppError::NotFound {
            detail: format!("no breaker {breaker:?} in service {service:?}"),
        })?;
    Ok((
        [(header::CONTENT_TYPE, "image/svg+xml")],
        crate::query::chart::render(&series),
    ))
}
