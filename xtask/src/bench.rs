//! `cargo xtask bench [--only NAME [-- ARGS]] [--list]`: every benchmark of the workspace, one
//! after another, each printing its own figures (the ones README.md and docs/ quote), then one
//! table of every goal beside its figure.
//!
//! Benchmarks are figures, not verdicts, so none of them is in the test suite: each is a
//! `harness = false` bench binary run with `cargo bench -p PACKAGE --bench NAME` (optimised, with
//! inherited output). The browser bench needs Chromium and the release dashboard bundle, which
//! this command installs and builds first, as `cargo xtask test` does. The adapters' benches are
//! scripts (`adapters/opossum/bench/overhead.js` under Node.js, `adapters/pybreaker/bench/overhead.py`
//! in the adapters' virtual environment), with their libraries installed first when missing.
//! `tune_eval` times the release `fusebox tune eval` over the shared development scenarios
//! (`../shared/tuning/dev/*.jsonl`, beside the repository). A bench that fails does not stop the
//! others; the command fails at the end, naming it.
//!
//! The summary: every bench appends a row per goal it measures to the file named in
//! `FUSEBOX_BENCH_SUMMARY` ([`row`], the format; `target/bench-summary.jsonl`), and at the end
//! the rows are printed as one table (bench | what | figure | goal | met), a failed bench as a
//! `FAILED` row, and written as markdown to `target/bench-summary.md` ([`summary`]).

#[path = "bench/row.rs"]
pub mod row;
mod summary;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};

use crate::{
    adapters, build_ui, cargo, describe, run_command, step, target_dir, test_suite, workspace_root,
};

/// One bench binary, or an adapter's bench script.
struct Bench {
    name: &'static str,
    package: &'static str,
    /// What it prints, and the knobs it takes.
    what: &'static str,
    /// Needs Chromium and the dashboard bundle.
    browser: bool,
    /// An adapter's script instead of a cargo bench.
    script: Option<Script>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Script {
    Opossum,
    Pybreaker,
    /// The release `fusebox tune eval`, timed by xtask.
    TuneEval,
}

/// The goal for `fusebox tune eval` over the development scenarios, in seconds (2 cores).
const TUNE_EVAL_GOAL_S: f64 = 180.0;

/// Every bench of the workspace, in the order a full run takes them.
const BENCHES: [Bench; 9] = [
    Bench {
        name: "hot_path",
        package: "breaker",
        what: "the breaker's closed hot path and Open rejections against recloser and failsafe, \
               allocations per call (criterion, then a table of ratios to recloser, median and \
               range over rounds, beside the goals; `-- table` for the table alone)",
        browser: false,
        script: None,
    },
    Bench {
        name: "alerts",
        package: "backend",
        what: "transition ingested → webhook delivered, p50/p99/max \
               (FUSEBOX_BENCH_ALERTS=N trips, default 300)",
        browser: false,
        script: None,
    },
    Bench {
        name: "browser_load",
        package: "tests",
        what: "the dashboard with 500 live breakers as tiles and 1,000 and 10,000 in the matrix in headless \
               Chromium, the bundle's size, transition → visible in the page, median of rounds \
               (FUSEBOX_BENCH_FLEET, FUSEBOX_BENCH_ROUNDS)",
        browser: true,
        script: None,
    },
    Bench {
        name: "fleet",
        package: "engine",
        what: "engine suggestions for 1,000 breakers × 7 days of minute rollups, median of rounds \
               (FUSEBOX_BENCH_BREAKERS, FUSEBOX_BENCH_ROUNDS)",
        browser: false,
        script: None,
    },
    Bench {
        name: "server",
        package: "backend",
        what: "ingest over HTTP against raw inserts, breaker detail over 10 M outcomes, RSS with \
               1,000 and 10,000 live breakers (503s, acknowledgement p99, transition → 50 \
               live-stream clients) and per live breaker, a SQLite retention run against the history kept; with FUSEBOX_BENCH_POSTGRES, replicas: cross-replica stream latency and \
               ingest with 1-3 replicas, and retention: a day's partition dropped against its rows deleted \
               (`-- quick`; `-- ingest|detail|memory|fleet|prune|replicas|retention` for one part; `fleet` is memory's 10,000 breakers alone)",
        browser: false,
        script: None,
    },
    Bench {
        name: "soak",
        package: "backend",
        what: "fusebox serve killed with SIGKILL 20 times under 10,000 events/s: lost, duplicated, \
               partial (`-- --rounds N`)",
        browser: false,
        script: None,
    },
    Bench {
        name: "opossum",
        package: "adapters/opossum",
        what: "fusebox-opossum's added time per call against bare opossum in the same run, median of \
               rounds (`-- CALLS ROUNDS`, default 200000 7; `-- memory MINUTES`: memory at 1,000 calls/s with \
               the server down)",
        browser: false,
        script: Some(Script::Opossum),
    },
    Bench {
        name: "pybreaker",
        package: "adapters/pybreaker",
        what: "fusebox-pybreaker's added time per call against bare pybreaker in the same run, \
               median of rounds (`-- CALLS ROUNDS`, default 200000 7; `-- memory MINUTES`: memory at 1,000 \
               calls/s with the server down)",
        browser: false,
        script: Some(Script::Pybreaker),
    },
    Bench {
        name: "tune_eval",
        package: "backend",
        what: "wall time of the release `fusebox tune eval` over the development scenarios \
               (../shared/tuning/dev/*.jsonl), one run (`-- FILE…` instead of those; other \
               arguments are `tune eval` options, e.g. `-- --hindsight`)",
        browser: false,
        script: Some(Script::TuneEval),
    },
];

/// What to run.
#[derive(Debug, PartialEq)]
enum Plan {
    List,
    /// Every bench, or the one named with the arguments for it.
    Run {
        only: Option<&'static str>,
        args: Vec<String>,
    },
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let (only, bench_args) = match parse(args)? {
        Plan::List => {
            for bench in &BENCHES {
                let how = match bench.script {
                    None => format!("cargo bench -p {} --bench {}", bench.package, bench.name),
                    Some(Script::Opossum) => "node adapters/opossum/bench/overhead.js".to_string(),
                    Some(Script::Pybreaker) => {
                        "python adapters/pybreaker/bench/overhead.py".to_string()
                    }
                    Some(Script::TuneEval) => {
                        "target/release/fusebox tune eval ../shared/tuning/dev/*.jsonl".to_string()
                    }
                };
                println!("{:<13} {how}\n              {}", bench.name, bench.what);
            }
            return Ok(());
        }
        Plan::Run { only, args } => (only, args),
    };
    let selected: Vec<&Bench> = BENCHES
        .iter()
        .filter(|bench| only.is_none_or(|name| bench.name == name))
        .collect();

