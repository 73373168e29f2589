//! The configs' SQL: versions, the audit log, instances' sync status, and the canary versions
//! auto mode serves (`auto_tune_changes` is read here where a config version depends on it).

use protocol::{AuditEntry, BreakerConfig, ConfigRefusal, ConfigStatusReport, StoredConfig};

use super::{AutoEnd, NewVersion};
use crate::store::{Store, StoreError, Tx, on_db, on_tx, parse_json};

fn no_longer_canary(change_id: i64) -> StoreError {
    StoreError::Conflict(format!(
        "automatic change {change_id} is no longer on its canary"
    ))
}
/// A row of `breaker_configs`, as read.
#[derive(sqlx::FromRow)]
struct ConfigRow {
    config: String,
    created_ms: i64,
    created_by: String,
    reason: String,
}

impl ConfigRow {
    fn into_stored(self) -> Result<StoredConfig, StoreError> {
        Ok(StoredConfig {
            config: parse_json("a stored config", &self.config)?,
            created_ms: self.created_ms,
            created_by: self.created_by,
            reason: self.reason,
        })
    }
}

/// The breaker's newest config versions, newest first.
pub async fn history(
    store: &Store,
    breaker_id: i64,
    limit: i64,
) -> Result<Vec<StoredConfig>, StoreError> {
    let rows: Vec<ConfigRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT config, created_ms, created_by, reason FROM breaker_configs
         WHERE breaker_id = $1 ORDER BY version DESC LIMIT $2",
    )
    .bind(breaker_id)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    rows.into_iter().map(ConfigRow::into_stored).collect()
}

/// The breaker's current (newest) config version, if the server holds one.
pub async fn current(store: &Store, breaker_id: i64) -> Result<Option<StoredConfig>, StoreError> {
    Ok(history(store, breaker_id, 1).await?.pop())
}

/// One config version of a breaker.
pub async fn version(
    store: &Store,
    breaker_id: i64,
    version: u64,
) -> Result<Option<StoredConfig>, StoreError> {
    let row: Option<ConfigRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT config, created_ms, created_by, reason FROM breaker_configs
         WHERE breaker_id = $1 AND version = $2",
    )
    .bind(breaker_id)
    .bind(version as i64)
    .fetch_optional(pool)
    .await)?;
    row.map(ConfigRow::into_stored).transpose()
}

/// Inserts `change` (already checked) as the breaker's next version inside the caller's
/// transaction, creating the breaker when new, ending or cancelling its canary, and auditing;
/// returns the breaker's id with the stored version.
pub async fn insert_version(
    tx: &mut Tx,
    change: NewVersion<'_>,
    now: i64,
) -> Result<(i64, StoredConfig), StoreError> {
    let breaker_id = Store::breaker_id(tx, change.service, change.breaker, now).await?;
    let mut config = change.config;
    config.version = next_version(tx, breaker_id).await?;
    match change.ends_auto_change {
        Some((change_id, AutoEnd::Promoted)) => {
            config.version = on_tx!(tx, c => sqlx::query_scalar::<_, i64>(
                "SELECT version FROM auto_tune_changes WHERE id = $1 AND status = 'canary'",
            )
            .bind(change_id)
            .fetch_optional(c)
            .await)?
            .ok_or_else(|| no_longer_canary(change_id))? as u64;
            end_auto_change(tx, change_id, "promoted", now).await?;
        }
        Some((change_id, AutoEnd::RolledBack)) => {
            end_auto_change(tx, change_id, "rolled_back", now).await?;
        }
        None => {
            on_tx!(tx, c => sqlx::query(
                "UPDATE auto_tune_changes SET status = 'cancelled', ended_ms = $1, outcome = $2
                 WHERE breaker_id = $3 AND status = 'canary'",
            )
            .bind(now)
            .bind(format!(
                "cancelled: {} saved version {} ({})",
                change.actor, config.version, change.action
            ))
            .bind(breaker_id)
            .execute(c)
            .await.map(|r| r.rows_affected()))?;
        }
    }
    let text = serde_json::to_string(&config).expect("a config serializes");
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO breaker_configs (breaker_id, version, config, created_ms, created_by, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(breaker_id)
    .bind(config.version as i64)
    .bind(&text)
    .bind(now)
    .bind(change.actor)
    .bind(&change.reason)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    write_audit(
        tx,
        Audit {
            at_ms: now,
            actor: change.actor,
            action: change.action,
            service: Some(change.service),
            breaker: Some(change.breaker),
            detail: format!("version {}: {} ({text})", config.version, change.reason),
        },
    )
    .await?;
    Ok((
        breaker_id,
        StoredConfig {
            config,
            created_ms: now,
            created_by: change.actor.to_string(),
            reason: change.reason,
        },
    ))
}

/// The number a breaker's next config version gets. Canary versions are numbered with the
/// rest: a version an instance ran as a canary is never reused for another config.
pub async fn next_version(tx: &mut Tx, breaker_id: i64) -> Result<u64, StoreError> {
    let latest: i64 = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT COALESCE(MAX(v), 0) FROM (
             SELECT MAX(version) AS v FROM breaker_configs WHERE breaker_id = $1
             UNION ALL SELECT MAX(version) FROM auto_tune_changes WHERE breaker_id = $1) AS versions",
    )
    .bind(breaker_id)
    .fetch_one(c)
    .await)?;
    Ok(latest as u64 + 1)
}

