//! The server's HTTP API as plain async functions returning `protocol` types (same origin).

use std::fmt;

use protocol::{
    Alert, AutoTuneSettings, AutoTuneStep, AutoTuneView, BreakerMode, BreakerSummary, ConfigView,
    ControlRequest, ErrorBody, LintFinding, Me, Recommendation, Series, SilenceRequest, Sparkline,
    Timeline, TransitionRecord,
};
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, Response};

/// The live stream's URL, for `EventSource`, with summaries batched: one message per read of
/// the stream rather than one per summary (a fleet of 10,000 breakers sends 10,000 summaries a
/// second, and each message costs the page an event dispatch and a copy into wasm).
pub const STREAM_URL: &str = "/api/v1/stream?summaries=batched";

/// Why a call failed, in a sentence for the page.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    pub message: String,
}

impl ApiError {
    fn new(message: String) -> ApiError {
        ApiError {
            status: None,
            message,
        }
    }

    /// True when the server wants a viewer token.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self.status, Some(401 | 403))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// So that a panel's `Err` reaches its `ErrorBoundary` (see [`crate::loading`]).
impl std::error::Error for ApiError {}

/// `POST /api/v1/session`: signs in with a viewer or admin token. The server keeps the token
/// in an HttpOnly cookie (which the live stream's `EventSource` sends too); no page script ever
/// stores or reads it.
pub async fn sign_in(token: &str) -> Result<Me, ApiError> {
    let token = token.trim();
    if token.is_empty() || !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ApiError::new(
            "a token is letters, digits and `_` only (`fbu_…`)".into(),
        ));
    }
    let body = serde_json::to_string(&protocol::SignInRequest {
        token: Some(token.to_string()),
        code: None,
    })
    .map_err(|err| ApiError::new(err.to_string()))?;
    post_json("/api/v1/session", Some(&body)).await
}

/// `POST /api/v1/session` with a one-time sign-in code (from a `#signin=` link): the server
/// exchanges it, once, for the token it stands for and sets the same cookie.
pub async fn sign_in_with_code(code: &str) -> Result<Me, ApiError> {
    let body = serde_json::to_string(&protocol::SignInRequest {
        token: None,
        code: Some(code.to_string()),
    })
    .map_err(|err| ApiError::new(err.to_string()))?;
    post_json("/api/v1/session", Some(&body)).await
}

/// `DELETE /api/v1/session`: the server expires the cookie.
pub async fn sign_out() -> Result<(), ApiError> {
    let init = RequestInit::new();
    init.set_method("DELETE");
    send("/api/v1/session", "DELETE", &init).await.map(|_| ())
}

/// `GET /api/v1/breakers`: every breaker's summary, page after page.
pub async fn list_breakers() -> Result<Vec<BreakerSummary>, ApiError> {
    get_all_pages("/api/v1/breakers").await
}

/// `GET /api/v1/me`: who the token names (401 when the server needs one and has none).
pub async fn me() -> Result<Me, ApiError> {
    get_json("/api/v1/me").await
}

/// `GET /api/v1/sparklines`: the last 2 minutes of calls/s per breaker.
pub async fn sparklines() -> Result<Vec<Sparkline>, ApiError> {
    get_all_pages("/api/v1/sparklines").await
}

