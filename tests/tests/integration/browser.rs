//! Browser test: the dashboard in headless Chromium shows a breaker going Open, live.
//!
//! A real server runs in-process on an ephemeral port with a temporary SQLite file and serves the
//! built bundle (`FUSEBOX_DIST`, else `frontend/dist`, built by `cargo xtask build-ui`). A real
//! `breaker` with its reporter trips, and the tile must say Open (attribute and text) within 2 s,
//! without a reload. Chromium is driven through chromedriver (WebDriver) with fantoccini.
//!
//! When chromedriver, Chromium or the bundle is missing the test is skipped with the reason,
//! unless `FUSEBOX_REQUIRE_BROWSER=1` (set by `cargo xtask test`), where it fails instead.
//!
//! The helpers here (finding the browser, chromedriver, polling with deadlines, screenshots) are
//! shared by the other `browser_*` tests; [`BROWSER_LOCK`] runs one browser at a time, since the
//! machines that run these have few cores.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backend::server::ServerOptions;
use breaker::reporter::{Reporter, ReporterConfig};
use breaker::{CallError, Config, Registry, Window};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tests::TestServer;

/// Held by every browser test while its browser runs.
pub(crate) static BROWSER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The dashboard must show the new state this soon after the breaker opened.
const LIVE_DEADLINE: Duration = Duration::from_secs(2);
/// Loading the page, mounting the app and connecting its stream.
pub(crate) const PAGE_READY_DEADLINE: Duration = Duration::from_secs(20);
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tile_turns_open_live_without_reload() {
    let Some(setup) = BrowserSetup::find() else {
        return;
    };
    let _browser = BROWSER_LOCK.lock().await;
    let server = setup
        .server(|options| options.anonymous_viewer = true)
        .await;
    let key = server.ingest_key("checkout").await.unwrap();

    let (_driver, client) = setup.browser().await;

    // The page loads, mounts, and its live stream connects.
    client.goto(&server.url()).await.unwrap();
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        "the page to show a live stream",
        |client| async move { client.find(Locator::Css(".pill.live")).await.is_ok() },
    )
    .await;
    // Marks this document: after a reload the mark would be gone.
    client
        .execute("window.__fusebox_no_reload = 42;", vec![])
        .await
        .unwrap();

    let registry = Registry::new();
    let reporter = Reporter::start(
        registry.clone(),
        ReporterConfig {
            api_key: Some(key),
            ..ReporterConfig::new(server.url(), "checkout", "checkout-1")
        },
    );
    let payments = registry.get_or_create("payments-api", tight_config());
    for _ in 0..5 {
        let res: Result<(), CallError<&str>> = payments.call(|| Err("connection refused"));
        assert!(matches!(res, Err(CallError::Inner(_))));
    }
    assert_eq!(payments.state(), breaker::State::Open);
    let opened_at = Instant::now();

    let tile_css = r#".tile[data-service="checkout"][data-breaker="payments-api"]"#;
    let (state, text) = wait_for_tile_state(&client, tile_css, "open", LIVE_DEADLINE).await;
    eprintln!(
        "tile showed {state:?} / {text:?} {} ms after the breaker opened",
        opened_at.elapsed().as_millis()
    );
    assert_eq!(text, "OPEN");
    let mark = client
        .execute("return window.__fusebox_no_reload;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, json!(42), "the page was reloaded");

    // Following the tile opens its detail page with its charts.
    client
        .find(Locator::Css(tile_css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        "the chart of the selected breaker",
        |client| async move {
            match client.find(Locator::Css("#chart-failure_rate svg")).await {
                Ok(svg) => svg
                    .html(false)
                    .await
                    .is_ok_and(|html| html.contains("payments-api")),
                Err(_) => false,
            }
        },
    )
    .await;

    save_screenshot(&client, "tile-open").await;

    client.close().await.unwrap();
    reporter.shutdown().await;
}

/// Saves the page as `target/screenshots/{name}.png`.
/// Clicks the first element `css` finds.
pub(crate) async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

pub(crate) async fn save_screenshot(client: &Client, name: &str) {
    let screenshot = client.screenshot().await.unwrap();
    let path = workspace_root().join(format!("target/screenshots/{name}.png"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, screenshot).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// Polls the tile until its `data-state` is `want`; returns the state and the visible state text.
pub(crate) async fn wait_for_tile_state(
    client: &Client,
    tile_css: &str,
    want: &str,
    deadline: Duration,
) -> (String, String) {
    let started = Instant::now();
    let mut last = None;
    loop {
        if let Ok(tile) = client.find(Locator::Css(tile_css)).await {
            let state = tile.attr("data-state").await.unwrap().unwrap_or_default();
            let text = match tile.find(Locator::Css(".state-text")).await {
                Ok(label) => label.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if state == want {
                return (state, text);
            }
            last = Some((state, text));
        }
        assert!(
            started.elapsed() < deadline,
            "the tile {tile_css} did not show `{want}` within {deadline:?}; last seen: {last:?}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// Polls `check` until it holds, failing after `deadline`.
pub(crate) async fn wait_until<F, Fut>(client: &Client, deadline: Duration, what: &str, check: F)
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check(client.clone()).await {
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

fn tight_config() -> Config {
    Config::builder()
        .failure_rate_threshold(0.5)
        .window(Window::Count(10))
        .minimum_calls(5)
        .wait_duration(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// What the test needs from the machine, found or explained.
pub(crate) struct BrowserSetup {
    pub(crate) chromedriver: PathBuf,
    pub(crate) chromium: PathBuf,
    pub(crate) dist: PathBuf,
}

impl BrowserSetup {
    /// A test server that serves the bundle, after `adjust` changed its options.
    pub(crate) async fn server(&self, adjust: impl FnOnce(&mut ServerOptions)) -> TestServer {
        let dist = self.dist.clone();
        TestServer::start_with(move |options| {
            options.dist_dir = dist;
            adjust(options);
        })
        .await
        .expect("the test server starts")
    }

    /// Chromedriver and a fresh browser session on it; keep the driver for the session's life.
    pub(crate) async fn browser(&self) -> (Chromedriver, Client) {
        let driver = Chromedriver::start(&self.chromedriver);
        let client = driver.connect(&self.chromium).await;
        (driver, client)
    }

    /// Everything present, or `None` after saying why the test is skipped (a panic instead when
    /// `FUSEBOX_REQUIRE_BROWSER=1`).
    pub(crate) fn find() -> Option<BrowserSetup> {
        let dist = std::env::var_os("FUSEBOX_DIST")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("frontend/dist"));
        let mut missing = Vec::new();
        if !Path::new(CHROMEDRIVER).exists() {
            missing.push(format!("{CHROMEDRIVER} (apt-get install chromium-driver)"));
        }
        if !Path::new(CHROMIUM).exists() {
            missing.push(format!("{CHROMIUM} (apt-get install chromium)"));
        }
        for file in [
            "index.html",
            "fusebox_frontend.js",
            "fusebox_frontend_bg.wasm",
        ] {
            if !dist.join(file).exists() {
                missing.push(format!(
                    "{} (cargo xtask build-ui)",
                    dist.join(file).display()
                ));
            }
        }
        if missing.is_empty() {
            return Some(BrowserSetup {
                chromedriver: CHROMEDRIVER.into(),
                chromium: CHROMIUM.into(),
                dist,
            });
        }
        let reason = format!("missing: {}", missing.join(", "));
        if std::env::var("FUSEBOX_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("FUSEBOX_REQUIRE_BROWSER=1 but the browser test cannot run; {reason}");
        }
        eprintln!(
            "skipping the browser test ({reason}); `cargo xtask test` installs and builds what it needs"
        );
        None
    }
}

/// chromedriver on a free port, in its own process group, killed with its browsers on drop.
pub(crate) struct Chromedriver {
    child: Child,
    addr: SocketAddr,
    profile: tempfile::TempDir,
}

impl Chromedriver {
    pub(crate) fn start(binary: &Path) -> Chromedriver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = Chromedriver {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            profile: tempfile::tempdir().unwrap(),
        };
        let started = Instant::now();
        while TcpStream::connect(driver.addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "chromedriver did not listen on {}",
                driver.addr
            );
            std::thread::sleep(POLL_EVERY);
        }
        driver
    }

    pub(crate) async fn connect(&self, chromium: &Path) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,900",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .chain([format!("--user-data-dir={}", self.profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object")
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://{}", self.addr))
            .await
            .expect("a WebDriver session with headless Chromium")
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // The negative pid names the whole group: chromedriver and the Chromium it started.
        // (`--` keeps `kill` from reading the negative pid as an option.)
        let group_killed = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status()
            .is_ok_and(|status| status.success());
        if !group_killed {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
