//! Build automation for fusebox, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! Brief overview:
//! - `build-ui [--release]`: builds the wasm dashboard into `frontend/dist/` ([`build_ui`]),
//!   choosing how to get a wasm32 standard library ([`route`]).
//! - `demo [-- ARGS]`: builds the dashboard (release) and runs `fusebox demo` with it.
//! - `test`: the whole test suite on a fresh machine, browser tests included; fails when any
//!   test skipped ([`test_suite`]).
//! - `bench [--only NAME [-- ARGS]] [--list]`: every benchmark, or one, printing its figures,
//!   then one table of every goal beside its figure ([`bench`]).
//! - `fuzz [--seconds N]`: each cargo-fuzz target for N seconds on nightly ([`fuzz`]).
//! - `schemathesis`: schemathesis against a served API document ([`schemathesis`]); also the
//!   last step of `test`.
//! - `adapters`: the opossum and pybreaker adapters' suites against the real server
//!   ([`adapters`]); also a step of `test`.
//! - `screenshots`: the README's screenshots, taken from the demo in headless Chromium
//!   ([`screenshots`]).
//!
//! Everything shells out with `std::process::Command` and says what it runs; there is no build.rs
//! that calls cargo, so a plain `cargo build` never triggers a hidden nested wasm build.

mod adapters;
mod apt;
mod bench;
mod build_ui;
mod fuzz;
mod route;
mod schemathesis;
mod screenshots;
mod test_suite;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build-ui [--release]   build the wasm dashboard into frontend/dist/
  demo [-- ARGS]         build the dashboard (release) and run `fusebox demo --anonymous-viewer ARGS`
  test                   install the browser if missing, build the dashboard, run every test;
                         fails if any test skipped
  bench [--only NAME [-- ARGS]]
                         run every benchmark (or NAME, passing it ARGS) and print its figures,
                         then one table of goals and figures (also target/bench-summary.md);
                         `bench --list` names them
  screenshots            take the README's screenshots from the demo into docs/screenshots/
  fuzz [--seconds N]     run each fuzz target in fuzz/ for N seconds (30) on nightly
  schemathesis           run schemathesis (pinned) against a served API, as admin and as an ingest key
  adapters               run the opossum (node --test) and pybreaker (pytest) adapter suites against
                         the real server, installing Node.js, opossum, pybreaker and pytest if missing

environment:
  FUSEBOX_SCHEMATHESIS_EXAMPLES=N   cases per operation and phase (default 50)
  FUSEBOX_SCHEMATHESIS_SEED=S       the generation seed (default fixed, for reproducible runs)
  FUSEBOX_WASM_ROUTE=rustup|debian   force how the wasm32 standard library is obtained
  FUSEBOX_BENCH_BREAKERS=N, FUSEBOX_BENCH_ROUNDS=N, FUSEBOX_BENCH_ALERTS=N
                                     the fleet and alerts benches' sizes (see `bench --list`)
";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> anyhow::Result<()> {
    let Some((command, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        bail!("no command given");
    };
    match command.as_str() {
        "build-ui" => {
            let release = match rest {
                [] => false,
                [flag] if flag == "--release" => true,
                _ => bail!("build-ui takes only `--release`, got {rest:?}"),
            };
            build_ui::build_ui(&build_ui::Options { release })?;
            Ok(())
        }
        "demo" => demo(rest),
        "fuzz" => fuzz::run(rest),
        "schemathesis" => {
            if !rest.is_empty() {
                bail!("schemathesis takes no arguments (see the environment), got {rest:?}");
            }
            schemathesis::run(&schemathesis::Options::from_env()?)
        }
        "test" => {
            if !rest.is_empty() {
                bail!("test takes no arguments, got {rest:?}");
            }
            test_suite::run()
        }
        "bench" => bench::run(rest),
        "screenshots" => {
            if !rest.is_empty() {
                bail!("screenshots takes no arguments, got {rest:?}");
            }
            screenshots::run()
        }
        "adapters" => {
            if !rest.is_empty() {
                bail!("adapters takes no arguments, got {rest:?}");
            }
            adapters::run_tests()
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}

/// `cargo xtask demo`: a release dashboard served by `fusebox demo`, which prints its URL.
fn demo(extra_args: &[String]) -> anyhow::Result<()> {
    // `cargo xtask demo -- --port 8080` reaches us with the `--` already removed by cargo;
    // a second `--` typed by habit is dropped here too.
    let extra_args = match extra_args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => extra_args,
    };
    let dist = build_ui::build_ui(&build_ui::Options { release: true })?;
    let python = adapters::prepare_demo();
    step("starting the demo server (`fusebox demo`); it prints the dashboard URL");
    let mut command = Command::new(cargo());
    command
        .current_dir(workspace_root())
        .args(["run", "-p", "backend", "--", "demo", "--anonymous-viewer"])
        .args(extra_args)
        .env("FUSEBOX_DIST", &dist);
    if let Some(python) = python {
        command.env("FUSEBOX_DEMO_PYTHON", python);
    }
    run_command(&mut command)
}

/// The workspace root: xtask lives one folder below it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent folder")
        .to_path_buf()
}

/// The workspace's target folder (`CARGO_TARGET_DIR` when set).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The cargo that runs us (from rustup), for nested host builds.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Announces a step, so a long run reads as a list of what happened.
pub fn step(what: &str) {
    eprintln!("==> {what}");
}

/// Runs a command with inherited output and fails with its exit status.
pub fn run_command(command: &mut Command) -> anyhow::Result<()> {
    eprintln!("    $ {}", describe(command));
    let status = command.status().with_context(|| {
        format!(
            "could not start `{}`",
            command.get_program().to_string_lossy()
        )
    })?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(command));
    }
    Ok(())
}

/// Builds the `fusebox` binary (debug) for `purpose`, saying so; returns its path.
pub fn build_fusebox(purpose: &str) -> anyhow::Result<PathBuf> {
    step(&format!("building {purpose}"));
    run_command(
        Command::new(cargo())
            .current_dir(workspace_root())
            .args(["build", "-p", "backend", "--bin", "fusebox"]),
    )?;
    Ok(target_dir().join("debug").join("fusebox"))
}

/// A command as a shell-like line (program and arguments; environment changes are not shown).
pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
