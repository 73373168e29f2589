//! `cargo xtask test`: every test of the workspace on a fresh machine, the browser tests included,
//! then the integration suite's HTTP tests again with every server on PostgreSQL
//! (`FUSEBOX_TEST_DATABASE=postgres`), then the adapters' suites (`node --test`, `pytest`) and
//! schemathesis against the served API document.
//!
//! A test that cannot run skips loudly and appends a line to the file named by
//! `FUSEBOX_SKIP_LOG` (`tests::skip`). This command points that at a fresh file and fails at the
//! end, listing them, when any test skipped: a skipped test is not a passed one. (The browser,
//! Alertmanager and PostgreSQL tests fail outright here, since `FUSEBOX_REQUIRE_BROWSER`,
//! `FUSEBOX_REQUIRE_ALERTMANAGER` and `FUSEBOX_REQUIRE_POSTGRES` are set too; the log catches any
//! other skip. `FUSEBOX_REQUIRE_ADAPTERS` likewise for the browser test of the adapters' services,
//! whose Node.js, opossum and pybreaker are installed first.)

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{apt, build_ui, cargo, run_command, step, target_dir, workspace_root};

/// Debian's browser and its WebDriver, which the browser tests (and the browser bench) drive
/// headless.
const BROWSER_PACKAGES: [&str; 2] = ["chromium", "chromium-driver"];
/// Debian 12's Alertmanager, which the alerting test starts on loopback.
const ALERTMANAGER_PACKAGES: [&str; 1] = ["prometheus-alertmanager"];

pub fn run() -> anyhow::Result<()> {
    ensure_browser()?;
    step("checking for Alertmanager (the alerting test delivers to a real one)");
    apt::ensure_installed(&ALERTMANAGER_PACKAGES, "the Alertmanager test needs it")?;
    ensure_postgres()?;

    step("building the dashboard bundle the browser tests load");
    let dist = build_ui::build_ui(&build_ui::Options { release: true })?;

    // The browser test runs the adapters' demo services: Node.js with opossum, pybreaker.
    let adapters_python = crate::adapters::ensure_all()?;

    let skip_log = fresh_skip_log()?;
    step("running every test of the workspace (browser, Alertmanager and adapter tests required)");
    let mut command = Command::new(cargo());
    command
        .current_dir(workspace_root())
        // Every test binary runs even after one fails, so a run reports all failures at once.
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("FUSEBOX_REQUIRE_BROWSER", "1")
        .env("FUSEBOX_REQUIRE_ALERTMANAGER", "1")
        .env("FUSEBOX_REQUIRE_POSTGRES", "1")
        .env("FUSEBOX_REQUIRE_ADAPTERS", "1")
        .env("FUSEBOX_DEMO_PYTHON", &adapters_python)
        .env("FUSEBOX_DIST", &dist)
        .env("FUSEBOX_SKIP_LOG", &skip_log);
    eprintln!(
        "    with FUSEBOX_REQUIRE_BROWSER=1 FUSEBOX_REQUIRE_ALERTMANAGER=1 FUSEBOX_REQUIRE_POSTGRES=1 FUSEBOX_REQUIRE_ADAPTERS=1 FUSEBOX_DEMO_PYTHON={} FUSEBOX_DIST={} FUSEBOX_SKIP_LOG={}",
        adapters_python.display(),
        dist.display(),
        skip_log.display()
    );
    let tests = run_command(&mut command);

    step(
        "running the integration suite again on PostgreSQL (a throwaway cluster, a database per server)",
    );
    let mut command = Command::new(cargo());
    command
        .current_dir(workspace_root())
        .args([
            "test",
            // `--workspace`, as above, so that features resolve the same and the binary built
            // there runs again without a rebuild (`breaker`'s small `integration` test too).
            "--workspace",
            "--test",
            "integration",
            "--no-fail-fast",
            "--",
        ])
        // The dashboard's tests drive the same routes as the HTTP tests that run here; they
        // pass on PostgreSQL too (`FUSEBOX_TEST_DATABASE=postgres cargo test -p tests --test
        // integration browser`) but would add a minute and a half to every run.
        .args(["--skip", "browser"])
        .env("FUSEBOX_TEST_DATABASE", "postgres")
        .env("FUSEBOX_REQUIRE_ALERTMANAGER", "1")
        .env("FUSEBOX_REQUIRE_POSTGRES", "1")
        .env("FUSEBOX_SKIP_LOG", &skip_log);
    eprintln!(
        "    with FUSEBOX_TEST_DATABASE=postgres FUSEBOX_REQUIRE_ALERTMANAGER=1 FUSEBOX_REQUIRE_POSTGRES=1 FUSEBOX_SKIP_LOG={}",
        skip_log.display()
    );
    let postgres_tests = run_command(&mut command);
    let skipped = read_skips(&skip_log)?;
    report_skips(&skipped);
    tests?;
    postgres_tests?;

    crate::adapters::run_tests()?;

    crate::schemathesis::run(&crate::schemathesis::Options::from_env()?)?;
    if !skipped.is_empty() {
        bail!(
            "{} test(s) skipped (listed above): a skipped test is not a passed one",
            skipped.len()
        );
    }
    step("all tests passed, none skipped");
    Ok(())
}

/// Installs Debian's PostgreSQL when its binaries are missing. The tests start throwaway
/// clusters of their own from these binaries (`tests::postgres`); no service is used.
pub fn ensure_postgres() -> anyhow::Result<()> {
    step(
        "checking for PostgreSQL (the schema tests and the suite's PostgreSQL run start throwaway clusters from its binaries)",
    );
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|versions| {
            versions
                .filter_map(Result::ok)
                .any(|v| v.path().join("bin/initdb").exists())
        })
        .unwrap_or(false);
    if installed {
        eprintln!("    PostgreSQL binaries are installed under /usr/lib/postgresql");
        Ok(())
    } else {
        apt::ensure_installed(&["postgresql"], "the PostgreSQL tests need its binaries")
    }
}

/// Installs Chromium and chromedriver from Debian when either is missing.
pub fn ensure_browser() -> anyhow::Result<()> {
    step("checking for chromium and chromedriver (the browser tests drive them)");
    if Path::new("/usr/bin/chromedriver").exists() && Path::new("/usr/bin/chromium").exists() {
        eprintln!("    chromium and chromedriver are installed");
        Ok(())
    } else {
        apt::ensure_installed(&BROWSER_PACKAGES, "the browser tests need them")
    }
}

/// An empty skip log under the target folder, for this run only.
fn fresh_skip_log() -> anyhow::Result<PathBuf> {
    let dir = target_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let log = dir.join("fusebox-skipped-tests.log");
    std::fs::write(&log, "").with_context(|| format!("cannot create {}", log.display()))?;
    Ok(log)
}

/// The skips the tests recorded, one `<test>: <reason>` a line.
fn read_skips(log: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(log).with_context(|| format!("cannot read {}", log.display()))?;
    Ok(parse_skips(&text))
}

fn parse_skips(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

fn report_skips(skipped: &[String]) {
    if skipped.is_empty() {
        step("no test skipped");
        return;
    }
    step(&format!("{} test(s) SKIPPED:", skipped.len()));
    for line in skipped {
        eprintln!("    SKIPPED {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_of_the_log_is_one_skip() {
        assert_eq!(parse_skips(""), Vec::<String>::new());
        assert_eq!(
            parse_skips("browser::a: missing: x\n\nalerts::b: missing: y\n"),
            ["browser::a: missing: x", "alerts::b: missing: y"]
        );
    }
}
