//! The dashboard in headless Chromium, driven through chromedriver (WebDriver) with fantoccini:
//! what the browser tests and the browser load bench share.
//!
//! [`BrowserSetup`] finds chromedriver, Chromium and the built bundle (`FUSEBOX_DIST`, else
//! `frontend/dist`, built by `cargo xtask build-ui`). A test that cannot find them skips loudly
//! ([`BrowserSetup::for_test`], through [`crate::skip`]), or fails when
//! `FUSEBOX_REQUIRE_BROWSER=1` (set by `cargo xtask test`). [`Chromedriver`] runs in its own
//! process group and is killed with its browsers on drop, so a failing test leaves no orphaned
//! Chromium. Every wait on the page has a deadline ([`wait_until`] and the helpers built on it).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backend::server::ServerOptions;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::TestServer;
use crate::skip;

/// Held by every browser test while its browser runs: the machines that run these have few
/// cores, so one browser runs at a time.
pub static BROWSER_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Loading the page, mounting the app and connecting its stream.
pub const PAGE_READY_DEADLINE: Duration = Duration::from_secs(20);
/// How often the page is polled.
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// The variable that turns a missing browser into a failure.
const REQUIRE_VAR: &str = "FUSEBOX_REQUIRE_BROWSER";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// chromedriver listens this soon after it starts.
const DRIVER_DEADLINE: Duration = Duration::from_secs(10);

/// What a browser test needs from the machine.
pub struct BrowserSetup {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
    pub dist: PathBuf,
}

/// chromedriver on a free port, in its own process group, killed with its browsers on drop.
pub struct Chromedriver {
    child: Child,
    addr: SocketAddr,
    profile: tempfile::TempDir,
}

// === impl BrowserSetup ===

impl BrowserSetup {
    /// Everything present, or what is missing and how to get it.
    pub fn locate() -> Result<BrowserSetup, String> {
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
        if !missing.is_empty() {
            return Err(format!("missing: {}", missing.join(", ")));
        }
        Ok(BrowserSetup {
            chromedriver: CHROMEDRIVER.into(),
            chromium: CHROMIUM.into(),
            dist,
        })
    }

    /// For a test: everything present, with the browser to itself (tests take
    /// [`BROWSER_LOCK`] in turn); or `None` after [`skip::skip`] said why (a panic instead when
    /// `FUSEBOX_REQUIRE_BROWSER=1`).
    pub async fn for_test() -> Option<(BrowserSetup, tokio::sync::MutexGuard<'static, ()>)> {
        match BrowserSetup::locate() {
            Ok(setup) => Some((setup, BROWSER_LOCK.lock().await)),
            Err(reason) => {
                skip::skip(
                    &skip::current_test(),
                    REQUIRE_VAR,
                    &format!("{reason}; `cargo xtask test` installs and builds what it needs"),
                );
                None
            }
        }
    }

    /// A test server that serves the bundle, after `adjust` changed its options.
    pub async fn server(&self, adjust: impl FnOnce(&mut ServerOptions)) -> TestServer {
        let dist = self.dist.clone();
        TestServer::start_with(move |options| {
            options.dist_dir = dist;
            adjust(options);
        })
        .await
        .expect("the test server starts")
    }

    /// A test server that serves the bundle and lets anyone read, as `cargo xtask demo` runs.
    pub async fn anonymous_server(&self) -> TestServer {
        self.server(|options| options.anonymous_viewer = true).await
    }

    /// Chromedriver and a fresh browser session on it; keep the driver for the session's life.
    pub async fn browser(&self) -> (Chromedriver, Client) {
        let driver = Chromedriver::start(&self.chromedriver);
        let client = driver.connect(&self.chromium).await;
        (driver, client)
    }
}

// === impl Chromedriver ===

