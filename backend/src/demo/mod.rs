//! The demo: simulated services that embed the real `breaker` crate and report to the server
//! over real HTTP with their own ingest keys, with a scripted incident that repeats; a week of
//! history written before they start; and a way in as admin.
//!
//! Three services, five instances, six breakers. Every `INCIDENT_EVERY` the dependency
//! `payments-api` of the `checkout` service fails most calls for `INCIDENT_LENGTH`, so both
//! checkout instances' breakers go Closed → Open → Half-Open (→ Open while it lasts) → Closed;
//! the first incident starts `FIRST_INCIDENT_AT` after start. The other breakers stay healthy;
//! one of them, [`WRONG_BREAKER`], has a threshold its dependency's outages never reach.
//!
//! Before the services start, [`history`] makes [`history::DAYS`] days of their past (past
//! incidents included), the demo asks the engine for a recommendation for [`WRONG_BREAKER`], and
//! adds an admin whose one-time sign-in link (`#signin=CODE`, see `auth::code`) `fusebox demo`
//! prints.

pub mod adapters;
pub mod history;

use std::collections::HashMap;
use std::time::Duration;

use breaker::reporter::{Reporter, ReporterConfig, ReporterHandle};
use breaker::subscriber::{ConfigSubscriber, SubscriberConfig, SubscriberHandle};
use breaker::{Config, Outcome, Registry, Window};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth;
use crate::configs::{self, NewVersion};
use crate::query::rollup::Bucket;
use crate::server::RunningServer;
use crate::store::Store;

const FIRST_INCIDENT_AT: Duration = Duration::from_secs(10);
const INCIDENT_LENGTH: Duration = Duration::from_secs(25);
const INCIDENT_EVERY: Duration = Duration::from_secs(150);
/// How much slower an incident's calls are, live and in the history.
const INCIDENT_SLOWDOWN: f64 = 4.0;
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
    /// The failure probability while an incident lasts (scripted or past).
    incident_failure: f64,
    /// Incidents a day in the history written at start ([`history`]).
    past_incidents_per_day: u32,
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
                incident_failure: 0.85,
                past_incidents_per_day: 3,
            },
            Dependency {
                breaker: "inventory-db",
                calls_per_s: 60.0,
                base_failure: 0.01,
                latency_ms: 8.0,
                in_incident: false,
                incident_failure: 0.85,
                past_incidents_per_day: 0,
            },
        ],
    },
    Service {
        name: "search",
        instances: &["search-1", "search-2"],
        dependencies: &[
            Dependency {
                breaker: "catalog-index",
                calls_per_s: 120.0,
                base_failure: 0.005,
                latency_ms: 15.0,
                in_incident: false,
                incident_failure: 0.85,
                past_incidents_per_day: 0,
            },
            Dependency {
                breaker: "recommendations",
                calls_per_s: 10.0,
                base_failure: 0.04,
                latency_ms: 120.0,
                in_incident: false,
                incident_failure: 0.6,
                past_incidents_per_day: 2,
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
                incident_failure: 0.85,
                past_incidents_per_day: 0,
            },
            Dependency {
                breaker: "email-gateway",
                calls_per_s: 5.0,
                base_failure: 0.03,
                latency_ms: 300.0,
                in_incident: false,
                incident_failure: 0.85,
                past_incidents_per_day: 0,
            },
        ],
    },
];

/// The breaker whose config is plainly wrong for its traffic: it opens only when 90 % of its
/// last 100 calls fail, but its dependency's outages (twice a day in the history) fail about
/// 60 % of calls, so it stays Closed through every one and sends calls into them. The demo
/// asks the engine for a recommendation for it at start.
pub const WRONG_BREAKER: (&str, &str) = ("search", "recommendations");

/// The history the demo's own recommendation learns from: the last two days hold four of the
/// wrong breaker's outages, and the run stays well within the engine's time budget even on an
/// unoptimised build (a week takes several times as long).
pub const RECOMMEND_DAYS: i64 = 2;

/// The name of the demo's admin (with a number after it when a database already has one).
pub const ADMIN_NAME: &str = "demo-admin";

