//! The adapters' services on the dashboard: the demo's Node.js service (opossum breakers through
//! fusebox-opossum) and Python service (pybreaker breakers through fusebox-pybreaker) show as
//! tiles beside the Rust services' ones, and run the configs the demo stored for them. Needs
//! Node.js with opossum installed in `adapters/opossum` and a Python with pybreaker
//! (`FUSEBOX_DEMO_PYTHON`); skips loudly without them, or fails under
//! `FUSEBOX_REQUIRE_ADAPTERS=1` (set by `cargo xtask test`, which installs them).

use std::time::Duration;

use backend::demo::adapters::{self, NODE_SERVICE, PYTHON_SERVICE};
use tests::browser::{BrowserSetup, open_live, save_screenshot, wait_for_element};
use tests::skip;

/// The services start, attach, and send a first aggregate and config status within this.
const REPORT_DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_and_python_services_show_beside_rust_ones() {
    let Some((setup, _browser)) = BrowserSetup::for_test().await else {
        return;
    };
    let runtimes = adapters::locate();
    let missing: Vec<String> = [runtimes.node.clone().err(), runtimes.python.clone().err()]
        .into_iter()
        .flatten()
        .collect();
    if !missing.is_empty() {
        skip::skip(
            &skip::current_test(),
            "FUSEBOX_REQUIRE_ADAPTERS",
            &format!("{}; `cargo xtask test` installs them", missing.join("; ")),
        );
        return;
    }
    let server = setup.anonymous_server().await;
    let demo = backend::demo::start(&server.server).await.unwrap();
    let services = adapters::start(&server.server, &runtimes).await.unwrap();
    let (_driver, client) = setup.browser().await;
    open_live(&client, &server.url()).await;

    let (node_service, node_breakers) = NODE_SERVICE;
    let (python_service, python_breakers) = PYTHON_SERVICE;
    let tiles = std::iter::once(("checkout", "payments-api"))
        .chain(node_breakers.iter().map(|b| (node_service, *b)))
        .chain(python_breakers.iter().map(|b| (python_service, *b)));
    for (service, breaker) in tiles {
        wait_for_element(
            &client,
            &format!(r#".tile[data-service="{service}"][data-breaker="{breaker}"]"#),
            &format!("the tile of {service} / {breaker}"),
        )
        .await;
    }
    save_screenshot(&client, "adapters").await;

    // Each adapter runs the config the demo stored for its breakers, and says so.
    for (service, breaker) in [
        (node_service, node_breakers[1]),
        (python_service, python_breakers[1]),
    ] {
        tests::wait::wait_for(
            &format!("{service} / {breaker} in sync with its stored config"),
            REPORT_DEADLINE,
            async || {
                let view: protocol::ConfigView = server
                    .get_json(
                        &format!("/api/v1/breakers/{service}/{breaker}/config"),
                        None,
                    )
                    .await;
                let current = view.current?.config.version;
                view.instances
                    .iter()
                    .any(|i| i.in_sync && i.running_version == current && i.refused.is_none())
                    .then_some(())
            },
        )
        .await;
    }
    services.shutdown().await;
    demo.shutdown().await;
}
