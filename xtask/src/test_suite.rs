//! `cargo xtask test`: every test of the workspace on a fresh machine, the browser test included,
//! then schemathesis against the served API document.

use std::path::Path;
use std::process::Command;

use crate::{apt, build_ui, cargo, run_command, step, workspace_root};

/// Debian's browser and its WebDriver, which the browser test drives headless.
const BROWSER_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];
/// Debian 12's Alertmanager, which the alerting test starts on loopback.
const ALERTMANAGER_PACKAGES: [&str; 1] = ["prometheus-alertmanager"];

pub fn run() -> anyhow::Result<()> {
    step("checking for chromium and chromedriver (the browser test drives them)");
    if Path::new("/usr/bin/chromedriver").exists() && Path::new("/usr/bin/chromium").exists() {
        eprintln!("    chromium and chromedriver are installed");
    } else {
        apt::ensure_installed(&BROWSER_PACKAGES, "the browser test needs them")?;
    }
    step("checking for Alertmanager (the alerting test delivers to a real one)");
    apt::ensure_installed(&ALERTMANAGER_PACKAGES, "the Alertmanager test needs it")?;

    step("building the dashboard bundle the browser test loads");
    let dist = build_ui::build_ui(&build_ui::Options { release: true })?;

    step("running every test of the workspace (browser and Alertmanager tests required)");
    let mut command = Command::new(cargo());
    command
        .current_dir(workspace_root())
        // Every test binary runs even after one fails, so a run reports all failures at once.
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("FUSEBOX_REQUIRE_BROWSER", "1")
        .env("FUSEBOX_REQUIRE_ALERTMANAGER", "1")
        .env("FUSEBOX_DIST", &dist);
    eprintln!(
        "    with FUSEBOX_REQUIRE_BROWSER=1 FUSEBOX_REQUIRE_ALERTMANAGER=1 FUSEBOX_DIST={}",
        dist.display()
    );
    run_command(&mut command)?;

    crate::schemathesis::run(&crate::schemathesis::Options::from_env()?)?;
    step("all tests passed");
    Ok(())
}