/// The running simulation; `shutdown` stops the calls and flushes every reporter.
pub struct DemoHandle {
    /// The one-time sign-in link for the demo's admin, `http://HOST:PORT/#signin=CODE`: the
    /// code is in the fragment, which browsers never send, so it reaches no server log.
    pub admin_link: String,
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

/// The config of [`WRONG_BREAKER`]: 90 % failures over the last 100 calls (at least 50).
pub fn slow_to_open_config() -> Config {
    demo_config()
        .to_builder()
        .failure_rate_threshold(0.9)
        .window(Window::Count(100))
        .minimum_calls(50)
        .build()
        .expect("the slow-to-open config is valid")
}

/// The config a demo breaker runs.
pub fn config_for(service: &str, breaker: &str) -> Config {
    if (service, breaker) == WRONG_BREAKER {
        slow_to_open_config()
    } else {
        demo_config()
    }
}

/// Starts the demo against a running server: a week of history (into a database that has
/// never seen the demo), the breakers' configs, a recommendation for [`WRONG_BREAKER`] (made in
/// the background), an admin with a one-time sign-in link, and the simulated services, each
/// with an ingest key of its own.
pub async fn start(server: &RunningServer) -> anyhow::Result<DemoHandle> {
    let now_ms = server.state.clock.now_ms();
    // A second run on the same database keeps the first one's history rather than writing
    // another over it.
    let fresh = server
        .state
        .store
        .find_breaker(SERVICES[0].name, SERVICES[0].dependencies[0].breaker)
        .await?
        .is_none();
    let versions = save_configs(server, fresh, now_ms).await?;
    if fresh {
        write_history(server, &versions, now_ms).await?;
    }
    let admin_link = admin_link(server).await?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(recommend_wrong_breaker(
        server.state.clone(),
        stopped.clone(),
    ));
    let mut reporters = Vec::new();
    let mut subscribers = Vec::new();
    let started = tokio::time::Instant::now();
    for (service_idx, service) in SERVICES.iter().enumerate() {
        let key = auth::create_api_key(&server.state.store, service.name).await?;
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
                let breaker = registry.get_or_create(
                    dependency.breaker,
                    config_for(service.name, dependency.breaker),
                );
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
                            dependency.incident_failure
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
                                * if failing { INCIDENT_SLOWDOWN } else { 1.0 };
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
        admin_link,
        stop,
        tasks,
        reporters,
        subscribers,
    })
}

/// The config version of each demo breaker.
type Versions = HashMap<(&'static str, &'static str), u64>;

/// Stores every breaker's config, as a service owner would set it, so that admins can change
/// it or force a breaker open from the dashboard. In a fresh database the configs date from
/// the start of the history they ran through.
async fn save_configs(
    server: &RunningServer,
    fresh: bool,
    now_ms: i64,
) -> anyhow::Result<Versions> {
    let mut versions = Versions::new();
    for service in SERVICES {
        for dependency in service.dependencies {
            let key = (service.name, dependency.breaker);
            let reason = if key == WRONG_BREAKER {
                "the demo's initial config: it opens only when 90 % of calls fail, which this \
                 dependency's outages never reach"
            } else {
                "the demo's initial config"
            };
            let stored = configs::save_version(
                &server.state.store,
                &server.state.configs,
                NewVersion {
                    service: service.name,
                    breaker: dependency.breaker,
                    config: breaker::subscriber::config_to_wire(
                        &config_for(service.name, dependency.breaker),
                        breaker::Mode::Automatic,
                    ),
                    actor: "demo",
                    action: "config",
                    reason: reason.into(),
                    ends_auto_change: None,
                },
                if fresh {
                    history::from_ms(now_ms)
                } else {
                    now_ms
                },
            )
            .await
            .map_err(|err| anyhow::anyhow!("cannot store the demo config: {err}"))?;
            versions.insert(key, stored.config.version);
        }
    }
    Ok(versions)
}

