//! `cargo xtask screenshots`: regenerates the README's screenshots from the demo (see
//! `tests/src/bin/screenshots.rs` for what each shows), with Chromium installed and the
//! release dashboard bundle built first, as the browser tests have them.

use std::process::Command;

use crate::{build_ui, cargo, run_command, step, test_suite, workspace_root};

pub fn run() -> anyhow::Result<()> {
    test_suite::ensure_browser()?;
    step("building the dashboard bundle the screenshots show");
    let dist = build_ui::build_ui(&build_ui::Options { release: true })?;
    step("taking the screenshots from the demo into docs/screenshots/");
    let mut command = Command::new(cargo());
    command
        .current_dir(workspace_root())
        .args(["run", "--release", "-p", "tests", "--bin", "screenshots"])
        .env("FUSEBOX_DIST", &dist);
    run_command(&mut command)
}
