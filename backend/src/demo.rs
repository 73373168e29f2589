//! The demo: simulated services that embed the real `breaker` crate and report to the server
//! over real HTTP with their own ingest keys, with a scripted incident that repeats.
//!
//! Three services, four instances, six breakers. Every `INCIDENT_EVERY` the dependency
//! `payments-api` of the `checkout` service fails most calls for `INCIDENT_LENGTH`, so both
//! checkout instances' breakers go Closed → Open → Half-Open (→ Open while it lasts) → Closed;
//! the first incident starts `FIRST_INCIDENT_AT` after start. The other breakers stay healthy.

use std::time::Duration;

use breaker::reporter::{Reporter, ReporterConfig, ReporterHandle};
use breaker::subscriber::{ConfigSubscriber, SubscriberConfig, SubscriberHandle};
use breaker::{Config, Outcome, Registry, Window};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth;
use crate::configs::{self, NewVersion};
use crate::server::RunningServer;

const FIRST_INCIDENT_AT: Duration = Duration::from_secs(10);
const INCIDENT_LENGTH: Duration = Duration::from_secs(25);
const INCIDENT_EVERY: Duration = Duration::from_secs(150);
/// Calls are made in ticks of this length.
const TICK: Duration = Duration::from_millis(50);

/// One simulated dependency as seen from one service.
struct Dependency {
    breaker: &'static str,
    calls_per_s: f64,
    /// Failure probability while healthy.
    base_failure: f64,
    /// Typical latency while healthy, ms.
    latency_ms: f64,
    /// Whether the scripted incident hits it.
    in_incident: bool,
}

struct Service {
    name: &'static str,
    instances: &'static [&'static str],
    dependencies: &'static [Dependency],
}

const SERVICES: &[Service] = &[
    Service {
        name: "checkout",
        instances: &["checkout-1", "checkout-2"],
        dependencies: &[
            Dependency {
                breaker: "payments-api",
                calls_per_s: 40.0,
                base_failure: 0.02,
                latency_ms: 80.0,
                in_incident: true,
            },
            Dependency {
                breaker: "inventory-db",
                calls_per_s: 60.0,
                base_failure: 0.01,
                latency_ms: 8.0,
                in_incident: false,
            },
        ],
    },
    Service {
        name: "search",
        instances: &["search-1"],
        dependencies: &[
            Dependency {
                breaker: "catalog-index",
                calls_per_s: 120.0,
                base_failure: 0.005,
                latency_ms: 15.0,
                in_incident: false,
            },
            Dependency {
                breaker: "recommendations",
                calls_per_s: 30.0,
                base_failure: 0.04,
                latency_ms: 120.0,
                in_incident: false,
            },
        ],
    },
    Service {
        name: "accounts",
        instances: &["accounts-1"],
        dependencies: &[
            Dependency {
                breaker: "auth-db",
                calls_per_s: 50.0,
                base_failure: 0.01,
                latency_ms: 4.0,
                in_incident: false,
            },
            Dependency {
                breaker: "email-gateway",
                calls_per_s: 5.0,
                base_failure: 0.03,
                latency_ms: 300.0,
                in_incident: false,
            },
        ],
    },
];

/// The running simulation; `shutdown` stops the calls and flushes every reporter.
pub struct DemoHandle {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    reporters: Vec<ReporterHandle>,
    subscribers: Vec<SubscriberHandle>,
}

impl DemoHandle {
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        for subscriber in self.subscribers {
            subscriber.shutdown().await;
        }
        for reporter in self.reporters {
            reporter.shutdown().await;
        }
    }
}

/// The config of every demo breaker: 50 % failures over the last 20 calls (at least 10),
/// 5 s open, 3 probes.
pub fn demo_config() -> Config {
    Config::builder()
        .failure_rate_threshold(0.5)
        .window(Window::Count(20))
        .minimum_calls(10)
        .wait_duration(Duration::from_secs(5))
        .half_open_probes(3)
        .half_open_successes(3)
        .build()
        .expect("the demo config is valid")
}

