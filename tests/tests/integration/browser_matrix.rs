//! Browser test of the overview's matrix for a large fleet: 2,000 breakers (20 services × 100)
//! get the matrix without asking, one cell each, a pushed Closed → Open transition turns its
//! cell Open live (colour hook and text alternative), a cell leads to its breaker's page, and
//! the view switch shows tiles instead, keeping the choice in the URL beside the search. And
//! the tiles' layout on a 1,400 px screen: small services side by side, a large one across;
//! and a re-sort that places tiles and services anew without moving them in the DOM.

use backend::time::now_ms;
use fantoccini::Locator;
use tests::browser::{
    BrowserSetup, PAGE_READY_DEADLINE, click, count, open_live, post_fleet, save_screenshot,
    transition_batch, wait_for_tile_state, wait_for_tiles, wait_until,
};
use tests::post_batch;

const SERVICES: usize = 20;
const BREAKERS_PER_SERVICE: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_breakers_get_the_matrix_a_cell_turns_open_live_and_leads_to_its_page() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.anonymous_server().await;
    let (_driver, client) = setup.browser().await;
    open_live(&client, &server.url()).await;

    post_fleet(&server, SERVICES, BREAKERS_PER_SERVICE).await;
    let n_cells = SERVICES * BREAKERS_PER_SERVICE;
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        &format!("{n_cells} matrix cells"),
        |client| async move { count(&client, ".matrix .cell").await == n_cells },
    )
    .await;
    // The URL named no view: a fleet this large gets the matrix, and no tile.
    assert_eq!(count(&client, ".tile").await, 0);
    assert_eq!(count(&client, ".matrix-row").await, SERVICES);
    let pressed = client
        .find(Locator::Css(r#".view-switch button[data-view="matrix"]"#))
        .await
        .unwrap()
        .attr("aria-pressed")
        .await
        .unwrap();
    assert_eq!(pressed.as_deref(), Some("true"));

    let cell_css = r#".cell[data-service="svc-07"][data-breaker="dep-042"]"#;
    let label = |client: fantoccini::Client| async move {
        let cell = client.find(Locator::Css(cell_css)).await.unwrap();
        let state = cell.attr("data-state").await.unwrap().unwrap_or_default();
        let label = cell.attr("aria-label").await.unwrap().unwrap_or_default();
        let title = cell.attr("title").await.unwrap().unwrap_or_default();
        (state, label, title)
    };
    let (state, text, title) = label(client.clone()).await;
    assert_eq!(state, "closed");
    assert_eq!(text, "svc-07/dep-042: Closed");
    assert_eq!(title, text);

    let key = server.ingest_key("svc-07").await.unwrap();
    let batch = transition_batch("svc-07", "svc-07-0", 2, now_ms(), "dep-042");
    post_batch(&server.url(), &key, &batch).await;
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        "the cell of svc-07/dep-042 to turn Open",
        |client| async move {
            client
                .find(Locator::Css(&format!(r#"{cell_css}[data-state="open"]"#)))
                .await
                .is_ok()
        },
    )
    .await;
    let (_, text, title) = label(client.clone()).await;
    assert_eq!(text, "svc-07/dep-042: Open");
    assert_eq!(title, text);
    assert_eq!(count(&client, r#".cell[data-state="open"]"#).await, 1);
    assert_eq!(count(&client, ".matrix .cell").await, n_cells);
    save_screenshot(&client, "matrix-2000").await;

    // A cell is a link to its breaker's page, as a tile is.
    click(&client, cell_css).await;
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        "the breaker page of svc-07/dep-042",
        |client| async move {
            match client.find(Locator::Css(".detail-head h2")).await {
                Ok(heading) => heading
                    .text()
                    .await
                    .is_ok_and(|text| text == "svc-07 / dep-042"),
                Err(_) => false,
            }
        },
    )
    .await;

    // Searching keeps the matrix (the fleet is large); the switch then asks for tiles.
    client
        .goto(&format!("{}/?q=svc-07", server.url()))
        .await
        .unwrap();
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        "the matrix row of svc-07 alone",
        |client| async move {
            count(&client, ".matrix .cell").await == BREAKERS_PER_SERVICE
                && count(&client, ".matrix-row").await == 1
        },
    )
    .await;
    click(&client, r#".view-switch button[data-view="tiles"]"#).await;
    wait_for_tiles(&client, BREAKERS_PER_SERVICE).await;
    assert_eq!(count(&client, ".matrix .cell").await, 0);
    let url = client.current_url().await.unwrap();
    let query = url.query().unwrap_or_default();
    assert!(
        query.contains("view=tiles") && query.contains("q=svc-07"),
        "the URL keeps the view and the search: {url}"
    );

    client.close().await.unwrap();
}

/// Where each service's section lies in the page: `(service, left, top, width)` in CSS px.
async fn section_boxes(client: &fantoccini::Client) -> Vec<(String, f64, f64, f64)> {
    let found = client
        .execute(
            "return [...document.querySelectorAll('.board .service')].map(s => { \
               const r = s.getBoundingClientRect(); \
               return [s.dataset.service, r.left, r.top, r.width]; });",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

/// The board's width in CSS px.
async fn measure_board(client: &fantoccini::Client) -> f64 {
    let found = client
        .execute(
            "return document.querySelector('.board').getBoundingClientRect().width;",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_services_sit_side_by_side_and_a_large_one_takes_the_width() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.anonymous_server().await;
    let (_driver, client) = setup.browser().await;
    open_live(&client, &format!("{}/?view=tiles", server.url())).await;

    // Three services of two breakers each, on a 1,400 px wide window.
    post_fleet(&server, 3, 2).await;
    wait_for_tiles(&client, 6).await;
    let boxes = section_boxes(&client).await;
    assert_eq!(boxes.len(), 3, "{boxes:?}");
    let board_width = measure_board(&client).await;
    // Not one column of services: the first two share a row, side by side.
    let (first, second) = (&boxes[0], &boxes[1]);
    assert_eq!(
        first.2, second.2,
        "the first two services share a row: {boxes:?}"
    );
    assert!(second.1 >= first.1 + first.3, "side by side: {boxes:?}");
    assert!(
        boxes.iter().all(|b| b.3 < board_width / 2.0),
        "each small service is as wide as its two tiles, not the page ({board_width} px): {boxes:?}"
    );
    save_screenshot(&client, "small-services").await;

    // A service with many breakers takes the whole width, four tiles or more to a row.
    let key = server.ingest_key("wide").await.unwrap();
    let batch = tests::browser::fleet_batch("wide", "wide-0", 1, now_ms(), 12);
    post_batch(&server.url(), &key, &batch).await;
    wait_for_tiles(&client, 18).await;
    let boxes = section_boxes(&client).await;
    // (Measured again: the taller page has a scroll bar now.)
    let board_width = measure_board(&client).await;
    let wide = boxes.iter().find(|b| b.0 == "wide").unwrap();
    assert!(
        (wide.3 - board_width).abs() <= 1.0,
        "the large service spans the board ({board_width} px): {boxes:?}"
    );
    let tops: Vec<f64> = serde_json::from_value(
        client
            .execute(
                "return [...document.querySelectorAll('.service[data-service=\"wide\"] .tile')] \
                   .map(t => t.getBoundingClientRect().top);",
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap();
    let first_row = tops.iter().filter(|&&top| top == tops[0]).count();
    assert!(
        first_row >= 4,
        "{first_row} tiles in the first row: {tops:?}"
    );
}

/// The `data-{attribute}` of the elements matching `css`, in the order shown (top to bottom,
/// then left to right) and in the DOM's order.
async fn shown_and_dom_order(
    client: &fantoccini::Client,
    css: &str,
    attribute: &str,
) -> (Vec<String>, Vec<String>) {
    let found = client
        .execute(
            "const [css, attribute] = arguments; \
             const all = [...document.querySelectorAll(css)]; \
             const dom = all.map(e => e.dataset[attribute]); \
             const shown = all.map(e => [e.getBoundingClientRect(), e.dataset[attribute]]) \
               .sort((a, b) => (a[0].top - b[0].top) || (a[0].left - b[0].left)) \
               .map(([_, name]) => name); \
             return [shown, dom];",
            vec![serde_json::json!(css), serde_json::json!(attribute)],
        )
        .await
        .unwrap();
    serde_json::from_value(found).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_that_opens_is_shown_first_without_moving_an_element() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.anonymous_server().await;
    let (_driver, client) = setup.browser().await;
    open_live(&client, &format!("{}/?view=tiles", server.url())).await;
    post_fleet(&server, 3, 3).await;
    wait_for_tiles(&client, 9).await;
    let names = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    let services = names(&["svc-00", "svc-01", "svc-02"]);
    assert_eq!(
        shown_and_dom_order(&client, ".board .service", "service").await,
        (services.clone(), services.clone())
    );
    // Every tile marked, to tell it was kept rather than made anew, and every element's CSS
    // order noted.
    client
        .execute(
            "document.querySelectorAll('.tile').forEach(t => t.__kept = true); \
             document.querySelectorAll('.tile, .service').forEach(e => e.__order = e.style.order);",
            vec![],
        )
        .await
        .unwrap();

    // The last breaker of the last service opens: the sort by state shows it first, and its
    // service first.
    let key = server.ingest_key("svc-02").await.unwrap();
    let batch = transition_batch("svc-02", "svc-02-0", 2, now_ms(), "dep-002");
    post_batch(&server.url(), &key, &batch).await;
    let tile = r#".tile[data-service="svc-02"][data-breaker="dep-002"]"#;
    wait_for_tile_state(&client, tile, "open", PAGE_READY_DEADLINE).await;
    let (shown, dom) = shown_and_dom_order(&client, ".board .service", "service").await;
    assert_eq!(shown, names(&["svc-02", "svc-00", "svc-01"]));
    assert_eq!(
        dom, services,
        "the sections stay where they were in the DOM"
    );
    let (shown, dom) = shown_and_dom_order(
        &client,
        r#".service[data-service="svc-02"] .tile"#,
        "breaker",
    )
    .await;
    assert_eq!(shown, names(&["dep-002", "dep-000", "dep-001"]));
    assert_eq!(dom, names(&["dep-000", "dep-001", "dep-002"]));
    let kept = client
        .execute(
            "return [...document.querySelectorAll('.tile')].every(t => t.__kept);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, serde_json::json!(true), "every tile was kept");
    // Only the elements that moved among the others got a new CSS order: restyled, each is
    // painted again.
    let restyled = client
        .execute(
            "return [...document.querySelectorAll('.tile, .service')] \
               .filter(e => e.style.order !== e.__order) \
               .map(e => (e.dataset.breaker || '') + '@' + e.dataset.service);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(restyled, serde_json::json!(["@svc-02", "dep-002@svc-02"]));
    // Focus and reading follow the order shown.
    let flows = client
        .execute(
            "return ['.services', '.service .tiles'].map(css => \
               getComputedStyle(document.querySelector(css)).readingFlow);",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(flows, serde_json::json!(["flex-flow", "grid-order"]));
    save_screenshot(&client, "opened-first").await;
    client.close().await.unwrap();
}
