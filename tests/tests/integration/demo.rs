//! The demo's first ten minutes: the one-time admin sign-in link (exchanged once, never on a
//! plain server), and a week of history that gives the engine a better config for the demo's
//! wrong breaker, ready on the Recommendations page without anyone asking.

use backend::auth::Role;
use backend::time::{Clock, now_ms};
use serde_json::{Value, json};
use tests::TestServer;

/// `POST /api/v1/session` with `body`: the status and the JSON answer.
async fn sign_in(server: &TestServer, body: Value) -> (u16, Value, Option<String>) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/session", server.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let cookie = response
        .headers()
        .get("set-cookie")
        .map(|value| value.to_str().unwrap().to_string());
    (status, response.json().await.unwrap_or(Value::Null), cookie)
}

#[tokio::test]
async fn a_sign_in_code_signs_in_exactly_once() {
    let server = TestServer::start().await.unwrap();
    // A server that is not the demo has no code at all.
    assert!(server.server.state.sign_in_codes.is_empty());
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let clock = &server.server.state.clock;
    let code = server
        .server
        .state
        .sign_in_codes
        .issue(&admin, clock.now_ms())
        .unwrap();

    let (status, me, cookie) = sign_in(&server, json!({"code": code})).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me, json!({"name": "ada", "role": "admin"}));
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.starts_with(&format!("fusebox_token={admin};")),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));

    // Used once, it is unknown; the token it stood for still signs in.
    let (status, body, cookie) = sign_in(&server, json!({"code": code})).await;
    assert_eq!((status, cookie), (401, None), "{body}");
    let (status, me, _) = sign_in(&server, json!({"token": admin})).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("admin")));

    // Exactly one of the two, each letters, digits and `_`, nothing else.
    for (body, path) in [
        (json!({}), "$"),
        (json!({"token": admin, "code": "fbc_0"}), "$"),
        (json!({"code": null}), "$"),
        (json!({"code": "fbc 0"}), "$.code"),
        (json!({"code": ""}), "$.code"),
        (json!({"code": 7}), "$.code"),
        (json!({"code": "fbc_0", "remember": true}), "$"),
    ] {
        let (status, answer, _) = sign_in(&server, body.clone()).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert!(
            answer["path"].as_str().is_some_and(|p| p.starts_with(path)),
            "{body}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_history_gives_the_wrong_breaker_a_better_config() {
    let server = TestServer::start().await.unwrap();
    let demo = backend::demo::start(&server.server).await.unwrap();

    // The printed link holds a one-time code for an admin.
    let code = demo
        .admin_link
        .strip_prefix(&format!("{}/#signin=", server.url()))
        .unwrap_or_else(|| panic!("{}", demo.admin_link))
        .to_string();
    let (status, me, _) = sign_in(&server, json!({"code": code})).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["role"], "admin");
    assert!(
        me["name"]
            .as_str()
            .unwrap()
            .starts_with(backend::demo::ADMIN_NAME)
    );

    // Within the first minute, without anyone asking, a recommendation for the wrong breaker.
    let viewer = server.user_token("vic", Role::Viewer).await.unwrap();
    let rec = tests::demo_recommendation(&server.url(), Some(&viewer)).await;
    let wrong = breaker::subscriber::config_to_wire(
        &backend::demo::slow_to_open_config(),
        breaker::Mode::Automatic,
    );
    assert_eq!(
        rec.current.failure_rate_threshold,
        wrong.failure_rate_threshold
    );
    let mut suggested = rec.suggested.clone();
    suggested.version = rec.current.version;
    assert_ne!(suggested, rec.current, "the suggestion changes the config");
    // The current config missed the outages in the history; the suggestion catches them.
    assert!(
        rec.current_backtest.anomalies > 0,
        "{:?}",
        rec.current_backtest
    );
    assert_eq!(
        rec.current_backtest.detected, 0,
        "{:?}",
        rec.current_backtest
    );
    assert!(
        rec.suggested_backtest.detected > 0,
        "{:?}",
        rec.suggested_backtest
    );
    assert!(rec.replay.is_some(), "the replay chart's data");
    demo.shutdown().await;
}

#[tokio::test]
async fn a_sign_in_code_expires_an_hour_after_its_issue() {
    let server = TestServer::start_with(|options| options.clock = Clock::manual(now_ms()))
        .await
        .unwrap();
    let clock = &server.server.state.clock;
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let codes = &server.server.state.sign_in_codes;
    let late = codes.issue(&admin, clock.now_ms()).unwrap();
    let on_time = codes.issue(&admin, clock.now_ms()).unwrap();
    clock.advance(std::time::Duration::from_millis(
        backend::auth::code::CODE_LIFETIME_MS as u64 - 1,
    ));
    let (status, me, _) = sign_in(&server, json!({"code": on_time})).await;
    assert_eq!(status, 200, "{me}");
    clock.advance(std::time::Duration::from_millis(1));
    let (status, body, cookie) = sign_in(&server, json!({"code": late})).await;
    assert_eq!((status, cookie), (401, None), "{body}");
}