/// Writes [`history::generate`]'s week through the stores: per-second aggregates and
/// transitions in one transaction, then the rollups.
async fn write_history(
    server: &RunningServer,
    versions: &Versions,
    now_ms: i64,
) -> anyhow::Result<()> {
    let store = &server.state.store;
    let series: Vec<history::Series<'static>> = SERVICES
        .iter()
        .flat_map(|service| {
            service.dependencies.iter().map(|dependency| {
                let key = (service.name, dependency.breaker);
                history::Series {
                    service: service.name,
                    instances: service.instances,
                    dependency,
                    config: config_for(service.name, dependency.breaker),
                    config_version: versions.get(&key).copied().unwrap_or(1),
                }
            })
        })
        .collect();
    let past = tokio::task::spawn_blocking(move || history::generate(&series, now_ms)).await?;
    let mut ids: HashMap<(&str, &str), i64> = HashMap::new();
    let mut tx = store.begin_ingest().await?;
    for service in SERVICES {
        for dependency in service.dependencies {
            let id = Store::breaker_id(&mut tx, service.name, dependency.breaker, now_ms).await?;
            ids.insert((service.name, dependency.breaker), id);
        }
    }
    tx.commit().await?;
    // The rollups before the aggregates: a rollup run that reads these aggregates then finds
    // the rollups too and adds to them (the hour holding the split is in both), where one
    // that read before `insert_rollups` replaced them would write over them.
    let rollups: Vec<(i64, i64, i64, Bucket)> = past
        .rollups
        .into_iter()
        .map(|(service, breaker, resolution, start_ms, bucket)| {
            (ids[&(service, breaker)], resolution, start_ms, bucket)
        })
        .collect();
    crate::query::rollup::insert_rollups(store, &rollups).await?;
    let mut tx = store.begin_ingest().await?;
    let rows: Vec<(i64, &str, &protocol::Aggregate)> = past
        .aggregates
        .iter()
        .map(|(service, instance, aggregate)| {
            (
                ids[&(*service, aggregate.breaker.as_str())],
                *instance,
                aggregate,
            )
        })
        .collect();
    Store::insert_aggregates(&mut tx, &rows).await?;
    for (service, instance, transition) in &past.transitions {
        let id = ids[&(*service, transition.breaker.as_str())];
        Store::insert_transition(&mut tx, id, instance, transition, now_ms).await?;
    }
    tx.commit().await?;
    // The per-second hours are rolled up now, as the rollup job would within its period: the
    // engine's first run reads minutes, and the job's catch-up would otherwise hold the write
    // lock batch after batch while the services start. Should the job have started on them
    // first, it finishes them.
    if let Err(err) = crate::query::rollup::catch_up(store).await {
        tracing::warn!(
            error = format!("{err:#}"),
            "the demo's history is left to the rollup job"
        );
    }
    tracing::info!(
        aggregates = rows.len(),
        transitions = past.transitions.len(),
        rollups = rollups.len(),
        "wrote the demo's history"
    );
    Ok(())
}

/// Adds the demo's admin and registers a one-time code for their token; returns the link
/// that signs a browser in with it. The token itself is never shown.
async fn admin_link(server: &RunningServer) -> anyhow::Result<String> {
    let mut name = ADMIN_NAME.to_string();
    let mut n = 1;
    let created = loop {
        match auth::add_user(&server.state.store, &name, auth::Role::Admin).await {
            Ok(created) => break created,
            // A database that ran the demo before has a `demo-admin` already.
            Err(err) if n < 100 && err.to_string().contains("exists already") => {
                n += 1;
                name = format!("{ADMIN_NAME}-{n}");
            }
            Err(err) => return Err(err),
        }
    };
    let code = server
        .state
        .sign_in_codes
        .issue(&created.secret, server.state.clock.now_ms())?;
    Ok(format!("{}/#signin={code}", server.url()))
}

/// Asks the engine about [`WRONG_BREAKER`] over the history, as an admin's `POST
/// …/recommendations` would, so that the Recommendations page holds a suggestion at once. A
/// run cut short by the engine's time budget (a machine busy with other work) is tried again,
/// up to [`RECOMMEND_ATTEMPTS`] runs in all.
async fn recommend_wrong_breaker(
    state: crate::state::AppState,
    mut stopped: watch::Receiver<bool>,
) {
    let (service, breaker) = WRONG_BREAKER;
    for attempt in 1..=RECOMMEND_ATTEMPTS {
        let (job, _cancel_on_drop) = state.engine.job();
        let run = crate::tuning::recommend::recommend(
            &state.store,
            service,
            breaker,
            (RECOMMEND_DAYS, state.clock.now_ms()),
            &job,
        );
        tokio::select! {
            res = run => match res {
                Ok(rec) => {
                    tracing::info!(id = rec.id, service, breaker, "the demo's recommendation is ready");
                    return;
                }
                Err(err @ crate::error::AppError::EngineBudget { .. })
                    if attempt < RECOMMEND_ATTEMPTS =>
                {
                    tracing::warn!(error = %err, service, breaker, attempt, "the demo's recommendation ran out of time; trying again");
                }
                Err(err) => {
                    tracing::warn!(error = %err, service, breaker, "the demo could not make its recommendation");
                    return;
                }
            },
            _ = stopped.changed() => return,
        }
    }
}

/// How many engine runs the demo tries for its recommendation.
const RECOMMEND_ATTEMPTS: u32 = 3;

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