/// Starts the simulated services against a running server, creating an ingest key per service.
pub async fn start(server: &RunningServer) -> anyhow::Result<DemoHandle> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut reporters = Vec::new();
    let mut subscribers = Vec::new();
    let started = tokio::time::Instant::now();
    for (service_idx, service) in SERVICES.iter().enumerate() {
        let key = auth::create_api_key(&server.state.store, service.name).await?;
        // The server holds each breaker's config, as a service owner would set it, so that
        // admins can change it or force a breaker open from the dashboard.
        for dependency in service.dependencies {
            configs::save_version(
                &server.state.store,
                &server.state.configs,
                NewVersion {
                    service: service.name,
                    breaker: dependency.breaker,
                    config: breaker::subscriber::config_to_wire(
                        &demo_config(),
                        breaker::Mode::Automatic,
                    ),
                    actor: "demo",
                    action: "config",
                    reason: "the demo's initial config".into(),
                    ends_auto_change: None,
                },
                server.state.clock.now_ms(),
            )
            .await
            .map_err(|err| anyhow::anyhow!("cannot store the demo config: {err}"))?;
        }
        for (instance_idx, instance) in service.instances.iter().enumerate() {
            let registry = Registry::new();
            reporters.push(Reporter::start(
                registry.clone(),
                ReporterConfig {
                    api_key: Some(key.secret.clone()),
                    ..ReporterConfig::new(server.url(), service.name, *instance)
                },
            ));
            subscribers.push(ConfigSubscriber::start(
                registry.clone(),
                SubscriberConfig {
                    api_key: Some(key.secret.clone()),
                    ..SubscriberConfig::new(server.url(), service.name, *instance)
                },
            ));
            for (dep_idx, dependency) in service.dependencies.iter().enumerate() {
                let breaker = registry.get_or_create(dependency.breaker, demo_config());
                let seed = (service_idx * 100 + instance_idx * 10 + dep_idx) as u64 + 1;
                let mut stopped = stopped.clone();
                tasks.spawn(async move {
                    let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
                    let mut ticker = tokio::time::interval(TICK);
                    let mut carry = 0.0;
                    loop {
                        tokio::select! {
                            _ = ticker.tick() => {}
                            _ = stopped.changed() => return,
                        }
                        let elapsed = started.elapsed();
                        let failing = dependency.in_incident && in_incident(elapsed);
                        let failure_p = if failing {
                            0.85
                        } else {
                            dependency.base_failure
                        };
                        carry += dependency.calls_per_s * TICK.as_secs_f64();
                        while carry >= 1.0 {
                            carry -= 1.0;
                            let Ok(permit) = breaker.try_acquire() else {
                                continue;
                            };
                            let latency_ms = dependency.latency_ms
                                * (0.5 + rng.next_f64())
                                * if failing { 4.0 } else { 1.0 };
                            let outcome = if rng.next_f64() < failure_p {
                                Outcome::Failure
                            } else {
                                Outcome::Success
                            };
                            permit.record(outcome, Duration::from_secs_f64(latency_ms / 1_000.0));
                        }
                    }
                });
            }
        }
    }
    Ok(DemoHandle {
        stop,
        tasks,
        reporters,
        subscribers,
    })
}

/// Whether the scripted incident is on, `elapsed` after the demo started.
pub fn in_incident(elapsed: Duration) -> bool {
    let Some(since_first) = elapsed.checked_sub(FIRST_INCIDENT_AT) else {
        return false;
    };
    let into_cycle = since_first.as_millis() % INCIDENT_EVERY.as_millis();
    into_cycle < INCIDENT_LENGTH.as_millis()
}

/// A small deterministic generator: the demo needs variety, not cryptographic randomness.
struct XorShift(u64);

impl XorShift {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_incident_repeats_on_schedule() {
        assert!(!in_incident(Duration::from_secs(9)));
        assert!(in_incident(Duration::from_secs(10)));
        assert!(in_incident(Duration::from_secs(34)));
        assert!(!in_incident(Duration::from_secs(35)));
        assert!(!in_incident(Duration::from_secs(159)));
        assert!(in_incident(Duration::from_secs(160)));
    }

    #[test]
    fn at_least_three_services_and_six_breakers() {
        assert!(SERVICES.len() >= 3);
        let n_breakers: usize = SERVICES.iter().map(|s| s.dependencies.len()).sum();
        assert!(n_breakers >= 6);
        assert!(
            SERVICES
                .iter()
                .flat_map(|s| s.dependencies)
                .any(|d| d.in_incident)
        );
        assert!(
            SERVICES
                .iter()
                .flat_map(|s| s.dependencies)
                .any(|d| !d.in_incident)
        );
    }
}
