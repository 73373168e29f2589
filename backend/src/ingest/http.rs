//! The ingest routes: aggregates and per-call events from the services' reporters.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::{CallBatch, ErrorBody, IngestAck, IngestBatch};

use crate::auth::Ingester;
use crate::error::AppError;
use crate::extract::JsonBody;
use crate::ingest::IngestQueue;
use crate::ingest::limits::Limits;
use crate::ingest::writer::{Arriving, Taken};
use crate::state::{AppState, SharedFleet};
use crate::store::Store;
use crate::time::Clock;

/// What accepting a batch needs: the writer's queue, the limits and the clock; and the fleet
/// and the store, for the config versions that per-call events leave out.
#[derive(Clone)]
pub struct Accept {
    ingest: IngestQueue,
    limits: Limits,
    clock: Clock,
    fleet: SharedFleet,
    store: Store,
}

impl axum::extract::FromRef<AppState> for Accept {
    fn from_ref(app: &AppState) -> Accept {
        Accept {
            ingest: app.ingest.clone(),
            limits: app.limits,
            clock: app.clock.clone(),
            fleet: app.fleet.clone(),
            store: app.store.clone(),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/ingest", tag = "ingest",
    request_body = IngestBatch,
    responses(
        (status = 200, description = "Committed (or committed before: `duplicate`)", body = IngestAck),
        (status = 202, description = "Asked for with `Prefer: respond-async`, and taken so (header `Preference-Applied: respond-async`; SQLite only, and only when every name in the batch is known already): written to the server's ingest journal and queued, committed shortly, also after a crash; `duplicate` is false, not known yet", body = IngestAck),
        (status = 400, description = "Malformed JSON or query, or a body declared in the compact form that is not a batch in it", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
        (status = 413, description = "Body over the limit", body = ErrorBody),
        (status = 415, description = "Neither JSON nor the compact form in a version this server knows (`detail` names the types it takes)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`invalid`), or the batch would create a service, breaker or instance beyond a limit (`limit_exceeded`: nothing of it is stored); `path` says which", body = ErrorBody),
        (status = 503, description = "Ingest queue full, or the database locked by another writer for longer than the server waits; retry after `Retry-After`", body = ErrorBody),
    ))]
pub async fn ingest(
    State(app): State<Accept>,
    ingester: Ingester,
    Arrival(arriving): Arrival,
    headers: header::HeaderMap,
    IngestBody(batch): IngestBody,
) -> Result<Response, AppError> {
    let early = prefers_async(&headers);
    let taken = accept(&app, ingester, batch, Some(arriving), early).await?;
    Ok(match taken.early {
        true => (
            StatusCode::ACCEPTED,
            [("preference-applied", "respond-async")],
            Json(taken.ack),
        )
            .into_response(),
        false => Json(taken.ack).into_response(),
    })
}

/// Whether a request asks to be answered before its work is done (RFC 7240's
/// `Prefer: respond-async`, among other preferences or not).
fn prefers_async(headers: &header::HeaderMap) -> bool {
    (headers.get_all("prefer").iter())
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            let name = preference.split(';').next().unwrap_or_default();
            name.trim().eq_ignore_ascii_case("respond-async")
        })
}

/// Whether the server knows every breaker of `batch` on its instance already (a batch that
/// names nothing new cannot be refused by a limit, so it may be answered before its commit).
fn all_known(fleet: &SharedFleet, batch: &IngestBatch) -> bool {
    let fleet = fleet.read().expect("fleet lock poisoned");
    (batch.aggregates.iter().map(|a| &a.breaker))
        .chain(batch.transitions.iter().map(|t| &t.breaker))
        .all(|name| (fleet.instance_of(&batch.service, name, &batch.instance)).is_some())
}

/// An ingest body: JSON, or the compact form ([`protocol::compact`]) when its `Content-Type`
/// says so. Both are validated alike once decoded.
pub struct IngestBody(IngestBatch);

impl<S: Send + Sync> FromRequest<S> for IngestBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<IngestBody, AppError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok());
        match content_type.and_then(protocol::compact::declared) {
            Some(Ok(())) => {
                let bytes =
                    crate::extract::body_bytes(req, state)
                        .await
                        .map_err(|err| match err {
                            // A body that could not be read is not JSON's fault here.
                            AppError::MalformedJson { detail } => {
                                AppError::MalformedBody { detail }
                            }
                            err => err,
                        })?;
                decode_compact(&bytes).map(IngestBody)
            }
            Some(Err(detail)) => Err(AppError::UnsupportedMediaType { detail }),
            None if crate::extract::declares_json(req.headers()) => {
                let JsonBody(batch) = JsonBody::from_request(req, state).await?;
                Ok(IngestBody(batch))
            }
            None => Err(AppError::UnsupportedMediaType {
                detail: format!(
                    "expected the header `Content-Type: application/json` or `Content-Type: {}`",
                    protocol::compact::MEDIA_TYPE
                ),
            }),
        }
    }
}

/// A batch from a body in the compact form; a 400 or a 422 saying what is wrong and where.
pub fn decode_compact(bytes: &[u8]) -> Result<IngestBatch, AppError> {
    protocol::compact::decode(bytes).map_err(|detail| compact_error(bytes, detail))
}

