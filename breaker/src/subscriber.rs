//! The config subscriber: takes configs pushed by a fusebox server and applies them.
//!
//! For every breaker of the registry (breakers made later included) a task long-polls
//! `GET {endpoint}/api/v1/config/{service}/{breaker}?wait_for_version_above=N&timeout_ms=T&instance=I`
//! (see `protocol::BreakerConfig` for the wire shape; `instance` lets the server tell who
//! is waiting on which version). A config with a higher version is
//! validated and applied atomically, keeping the breaker's state and window; an invalid one
//! is refused, the breaker keeps running its last good config, and the refusal (field and
//! rule) is reported with `POST {endpoint}/api/v1/config-status`. While the server is
//! unreachable nothing changes and polls back off exponentially.
//!
//! The version each breaker runs also goes out in every aggregate the reporter sends.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::breaker::CircuitBreaker;
use crate::config::{Config, ConfigError, HalfOpenRule, Wait, Window};
use crate::machine::Mode;
use crate::registry::Registry;

/// Where and how to subscribe.
#[derive(Clone, Debug)]
pub struct SubscriberConfig {
    /// The server's base URL, like `http://127.0.0.1:7878`.
    pub endpoint: String,
    pub service: String,
    pub instance: String,
    /// Sent as `Authorization: Bearer …`.
    pub api_key: Option<String>,
    /// How long the server may hold one long poll. Default 30 s.
    pub poll_timeout: Duration,
    /// First retry delay after an error, doubled up to `max_backoff`. Default 200 ms.
    pub min_backoff: Duration,
    /// Default 30 s.
    pub max_backoff: Duration,
    /// How often to look for new breakers in the registry. Default 1 s.
    pub rescan_interval: Duration,
}

/// Starts subscribers.
#[derive(Debug)]
pub struct ConfigSubscriber;

/// A running subscriber; dropping it stops it.
#[derive(Debug)]
pub struct SubscriberHandle {
    statuses: watch::Receiver<BTreeMap<String, SubscriptionStatus>>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// What the subscriber knows about one breaker's config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubscriptionStatus {
    /// The version the breaker runs.
    pub running_version: u64,
    /// The latest pushed config that was refused, with the reason, until a newer one applies.
    pub refused: Option<(u64, ConfigError)>,
    /// The last error talking to the server, cleared by the next answer.
    pub last_error: Option<String>,
}

struct Shared {
    config: SubscriberConfig,
    client: reqwest::Client,
    statuses: watch::Sender<BTreeMap<String, SubscriptionStatus>>,
}

enum Poll {
    Config(protocol::BreakerConfig),
    NothingNew,
    NoConfig,
}

// === impl SubscriberConfig ===

impl SubscriberConfig {
    pub fn new(
        endpoint: impl Into<String>,
        service: impl Into<String>,
        instance: impl Into<String>,
    ) -> SubscriberConfig {
        SubscriberConfig {
            endpoint: endpoint.into(),
            service: service.into(),
            instance: instance.into(),
            api_key: None,
            poll_timeout: Duration::from_secs(30),
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            rescan_interval: Duration::from_secs(1),
        }
    }
}

// === impl ConfigSubscriber ===

