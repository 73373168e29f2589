//! What protects the server from browsers, guessers and idle sockets: cross-origin writes
//! refused, the HttpOnly session cookie, security headers, credentials re-checked by long-lived
//! answers, connection caps and deadlines, throttled failed authentications, JSON for every error.

use std::time::Duration;

use backend::auth::Role;
use serde_json::{Value, json};
use tests::{SseReader, TestServer, wire_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bounds for events the server causes; no assertion depends on how fast they come.
const DEADLINE: Duration = Duration::from_secs(30);

fn control_body() -> Value {
    json!({"mode": "forced_open"})
}

/// Saves a first config for shop/db with a bearer token.
async fn save_config(server: &TestServer, admin: &str) {
    let put = reqwest::Client::new()
        .put(format!("{}/api/v1/breakers/shop/db/config", server.url()))
        .bearer_auth(admin)
        .json(&json!({"config": wire_config(0.5)}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
}

/// The current config version of shop/db.
async fn config_version(server: &TestServer, admin: &str) -> u64 {
    let view: protocol::ConfigView = server
        .get_json("/api/v1/breakers/shop/db/config", Some(admin))
        .await;
    view.current.expect("a config is saved").config.version
}

#[tokio::test]
async fn cookie_writes_from_another_origin_are_refused() {
    let server = TestServer::start().await.unwrap();
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let client = reqwest::Client::new();
    let control = format!("{}/api/v1/breakers/shop/db/control", server.url());
    let host = server.addr().to_string();
    save_config(&server, &admin).await;
    let before = config_version(&server, &admin).await;

    // A JSON write with the admin's cookie, from pages of other origins: another site, another
    // port of the same host (same site, so SameSite=Strict does not stop it), and an opaque one.
    for (origin, fetch_site) in [
        ("http://evil.example", Some("cross-site")),
        ("http://evil.example", None),
        ("http://127.0.0.1:1", Some("same-site")),
        ("http://127.0.0.1:1", None),
        ("null", None),
    ] {
        let mut request = client
            .post(&control)
            .header("cookie", format!("fusebox_token={admin}"))
            .header("origin", origin)
            .json(&control_body());
        if let Some(site) = fetch_site {
            request = request.header("sec-fetch-site", site);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 403, "{origin} {fetch_site:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "forbidden");
    }
    // A classic form POST from another site (no JSON content type) is refused the same way.
    let response = client
        .post(format!("{}/api/v1/recommendations/1/accept", server.url()))
        .header("cookie", format!("fusebox_token={admin}"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("x=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(
        config_version(&server, &admin).await,
        before,
        "no forged write changed the config"
    );

    // The dashboard's own page may write with its cookie; a bearer client may write from anywhere.
    let same_origin = client
        .post(&control)
        .header("cookie", format!("fusebox_token={admin}"))
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .json(&control_body())
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status().as_u16(), 200);
    let bearer = client
        .post(&control)
        .bearer_auth(&admin)
        .header("origin", "http://evil.example")
        .json(&json!({"mode": "automatic"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status().as_u16(), 200);
    assert!(config_version(&server, &admin).await > before);

    let metrics = server.server.state.metrics.render_server(0, 0);
    assert!(
        metrics.contains("fusebox_cross_origin_refused_total 6"),
        "{metrics}"
    );
}

#[tokio::test]
async fn signing_in_sets_an_http_only_cookie() {
    let server = TestServer::start().await.unwrap();
    let viewer = server.user_token("vic", Role::Viewer).await.unwrap();
    let key = server.ingest_key("shop").await.unwrap();
    let client = reqwest::Client::new();
    let session = format!("{}/api/v1/session", server.url());

    let response = client
        .post(&session)
        .json(&json!({"token": viewer}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.starts_with(&format!("fusebox_token={viewer};")),
        "{cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let me: protocol::Me = response.json().await.unwrap();
    assert_eq!(me.name.as_deref(), Some("vic"));

    // The cookie it set reads the API.
    let breakers = client
        .get(format!("{}/api/v1/breakers", server.url()))
        .header("cookie", format!("fusebox_token={viewer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(breakers.status().as_u16(), 200);

    // Behind an https proxy the cookie is Secure.
    let response = client
        .post(&session)
        .header("x-forwarded-proto", "https")
        .json(&json!({"token": viewer}))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );

    // An ingest key is no dashboard user; an unknown token is refused; sign-out expires it.
    let response = client
        .post(&session)
        .json(&json!({"token": key}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let response = client
        .post(&session)
        .json(&json!({"token": "fbu_0000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let response = client
        .post(&session)
        .json(&json!({"token": viewer, "remember": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        422,
        "unknown fields are refused"
    );
    let response = client.delete(&session).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("Max-Age=0") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn answers_carry_browser_security_headers() {
    let server = TestServer::start().await.unwrap();
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let client = reqwest::Client::new();
    for path in [
        "/",
        "/api/v1/alerts/channels",
        "/api/v1/nowhere",
        "/healthz",
    ] {
        let response = client
            .get(format!("{}{path}", server.url()))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let script_src = csp
            .split(';')
            .find(|directive| directive.trim().starts_with("script-src"))
            .unwrap_or_else(|| panic!("{path}: no script-src in {csp}"));
        assert!(!script_src.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        if path.starts_with("/api/") {
            assert_eq!(headers["cache-control"], "no-store", "{path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_viewer_loses_its_open_stream() {
    let server = TestServer::start().await.unwrap();
    let viewer = server.user_token("vic", Role::Viewer).await.unwrap();
    let mut stream = SseReader::connect_with_token(
        &format!("{}/api/v1/stream", server.url()),
        None,
        Some(&viewer),
    )
    .await
    .unwrap();
    assert_eq!(stream.next(DEADLINE).await.unwrap().event, "ready");
    assert!(
        backend::auth::revoke_user(&server.server.state.store, "vic")
            .await
            .unwrap()
    );
    let last = stream
        .next_matching(DEADLINE, |message| message.event == "revoked")
        .await
        .expect("the stream says it ends");
    assert!(last.data.contains("revoked"), "{last:?}");
    assert!(
        stream.next(DEADLINE).await.is_err(),
        "nothing follows: the stream has ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_loses_its_held_long_poll() {
    let server = TestServer::start().await.unwrap();
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let key = server.ingest_key("shop").await.unwrap();
    let client = reqwest::Client::new();
    save_config(&server, &admin).await;
    // Held for up to 60 s, waiting for a version that will not come.
    let poll = client
        .get(format!(
            "{}/api/v1/config/shop/db?wait_for_version_above=1&timeout_ms=60000",
            server.url()
        ))
        .bearer_auth(&key)
        .send();
    let poll = tokio::spawn(poll);
    let keys = backend::auth::list_api_keys(&server.server.state.store)
        .await
        .unwrap();
    assert!(
        backend::auth::revoke_api_key(&server.server.state.store, keys[0].id)
            .await
            .unwrap()
    );
    let response = tokio::time::timeout(DEADLINE, poll)
        .await
        .expect("the poll ends before its own timeout")
        .unwrap()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn idle_and_slow_connections_are_closed() {
    let server = TestServer::start_with(|options| {
        options.connections.header_read_timeout = Duration::from_millis(300);
    })
    .await
    .unwrap();
    // One connection that never sends anything, one that sends half a request head.
    let mut idle = TcpStream::connect(server.addr()).await.unwrap();
    let mut slow = TcpStream::connect(server.addr()).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    for (name, socket) in [("idle", &mut idle), ("slow", &mut slow)] {
        let mut buf = Vec::new();
        // Closed by the server: the read ends (EOF, or a reset after hyper's answer).
        let _ = tokio::time::timeout(DEADLINE, socket.read_to_end(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("the {name} connection is still open"));
    }
    // A prompt client on a new connection is served.
    let response = reqwest::get(format!("{}/healthz", server.url()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn connections_from_one_address_are_capped() {
    let server = TestServer::start_with(|options| {
        options.connections.max_connections_per_ip = 3;
    })
    .await
    .unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(server.addr()).await.unwrap());
    }
    // The fourth is accepted by the kernel, then closed by the server without an answer.
    let mut extra = TcpStream::connect(server.addr()).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, extra.read_to_end(&mut buf))
        .await
        .expect("the extra connection is closed");
    assert!(buf.is_empty(), "no answer on a refused connection");
    // A held one is served; closing them frees their places.
    let first = &mut held[0];
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    first.read_to_end(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    drop(held);
    // The refusal is counted before the socket is closed, so it is there once the read ended.
    let metrics = server.server.state.metrics.render_server(0, 0);
    assert!(
        metrics.contains("fusebox_http_connections_refused_total{reason=\"per_ip\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fusebox_http_connections_open"),
        "{metrics}"
    );
}

#[tokio::test]
async fn failed_authentications_are_throttled_per_address() {
    let server = TestServer::start_with(|options| options.failed_auth_per_minute = 5)
        .await
        .unwrap();
    let viewer = server.user_token("vic", Role::Viewer).await.unwrap();
    let client = reqwest::Client::new();
    let breakers = format!("{}/api/v1/breakers", server.url());
    for i in 0..5 {
        let response = client
            .get(&breakers)
            .bearer_auth(format!("fbu_guess{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401, "guess {i}");
    }
    let response = client
        .get(&breakers)
        .bearer_auth("fbu_guess5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "throttled");
    // While blocked, even a right guess is not checked.
    let response = client
        .get(&breakers)
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let state = &server.server.state;
    let metrics = state.metrics.render_server(0, 0);
    assert!(
        metrics.contains("fusebox_auth_failures_total{outcome=\"rejected\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("fusebox_auth_failures_total{outcome=\"throttled\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn every_error_is_json_and_encoded_bodies_are_refused() {
    let server = TestServer::start().await.unwrap();
    let key = server.ingest_key("shop").await.unwrap();
    let client = reqwest::Client::new();
    let response = client
        .delete(format!("{}/api/v1/breakers", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert!(response.headers().contains_key("allow"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");

    // A plain body declared as gzip is refused, not misread.
    let batch = json!({"service": "shop", "instance": "shop-1", "seq": 1,
        "sent_at_ms": backend::time::now_ms(), "aggregates": [], "transitions": []});
    let response = client
        .post(format!("{}/api/v1/ingest", server.url()))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(batch.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("gzip"), "{body}");
}
