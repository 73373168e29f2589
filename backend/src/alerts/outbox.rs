//! Delivery of the outbox: every notification at least once, with retries and exponential
//! backoff, each channel behind a `breaker::CircuitBreaker` of its own.
//!
//! Sends run as their own tasks, so a slow or dead receiver delays nothing but its own
//! notifications (and, since one alert's notifications to one channel go in order, those
//! behind them); a channel whose breaker is Open is not called at all until it lets a probe
//! through. The rows stay in the database until delivered, so a restart resumes them. Rows are
//! claimed in a write transaction before they are sent ([`store::outbox::claim_due`]), so a
//! replica taking over the delivery never sends one that another is sending.

use std::collections::HashSet;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::alerts::Alerts;
use crate::alerts::channels::{self, Notification};
use crate::alerts::store;
use crate::alerts::store::outbox::Due;
use crate::store::{Store, StoreError};

/// Rows taken per look at the outbox.
const BATCH: i64 = 100;
/// The longest the task sleeps without looking (new rows also wake it at once).
const IDLE: Duration = Duration::from_secs(1);
/// How long one request to a receiver may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Retry delays: 500 ms doubled per failed attempt, at most 5 minutes.
const MIN_BACKOFF_MS: i64 = 500;
const MAX_BACKOFF_MS: i64 = 5 * 60_000;
/// How long to wait before asking an Open channel breaker again.
const REJECTED_RETRY_MS: i64 = 1_000;

pub struct Delivery {
    pub store: Store,
    pub alerts: Alerts,
    pub client: reqwest::Client,
}

/// The config of every channel's breaker: open after half of at least 4 of the last 10
/// deliveries failed, probe again after 10 s.
pub fn channel_breaker_config() -> breaker::Config {
    breaker::Config::builder()
        .failure_rate_threshold(0.5)
        .window(breaker::Window::Count(10))
        .minimum_calls(4)
        .wait_duration(Duration::from_secs(10))
        .half_open_probes(1)
        .half_open_successes(1)
        .build()
        .expect("a valid channel breaker config")
}

/// The delay before attempt `attempts + 1`.
pub fn backoff_ms(attempts: i64) -> i64 {
    MIN_BACKOFF_MS
        .saturating_mul(1_i64 << attempts.clamp(0, 20))
        .min(MAX_BACKOFF_MS)
}

// === impl Delivery ===

impl Delivery {
    pub async fn run(self) {
        let mut in_flight: HashSet<i64> = HashSet::new();
        // Dropping the set (when this task is aborted) aborts the sends in flight.
        let mut sends: JoinSet<i64> = JoinSet::new();
        loop {
            match self.due().await {
                Ok(rows) => {
                    for due in rows {
                        if in_flight.insert(due.id) {
                            sends.spawn(deliver(
                                self.store.clone(),
                                self.alerts.clone(),
                                self.client.clone(),
                                due,
                            ));
                        }
                    }
                }
                Err(err) => tracing::warn!(error = format!("{err:#}"), "reading the outbox failed"),
            }
            let wait = match self.next_due_ms(&in_flight).await {
                Ok(Some(at)) => {
                    Duration::from_millis((at - self.alerts.now_ms()).clamp(0, 1_000) as u64)
                }
                _ => IDLE,
            };
            tokio::select! {
                _ = self.alerts.inner.deliver.notified() => {}
                Some(done) = sends.join_next(), if !sends.is_empty() => {
                    if let Ok(id) = done {
                        in_flight.remove(&id);
                    } else {
                        // A send panicked or was cancelled: look at everything again.
                        in_flight.clear();
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
            while let Some(done) = sends.try_join_next() {
                if let Ok(id) = done {
                    in_flight.remove(&id);
                }
            }
        }
    }

    async fn due(&self) -> Result<Vec<Due>, StoreError> {
        store::outbox::claim_due(&self.store, self.alerts.now_ms(), BATCH).await
    }

    async fn next_due_ms(&self, in_flight: &HashSet<i64>) -> Result<Option<i64>, StoreError> {
        let pending = store::outbox::next_pending(&self.store, in_flight.len() as i64 + 1).await?;
        Ok(pending
            .iter()
            .find(|row| !in_flight.contains(&row.id))
            .map(|row| row.next_attempt_ms))
    }
}

/// Sends one notification through its channel's breaker and records the outcome.
async fn deliver(store: Store, alerts: Alerts, client: reqwest::Client, due: Due) -> i64 {
    let breaker = alerts
        .inner
        .registry
        .get_or_create(&due.channel.name, channel_breaker_config());
    let now = alerts.now_ms();
    let res = match breaker.try_acquire_owned() {
        Err(_) => {
            store::outbox::postpone(
                &store,
                due.id,
                now + REJECTED_RETRY_MS,
                "not sent: the channel's breaker is open",
            )
            .await
        }
        Ok(permit) => {
            let notification = Notification {
                idempotency_key: &due.key,
                event: &due.event,
                alert: &due.alert,
                public_url: &alerts.inner.public_url,
            };
            let started = Instant::now();
            let sent = channels::send(&client, &due.channel, &notification, now).await;
            let outcome = if sent.is_ok() {
                breaker::Outcome::Success
            } else {
                breaker::Outcome::Failure
            };
            permit.record(outcome, started.elapsed());
            match sent {
                Ok(()) => store::outbox::mark_delivered(&store, due.id, alerts.now_ms()).await,
                Err(reason) => {
                    tracing::info!(channel = %due.channel.name, key = %due.key, %reason, "alert delivery failed; will retry");
                    store::outbox::mark_failed(
                        &store,
                        due.id,
                        alerts.now_ms() + backoff_ms(due.attempts),
                        &reason,
                    )
                    .await
                }
            }
        }
    };
    if let Err(err) = res {
        tracing::warn!(error = %err, "recording an alert delivery failed");
    }
    due.id
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_doubles_up_to_a_ceiling() {
        assert_eq!(backoff_ms(0), 500);
        assert_eq!(backoff_ms(1), 1_000);
        assert_eq!(backoff_ms(3), 4_000);
        assert_eq!(backoff_ms(30), 300_000);
    }
}
