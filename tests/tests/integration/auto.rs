//! Auto mode end to end: an admin switches it on, the server applies the engine's suggestion
//! on one canary instance, rolls it back when the canary trips alone, gives way to an admin's
//! own change, and promotes a canary that behaves to every instance. Every step is audited
//! and noticed by an `auto_tune` alert.

use std::time::Duration;

use backend::auth::Role;
use backend::time::now_ms;
use protocol::{AutoTuneStep, AutoTuneView, BreakerConfig, ConfigView};
use serde_json::{Value, json};
use tests::TestServer;

use crate::recommend::{call, history};

const MINUTE: i64 = 60_000;

struct Setup {
    server: TestServer,
    client: reqwest::Client,
    key: String,
    admin: String,
    viewer: String,
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.server.url())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        call(&self.client, "GET", self.url(path), &self.viewer, None).await
    }

    /// `PUT` of shop/payments' auto-mode settings as `token`.
    async fn put_auto(&self, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url("/breakers/shop/payments/auto"))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn run(&self) -> AutoTuneStep {
        let (status, body) = call(
            &self.client,
            "POST",
            self.url("/breakers/shop/payments/auto/run"),
            &self.admin,
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body).unwrap()
    }

    /// What `instance` gets from the config long poll above `version` (None: nothing newer).
    async fn poll(&self, instance: &str, version: u64) -> Option<BreakerConfig> {
        let response = self
            .client
            .get(self.url(&format!(
                "/config/shop/payments?wait_for_version_above={version}&timeout_ms=50{}",
                // An empty name is no name: the poll then names no instance at all.
                if instance.is_empty() {
                    String::new()
                } else {
                    format!("&instance={instance}")
                }
            )))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => Some(response.json().await.unwrap()),
            204 => None,
            other => panic!("config poll answered {other}"),
        }
    }

    /// `instance` says which version of shop/payments it runs.
    async fn report(&self, instance: &str, version: u64) {
        let (status, body) = call(
            &self.client,
            "POST",
            self.url("/config-status"),
            &self.key,
            Some(
                json!({"service": "shop", "instance": instance, "at_ms": now_ms(),
                        "breakers": [{"breaker": "payments", "running_version": version}]}),
            ),
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }

    /// An opening of shop/payments on `instance`, running `version`.
    async fn open(&self, instance: &str, seq: u64, version: u64) {
        self.ingest(
            instance,
            seq,
            json!({"transitions": [{"breaker": "payments", "at_ms": now_ms(), "from": "closed",
                                     "to": "open", "config_version": version}]}),
        )
        .await;
    }

    async fn current_version(&self) -> u64 {
        let (_, view) = self.get("/breakers/shop/payments/config").await;
        let view: ConfigView = serde_json::from_value(view).unwrap();
        view.current.unwrap().config.version
    }

    async fn ingest(&self, instance: &str, seq: u64, body: Value) {
        let mut batch = json!({"service": "shop", "instance": instance, "seq": seq,
                               "sent_at_ms": now_ms()});
        for (k, v) in body.as_object().unwrap() {
            batch[k] = v.clone();
        }
        let (status, body) = call(
            &self.client,
            "POST",
            self.url("/ingest"),
            &self.key,
            Some(batch),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
}

/// Auto mode on: one-second canaries, no cooldown, any confidence, a 50 % step at most.
fn auto_on() -> Value {
    json!({"enabled": true, "canary_ms": 1000, "cooldown_ms": 0, "min_confidence": 0.0,
           "days": 1, "max_step": 0.5})
}

/// A server with 3 h of history for shop/payments, a loose config (version 1) and two
/// instances that listen for configs.
async fn setup() -> Setup {
    setup_with(history).await
}

/// [`setup`] with the history `history(start)` gives.
async fn setup_with(history: fn(i64) -> Vec<Value>) -> Setup {
    // Steps are taken through the API only: the background task waits an hour.
    let server = TestServer::start_with(|options| {
        options.auto_tune_period = Duration::from_secs(3_600);
    })
    .await
    .unwrap();
    let setup = Setup {
        key: server.ingest_key("shop").await.unwrap(),
        admin: server.user_token("ada", Role::Admin).await.unwrap(),
        viewer: server.user_token("vic", Role::Viewer).await.unwrap(),
        client: reqwest::Client::new(),
        server,
    };
    let start = (now_ms() - 181 * MINUTE).div_euclid(MINUTE) * MINUTE;
    setup
        .ingest("shop-1", 1, json!({"aggregates": history(start)}))
        .await;
    let loose = json!({"config": {"version": 0, "failure_rate_threshold": 0.9,
        "window": {"kind": "count", "calls": 1000}, "minimum_calls": 1000,
        "wait": {"kind": "fixed", "ms": 60000}, "half_open_probes": 1, "half_open_successes": 1}});
    let put = setup.url("/breakers/shop/payments/config");
    let response = setup
        .client
        .put(put)
        .bearer_auth(&setup.admin)
        .json(&loose)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for instance in ["shop-1", "shop-2"] {
        setup.report(instance, 1).await;
    }
    setup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_leaves_a_suggestion_in_doubt_for_an_admin() {
    // Three quiet hours: nothing went wrong, so nothing shows what a trip should catch.
    let s = setup_with(|start| {
        let mut steps = history(start);
        let quiet = steps[0].clone();
        for (minute, step) in steps.iter_mut().enumerate() {
            let start_ms = step["start_ms"].clone();
            *step = quiet.clone();
            step["start_ms"] = start_ms;
            assert_eq!(step["start_ms"], json!(start + minute as i64 * MINUTE));
        }
        steps
    })
    .await;
    assert_eq!(s.put_auto(&s.admin, &auto_on()).await.status(), 200);
    let step = s.run().await;
    assert_eq!(step.action, "low_confidence", "{}", step.detail);
    assert!(
        step.detail.contains("no anomalous period"),
        "{}",
        step.detail
    );
    assert_eq!(s.current_version().await, 1, "the config is left alone");
    // The recommendation is there for an admin, marked with its doubt.
    let (status, body) = s.get("/recommendations").await;
    assert_eq!(status, 200, "{body}");
    let recs: Vec<protocol::Recommendation> = serde_json::from_value(body).unwrap();
    let rec = recs.first().expect("the engine's run is kept");
    assert!(rec.confidence <= 0.3, "{}", rec.confidence);
    assert!(
        rec.doubts.iter().any(|d| d.contains("no anomalous period")),
        "{:?}",
        rec.doubts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_mode_canaries_rolls_back_and_promotes() {
    let s = setup().await;

    // Off by default; only admins switch it on; bad settings are refused with their path.
    let (status, body) = s.get("/breakers/shop/payments/auto").await;
    assert_eq!(status, 200, "{body}");
    let view: AutoTuneView = serde_json::from_value(body).unwrap();
    assert!(!view.settings.enabled && view.changes.is_empty());
    assert_eq!(s.run().await.action, "off");
    let on = auto_on();
    assert_eq!(s.put_auto(&s.viewer, &on).await.status(), 403);
    let response = s
        .put_auto(&s.admin, &json!({"enabled": true, "canary_ms": 10}))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["path"], "$.canary_ms", "{body}");
    let response = s.put_auto(&s.admin, &on).await;
    assert_eq!(response.status(), 200);
    let (status, _) = call(
        &s.client,
        "POST",
        s.url("/breakers/shop/payments/auto/run"),
        &s.viewer,
        None,
    )
    .await;
    assert_eq!(status, 403, "only admins take a step");
    let view: AutoTuneView = response.json().await.unwrap();
    assert_eq!(view.updated_by.as_deref(), Some("ada"));

    // 1. A canary: the suggestion, within a 50 % step of the loose config, on one instance.
    let step = s.run().await;
    assert_eq!(step.action, "canary_started", "{}", step.detail);
    let change = step.change.unwrap();
    let canary = change.canary_instance.clone().unwrap();
    let peer = if canary == "shop-1" {
        "shop-2"
    } else {
        "shop-1"
    };
    assert_eq!(change.peers, vec![peer.to_string()]);
    assert_eq!((change.base_version, change.version), (1, 2));
    let threshold = change.config.failure_rate_threshold.unwrap();
    assert!(
        (0.45..0.9).contains(&threshold),
        "a 50 % step from 0.9 at most: {threshold}"
    );
    assert!(!change.clamped.is_empty(), "the guardrails cut the step");
    let got = s
        .poll(&canary, 1)
        .await
        .expect("the canary gets the change");
    assert_eq!(got, change.config);
    assert_eq!(s.poll(peer, 1).await, None, "the peer keeps version 1");
    assert_eq!(
        s.poll("", 1).await,
        None,
        "a poll that names no instance gets the current config"
    );
    assert_eq!(s.current_version().await, 1);
    assert_eq!(s.run().await.action, "canary_running");

    // 2. The canary opens while its peer stays closed: a false trip, rolled back.
    s.report(&canary, 2).await;
    s.open(&canary, 2, 2).await;
    let step = s.run().await;
    assert_eq!(step.action, "rolled_back", "{}", step.detail);
    let change = step.change.unwrap();
    assert_eq!(
        (change.status.as_str(), change.false_trips),
        ("rolled_back", 1)
    );
    assert_eq!(s.current_version().await, 3);
    let back = s.poll(&canary, 2).await.expect("the canary is moved back");
    assert_eq!(
        (
            back.version,
            back.failure_rate_threshold,
            back.minimum_calls
        ),
        (3, Some(0.9), 1000)
    );
    assert_eq!(s.poll(peer, 1).await.map(|c| c.version), Some(3));

    // 3. An admin's own change during a canary cancels it; versions are never reused.
    let step = s.run().await;
    assert_eq!(step.action, "canary_started", "{}", step.detail);
    assert_eq!(step.change.as_ref().unwrap().version, 4);
    let (status, _) = call(
        &s.client,
        "POST",
        s.url("/breakers/shop/payments/control"),
        &s.admin,
        Some(json!({"mode": "automatic", "reason": "by hand"})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(s.current_version().await, 5);
    let (_, view) = s.get("/breakers/shop/payments/auto").await;
    let view: AutoTuneView = serde_json::from_value(view).unwrap();
    assert!(view.canary.is_none());
    assert_eq!(view.changes[0].status, "cancelled");

    // 4. A canary that behaves is promoted to every instance when its time is up.
    let step = s.run().await;
    assert_eq!(step.action, "canary_started", "{}", step.detail);
    let change = step.change.unwrap();
    assert_eq!(change.version, 6);
    // Both instances open together: the dependency failed, not the canary's config.
    s.open(&canary, 3, 6).await;
    s.open(peer, 100, 5).await;
    let step = s.run().await;
    assert_eq!(step.action, "canary_running", "{}", step.detail);
    let running = step.change.unwrap();
    assert_eq!((running.canary_openings, running.false_trips), (1, 0));
    // Not promoted before the canary says it runs the change.
    assert!(step.detail.contains("waiting for"), "{}", step.detail);
    s.report(&canary, 6).await;
    let step = tests::wait::wait_for_every(
        "the canary to end",
        Duration::from_secs(20),
        Duration::from_millis(200),
        async || {
            let step = s.run().await;
            (step.action != "canary_running").then_some(step)
        },
    )
    .await;
    assert_eq!(step.action, "promoted", "{}", step.detail);
    assert_eq!(s.current_version().await, 6);
    assert_eq!(s.poll(peer, 5).await, Some(change.config.clone()));
    assert_eq!(s.poll(&canary, 6).await, None, "the canary already runs it");

    // 5. Switching auto mode off with a change on its canary rolls the canary back.
    let step = s.run().await;
    assert_eq!(step.action, "canary_started", "{}", step.detail);
    assert_eq!(step.change.unwrap().version, 7);
    let response = s.put_auto(&s.admin, &json!({"enabled": false})).await;
    assert_eq!(response.status(), 200);
    let view: AutoTuneView = response.json().await.unwrap();
    assert!(!view.settings.enabled && view.canary.is_none());
    assert_eq!(view.changes[0].status, "rolled_back");
    assert_eq!(s.current_version().await, 8);
    let mut back = s.poll(&canary, 7).await.expect("the canary is moved back");
    back.version = 6;
    assert_eq!(back, change.config, "version 8 is version 6 again");
    assert_eq!(s.run().await.action, "off");

    // Audited, and each change raised an auto_tune notice.
    let (_, audit) = s.get("/audit?limit=50").await;
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for action in ["auto-canary", "auto-rollback", "auto-promote"] {
        assert!(
            actions.contains(&("auto-tuner".to_string(), action.to_string())),
            "{action} audited: {actions:?}"
        );
    }
    assert!(actions.contains(&("ada".into(), "auto-mode".into())));
    let (_, alerts) = s.get("/alerts?status=resolved").await;
    let titles: Vec<&str> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule"] == "auto-tune-changes")
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.iter().any(|t| t.contains("rolled back"))
            && titles.iter().any(|t| t.contains("promoted")),
        "{titles:?}"
    );
    // The accepted recommendation says who applied it.
    let (_, recs) = s.get("/recommendations?status=accepted").await;
    let recs = recs.as_array().unwrap();
    assert_eq!(recs.len(), 4, "one per canary");
    assert!(recs.iter().all(|r| r["decided_by"] == "auto-tuner"));
}
