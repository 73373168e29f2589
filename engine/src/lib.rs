//! The adaptive engine: learns each breaker's normal behaviour from its history and proposes
//! thresholds with the evidence for them. No I/O, deterministic.
//!
//! Brief overview:
//! - [`history::History`]: per-window counts of one breaker (calls, failures, rejected,
//!   latency histogram), built by the backend from its rollups or parsed from a scenario file
//!   by [`scenario::parse`] (which keeps the ground truth apart, in [`scenario::Truth`]).
//! - [`features::features`]: volume, failure rate, slow-call rates at several cut-offs, log
//!   p50/p99 and rejected share per window, judged over at least a minimum of calls, robustly
//!   scaled.
//! - [`anomaly::detect`]: a label and a score for every window, from robust statistics and
//!   small KMeans clusters (linfa), which stay right when the history holds incidents.
//! - [`replay::replay`]: drives `breaker::Machine`, the state machine every breaker runs,
//!   through the history in virtual time; [`replay::score`] gives lost and wasted calls,
//!   recall, detection delay and false trips.
//! - [`search::Search`]: coordinate descent over [`search::Grid`], replaying each candidate
//!   against the labels plus injected incidents.
//! - [`suggest::suggest`]: the whole pipeline for one breaker, giving a
//!   [`suggest::Suggestion`] with current and suggested config, their back-tests, the
//!   anomalous periods and a confidence; [`explain`] says in sentences what it changes and
//!   why, and lists the doubts that mark it low confidence.
//! - [`eval::evaluate`]: the honest protocol of `shared/tuning/SCENARIOS.md` (tune on the
//!   first half, score on the second beside the library defaults of [`defaults`] and the
//!   oracle), as a [`eval::Report`] with a table and the exact JSON.
//! - [`stop::Stop`]: a cooperative stop (cancelled, out of time, shutting down) checked at
//!   coarse points; a stopped run returns early with [`Warning::Stopped`].
//!
//! Work grows with the history's length, not its call counts: a replay samples at most
//! [`replay::MAX_CALLS_PER_STEP`] calls of a step.
//!
//! Functions that cannot fail for lack of I/O return their result with a `Vec<Warning>`.

pub mod anomaly;
pub mod defaults;
pub mod eval;
pub mod explain;
pub mod features;
pub mod history;
pub mod replay;
pub mod scenario;
pub mod search;
pub mod stop;
pub mod suggest;
pub mod throttle;

/// Something the caller should know about a result, which did not stop it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Warning {
    #[error("the history holds no calls; the current config is kept")]
    EmptyHistory,
    #[error("only {n_calls} calls in the history; thresholds rest on little evidence")]
    LowVolume { n_calls: u64 },
    #[error("no anomalous period in the history; detection is judged on injected incidents only")]
    NoAnomalies,
    #[error("{file}: {message}")]
    BadScenario { file: String, message: String },
    #[error("stopped early: {reason}; no suggestion was made")]
    Stopped { reason: stop::StopReason },
    #[error("{scenario}: {warning}")]
    InScenario {
        scenario: String,
        warning: Box<Warning>,
    },
}
