//! The auth matrix: every route × no credentials / an unknown one / an ingest key / a viewer /
//! an admin, with and without `--anonymous-viewer`.

use backend::auth::Role;
use backend::time::now_ms;
use tests::TestServer;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    Nobody,
    Unknown,
    Ingest,
    OtherServiceIngest,
    Viewer,
    Admin,
    Revoked,
}

pub(crate) const EVERYONE: [Who; 7] = [
    Who::Nobody,
    Who::Unknown,
    Who::Ingest,
    Who::OtherServiceIngest,
    Who::Viewer,
    Who::Admin,
    Who::Revoked,
];

enum Access {
    /// Reads: viewer or admin (or anyone under --anonymous-viewer).
    Read,
    /// Ingest for the service `svc`: its key or an admin.
    Ingest,
    /// Writes: an admin only.
    Admin,
    /// A service's configs: its instances (ingest key), viewers and admins.
    Config,
    /// An instance's config status: its service's ingest key or an admin.
    Status,
    /// Open to all.
    Public,
}

fn expected(access: &Access, who: Who, anonymous: bool) -> u16 {
    match (access, who) {
        (Access::Public, _) => 200,
        (_, Who::Unknown | Who::Revoked) => 401,
        (Access::Admin, Who::Admin) => 200,
        (Access::Admin, Who::Nobody) => 401,
        (Access::Admin, _) => 403,
        (Access::Config, Who::Ingest | Who::Viewer | Who::Admin) => 200,
        (Access::Config, Who::Nobody) if anonymous => 200,
        (Access::Config, Who::Nobody) => 401,
        (Access::Config, Who::OtherServiceIngest) => 403,
        (Access::Status, Who::Ingest | Who::Admin) => 200,
        (Access::Status, Who::Nobody) => 401,
        (Access::Status, _) => 403,
        (Access::Read, Who::Viewer | Who::Admin) => 200,
        (Access::Read, Who::Nobody) if anonymous => 200,
        (Access::Read, Who::Nobody) => 401,
        (Access::Read, Who::Ingest | Who::OtherServiceIngest) => 403,
        (Access::Ingest, Who::Ingest | Who::Admin) => 200,
        (Access::Ingest, Who::Nobody) => 401,
        (Access::Ingest, Who::Viewer | Who::OtherServiceIngest) => 403,
    }
}

/// A server with a caller of every kind: ingest keys of `svc` and `other`, a viewer, an admin
/// and a revoked admin.
pub(crate) struct Callers {
    pub(crate) server: TestServer,
    ingest: String,
    other: String,
    viewer: String,
    admin: String,
    revoked: String,
}

impl Callers {
    pub(crate) async fn new(anonymous: bool) -> Callers {
        // The matrix presents unknown credentials on purpose, many times from one address: the
        // failed-authentication throttle (tested on its own) must not turn its 401s into 429s.
        let server = TestServer::start_with(|o| {
            o.anonymous_viewer = anonymous;
            o.failed_auth_per_minute = 100_000;
        })
        .await
        .unwrap();
        let callers = Callers {
            ingest: server.ingest_key("svc").await.unwrap(),
            other: server.ingest_key("other").await.unwrap(),
            viewer: server.user_token("vic", Role::Viewer).await.unwrap(),
            admin: server.user_token("ada", Role::Admin).await.unwrap(),
            revoked: server.user_token("rex", Role::Admin).await.unwrap(),
            server,
        };
        assert!(
            backend::auth::revoke_user(&callers.server.server.state.store, "rex")
                .await
                .unwrap()
        );
        callers
    }

    /// The bearer token `who` presents, if any.
    pub(crate) fn token(&self, who: Who) -> Option<String> {
        match who {
            Who::Nobody => None,
            Who::Unknown => Some("fbu_0123456789abcdef".into()),
            Who::Ingest => Some(self.ingest.clone()),
            Who::OtherServiceIngest => Some(self.other.clone()),
            Who::Viewer => Some(self.viewer.clone()),
            Who::Admin => Some(self.admin.clone()),
            Who::Revoked => Some(self.revoked.clone()),
        }
    }
}

