//! The rule and channel tables, and the audit log entries of admins' changes to them.

use protocol::{AlertChannel, AlertRule};

use super::parse_channel_kind;
use crate::alerts::rules::{ChannelRow, kind_str};
use crate::store::{Db, Store, StoreError, Tx, on_db, on_tx, parse_json};

#[derive(sqlx::FromRow)]
struct RuleRecord {
    spec: String,
    source: String,
}

/// A row of `alert_channels`, as read.
#[derive(sqlx::FromRow)]
struct ChannelRecord {
    id: i64,
    name: String,
    kind: String,
    url: String,
    secret: Option<String>,
    rules: String,
    source: String,
}

impl ChannelRecord {
    fn into_channel(self) -> Result<ChannelRow, StoreError> {
        Ok(ChannelRow {
            id: self.id,
            spec: AlertChannel {
                name: self.name,
                kind: parse_channel_kind(&self.kind)?,
                url: self.url,
                secret: self.secret,
                rules: parse_json("a channel's rules", &self.rules)?,
            },
            source: self.source,
        })
    }
}

/// Every rule with its source, by name.
pub async fn load_rules(store: &Store) -> Result<Vec<(AlertRule, String)>, StoreError> {
    let mut tx = store.begin_read().await?;
    load_rules_on(&mut tx).await
}

/// [`load_rules`] on a connection (inside a transaction).
pub async fn load_rules_on(conn: &mut Tx) -> Result<Vec<(AlertRule, String)>, StoreError> {
    let rows: Vec<RuleRecord> = on_tx!(conn, c => sqlx::query_as("SELECT spec, source FROM alert_rules ORDER BY name")
            .fetch_all(c)
            .await)?;
    rows.into_iter()
        .map(|row| Ok((parse_json("a stored alert rule", &row.spec)?, row.source)))
        .collect()
}

/// Every channel, by name.
pub async fn load_channels(store: &Store) -> Result<Vec<ChannelRow>, StoreError> {
    let mut tx = store.begin_read().await?;
    load_channels_on(&mut tx).await
}

/// [`load_channels`] on a connection (inside a transaction).
pub async fn load_channels_on(conn: &mut Tx) -> Result<Vec<ChannelRow>, StoreError> {
    let rows: Vec<ChannelRecord> = on_tx!(conn, c => sqlx::query_as(
        "SELECT id, name, kind, url, secret, rules, source FROM alert_channels ORDER BY name",
    )
    .fetch_all(c)
    .await)?;
    rows.into_iter().map(ChannelRecord::into_channel).collect()
}

pub async fn upsert_rule(
    store: &Store,
    rule: &AlertRule,
    source: &str,
    now: i64,
) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query(
        "INSERT INTO alert_rules (name, spec, source, updated_ms) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, source = excluded.source,
           updated_ms = excluded.updated_ms",
    )
    .bind(&rule.name)
    .bind(serde_json::to_string(rule).expect("a rule serializes"))
    .bind(source)
    .bind(now)
    .execute(pool)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Deletes a rule; false when there is none of that name.
pub async fn delete_rule(store: &Store, name: &str) -> Result<bool, StoreError> {
    let res = on_db!(&store.db, pool => sqlx::query("DELETE FROM alert_rules WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    Ok(res > 0)
}

pub async fn upsert_channel(
    store: &Store,
    channel: &AlertChannel,
    source: &str,
    now: i64,
) -> Result<(), StoreError> {
    on_db!(&store.db, pool => sqlx::query(
        "INSERT INTO alert_channels (name, kind, url, secret, rules, source, updated_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url,
           secret = excluded.secret, rules = excluded.rules, source = excluded.source,
           updated_ms = excluded.updated_ms",
    )
    .bind(&channel.name)
    .bind(kind_str(channel.kind))
    .bind(&channel.url)
    .bind(&channel.secret)
    .bind(serde_json::to_string(&channel.rules).expect("names serialize"))
    .bind(source)
    .bind(now)
    .execute(pool)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// The secret of a channel, if the channel exists and has one.
pub async fn channel_secret(store: &Store, name: &str) -> Result<Option<String>, StoreError> {
    let secret: Option<Option<String>> = on_db!(&store.db, pool => sqlx::query_scalar("SELECT secret FROM alert_channels WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await)?;
    Ok(secret.flatten())
}

/// Deletes a channel (its undelivered notifications go with it); false when there is none of
/// that name.
pub async fn delete_channel(store: &Store, name: &str) -> Result<bool, StoreError> {
    let res = on_db!(&store.db, pool => sqlx::query("DELETE FROM alert_channels WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await.map(|r| r.rows_affected()))?;
    Ok(res > 0)
}

/// Removes the rules and channels from the settings (`source = 'config'`) that are not named
/// in `rule_names` and `channel_names`.
pub async fn remove_config_except(
    store: &Store,
    rule_names: &[&str],
    channel_names: &[&str],
) -> Result<(), StoreError> {
    let names = |list: &[&str]| serde_json::to_string(list).expect("strings serialize");
    on_db!(&store.db, pool => sqlx::query(match store.db {
        Db::Sqlite(_) => "DELETE FROM alert_rules WHERE source = 'config'
         AND name NOT IN (SELECT value FROM json_each($1))",
        Db::Postgres(_) => "DELETE FROM alert_rules WHERE source = 'config'
         AND name NOT IN (SELECT json_array_elements_text(CAST($1 AS json)))",
    })
    .bind(names(rule_names))
    .execute(pool)
    .await.map(|r| r.rows_affected()))?;
    on_db!(&store.db, pool => sqlx::query(match store.db {
        Db::Sqlite(_) => "DELETE FROM alert_channels WHERE source = 'config'
         AND name NOT IN (SELECT value FROM json_each($1))",
        Db::Postgres(_) => "DELETE FROM alert_channels WHERE source = 'config'
         AND name NOT IN (SELECT json_array_elements_text(CAST($1 AS json)))",
    })
    .bind(names(channel_names))
    .execute(pool)
    .await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Audits an admin's change of a rule or channel.
pub async fn audit(
    store: &Store,
    (actor, at_ms): (&str, i64),
    action: &str,
    detail: String,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    crate::configs::write_audit(
        &mut tx,
        crate::configs::Audit {
            at_ms,
            actor,
            action,
            service: None,
            breaker: None,
            detail,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
