//! Handlers of the `/api/v1` routes other than the live stream.

use axum::Json;
use axum::extract::State;
use protocol::{
    BreakerSummary, CallBatch, ErrorBody, IngestAck, IngestBatch, Series, ServiceSummary,
    Sparkline, Timeline, TransitionRecord,
};
use serde::Deserialize;

use crate::auth::{Ingester, Viewer};
use crate::error::AppError;
use crate::extract::{JsonBody, Path, Query};
use crate::server::AppState;
use crate::store::TransitionFilter;
use crate::time::now_ms;

/// The default range of a series: the last 15 minutes.
const DEFAULT_RANGE_MS: i64 = 15 * 60 * 1_000;
/// The longest range one series request may span: 31 days.
const MAX_RANGE_MS: i64 = 31 * 24 * 60 * 60 * 1_000;
/// A series holds at most about this many points; the step grows with the range.
const TARGET_POINTS: i64 = 300;
/// Steps a series may use, in ms.
const NICE_STEPS_MS: [i64; 14] = [
    1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000,
    1_800_000, 3_600_000, 86_400_000,
];

#[utoipa::path(post, path = "/api/v1/ingest", tag = "ingest",
    request_body = IngestBatch,
    responses(
        (status = 200, description = "Committed (or committed before: `duplicate`)", body = IngestAck),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Not declared as JSON", body = ErrorBody),
        (status = 422, description = "A field is invalid; `path` says which", body = ErrorBody),
        (status = 503, description = "Ingest queue full; retry after `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn ingest(
    State(app): State<AppState>,
    ingester: Ingester,
    JsonBody(batch): JsonBody<IngestBatch>,
) -> Result<Json<IngestAck>, AppError> {
    accept(&app, ingester, batch).await
}

#[utoipa::path(post, path = "/api/v1/ingest/calls", tag = "ingest",
    request_body(content = CallBatch, description = "Per-call events, folded by the server into per-second aggregates"),
    responses(
        (status = 200, description = "Committed (or committed before: `duplicate`)", body = IngestAck),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
        (status = 422, description = "A field is invalid; `path` says which", body = ErrorBody),
        (status = 503, description = "Ingest queue full; retry after `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn ingest_calls(
    State(app): State<AppState>,
    ingester: Ingester,
    JsonBody(calls): JsonBody<CallBatch>,
) -> Result<Json<IngestAck>, AppError> {
    calls.validate_calls().map_err(|err| AppError::Invalid {
        detail: err.detail,
        path: err.path,
    })?;
    accept(&app, ingester, calls.into_ingest_batch()).await
}

/// Validates a batch, checks the key's service, and waits for the commit.
async fn accept(
    app: &AppState,
    ingester: Ingester,
    batch: IngestBatch,
) -> Result<Json<IngestAck>, AppError> {
    protocol::validate_batch(&batch, now_ms()).map_err(|err| AppError::Invalid {
        detail: err.detail,
        path: err.path,
    })?;
    if let Some(service) = ingester.service
        && service != batch.service
    {
        return Err(AppError::Forbidden {
            detail: format!(
                "this key reports for the service {service:?}, not {:?}",
                batch.service
            ),
        });
    }
    Ok(Json(app.ingest.submit(batch).await?))
}

#[derive(Deserialize)]
pub struct BreakersQuery {
    service: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/breakers", tag = "read",
    params(("service" = Option<String>, Query, description = "Only this service")),
    responses((status = 200, body = Vec<BreakerSummary>),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn breakers(
    State(app): State<AppState>,
    _: Viewer,
    Query(query): Query<BreakersQuery>,
) -> Json<Vec<BreakerSummary>> {
    let fleet = app.fleet.read().expect("fleet lock poisoned");
    let mut summaries = fleet.summaries();
    if let Some(service) = query.service {
        summaries.retain(|s| s.service == service);
    }
    Json(summaries)
}

#[utoipa::path(get, path = "/api/v1/sparklines", tag = "read",
    params(("service" = Option<String>, Query, description = "Only this service")),
    responses((status = 200, description = "Calls/s per second over the last 2 minutes, per breaker", body = Vec<Sparkline>),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn sparklines(
    State(app): State<AppState>,
    _: Viewer,
    Query(query): Query<BreakersQuery>,
) -> Json<Vec<Sparkline>> {
    let fleet = app.fleet.read().expect("fleet lock poisoned");
    Json(fleet.sparklines(query.service.as_deref()))
}

#[utoipa::path(get, path = "/api/v1/services", tag = "read",
    responses((status = 200, body = Vec<ServiceSummary>),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn services(State(app): State<AppState>, _: Viewer) -> Json<Vec<ServiceSummary>> {
    let fleet = app.fleet.read().expect("fleet lock poisoned");
    let mut services: Vec<ServiceSummary> = Vec::new();
    for summary in fleet.summaries() {
        if services.last().is_none_or(|s| s.service != summary.service) {
            services.push(ServiceSummary {
                service: summary.service.clone(),
                breakers: 0,
                open_breakers: 0,
                instances: 0,
            });
        }
        let service = services.last_mut().expect("pushed above");
        service.breakers += 1;
        service.open_breakers += u32::from(summary.state == protocol::State::Open);
        service.instances = service.instances.max(summary.instances.len() as u32);
    }
    Json(services)
}

#[derive(Deserialize)]
pub struct RangeQuery {
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

impl RangeQuery {
    /// The range asked for, the last 15 minutes by default, checked.
    fn resolve(&self) -> Result<(i64, i64), AppError> {
        let to_ms = self.to_ms.unwrap_or_else(now_ms);
        let from_ms = self.from_ms.unwrap_or(to_ms - DEFAULT_RANGE_MS);
        if from_ms >= to_ms {
            return Err(AppError::BadQuery {
                detail: format!("from_ms ({from_ms}) must be before to_ms ({to_ms})"),
            });
        }
        if to_ms - from_ms > MAX_RANGE_MS {
            return Err(AppError::BadQuery {
                detail: "a range spans at most 31 days".into(),
            });
        }
        Ok((from_ms, to_ms))
    }
}

#[utoipa::path(get, path = "/api/v1/breakers/{service}/{breaker}/timeline", tag = "read",
    params(
        ("service" = String, Path, description = "Service name"),
        ("breaker" = String, Path, description = "Breaker name"),
        ("from_ms" = Option<i64>, Query, description = "Range start, ms since the epoch (default: 15 min before to_ms)"),
        ("to_ms" = Option<i64>, Query, description = "Range end, ms since the epoch (default: now)"),
    ),
    responses((status = 200, body = Timeline),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
        (status = 404, description = "Unknown breaker", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn timeline(
    State(app): State<AppState>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
    Query(query): Query<RangeQuery>,
) -> Result<Json<Timeline>, AppError> {
    let (from_ms, to_ms) = query.resolve()?;
    app.store
        .timeline(&service, &breaker, from_ms, to_ms)
        .await?
        .map(Json)
        .ok_or_else(|| no_breaker(&service, &breaker))
}

fn no_breaker(service: &str, breaker: &str) -> AppError {
    AppError::NotFound {
        detail: format!("no breaker {breaker:?} in service {service:?}"),
    }
}

/// Prometheus exposition. Readable like the rest of the read API.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn metrics(State(app): State<AppState>, _: Viewer) -> impl axum::response::IntoResponse {
    let depth = app.ingest.depth();
    let text = {
        let fleet = app.fleet.read().expect("fleet lock poisoned");
        app.metrics.render(&fleet, depth)
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        text,
    )
}

/// The step for a range: the smallest nice step that keeps the series near `TARGET_POINTS`.
pub fn auto_step_ms(range_ms: i64) -> i64 {
    let wanted = (range_ms + TARGET_POINTS - 1) / TARGET_POINTS;
    NICE_STEPS_MS
        .iter()
        .copied()
        .find(|&step| step >= wanted)
        .unwrap_or(NICE_STEPS_MS[NICE_STEPS_MS.len() - 1])
}

#[utoipa::path(get, path = "/api/v1/breakers/{service}/{breaker}/series", tag = "read",
    params(
        ("service" = String, Path, description = "Service name"),
        ("breaker" = String, Path, description = "Breaker name"),
        ("from_ms" = Option<i64>, Query, description = "Range start, ms since the epoch (default: 15 min before to_ms)"),
        ("to_ms" = Option<i64>, Query, description = "Range end, ms since the epoch (default: now)"),
    ),
    responses((status = 200, description = "Points at an automatic step (1 s to 1 day)", body = Series),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
        (status = 404, description = "Unknown breaker", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn series(
    State(app): State<AppState>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
    Query(query): Query<RangeQuery>,
) -> Result<Json<Series>, AppError> {
    let (from_ms, to_ms) = query.resolve()?;
    let step_ms = auto_step_ms(to_ms - from_ms);
    // Align to the step so that consecutive requests share step boundaries.
    let from_ms = from_ms.div_euclid(step_ms) * step_ms;
    app.store
        .series(&service, &breaker, from_ms, to_ms, step_ms)
        .await?
        .map(Json)
        .ok_or_else(|| no_breaker(&service, &breaker))
}

#[derive(Deserialize)]
pub struct TransitionsQuery {
    before_id: Option<i64>,
    limit: Option<i64>,
    instance: Option<String>,
    /// Only transitions into this state: `closed`, `open` or `half_open`.
    to: Option<String>,
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/breakers/{service}/{breaker}/transitions", tag = "read",
    params(
        ("service" = String, Path, description = "Service name"),
        ("breaker" = String, Path, description = "Breaker name"),
        ("before_id" = Option<i64>, Query, description = "Only transitions with a smaller id (paging)"),
        ("limit" = Option<i64>, Query, description = "1 to 1000, default 100"),
        ("instance" = Option<String>, Query, description = "Only this instance"),
        ("to" = Option<String>, Query, description = "Only transitions into this state (closed, open, half_open)"),
        ("from_ms" = Option<i64>, Query, description = "Only at or after this time"),
        ("to_ms" = Option<i64>, Query, description = "Only before this time"),
    ),
    responses((status = 200, description = "Newest first", body = Vec<TransitionRecord>),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
        (status = 404, description = "Unknown breaker", body = ErrorBody),
    ),
    security(("bearer" = [])))]
pub async fn transitions(
    State(app): State<AppState>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
    Query(query): Query<TransitionsQuery>,
) -> Result<Json<Vec<TransitionRecord>>, AppError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(AppError::BadQuery {
            detail: format!("limit must be between 1 and 1000, not {limit}"),
        });
    }
    let to_state = match query.to.as_deref() {
        None => None,
        Some(text) => Some(
            protocol::State::parse(text).ok_or_else(|| AppError::BadQuery {
                detail: format!("`to` must be closed, open or half_open, not {text:?}"),
            })?,
        ),
    };
    let filter = TransitionFilter {
        before_id: query.before_id,
        instance: query.instance,
        to_state,
        from_ms: query.from_ms,
        to_ms: query.to_ms,
    };
    app.store
        .breaker_transitions(&service, &breaker, &filter, limit)
        .await?
        .map(Json)
        .ok_or_else(|| no_breaker(&service, &breaker))
}

pub async fn not_found(uri: axum::http::Uri) -> AppError {
    AppError::NotFound {
        detail: format!("no route {}", uri.path()),
    }
}

/// A route that exists, asked with a method it does not answer (axum adds the `Allow` header).
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> AppError {
    AppError::MethodNotAllowed {
        detail: format!("{} does not answer {method}", uri.path()),
    }
}

#[cfg(test)]
mod tests {
    use super::auto_step_ms;

    #[test]
    fn steps_grow_with_the_range() {
        assert_eq!(auto_step_ms(60_000), 1_000);
        assert_eq!(auto_step_ms(15 * 60_000), 5_000);
        assert_eq!(auto_step_ms(24 * 3_600_000), 300_000);
        assert_eq!(auto_step_ms(7 * 24 * 3_600_000), 3_600_000);
    }
}
