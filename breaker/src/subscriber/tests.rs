//! Tests of the config subscriber against a stand-in long-polling config server.

use std::sync::Mutex;

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::Notify;

use super::*;
use crate::machine::State;

/// A stand-in config server with long polls: holds one config per breaker, and can be
/// switched to answer 503.
#[derive(Clone, Default)]
struct Server {
    configs: Arc<Mutex<BTreeMap<String, protocol::BreakerConfig>>>,
    changed: Arc<Notify>,
    down: Arc<std::sync::atomic::AtomicBool>,
    reports: Arc<Mutex<Vec<protocol::ConfigStatusReport>>>,
    reported: Arc<Notify>,
}

async fn poll_config(
    AxumState(server): AxumState<Server>,
    Path((service, breaker)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    assert_eq!(service, "checkout");
    let above: u64 = query["wait_for_version_above"].parse().unwrap();
    let timeout_ms: u64 = query["timeout_ms"].parse().unwrap();
    assert_eq!(query["instance"], "checkout-1");
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let changed = server.changed.notified();
        if server.down.load(std::sync::atomic::Ordering::SeqCst) {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        match server.configs.lock().unwrap().get(&breaker) {
            None => return StatusCode::NOT_FOUND.into_response(),
            Some(config) if config.version > above => return Json(config.clone()).into_response(),
            Some(_) => {}
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return StatusCode::NO_CONTENT.into_response();
        }
    }
}

async fn config_status(
    AxumState(server): AxumState<Server>,
    Json(report): Json<protocol::ConfigStatusReport>,
) -> StatusCode {
    server.reports.lock().unwrap().push(report);
    server.reported.notify_waiters();
    StatusCode::NO_CONTENT
}

impl Server {
    fn push(&self, breaker: &str, config: protocol::BreakerConfig) {
        self.configs
            .lock()
            .unwrap()
            .insert(breaker.to_owned(), config);
        self.changed.notify_waiters();
    }

    /// Waits for a reported status matching `wanted`.
    async fn report_where(
        &self,
        wanted: impl Fn(&protocol::ConfigStatus) -> bool,
    ) -> protocol::ConfigStatus {
        // One deadline for the whole wait: reports that keep arriving without the wanted
        // status must not extend it.
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let reported = self.reported.notified();
                let found = self
                    .reports
                    .lock()
                    .unwrap()
                    .iter()
                    .flat_map(|report| report.breakers.iter())
                    .find(|status| wanted(status))
                    .cloned();
                if let Some(status) = found {
                    return status;
                }
                reported.await;
            }
        })
        .await
        .expect("no such status was reported")
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_waiters();
    }
}

