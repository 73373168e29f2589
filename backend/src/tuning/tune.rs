//! `fusebox tune`: the adaptive engine from the command line.
//!
//! `fusebox tune eval FILE... [--json]` reads labelled scenario files (the format of
//! `shared/tuning/SCENARIOS.md`), tunes on the first half of each with the labels hidden and
//! scores the library defaults, the tuned config and the oracle on the second half. The
//! engine does the work; this module only reads the files and prints.
//!
//! `fusebox tune --breaker NAME [--service S] [--days N] [--budget-ms MS]` runs the engine
//! over that breaker's stored history within a time budget (20 s by default) and stores the
//! suggestion for review (see [`crate::tuning::recommend`]). `eval` has no budget (it takes minutes
//! by design); Ctrl-C ends either.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

/// `fusebox tune …`: `eval` on scenario files, or `--breaker NAME` against the live store.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TuneCommand {
    #[command(subcommand)]
    pub command: Option<TuneSubcommand>,
    /// Suggest thresholds for this breaker from its stored history (and store the suggestion
    /// for review in the dashboard and the API).
    #[arg(long)]
    pub breaker: Option<String>,
    /// The breaker's service; needed only when several services have a breaker of that name.
    #[arg(long)]
    pub service: Option<String>,
    /// Days of history to learn from.
    #[arg(long, default_value_t = crate::tuning::recommend::DEFAULT_DAYS)]
    pub days: i64,
    /// The engine's time budget, in milliseconds.
    #[arg(long, default_value_t = crate::tuning::engine_run::DEFAULT_BUDGET.as_millis() as u64)]
    pub budget_ms: u64,
    /// The database: a SQLite file's path or URL (sqlite://fusebox.db), or a PostgreSQL URL
    /// (postgres://user@host/fusebox).
    #[arg(
        long = "database",
        default_value = "sqlite://fusebox.db",
        env = "DATABASE_URL"
    )]
    pub database: String,
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
    /// Also score on N variants of each scenario whose scored incidents last longer (spread
    /// over a minute), and print mean costs: one incident decides a wait by where its last
    /// probe happens to land. Tables only; the oracle is searched again per variant.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub length_variants: usize,
    /// Also search the best static config with the truth on the training half and score it
    /// ("hindsight"): what perfect labels would reach, so hindsight/oracle is the part of
    /// tuned/oracle no tuner of static thresholds closes. As slow again as the oracle.
    #[arg(long)]
    pub hindsight: bool,
    /// Also run the tuner with the truth on the training half as its labels ("labelled"):
    /// tuned/labelled is the part of the tuner's cost its anomaly detection makes, labelled
    /// against hindsight the part its margins make. As slow again as the tuner.
    #[arg(long)]
    pub labelled: bool,
    /// Also search the best static config within the tuner's safety bounds with the truth
    /// on the scored half ("bounded"): bounded/oracle is what the bounds cost, tuned/bounded
    /// what the tuner's labels, margins and search cost within them. As slow again as the
    /// oracle.
    #[arg(long)]
    pub bounded: bool,
    /// Also search the oracle again, ruling out every config that trips falsely on the
    /// scored half when each second's calls come in a random order ("safe-oracle"): the
    /// even layout of the scoring never lets failures bunch, and the oracle may pick a rule
    /// that trips on noise as soon as they do. safe-oracle/oracle is how much of the oracle's
    /// cost rests on that, tuned/safe-oracle the tuner against a yardstick as safe as it is.
    /// Slower than the oracle.
    #[arg(long)]
    pub safe_oracle: bool,
    /// Also score every config with each scored incident's tail (the good calls refused
    /// from its end to the next probe) at its expected length, half the probe cycle it ended
    /// in, and search the oracle so ("expected-oracle"): the oracle picks, among thousands of
    /// configs, the one whose probes happened to land just after the few scored incidents
    /// ended; tuned/expected-oracle, both so scored, is the part of tuned/oracle that is not
    /// that luck. As slow again as the oracle.
    #[arg(long)]
    pub expected_tails: bool,
    /// Also replay every config with each step's calls in N random orders and print its
    /// median cost beside tuned/oracle and tuned/best default so replayed: the scoring's even
    /// layout decides alike for every incident whether the probes meet one of the usual
    /// failures, and the oracle, cheapest on that layout, may owe its lead to it. No search
    /// runs in random order (the oracle's config is the one chosen on the even layout), so
    /// tuned/oracle there is a lower bound. 0 (the default) does not.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub random_orders: usize,
}

