//! Support for fusebox's end-to-end and browser tests, shared by the `integration` test binary
//! and the `browser_load` bench.
//!
//! Brief overview:
//! - [`TestServer`]: a real server on an ephemeral port with a temporary SQLite file, or with a
//!   fresh database of a throwaway PostgreSQL cluster when `FUSEBOX_TEST_DATABASE=postgres`.
//! - [`SseReader`]: a reader of its live stream, each read with a deadline.
//! - [`post_batch`], [`tight_config`], [`wire_config`]: an acknowledged ingest batch, a breaker
//!   config that trips after five failures, a config as the config API takes it.
//! - [`wait`]: polling with a deadline; no test waits without one.
//! - [`skip`]: a test that cannot run here says so loudly and on record, or fails when required.
//! - [`browser`]: chromedriver, headless Chromium and the dashboard's page.

pub mod browser;
pub mod postgres;
pub mod skip;
pub mod wait;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use backend::server::{self, RunningServer, ServerOptions};
use futures_util::StreamExt;

/// The variable that runs every [`TestServer`] on PostgreSQL: `postgres` gives each server a
/// fresh database in one throwaway cluster per test process ([`postgres::shared_database`]);
/// unset (or `sqlite`), each server has its own temporary SQLite file.
pub const DATABASE_VAR: &str = "FUSEBOX_TEST_DATABASE";

/// Whether [`TestServer`]s run on PostgreSQL in this process (see [`DATABASE_VAR`]).
pub fn on_postgres() -> bool {
    match std::env::var(DATABASE_VAR).as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("{DATABASE_VAR}={other:?}: expected sqlite or postgres"),
    }
}

