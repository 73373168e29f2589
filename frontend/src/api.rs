//! The server's HTTP API as plain async functions returning `protocol` types (same origin).

use std::fmt;

use protocol::{BreakerSummary, ErrorBody, Series};
use serde::de::DeserializeOwned;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

/// The live stream's URL, for `EventSource`.
pub const STREAM_URL: &str = "/api/v1/stream";

/// The cookie the server reads a viewer token from (an `EventSource` cannot send headers).
const TOKEN_COOKIE: &str = "fusebox_token";

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

/// Stores a viewer token in the cookie the server reads, for this origin's API paths.
pub fn set_token(token: &str) -> Result<(), String> {
    let token = token.trim();
    if token.is_empty()
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c))
    {
        return Err("a token is letters, digits, `-`, `_`, `.` and `~` only".into());
    }
    let document = web_sys::window()
        .and_then(|window| window.document())
        .ok_or("no document")?
        .dyn_into::<web_sys::HtmlDocument>()
        .map_err(|_| "not an HTML document")?;
    document
        .set_cookie(&format!(
            "{TOKEN_COOKIE}={token}; path=/; SameSite=Strict; max-age=2592000"
        ))
        .map_err(|err| describe(&err))
}

/// `GET /api/v1/breakers`: every breaker's summary.
pub async fn list_breakers() -> Result<Vec<BreakerSummary>, ApiError> {
    get_json("/api/v1/breakers").await
}

/// `GET /api/v1/breakers/{service}/{breaker}/series`: the last 15 minutes, step chosen by the server.
pub async fn series(service: &str, breaker: &str) -> Result<Series, ApiError> {
    // Names are untrusted and may hold `/`, `?` or `#`: each is one encoded path segment.
    let url = format!(
        "/api/v1/breakers/{}/{}/series",
        String::from(js_sys::encode_uri_component(service)),
        String::from(js_sys::encode_uri_component(breaker)),
    );
    get_json(&url).await
}

async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    let window = web_sys::window().ok_or_else(|| ApiError::new("no window".into()))?;
    let response: Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|err| ApiError::new(format!("GET {url}: network error ({})", describe(&err))))?
        .dyn_into()
        .map_err(|_| ApiError::new(format!("GET {url}: not a Response")))?;
    let text = JsFuture::from(
        response
            .text()
            .map_err(|err| ApiError::new(describe(&err)))?,
    )
    .await
    .map_err(|err| {
        ApiError::new(format!(
            "GET {url}: reading the body failed ({})",
            describe(&err)
        ))
    })?
    .as_string()
    .unwrap_or_default();
    if !response.ok() {
        let detail = serde_json::from_str::<ErrorBody>(&text)
            .map(|body| body.detail)
            .unwrap_or(text);
        return Err(ApiError::new(format!(
            "GET {url}: {} {detail}",
            response.status()
        )));
    }
    serde_json::from_str(&text)
        .map_err(|err| ApiError::new(format!("GET {url}: unexpected answer ({err})")))
}

fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|err| String::from(err.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
