//! The live stream, `GET /api/v1/stream`: Server-Sent Events with transitions and breaker
//! summaries, optionally of one service, with heartbeats.
//!
//! Each transition carries its store id as the SSE `id`. A client that reconnects with
//! `Last-Event-ID` first receives every transition it missed, read from the store, then the
//! live feed; a subscriber that lags behind the hub refetches from the store the same way.
//! The first message, `ready`, carries the newest transition id, so even a client that has
//! seen no transition yet resumes without a gap. The stream re-checks its credential every
//! [`crate::auth::REVALIDATE_EVERY`] and ends with `revoked` once it is revoked.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use protocol::StreamEvent;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::extract::Query;
use crate::ingest::hub::Published;
use crate::state::AppState;

/// Transitions read from the store per query while catching up.
const CATCH_UP_PAGE: i64 = 500;

#[derive(Deserialize)]
pub struct StreamQuery {
    service: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/stream", tag = "read",
    params(
        ("service" = Option<String>, Query, description = "Only this service"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this transition id"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `ready` (id = newest transition id), \
            `transition` (id = its id, data = StreamEvent), `summary` (data = StreamEvent), \
            `alert` (data = AlertNotice); \
            heartbeat comments every 15 s", content_type = "text/event-stream", body = StreamEvent),
        (status = 400, description = "Bad Last-Event-ID", body = protocol::ErrorBody),
        (status = 401, description = "No or unknown credentials", body = protocol::ErrorBody),
    ))]
pub async fn stream(
    State(app): State<AppState>,
    _: Viewer,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .ok_or_else(|| AppError::BadQuery {
                    detail: "the Last-Event-ID header must be a transition id (an integer)".into(),
                })?,
        ),
    };
    crate::extract::name_param("service", query.service.as_deref())?;
    // Subscribe before reading the store, so nothing falls between the two.
    let live = app.hub.subscribe();
    let start_after = match last_event_id {
        Some(id) => id,
        None => app.store.newest_transition_id().await?,
    };
    let alerts = app.alerts.subscribe();
    let (tx, rx) = mpsc::channel(256);
    let revoked = crate::auth::revoked(
        app.clone(),
        crate::auth::presented_secret_in(&headers).map(str::to_string),
    );
    tokio::spawn(feed(
        app,
        query.service,
        start_after,
        live,
        alerts,
        tx,
        revoked,
    ));
    Ok(Sse::new(ReceiverStream::new(rx)).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(15))
            .text("heartbeat"),
    ))
}

async fn feed(
    app: AppState,
    service: Option<String>,
    start_after: i64,
    mut live: broadcast::Receiver<Arc<Published>>,
    mut alerts: broadcast::Receiver<Arc<protocol::AlertNotice>>,
    tx: mpsc::Sender<Result<Event, Infallible>>,
    revoked: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(revoked);
    let ready = Event::default()
        .event("ready")
        .id(start_after.to_string())
        .data(format!("{{\"last_id\":{start_after}}}"));
    if tx.send(Ok(ready)).await.is_err() {
        return;
    }
    let mut last_sent = start_after;
    if catch_up(&app, service.as_deref(), &mut last_sent, &tx)
        .await
        .is_err()
    {
        return;
    }
    loop {
        let event = tokio::select! {
            _ = tx.closed() => return,
            () = &mut revoked => {
                // The last message says why the stream ends; the browser's reconnect then
                // meets a 401 and the dashboard asks for a token again.
                let ended = Event::default()
                    .event("revoked")
                    .data("{\"detail\":\"the credential of this stream was revoked\"}");
                let _ = tx.send(Ok(ended)).await;
                return;
            }
            event = live.recv() => event,
            notice = alerts.recv() => {
                // Alert news is a notice, not a record: a lagging client reads the alerts API.
                if let Ok(notice) = notice
                    && let Some(message) = alert_message(&notice, service.as_deref())
                    && tx.send(Ok(message)).await.is_err()
                {
                    return;
                }
                continue;
            }
        };
        match event {
            Ok(event) => {
                let Some(message) = to_message(&event, service.as_deref(), &mut last_sent) else {
                    continue;
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if catch_up(&app, service.as_deref(), &mut last_sent, &tx)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Sends every stored transition after `last_sent`; Err when the client went away.
async fn catch_up(
    app: &AppState,
    service: Option<&str>,
    last_sent: &mut i64,
    tx: &mpsc::Sender<Result<Event, Infallible>>,
) -> Result<(), ()> {
    loop {
        let records = match app
            .store
            .transitions_after(*last_sent, service, CATCH_UP_PAGE)
            .await
        {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "stream catch-up failed");
                return Err(());
            }
        };
        let n = records.len();
        for record in records {
            let event = Published::new(StreamEvent::Transition(record));
            if let Some(message) = to_message(&event, service, last_sent) {
                tx.send(Ok(message)).await.map_err(|_| ())?;
            }
        }
        if n < CATCH_UP_PAGE as usize {
            return Ok(());
        }
    }
}

/// The SSE message for an event, or `None` when the client does not want it or had it already.
fn to_message(published: &Published, service: Option<&str>, last_sent: &mut i64) -> Option<Event> {
    match &published.event {
        StreamEvent::Transition(record) => {
            if service.is_some_and(|s| s != record.service) || record.id <= *last_sent {
                return None;
            }
            *last_sent = record.id;
            Some(
                Event::default()
                    .event("transition")
                    .id(record.id.to_string())
                    .data(&published.json),
            )
        }
        StreamEvent::Summary(summary) => {
            if service.is_some_and(|s| s != summary.service) {
                return None;
            }
            Some(Event::default().event("summary").data(&published.json))
        }
    }
}

/// The SSE message `event: alert` for an alert notice, when the client's filter admits it.
fn alert_message(notice: &protocol::AlertNotice, service: Option<&str>) -> Option<Event> {
    if let Some(service) = service
        && !notice.alert.breakers.iter().any(|b| b.service == service)
    {
        return None;
    }
    let data = serde_json::to_string(notice).expect("alert notices serialize");
    Some(Event::default().event("alert").data(data))
}