/// `GET …/series?from_ms&to_ms`: one point per step, step chosen by the server.
pub async fn series(
    service: &str,
    breaker: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Series, ApiError> {
    get_json(&format!(
        "{}/series?from_ms={from_ms}&to_ms={to_ms}",
        breaker_path(service, breaker)
    ))
    .await
}

/// `GET …/timeline?from_ms&to_ms`: one lane per instance.
pub async fn timeline(
    service: &str,
    breaker: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Timeline, ApiError> {
    get_json(&format!(
        "{}/timeline?from_ms={from_ms}&to_ms={to_ms}",
        breaker_path(service, breaker)
    ))
    .await
}

/// `GET …/transitions?limit`: the newest transitions first.
pub async fn transitions(
    service: &str,
    breaker: &str,
    limit: u32,
) -> Result<Vec<TransitionRecord>, ApiError> {
    get_json(&format!(
        "{}/transitions?limit={limit}",
        breaker_path(service, breaker)
    ))
    .await
}

/// `GET …/config`: the current config, its history and per-instance sync status.
pub async fn config(service: &str, breaker: &str) -> Result<ConfigView, ApiError> {
    get_json(&format!("{}/config", breaker_path(service, breaker))).await
}

/// `POST …/control`: holds the breaker in `mode` (admins only).
pub async fn control(service: &str, breaker: &str, mode: BreakerMode) -> Result<(), ApiError> {
    let body = serde_json::to_string(&ControlRequest {
        mode,
        reason: Some("dashboard".into()),
    })
    .map_err(|err| ApiError::new(err.to_string()))?;
    let url = format!("{}/control", breaker_path(service, breaker));
    let init = RequestInit::new();
    init.set_method("POST");
    init.set_body(&JsValue::from_str(&body));
    let headers = web_sys::Headers::new().map_err(|err| ApiError::new(describe(&err)))?;
    headers
        .set("Content-Type", "application/json")
        .map_err(|err| ApiError::new(describe(&err)))?;
    init.set_headers(&headers);
    send(&url, "POST", &init).await.map(|_| ())
}

/// `GET /api/v1/alerts`: the alerts, newest first.
pub async fn alerts() -> Result<Vec<Alert>, ApiError> {
    get_json("/api/v1/alerts").await
}

/// `POST /api/v1/alerts/{id}/ack`: records the signed-in admin as having acknowledged it.
pub async fn acknowledge_alert(id: i64) -> Result<Alert, ApiError> {
    post_json(&format!("/api/v1/alerts/{id}/ack"), None).await
}

/// `POST /api/v1/alerts/{id}/silence`: holds its notifications back for `for_ms` (0 lifts it).
pub async fn silence_alert(id: i64, for_ms: i64) -> Result<Alert, ApiError> {
    let body = serde_json::to_string(&SilenceRequest { for_ms })
        .map_err(|err| ApiError::new(err.to_string()))?;
    post_json(&format!("/api/v1/alerts/{id}/silence"), Some(&body)).await
}

/// `GET /api/v1/recommendations`: the stored recommendations, newest first.
pub async fn recommendations() -> Result<Vec<Recommendation>, ApiError> {
    get_json("/api/v1/recommendations").await
}

/// `POST …/recommendations?days=N`: runs the engine over the breaker's last `days` (admins only).
pub async fn recommend(
    service: &str,
    breaker: &str,
    days: u32,
) -> Result<Recommendation, ApiError> {
    post_json(
        &format!(
            "{}/recommendations?days={days}",
            breaker_path(service, breaker)
        ),
        None,
    )
    .await
}

/// `POST /api/v1/recommendations/{id}/accept` or `/reject` (admins only).
pub async fn decide_recommendation(id: i64, accept: bool) -> Result<Recommendation, ApiError> {
    let action = if accept { "accept" } else { "reject" };
    post_json(&format!("/api/v1/recommendations/{id}/{action}"), None).await
}

/// `GET …/lint`: findings about the current config against the last 7 days.
pub async fn lint(service: &str, breaker: &str) -> Result<Vec<LintFinding>, ApiError> {
    get_json(&format!("{}/lint", breaker_path(service, breaker))).await
}

/// `GET …/auto`: the breaker's auto mode, its canary and latest automatic changes.
pub async fn auto_mode(service: &str, breaker: &str) -> Result<AutoTuneView, ApiError> {
    get_json(&format!("{}/auto", breaker_path(service, breaker))).await
}

/// `PUT …/auto`: saves auto-mode settings (admins only).
pub async fn set_auto_mode(
    service: &str,
    breaker: &str,
    settings: &AutoTuneSettings,
) -> Result<AutoTuneView, ApiError> {
    let body = serde_json::to_string(settings).map_err(|err| ApiError::new(err.to_string()))?;
    send_json(
        "PUT",
        &format!("{}/auto", breaker_path(service, breaker)),
        Some(&body),
    )
    .await
}

/// `POST …/auto/run`: one auto-mode step now (admins only).
pub async fn auto_step(service: &str, breaker: &str) -> Result<AutoTuneStep, ApiError> {
    post_json(
        &format!("{}/auto/run", breaker_path(service, breaker)),
        None,
    )
    .await
}

async fn post_json<T: DeserializeOwned>(url: &str, body: Option<&str>) -> Result<T, ApiError> {
    send_json("POST", url, body).await
}

async fn send_json<T: DeserializeOwned>(
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Result<T, ApiError> {
    let init = RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        init.set_body(&JsValue::from_str(body));
        let headers = web_sys::Headers::new().map_err(|err| ApiError::new(describe(&err)))?;
        headers
            .set("Content-Type", "application/json")
            .map_err(|err| ApiError::new(describe(&err)))?;
        init.set_headers(&headers);
    }
    let text = send(url, method, &init).await?;
    serde_json::from_str(&text)
        .map_err(|err| ApiError::new(format!("{method} {url}: unexpected answer ({err})")))
}

/// `/api/v1/breakers/{service}/{breaker}`; names are untrusted and may hold `/`, `?` or `#`, so
/// each is one encoded path segment.
fn breaker_path(service: &str, breaker: &str) -> String {
    format!(
        "/api/v1/breakers/{}/{}",
        String::from(js_sys::encode_uri_component(service)),
        String::from(js_sys::encode_uri_component(breaker)),
    )
}

async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    let text = send(url, "GET", &RequestInit::new()).await?;
    serde_json::from_str(&text)
        .map_err(|err| ApiError::new(format!("GET {url}: unexpected answer ({err})")))
}

/// GETs a paginated list: every page, following `Link: <…>; rel="next"` until the last.
async fn get_all_pages<T: DeserializeOwned>(url: &str) -> Result<Vec<T>, ApiError> {
    let mut items = Vec::new();
    let mut next = Some(url.to_string());
    while let Some(url) = next.take() {
        let (text, link) = fetch(&url, "GET", &RequestInit::new()).await?;
        let page: Vec<T> = serde_json::from_str(&text)
            .map_err(|err| ApiError::new(format!("GET {url}: unexpected answer ({err})")))?;
        items.extend(page);
        next = link.as_deref().and_then(next_page);
    }
    Ok(items)
}

/// The target of the `rel="next"` link in a `Link` header's value, if any.
fn next_page(link: &str) -> Option<String> {
    link.split(',').find_map(|entry| {
        let (target, params) = entry.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| matches!(param.trim(), "rel=\"next\"" | "rel=next"));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// Sends a request and returns the body of a 2xx answer; an error names the status and the
/// server's `detail`.
async fn send(url: &str, method: &str, init: &RequestInit) -> Result<String, ApiError> {
    Ok(fetch(url, method, init).await?.0)
}

/// [`send`], also returning the answer's `Link` header.
async fn fetch(
    url: &str,
    method: &str,
    init: &RequestInit,
) -> Result<(String, Option<String>), ApiError> {
    let window = web_sys::window().ok_or_else(|| ApiError::new("no window".into()))?;
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(url, init))
        .await
        .map_err(|err| {
            ApiError::new(format!(
                "{method} {url}: network error ({})",
                describe(&err)
            ))
        })?
        .dyn_into()
        .map_err(|_| ApiError::new(format!("{method} {url}: not a Response")))?;
    let text = JsFuture::from(
        response
            .text()
            .map_err(|err| ApiError::new(describe(&err)))?,
    )
    .await
    .map_err(|err| {
        ApiError::new(format!(
            "{method} {url}: reading the body failed ({})",
            describe(&err)
        ))
    })?
    .as_string()
    .unwrap_or_default();
    if !response.ok() {
        let detail = serde_json::from_str::<ErrorBody>(&text)
            .map(|body| body.detail)
            .unwrap_or(text);
        return Err(ApiError {
            status: Some(response.status()),
            message: format!("{method} {url}: {} {detail}", response.status()),
        });
    }
    let link = response.headers().get("link").ok().flatten();
    Ok((text, link))
}

fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|err| String::from(err.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
