//! The dashboard's session: `POST /api/v1/session` exchanges a viewer or admin token (or a
//! one-time sign-in code that stands for one, see [`super::code`]) for an HttpOnly,
//! SameSite=Strict cookie (Secure when the public URL is https or a proxy says the request came
//! over https), so no page script can read the token; `DELETE` ends it.

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
    description = "Signs the dashboard in with exactly one of `token` (a viewer or admin token) \
        or `code` (a one-time sign-in code, such as the one in the admin link `fusebox demo` \
        prints: exchanged once for the token it stands for, then unknown). Either sets the same \
        HttpOnly session cookie. A body with both fields or neither is refused (422).",
    request_body = protocol::SignInRequest,
    responses(
        (status = 200, description = "Signed in; the token is now in the HttpOnly cookie \
            `fusebox_token`", body = protocol::Me),
        (status = 400, description = "Malformed JSON", body = protocol::ErrorBody),
        (status = 401, description = "Unknown or revoked token, or a code that is unknown or \
            used already", body = protocol::ErrorBody),
        (status = 403, description = "An ingest key, or a request from another origin",
            body = protocol::ErrorBody),
        (status = 415, description = "Not JSON", body = protocol::ErrorBody),
        (status = 422, description = "Invalid body: an unknown field, both `token` and `code` \
            or neither, or a field that is not letters, digits and `_`",
            body = protocol::ErrorBody),
        (status = 429, description = "Too many failed sign-ins from this address",
            body = protocol::ErrorBody),
    ))]
pub async fn sign_in(
    State(app): State<AppState>,
    crate::listen::Peer(peer): crate::listen::Peer,
    headers: HeaderMap,
    JsonBody(request): JsonBody<protocol::SignInRequest>,
) -> Result<Response, AppError> {
    const PATH: &str = "/api/v1/session";
    let token = match (request.token, request.code) {
        (Some(token), None) => {
            check_text(
                &token,
                "$.token",
                "a token is letters, digits and `_` only (`fbu_…`)",
            )?;
            token
        }
        (None, Some(code)) => {
            check_text(
                &code,
                "$.code",
                "a sign-in code is letters, digits and `_` only (`fbc_…`)",
            )?;
            super::check_not_throttled(&app, peer)?;
            match app.sign_in_codes.redeem(&code, app.clock.now_ms()) {
                Some(token) => token,
                None => {
                    return Err(super::failed(
                        &app,
                        peer,
                        (super::secret_kind(&code), &super::hash_secret(&code)),
                        PATH,
                        "the sign-in code is unknown, used already or expired",
                    ));
                }
            }
        }
        (Some(_), Some(_)) | (None, None) => {
            return Err(AppError::Invalid {
                detail: "sign in with exactly one of `token` and `code`".into(),
                path: "$".into(),
            });
        }
    };
    let me = match super::check_secret(&app, &token, peer, PATH).await? {
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

/// 422 at `path` unless `text` is a non-empty run of letters, digits and `_`, as every secret is.
fn check_text(text: &str, path: &str, detail: &str) -> Result<(), AppError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(AppError::Invalid {
            detail: detail.into(),
            path: path.into(),
        });
    }
    Ok(())
}

/// A proxy in front says the browser reached it over https.
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}