/// A server on 127.0.0.1:0 with its own temporary database (see [`DATABASE_VAR`]).
pub struct TestServer {
    pub server: RunningServer,
    pub database_path: PathBuf,
    options: ServerOptions,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> anyhow::Result<TestServer> {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` has changed the default options.
    pub async fn start_with(adjust: impl FnOnce(&mut ServerOptions)) -> anyhow::Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let database_path = dir.path().join("fusebox.db");
        let url = if on_postgres() {
            postgres::shared_database()?
        } else {
            format!("sqlite://{}", database_path.display())
        };
        let mut options = ServerOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)), url);
        adjust(&mut options);
        let server = server::start(options.clone()).await?;
        Ok(TestServer {
            server,
            database_path,
            options,
            _dir: dir,
        })
    }

    /// Stops the server, then starts a new one with the same options on the same database
    /// file (on a new ephemeral port).
    pub async fn restart(self) -> anyhow::Result<TestServer> {
        self.restart_after(|_| {}).await
    }

    /// [`TestServer::restart`], calling `between` with the options once the server has stopped
    /// (to change what a server finds at start).
    pub async fn restart_after(
        self,
        between: impl FnOnce(&ServerOptions),
    ) -> anyhow::Result<TestServer> {
        let TestServer {
            server,
            database_path,
            options,
            _dir,
        } = self;
        server.shutdown().await?;
        between(&options);
        let server = server::start(options.clone()).await?;
        Ok(TestServer {
            server,
            database_path,
            options,
            _dir,
        })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// The SQLite file (unused on PostgreSQL).
    pub fn database_path(&self) -> &Path {
        &self.database_path
    }

    /// The number `sql` (one row, one bigint column) reads from the server's database, on
    /// either kind.
    pub async fn scalar(&self, sql: &'static str) -> i64 {
        match self.server.state.store.db() {
            backend::store::Db::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            backend::store::Db::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    /// Runs `sql` (written for both databases) on the server's database.
    pub async fn execute(&self, sql: &'static str) {
        match self.server.state.store.db() {
            backend::store::Db::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
            backend::store::Db::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    /// A new ingest key for `service`.
    pub async fn ingest_key(&self, service: &str) -> anyhow::Result<String> {
        Ok(
            backend::auth::create_api_key(&self.server.state.store, service)
                .await?
                .secret,
        )
    }

    /// GETs `path` (`/api/…`), with `token` when given, and parses the 2xx JSON answer.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> T {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request).await
    }

    /// POSTs `body` as JSON to `path` with `token` and parses the 2xx JSON answer.
    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        body: &impl serde::Serialize,
    ) -> T {
        let request = reqwest::Client::new()
            .post(format!("{}{path}", self.url()))
            .bearer_auth(token)
            .json(body);
        answer(request).await
    }

    /// A new user's token with the given role.
    pub async fn user_token(
        &self,
        name: &str,
        role: backend::auth::Role,
    ) -> anyhow::Result<String> {
        Ok(
            backend::auth::add_user(&self.server.state.store, name, role)
                .await?
                .secret,
        )
    }
}

/// POSTs `batch` to `/api/v1/ingest` of the server at `base_url` with the ingest key `key`;
/// the batch must be acknowledged (a 2xx, whose body the failure message shows otherwise).
pub async fn post_batch(
    base_url: &str,
    key: &str,
    batch: &impl serde::Serialize,
) -> protocol::IngestAck {
    let request = reqwest::Client::new()
        .post(format!("{base_url}/api/v1/ingest"))
        .bearer_auth(key)
        .json(batch);
    answer(request).await
}

/// POSTs `batch` as the Rust reporter sends it: in the compact form (`protocol::compact`),
/// over `client`'s kept-alive connections; it must be acknowledged. Like the reporter, it sends
/// the batch again when the request never got an answer: a kept-alive connection the server
/// closed as idle just as it was taken for the request (the batch's `seq` makes a second copy
/// a duplicate, not a second row).
pub async fn post_compact(
    client: &reqwest::Client,
    base_url: &str,
    key: &str,
    batch: &protocol::IngestBatch,
) -> protocol::IngestAck {
    let body = protocol::compact::encode(batch);
    let mut attempts = 0;
    loop {
        let sent = client
            .post(format!("{base_url}/api/v1/ingest"))
            .bearer_auth(key)
            .header(reqwest::header::CONTENT_TYPE, protocol::compact::MEDIA_TYPE)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Err(err) if err.is_request() && attempts < 3 => attempts += 1,
            sent => return answered(sent.expect("the server answers")).await,
        }
    }
}

/// A breaker that trips after five failures in a row (failure rate 0.5 over a count window of
/// ten, at least five calls), stays Open for a minute, and closes after one good probe.
pub fn tight_config() -> breaker::Config {
    breaker::Config::builder()
        .failure_rate_threshold(0.5)
        .window(breaker::Window::Count(10))
        .minimum_calls(5)
        .wait_duration(Duration::from_secs(60))
        .half_open_probes(1)
        .half_open_successes(1)
        .build()
        .unwrap()
}

/// A breaker config as `PUT …/config` takes it (inside `{"config": …}`), with `threshold` as
/// its failure-rate threshold.
pub fn wire_config(threshold: f64) -> serde_json::Value {
    serde_json::json!({
        "version": 0, "failure_rate_threshold": threshold,
        "window": {"kind": "count", "calls": 20}, "minimum_calls": 10,
        "wait": {"kind": "fixed", "ms": 5000},
        "half_open_probes": 3, "half_open_successes": 3
    })
}

/// Sends `request` and parses its answer, which must be a 2xx with a JSON body.
async fn answer<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> T {
    answered(request.send().await.expect("the server answers")).await
}

/// Parses `response`, which must be a 2xx with a JSON body.
async fn answered<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> T {
    let status = response.status();
    let text = response.text().await.expect("the answer has a body");
    assert!(status.is_success(), "answered {status}: {text}");
    serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("not the JSON expected ({err}): {text}"))
}

/// One message of a Server-Sent Events stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SseMessage {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Reads a Server-Sent Events stream message by message.
pub struct SseReader {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseReader {
    /// Connects to `url`, sending `Last-Event-ID` when given.
    pub async fn connect(url: &str, last_event_id: Option<&str>) -> anyhow::Result<SseReader> {
        SseReader::connect_with_token(url, last_event_id, None).await
    }

    /// Connects with a bearer token.
    pub async fn connect_with_token(
        url: &str,
        last_event_id: Option<&str>,
        token: Option<&str>,
    ) -> anyhow::Result<SseReader> {
        let mut request = reqwest::Client::new().get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await?.error_for_status()?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        anyhow::ensure!(
            content_type.starts_with("text/event-stream"),
            "expected an event stream, got {content_type:?}"
        );
        Ok(SseReader {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        })
    }

    /// The next message (comments such as heartbeats are skipped), waiting at most `deadline`.
    pub async fn next(&mut self, deadline: Duration) -> anyhow::Result<SseMessage> {
        tokio::time::timeout(deadline, self.next_message())
            .await
            .context("no stream message before the deadline")?
    }

    /// Reads messages until one satisfies `want`, waiting at most `deadline` in all.
    pub async fn next_matching(
        &mut self,
        deadline: Duration,
        mut want: impl FnMut(&SseMessage) -> bool,
    ) -> anyhow::Result<SseMessage> {
        tokio::time::timeout(deadline, async {
            loop {
                let message = self.next_message().await?;
                if want(&message) {
                    return Ok(message);
                }
            }
        })
        .await
        .context("no matching stream message before the deadline")?
    }

    async fn next_message(&mut self) -> anyhow::Result<SseMessage> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = SseMessage::default();
                let mut has_field = false;
                for line in block.lines() {
                    if line.starts_with(':') || line.is_empty() {
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    has_field = true;
                    match field {
                        "event" => message.event = value.to_string(),
                        "id" => message.id = Some(value.to_string()),
                        "data" => {
                            if !message.data.is_empty() {
                                message.data.push('\n');
                            }
                            message.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if has_field {
                    return Ok(message);
                }
                continue;
            }
            let chunk = self.body.next().await.context("the stream ended")??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Waits (at most a minute) for the recommendation the demo makes for its wrong breaker, read
/// as `token` (or anonymously) from the server at `base_url`.
pub async fn demo_recommendation(base_url: &str, token: Option<&str>) -> protocol::Recommendation {
    let (service, breaker) = backend::demo::WRONG_BREAKER;
    let list = format!("{base_url}/api/v1/recommendations");
    let client = reqwest::Client::new();
    wait::wait_for_every(
        "the demo's recommendation",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_millis(500),
        async || {
            let mut request = client.get(&list);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let recs: Vec<protocol::Recommendation> =
                request.send().await.ok()?.json().await.ok()?;
            recs.into_iter()
                .find(|rec| (rec.service.as_str(), rec.breaker.as_str()) == (service, breaker))
        },
    )
    .await
}
