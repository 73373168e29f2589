//! Alerting: rules over breaker transitions, one alert per incident, and notifications
//! delivered at least once from a persistent outbox.
//!
//! Brief overview:
//! - [`rules`]: rule and channel validation and globs, and the settings' rules and channels
//!   written at start (the admin API writes others).
//! - [`engine::Engine`]: reads transitions by id after a persisted cursor (woken by the hub,
//!   correct without it) and opens, extends and resolves alerts in the same transaction that
//!   queues their notifications and moves the cursor.
//! - [`model`]: [`protocol::AlertStatus`], [`model::EventKind`], and recording an event with the
//!   notifications it queues.
//! - [`store`]: every query of alerting (rules and channels, alerts, the engine's state, the
//!   outbox).
//! - [`outbox::Delivery`]: sends with retries and backoff, each channel behind a breaker.
//! - [`channels`]: the webhook (HMAC-signed), Slack and Alertmanager payloads.
//! - [`selfreport`]: the channels' breakers, shown on the dashboard as the service `fusebox`.
//! - [`api`]: `/api/v1/alerts…` and the chart image alerts link to.

pub mod api;
pub mod channels;
pub mod engine;
pub mod model;
pub mod outbox;
pub mod rules;
pub mod selfreport;
pub mod store;

use std::sync::Arc;

use protocol::{AlertChannel, AlertNotice, AlertRule};
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;

use crate::ingest::IngestQueue;
use crate::ingest::hub::Hub;
use crate::store::Store;
use crate::time::Clock;

/// Alert notices buffered per live-stream subscriber.
const NOTICE_CAPACITY: usize = 256;

/// Alerting settings from the settings file and the command line.
#[derive(Clone, Debug, Default)]
pub struct AlertSettings {
    pub rules: Vec<AlertRule>,
    pub channels: Vec<AlertChannel>,
}

/// What handlers and tasks share about alerting.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    notices: broadcast::Sender<Arc<AlertNotice>>,
    deliver: Notify,
    registry: breaker::Registry,
    public_url: String,
    clock: Clock,
    /// The database the other replicas listen on; `None` on SQLite (one process).
    cluster: Option<Store>,
    client: reqwest::Client,
}

/// The alerting tasks; dropping this stops them.
pub struct AlertTasks {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for AlertTasks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

// === impl Alerts ===

impl Alerts {
    /// Alert news for the live stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AlertNotice>> {
        self.inner.notices.subscribe()
    }

    /// The time, from the server's clock.
    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The server's base URL that notifications link to.
    pub fn public_url(&self) -> &str {
        &self.inner.public_url
    }

    /// Tells the stream what a committed transaction did (here and, on PostgreSQL, on the
    /// other replicas), and wakes the delivery task.
    pub fn committed(&self, notices: Vec<AlertNotice>) {
        if notices.is_empty() {
            return;
        }
        if let Some(store) = self.inner.cluster.clone() {
            let payloads: Vec<String> = notices
                .iter()
                .filter_map(|notice| crate::cluster::alert_payload(store.replica(), notice))
                .collect();
            tokio::spawn(async move {
                for payload in payloads {
                    let channel = crate::cluster::store::ALERT_CHANNEL;
                    if let Err(err) = crate::cluster::store::notify(&store, channel, &payload).await
                    {
                        tracing::warn!(error = %err, "telling the other replicas of an alert failed");
                    }
                }
            });
        }
        for notice in notices {
            self.tell(notice);
        }
        self.inner.deliver.notify_one();
    }

    /// Tells this replica's streams of an alert notice.
    pub fn tell(&self, notice: AlertNotice) {
        let _ = self.inner.notices.send(Arc::new(notice));
    }

    /// The alert engine and the outbox's delivery: jobs for one replica at a time (see
    /// [`crate::cluster::Singletons`]).
    pub fn spawn_singletons(&self, store: &Store, hub: &Hub) -> Vec<JoinHandle<()>> {
        let engine = engine::Engine {
            store: store.clone(),
            alerts: self.clone(),
            refreshed_minute: Default::default(),
        };
        let delivery = outbox::Delivery {
            store: store.clone(),
            alerts: self.clone(),
            client: self.inner.client.clone(),
        };
        vec![
            tokio::spawn(engine.run(hub.subscribe())),
            tokio::spawn(delivery.run()),
        ]
    }
}

/// Writes the settings' rules and channels, then starts the report of the channels' breakers;
/// the engine and the delivery task start with [`Alerts::spawn_singletons`].
pub async fn start(
    store: &Store,
    ingest: &IngestQueue,
    settings: &AlertSettings,
    (public_url, clock): (String, Clock),
) -> anyhow::Result<(Alerts, AlertTasks)> {
    rules::sync_config(store, &settings.rules, &settings.channels, clock.now_ms()).await?;
    let client = reqwest::Client::builder()
        .timeout(outbox::REQUEST_TIMEOUT)
        // Receivers are set by admins; a redirect could lead anywhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let alerts = Alerts {
        inner: Arc::new(Inner {
            notices: broadcast::channel(NOTICE_CAPACITY).0,
            deliver: Notify::new(),
            registry: breaker::Registry::new(),
            public_url: public_url.trim_end_matches('/').to_string(),
            clock: clock.clone(),
            cluster: store.is_postgres().then(|| store.clone()),
            client,
        }),
    };
    let tasks = vec![selfreport::spawn(
        alerts.inner.registry.clone(),
        ingest.clone(),
        clock,
    )];
    Ok((alerts, AlertTasks { tasks }))
}