/// One audit log entry; `service` and `breaker` when it is about a breaker.
pub struct Audit<'a> {
    pub at_ms: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub service: Option<&'a str>,
    pub breaker: Option<&'a str>,
    pub detail: String,
}

/// Writes `entry` to the audit log (in the caller's transaction, when it has one).
pub async fn write_audit(conn: &mut Tx, entry: Audit<'_>) -> Result<(), StoreError> {
    on_tx!(conn, c => sqlx::query(
        "INSERT INTO audit_log (at_ms, actor, action, service, breaker, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(entry.at_ms)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.service)
    .bind(entry.breaker)
    .bind(entry.detail)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn end_auto_change(
    tx: &mut Tx,
    change_id: i64,
    status: &str,
    now: i64,
) -> Result<(), StoreError> {
    let res = on_tx!(tx, c => sqlx::query(
        "UPDATE auto_tune_changes SET status = $1, ended_ms = $2 WHERE id = $3 AND status = 'canary'",
    )
    .bind(status)
    .bind(now)
    .bind(change_id)
    .execute(c)
    .await.map(|r| r.rows_affected()))?;
    if res == 0 {
        return Err(no_longer_canary(change_id));
    }
    Ok(())
}

/// The config a breaker's running canary serves to its canary instance.
pub async fn canary_for(
    store: &Store,
    breaker_id: i64,
    instance: &str,
) -> Result<Option<BreakerConfig>, StoreError> {
    let text: Option<String> = on_db!(&store.db, pool => sqlx::query_scalar(
        "SELECT config FROM auto_tune_changes
         WHERE breaker_id = $1 AND status = 'canary' AND canary_instance = $2",
    )
    .bind(breaker_id)
    .bind(instance)
    .fetch_optional(pool)
    .await)?;
    text.map(|text| parse_json("a stored canary config", &text))
        .transpose()
}

/// Whether an instance of `service` reported its config status before.
pub async fn reported_before(
    tx: &mut Tx,
    service: &str,
    instance: &str,
) -> Result<bool, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM config_status s JOIN breakers b ON b.id = s.breaker_id
                        WHERE b.service = $1 AND s.instance = $2)",
    )
    .bind(service)
    .bind(instance)
    .fetch_one(c)
    .await)?)
}

/// The instances of `service` that reported their config status.
pub async fn reporting_instances(tx: &mut Tx, service: &str) -> Result<Vec<String>, StoreError> {
    Ok(on_tx!(tx, c => sqlx::query_scalar(
        "SELECT DISTINCT s.instance FROM config_status s JOIN breakers b ON b.id = s.breaker_id
         WHERE b.service = $1",
    )
    .bind(service)
    .fetch_all(c)
    .await)?)
}

