//! Keys, users and roles.
//!
//! - Ingest keys (`fbk_…`) are scoped to one service and may only ingest for it.
//! - User tokens (`fbu_…`) carry the role `viewer` (read) or `admin` (read and write).
//! - Secrets are 256 random bits, shown once at creation and stored only as SHA-256 hashes.
//! - A request presents its secret as `Authorization: Bearer …` or, for the dashboard's
//!   browser requests (an `EventSource` cannot set headers), the `fusebox_token` cookie.
//!
//! There are no default credentials: `fusebox users add NAME --admin` creates the first admin.
//!
//! Failed authentications are logged (without the secret) and throttled per peer address
//! ([`throttle`]); the dashboard signs in through [`session`], which sets the cookie HttpOnly;
//! cookie-authenticated writes must come from the dashboard's own origin ([`origin`]); long-lived
//! answers (the live stream, the config long poll) re-check their credential ([`revoked`]).
//! Keys and users are read and written in [`store`]; one-time sign-in codes, which only the
//! demo issues, are kept in memory by [`code`].

pub mod code;
pub mod origin;
pub mod session;
pub mod store;
pub mod throttle;

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::state::AppState;
use crate::store::Store;
use crate::time::Clock;

pub const COOKIE_NAME: &str = "fusebox_token";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Viewer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
}

/// What guards the server against guessers and other origins: the failed-authentication
/// throttle, and what the same-origin check and the session cookie need to know.
pub struct WebGuard {
    pub failed_auth: throttle::FailedAuth,
    /// The dashboard's public origin (`https://fusebox.example.com`), accepted as the same
    /// origin besides the request's own `Host` (a proxy may rewrite that).
    pub public_origin: Option<String>,
    /// Mark the session cookie `Secure` (the public URL is https).
    pub secure_cookies: bool,
}

impl WebGuard {
    /// Failed authentications allowed per peer address and minute before it gets 429.
    pub const FAILED_AUTH_PER_MINUTE: u32 = 10;

    /// The guard for a server whose dashboard is reached at `public_url`, if known.
    pub fn new(public_url: Option<&str>, failed_auth_per_minute: u32) -> WebGuard {
        let public_origin = public_url.and_then(origin::origin_of);
        WebGuard {
            failed_auth: throttle::FailedAuth::new(
                std::num::NonZeroU32::new(failed_auth_per_minute.max(1)).expect("at least 1"),
            ),
            secure_cookies: public_origin
                .as_deref()
                .is_some_and(|origin| origin.starts_with("https://")),
            public_origin,
        }
    }
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// A service's ingest key.
    Ingest { key_id: i64, service: String },
    /// A person with a role.
    User { name: String, role: Role },
    /// Nobody, allowed to read because the server runs with `--anonymous-viewer`.
    Anonymous,
}

/// A created credential: its id and the secret, which is never shown again.
#[derive(Debug)]
pub struct Created {
    pub id: i64,
    pub secret: String,
}

