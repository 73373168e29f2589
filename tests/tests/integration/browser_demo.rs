//! Browser test of a newcomer's walk through the demo: open the admin link `fusebox demo`
//! prints, see the admin controls (the code gone from the address bar), find the demo's
//! recommendation for its wrong breaker with its evidence and replay chart, accept it, and see
//! both of the breaker's instances running the new version on its page. The link works once: opened again, the page says it did not sign in.

use std::time::Duration;

use fantoccini::Locator;
use tests::browser::{
    BrowserSetup, accept_recommendation, click, count, open_recommendation, save_screenshot, text,
    wait_for_element, wait_until,
};

/// A demo instance follows a pushed config within its long poll.
const CONFIG_DEADLINE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_signs_in_with_the_demo_link_and_accepts_the_recommendation() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    // As `cargo xtask demo` runs it: anyone may read.
    let server = setup.anonymous_server().await;
    let demo = backend::demo::start(&server.server).await.unwrap();
    let (service, breaker) = backend::demo::WRONG_BREAKER;
    let rec = tests::demo_recommendation(&server.url(), None).await;

    let (_driver, client) = setup.browser().await;
    client.goto(&demo.admin_link).await.unwrap();
    wait_for_element(&client, ".who[data-role=\"admin\"]", "the admin's role").await;
    let url = client.current_url().await.unwrap();
    assert!(
        url.fragment().is_none() && !url.as_str().contains("signin"),
        "the code left the address bar: {url}"
    );
    assert!(
        text(&client, ".who")
            .await
            .starts_with(backend::demo::ADMIN_NAME),
        "signed in as the demo's admin"
    );
    click(&client, "nav a[href=\"/recommendations\"]").await;
    let card = open_recommendation(&client, rec.id).await;
    assert_eq!(
        text(&client, &format!("{card} .rec-breaker")).await,
        format!("{service} / {breaker}")
    );
    assert!(
        client
            .find(Locator::Css(&format!("{card} .rec-diff tr.differs")))
            .await
            .is_ok(),
        "the suggestion differs from the current config"
    );
    save_screenshot(&client, "demo-recommendation").await;
    let accepted = accept_recommendation(&client, rec.id).await;
    let decision = text(&client, &format!("{accepted} .rec-decision")).await;
    assert!(
        decision.starts_with(&format!("accepted by {}", backend::demo::ADMIN_NAME)),
        "the page says {decision:?}"
    );

    // The new version reaches both of the breaker's instances; the breaker's page says so.
    let config_url = format!(
        "{}/api/v1/breakers/{service}/{breaker}/config",
        server.url()
    );
    let view: protocol::ConfigView = reqwest::get(&config_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let version = view.current.expect("a current config").config.version;
    client
        .goto(&format!(
            "{}/breaker?service={service}&breaker={breaker}",
            server.url()
        ))
        .await
        .unwrap();
    let running = format!("table.sync tr[data-in-sync=\"true\"][data-running=\"{version}\"]");
    wait_until(
        &client,
        CONFIG_DEADLINE,
        &format!("both instances running v{version}"),
        |client| {
            let running = running.clone();
            async move {
                if count(&client, &running).await == 2 {
                    return true;
                }
                // The page shows sync as fetched; look again.
                client.refresh().await.unwrap();
                false
            }
        },
    )
    .await;
    save_screenshot(&client, "demo-accepted-in-sync").await;

    // The link was for one use.
    client.goto(&demo.admin_link).await.unwrap();
    wait_for_element(&client, ".banner.link-problem", "the used link's problem").await;
    demo.shutdown().await;
}
