//! `cargo xtask adapters` (and a step of `cargo xtask test`): the `node --test` suite of
//! `adapters/opossum` and the `pytest` suite of `adapters/pybreaker`, each against the real
//! `fusebox` binary (which they start on a temporary database, with keys made by its CLI).
//!
//! What they need is installed when missing, and said: Node.js and npm from Debian, opossum with
//! npm into `adapters/opossum/node_modules` (the package's dev dependency, at exactly
//! `OPOSSUM_VERSION`), pybreaker and pytest from PyPI into a virtual environment under the
//! target folder. The benches of the adapters
//! (`cargo xtask bench --only opossum|pybreaker`) use the same installs.

use std::path::PathBuf;
use std::process::Command;

use anyhow::bail;

use crate::{apt, build_fusebox, run_command, step, target_dir, workspace_root};

/// The pybreaker release the Python adapter is tested against.
pub const PYBREAKER: &str = "pybreaker==1.4.1";
/// The opossum release the Node.js adapter is tested against (docs/adapters.md measured it).
pub const OPOSSUM_VERSION: &str = "9.0.0";
/// pytest, for the Python adapter's suite.
const PYTEST: &str = "pytest>=8,<9";

pub fn opossum_dir() -> PathBuf {
    workspace_root().join("adapters").join("opossum")
}

pub fn pybreaker_dir() -> PathBuf {
    workspace_root().join("adapters").join("pybreaker")
}

/// Installs what the adapters' suites (and the browser test of their services) need; returns
/// the virtual environment's python.
pub fn ensure_all() -> anyhow::Result<PathBuf> {
    ensure_opossum()?;
    ensure_python_env()
}

/// For `cargo xtask demo`: opossum and pybreaker when Node.js and Python are there, without
/// installing either; the python for `FUSEBOX_DEMO_PYTHON` when it worked. The demo says what
/// it leaves out.
pub fn prepare_demo() -> Option<PathBuf> {
    step(
        "preparing the demo's Node.js and Python services (left out when their runtime is missing)",
    );
    if has_program("node") && has_program("npm") {
        if let Err(err) = ensure_opossum() {
            eprintln!("    could not install opossum: {err:#}");
        }
    } else {
        eprintln!("    no node and npm: the demo leaves its Node.js service out");
    }
    if has_program("python3") {
        match ensure_python_env() {
            Ok(python) => return Some(python),
            Err(err) => eprintln!("    could not install pybreaker: {err:#}"),
        }
    } else {
        eprintln!("    no python3: the demo leaves its Python service out");
    }
    None
}

/// Runs both suites; both run even when the first fails.
pub fn run_tests() -> anyhow::Result<()> {
    let python = ensure_all()?;
    let fusebox = build_fusebox("the server the adapter suites start")?;

    let mut failed = Vec::new();
    step("fusebox-opossum: node --test against a real fusebox serve and real opossum breakers");
    let node = run_command(
        Command::new("node")
            .current_dir(opossum_dir())
            .args(["--test", "test/adapter.test.js"])
            .env("FUSEBOX_BIN", &fusebox),
    );
    if node.is_err() {
        failed.push("fusebox-opossum (node --test)");
    }
    step("fusebox-pybreaker: pytest against a real fusebox serve and real pybreaker breakers");
    let pytest = run_command(
        Command::new(&python)
            .current_dir(pybreaker_dir())
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .env("FUSEBOX_BIN", &fusebox),
    );
    if pytest.is_err() {
        failed.push("fusebox-pybreaker (pytest)");
    }
    if !failed.is_empty() {
        bail!("adapter suite(s) failed: {}", failed.join(", "));
    }
    step("adapter suites: no failures");
    Ok(())
}

/// Node.js and npm (Debian's when missing), then opossum in the adapter's `node_modules`.
pub fn ensure_opossum() -> anyhow::Result<()> {
    step("checking for Node.js and npm (the opossum adapter's suite and bench run on them)");
    if has_program("node") && has_program("npm") {
        eprintln!("    node and npm are installed");
    } else {
        apt::ensure_installed(&["nodejs", "npm"], "the opossum adapter needs them")?;
    }
    let dir = opossum_dir();
    let installed = installed_opossum(&dir);
    if installed.as_deref() == Some(OPOSSUM_VERSION) {
        eprintln!(
            "    opossum {OPOSSUM_VERSION} is installed in {}",
            dir.join("node_modules").display()
        );
        return Ok(());
    }
    if let Some(other) = installed {
        eprintln!("    opossum {other} is installed; the suites run on {OPOSSUM_VERSION}");
    }
    step(&format!(
        "installing opossum {OPOSSUM_VERSION} with npm into {} (the adapter's dev dependency, pinned)",
        dir.join("node_modules").display()
    ));
    run_command(Command::new("npm").current_dir(&dir).args([
        "install",
        "--no-audit",
        "--no-fund",
        "--no-package-lock",
        "--no-save",
        &format!("opossum@{OPOSSUM_VERSION}"),
    ]))
}

/// The version of opossum in the adapter's `node_modules`, if any.
fn installed_opossum(dir: &std::path::Path) -> Option<String> {
    let manifest = std::fs::read_to_string(dir.join("node_modules/opossum/package.json")).ok()?;
    // The first `"version": "…"` of the manifest, without a JSON parser in xtask.
    let after = &manifest[manifest.find("\"version\"")? + "\"version\"".len()..];
    let value = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(value[..value.find('"')?].to_owned())
}

/// A virtual environment under the target folder with pybreaker and pytest; its python.
pub fn ensure_python_env() -> anyhow::Result<PathBuf> {
    let venv = target_dir().join("adapters-venv");
    let python = venv.join("bin").join("python");
    step("checking for pybreaker and pytest (the pybreaker adapter's suite and bench)");
    let ready = python.exists()
        && Command::new(&python)
            .args(["-c", "import pybreaker, pytest"])
            .output()
            .is_ok_and(|output| output.status.success());
    if ready {
        eprintln!("    installed in {}", venv.display());
        return Ok(python);
    }
    step(&format!(
        "installing {PYBREAKER} and pytest from PyPI into {}",
        venv.display()
    ));
    if !python.exists() {
        run_command(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run_command(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args([PYBREAKER, PYTEST]),
    )?;
    Ok(python)
}

fn has_program(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success())
}
