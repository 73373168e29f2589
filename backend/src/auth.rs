//! Keys, users and roles.
//!
//! - Ingest keys (`fbk_…`) are scoped to one service and may only ingest for it.
//! - User tokens (`fbu_…`) carry the role `viewer` (read) or `admin` (read and write).
//! - Secrets are 256 random bits, shown once at creation and stored only as SHA-256 hashes.
//! - A request presents its secret as `Authorization: Bearer …` or, for the dashboard's
//!   browser requests (an `EventSource` cannot set headers), the `fusebox_token` cookie.
//!
//! There are no default credentials: `fusebox users add NAME --admin` creates the first admin.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::error::AppError;
use crate::server::AppState;
use crate::store::Store;
use crate::time::now_ms;

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
#[derive(Debug)]
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

pub async fn create_api_key(store: &Store, service: &str) -> anyhow::Result<Created> {
    protocol::validate_name(service).map_err(|d| anyhow::anyhow!("service name {d}"))?;
    let secret = new_secret("fbk_")?;
    let id = sqlx::query_scalar(
        "INSERT INTO api_keys (service, secret_hash, created_ms) VALUES (?, ?, ?) RETURNING id",
    )
    .bind(service)
    .bind(hash_secret(&secret))
    .bind(now_ms())
    .fetch_one(store.pool())
    .await?;
    Ok(Created { id, secret })
}

pub async fn add_user(store: &Store, name: &str, role: Role) -> anyhow::Result<Created> {
    protocol::validate_name(name).map_err(|d| anyhow::anyhow!("user name {d}"))?;
    let secret = new_secret("fbu_")?;
    let id = sqlx::query_scalar(
        "INSERT INTO users (name, role, token_hash, created_ms) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(hash_secret(&secret))
    .bind(now_ms())
    .fetch_one(store.pool())
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            anyhow::anyhow!("a user named {name:?} exists already")
        }
        _ => err.into(),
    })?;
    Ok(Created { id, secret })
}

/// Revokes an ingest key; false when no active key has that id.
pub async fn revoke_api_key(store: &Store, id: i64) -> anyhow::Result<bool> {
    let res = sqlx::query("UPDATE api_keys SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL")
        .bind(now_ms())
        .bind(id)
        .execute(store.pool())
        .await?;
    Ok(res.rows_affected() == 1)
}

/// Revokes a user's token; false when no active user has that name.
pub async fn revoke_user(store: &Store, name: &str) -> anyhow::Result<bool> {
    let res = sqlx::query("UPDATE users SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL")
        .bind(now_ms())
        .bind(name)
        .execute(store.pool())
        .await?;
    Ok(res.rows_affected() == 1)
}

pub async fn list_api_keys(store: &Store) -> anyhow::Result<Vec<Listed>> {
    let rows = sqlx::query("SELECT id, service, created_ms, revoked_ms FROM api_keys ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| Listed {
            id: row.get(0),
            name: row.get(1),
            role: "ingest".into(),
            created_ms: row.get(2),
            revoked_ms: row.get(3),
        })
        .collect())
}

pub async fn list_users(store: &Store) -> anyhow::Result<Vec<Listed>> {
    let rows = sqlx::query("SELECT id, name, role, created_ms, revoked_ms FROM users ORDER BY id")
        .fetch_all(store.pool())
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| Listed {
            id: row.get(0),
            name: row.get(1),
            role: row.get(2),
            created_ms: row.get(3),
            revoked_ms: row.get(4),
        })
        .collect())
}

pub async fn has_admin(store: &Store) -> anyhow::Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND revoked_ms IS NULL",
    )
    .fetch_one(store.pool())
    .await?;
    Ok(n > 0)
}

/// The principal a secret belongs to, if it is active.
pub async fn authenticate(store: &Store, secret: &str) -> anyhow::Result<Option<Principal>> {
    let hash = hash_secret(secret);
    if secret.starts_with("fbk_") {
        let row = sqlx::query(
            "SELECT id, service FROM api_keys WHERE secret_hash = ? AND revoked_ms IS NULL",
        )
        .bind(&hash)
        .fetch_optional(store.pool())
        .await?;
        return Ok(row.map(|row| Principal::Ingest {
            key_id: row.get(0),
            service: row.get(1),
        }));
    }
    let row =
        sqlx::query("SELECT name, role FROM users WHERE token_hash = ? AND revoked_ms IS NULL")
            .bind(&hash)
            .fetch_optional(store.pool())
            .await?;
    Ok(row.map(|row| Principal::User {
        name: row.get(0),
        role: if row.get::<String, _>(1) == "admin" {
            Role::Admin
        } else {
            Role::Viewer
        },
    }))
}

/// The secret a request presents: a bearer token, else the dashboard's cookie.
fn presented_secret(parts: &Parts) -> Option<&str> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        return value.to_str().ok()?.strip_prefix("Bearer ").map(str::trim);
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

async fn principal(parts: &Parts, app: &AppState) -> Result<Option<Principal>, AppError> {
    let Some(secret) = presented_secret(parts) else {
        return Ok(None);
    };
    let hash = hash_secret(secret);
    if let Some(principal) = app.credentials.get(&hash) {
        return Ok(Some(principal));
    }
    match authenticate(&app.store, secret).await? {
        Some(principal) => {
            app.credentials.put(hash, principal.clone());
            Ok(Some(principal))
        }
        None => Err(AppError::Unauthorized {
            detail: "the presented key or token is unknown or revoked".into(),
        }),
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
    ),
    security(("bearer" = [])))]
pub async fn me(
    axum::extract::State(app): axum::extract::State<AppState>,
    Caller(principal): Caller,
) -> Result<axum::Json<protocol::Me>, AppError> {
    let me = match principal {
        Some(Principal::User { name, role }) => protocol::Me {
            name: Some(name),
            role: match role {
                Role::Viewer => protocol::AccessRole::Viewer,
                Role::Admin => protocol::AccessRole::Admin,
            },
        },
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