    // The browser bench loads the release bundle, built (and Chromium installed) once up front.
    let mut dist = None;
    if selected.iter().any(|bench| bench.browser) {
        test_suite::ensure_browser()?;
        step("building the dashboard bundle the browser bench loads");
        dist = Some(build_ui::build_ui(&build_ui::Options { release: true })?);
    }

    // A fresh summary file for this run; every bench appends its rows to it.
    std::fs::create_dir_all(target_dir())?;
    let summary_file = target_dir().join("bench-summary.jsonl");
    std::fs::write(&summary_file, "")
        .with_context(|| format!("cannot write {}", summary_file.display()))?;

    let mut report = Vec::new();
    let mut failed = Vec::new();
    for bench in selected {
        step(&format!(
            "bench `{}` ({}): {}",
            bench.name, bench.package, bench.what
        ));
        let reproduce = reproduce(bench.name, &bench_args, std::env::vars());
        let n_rows_before = summary::read(&summary_file).len();
        let started = Instant::now();
        let ok = match run_one(bench, &bench_args, dist.as_ref(), &summary_file, &reproduce) {
            Ok(ok) => ok,
            Err(err) => {
                eprintln!("    {}: {err:#}", bench.name);
                false
            }
        };
        let seconds = started.elapsed().as_secs_f64();
        if ok {
            report.push(format!("{}: done in {seconds:.0} s", bench.name));
            if summary::read(&summary_file).len() == n_rows_before {
                summary::silent(bench.name, seconds, &reproduce).record_to(&summary_file);
            }
        } else {
            report.push(format!("{}: FAILED after {seconds:.0} s", bench.name));
            summary::failed(bench.name, seconds, &reproduce).record_to(&summary_file);
            failed.push(bench.name);
        }
    }
    let rows = summary::read(&summary_file);
    step("goals and figures (each bench's own output is above)");
    eprint!("{}", summary::table(&rows));
    for line in &report {
        eprintln!("    {line}");
    }
    let markdown_file = target_dir().join("bench-summary.md");
    std::fs::write(&markdown_file, summary::markdown(&rows, &report))
        .with_context(|| format!("cannot write {}", markdown_file.display()))?;
    eprintln!("    (as markdown in {})", markdown_file.display());
    if !failed.is_empty() {
        bail!("bench(es) failed: {}", failed.join(", "));
    }
    Ok(())
}

/// The command that runs `name` again as now: with the `FUSEBOX_BENCH_*` settings in `env`
/// (sizes, rounds, the PostgreSQL server) and the same arguments.
fn reproduce(name: &str, args: &[String], env: impl Iterator<Item = (String, String)>) -> String {
    let mut settings: Vec<String> = env
        .filter(|(key, _)| {
            key.starts_with("FUSEBOX_BENCH_") && key != row::SUMMARY_VAR && key != row::COMMAND_VAR
        })
        .map(|(key, value)| format!("{key}={value} "))
        .collect();
    settings.sort();
    let mut command = format!("{}cargo xtask bench --only {name}", settings.concat());
    if !args.is_empty() {
        command.push_str(" -- ");
        command.push_str(&args.join(" "));
    }
    command
}

/// Runs one bench with inherited output; whether it succeeded.
fn run_one(
    bench: &Bench,
    bench_args: &[String],
    dist: Option<&PathBuf>,
    summary_file: &std::path::Path,
    reproduce: &str,
) -> anyhow::Result<bool> {
    let mut command = match bench.script {
        None => {
            let mut command = Command::new(cargo());
            command.current_dir(workspace_root()).args([
                "bench",
                "-p",
                bench.package,
                "--bench",
                bench.name,
            ]);
            if !bench_args.is_empty() {
                command.arg("--");
            }
            command.args(bench_args);
            command
        }
        Some(Script::Opossum) => {
            adapters::ensure_opossum()?;
            let mut command = Command::new("node");
            command
                .current_dir(adapters::opossum_dir())
                .arg("bench/overhead.js")
                .args(bench_args);
            command
        }
        Some(Script::Pybreaker) => {
            let python = adapters::ensure_python_env()?;
            let mut command = Command::new(python);
            command
                .current_dir(adapters::pybreaker_dir())
                .arg("bench/overhead.py")
                .args(bench_args);
            command
        }
        Some(Script::TuneEval) => return tune_eval(bench_args, summary_file, reproduce),
    };
    command
        .env(row::SUMMARY_VAR, summary_file)
        .env(row::COMMAND_VAR, reproduce);
    if let (true, Some(dist)) = (bench.browser, dist) {
        command.env("FUSEBOX_DIST", dist);
        eprintln!("    with FUSEBOX_DIST={}", dist.display());
    }
    eprintln!("    $ {}", describe(&command));
    Ok(command.status().is_ok_and(|status| status.success()))
}

/// The shared development scenarios, beside the repository: `../shared/tuning/dev/*.jsonl`.
fn dev_scenarios() -> anyhow::Result<Vec<PathBuf>> {
    let dir = workspace_root()
        .parent()
        .context("the repository has a parent folder")?
        .join("shared/tuning/dev");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("no scenarios at {}", dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no *.jsonl scenario in {}", dir.display());
    }
    Ok(files)
}

/// `tune_eval`: the release binary built first (not timed), then one timed run of
/// `fusebox tune eval` over the development scenarios (or `args`), its wall time as the row.
fn tune_eval(
    args: &[String],
    summary_file: &std::path::Path,
    reproduce: &str,
) -> anyhow::Result<bool> {
    // Arguments naming files replace the development scenarios; the others are options
    // (`--hindsight`, `--length-variants N`).
    let (files, options): (Vec<&String>, Vec<&String>) = args
        .iter()
        .partition(|arg| std::path::Path::new(arg).is_file());
    let files: Vec<PathBuf> = if files.is_empty() {
        dev_scenarios()?
    } else {
        files.into_iter().map(PathBuf::from).collect()
    };
    let n_files = files.len();
    // The bench profile is the release profile under another name (the workspace sets neither):
    // built with it, the binary shares the build `cargo bench -p backend` makes for the server
    // benches instead of rebuilding the backend once per profile.
    step("building the release `fusebox` (bench profile)");
    run_command(Command::new(cargo()).current_dir(workspace_root()).args([
        "build",
        "--profile",
        "bench",
        "-p",
        "backend",
        "--bin",
        "fusebox",
    ]))?;
    let mut command = Command::new(target_dir().join("release").join("fusebox"));
    command
        .current_dir(workspace_root())
        .args(["tune", "eval"])
        .args(&files)
        .args(options);
    eprintln!("    $ {}", describe(&command));
    let started = Instant::now();
    let ok = command.status().is_ok_and(|status| status.success());
    let seconds = started.elapsed().as_secs_f64();
    if ok {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        row::Row::new(
            "tune_eval",
            format!("`fusebox tune eval`, {n_files} scenario files, wall time on {cores} cores"),
            seconds,
            "s",
            0,
        )
        .at_most(TUNE_EVAL_GOAL_S, 0)
        .spread_text("1 run")
        .command(reproduce)
        .record_to(summary_file);
    }
    Ok(ok)
}

fn parse(args: &[String]) -> anyhow::Result<Plan> {
    match args {
        [] => Ok(Plan::Run {
            only: None,
            args: vec![],
        }),
        [flag] if flag == "--list" => Ok(Plan::List),
        [flag, name, rest @ ..] if flag == "--only" => {
            let Some(bench) = BENCHES.iter().find(|bench| bench.name == name) else {
                bail!("no bench named `{name}`; there are: {}", names());
            };
            // `cargo xtask bench --only server -- quick`: a `--` may reach us or not,
            // depending on how cargo was called; the arguments after it go to the bench.
            let rest = match rest.split_first() {
                Some((first, after)) if first == "--" => after,
                _ => rest,
            };
            Ok(Plan::Run {
                only: Some(bench.name),
                args: rest.to_vec(),
            })
        }
        _ => bail!(
            "bench takes `--only NAME [-- ARGS]` or `--list`, got {args:?} (benches: {})",
            names()
        ),
    }
}

fn names() -> String {
    BENCHES
        .iter()
        .map(|bench| bench.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| arg.to_string()).collect()
    }

