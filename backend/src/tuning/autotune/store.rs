//! Auto mode's SQL: settings per breaker, the automatic changes, and the facts a canary is
//! judged on (openings, the instances' reported versions).

use protocol::{AutoTuneChange, AutoTuneSettings, ChangeStatus};

use crate::store::{Db, Store, StoreError, Tx, on_db, on_tx, parse_json};

/// The breakers in auto mode, ordered by service and name.
pub async fn enabled_breakers(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    Ok(on_db!(&store.db, pool => sqlx::query_as(
        "SELECT b.service, b.name FROM auto_tune a JOIN breakers b ON b.id = a.breaker_id
         WHERE a.enabled ORDER BY b.service, b.name",
    )
    .fetch_all(pool)
    .await)?)
}

/// A breaker's auto-mode row: settings, who set them and when, and the last engine run.
pub struct Settings {
    pub settings: AutoTuneSettings,
    pub updated_by: Option<String>,
    pub updated_ms: Option<i64>,
    pub last_run_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct SettingsRow {
    settings: String,
    updated_by: Option<String>,
    updated_ms: Option<i64>,
    last_run_ms: Option<i64>,
}

/// A breaker's settings; the defaults (off) when an admin never set any.
pub async fn settings(store: &Store, breaker_id: i64) -> Result<Settings, StoreError> {
    let row: Option<SettingsRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT settings, updated_by, updated_ms, last_run_ms FROM auto_tune WHERE breaker_id = $1",
    )
    .bind(breaker_id)
    .fetch_optional(pool)
    .await)?;
    Ok(match row {
        None => Settings {
            settings: AutoTuneSettings::default(),
            updated_by: None,
            updated_ms: None,
            last_run_ms: None,
        },
        Some(row) => Settings {
            settings: parse_json("stored auto-mode settings", &row.settings)?,
            updated_by: row.updated_by,
            updated_ms: row.updated_ms,
            last_run_ms: row.last_run_ms,
        },
    })
}

/// Saves a breaker's settings (inside the caller's transaction, which audits them).
pub async fn save_settings(
    tx: &mut Tx,
    breaker_id: i64,
    settings: &AutoTuneSettings,
    by: &str,
    now: i64,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(settings).expect("settings serialize");
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO auto_tune (breaker_id, settings, enabled, updated_by, updated_ms)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (breaker_id) DO UPDATE SET settings = excluded.settings,
             enabled = excluded.enabled, updated_by = excluded.updated_by,
             updated_ms = excluded.updated_ms",
    )
    .bind(breaker_id)
    .bind(&text)
    .bind(settings.enabled)
    .bind(by)
    .bind(now)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Notes the time of an engine run (the cooldown counts from it).
pub async fn set_last_run(store: &Store, breaker_id: i64, now: i64) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query("UPDATE auto_tune SET last_run_ms = $1 WHERE breaker_id = $2")
        .bind(now)
        .bind(breaker_id)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    id: i64,
    recommendation_id: i64,
    status: String,
    canary_instance: Option<String>,
    peers: String,
    version: i64,
    base_version: i64,
    config: String,
    clamped: String,
    started_ms: i64,
    canary_ends_ms: i64,
    canary_openings: i64,
    false_trips: i64,
    ended_ms: Option<i64>,
    outcome: Option<String>,
}

impl ChangeRow {
    fn into_change(self) -> Result<AutoTuneChange, StoreError> {
        Ok(AutoTuneChange {
            id: self.id,
            recommendation_id: self.recommendation_id,
            status: ChangeStatus::parse(&self.status).ok_or_else(|| StoreError::Corrupt {
                what: "an automatic change's status",
                detail: format!("unknown status {:?}", self.status),
            })?,
            canary_instance: self.canary_instance,
            peers: parse_json("an automatic change's peers", &self.peers)?,
            version: self.version as u64,
            base_version: self.base_version as u64,
            config: parse_json("an automatic change's config", &self.config)?,
            clamped: parse_json("an automatic change's guardrail notes", &self.clamped)?,
            started_ms: self.started_ms,
            canary_ends_ms: self.canary_ends_ms,
            canary_openings: self.canary_openings as u32,
            false_trips: self.false_trips as u32,
            ended_ms: self.ended_ms,
            outcome: self.outcome,
        })
    }
}

/// The breaker's latest `limit` automatic changes (or only `change_id`), newest first.
pub async fn changes(
    store: &Store,
    breaker_id: i64,
    change_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AutoTuneChange>, StoreError> {
    let rows: Vec<ChangeRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT id, recommendation_id, status, canary_instance, peers, version, base_version,
                config, clamped, started_ms, canary_ends_ms, canary_openings, false_trips,
                ended_ms, outcome
         FROM auto_tune_changes WHERE breaker_id = $1 AND ($2 IS NULL OR id = $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(breaker_id)
    .bind(change_id)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    rows.into_iter().map(ChangeRow::into_change).collect()
}

/// One automatic change of the breaker.
pub async fn change(
    store: &Store,
    breaker_id: i64,
    change_id: i64,
) -> Result<AutoTuneChange, StoreError> {
    changes(store, breaker_id, Some(change_id), 1)
        .await?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("automatic change {change_id} is gone")))
}

