//! The auth matrix generated from the route list: every operation of the OpenAPI document
//! (which the router is made from) × no credentials / an unknown token / its service's ingest
//! key / another service's ingest key / a viewer / an admin / a revoked admin, with and without
//! `--anonymous-viewer`. What each caller may do comes from the operation's `security` roles
//! (`backend::routes::Access`); the route list is what it checks, so a route added to the
//! server is tried here without anyone adding it to a list.
//!
//! Callers who may call a route get anything but 401/403 (and no 5xx): their request may still
//! be refused for what it asks (an unknown id is 404, a missing body 4xx). Callers who may not
//! get exactly 401 (no or unknown credentials) or 403 (known, without the right).

use backend::routes::Access;
use backend::time::now_ms;
use serde_json::{Value, json};

use crate::auth::{Callers, EVERYONE, Who};

/// `Ok(())` when `who` may call a route of `access`, else the status they must get.
fn verdict(access: Access, who: Who, anonymous: bool) -> Result<(), u16> {
    let roles = access.roles();
    match who {
        _ if access == Access::Public => Ok(()),
        Who::Unknown | Who::Revoked => Err(401),
        Who::Nobody if anonymous && roles.contains(&"viewer") => Ok(()),
        Who::Nobody => Err(401),
        Who::Ingest if roles.contains(&"ingest") => Ok(()),
        Who::Viewer if roles.contains(&"viewer") => Ok(()),
        Who::Admin if roles.contains(&"admin") => Ok(()),
        Who::Ingest | Who::OtherServiceIngest | Who::Viewer | Who::Admin => Err(403),
    }
}

/// The access an operation's `security` states.
fn access_of(op: &Value) -> Access {
    let roles: Vec<&str> = match op["security"].as_array() {
        None => panic!("an operation without `security`: {op}"),
        Some(reqs) if reqs.is_empty() => Vec::new(),
        Some(reqs) => reqs[0]["bearer"]
            .as_array()
            .expect("bearer roles")
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect(),
    };
    Access::from_roles(&roles).unwrap_or_else(|| panic!("unknown roles {roles:?}"))
}

/// A body for the routes whose access depends on what the body names (the service an ingest
/// key reports for): without it, the body's own errors would answer first.
fn body(path: &str, seq: u64) -> Option<Value> {
    let now = now_ms();
    match path {
        "/api/v1/ingest" => Some(json!({
            "service": "svc", "instance": "i", "seq": seq, "sent_at_ms": now,
            "aggregates": [{"breaker": "db", "start_ms": now - 1000, "interval_ms": 1000,
                            "counts": {"success": 1}, "state": "closed"}]})),
        "/api/v1/ingest/calls" => Some(json!({
            "service": "svc", "instance": "i", "seq": seq, "sent_at_ms": now,
            "calls": [{"breaker": "db", "at_ms": now - 500, "outcome": "success", "latency_ms": 3}]})),
        "/api/v1/config-status" => Some(json!({
            "service": "svc", "instance": "i", "at_ms": now,
            "breakers": [{"breaker": "db", "running_version": 1}]})),
        _ => None,
    }
}

/// The path with its parameters filled: the service `svc` (whose ingest key is `Who::Ingest`),
/// its breaker `db`, and ids or names nothing has (an allowed caller gets 404, not a change).
fn concrete(path: &str) -> String {
    path.replace("{service}", "svc")
        .replace("{breaker}", "db")
        .replace("{id}", "999999")
        .replace("{name}", "no-such-name")
}

async fn matrix(anonymous: bool) {
    let callers = Callers::new(anonymous).await;
    let server = &callers.server;
    let doc = backend::openapi::document();
    let paths = doc["paths"].as_object().expect("paths");
    let client = reqwest::Client::new();
    let mut seq = 0;
    let mut tried = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let method = match method.as_str() {
                "get" => reqwest::Method::GET,
                "post" => reqwest::Method::POST,
                "put" => reqwest::Method::PUT,
                "delete" => reqwest::Method::DELETE,
                _ => continue,
            };
            let access = access_of(op);
            let has_body = op.get("requestBody").is_some();
            if access == Access::Ingest && has_body {
                assert!(
                    body(path, 0).is_some(),
                    "{method} {path}: an ingest route with a body needs a sample body here"
                );
            }
            tried += 1;
            for who in EVERYONE {
                seq += 1;
                let url = format!("{}{}", server.url(), concrete(path));
                let mut request = client.request(method.clone(), &url);
                if let Some(body) = body(path, seq) {
                    request = request.json(&body);
                }
                if let Some(token) = callers.token(who) {
                    request = request.bearer_auth(token);
                }
                // Only the status is read: the live stream's body never ends.
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let context = format!(
                    "{method} {path} ({access:?}) as {who:?} (anonymous viewer: {anonymous})"
                );
                match verdict(access, who, anonymous) {
                    Ok(()) => assert!(
                        status != 401 && status != 403 && status < 500,
                        "{context}: {status}"
                    ),
                    Err(want) => {
                        assert_eq!(status, want, "{context}");
                        let body: protocol::ErrorBody = response.json().await.unwrap();
                        assert!(!body.detail.is_empty(), "{context}");
                    }
                }
            }
        }
    }
    assert!(tried >= 40, "the document lists {tried} operations");
}

#[tokio::test]
async fn every_route_in_the_route_list_checks_credentials() {
    matrix(false).await;
}

#[tokio::test]
async fn every_route_in_the_route_list_opens_to_anonymous_viewers_only_for_reading() {
    matrix(true).await;
}
