//! Auto mode's routes: its settings and changes per breaker, and a step on demand.

use axum::Json;
use axum::extract::State;
use protocol::{AutoTuneSettings, AutoTuneStep, AutoTuneView, ChangeStatus, ErrorBody};

use super::{roll_back, step, store};
use crate::auth::{Admin, Viewer};
use crate::configs;
use crate::error::AppError;
use crate::extract::{JsonBody, Path};
use crate::state::AppState;

async fn view(app: &AppState, service: String, breaker: String) -> Result<AutoTuneView, AppError> {
    let id = app.store.breaker(&service, &breaker).await?;
    let row = store::settings(&app.store, id).await?;
    let changes = store::changes(&app.store, id, None, 20).await?;
    Ok(AutoTuneView {
        service,
        breaker,
        settings: row.settings,
        updated_by: row.updated_by,
        updated_ms: row.updated_ms,
        canary: changes
            .iter()
            .find(|c| c.status == ChangeStatus::Canary)
            .cloned(),
        changes,
    })
}

#[utoipa::path(get, path = "/api/v1/breakers/{service}/{breaker}/auto", tag = "engine",
    params(("service" = String, Path), ("breaker" = String, Path)),
    responses((status = 200, description = "Auto-mode settings, the canary and the latest automatic changes", body = AutoTuneView),
        (status = 404, body = ErrorBody)))]
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
        (status = 422, description = "A setting out of range; `path` names it", body = ErrorBody)))]
pub async fn put(
    State(app): State<AppState>,
    admin: Admin,
    Path((service, breaker)): Path<(String, String)>,
    JsonBody(new): JsonBody<AutoTuneSettings>,
) -> Result<Json<AutoTuneView>, AppError> {
    new.check()
        .map_err(|(path, detail)| AppError::Invalid { detail, path })?;
    let id = app.store.breaker(&service, &breaker).await?;
    let now = app.clock.now_ms();
    let text = serde_json::to_string(&new).map_err(anyhow::Error::from)?;
    let mut tx = app.store.begin().await?;
    store::save_settings(&mut tx, id, &new, &admin.name, now).await?;
    configs::write_audit(
        &mut tx,
        configs::Audit {
            at_ms: now,
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
        && let Some(change) = store::changes(&app.store, id, None, 1)
            .await?
            .pop()
            .filter(|c| c.status == ChangeStatus::Canary)
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
            with Retry-After) or the server is stopping", body = ErrorBody)))]
pub async fn run(
    State(app): State<AppState>,
    _: Admin,
    Path((service, breaker)): Path<(String, String)>,
) -> Result<Json<AutoTuneStep>, AppError> {
    Ok(Json(step(&app, &service, &breaker).await?))
}
