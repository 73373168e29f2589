//! Browser tests of the dashboard's pages in headless Chromium: the detail page (one timeline
//! lane per instance, the four charts, switching the range refetches), an admin forcing a demo
//! breaker open from it, a viewer who signs in, sees no controls, and sees a hostile name as
//! text, and readable chart text, no-data stretches before a first report and the
//! rate that tripped an Open tile. Screenshots go to `target/screenshots/`.

use std::time::Duration;

use backend::auth::Role;
use backend::time::now_ms;
use fantoccini::{Client, Locator};
use serde_json::json;
use tests::browser::{
    BrowserSetup, PAGE_READY_DEADLINE, click, count, save_screenshot, set_token, svg_text_sizes,
    text, wait_for_charts, wait_for_element, wait_for_tile_state, wait_until,
};
use tests::post_batch;

/// A demo instance follows a pushed config within its long poll; the tile then turns Open.
const CONTROL_DEADLINE: Duration = Duration::from_secs(20);
const HOSTILE: &str = "<img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detail_page_lanes_charts_ranges_and_admin_force_open() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.anonymous_server().await;
    let admin = server.user_token("ops", Role::Admin).await.unwrap();
    let demo = backend::demo::start(&server.server).await.unwrap();
    let (_driver, client) = setup.browser().await;

    client.goto(&server.url()).await.unwrap();
    set_token(&client, &admin).await;
    client
        .goto(&format!(
            "{}/breaker?service=checkout&breaker=inventory-db",
            server.url()
        ))
        .await
        .unwrap();
    wait_for_element(&client, ".who[data-role=\"admin\"]", "the admin's role").await;

    // One lane per instance (checkout runs two), and the four charts.
    wait_for_element(
        &client,
        ".timeline-wrap[data-lanes=\"2\"]",
        "a two-lane timeline",
    )
    .await;
    assert_eq!(count(&client, ".timeline .lane").await, 2);
    wait_for_charts(&client).await;
    for kind in ["failure_rate", "slow_call_rate", "volume", "latency"] {
        // A chart drawn again between finding it and reading it is read again.
        let selector = format!("#chart-{kind} svg");
        let html = tests::wait::wait_for(
            &format!("{selector} to be read"),
            CONTROL_DEADLINE,
            || async {
                let chart = client.find(Locator::Css(&selector)).await.ok()?;
                chart.html(false).await.ok()
            },
        )
        .await;
        assert!(html.contains("inventory-db"), "{kind}: {html}");
    }
    let span = |client: Client| async move {
        let charts = client.find(Locator::Css(".charts")).await.unwrap();
        let read = |name: &'static str| {
            let charts = charts.clone();
            async move {
                charts
                    .attr(name)
                    .await
                    .unwrap()
                    .and_then(|value| value.parse::<i64>().ok())
                    .unwrap_or(0)
            }
        };
        read("data-to").await - read("data-from").await
    };
    let before = span(client.clone()).await;
    assert!(
        before <= 16 * 60_000,
        "the default range is 15 minutes, got {before} ms"
    );

    // Switching the range fetches the new range, and the URL says so.
    client
        .find(Locator::Css("button[data-range=\"1h\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        "the 1 h range's series",
        |client| async move {
            let span = span(client).await;
            (59 * 60_000..=61 * 60_000).contains(&span)
        },
    )
    .await;
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains("range=1h")
    );
    save_screenshot(&client, "detail").await;

    // An admin forces the breaker open, after confirming; the instances follow the new config.
    client
        .find(Locator::Css("button[data-mode=\"forced_open\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_element(&client, ".confirm", "the confirmation").await;
    client
        .find(Locator::Css(".confirm [data-confirm=\"yes\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_element(
        &client,
        "[data-outcome=\"ok\"]",
        "the control to be accepted",
    )
    .await;
    client
        .find(Locator::Css("nav.nav a[href=\"/\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let tile = r#".tile[data-service="checkout"][data-breaker="inventory-db"]"#;
    let (_, text) = wait_for_tile_state(&client, tile, "open", CONTROL_DEADLINE).await;
    assert!(text.contains("OPEN"), "{text}");
    save_screenshot(&client, "forced-open").await;

    client.close().await.unwrap();
    demo.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_signs_in_sees_no_controls_and_hostile_names_are_text() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.server(|_| {}).await;
    let viewer = server.user_token("watcher", Role::Viewer).await.unwrap();
    let key = server.ingest_key(HOSTILE).await.unwrap();
    let now_ms = now_ms();
    let batch = json!({
        "service": HOSTILE, "instance": HOSTILE, "seq": 1, "sent_at_ms": now_ms,
        "aggregates": [{
            "breaker": HOSTILE, "start_ms": now_ms - 1000, "interval_ms": 1000,
            "counts": {"success": 3, "failure": 7}, "state": "open",
            "failure_rate": 0.7, "failure_rate_threshold": 0.5, "config_version": 1
        }],
        "transitions": [{
            "breaker": HOSTILE, "at_ms": now_ms - 500, "from": "closed", "to": "open",
            "trigger": {"kind": "failure_rate", "value": 0.7, "threshold": 0.5}, "config_version": 1
        }]
    });
    post_batch(&server.url(), &key, &batch).await;

    let (_driver, client) = setup.browser().await;
    client.goto(&server.url()).await.unwrap();

    // No anonymous reading here: the page asks for a token.
    wait_for_element(
        &client,
        "form.signin input[name=\"token\"]",
        "the sign-in form",
    )
    .await;
    save_screenshot(&client, "sign-in").await;
    client
        .find(Locator::Css("form.signin input[name=\"token\"]"))
        .await
        .unwrap()
        .send_keys(&viewer)
        .await
        .unwrap();
    client
        .find(Locator::Css("form.signin button[type=\"submit\"]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_element(&client, ".who[data-role=\"viewer\"]", "the viewer's role").await;

    // The hostile name is a tile's text, not an element.
    let tile = format!(".tile[data-service=\"{HOSTILE}\"][data-breaker=\"{HOSTILE}\"]");
    let (_, _) = wait_for_tile_state(&client, &tile, "open", PAGE_READY_DEADLINE).await;
    let name = client
        .find(Locator::Css(&format!("{tile} .tile-name")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(name, HOSTILE);
    assert_eq!(
        count(&client, "main img").await,
        0,
        "a name became an element"
    );

    // Its detail page: charts with the name escaped, and no controls for a viewer.
    client
        .find(Locator::Css(&tile))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        "the charts",
        |client| async move { count(&client, ".charts .chart svg").await == 4 },
    )
    .await;
    let title = client
        .find(Locator::Css(".detail-head h2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(title, format!("{HOSTILE} / {HOSTILE}"));
    wait_for_element(&client, ".config", "the config panel").await;
    assert_eq!(
        count(&client, "[data-controls]").await,
        0,
        "a viewer sees controls"
    );
    assert_eq!(count(&client, "button[data-mode]").await, 0);
    // Auto mode: a viewer sees whether it is on, and no switch.
    wait_for_element(
        &client,
        ".auto-state[data-enabled=\"false\"]",
        "auto mode's state",
    )
    .await;
    assert_eq!(count(&client, "button[data-auto]").await, 0);
    assert_eq!(
        count(&client, "main img").await,
        0,
        "a name became an element"
    );
    assert!(
        client.get_alert_text().await.is_err(),
        "a hostile name ran a script"
    );
    save_screenshot(&client, "viewer-hostile-name").await;

    // Signing out forgets the token: the page asks for one again.
    click(&client, "button.sign-out").await;
    wait_for_element(
        &client,
        "form.signin input[name=\"token\"]",
        "the sign-in form after signing out",
    )
    .await;

    client.close().await.unwrap();
}

/// The smallest chart text the page may show, in CSS pixels.
const MIN_TEXT_PX: f64 = 12.0;

/// At 1400 × 900: every text in the breaker page's charts is shown at least 12 px
/// high; a lane has no data before its instance's first report; an Open tile without calls
/// shows the failure rate that tripped it, and when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn charts_are_readable_lanes_show_no_data_and_open_tiles_what_tripped() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.anonymous_server().await;
    let key = server.ingest_key("svc").await.unwrap();
    let now_ms = now_ms();
    let minute = 60_000;
    // `db` on `a` reports every 30 s for the last 10 minutes; `b` joins 4 minutes ago.
    let intervals = |breaker: &str, since_min: i64, state: &str| -> Vec<serde_json::Value> {
        (0..since_min * 2)
            .map(|idx| {
                json!({
                    "breaker": breaker, "start_ms": now_ms - since_min * minute + idx * 30_000,
                    "interval_ms": 1000, "counts": {"success": 9, "failure": 1},
                    "state": state, "failure_rate_threshold": 0.5, "config_version": 1
                })
            })
            .collect()
    };
    post_batch(
        &server.url(),
        &key,
        &json!({"service": "svc", "instance": "a", "seq": 1, "sent_at_ms": now_ms,
                "aggregates": intervals("db", 10, "closed")}),
    )
    .await;
    // `pay` trips on `b` a minute ago; since then it only refuses calls (none is judged).
    let mut b_aggregates = intervals("db", 4, "closed");
    b_aggregates.push(json!({
        "breaker": "pay", "start_ms": now_ms - 3 * minute, "interval_ms": 1000,
        "counts": {"success": 3, "failure": 7}, "state": "closed",
        "failure_rate_threshold": 0.5, "config_version": 1
    }));
    b_aggregates.push(json!({
        "breaker": "pay", "start_ms": now_ms - 1000, "interval_ms": 1000,
        "counts": {"rejected": 12}, "state": "open",
        "failure_rate_threshold": 0.5, "config_version": 1
    }));
    post_batch(
        &server.url(),
        &key,
        &json!({"service": "svc", "instance": "b", "seq": 1, "sent_at_ms": now_ms,
        "aggregates": b_aggregates,
        "transitions": [{
            "breaker": "pay", "at_ms": now_ms - minute, "from": "closed", "to": "open",
            "trigger": {"kind": "failure_rate", "value": 0.7, "threshold": 0.5},
            "config_version": 1
        }]}),
    )
    .await;

    let (_driver, client) = setup.browser().await;
    client
        .goto(&format!("{}/breaker?service=svc&breaker=db", server.url()))
        .await
        .unwrap();
    wait_for_element(
        &client,
        ".timeline-wrap[data-lanes=\"2\"]",
        "a two-lane timeline",
    )
    .await;
    wait_for_charts(&client).await;

    // Every text of the timeline and the charts, at the size it is shown.
    let mut sizes = svg_text_sizes(&client, ".timeline").await;
    sizes.extend(svg_text_sizes(&client, ".charts").await);
    let mut px: Vec<f64> = sizes.iter().map(|(_, px)| *px).collect();
    px.sort_by(f64::total_cmp);
    eprintln!(
        "chart texts at 1400 x 900: {} texts, smallest {:.2} px, median {:.2} px",
        px.len(),
        px.first().copied().unwrap_or(0.0),
        px.get(px.len() / 2).copied().unwrap_or(0.0)
    );
    save_screenshot(&client, "readable-breaker-page").await;
    assert!(px.len() > 40, "too few chart texts: {sizes:?}");
    let small: Vec<&(String, f64)> = sizes
        .iter()
        .filter(|(_, px)| *px < MIN_TEXT_PX - 0.01)
        .collect();
    assert!(small.is_empty(), "texts under {MIN_TEXT_PX} px: {small:?}");

    // Each lane starts with no data up to its instance's first report: `b`'s gap is longer.
    let gap = |instance: &'static str| {
        let client = client.clone();
        async move {
            let first = client
                .find(Locator::Css(&format!(
                    ".lane[data-instance=\"{instance}\"] .segment"
                )))
                .await
                .unwrap();
            let state = first.attr("data-state").await.unwrap().unwrap_or_default();
            let style = first.attr("style").await.unwrap().unwrap_or_default();
            let width: f64 = style
                .split("width:")
                .nth(1)
                .and_then(|rest| rest.split('%').next())
                .and_then(|width| width.parse().ok())
                .unwrap_or(0.0);
            (state, width)
        }
    };
    let (a_state, a_width) = gap("a").await;
    let (b_state, b_width) = gap("b").await;
    assert_eq!((a_state.as_str(), b_state.as_str()), ("no_data", "no_data"));
    // The default range is 15 minutes: about 5 of them before `a`, 11 before `b`.
    assert!((25.0..40.0).contains(&a_width), "a's gap is {a_width} %");
    assert!((65.0..80.0).contains(&b_width), "b's gap is {b_width} %");
    let legend = client
        .find(Locator::Css(".timeline svg"))
        .await
        .unwrap()
        .html(false)
        .await
        .unwrap();
    assert!(legend.contains("no data"), "the legend names it");

    // The Open tile shows the failure rate that tripped it, and when.
    client.goto(&server.url()).await.unwrap();
    let tile = r#".tile[data-service="svc"][data-breaker="pay"]"#;
    wait_for_tile_state(&client, tile, "open", PAGE_READY_DEADLINE).await;
    let rate = format!("{tile} [data-metric=\"failure_rate\"][data-at-trip=\"true\"]");
    wait_for_element(&client, &rate, "the tripping rate on the tile").await;
    assert_eq!(text(&client, &rate).await, "70 %");
    let trigger = text(&client, &format!("{tile} .trigger")).await;
    assert!(
        trigger.starts_with("tripped on failure rate: 70 % ≥ 50 % at ")
            && trigger.ends_with(" UTC"),
        "the tile says {trigger:?}"
    );
    save_screenshot(&client, "open-tile-at-trip").await;

    client.close().await.unwrap();
}
