//! Browser test of alerts in the dashboard: an ingested trip fires the default `breaker-opened`
//! rule, the page shows a toast from the live stream and lists the alert; an admin acknowledges
//! it and the page shows who did, then silences it; a viewer sees the alert without any buttons. The page never
//! asks for notification permission by itself, only offers a button.

use backend::auth::Role;
use backend::time::now_ms;
use fantoccini::Locator;
use serde_json::json;
use tests::browser::{
    BrowserSetup, PAGE_READY_DEADLINE, count, save_screenshot, set_token, text, wait_for_element,
    wait_until,
};
use tests::post_batch;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trip_shows_a_toast_and_an_admin_acknowledges_it() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let server = setup.anonymous_server().await;
    let admin = server.user_token("ops", Role::Admin).await.unwrap();
    let viewer = server.user_token("watcher", Role::Viewer).await.unwrap();
    let key = server.ingest_key("checkout").await.unwrap();
    let (_driver, client) = setup.browser().await;

    client.goto(&server.url()).await.unwrap();
    set_token(&client, &admin).await;
    client
        .goto(&format!("{}/alerts", server.url()))
        .await
        .unwrap();
    wait_for_element(&client, ".who[data-role=\"admin\"]", "the admin's role").await;
    wait_for_element(&client, ".pill.live", "the live stream").await;
    wait_for_element(
        &client,
        "[data-page=\"alerts\"] .empty",
        "an empty alert list",
    )
    .await;
    // Asking for notification permission is the user's choice: a button, no prompt on load.
    let permission = client
        .execute(
            "return window.Notification ? Notification.permission : 'unsupported';",
            vec![],
        )
        .await
        .unwrap();
    if permission == json!("default") {
        assert_eq!(count(&client, "button.notify-ask").await, 1);
    }

    let now_ms = now_ms();
    let batch = json!({
        "service": "checkout", "instance": "checkout-1", "seq": 1, "sent_at_ms": now_ms,
        "transitions": [{
            "breaker": "payments-api", "at_ms": now_ms, "from": "closed", "to": "open",
            "trigger": {"kind": "failure_rate", "value": 0.55, "threshold": 0.5}, "config_version": 1
        }]
    });
    post_batch(&server.url(), &key, &batch).await;

    // The toast, from the stream's `event: alert`.
    wait_for_element(&client, ".toast[data-event=\"firing\"]", "a firing toast").await;
    let toast = text(&client, ".toast[data-event=\"firing\"]").await;
    assert!(toast.contains("payments-api"), "toast says {toast:?}");
    assert!(
        toast.contains("failure rate: 55 % ≥ 50 %"),
        "toast says {toast:?}"
    );

    // The list, reloaded on the same news.
    let card = ".alert-card[data-status=\"firing\"]";
    wait_for_element(&client, card, "the firing alert in the list").await;
    let listed = text(&client, card).await;
    assert!(
        listed.contains("Breaker payments-api opened in checkout"),
        "the list says {listed:?}"
    );
    assert!(listed.contains("checkout/payments-api on checkout-1"));
    assert_eq!(count(&client, &format!("{card} .acked")).await, 0);
    save_screenshot(&client, "alert-firing").await;

    // The admin acknowledges it; the page names who.
    client
        .find(Locator::Css(&format!("{card} button.ack")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until(
        &client,
        PAGE_READY_DEADLINE,
        "the acknowledgement on the page",
        |client| async move {
            match client.find(Locator::Css(".alert-card .acked")).await {
                Ok(element) => element
                    .text()
                    .await
                    .is_ok_and(|text| text.starts_with("acknowledged by ops")),
                Err(_) => false,
            }
        },
    )
    .await;
    assert_eq!(count(&client, ".alert-card button.ack").await, 0);

    // The admin silences it for an hour; the page says until when, and offers to lift it.
    client
        .find(Locator::Css(
            ".alert-card button.silence[data-for-ms=\"3600000\"]",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_element(&client, ".alert-card .silenced", "the silence on the page").await;
    assert!(
        text(&client, ".alert-card .silenced")
            .await
            .starts_with("silenced until ")
    );
    assert_eq!(count(&client, ".alert-card button.unsilence").await, 1);
    save_screenshot(&client, "alert-acknowledged").await;

    // A viewer sees the alert and who acknowledged it, and no buttons.
    set_token(&client, &viewer).await;
    client
        .goto(&format!("{}/alerts", server.url()))
        .await
        .unwrap();
    wait_for_element(&client, ".who[data-role=\"viewer\"]", "the viewer's role").await;
    wait_for_element(&client, ".alert-card .acked", "the acknowledged alert").await;
    assert!(
        text(&client, ".alert-card .acked")
            .await
            .starts_with("acknowledged by ops")
    );
    assert_eq!(count(&client, ".alert-card button").await, 0);

    client.close().await.unwrap();
}
