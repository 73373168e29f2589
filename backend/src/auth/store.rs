//! The credentials' SQL: ingest keys and users, stored with the SHA-256 hashes of their
//! secrets.

use super::{Listed, Principal, Role};
use crate::store::{Store, StoreError, on_db};

#[derive(sqlx::FromRow)]
struct ActiveKeyRow {
    id: i64,
    service: String,
}

#[derive(sqlx::FromRow)]
struct ActiveUserRow {
    name: String,
    role: String,
}

/// Stores a new ingest key for `service`; returns its id.
pub async fn insert_api_key(
    store: &Store,
    service: &str,
    secret_hash: &str,
    now: i64,
) -> Result<i64, StoreError> {
    Ok(on_db!(&store.db, pool => sqlx::query_scalar(
        "INSERT INTO api_keys (service, secret_hash, created_ms) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(service)
    .bind(secret_hash)
    .bind(now)
    .fetch_one(pool)
    .await)?)
}

/// Stores a new user; returns its id, or [`StoreError::Conflict`] when the name is taken.
pub async fn insert_user(
    store: &Store,
    name: &str,
    role: Role,
    token_hash: &str,
    now: i64,
) -> Result<i64, StoreError> {
    on_db!(&store.db, pool => sqlx::query_scalar(
        "INSERT INTO users (name, role, token_hash, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(token_hash)
    .bind(now)
    .fetch_one(pool)
    .await)
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("a user named {name:?} exists already"))
        }
        _ => err.into(),
    })
}

/// Revokes an ingest key; false when no active key has that id.
pub async fn revoke_api_key(store: &Store, id: i64, now: i64) -> Result<bool, StoreError> {
    let res = on_db!(&store.db, pool => sqlx::query("UPDATE api_keys SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
        .bind(now)
        .bind(id)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    Ok(res == 1)
}

/// Revokes a user's token; false when no active user has that name.
pub async fn revoke_user(store: &Store, name: &str, now: i64) -> Result<bool, StoreError> {
    let res = on_db!(&store.db, pool => sqlx::query("UPDATE users SET revoked_ms = $1 WHERE name = $2 AND revoked_ms IS NULL")
        .bind(now)
        .bind(name)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    Ok(res == 1)
}

/// Every ingest key, revoked ones included, by id.
pub async fn api_keys(store: &Store) -> Result<Vec<Listed>, StoreError> {
    Ok(on_db!(&store.db, pool => sqlx::query_as(
        "SELECT id, service AS name, 'ingest' AS role, created_ms, revoked_ms
         FROM api_keys ORDER BY id",
    )
    .fetch_all(pool)
    .await)?)
}

/// Every user, revoked ones included, by id.
pub async fn users(store: &Store) -> Result<Vec<Listed>, StoreError> {
    Ok(
        on_db!(&store.db, pool => sqlx::query_as("SELECT id, name, role, created_ms, revoked_ms FROM users ORDER BY id")
            .fetch_all(pool)
            .await)?,
    )
}

/// How many admins have a token that is not revoked.
pub async fn count_active_admins(store: &Store) -> Result<i64, StoreError> {
    Ok(on_db!(&store.db, pool => sqlx::query_scalar(
            "SELECT COUNT(*) FROM users WHERE role = 'admin' AND revoked_ms IS NULL",
        )
        .fetch_one(pool)
        .await)?)
}

/// The service of the active ingest key with this hash.
pub async fn ingest_key(store: &Store, secret_hash: &str) -> Result<Option<Principal>, StoreError> {
    let row: Option<ActiveKeyRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT id, service FROM api_keys WHERE secret_hash = $1 AND revoked_ms IS NULL",
    )
    .bind(secret_hash)
    .fetch_optional(pool)
    .await)?;
    Ok(row.map(|row| Principal::Ingest {
        key_id: row.id,
        service: row.service,
    }))
}

/// The active user whose token has this hash.
pub async fn user(store: &Store, token_hash: &str) -> Result<Option<Principal>, StoreError> {
    let row: Option<ActiveUserRow> = on_db!(&store.db, pool => sqlx::query_as("SELECT name, role FROM users WHERE token_hash = $1 AND revoked_ms IS NULL")
            .bind(token_hash)
            .fetch_optional(pool)
            .await)?;
    Ok(row.map(|row| Principal::User {
        name: row.name,
        role: if row.role == "admin" {
            Role::Admin
        } else {
            Role::Viewer
        },
    }))
}
