//! Versioned breaker configs pushed to instances, per-instance sync status, manual control,
//! and the audit log.
//!
//! An admin (or the engine) saves a new version; instances long-poll
//! `GET /api/v1/config/{service}/{breaker}?wait_for_version_above=N` and get it as soon as it
//! is committed ([`ConfigWatch`] wakes them); they report what they run to
//! `POST /api/v1/config-status`. Manual control (force open, disable, metrics only, automatic)
//! is a new version of the current config with another mode, so it reaches instances the same
//! way. Every change is audited with who, when and what.

pub mod http;
pub mod store;

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::{BreakerConfig, StoredConfig};
use tokio::sync::watch;

use crate::error::AppError;
use crate::store::{Store, Tx};

pub use store::{Audit, current, next_version, write_audit};

/// Wakes long polls when a breaker gets a new config version, on every replica: on
/// PostgreSQL each new version is also notified to the others (see [`crate::cluster`]).
#[derive(Default)]
pub struct ConfigWatch {
    versions: Mutex<HashMap<i64, watch::Sender<u64>>>,
    /// The database the other replicas listen on; `None` on SQLite (one process).
    cluster: Option<Store>,
}

impl ConfigWatch {
    /// A watch that also tells the other replicas on `store`'s database, if any.
    pub fn new(store: &Store) -> ConfigWatch {
        ConfigWatch {
            versions: Mutex::default(),
            cluster: store.is_postgres().then(|| store.clone()),
        }
    }

    pub(crate) fn subscribe(&self, breaker_id: i64) -> watch::Receiver<u64> {
        let mut versions = self.versions.lock().expect("config watch lock poisoned");
        versions
            .entry(breaker_id)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Wakes the long polls of a breaker after a commit that gave it `version`, here and on
    /// the other replicas.
    pub fn notify(&self, breaker_id: i64, version: u64) {
        self.wake(breaker_id, version);
        if let Some(store) = self.cluster.clone() {
            tokio::spawn(async move {
                let payload = format!("{breaker_id}:{version}");
                if let Err(err) = crate::cluster::store::notify(
                    &store,
                    crate::cluster::store::CONFIG_CHANNEL,
                    &payload,
                )
                .await
                {
                    tracing::warn!(error = %err, "telling the other replicas of a config failed");
                }
            });
        }
    }

    /// Wakes this replica's long polls of a breaker (a version saved here or on another one).
    pub fn wake(&self, breaker_id: i64, version: u64) {
        let mut versions = self.versions.lock().expect("config watch lock poisoned");
        versions
            .entry(breaker_id)
            .or_insert_with(|| watch::channel(0).0)
            .send_replace(version);
    }

    /// Wakes every long poll, to read its config again (after notifications may have been
    /// missed).
    pub fn wake_all(&self) {
        let versions = self.versions.lock().expect("config watch lock poisoned");
        for sender in versions.values() {
            sender.send_modify(|_| {});
        }
    }
}

/// Checks a config the way instances will (the `breaker` crate's own rules), so a refused
/// config is refused here, with the field and rule, before it reaches any instance.
pub fn check(config: &BreakerConfig) -> Result<(), AppError> {
    breaker::subscriber::config_from_wire(config)
        .map(|_| ())
        .map_err(|err| AppError::Invalid {
            detail: err.rule.to_string(),
            path: format!("$.config.{}", err.field),
        })
}

/// A change to save: what, by whom, and how to audit it.
pub struct NewVersion<'a> {
    pub service: &'a str,
    pub breaker: &'a str,
    pub config: BreakerConfig,
    pub actor: &'a str,
    pub action: &'a str,
    pub reason: String,
    /// An automatic change this version ends, and how (see [`AutoEnd`]). Any other new
    /// version cancels the breaker's running canary: an admin's word wins.
    pub ends_auto_change: Option<(i64, AutoEnd)>,
}

/// How a new version ends an automatic change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoEnd {
    /// The canary's config reaches every instance, under the version the canary runs.
    Promoted,
    /// The base config again, as a newer version.
    RolledBack,
}

/// Saves `change` as the breaker's next version (creating the breaker when new), audits it,
/// and wakes the instances' long polls.
pub async fn save_version(
    store: &Store,
    watch: &ConfigWatch,
    change: NewVersion<'_>,
    now_ms: i64,
) -> Result<StoredConfig, AppError> {
    let mut tx = store.begin().await?;
    let (breaker_id, stored) = save_version_in(&mut tx, change, now_ms).await?;
    tx.commit().await?;
    watch.notify(breaker_id, stored.config.version);
    Ok(stored)
}

/// [`save_version`] inside the caller's transaction: checks the config, then saves it; returns
/// the breaker's id with the stored version. The caller commits, then wakes the long polls
/// with [`ConfigWatch::notify`].
pub async fn save_version_in(
    tx: &mut Tx,
    change: NewVersion<'_>,
    now_ms: i64,
) -> Result<(i64, StoredConfig), AppError> {
    check(&change.config)?;
    Ok(store::insert_version(tx, change, now_ms).await?)
}