/// What is wrong with a body in the compact form, and where: read again, tracking the path
/// (only a body that fails pays for it). The form has no field names, so the path counts
/// fields by position (`$[4][0][3][0]`: the fifth field of the batch, `aggregates`, its first
/// item, that item's fourth field, `counts`, and its first, `success`). An integer above
/// int64's maximum or a state with no name is a 422 at its field, like JSON's; any other body
/// that is not a batch in the form (cut short, bytes after the batch, an integer too long for
/// its field's type, which JSON would answer with a 422) a 400 that says where it stopped.
fn compact_error(bytes: &[u8], detail: String) -> AppError {
    let mut deserializer = postcard::Deserializer::from_bytes(bytes);
    let err = serde_path_to_error::deserialize::<_, IngestBatch>(&mut deserializer).err();
    match err {
        Some(err) if matches!(err.inner(), postcard::Error::SerdeDeCustom) => AppError::Invalid {
            detail: format!(
                "a value out of its range (an integer above {}, or a state that is none of \
                 closed, open, half_open); the path counts fields by position",
                protocol::MAX_INT64
            ),
            path: crate::extract::json_path(err.path()),
        },
        Some(err) => AppError::MalformedBody {
            detail: format!(
                "not a batch in the compact form: {detail} (at {})",
                crate::extract::json_path(err.path())
            ),
        },
        None => AppError::MalformedBody {
            detail: format!("not a batch in the compact form: {detail}"),
        },
    }
}

/// Counts the request as on its way to the writer from before its body is read (see
/// [`Arriving`]).
pub struct Arrival(Arriving);

impl FromRequestParts<AppState> for Arrival {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        _parts: &mut Parts,
        app: &AppState,
    ) -> Result<Arrival, Self::Rejection> {
        Ok(Arrival(app.ingest.arriving()))
    }
}

#[utoipa::path(post, path = "/api/v1/ingest/calls", tag = "ingest",
    request_body(content = CallBatch, description = "Per-call events, folded by the server into per-second aggregates"),
    responses(
        (status = 200, description = "Committed (or committed before: `duplicate`)", body = IngestAck),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No or unknown credentials", body = ErrorBody),
        (status = 403, description = "Credentials without the right", body = ErrorBody),
        (status = 422, description = "A field is invalid (`invalid`), or the batch would create a service, breaker or instance beyond a limit (`limit_exceeded`: nothing of it is stored); `path` says which", body = ErrorBody),
        (status = 503, description = "Ingest queue full, or the database locked by another writer for longer than the server waits; retry after `Retry-After`", body = ErrorBody),
    ))]
pub async fn ingest_calls(
    State(app): State<Accept>,
    ingester: Ingester,
    JsonBody(calls): JsonBody<CallBatch>,
) -> Result<Json<IngestAck>, AppError> {
    calls.validate_calls().map_err(|err| AppError::Invalid {
        detail: err.detail,
        path: err.path,
    })?;
    // The calls are folded into aggregates: a path into the folded batch is turned back into
    // one into the body sent, the first call of the breaker named (one name per breaker kept).
    let mut first_call: HashMap<String, usize> = HashMap::new();
    for (idx, call) in calls.calls.iter().enumerate() {
        if !first_call.contains_key(&call.breaker) {
            first_call.insert(call.breaker.clone(), idx);
        }
    }
    // An event without a config version keeps the one the instance runs (see
    // `CallBatch::into_ingest_batch`), so an adapter that does not know it never shows the
    // instance as running version 0 or an older version.
    let known = known_versions(&app, &calls).await?;
    let batch = calls.into_ingest_batch(|breaker| known.get(breaker).copied().flatten());
    match accept(&app, ingester, batch, None, false).await {
        Err(AppError::LimitExceeded(mut err)) if err.path.starts_with("$.aggregates[") => {
            if let Some(idx) = first_call.get(&err.name) {
                err.path = format!("$.calls[{idx}].breaker");
            }
            Err(AppError::LimitExceeded(err))
        }
        answer => answer.map(|taken| Json(taken.ack)),
    }
}

/// Per breaker of `calls` with an event that carries no version: the version the server knows
/// the instance runs. The fleet's (its last report), else the version it last reported running
/// through `POST /api/v1/config-status` (an instance whose first call batch this is), else
/// none.
async fn known_versions(
    app: &Accept,
    calls: &CallBatch,
) -> Result<BTreeMap<String, Option<u64>>, AppError> {
    let unversioned = calls
        .calls
        .iter()
        .filter(|c| c.config_version.is_none())
        .map(|c| c.breaker.as_str())
        .chain(
            calls
                .transitions
                .iter()
                .filter(|t| t.config_version.is_none())
                .map(|t| t.breaker.as_str()),
        );
    let mut known: BTreeMap<String, Option<u64>> = unversioned
        .map(|breaker| (breaker.to_owned(), None))
        .collect();
    {
        // Held for the lookups only.
        let fleet = app.fleet.read().expect("fleet lock poisoned");
        for (breaker, version) in known.iter_mut() {
            *version = fleet
                .instance_of(&calls.service, breaker, &calls.instance)
                .map(|live| live.config_version);
        }
    }
    for (breaker, version) in known.iter_mut().filter(|(_, v)| v.is_none()) {
        *version = crate::configs::store::reported_running_version(
            &app.store,
            &calls.service,
            breaker,
            &calls.instance,
        )
        .await?;
    }
    Ok(known)
}

/// Validates a batch, checks the key's service, and waits for the commit; with `early`, when
/// the batch names nothing new, only until it is journaled (see [`crate::ingest::journal`]).
async fn accept(
    app: &Accept,
    ingester: Ingester,
    batch: IngestBatch,
    arriving: Option<Arriving>,
    early: bool,
) -> Result<Taken, AppError> {
    protocol::validate_batch_with(
        &batch,
        app.clock.now_ms(),
        &protocol::BatchLimits {
            max_calls_per_s: app.limits.max_calls_per_s,
        },
    )
    .map_err(|err| AppError::Invalid {
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
    let early = early && all_known(&app.fleet, &batch);
    app.ingest.submit_arrived(batch, arriving, early).await
}
