//! `fusebox tune`: the adaptive engine from the command line.
//!
//! `fusebox tune eval FILE... [--json]` reads labelled scenario files (the format of
//! `shared/tuning/SCENARIOS.md`), tunes on the first half of each with the labels hidden and
//! scores the library defaults, the tuned config and the oracle on the second half. The
//! engine does the work; this module only reads the files and prints.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

/// `fusebox tune …`
#[derive(Debug, Args)]
pub struct TuneCommand {
    #[command(subcommand)]
    pub command: TuneSubcommand,
}

#[derive(Debug, Subcommand)]
pub enum TuneSubcommand {
    /// Tune on the first half of each scenario and score every config on the second half.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Scenario files (JSON Lines, see shared/tuning/SCENARIOS.md).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `fusebox tune` command.
pub fn run(cmd: TuneCommand) -> anyhow::Result<()> {
    match cmd.command {
        TuneSubcommand::Eval(args) => eval(args),
    }
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        files.push((path.display().to_string(), text));
    }
    let (report, warnings) = engine::eval::evaluate(&files, &engine::eval::EvalOptions::default());
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    if report.scenarios.is_empty() {
        anyhow::bail!("no scenario could be read");
    }
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}
