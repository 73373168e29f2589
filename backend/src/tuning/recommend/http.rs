//! Recommendations' routes: make one, list, read, accept or reject; lint the current config.

use axum::Json;
use axum::extract::State;
use protocol::{ErrorBody, LintFinding, Recommendation, RecommendationStatus};
use serde::Deserialize;

use super::{DEFAULT_DAYS, current_config, history, lint, recommend, store};
use crate::auth::{Admin, Viewer};
use crate::configs::{self, NewVersion};
use crate::error::AppError;
use crate::extract::{Path, Query};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RecommendQuery {
    days: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/breakers/{service}/{breaker}/recommendations", tag = "engine",
    params(("service" = String, Path), ("breaker" = String, Path),
        ("days" = Option<i64>, Query, minimum = 1, maximum = 30, description = "History to learn from, 1–30 days (default 7)")),
    responses((status = 200, description = "A new suggestion with its evidence", body = Recommendation),
        (status = 404, body = ErrorBody),
        (status = 503, description = "The engine ran out of its time budget (`engine_budget_exceeded`, \
            with Retry-After) or the server is stopping", body = ErrorBody)))]
pub async fn create(
    State(app): State<AppState>,
    _: Admin,
    Path((service, breaker)): Path<(String, String)>,
    Query(query): Query<RecommendQuery>,
) -> Result<Json<Recommendation>, AppError> {
    let days = query.days.unwrap_or(DEFAULT_DAYS);
    if !(1..=30).contains(&days) {
        return Err(AppError::BadQuery {
            detail: format!("days must be between 1 and 30, not {days}"),
        });
    }
    // Dropped with this handler's future (the client went away): the run stops too.
    let (job, _cancel_on_drop) = app.engine.job();
    Ok(Json(
        recommend(
            &app.store,
            &service,
            &breaker,
            (days, app.clock.now_ms()),
            &job,
        )
        .await?,
    ))
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/recommendations", tag = "engine",
    params(("status" = Option<String>, Query, description = "open, accepted, rejected or superseded")),
    responses((status = 200, description = "Newest first", body = Vec<Recommendation>)))]
pub async fn list(
    State(app): State<AppState>,
    _: Viewer,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<Recommendation>>, AppError> {
    if let Some(status) = &query.status
        && RecommendationStatus::parse(status).is_none()
    {
        return Err(AppError::BadQuery {
            detail: format!("status is open, accepted, rejected or superseded, not {status:?}"),
        });
    }
    let status = query
        .status
        .as_deref()
        .and_then(RecommendationStatus::parse);
    Ok(Json(store::list(&app.store, status).await?))
}

#[utoipa::path(get, path = "/api/v1/recommendations/{id}", tag = "engine",
    params(("id" = i64, Path)),
    responses((status = 200, body = Recommendation), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(app): State<AppState>,
    _: Viewer,
    Path(id): Path<i64>,
) -> Result<Json<Recommendation>, AppError> {
    Ok(Json(store::load(&app.store, id).await?))
}

async fn decide(
    app: &AppState,
    id: i64,
    admin: &str,
    accept: bool,
) -> Result<Recommendation, AppError> {
    let rec = store::load(&app.store, id).await?;
    if rec.status != RecommendationStatus::Open {
        return Err(AppError::Conflict {
            detail: format!("recommendation {id} is {}, not open", rec.status),
        });
    }
    let applied_version = if accept {
        let stored = configs::save_version(
            &app.store,
            &app.configs,
            NewVersion {
                service: &rec.service,
                breaker: &rec.breaker,
                config: rec.suggested.clone(),
                actor: admin,
                action: "recommendation",
                reason: format!("accepted recommendation {id}: {}", rec.summary),
                ends_auto_change: None,
            },
            app.clock.now_ms(),
        )
        .await?;
        Some(stored.config.version)
    } else {
        None
    };
    let status = if accept {
        RecommendationStatus::Accepted
    } else {
        RecommendationStatus::Rejected
    };
    store::decide(
        &app.store,
        id,
        status,
        admin,
        app.clock.now_ms(),
        applied_version,
    )
    .await?;
    Ok(store::load(&app.store, id).await?)
}

#[utoipa::path(post, path = "/api/v1/recommendations/{id}/accept", tag = "engine",
    params(("id" = i64, Path)),
    responses((status = 200, description = "Accepted: the suggested config is the breaker's next version, pushed to its instances", body = Recommendation),
        (status = 409, description = "Not open", body = ErrorBody)))]
pub async fn accept(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Recommendation>, AppError> {
    Ok(Json(decide(&app, id, &admin.name, true).await?))
}

#[utoipa::path(post, path = "/api/v1/recommendations/{id}/reject", tag = "engine",
    params(("id" = i64, Path)),
    responses((status = 200, body = Recommendation), (status = 409, description = "Not open", body = ErrorBody)))]
pub async fn reject(
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<i64>,
) -> Result<Json<Recommendation>, AppError> {
    Ok(Json(decide(&app, id, &admin.name, false).await?))
}

#[utoipa::path(get, path = "/api/v1/breakers/{service}/{breaker}/lint", tag = "engine",
    params(("service" = String, Path), ("breaker" = String, Path)),
    responses((status = 200, description = "Findings about the current config against the last 7 days", body = Vec<LintFinding>),
        (status = 404, body = ErrorBody),
        (status = 503, description = "Reading the history took longer than the engine's time \
            budget (`engine_budget_exceeded`, with Retry-After)", body = ErrorBody)))]
pub async fn lint_handler(
    State(app): State<AppState>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
) -> Result<Json<Vec<LintFinding>>, AppError> {
    let id = app.store.breaker(&service, &breaker).await?;
    let (_, config) = current_config(&app.store, id).await?;
    let to_ms = app.clock.now_ms();
    // Lint's arithmetic is light; its time goes into reading (and first rolling up) a week of
    // history, which ends with this future when the client goes away. It keeps to the engine's
    // budget as well.
    let budget = app.engine.budget();
    let history = tokio::time::timeout(
        budget,
        history(
            &app.store,
            id,
            to_ms - DEFAULT_DAYS * 86_400_000,
            to_ms,
            false,
        ),
    )
    .await
    .map_err(|_| AppError::EngineBudget {
        budget_ms: budget.as_millis() as u64,
    })??;
    let minutes: Vec<(u64, u64, u64)> = history
        .steps
        .iter()
        .map(|s| {
            let judged = u64::from(s.n_calls - s.n_rejected);
            (u64::from(s.n_calls), u64::from(s.n_failures), judged)
        })
        .collect();
    Ok(Json(lint(&config, &minutes)))
}