/// A listed credential, without its secret.
#[derive(Debug, sqlx::FromRow)]
pub struct Listed {
    pub id: i64,
    /// The service of a key, the name of a user.
    pub name: String,
    /// `ingest` for a key, the role of a user.
    pub role: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

fn new_secret(prefix: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no system randomness: {err}"))?;
    let mut secret = String::with_capacity(prefix.len() + 64);
    secret.push_str(prefix);
    for byte in bytes {
        secret.push_str(&format!("{byte:02x}"));
    }
    Ok(secret)
}

pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// When a key or user was created or revoked. Keys and users are managed from the command line
/// (`fusebox keys`, `fusebox users`) and by tests, outside any server: at the wall clock.
fn managed_at() -> i64 {
    Clock::system().now_ms()
}

pub async fn create_api_key(store: &Store, service: &str) -> anyhow::Result<Created> {
    protocol::validate_name(service).map_err(|d| anyhow::anyhow!("service name {d}"))?;
    let secret = new_secret("fbk_")?;
    let id = store::insert_api_key(store, service, &hash_secret(&secret), managed_at()).await?;
    Ok(Created { id, secret })
}

pub async fn add_user(store: &Store, name: &str, role: Role) -> anyhow::Result<Created> {
    protocol::validate_name(name).map_err(|d| anyhow::anyhow!("user name {d}"))?;
    let secret = new_secret("fbu_")?;
    let id = store::insert_user(store, name, role, &hash_secret(&secret), managed_at()).await?;
    Ok(Created { id, secret })
}

/// Revokes an ingest key; false when no active key has that id.
pub async fn revoke_api_key(store: &Store, id: i64) -> anyhow::Result<bool> {
    Ok(store::revoke_api_key(store, id, managed_at()).await?)
}

/// Revokes a user's token; false when no active user has that name.
pub async fn revoke_user(store: &Store, name: &str) -> anyhow::Result<bool> {
    Ok(store::revoke_user(store, name, managed_at()).await?)
}

pub async fn list_api_keys(store: &Store) -> anyhow::Result<Vec<Listed>> {
    Ok(store::api_keys(store).await?)
}

pub async fn list_users(store: &Store) -> anyhow::Result<Vec<Listed>> {
    Ok(store::users(store).await?)
}

pub async fn has_admin(store: &Store) -> anyhow::Result<bool> {
    Ok(store::count_active_admins(store).await? > 0)
}

/// The principal a secret belongs to, if it is active.
pub async fn authenticate(store: &Store, secret: &str) -> anyhow::Result<Option<Principal>> {
    let hash = hash_secret(secret);
    if secret.starts_with("fbk_") {
        return Ok(store::ingest_key(store, &hash).await?);
    }
    Ok(store::user(store, &hash).await?)
}

/// The secret a request presents: a bearer token, else the dashboard's cookie.
fn presented_secret(parts: &Parts) -> Option<&str> {
    presented_secret_in(&parts.headers)
}

/// The secret in these headers: a bearer token, else the dashboard's cookie.
pub fn presented_secret_in(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        return value.to_str().ok()?.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

/// What kind of secret this looks like, for logs that must not show the secret itself.
pub fn secret_kind(secret: &str) -> &'static str {
    if secret.starts_with("fbk_") {
        "ingest key"
    } else if secret.starts_with("fbu_") {
        "user token"
    } else if secret.starts_with(code::CODE_PREFIX) {
        "sign-in code"
    } else {
        "unrecognised secret"
    }
}

async fn principal(parts: &Parts, app: &AppState) -> Result<Option<Principal>, AppError> {
    let Some(secret) = presented_secret(parts) else {
        return Ok(None);
    };
    check_secret(
        app,
        secret,
        crate::listen::peer(&parts.extensions),
        parts.uri.path(),
    )
    .await
}

/// Who `secret` names; 401 when nobody (logged and counted against `peer`), 429 when `peer`
/// failed too often lately.
pub async fn check_secret(
    app: &AppState,
    secret: &str,
    peer: Option<std::net::SocketAddr>,
    path: &str,
) -> Result<Option<Principal>, AppError> {
    let hash = hash_secret(secret);
    if let Some(principal) = app.credentials.get(&hash) {
        return Ok(Some(principal));
    }
    check_not_throttled(app, peer)?;
    match authenticate(&app.store, secret).await? {
        Some(principal) => {
            app.credentials.put(hash, principal.clone());
            Ok(Some(principal))
        }
        None => Err(failed(
            app,
            peer,
            (secret_kind(secret), &hash),
            path,
            "the presented key or token is unknown or revoked",
        )),
    }
}

/// 429 when `peer` failed to authenticate too often lately, checked before a secret is looked
/// at (and counted as a failure, as a refused secret would be).
pub fn check_not_throttled(
    app: &AppState,
    peer: Option<std::net::SocketAddr>,
) -> Result<(), AppError> {
    match peer.and_then(|peer| app.web.failed_auth.blocked(peer.ip())) {
        Some(wait) => {
            app.metrics.record_auth_failure(true);
            Err(throttled(wait))
        }
        None => Ok(()),
    }
}

/// A failed authentication with a secret of `kind` whose hash is `hash`: logged (without the
/// secret) and counted against `peer`; 401 with `detail`, or 429 once `peer` failed too often.
pub fn failed(
    app: &AppState,
    peer: Option<std::net::SocketAddr>,
    (kind, hash): (&str, &str),
    path: &str,
    detail: &str,
) -> AppError {
    // The hash's first bytes tell repeated attempts with one secret apart without
    // revealing it.
    tracing::warn!(
        peer = ?peer,
        kind,
        fingerprint = &hash[..8],
        path,
        "authentication failed: unknown or revoked credential"
    );
    let blocked = peer.and_then(|peer| app.web.failed_auth.failed(peer.ip()));
    app.metrics.record_auth_failure(blocked.is_some());
    match blocked {
        Some(wait) => throttled(wait),
        None => AppError::Unauthorized {
            detail: detail.into(),
        },
    }
}

fn throttled(wait: std::time::Duration) -> AppError {
    let retry_after_s = u32::try_from(wait.as_secs()).unwrap_or(u32::MAX).max(1);
    AppError::Throttled {
        detail: format!(
            "too many failed authentications from this address; try again in {retry_after_s} s"
        ),
        retry_after_s,
    }
}

/// How often long-lived answers (the live stream, the config long poll) check that the
/// credential they were opened with is still valid.
pub const REVALIDATE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Completes once `secret` is no longer valid (revoked or deleted), checking the database every
/// [`REVALIDATE_EVERY`]; never completes for `None` (an anonymous viewer has nothing to revoke).
/// A database error counts as still valid: a stream is not cut because of a busy moment.
pub async fn revoked(app: AppState, secret: Option<String>) {
    let Some(secret) = secret else {
        return std::future::pending().await;
    };
    let mut every = tokio::time::interval(REVALIDATE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    loop {
        every.tick().await;
        if let Ok(None) = authenticate(&app.store, &secret).await {
            app.credentials.remove(&hash_secret(&secret));
            tracing::info!(
                kind = secret_kind(&secret),
                "closing a long-lived answer: its credential was revoked"
            );
            return;
        }
    }
}

/// How long a checked credential is trusted without asking the database again. Every ingest
/// batch and read carries a credential; a short cache spares a query per request, and a key
/// revoked from the CLI (another process) stops working within this time.
pub const CREDENTIAL_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Credentials checked recently, by the hash of their secret. Only known credentials are
/// kept (an unknown one is asked about each time), and never more than `MAX_CACHED`.
#[derive(Default)]
pub struct CredentialCache {
    entries: std::sync::Mutex<HashMap<String, (Principal, tokio::time::Instant)>>,
}

const MAX_CACHED: usize = 10_000;

impl CredentialCache {
    fn get(&self, hash: &str) -> Option<Principal> {
        let entries = self.entries.lock().expect("credential cache lock poisoned");
        entries
            .get(hash)
            .filter(|(_, checked)| checked.elapsed() < CREDENTIAL_TTL)
            .map(|(principal, _)| principal.clone())
    }

    fn put(&self, hash: String, principal: Principal) {
        let mut entries = self.entries.lock().expect("credential cache lock poisoned");
        if entries.len() >= MAX_CACHED {
            entries.retain(|_, (_, checked)| checked.elapsed() < CREDENTIAL_TTL);
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
        }
        entries.insert(hash, (principal, tokio::time::Instant::now()));
    }

    fn remove(&self, hash: &str) {
        let mut entries = self.entries.lock().expect("credential cache lock poisoned");
        entries.remove(hash);
    }
}

/// Whoever the request's credentials name, if any (401 for unknown credentials); the handler
/// decides what they may do.
pub struct Caller(pub Option<Principal>);

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Caller, AppError> {
        Ok(Caller(principal(parts, app).await?))
    }
}

/// Access to read: a viewer or admin token, or nothing at all under `--anonymous-viewer`.
pub struct Viewer(pub Principal);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Viewer, AppError> {
        match principal(parts, app).await? {
            Some(user @ Principal::User { .. }) => Ok(Viewer(user)),
            Some(Principal::Ingest { .. }) => Err(AppError::Forbidden {
                detail: "an ingest key cannot read; use a viewer or admin token".into(),
            }),
            Some(Principal::Anonymous) | None if app.anonymous_viewer => {
                Ok(Viewer(Principal::Anonymous))
            }
            Some(Principal::Anonymous) | None => Err(AppError::Unauthorized {
                detail: "reading needs a viewer or admin token (Authorization: Bearer …)".into(),
            }),
        }
    }
}

