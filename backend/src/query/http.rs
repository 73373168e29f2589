//! The read routes: services, breakers, sparklines, series, timeline, transitions, `/metrics`,
//! and the answers for unknown routes and methods.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use protocol::{
    BreakerSummary, ErrorBody, Series, ServiceSummary, Sparkline, Timeline, TransitionRecord,
};
use serde::Deserialize;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::extract::{Path, Query};
use crate::ingest::IngestQueue;
use crate::metrics::Metrics;
use crate::query::store::TransitionFilter;
use crate::state::SharedFleet;
use crate::store::Store;
use crate::time::Clock;

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

/// Items a list page holds when `limit` is not given.
pub const DEFAULT_PAGE: usize = 1_000;
/// The largest `limit` a list page takes.
pub const MAX_PAGE: usize = 5_000;

#[derive(Deserialize)]
pub struct ListQuery {
    service: Option<String>,
    limit: Option<i64>,
    /// The cursor from the previous page's `Link`.
    after: Option<String>,
}

impl ListQuery {
    fn limit(&self) -> Result<usize, AppError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE as i64).contains(&n) => Ok(n as usize),
            Some(n) => Err(AppError::BadQuery {
                detail: format!("limit must be between 1 and {MAX_PAGE}, not {n}"),
            }),
        }
    }

    /// The breaker cursor: a JSON array `[service, breaker]` (names may hold any character
    /// but control characters, `/` included, so no separator would do). Any other text is
    /// read as a service name: the page starts at that service's first breaker.
    fn breaker_cursor(&self) -> Option<(String, String)> {
        let text = self.after.as_ref()?;
        Some(serde_json::from_str(text).unwrap_or_else(|_| (text.clone(), String::new())))
    }
}

/// `Link: <path?query>; rel="next"` for the page after `after`, keeping the other parameters.
fn next_link(path: &str, query: &ListQuery, limit: usize, after: &str) -> (HeaderName, String) {
    let mut params = form_urlencoded::Serializer::new(String::new());
    if let Some(service) = &query.service {
        params.append_pair("service", service);
    }
    params.append_pair("limit", &limit.to_string());
    params.append_pair("after", after);
    (
        header::LINK,
        format!("<{path}?{}>; rel=\"next\"", params.finish()),
    )
}

/// A page of a list: the JSON array (the body's shape is unchanged by paging) and, when more
/// follows, a `Link` header to the next page.
fn page<T: serde::Serialize>(
    mut items: Vec<T>,
    limit: usize,
    next: impl FnOnce(&T) -> (HeaderName, String),
) -> Response {
    // One more item than asked was read: it says whether another page follows.
    let link = (items.len() > limit).then(|| {
        items.truncate(limit);
        next(items.last().expect("limit is at least 1"))
    });
    match link {
        Some(link) => ([link], Json(items)).into_response(),
        None => Json(items).into_response(),
    }
}

fn breaker_cursor_text(service: &str, breaker: &str) -> String {
    serde_json::to_string(&(service, breaker)).expect("two strings serialize")
}

#[utoipa::path(get, path = "/api/v1/breakers", tag = "read",
    params(
        ("service" = Option<String>, Query, description = "Only this service"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 5000, description = "Breakers per page, 1 to 5000, default 1000"),
        ("after" = Option<String>, Query, description = "Cursor: the `after` of the previous page's `Link: <…>; rel=\"next\"` header (a JSON array `[service, breaker]`); any other text pages from that service's first breaker"),
    ),
    responses((status = 200, body = Vec<BreakerSummary>,
            description = "Ordered by service and breaker; a `Link: <…>; rel=\"next\"` header when more follows",
            headers(("Link" = String, description = "The next page, when there is one"))),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
    ))]
pub async fn breakers(
    State(fleet): State<SharedFleet>,
    _: Viewer,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    let limit = query.limit()?;
    crate::extract::name_param("service", query.service.as_deref())?;
    let after = query.breaker_cursor();
    let summaries = {
        let fleet = fleet.read().expect("fleet lock poisoned");
        fleet.summaries_page(
            query.service.as_deref(),
            after.as_ref().map(|(s, b)| (s.as_str(), b.as_str())),
            limit + 1,
        )
    };
    Ok(page(summaries, limit, |last: &BreakerSummary| {
        let cursor = breaker_cursor_text(&last.service, &last.breaker);
        next_link("/api/v1/breakers", &query, limit, &cursor)
    }))
}

#[utoipa::path(get, path = "/api/v1/sparklines", tag = "read",
    params(
        ("service" = Option<String>, Query, description = "Only this service"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 5000, description = "Breakers per page, 1 to 5000, default 1000"),
        ("after" = Option<String>, Query, description = "Cursor: the `after` of the previous page's `Link: <…>; rel=\"next\"` header (a JSON array `[service, breaker]`); any other text pages from that service's first breaker"),
    ),
    responses((status = 200, description = "Calls/s per second over the last 2 minutes, per breaker, ordered by service and breaker; a `Link: <…>; rel=\"next\"` header when more follows", body = Vec<Sparkline>,
            headers(("Link" = String, description = "The next page, when there is one"))),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
    ))]
