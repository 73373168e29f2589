//! Browser test of the recommendations page: three hours of history with an outage, a
//! recommendation made through the API, listed on the page with its summary and evidence; an
//! admin accepts it in the page and sees it accepted with the config version it created. A
//! suggestion the engine doubts is marked low confidence, with its reasons. On the
//! breaker's page, an admin's "Suggest thresholds" makes another and links to it.

use backend::auth::Role;
use backend::time::now_ms;
use fantoccini::Locator;
use protocol::Recommendation;
use serde_json::json;
use tests::browser::{
    BrowserSetup, PAGE_READY_DEADLINE, accept_recommendation, click, count, save_screenshot,
    set_token, text, wait_for_element, wait_until,
};
use tests::post_batch;

use crate::recommend::history;

const MINUTE: i64 = 60_000;

/// A recommendation for shop/`breaker` over its last day, made through the API by `admin`.
async fn recommend(base: &str, admin: &str, breaker: &str) -> Recommendation {
    let response = reqwest::Client::new()
        .post(format!(
            "{base}/api/v1/breakers/shop/{breaker}/recommendations?days=1"
        ))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_accepts_a_recommendation_in_the_page() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.anonymous_server().await;
    let admin = server.user_token("ada", Role::Admin).await.unwrap();
    let key = server.ingest_key("shop").await.unwrap();
    let start = (now_ms() - 181 * MINUTE).div_euclid(MINUTE) * MINUTE;
    post_batch(
        &server.url(),
        &key,
        &json!({"service": "shop", "instance": "shop-1", "seq": 1, "sent_at_ms": now_ms(),
                "aggregates": history(start)}),
    )
    .await;
    let rec = recommend(&server.url(), &admin, "payments").await;
    // A second breaker with half an hour of quiet history: a suggestion the engine doubts.
    let quiet: Vec<serde_json::Value> = history(start)
        .into_iter()
        .take(30)
        .map(|mut aggregate| {
            aggregate["breaker"] = json!("quiet");
            aggregate
        })
        .collect();
    post_batch(
        &server.url(),
        &key,
        &json!({"service": "shop", "instance": "shop-1", "seq": 2, "sent_at_ms": now_ms(),
                "aggregates": quiet}),
    )
    .await;
    let doubted = recommend(&server.url(), &admin, "quiet").await;
    assert!(!doubted.doubts.is_empty(), "{:?}", doubted.doubts);

    let (_driver, client) = setup.browser().await;
    client.goto(&server.url()).await.unwrap();
    set_token(&client, &admin).await;
    client
        .goto(&format!("{}/recommendations", server.url()))
        .await
        .unwrap();
    wait_for_element(&client, ".who[data-role=\"admin\"]", "the admin's role").await;
    let card = format!(".rec-card[data-id=\"{}\"]", rec.id);
    wait_for_element(&client, &card, "the recommendation in the list").await;
    assert_eq!(
        text(&client, &format!("{card} .rec-status"))
            .await
            .to_lowercase(),
        "open"
    );
    assert_eq!(
        text(&client, &format!("{card} .rec-summary")).await,
        rec.summary
    );
    assert_eq!(
        text(&client, &format!("{card} .rec-breaker")).await,
        "shop / payments"
    );
    // The explanation, sentence by sentence; no doubt, so no low-confidence mark.
    assert_eq!(
        text(&client, &format!("{card} .rec-why")).await,
        rec.explanation.join("\n")
    );
    assert!(
        client
            .find(Locator::Css(&format!("{card} .rec-low")))
            .await
            .is_err(),
        "a suggestion without doubts is not marked low confidence"
    );
    // The doubted one is marked, with its reasons.
    let doubted_card = format!(".rec-card[data-id=\"{}\"]", doubted.id);
    wait_for_element(&client, &doubted_card, "the doubted recommendation").await;
    assert_eq!(
        text(&client, &format!("{doubted_card} .rec-low"))
            .await
            .to_lowercase(),
        "low confidence"
    );
    assert_eq!(
        count(&client, &format!("{doubted_card} .rec-doubts li")).await,
        doubted.doubts.len()
    );

    // The evidence, on expanding it: every config field, the two back-tests, the outage.
    click(&client, &format!("{card} .rec-detail summary")).await;
    wait_for_element(
        &client,
        &format!("{card} button.accept"),
        "the Accept button",
    )
    .await;
    assert_eq!(
        count(&client, &format!("{card} .rec-diff tbody tr")).await,
        11
    );
    assert_eq!(
        count(&client, &format!("{card} .rec-backtest tbody tr")).await,
        7
    );
    assert_eq!(
        count(&client, &format!("{card} .rec-anomalies li")).await,
        rec.anomalies.len()
    );
    let differing = rec.current != {
        let mut suggested = rec.suggested.clone();
        suggested.version = rec.current.version;
        suggested
    };
    assert_eq!(
        count(&client, &format!("{card} .rec-diff tr.differs")).await > 0,
        differing
    );
    // The before/after chart of the replay: the history and what each config refused.
    wait_for_element(
        &client,
        &format!("{card} .rec-replay svg"),
        "the replay chart",
    )
    .await;
    let chart = client
        .find(Locator::Css(&format!("{card} .rec-replay")))
        .await
        .unwrap()
        .html(true)
        .await
        .unwrap();
    for panel in [
        "history: failure rate",
        "current config: calls refused",
        "suggested config: calls refused",
    ] {
        assert!(chart.contains(panel), "the chart has the panel {panel:?}");
    }
    save_screenshot(&client, "recommendation-open").await;
    client
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView()",
            vec![json!(format!("{card} .rec-replay"))],
        )
        .await
        .unwrap();
    save_screenshot(&client, "recommendation-replay").await;

    // Accepting asks first, then shows the decision and the config version it created.
    let accepted = accept_recommendation(&client, rec.id).await;
    assert_eq!(
        text(&client, &format!("{accepted} .rec-status"))
            .await
            .to_lowercase(),
        "accepted"
    );
    let decision = text(&client, &format!("{accepted} .rec-decision")).await;
    assert!(
        decision.starts_with("accepted by ada at ")
            && decision.contains("applied as config version 1"),
        "the page says {decision:?}"
    );
    assert_eq!(
        count(&client, &format!("{accepted} button.accept")).await,
        0
    );
    save_screenshot(&client, "recommendation-accepted").await;

    // The breaker's page: the accepted version, lint for everyone, and Suggest thresholds.
    client
        .goto(&format!(
            "{}/breaker?service=shop&breaker=payments",
            server.url()
        ))
        .await
        .unwrap();
    wait_for_element(&client, "[data-config-version=\"1\"]", "config version 1").await;
    wait_for_element(&client, ".lint, .lint-none", "the lint findings").await;
    click(&client, "button.suggest").await;
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        "a link to the new recommendation",
        |client| async move {
            client
                .find(Locator::Css(".suggest [data-recommendation] a"))
                .await
                .is_ok()
        },
    )
    .await;
    let href = client
        .find(Locator::Css(".suggest [data-recommendation] a"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        href.starts_with("/recommendations?id=")
            && href != format!("/recommendations?id={}", rec.id),
        "the link is {href:?}"
    );

    // Auto mode: off by default; an admin switches it on after a confirmation and runs a step.
    wait_for_element(
        &client,
        ".auto-state[data-enabled=\"false\"]",
        "auto mode off",
    )
    .await;
    click(&client, "button[data-auto=\"on\"]").await;
    click(&client, ".auto-mode button[data-confirm=\"yes\"]").await;
    wait_for_element(
        &client,
        ".auto-state[data-enabled=\"true\"]",
        "auto mode on",
    )
    .await;
    click(&client, "button[data-auto=\"run\"]").await;
    wait_for_element(
        &client,
        ".auto-mode [data-kind=\"step\"]",
        "the step's outcome",
    )
    .await;
    let outcome = text(&client, ".auto-mode [data-kind=\"step\"]").await;
    assert!(
        ["low confidence: ", "applied: ", "no change: "]
            .iter()
            .any(|action| outcome.starts_with(action))
            && outcome.contains("recommendation"),
        "the step says {outcome:?}"
    );
    save_screenshot(&client, "auto-mode").await;

    client.close().await.unwrap();
}