impl ConfigSubscriber {
    /// Starts subscribing every breaker of `registry`, present and future, on the current
    /// tokio runtime.
    pub fn start(registry: Registry, config: SubscriberConfig) -> SubscriberHandle {
        let client = reqwest::Client::builder()
            // The server holds a long poll for up to `poll_timeout`.
            .timeout(config.poll_timeout + Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let (statuses_tx, statuses_rx) = watch::channel(BTreeMap::new());
        let shared = Arc::new(Shared {
            config,
            client,
            statuses: statuses_tx,
        });
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let span = tracing::info_span!(
            "breaker_config_subscriber",
            service = %shared.config.service,
            instance = %shared.config.instance
        );
        let task = tokio::spawn(tracing::Instrument::instrument(
            supervise(registry, shared, shutdown_rx),
            span,
        ));
        SubscriberHandle {
            statuses: statuses_rx,
            shutdown: Some(shutdown_tx),
            task: Some(task),
        }
    }
}

// === impl SubscriberHandle ===

impl SubscriberHandle {
    /// The status of every subscribed breaker, by name.
    pub fn statuses(&self) -> BTreeMap<String, SubscriptionStatus> {
        self.statuses.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<BTreeMap<String, SubscriptionStatus>> {
        self.statuses.clone()
    }

    /// Stops every poll.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SubscriberHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts a poll task per breaker, and again for breakers added later.
async fn supervise(registry: Registry, shared: Arc<Shared>, mut shutdown: oneshot::Receiver<()>) {
    let mut tasks = JoinSet::new();
    let mut subscribed = HashSet::new();
    let mut rescan =
        tokio::time::interval(shared.config.rescan_interval.max(Duration::from_millis(1)));
    loop {
        for breaker in registry.breakers() {
            if subscribed.insert(breaker.name().to_owned()) {
                let span = tracing::debug_span!("follow", breaker = %breaker.name());
                tasks.spawn(tracing::Instrument::instrument(
                    follow(breaker, shared.clone()),
                    span,
                ));
            }
        }
        tokio::select! {
            _ = rescan.tick() => {}
            _ = &mut shutdown => break,
        }
    }
    tasks.shutdown().await;
}

/// Long-polls one breaker's config for ever.
async fn follow(breaker: CircuitBreaker, shared: Arc<Shared>) {
    let name = breaker.name().to_owned();
    let mut known_version = breaker.config().version();
    set_status(&shared, &name, |status| {
        status.running_version = known_version
    });
    // The server learns at once which version this instance runs, before any push.
    report_status(&shared, &breaker).await;
    let mut backoff = shared.config.min_backoff;
    loop {
        match poll(&shared, &name, known_version).await {
            Ok(Poll::Config(wire)) if wire.version > known_version => {
                known_version = wire.version;
                backoff = shared.config.min_backoff;
                match config_from_wire(&wire) {
                    Ok(config) => {
                        breaker.set_config(config);
                        breaker.set_mode(mode_from_wire(wire.mode));
                        set_status(&shared, &name, |status| {
                            status.running_version = wire.version;
                            status.refused = None;
                            status.last_error = None;
                        });
                        tracing::info!(breaker = %name, version = wire.version, "applied a pushed config");
                    }
                    Err(err) => {
                        tracing::warn!(breaker = %name, version = wire.version, %err, "refused a pushed config");
                        set_status(&shared, &name, |status| {
                            status.refused = Some((wire.version, err.clone()));
                            status.last_error = None;
                        });
                    }
                }
                report_status(&shared, &breaker).await;
            }
            Ok(Poll::Config(stale)) => {
                // A server should only answer with newer versions; do not spin if it does not.
                tracing::debug!(breaker = %name, version = stale.version, "ignored an old config");
                tokio::time::sleep(shared.config.min_backoff).await;
            }
            Ok(Poll::NothingNew) => {
                backoff = shared.config.min_backoff;
                set_status(&shared, &name, |status| status.last_error = None);
            }
            Ok(Poll::NoConfig) => {
                set_status(&shared, &name, |status| status.last_error = None);
                // Nothing to follow yet: ask again later, without hammering the server.
                tokio::time::sleep(shared.config.poll_timeout.min(shared.config.max_backoff)).await;
            }
            Err(reason) => {
                tracing::debug!(breaker = %name, %reason, "config poll failed; keeping the last good config");
                set_status(&shared, &name, |status| status.last_error = Some(reason));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.config.max_backoff);
            }
        }
    }
}

async fn poll(shared: &Shared, breaker: &str, known_version: u64) -> Result<Poll, String> {
    let config = &shared.config;
    let url = format!(
        "{}/api/v1/config/{}/{}",
        config.endpoint.trim_end_matches('/'),
        encode_segment(&config.service),
        encode_segment(breaker)
    );
    let mut request = shared.client.get(url).query(&[
        ("wait_for_version_above", known_version.to_string()),
        ("timeout_ms", config.poll_timeout.as_millis().to_string()),
        ("instance", config.instance.clone()),
    ]);
    if let Some(key) = &config.api_key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|err| err.to_string())?;
    match response.status().as_u16() {
        200 => response
            .json::<protocol::BreakerConfig>()
            .await
            .map(Poll::Config)
            .map_err(|err| format!("unreadable config: {err}")),
        204 | 304 => Ok(Poll::NothingNew),
        404 => Ok(Poll::NoConfig),
        status => Err(format!("server answered {status}")),
    }
}

/// Tells the server which version the breaker runs and why it refused the last push.
async fn report_status(shared: &Shared, breaker: &CircuitBreaker) {
    let status = shared
        .statuses
        .borrow()
        .get(breaker.name())
        .cloned()
        .unwrap_or_default();
    let report = protocol::ConfigStatusReport {
        service: shared.config.service.clone(),
        instance: shared.config.instance.clone(),
        at_ms: breaker.clock().wall_ms(),
        breakers: vec![protocol::ConfigStatus {
            breaker: breaker.name().to_owned(),
            running_version: status.running_version,
            refused: status
                .refused
                .map(|(version, err)| protocol::ConfigRefusal {
                    version,
                    field: err.field.to_owned(),
                    rule: err.rule.to_string(),
                }),
        }],
    };
    let url = format!(
        "{}/api/v1/config-status",
        shared.config.endpoint.trim_end_matches('/')
    );
    // Short, unlike the long polls: a hanging server must not delay following configs.
    let mut request = shared
        .client
        .post(url)
        .timeout(shared.config.poll_timeout.min(Duration::from_secs(5)))
        .json(&report);
    if let Some(key) = &shared.config.api_key {
        request = request.bearer_auth(key);
    }
    // Best effort: the running version also reaches the server in every aggregate.
    if let Err(err) = request.send().await {
        tracing::debug!(%err, "could not report config status");
    }
}

fn set_status(shared: &Shared, breaker: &str, change: impl FnOnce(&mut SubscriptionStatus)) {
    shared.statuses.send_modify(|statuses| {
        change(statuses.entry(breaker.to_owned()).or_default());
    });
}

/// Percent-encodes a path segment (names may hold any printable character).
fn encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Validates a wire config into a [`Config`], naming the field and rule it breaks.
pub fn config_from_wire(wire: &protocol::BreakerConfig) -> Result<Config, ConfigError> {
    let mut builder = Config::builder()
        .version(wire.version)
        .failure_rate_threshold(wire.failure_rate_threshold)
        .slow_call_rate_threshold(wire.slow_call_rate_threshold)
        .consecutive_failures(wire.consecutive_failures)
        .window(match wire.window {
            protocol::WindowConfig::Count { calls } => Window::Count(calls),
            protocol::WindowConfig::Time { seconds } => Window::Time(seconds),
        })
        .minimum_calls(wire.minimum_calls)
        .wait(match wire.wait {
            protocol::WaitConfig::Fixed { ms } => Wait::Fixed(Duration::from_millis(ms)),
            protocol::WaitConfig::Exponential {
                initial_ms,
                multiplier,
                max_ms,
                jitter,
            } => Wait::Exponential {
                initial: Duration::from_millis(initial_ms),
                multiplier,
                max: Duration::from_millis(max_ms),
                jitter,
            },
        })
        .half_open_probes(wire.half_open_probes)
        .half_open_successes(wire.half_open_successes)
        .half_open_rule(match wire.half_open_rule {
            protocol::HalfOpenRule::Successes => HalfOpenRule::Successes,
            protocol::HalfOpenRule::Rates => HalfOpenRule::Rates,
        })
        .half_open_max_wait(wire.half_open_max_wait_ms.map(Duration::from_millis))
        .call_timeout(wire.call_timeout_ms.map(Duration::from_millis));
    if let Some(ms) = wire.slow_call_duration_ms {
        builder = builder.slow_call_duration(Duration::from_millis(ms));
    }
    builder.build()
}

/// The wire form of a config, for servers and tests.
pub fn config_to_wire(config: &Config, mode: Mode) -> protocol::BreakerConfig {
    let millis = |duration: Duration| duration.as_millis().min(u128::from(u64::MAX)) as u64;
    protocol::BreakerConfig {
        version: config.version(),
        failure_rate_threshold: config.failure_rate_threshold(),
        slow_call_rate_threshold: config.slow_call_rate_threshold(),
        slow_call_duration_ms: Some(millis(config.slow_call_duration())),
        consecutive_failures: config.consecutive_failures(),
        window: match config.window() {
            Window::Count(calls) => protocol::WindowConfig::Count { calls },
            Window::Time(seconds) => protocol::WindowConfig::Time { seconds },
        },
        minimum_calls: config.minimum_calls(),
        wait: match config.wait() {
            Wait::Fixed(wait) => protocol::WaitConfig::Fixed { ms: millis(wait) },
            Wait::Exponential {
                initial,
                multiplier,
                max,
                jitter,
            } => protocol::WaitConfig::Exponential {
                initial_ms: millis(initial),
                multiplier,
                max_ms: millis(max),
                jitter,
            },
        },
        half_open_probes: config.half_open_probes(),
        half_open_successes: config.half_open_successes(),
        half_open_rule: match config.half_open_rule() {
            HalfOpenRule::Successes => protocol::HalfOpenRule::Successes,
            HalfOpenRule::Rates => protocol::HalfOpenRule::Rates,
        },
        half_open_max_wait_ms: config.half_open_max_wait().map(millis),
        call_timeout_ms: config.call_timeout().map(millis),
        mode: match mode {
            Mode::Automatic => None,
            Mode::ForcedOpen => Some(protocol::BreakerMode::ForcedOpen),
            Mode::Disabled => Some(protocol::BreakerMode::Disabled),
            Mode::MetricsOnly => Some(protocol::BreakerMode::MetricsOnly),
        },
    }
}

fn mode_from_wire(mode: Option<protocol::BreakerMode>) -> Mode {
    match mode {
        None | Some(protocol::BreakerMode::Automatic) => Mode::Automatic,
        Some(protocol::BreakerMode::ForcedOpen) => Mode::ForcedOpen,
        Some(protocol::BreakerMode::Disabled) => Mode::Disabled,
        Some(protocol::BreakerMode::MetricsOnly) => Mode::MetricsOnly,
    }
}

#[cfg(test)]
mod tests;
