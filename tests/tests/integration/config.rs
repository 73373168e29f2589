//! Configs pushed to instances: versioning, validation with the breaker's own rules, the
//! instances' long poll and sync status, manual control, restore, and the audit log.

use std::time::Duration;

use backend::auth::Role;
use breaker::subscriber::{ConfigSubscriber, SubscriberConfig};
use breaker::{CallError, Config, Registry};
use protocol::{BreakerMode, ConfigView, StoredConfig};
use serde_json::{Value, json};
use tests::wait::wait_for;
use tests::{TestServer, wire_config};

const DEADLINE: Duration = Duration::from_secs(10);

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "PUT" => self.client.put(url),
            "POST" => self.client.post(url),
            _ => self.client.get(url),
        }
        .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_reach_instances_and_are_audited() {
    let server = TestServer::start().await.unwrap();
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let viewer = server.user_token("vic", Role::Viewer).await.unwrap();
    let key = server.ingest_key("shop").await.unwrap();
    let api = Api {
        client: reqwest::Client::new(),
        base: server.url(),
    };
    let path = "/api/v1/breakers/shop/payments/config";

    // A viewer cannot change a config; a config that breaks a rule is refused with its field.
    let (status, _) = api
        .send(
            "PUT",
            path,
            &viewer,
            Some(json!({"config": wire_config(0.5)})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = api
        .send(
            "PUT",
            path,
            &admin,
            Some(json!({"config": wire_config(1.5)})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["path"], "$.config.failure_rate_threshold");

    // Control before any config is stored is a conflict, not a guess.
    let (status, _) = api
        .send(
            "POST",
            "/api/v1/breakers/shop/payments/control",
            &admin,
            Some(json!({"mode": "forced_open"})),
        )
        .await;
    assert_eq!(status, 409);

    let (status, body) = api
        .send(
            "PUT",
            path,
            &admin,
            Some(json!({"config": wire_config(0.3), "reason": "tighter"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v1: StoredConfig = serde_json::from_value(body).unwrap();
    assert_eq!((v1.config.version, v1.created_by.as_str()), (1, "ada"));

    // An instance with the subscriber picks it up and reports it runs it.
    let registry = Registry::new();
    let payments = registry.get_or_create("payments", Config::default());
    let subscriber = ConfigSubscriber::start(
        registry.clone(),
        SubscriberConfig {
            api_key: Some(key.clone()),
            ..SubscriberConfig::new(server.url(), "shop", "shop-1")
        },
    );
    let statuses = subscriber.watch();
    let wait_for_version = |version: u64| {
        let mut statuses = statuses.clone();
        async move {
            tokio::time::timeout(
                DEADLINE,
                statuses.wait_for(|s| {
                    s.get("payments")
                        .is_some_and(|s| s.running_version == version)
                }),
            )
            .await
            .expect("the instance applies the pushed config in time")
            .unwrap();
        }
    };
    wait_for_version(1).await;
    assert_eq!(payments.config().failure_rate_threshold(), Some(0.3));
    let view = async || -> ConfigView {
        let (status, body) = api.send("GET", path, &viewer, None).await;
        assert_eq!(status, 200);
        serde_json::from_value(body).unwrap()
    };
    // The status report may trail the apply by a moment: wait for it, with a deadline.
    let synced = wait_for(
        "the instance to report the version it runs",
        DEADLINE,
        async || {
            let v = view().await;
            v.instances
                .iter()
                .any(|i| i.instance == "shop-1" && i.in_sync)
                .then_some(v)
        },
    )
    .await;
    assert_eq!(synced.current.unwrap().config.version, 1);

    // Force open from the API: the instance rejects calls without trying them.
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/breakers/shop/payments/control",
            &admin,
            Some(json!({"mode": "forced_open"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v2: StoredConfig = serde_json::from_value(body).unwrap();
    assert_eq!(
        (v2.config.version, v2.config.mode),
        (2, Some(BreakerMode::ForcedOpen))
    );
    assert_eq!(
        v2.config.failure_rate_threshold,
        Some(0.3),
        "control keeps the thresholds"
    );
    wait_for_version(2).await;
    let res: Result<(), CallError<()>> = payments.call(|| Ok(()));
    assert!(
        matches!(res, Err(CallError::Rejected(_))),
        "a forced-open breaker rejects"
    );

    // Restoring version 1 makes version 3, automatic again.
    let (status, body) = api
        .send(
            "POST",
            "/api/v1/breakers/shop/payments/config/restore",
            &admin,
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let v3: StoredConfig = serde_json::from_value(body).unwrap();
    assert_eq!((v3.config.version, v3.config.mode), (3, None));
    wait_for_version(3).await;
    assert!(payments.call(|| Ok::<(), ()>(())).is_ok());

    // The history and the audit log say who did what.
    let v = view().await;
    assert_eq!(
        v.history
            .iter()
            .map(|c| c.config.version)
            .collect::<Vec<_>>(),
        vec![3, 2, 1]
    );
    let (status, audit) = api.send("GET", "/api/v1/audit", &viewer, None).await;
    assert_eq!(status, 200);
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        vec![("ada", "restore"), ("ada", "control"), ("ada", "config")]
    );
    subscriber.shutdown().await;
}

#[tokio::test]
async fn a_long_poll_without_news_ends_empty() {
    let server = TestServer::start().await.unwrap();
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let key = server.ingest_key("shop").await.unwrap();
    let other = server.ingest_key("elsewhere").await.unwrap();
    let api = Api {
        client: reqwest::Client::new(),
        base: server.url(),
    };
    let (status, _) = api
        .send(
            "PUT",
            "/api/v1/breakers/shop/db/config",
            &admin,
            Some(json!({"config": wire_config(0.5)})),
        )
        .await;
    assert_eq!(status, 200);
    let poll = "/api/v1/config/shop/db?wait_for_version_above=1&timeout_ms=50&instance=shop-1";
    let (status, _) = api.send("GET", poll, &key, None).await;
    assert_eq!(status, 204);
    let (status, body) = api
        .send(
            "GET",
            "/api/v1/config/shop/db?wait_for_version_above=0",
            &key,
            None,
        )
        .await;
    assert_eq!((status, body["version"].as_u64()), (200, Some(1)));
    let (status, _) = api.send("GET", poll, &other, None).await;
    assert_eq!(
        status, 403,
        "another service's key cannot read this service's configs"
    );
    let (status, _) = api
        .send("GET", "/api/v1/config/shop/unknown", &key, None)
        .await;
    assert_eq!(status, 404);
}
