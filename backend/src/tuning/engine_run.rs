//! Engine runs: the long computations (recommendations, auto mode's engine runs, `fusebox tune
//! --breaker`) run on a blocking thread with an `engine::stop::Stop` that fires when
//!
//! - the request that asked for it goes away (the handler's future is dropped with its
//!   [`CancelOnDrop`] guard: the client hung up, or auto mode's task was aborted),
//! - its time budget runs out (`[engine] budget_ms` in the settings file, 20 s by default),
//! - the server stops ([`EngineRuns::shut_down`], called at the start of a graceful shutdown,
//!   so no blocking thread keeps the runtime from ending).
//!
//! The engine checks the stop at coarse points and returns early; a run cut short by its
//! budget answers 503 `engine_budget_exceeded`. Every run is counted in `/metrics` by outcome
//! (`fusebox_engine_runs_total{outcome="completed|budget|cancelled|shutdown"}`), with the
//! replays and replayed calls it cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use engine::stop::{Stop, StopReason};

use crate::error::AppError;
use crate::metrics::Metrics;

/// The time budget of one engine run unless the settings say otherwise.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(20);

/// The server-wide side of engine runs: the budget, the shutdown flag and the metrics.
#[derive(Clone)]
pub struct EngineRuns {
    budget: Duration,
    shutdown: Arc<AtomicBool>,
    metrics: Option<Arc<Metrics>>,
}

/// One run's stop, budget and metrics.
pub struct Job {
    stop: Stop,
    budget: Duration,
    metrics: Option<Arc<Metrics>>,
}

/// Cancels its job when dropped: hold it in the future that waits for the run.
pub struct CancelOnDrop(Stop);

/// What a finished run cost, for `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunCost {
    pub n_replays: u64,
    pub replayed_calls: u64,
}

// === impl EngineRuns ===

impl EngineRuns {
    pub fn new(budget: Duration, metrics: Option<Arc<Metrics>>) -> EngineRuns {
        EngineRuns {
            budget,
            shutdown: Arc::default(),
            metrics,
        }
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Stops every run in progress and every later one, for [`StopReason::Shutdown`].
    pub fn shut_down(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }

    /// A job whose budget starts now, and the guard that cancels it when dropped.
    pub fn job(&self) -> (Job, CancelOnDrop) {
        // Shutdown first: a run aborted because the server stops counts as `shutdown`.
        let stop = Stop::default()
            .on_flag(self.shutdown.clone(), StopReason::Shutdown)
            .on_flag(Arc::default(), StopReason::Cancelled)
            .with_deadline(Instant::now() + self.budget);
        let guard = CancelOnDrop(stop.clone());
        (
            Job {
                stop,
                budget: self.budget,
                metrics: self.metrics.clone(),
            },
            guard,
        )
    }
}

// === impl Job ===

impl Job {
    /// Runs `work` on a blocking thread with this job's stop. `work` returns its result and
    /// cost, or why it stopped. The outcome is counted when the work ends, even when nobody
    /// waits for it any more.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Stop) -> Result<(T, RunCost), StopReason> + Send + 'static,
    ) -> Result<T, AppError> {
        let stop = self.stop.clone();
        let metrics = self.metrics.clone();
        if let Some(metrics) = &metrics {
            metrics.engine_run_started();
        }
        let out = tokio::task::spawn_blocking(move || {
            let out = work(&stop);
            if let Some(metrics) = &metrics {
                let (outcome, cost) = match &out {
                    Ok((_, cost)) => ("completed", *cost),
                    Err(reason) => (reason.as_str(), RunCost::default()),
                };
                metrics.engine_run_ended(outcome, cost.n_replays, cost.replayed_calls);
            }
            out
        })
        .await
        .map_err(anyhow::Error::from)?;
        match out {
            Ok((value, _)) => Ok(value),
            Err(StopReason::Budget) => Err(AppError::EngineBudget {
                budget_ms: self.budget.as_millis() as u64,
            }),
            Err(reason) => Err(AppError::Overloaded {
                detail: format!("the engine run stopped early: {reason}"),
                retry_after_s: 5,
            }),
        }
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