async fn serve(server: Server) -> String {
    let app = axum::Router::new()
        .route(
            "/api/v1/config/{service}/{breaker}",
            axum::routing::get(poll_config),
        )
        .route("/api/v1/config-status", axum::routing::post(config_status))
        .with_state(server);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn wire(version: u64, threshold: f64) -> protocol::BreakerConfig {
    let config = Config::builder()
        .window(Window::Count(10))
        .minimum_calls(2)
        .build()
        .unwrap();
    protocol::BreakerConfig {
        version,
        failure_rate_threshold: Some(threshold),
        ..config_to_wire(&config, Mode::Automatic)
    }
}

fn subscriber_config(endpoint: String) -> SubscriberConfig {
    SubscriberConfig {
        poll_timeout: Duration::from_millis(200),
        min_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        rescan_interval: Duration::from_millis(10),
        ..SubscriberConfig::new(endpoint, "checkout", "checkout-1")
    }
}

/// Waits until the statuses satisfy `done`; bounded so a broken subscriber fails the test.
async fn wait_for(
    handle: &SubscriberHandle,
    done: impl Fn(&BTreeMap<String, SubscriptionStatus>) -> bool,
) -> BTreeMap<String, SubscriptionStatus> {
    let mut watch = handle.watch();
    tokio::time::timeout(Duration::from_secs(20), watch.wait_for(|s| done(s)))
        .await
        .expect("the statuses never got there")
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_pushed_config_applies_and_an_invalid_one_is_refused() {
    let server = Server::default();
    server.push("payments", wire(2, 0.5));
    let endpoint = serve(server.clone()).await;
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", Config::default());
    let handle = ConfigSubscriber::start(registry.clone(), subscriber_config(endpoint));

    wait_for(&handle, |s| {
        s.get("payments").is_some_and(|p| p.running_version == 2)
    })
    .await;
    assert_eq!(payments.config().version(), 2);
    assert_eq!(payments.config().window(), Window::Count(10));

    // A breaker made after the subscriber started is followed too, once it has a config.
    server.push("search", wire(5, 0.3));
    let search = registry.get_or_create("search", Config::default());
    wait_for(&handle, |s| {
        s.get("search").is_some_and(|p| p.running_version == 5)
    })
    .await;
    assert_eq!(search.config().failure_rate_threshold(), Some(0.3));

    // Trip the breaker, then push an invalid config: it is refused, state and config stay.
    for _ in 0..2 {
        let _ = payments.call(|| Err::<(), ()>(()));
    }
    assert_eq!(payments.state(), State::Open);
    server.push("payments", wire(3, 1.5));
    let statuses = wait_for(&handle, |s| s["payments"].refused.is_some()).await;
    let (version, err) = statuses["payments"].refused.clone().unwrap();
    assert_eq!((version, err.field), (3, "failure_rate_threshold"));
    assert_eq!(statuses["payments"].running_version, 2);
    assert_eq!(payments.config().version(), 2);
    assert_eq!(payments.state(), State::Open);
    let status = server
        .report_where(|s| s.breaker == "payments" && s.refused.is_some())
        .await;
    assert_eq!(
        (status.breaker.as_str(), status.running_version),
        ("payments", 2)
    );
    let refused = status.refused.as_ref().unwrap();
    assert_eq!(
        (refused.version, refused.field.as_str()),
        (3, "failure_rate_threshold")
    );

    // A later valid config applies, keeping the state.
    server.push("payments", wire(4, 0.9));
    wait_for(&handle, |s| s["payments"].running_version == 4).await;
    assert_eq!(payments.state(), State::Open);
    assert!(handle.statuses()["payments"].refused.is_none());
    handle.shutdown().await;
}

#[tokio::test]
async fn the_last_good_config_stays_while_the_server_is_down() {
    let server = Server::default();
    server.push("payments", wire(2, 0.5));
    let endpoint = serve(server.clone()).await;
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", Config::default());
    let handle = ConfigSubscriber::start(registry.clone(), subscriber_config(endpoint));
    wait_for(&handle, |s| {
        s.get("payments").is_some_and(|p| p.running_version == 2)
    })
    .await;

    server.set_down(true);
    wait_for(&handle, |s| s["payments"].last_error.is_some()).await;
    assert_eq!(payments.config().version(), 2);

    server.push("payments", wire(6, 0.4));
    server.set_down(false);
    wait_for(&handle, |s| {
        s["payments"].running_version == 6 && s["payments"].last_error.is_none()
    })
    .await;
    assert_eq!(payments.config().failure_rate_threshold(), Some(0.4));
    handle.shutdown().await;
}

#[test]
fn wire_configs_round_trip_and_name_invalid_fields() {
    let config = Config::builder()
        .window(Window::Time(30))
        .slow_call_rate_threshold(0.8)
        .slow_call_duration(Duration::from_millis(250))
        .wait(Wait::Exponential {
            initial: Duration::from_secs(1),
            multiplier: 2.0,
            max: Duration::from_secs(60),
            jitter: 0.1,
        })
        .version(9)
        .build()
        .unwrap();
    assert_eq!(
        config_from_wire(&config_to_wire(&config, Mode::Automatic)),
        Ok(config)
    );
    let empty_window = protocol::BreakerConfig {
        window: protocol::WindowConfig::Count { calls: 0 },
        ..wire(1, 0.5)
    };
    assert_eq!(config_from_wire(&empty_window).unwrap_err().field, "window");
}
