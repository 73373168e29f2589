//! The dashboard's session: `POST /api/v1/session` exchanges a viewer or admin token for an
//! HttpOnly, SameSite=Strict cookie (Secure when the public URL is https or a proxy says the
//! request came over https), so no page script can read the token; `DELETE` ends it.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{COOKIE_NAME, Principal};
use crate::error::AppError;
use crate::extract::JsonBody;
use crate::state::AppState;

/// How long the session cookie lasts: 30 days (revoking the token ends it at once).
const SESSION_MAX_AGE_S: u32 = 30 * 24 * 60 * 60;

#[utoipa::path(post, path = "/api/v1/session", tag = "read",
    request_body = protocol::SignInRequest,
    responses(
        (status = 200, description = "Signed in; the token is now in the HttpOnly cookie \
            `fusebox_token`", body = protocol::Me),
        (status = 400, description = "Malformed JSON", body = protocol::ErrorBody),
        (status = 401, description = "Unknown or revoked token", body = protocol::ErrorBody),
        (status = 403, description = "An ingest key, or a request from another origin",
            body = protocol::ErrorBody),
        (status = 415, description = "Not JSON", body = protocol::ErrorBody),
        (status = 422, description = "Invalid body", body = protocol::ErrorBody),
        (status = 429, description = "Too many failed sign-ins from this address",
            body = protocol::ErrorBody),
    ))]
pub async fn sign_in(
    State(app): State<AppState>,
    crate::listen::Peer(peer): crate::listen::Peer,
    headers: HeaderMap,
    JsonBody(request): JsonBody<protocol::SignInRequest>,
) -> Result<Response, AppError> {
    let token = request.token.as_str();
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(AppError::Invalid {
            detail: "a token is letters, digits and `_` only (`fbu_…`)".into(),
            path: "$.token".into(),
        });
    }
    let me = match super::check_secret(&app, token, peer, "/api/v1/session").await? {
        Some(Principal::User { name, role }) => super::me_of(name, role),
        _ => {
            return Err(AppError::Forbidden {
                detail: "sign in with a viewer or admin token, not an ingest key".into(),
            });
        }
    };
    let secure = app.web.secure_cookies || forwarded_https(&headers);
    let cookie = format!(
        "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_MAX_AGE_S}{}",
        if secure { "; Secure" } else { "" }
    );
    let mut response = Json(me).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a checked token is a valid header"),
    );
    Ok(response)
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "read",
    responses(
        (status = 204, description = "Signed out; the cookie is expired"),
        (status = 403, description = "A request from another origin", body = protocol::ErrorBody),
    ))]
pub async fn sign_out(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let secure = app.web.secure_cookies || forwarded_https(&headers);
    let cookie = format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a fixed cookie is a valid header"),
    );
    response
}

/// A proxy in front says the browser reached it over https.
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}