/// Runs a `fusebox tune` command.
pub async fn run(cmd: TuneCommand) -> anyhow::Result<()> {
    match (cmd.command, cmd.breaker) {
        (Some(TuneSubcommand::Eval(args)), _) => tokio::task::spawn_blocking(move || eval(args))
            .await
            .context("the tuner stopped")?,
        (None, Some(breaker)) => {
            let budget = Duration::from_millis(cmd.budget_ms.max(1));
            live(
                &cmd.database,
                cmd.service.as_deref(),
                &breaker,
                cmd.days,
                budget,
            )
            .await
        }
        (None, None) => anyhow::bail!(
            "say what to tune: `fusebox tune --breaker NAME` or `fusebox tune eval FILE...`"
        ),
    }
}

/// The engine against the live store: prints the suggestion with its evidence and stores it.
async fn live(
    database: &str,
    service: Option<&str>,
    breaker: &str,
    days: i64,
    budget: Duration,
) -> anyhow::Result<()> {
    anyhow::ensure!((1..=30).contains(&days), "--days must be between 1 and 30");
    let store = crate::store::Store::open(&crate::store::database_url(database)).await?;
    let services = store.services_with_breaker(breaker, service).await?;
    let service = match services.as_slice() {
        [] => anyhow::bail!(
            "no breaker named {breaker:?}{}",
            service
                .map(|s| format!(" in service {s:?}"))
                .unwrap_or_default()
        ),
        [one] => one.clone(),
        many => anyhow::bail!(
            "several services have a breaker named {breaker:?} ({}); add --service",
            many.join(", ")
        ),
    };
    // Ctrl-C ends the process, and the run with it.
    let (job, _cancel_on_drop) = crate::tuning::engine_run::EngineRuns::new(budget, None).job();
    let rec = crate::tuning::recommend::recommend(
        &store,
        &service,
        breaker,
        (days, crate::time::Clock::system().now_ms()),
        &job,
    )
    .await
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    let config = |c: &protocol::BreakerConfig| serde_json::to_string(c).unwrap_or_default();
    println!(
        "recommendation {} for {service}/{breaker} (confidence {:.2})",
        rec.id, rec.confidence
    );
    println!("  {}", rec.summary);
    println!(
        "  current   (v{}): {}",
        rec.base_version,
        config(&rec.current)
    );
    println!("  suggested       : {}", config(&rec.suggested));
    for (name, b) in [
        ("current", &rec.current_backtest),
        ("suggested", &rec.suggested_backtest),
    ] {
        println!(
            "  back-test {name:<9} trips {:>3}  false {:>3}  caught {}/{}  lost {:>7}  wasted {:>7}  cost {:>9.1}",
            b.trips, b.false_trips, b.detected, b.anomalies, b.lost_good, b.wasted, b.cost
        );
    }
    for warning in &rec.warnings {
        println!("  warning: {warning}");
    }
    println!(
        "  accept it in the dashboard or with POST /api/v1/recommendations/{}/accept (admin)",
        rec.id
    );
    Ok(())
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        files.push((path.display().to_string(), text));
    }
    let options = engine::eval::EvalOptions {
        length_variants: args.length_variants,
        hindsight: args.hindsight,
        labelled: args.labelled,
        bounded: args.bounded,
        safe_oracle: args.safe_oracle,
        expected_tails: args.expected_tails,
        random_orders: args.random_orders,
        ..engine::eval::EvalOptions::default()
    };
    let (report, warnings) = engine::eval::evaluate(&files, &options);
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
