//! `cargo xtask fuzz [--seconds N]`: runs each cargo-fuzz target in `fuzz/` for N seconds
//! (30 by default) on the installed `nightly` toolchain, installing cargo-fuzz when missing.
//!
//! The fuzz build goes to `fuzz/target` (not the workspace's target dir: it is a nightly build
//! with sanitizer instrumentation). New inputs libFuzzer finds go to `fuzz/target/corpus/<target>`
//! and the committed corpus `fuzz/corpus/<target>` is only read, so a run never adds thousands
//! of files to the repository; a crash is written to `fuzz/artifacts/<target>/`.

use std::process::Command;

use anyhow::{Context, bail};

use crate::{describe, step, workspace_root};

const TARGETS: [&str; 2] = ["ingest", "config_toml"];

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let seconds: u64 = match args {
        [] => 30,
        [flag, n] if flag == "--seconds" => n
            .parse()
            .with_context(|| format!("--seconds takes a whole number, got {n:?}"))?,
        _ => bail!("fuzz takes only `--seconds N`, got {args:?}"),
    };
    ensure_cargo_fuzz()?;
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let mut failed = Vec::new();
    let mut report = Vec::new();
    for target in TARGETS {
        step(&format!("fuzzing `{target}` for {seconds} s"));
        let scratch = fuzz_dir.join("target/corpus").join(target);
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create {}", scratch.display()))?;
        let mut command = nightly_cargo();
        command
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", fuzz_dir.join("target"))
            .args(["fuzz", "run", target])
            .arg(&scratch)
            .arg(fuzz_dir.join("corpus").join(target))
            .arg("--")
            .arg(format!("-max_total_time={seconds}"));
        eprintln!("    $ {}", describe(&command));
        let status = command
            .status()
            .context("could not start `cargo +nightly fuzz`")?;
        if status.success() {
            report.push(format!("{target}: ok, no crash in {seconds} s"));
        } else {
            report.push(format!(
                "{target}: FAILED ({status}); the input is in fuzz/artifacts/{target}/"
            ));
            failed.push(target);
        }
    }
    step("fuzz results");
    for line in &report {
        eprintln!("    {line}");
    }
    if !failed.is_empty() {
        bail!("fuzz targets failed: {}", failed.join(", "));
    }
    Ok(())
}

/// `cargo +nightly`, through rustup's proxy: the `cargo` that runs xtask is a toolchain's own
/// binary, which does not understand `+nightly`.
fn nightly_cargo() -> Command {
    let mut command = Command::new("cargo");
    command
        .arg("+nightly")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("CARGO");
    command
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    let installed = nightly_cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if installed {
        return Ok(());
    }
    step("cargo-fuzz is missing: installing it with `cargo install cargo-fuzz`");
    let mut install = Command::new("cargo");
    install
        .args(["install", "cargo-fuzz"])
        .env_remove("CARGO_TARGET_DIR");
    crate::run_command(&mut install)
}