impl Chromedriver {
    pub fn start(binary: &Path) -> Chromedriver {
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
                started.elapsed() < DRIVER_DEADLINE,
                "chromedriver did not listen on {} within {DRIVER_DEADLINE:?}",
                driver.addr
            );
            std::thread::sleep(POLL_EVERY);
        }
        driver
    }

    pub async fn connect(&self, chromium: &Path) -> Client {
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
        let Value::Object(capabilities) = capabilities else {
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

// === the page ===

/// Polls `check` until it holds, failing after `deadline`.
pub async fn wait_until<F, Fut>(client: &Client, deadline: Duration, what: &str, check: F)
where
    F: Fn(Client) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::wait::wait_for_every(what, deadline, POLL_EVERY, async || {
        check(client.clone()).await.then_some(())
    })
    .await;
}

/// Polls until an element matches `css`, failing after [`PAGE_READY_DEADLINE`].
pub async fn wait_for_element(client: &Client, css: &str, what: &str) {
    let css = css.to_string();
    wait_until(client, PAGE_READY_DEADLINE, what, move |client| {
        let css = css.clone();
        async move { client.find(Locator::Css(&css)).await.is_ok() }
    })
    .await;
}

/// Polls until the page shows exactly `n` tiles, failing after [`PAGE_READY_DEADLINE`].
pub async fn wait_for_tiles(client: &Client, n: usize) {
    wait_until(
        client,
        PAGE_READY_DEADLINE,
        &format!("{n} tiles"),
        |client| async move { count(&client, ".tile").await == n },
    )
    .await;
}

/// Polls the tile until its `data-state` is `want`; returns the state and the visible state text.
pub async fn wait_for_tile_state(
    client: &Client,
    tile_css: &str,
    want: &str,
    deadline: Duration,
) -> (String, String) {
    let mut last = None;
    let found = crate::wait::poll_within(deadline, POLL_EVERY, async || {
        let tile = client.find(Locator::Css(tile_css)).await.ok()?;
        let state = tile.attr("data-state").await.unwrap().unwrap_or_default();
        let text = match tile.find(Locator::Css(".state-text")).await {
            Ok(label) => label.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if state == want {
            return Some((state, text));
        }
        last = Some((state, text));
        None
    })
    .await;
    found.unwrap_or_else(|| {
        panic!("the tile {tile_css} did not show `{want}` within {deadline:?}; last seen: {last:?}")
    })
}

/// How many elements match `css`.
pub async fn count(client: &Client, css: &str) -> usize {
    client
        .find_all(Locator::Css(css))
        .await
        .map(|found| found.len())
        .unwrap_or(0)
}

/// Clicks the first element `css` finds.
pub async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The text of the first element `css` finds.
pub async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Signs the page in with `token`, as the sign-in form would (the session cookie).
pub async fn set_token(client: &Client, token: &str) {
    client
        .execute(
            &format!("document.cookie = 'fusebox_token={token}; path=/; SameSite=Strict';"),
            vec![],
        )
        .await
        .unwrap();
}

/// Saves the page as `target/screenshots/{name}.png`.
pub async fn save_screenshot(client: &Client, name: &str) {
    let screenshot = client.screenshot().await.unwrap();
    let path = workspace_root().join(format!("target/screenshots/{name}.png"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, screenshot).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// One instance's batch with `n_breakers` breakers of `service` (`dep-000`, `dep-001`, …),
/// each with one second of calls ending at `now_ms`.
pub fn fleet_batch(
    service: &str,
    instance: &str,
    seq: u64,
    now_ms: i64,
    n_breakers: usize,
) -> Value {
    let aggregates: Vec<Value> = (0..n_breakers)
        .map(|breaker_idx| {
            let failures = (seq as usize + breaker_idx) % 7;
            json!({
                "breaker": format!("dep-{breaker_idx:03}"),
                "start_ms": now_ms - 1000, "interval_ms": 1000,
                "counts": {"success": 40 + breaker_idx, "failure": failures, "slow": 1},
                "latency": {"counts": [0, 0, 4, 20, 10, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0]},
                "state": "closed", "failure_rate": failures as f64 / 50.0,
                "failure_rate_threshold": 0.5, "config_version": 1
            })
        })
        .collect();
    json!({
        "service": service, "instance": instance,
        "seq": seq, "sent_at_ms": now_ms, "aggregates": aggregates,
    })
}

/// A batch with one Closed → Open transition of `breaker` at `now_ms`.
pub fn transition_batch(
    service: &str,
    instance: &str,
    seq: u64,
    now_ms: i64,
    breaker: &str,
) -> Value {
    json!({
        "service": service, "instance": instance, "seq": seq, "sent_at_ms": now_ms,
        "transitions": [{
            "breaker": breaker, "at_ms": now_ms, "from": "closed", "to": "open",
            "trigger": {"kind": "failure_rate", "value": 0.9, "threshold": 0.5}, "config_version": 1
        }]
    })
}

/// When the page showed `breaker`'s latest transition (`Date.now()` in the page), if it has.
pub async fn seen_ms(client: &Client, breaker: &str) -> Option<f64> {
    recorded_at(client, "__fusebox_seen", breaker).await
}

/// When the page's stream handler took `breaker`'s latest transition
/// (`window.__fusebox_arrived`, `Date.now()`), if it did.
pub async fn arrived_ms(client: &Client, breaker: &str) -> Option<f64> {
    recorded_at(client, "__fusebox_arrived", breaker).await
}

async fn recorded_at(client: &Client, map: &str, breaker: &str) -> Option<f64> {
    let script = format!(
        "return (window[{}] || {{}})[{}] || null;",
        json!(map),
        json!(breaker)
    );
    client.execute(&script, vec![]).await.unwrap().as_f64()
}

/// The update batches the page applied, as `[ms, events]` pairs from `window.__fusebox_batches`.
pub async fn applied_batches(client: &Client) -> Vec<(f64, f64)> {
    recorded_batches(client, "__fusebox_batches").await
}

/// The `[ms, events]` pairs the page recorded in `window[list]`: `__fusebox_batches` for its
/// frames of summaries, `__fusebox_transition_batches` for its transitions.
pub async fn recorded_batches(client: &Client, list: &str) -> Vec<(f64, f64)> {
    let batches = client
        .execute(&format!("return window[{}] || [];", json!(list)), vec![])
        .await
        .unwrap();
    batches
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| (entry[0].as_f64().unwrap(), entry[1].as_f64().unwrap()))
        .collect()
}

/// Every SVG `text` under `css`, with the size it is shown at in CSS pixels: its computed
/// `font-size` times the scale from the SVG's units to the screen (an SVG scaled to its
/// container shrinks its text with it), as `(text, px)`.
pub async fn svg_text_sizes(client: &Client, css: &str) -> Vec<(String, f64)> {
    let script = format!(
        "return Array.from(document.querySelectorAll({} + ' svg text')).map(text => {{
             const ctm = text.getScreenCTM();
             const scale = ctm ? Math.hypot(ctm.a, ctm.b) : 1;
             return [text.textContent.trim(), parseFloat(getComputedStyle(text).fontSize) * scale];
         }});",
        json!(css)
    );
    let sizes = client.execute(&script, vec![]).await.unwrap();
    sizes
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap_or_default().to_string(),
                pair[1].as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Accepts recommendation `id` on the Recommendations page (the button, then the
/// confirmation) and waits for its card to say accepted; returns that card's selector.
pub async fn accept_recommendation(client: &Client, id: i64) -> String {
    let card = format!(".rec-card[data-id=\"{id}\"]");
    click(client, &format!("{card} button.accept")).await;
    click(client, &format!("{card} button[data-confirm=\"yes\"]")).await;
    let accepted = format!(".rec-card[data-id=\"{id}\"][data-status=\"accepted\"]");
    wait_for_element(client, &accepted, "the accepted recommendation").await;
    accepted
}

/// Waits for recommendation `id`'s card on the Recommendations page, opens its evidence and
/// waits for the replay chart; returns the card's selector.
pub async fn open_recommendation(client: &Client, id: i64) -> String {
    let card = format!(".rec-card[data-id=\"{id}\"]");
    wait_for_element(client, &card, "the recommendation in the list").await;
    click(client, &format!("{card} .rec-detail summary")).await;
    wait_for_element(
        client,
        &format!("{card} .rec-replay svg"),
        "the replay chart",
    )
    .await;
    card
}

/// Waits until the breaker page shows its four series charts.
pub async fn wait_for_charts(client: &Client) {
    wait_until(
        client,
        PAGE_READY_DEADLINE,
        "four charts",
        |client| async move { count(&client, ".charts .chart svg").await == 4 },
    )
    .await;
}

/// Opens `url` and waits until the page says its live stream is connected.
pub async fn open_live(client: &Client, url: &str) {
    client.goto(url).await.expect("the page opens");
    wait_for_element(client, ".pill.live", "the live stream").await;
}

/// Reports a fleet of `n_services` services (`svc-00`, …) with `breakers_per_service`
/// breakers each, one instance per service (`svc-00-0`, …), one batch each.
pub async fn post_fleet(server: &TestServer, n_services: usize, breakers_per_service: usize) {
    for service_idx in 0..n_services {
        let service = format!("svc-{service_idx:02}");
        let key = server.ingest_key(&service).await.expect("an ingest key");
        let instance = format!("{service}-0");
        let now_ms = backend::time::now_ms();
        let batch = fleet_batch(&service, &instance, 1, now_ms, breakers_per_service);
        crate::post_batch(&server.url(), &key, &batch).await;
    }
}