    #[test]
    fn arguments_pick_the_benches() {
        let check = |args: &[&str], want: Plan| assert_eq!(parse(&strings(args)).unwrap(), want);
        check(
            &[],
            Plan::Run {
                only: None,
                args: vec![],
            },
        );
        check(&["--list"], Plan::List);
        check(
            &["--only", "fleet"],
            Plan::Run {
                only: Some("fleet"),
                args: vec![],
            },
        );
        check(
            &["--only", "server", "--", "quick", "ingest"],
            Plan::Run {
                only: Some("server"),
                args: strings(&["quick", "ingest"]),
            },
        );
        check(
            &["--only", "soak", "--rounds", "3"],
            Plan::Run {
                only: Some("soak"),
                args: strings(&["--rounds", "3"]),
            },
        );
        assert!(parse(&strings(&["--only", "nope"])).is_err());
        assert!(parse(&strings(&["--only"])).is_err());
        assert!(parse(&strings(&["quick"])).is_err());
    }

    #[test]
    fn the_command_reproduces_the_settings_and_arguments() {
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect::<Vec<_>>()
                .into_iter()
        };
        assert_eq!(
            reproduce("fleet", &[], env(&[("PATH", "/bin")])),
            "cargo xtask bench --only fleet"
        );
        assert_eq!(
            reproduce(
                "fleet",
                &strings(&["quick", "ingest"]),
                env(&[
                    ("FUSEBOX_BENCH_ROUNDS", "1"),
                    ("FUSEBOX_BENCH_BREAKERS", "20"),
                    (row::SUMMARY_VAR, "x"),
                ])
            ),
            "FUSEBOX_BENCH_BREAKERS=20 FUSEBOX_BENCH_ROUNDS=1 cargo xtask bench --only fleet -- quick ingest"
        );
    }

    #[test]
    fn every_bench_binary_is_listed_once() {
        // Each top-level folder is one crate, named as its package is.
        let mut on_disk = Vec::new();
        for folder in std::fs::read_dir(workspace_root()).unwrap() {
            let folder = folder.unwrap().path();
            let Ok(benches) = std::fs::read_dir(folder.join("benches")) else {
                continue;
            };
            let package = folder.file_name().unwrap().to_string_lossy().into_owned();
            for entry in benches {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|ext| ext == "rs") {
                    let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                    on_disk.push(format!("{package}/{name}"));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = BENCHES
            .iter()
            .filter(|bench| bench.script.is_none())
            .map(|bench| format!("{}/{}", bench.package, bench.name))
            .collect();
        listed.sort();
        assert_eq!(listed, on_disk);
        assert!(
            BENCHES
                .iter()
                .any(|bench| bench.script == Some(Script::TuneEval))
        );
        for (script, path) in [
            (Script::Opossum, "adapters/opossum/bench/overhead.js"),
            (Script::Pybreaker, "adapters/pybreaker/bench/overhead.py"),
        ] {
            assert!(BENCHES.iter().any(|bench| bench.script == Some(script)));
            assert!(workspace_root().join(path).exists(), "{path} is missing");
        }
    }
}
