//! The auth matrix: every route × no credentials / an unknown one / an ingest key / a viewer /
//! an admin, with and without `--anonymous-viewer`.

use backend::auth::Role;
use tests::TestServer;

#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    Unknown,
    Ingest,
    OtherServiceIngest,
    Viewer,
    Admin,
    Revoked,
}

const EVERYONE: [Who; 7] = [
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
    /// Open to all.
    Public,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn expected(access: &Access, who: Who, anonymous: bool) -> u16 {
    match (access, who) {
        (Access::Public, _) => 200,
        (_, Who::Unknown | Who::Revoked) => 401,
        (Access::Read, Who::Viewer | Who::Admin) => 200,
        (Access::Read, Who::Nobody) if anonymous => 200,
        (Access::Read, Who::Nobody) => 401,
        (Access::Read, Who::Ingest | Who::OtherServiceIngest) => 403,
        (Access::Ingest, Who::Ingest | Who::Admin) => 200,
        (Access::Ingest, Who::Nobody) => 401,
        (Access::Ingest, Who::Viewer | Who::OtherServiceIngest) => 403,
    }
}

async fn matrix(anonymous: bool) {
    let server = TestServer::start_with(|o| o.anonymous_viewer = anonymous)
        .await
        .unwrap();
    let ingest = server.ingest_key("svc").await.unwrap();
    let other = server.ingest_key("other").await.unwrap();
    let viewer = server.user_token("vic", Role::Viewer).await.unwrap();
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let revoked = server.user_token("rex", Role::Admin).await.unwrap();
    assert!(
        backend::auth::revoke_user(&server.server.state.store, "rex")
            .await
            .unwrap()
    );
    let token = |who: Who| -> Option<String> {
        match who {
            Who::Nobody => None,
            Who::Unknown => Some("fbu_0123456789abcdef".into()),
            Who::Ingest => Some(ingest.clone()),
            Who::OtherServiceIngest => Some(other.clone()),
            Who::Viewer => Some(viewer.clone()),
            Who::Admin => Some(admin.clone()),
            Who::Revoked => Some(revoked.clone()),
        }
    };
    let routes: Vec<(&str, &str, Access)> = vec![
        ("POST", "/api/v1/ingest", Access::Ingest),
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
            let mut request = if *method == "POST" {
                client.post(&url).json(&serde_json::json!({
                    "service": "svc", "instance": "i", "seq": seq, "sent_at_ms": now_ms(),
                    "aggregates": [{"breaker": "db", "start_ms": now_ms() - 1000, "interval_ms": 1000,
                                    "counts": {"success": 1}, "state": "closed"}]
                }))
            } else {
                client.get(&url)
            };
            if let Some(token) = token(who) {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let want = expected(access, who, anonymous);
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
