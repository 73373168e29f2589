//! `AppError`: every failure a handler can answer with, as an HTTP status and a JSON
//! [`protocol::ErrorBody`] that says what is wrong and where.
//!
//! Conversions stay free of side effects, but for one: a write that gave up waiting for the
//! database's lock is answered 503, not 500, so the 500 path's log would never show it; its
//! conversion logs it as a warning. Request logging happens in the tracing middleware.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not JSON at all (400).
    #[error("malformed JSON: {detail}")]
    MalformedJson { detail: String },
    /// The body, declared in a binary form, cannot be decoded in it (400).
    #[error("malformed body: {detail}")]
    MalformedBody { detail: String },
    /// The body is JSON but a field is missing, mistyped or out of range (422).
    #[error("invalid request: {detail} at {path}")]
    Invalid { detail: String, path: String },
    /// The body is larger than the server accepts (413).
    #[error("request body too large: {detail}")]
    TooLarge { detail: String },
    /// The body is not declared as JSON (415).
    #[error("unsupported media type: {detail}")]
    UnsupportedMediaType { detail: String },
    /// The query string cannot be understood (400).
    #[error("bad query: {detail}")]
    BadQuery { detail: String },
    /// No such resource (404).
    #[error("not found: {detail}")]
    NotFound { detail: String },
    /// The route exists but not with this method (405).
    #[error("method not allowed: {detail}")]
    MethodNotAllowed { detail: String },
    /// No credentials, or credentials that match nothing (401).
    #[error("unauthorized: {detail}")]
    Unauthorized { detail: String },
    /// Valid credentials without the right (403).
    #[error("forbidden: {detail}")]
    Forbidden { detail: String },
    /// An ingest batch would create a name beyond a cardinality limit (422 `limit_exceeded`;
    /// why not 429: see `limits.rs`).
    #[error("limit exceeded: {} at {}", .0.detail, .0.path)]
    LimitExceeded(crate::ingest::limits::LimitExceeded),
    /// The request conflicts with the current state (409).
    #[error("conflict: {detail}")]
    Conflict { detail: String },
    /// The ingest queue is full, or a write waited too long for the database's lock; the
    /// client should retry after a moment (503).
    #[error("overloaded: {detail}")]
    Overloaded { detail: String, retry_after_s: u32 },
    /// Too many failed attempts from this address; retry after a while (429).
    #[error("throttled: {detail}")]
    Throttled { detail: String, retry_after_s: u32 },
    /// An engine run did not finish within its time budget (503, with `Retry-After`).
    #[error("engine budget exceeded: {budget_ms} ms")]
    EngineBudget { budget_ms: u64 },
    /// Anything else (500). The detail is logged, not shown.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for AppError {
    /// Internal (500), unless the database's lock stayed taken longer than a write waits for
    /// it: a moment's contention, answered 503 so that the client retries.
    fn from(err: anyhow::Error) -> AppError {
        if crate::store::is_lock_timeout(&err) {
            tracing::warn!(
                error = format!("{err:#}"),
                "a write gave up waiting for the database's lock; answered 503"
            );
            return AppError::database_locked();
        }
        AppError::Internal(err)
    }
}

impl AppError {
    /// A write gave up waiting for the database's lock (see [`crate::store::is_lock_timeout`]).
    pub fn database_locked() -> AppError {
        AppError::Overloaded {
            detail: "the database stayed locked by another writer longer than the server waits \
                     for it; retry later"
                .into(),
            retry_after_s: 1,
        }
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(err: crate::store::StoreError) -> AppError {
        match err {
            crate::store::StoreError::Conflict(detail) => AppError::Conflict { detail },
            crate::store::StoreError::NotFound(detail) => AppError::NotFound { detail },
            other => anyhow::Error::from(other).into(),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> AppError {
        anyhow::Error::from(err).into()
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::MalformedJson { .. }
            | AppError::MalformedBody { .. }
            | AppError::BadQuery { .. } => StatusCode::BAD_REQUEST,
            AppError::Invalid { .. } | AppError::LimitExceeded(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden { .. } => StatusCode::FORBIDDEN,
            AppError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Overloaded { .. } | AppError::EngineBudget { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn body(&self) -> protocol::ErrorBody {
        let (error, detail, path) = match self {
            AppError::MalformedJson { detail } => ("malformed_json", detail.clone(), None),
            AppError::MalformedBody { detail } => ("malformed_body", detail.clone(), None),
            AppError::Invalid { detail, path } => ("invalid", detail.clone(), Some(path.clone())),
            AppError::LimitExceeded(err) => {
                ("limit_exceeded", err.detail.clone(), Some(err.path.clone()))
            }
            AppError::TooLarge { detail } => ("too_large", detail.clone(), None),
            AppError::UnsupportedMediaType { detail } => {
                ("unsupported_media_type", detail.clone(), None)
            }
            AppError::BadQuery { detail } => ("bad_query", detail.clone(), None),
            AppError::NotFound { detail } => ("not_found", detail.clone(), None),
            AppError::MethodNotAllowed { detail } => ("method_not_allowed", detail.clone(), None),
            AppError::Conflict { detail } => ("conflict", detail.clone(), None),
            AppError::Unauthorized { detail } => ("unauthorized", detail.clone(), None),
            AppError::Forbidden { detail } => ("forbidden", detail.clone(), None),
            AppError::Overloaded { detail, .. } => ("overloaded", detail.clone(), None),
            AppError::Throttled { detail, .. } => ("throttled", detail.clone(), None),
            AppError::EngineBudget { budget_ms } => (
                "engine_budget_exceeded",
                format!(
                    "the engine did not finish within its time budget of {budget_ms} ms \
                     (engine.budget_ms in the settings file); try again later or with fewer days"
                ),
                None,
            ),
            AppError::Internal(_) => (
                "internal",
                "the server failed to handle the request; see its log".to_string(),
                None,
            ),
        };
        protocol::ErrorBody {
            error: error.to_string(),
            detail,
            path,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(err) = &self {
            // The one place an internal error's chain is kept: the response hides it, the log shows it.
            tracing::error!(error = format!("{err:#}"), "internal error");
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        let retry_after_s = match self {
            AppError::Overloaded { retry_after_s, .. }
            | AppError::Throttled { retry_after_s, .. } => Some(retry_after_s),
            // The run is as long next time: a minute lets the server breathe.
            AppError::EngineBudget { .. } => Some(60),
            _ => None,
        };
        if let Some(retry_after_s) = retry_after_s {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&retry_after_s.to_string())
                    .expect("digits are a valid header"),
            );
        }
        response
    }
}