async fn matrix(anonymous: bool) {
    let callers = Callers::new(anonymous).await;
    let server = &callers.server;
    let token = |who: Who| callers.token(who);
    let routes: Vec<(&str, &str, Access)> = vec![
        ("POST", "/api/v1/ingest", Access::Ingest),
        ("PUT", "/api/v1/breakers/svc/db/config", Access::Admin),
        ("POST", "/api/v1/breakers/svc/db/control", Access::Admin),
        (
            "POST",
            "/api/v1/breakers/svc/db/config/restore",
            Access::Admin,
        ),
        ("GET", "/api/v1/breakers/svc/db/config", Access::Read),
        ("GET", "/api/v1/config/svc/db", Access::Config),
        ("POST", "/api/v1/config-status", Access::Status),
        ("GET", "/api/v1/audit", Access::Read),
        ("GET", "/api/v1/services", Access::Read),
        ("GET", "/api/v1/breakers", Access::Read),
        ("GET", "/api/v1/breakers/svc/db/series", Access::Read),
        ("GET", "/api/v1/breakers/svc/db/timeline", Access::Read),
        ("GET", "/api/v1/breakers/svc/db/transitions", Access::Read),
        ("GET", "/api/v1/stream", Access::Read),
        ("GET", "/metrics", Access::Read),
        ("GET", "/api/openapi.json", Access::Public),
        ("GET", "/healthz", Access::Public),
    ];
    let client = reqwest::Client::new();
    let mut seq = 0;
    for (method, path, access) in &routes {
        for who in EVERYONE {
            seq += 1;
            let url = format!("{}{path}", server.url());
            let body = match *path {
                "/api/v1/ingest" => Some(serde_json::json!({
                    "service": "svc", "instance": "i", "seq": seq, "sent_at_ms": now_ms(),
                    "aggregates": [{"breaker": "db", "start_ms": now_ms() - 1000, "interval_ms": 1000,
                                    "counts": {"success": 1}, "state": "closed"}]
                })),
                "/api/v1/breakers/svc/db/config" if *method == "PUT" => {
                    Some(serde_json::json!({"config": {
                    "version": 0, "failure_rate_threshold": 0.5, "window": {"kind": "count", "calls": 20},
                    "minimum_calls": 10, "wait": {"kind": "fixed", "ms": 5000},
                    "half_open_probes": 3, "half_open_successes": 3}}))
                }
                "/api/v1/breakers/svc/db/control" => {
                    Some(serde_json::json!({"mode": "metrics_only"}))
                }
                "/api/v1/breakers/svc/db/config/restore" => Some(serde_json::json!({"version": 1})),
                "/api/v1/config-status" => Some(serde_json::json!({
                    "service": "svc", "instance": "i", "at_ms": now_ms(),
                    "breakers": [{"breaker": "db", "running_version": 1}]})),
                _ => None,
            };
            let mut request = match *method {
                "POST" => client.post(&url),
                "PUT" => client.put(&url),
                _ => client.get(&url),
            };
            if let Some(body) = body {
                request = request.json(&body);
            }
            if let Some(token) = token(who) {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let mut status = response.status().as_u16();
            let want = expected(access, who, anonymous);
            if want == 200 && response.status().is_success() {
                // A status report answers 204; any success is what is asked.
                status = 200;
            }
            assert_eq!(
                status, want,
                "{method} {path} as {who:?} (anonymous viewer: {anonymous})"
            );
            if status >= 400 {
                let body: protocol::ErrorBody = response.json().await.unwrap();
                assert!(!body.detail.is_empty());
            }
        }
    }
}

#[tokio::test]
async fn every_route_checks_credentials() {
    matrix(false).await;
}

#[tokio::test]
async fn anonymous_viewing_opens_reads_only() {
    matrix(true).await;
}

#[tokio::test]
async fn the_dashboard_cookie_counts_as_a_token() {
    let server = TestServer::start().await.unwrap();
    let viewer = server.user_token("vic", Role::Viewer).await.unwrap();
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/breakers", server.url()))
        .header("cookie", format!("theme=dark; fusebox_token={viewer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