pub async fn sparklines(
    State(fleet): State<SharedFleet>,
    _: Viewer,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    let limit = query.limit()?;
    crate::extract::name_param("service", query.service.as_deref())?;
    let after = query.breaker_cursor();
    let lines = {
        let fleet = fleet.read().expect("fleet lock poisoned");
        fleet.sparklines_page(
            query.service.as_deref(),
            after.as_ref().map(|(s, b)| (s.as_str(), b.as_str())),
            limit + 1,
        )
    };
    Ok(page(lines, limit, |last: &Sparkline| {
        let cursor = breaker_cursor_text(&last.service, &last.breaker);
        next_link("/api/v1/sparklines", &query, limit, &cursor)
    }))
}

#[derive(Deserialize)]
pub struct ServicesQuery {
    limit: Option<i64>,
    after: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/services", tag = "read",
    params(
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 5000, description = "Services per page, 1 to 5000, default 1000"),
        ("after" = Option<String>, Query, description = "Cursor: the `after` of the previous page's `Link: <…>; rel=\"next\"` header (a service name)"),
    ),
    responses((status = 200, body = Vec<ServiceSummary>,
            description = "Ordered by service; a `Link: <…>; rel=\"next\"` header when more follows",
            headers(("Link" = String, description = "The next page, when there is one"))),
        (status = 400, description = "Malformed JSON or query", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
    ))]
pub async fn services(
    State(fleet): State<SharedFleet>,
    _: Viewer,
    Query(query): Query<ServicesQuery>,
) -> Result<Response, AppError> {
    let list = ListQuery {
        service: None,
        limit: query.limit,
        after: None,
    };
    let limit = list.limit()?;
    let services = {
        let fleet = fleet.read().expect("fleet lock poisoned");
        fleet.services_page(query.after.as_deref(), limit + 1)
    };
    Ok(page(services, limit, |last: &ServiceSummary| {
        next_link("/api/v1/services", &list, limit, &last.service)
    }))
}

#[derive(Deserialize)]
pub struct RangeQuery {
    from_ms: Option<i64>,
    to_ms: Option<i64>,
}

impl RangeQuery {
    /// The range asked for, the last 15 minutes before `now_ms` by default. A range longer than 31 days is cut
    /// to the 31 days that end at `to_ms`, and one that starts at or after its end is empty
    /// (`from_ms == to_ms`); the answer states the range it covers.
    pub fn resolve(&self, now_ms: i64) -> Result<(i64, i64), AppError> {
        let to_ms = match self.to_ms {
            Some(to_ms) => crate::time::checked_ms("to_ms", to_ms)?,
            None => now_ms.clamp(0, crate::time::MAX_MS),
        };
        let from_ms = match self.from_ms {
            Some(from_ms) => crate::time::checked_ms("from_ms", from_ms)?,
            None => to_ms.saturating_sub(DEFAULT_RANGE_MS).max(0),
        };
        Ok((from_ms.clamp(to_ms - MAX_RANGE_MS, to_ms), to_ms))
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
    ))]
pub async fn timeline(
    State(store): State<Store>,
    State(clock): State<Clock>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
    Query(query): Query<RangeQuery>,
) -> Result<Json<Timeline>, AppError> {
    let (from_ms, to_ms) = query.resolve(clock.now_ms())?;
    store
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
    ))]
pub async fn metrics(
    State(metrics): State<Arc<Metrics>>,
    State(ingest): State<IngestQueue>,
    State(fleet): State<SharedFleet>,
    _: Viewer,
) -> impl IntoResponse {
    let server = metrics.render_server(ingest.depth(), ingest.journaled());
    let body = Body::from_stream(crate::metrics::exposition(server, fleet));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
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
    ))]
pub async fn series(
    State(store): State<Store>,
    State(clock): State<Clock>,
    _: Viewer,
    Path((service, breaker)): Path<(String, String)>,
    Query(query): Query<RangeQuery>,
) -> Result<Json<Series>, AppError> {
    let (from_ms, to_ms) = query.resolve(clock.now_ms())?;
    let step_ms = auto_step_ms(to_ms - from_ms);
    // Align to the step so that consecutive requests share step boundaries.
    let from_ms = from_ms.div_euclid(step_ms) * step_ms;
    store
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
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
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
    ))]
pub async fn transitions(
    State(store): State<Store>,
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
    crate::extract::name_param("instance", query.instance.as_deref())?;
    let to_state = match query.to.as_deref() {
        None => None,
        Some(text) => Some(
            protocol::State::parse(text).ok_or_else(|| AppError::BadQuery {
                detail: format!("`to` must be closed, open or half_open, not {text:?}"),
            })?,
        ),
    };
    let check = |name, ms: Option<i64>| ms.map(|ms| crate::time::checked_ms(name, ms)).transpose();
    let filter = TransitionFilter {
        before_id: query.before_id,
        instance: query.instance,
        to_state,
        from_ms: check("from_ms", query.from_ms)?,
        to_ms: check("to_ms", query.to_ms)?,
    };
    store
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
