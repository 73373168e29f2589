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

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use protocol::StreamEvent;
use serde::Deserialize;
use tokio::sync::broadcast;

use crate::auth::Viewer;
use crate::error::AppError;
use crate::extract::Query;
use crate::ingest::hub::{News, Published, SummaryForm};
use crate::state::AppState;

mod outbox;

use outbox::{Feeder, Gone, message};

/// Transitions read from the store per query while catching up.
const CATCH_UP_PAGE: i64 = 500;

/// A comment goes out after this long without a message, so proxies keep the stream open.
const HEARTBEAT: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
pub struct StreamQuery {
    service: Option<String>,
    /// How summaries come: `each` (the default) or `batched`.
    #[serde(default)]
    summaries: SummaryForm,
}

#[utoipa::path(get, path = "/api/v1/stream", tag = "read",
    params(
        ("service" = Option<String>, Query, description = "Only this service"),
        ("summaries" = Option<String>, Query, description = "`each` (default): an \
            `event: summary` message per summary; `batched`: the summaries a read finds \
            pending as one `event: summaries` message with a `data:` line per summary (a \
            StreamEvent each: JSON Lines once joined), in the order they would have come \
            one by one"),
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this transition id"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `ready` (id = newest transition id), \
            `transition` (id = its id, data = StreamEvent), `summary` (data = StreamEvent), \
            or with `summaries=batched` `summaries` (data = StreamEvent per line), `alert` (data = AlertNotice); \
            heartbeat comments every 15 s", content_type = "text/event-stream", body = StreamEvent),
        (status = 400, description = "Bad Last-Event-ID, service or summaries", body = protocol::ErrorBody),
        (status = 401, description = "No or unknown credentials", body = protocol::ErrorBody),
    ))]
pub async fn stream(
    State(app): State<AppState>,
    _: Viewer,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
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
    let (feeder, reader) = outbox::outbox(query.summaries);
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
        feeder,
        revoked,
    ));
    // Chunks of messages as they come; a heartbeat comment after `HEARTBEAT` without any.
    let chunks = futures_util::stream::unfold(reader, |reader| async move {
        let chunk = match tokio::time::timeout(HEARTBEAT, reader.next_chunk()).await {
            Ok(chunk) => chunk?,
            Err(_) => Bytes::from_static(b":heartbeat\n\n"),
        };
        Some((Ok::<_, Infallible>(chunk), reader))
    });
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(chunks))
        .expect("a valid response"))
}

/// Feeds one stream's outbox: `ready`, the transitions it missed, then the live news (see
/// [`outbox`] for the order a slow client reads them in).
async fn feed(
    app: AppState,
    service: Option<String>,
    start_after: i64,
    mut live: broadcast::Receiver<News>,
    mut alerts: broadcast::Receiver<Arc<protocol::AlertNotice>>,
    out: Feeder,
    revoked: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(revoked);
    let ready = message(
        "ready",
        Some(&start_after.to_string()),
        &format!("{{\"last_id\":{start_after}}}"),
    );
    if out.send(ready).await.is_err() {
        return;
    }
    let mut last_sent = start_after;
    if catch_up(&app, service.as_deref(), &mut last_sent, &out)
        .await
        .is_err()
    {
        return;
    }
    loop {
        let news = tokio::select! {
            () = out.reader_gone() => return,
            () = &mut revoked => {
                // The last message says why the stream ends; the browser's reconnect then
                // meets a 401 and the dashboard asks for a token again.
                let ended = message(
                    "revoked",
                    None,
                    "{\"detail\":\"the credential of this stream was revoked\"}",
                );
                let _ = out.send(ended).await;
                return;
            }
            news = live.recv() => news,
            notice = alerts.recv() => {
                // Alert news is a notice, not a record: a lagging client reads the alerts API.
                if let Ok(notice) = notice
                    && let Some(message) = alert_message(&notice, service.as_deref())
                    && out.send(message).await.is_err()
                {
                    return;
                }
                continue;
            }
        };
        match news {
            Ok(news) => {
                if offer(&out, &news, service.as_deref(), &mut last_sent)
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if catch_up(&app, service.as_deref(), &mut last_sent, &out)
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

/// Queues what the client wants of `news`.
async fn offer(
    out: &Feeder,
    news: &News,
    service: Option<&str>,
    last_sent: &mut i64,
) -> Result<(), Gone> {
    // A flush the client wants whole goes as it is.
    if service.is_none() && news.summaries_only() {
        out.summary_block(news);
        return Ok(());
    }
    // Summaries in runs, one lock each; a transition goes after the summaries before it.
    let mut summaries = Vec::new();
    for (index, published) in news.iter().enumerate() {
        match &published.event {
            StreamEvent::Transition(record) => {
                if let Some(message) =
                    transition_message(record, &published.json, service, last_sent)
                {
                    out.summaries(news, &summaries);
                    summaries.clear();
                    out.send_transition(message, published.breaker).await?;
                }
            }
            StreamEvent::Summary(summary) => {
                if service.is_none_or(|s| s == summary.service) {
                    summaries.push(index);
                }
            }
        }
    }
    out.summaries(news, &summaries);
    Ok(())
}

/// Sends every stored transition after `last_sent`; Err when the client went away.
async fn catch_up(
    app: &AppState,
    service: Option<&str>,
    last_sent: &mut i64,
    out: &Feeder,
) -> Result<(), Gone> {
    loop {
        let records = match app
            .store
            .transitions_after(*last_sent, service, CATCH_UP_PAGE)
            .await
        {
            Ok(records) => records,
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "stream catch-up failed");
                return Err(Gone);
            }
        };
        let n = records.len();
        let news: News = records
            .into_iter()
            .map(|record| Published::new(StreamEvent::Transition(record)))
            .collect();
        offer(out, &news, service, last_sent).await?;
        if n < CATCH_UP_PAGE as usize {
            return Ok(());
        }
    }
}

/// The SSE message for a transition, or `None` when the client does not want it or had it
/// already.
fn transition_message(
    record: &protocol::TransitionRecord,
    json: &str,
    service: Option<&str>,
    last_sent: &mut i64,
) -> Option<Bytes> {
    if service.is_some_and(|s| s != record.service) || record.id <= *last_sent {
        return None;
    }
    *last_sent = record.id;
    Some(message("transition", Some(&record.id.to_string()), json))
}

/// The SSE message `event: alert` for an alert notice, when the client's filter admits it.
fn alert_message(notice: &protocol::AlertNotice, service: Option<&str>) -> Option<Bytes> {
    if let Some(service) = service
        && !notice.alert.breakers.iter().any(|b| b.service == service)
    {
        return None;
    }
    let data = serde_json::to_string(notice).expect("alert notices serialize");
    Some(message("alert", None, &data))
}
