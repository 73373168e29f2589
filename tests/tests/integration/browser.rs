//! Browser tests: the dashboard in headless Chromium shows a breaker going Open, live, and
//! shows every breaker of a 500-breaker fleet.
//!
//! A real server runs in-process on an ephemeral port with a temporary SQLite file and serves the
//! built bundle. A real `breaker` with its reporter trips, and the tile must say Open (attribute
//! and text) within 2 s, without a reload. The helpers (finding the browser, chromedriver,
//! polling the page with deadlines, screenshots) are `tests::browser`; when chromedriver,
//! Chromium or the bundle is missing a test skips loudly, or fails under
//! `FUSEBOX_REQUIRE_BROWSER=1` (set by `cargo xtask test`). The figures of the dashboard under
//! load are the `browser_load` bench's (`cargo xtask bench --only browser_load`).

use std::time::{Duration, Instant};

use backend::time::now_ms;
use breaker::reporter::{Reporter, ReporterConfig};
use breaker::{CallError, Registry};
use fantoccini::Locator;
use serde_json::json;
use tests::browser::{
    BrowserSetup, PAGE_READY_DEADLINE, applied_batches, click, open_live, post_fleet,
    save_screenshot, seen_ms, transition_batch, wait_for_tile_state, wait_for_tiles, wait_until,
};
use tests::{post_batch, tight_config};

/// The dashboard must show the new state this soon after the breaker opened.
const LIVE_DEADLINE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tile_turns_open_live_without_reload() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.anonymous_server().await;
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
    click(&client, tile_css).await;
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

/// What the `browser_load` bench relies on, without its load and timings: one batch per service
/// of 10 services × 50 breakers gives 500 tiles, the page records the update batches it
/// applied, and records when each pushed transition became visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_breakers_get_their_tiles_and_the_page_records_its_updates() {
    const SERVICES: usize = 10;
    const BREAKERS_PER_SERVICE: usize = 50;
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.anonymous_server().await;
    let (_driver, client) = setup.browser().await;
    // Tiles, as the URL asks: a fleet this large would get the matrix by default.
    open_live(&client, &format!("{}/?view=tiles", server.url())).await;

    post_fleet(&server, SERVICES, BREAKERS_PER_SERVICE).await;
    wait_for_tiles(&client, SERVICES * BREAKERS_PER_SERVICE).await;
    assert!(
        !applied_batches(&client).await.is_empty(),
        "the page recorded no update batch"
    );

    let key = server.ingest_key("latency").await.unwrap();
    let batch = transition_batch("latency", "latency-1", 1, now_ms(), "latency-0");
    post_batch(&server.url(), &key, &batch).await;
    tests::wait::wait_for(
        "the page to record when latency-0 showed",
        PAGE_READY_DEADLINE,
        async || seen_ms(&client, "latency-0").await,
    )
    .await;

    client.close().await.unwrap();
}
