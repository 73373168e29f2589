//! `cargo xtask screenshots`: the README's screenshots, taken from the demo in headless
//! Chromium at 1400×900, so that they show what the dashboard does today.
//!
//! Starts the demo (its week of history, its services, its scripted incident and its admin
//! link) on a temporary database, signs in with the link, and saves into `docs/screenshots/`:
//! - `overview-incident.png`: the overview while the scripted incident holds `checkout`'s
//!   `payments-api` breaker open, with the alert's toast;
//! - `breaker.png`: that breaker's page over the last 24 hours (lanes, charts, transitions);
//! - `recommendation.png`: the demo's recommendation for its wrongly tuned breaker, opened on
//!   its evidence and replay chart.
//!
//! Run through `cargo xtask screenshots`, which installs Chromium and builds the release
//! bundle first (`FUSEBOX_DIST` names it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use fantoccini::Client;
use tests::browser::{
    BrowserSetup, open_recommendation, wait_for_charts, wait_for_element, wait_for_tile_state,
};

/// The scripted incident starts 10 s after the demo and lasts 25 s: well within this.
const INCIDENT_DEADLINE: Duration = Duration::from_secs(90);

fn main() -> ExitCode {
    let setup = match BrowserSetup::locate() {
        Ok(setup) => setup,
        Err(reason) => {
            eprintln!(
                "screenshots: cannot run: {reason}; `cargo xtask screenshots` installs and \
                 builds what it needs"
            );
            return ExitCode::FAILURE;
        }
    };
    let out = tests::browser::workspace_root().join("docs/screenshots");
    std::fs::create_dir_all(&out).expect("docs/screenshots can be made");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(take(&setup, &out));
    ExitCode::SUCCESS
}

async fn take(setup: &BrowserSetup, out: &std::path::Path) {
    let server = setup.anonymous_server().await;
    let demo = backend::demo::start(&server.server)
        .await
        .expect("the demo starts");
    let (_driver, client) = setup.browser().await;
    client.goto(&demo.admin_link).await.expect("the link opens");
    wait_for_element(&client, ".who[data-role=\"admin\"]", "the admin's role").await;
    wait_for_element(&client, ".pill.live", "the live stream").await;

    // The overview during the incident: the breaker open, the alert's toast beside it.
    let tile = ".tile[data-service=\"checkout\"][data-breaker=\"payments-api\"]";
    wait_for_tile_state(&client, tile, "open", INCIDENT_DEADLINE).await;
    wait_for_element(&client, ".toasts .toast", "the alert's toast").await;
    save(&client, out, "overview-incident").await;

    // The breaker's page over the last day: a week of history lies behind it.
    let url = format!(
        "{}/breaker?service=checkout&breaker=payments-api&range=24h",
        server.url()
    );
    client.goto(&url).await.expect("the breaker page opens");
    wait_for_charts(&client).await;
    save(&client, out, "breaker").await;

    // The demo's recommendation, opened on its evidence and replay chart.
    let rec = tests::demo_recommendation(&server.url(), None).await;
    client
        .goto(&format!("{}/recommendations", server.url()))
        .await
        .expect("the recommendations page opens");
    open_recommendation(&client, rec.id).await;
    save(&client, out, "recommendation").await;

    demo.shutdown().await;
}

/// Saves the viewport as `out/{name}.png` and says where.
async fn save(client: &Client, out: &std::path::Path, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    let path: PathBuf = out.join(format!("{name}.png"));
    std::fs::write(&path, png).expect("the screenshot is written");
    eprintln!("screenshot: {}", path.display());
}