/// Access to write: an admin token.
pub struct Admin {
    pub name: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Admin, AppError> {
        match principal(parts, app).await? {
            Some(Principal::User {
                name,
                role: Role::Admin,
            }) => Ok(Admin { name }),
            Some(_) => Err(AppError::Forbidden {
                detail: "this needs an admin token".into(),
            }),
            None => Err(AppError::Unauthorized {
                detail: "this needs an admin token (Authorization: Bearer …)".into(),
            }),
        }
    }
}

/// Access to ingest: an ingest key (for its own service only) or an admin token.
pub struct Ingester {
    /// The one service this key may report for; `None` for an admin.
    pub service: Option<String>,
}

impl FromRequestParts<AppState> for Ingester {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Ingester, AppError> {
        match principal(parts, app).await? {
            Some(Principal::Ingest { service, .. }) => Ok(Ingester {
                service: Some(service),
            }),
            Some(Principal::User {
                role: Role::Admin, ..
            }) => Ok(Ingester { service: None }),
            Some(_) => Err(AppError::Forbidden {
                detail: "ingest needs the service's ingest key".into(),
            }),
            None => Err(AppError::Unauthorized {
                detail: "ingest needs an ingest key (Authorization: Bearer fbk_…); \
                         create one with `fusebox keys create --service NAME`"
                    .into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = new_secret("fbk_").unwrap();
        let b = new_secret("fbk_").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(hash_secret(&a), hash_secret(&a.clone()));
    }
}

/// `GET /api/v1/me`: who the credentials name and their role, so the dashboard can hide admin
/// controls from viewers. Anonymous under `--anonymous-viewer`, else 401 without credentials.
#[utoipa::path(get, path = "/api/v1/me", tag = "read",
    responses((status = 200, body = protocol::Me),
        (status = 401, description = "No or unknown credentials", body = protocol::ErrorBody),
        (status = 403, description = "An ingest key", body = protocol::ErrorBody),
    ))]
pub async fn me(
    axum::extract::State(app): axum::extract::State<AppState>,
    Caller(principal): Caller,
) -> Result<axum::Json<protocol::Me>, AppError> {
    let me = match principal {
        Some(Principal::User { name, role }) => me_of(name, role),
        Some(Principal::Ingest { .. }) => {
            return Err(AppError::Forbidden {
                detail: "an ingest key is not a dashboard user".into(),
            });
        }
        Some(Principal::Anonymous) | None if app.anonymous_viewer => protocol::Me {
            name: None,
            role: protocol::AccessRole::Anonymous,
        },
        Some(Principal::Anonymous) | None => {
            return Err(AppError::Unauthorized {
                detail: "this server needs a viewer or admin token".into(),
            });
        }
    };
    Ok(axum::Json(me))
}

/// What `/me` (and signing in) tells the dashboard about a user.
pub fn me_of(name: String, role: Role) -> protocol::Me {
    protocol::Me {
        name: Some(name),
        role: match role {
            Role::Viewer => protocol::AccessRole::Viewer,
            Role::Admin => protocol::AccessRole::Admin,
        },
    }
}