/// A change about to start on its canary.
pub struct NewChange<'a> {
    pub breaker_id: i64,
    pub recommendation_id: i64,
    pub canary_instance: Option<&'a str>,
    pub peers: &'a [String],
    pub version: u64,
    pub base_version: u64,
    /// The config as JSON (the audit quotes the same text).
    pub config: &'a str,
    pub clamped: &'a [String],
    pub started_ms: i64,
    pub canary_ends_ms: i64,
}

/// Inserts a change on its canary; returns its id.
pub async fn insert_change(tx: &mut Tx, change: NewChange<'_>) -> Result<i64, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_scalar(
        "INSERT INTO auto_tune_changes (breaker_id, recommendation_id, status, canary_instance,
             peers, version, base_version, config, clamped, started_ms, canary_ends_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(change.breaker_id)
    .bind(change.recommendation_id)
    .bind(ChangeStatus::Canary.as_str())
    .bind(change.canary_instance)
    .bind(serde_json::to_string(change.peers).expect("names serialize"))
    .bind(change.version as i64)
    .bind(change.base_version as i64)
    .bind(change.config)
    .bind(serde_json::to_string(change.clamped).expect("notes serialize"))
    .bind(change.started_ms)
    .bind(change.canary_ends_ms)
    .fetch_one(c)
    .await)?)
}

/// Why a change ended as it did.
pub async fn set_outcome(tx: &mut Tx, change_id: i64, outcome: &str) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query("UPDATE auto_tune_changes SET outcome = $1 WHERE id = $2")
        .bind(outcome)
        .bind(change_id)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The canary's latest counts.
pub async fn set_canary_counts(
    store: &Store,
    change_id: i64,
    openings: u32,
    false_trips: u32,
) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query("UPDATE auto_tune_changes SET canary_openings = $1, false_trips = $2 WHERE id = $3")
        .bind(i64::from(openings))
        .bind(i64::from(false_trips))
        .bind(change_id)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The recommendation a change applies, marked accepted by auto mode.
pub async fn accept_recommendation(
    tx: &mut Tx,
    recommendation_id: i64,
    actor: &str,
    now: i64,
    version: u64,
) -> Result<(), StoreError> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE recommendations SET status = 'accepted', decided_by = $1, decided_ms = $2, applied_version = $3
         WHERE id = $4",
    )
    .bind(actor)
    .bind(now)
    .bind(version as i64)
    .bind(recommendation_id)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The instances that reported their config for the breaker, most recent first.
pub async fn subscribed_instances(
    store: &Store,
    breaker_id: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(on_db!(&store.db, pool => sqlx::query_scalar(
        "SELECT instance FROM config_status WHERE breaker_id = $1 ORDER BY reported_ms DESC, instance",
    )
    .bind(breaker_id)
    .fetch_all(pool)
    .await)?)
}

/// The version an instance last reported running.
pub async fn running_version(
    store: &Store,
    breaker_id: i64,
    instance: &str,
) -> Result<Option<u64>, StoreError> {
    let version: Option<i64> = on_db!(&store.db, pool => sqlx::query_scalar(
        "SELECT running_version FROM config_status WHERE breaker_id = $1 AND instance = $2",
    )
    .bind(breaker_id)
    .bind(instance)
    .fetch_optional(pool)
    .await)?;
    Ok(version.map(|v| v as u64))
}

/// Openings (Closed → Open) in `[from_ms, to_ms)` of `instances`, on `version` when given,
/// ordered by time.
pub async fn openings(
    store: &Store,
    breaker_id: i64,
    instances: &[String],
    version: Option<u64>,
    (from_ms, to_ms): (i64, i64),
) -> Result<Vec<i64>, StoreError> {
    Ok(
        on_db!(&store.db, pool => sqlx::query_scalar(match store.db {
        Db::Sqlite(_) => "SELECT at_ms FROM transitions
         WHERE breaker_id = $1 AND instance IN (SELECT value FROM json_each($2))
           AND from_state = 'closed' AND to_state = 'open'
           AND ($5 IS NULL OR config_version = $5) AND at_ms >= $3 AND at_ms < $4 ORDER BY at_ms",
        Db::Postgres(_) => "SELECT at_ms FROM transitions
         WHERE breaker_id = $1
           AND instance IN (SELECT json_array_elements_text(CAST($2 AS json)))
           AND from_state = 'closed' AND to_state = 'open'
           AND ($5 IS NULL OR config_version = $5) AND at_ms >= $3 AND at_ms < $4 ORDER BY at_ms",
    })
    .bind(breaker_id)
    .bind(serde_json::to_string(instances).expect("names serialize"))
    .bind(from_ms)
    .bind(to_ms)
    .bind(version.map(|v| v as i64))
    .fetch_all(pool)
    .await)?,
    )
}