/// Stores what an instance runs, per breaker the server knows (a report never creates one:
/// ingest does, within its limits).
pub async fn save_status(
    tx: &mut Tx,
    report: &ConfigStatusReport,
    now: i64,
) -> Result<(), StoreError> {
    for status in &report.breakers {
        let Some(id) = Store::find_breaker_in(tx, &report.service, &status.breaker).await? else {
            continue;
        };
        let refused = status.refused.as_ref();
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO config_status (breaker_id, instance, running_version, refused_version,
                                        refused_field, refused_rule, reported_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (breaker_id, instance) DO UPDATE SET
               running_version = excluded.running_version, refused_version = excluded.refused_version,
               refused_field = excluded.refused_field, refused_rule = excluded.refused_rule,
               reported_ms = excluded.reported_ms",
        )
        .bind(id)
        .bind(&report.instance)
        .bind(status.running_version as i64)
        .bind(refused.map(|r| r.version as i64))
        .bind(refused.map(|r| r.field.as_str()))
        .bind(refused.map(|r| r.rule.as_str()))
        .bind(now)
        .execute(c)
        .await.map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// What one instance last reported for a breaker.
pub struct InstanceStatus {
    pub instance: String,
    pub running_version: u64,
    pub refused: Option<ConfigRefusal>,
}

#[derive(sqlx::FromRow)]
struct StatusRow {
    instance: String,
    running_version: i64,
    refused_version: Option<i64>,
    refused_field: Option<String>,
    refused_rule: Option<String>,
}

/// The version `instance` last reported running for a breaker named by service and name, if it
/// reported one (`POST /api/v1/config-status`).
pub async fn reported_running_version(
    store: &Store,
    service: &str,
    breaker: &str,
    instance: &str,
) -> Result<Option<u64>, StoreError> {
    let version: Option<i64> = on_db!(&store.db, pool => sqlx::query_scalar(
        "SELECT s.running_version FROM config_status s JOIN breakers b ON b.id = s.breaker_id
         WHERE b.service = $1 AND b.name = $2 AND s.instance = $3",
    )
    .bind(service)
    .bind(breaker)
    .bind(instance)
    .fetch_optional(pool)
    .await)?;
    Ok(version.map(|v| v as u64))
}

/// Every instance's last status report for a breaker.
pub async fn statuses(store: &Store, breaker_id: i64) -> Result<Vec<InstanceStatus>, StoreError> {
    let rows: Vec<StatusRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT instance, running_version, refused_version, refused_field, refused_rule
         FROM config_status WHERE breaker_id = $1",
    )
    .bind(breaker_id)
    .fetch_all(pool)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|row| InstanceStatus {
            refused: row.refused_version.map(|version| ConfigRefusal {
                version: version as u64,
                field: row.refused_field.unwrap_or_default(),
                rule: row.refused_rule.unwrap_or_default(),
            }),
            instance: row.instance,
            running_version: row.running_version as u64,
        })
        .collect())
}

/// The running canary's instance and version, if the breaker has one.
pub async fn canary_instance(
    store: &Store,
    breaker_id: i64,
) -> Result<Option<(String, u64)>, StoreError> {
    let row: Option<(String, i64)> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT canary_instance, version FROM auto_tune_changes
         WHERE breaker_id = $1 AND status = 'canary' AND canary_instance IS NOT NULL",
    )
    .bind(breaker_id)
    .fetch_optional(pool)
    .await)?;
    Ok(row.map(|(instance, version)| (instance, version as u64)))
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    at_ms: i64,
    actor: String,
    action: String,
    service: Option<String>,
    breaker: Option<String>,
    detail: String,
}

/// Audit log entries with an id below `before_id`, newest first.
pub async fn audit_page(
    store: &Store,
    before_id: i64,
    limit: i64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let rows: Vec<AuditRow> = on_db!(&store.db, pool => sqlx::query_as(
        "SELECT id, at_ms, actor, action, service, breaker, detail FROM audit_log
         WHERE id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before_id)
    .bind(limit)
    .fetch_all(pool)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|row| AuditEntry {
            id: row.id,
            at_ms: row.at_ms,
            actor: row.actor,
            action: row.action,
            service: row.service,
            breaker: row.breaker,
            detail: row.detail,
        })
        .collect())
}
