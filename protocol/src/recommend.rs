//! What the server shows about the adaptive engine's suggestions and config lint.

use serde::{Deserialize, Serialize};

use crate::{BreakerConfig, RecommendationStatus};

/// How a config would have done over the history the engine learned from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BacktestSummary {
    /// Closed→Open transitions.
    pub trips: u32,
    /// Trips outside anomalous periods.
    pub false_trips: u32,
    /// Anomalous periods during which it opened within 60 s, of `anomalies`.
    pub detected: u32,
    pub anomalies: u32,
    pub detection_delay_median_ms: Option<u64>,
    /// Calls it would have refused outside anomalous periods.
    pub lost_good: u64,
    /// Calls it would have let through during anomalous periods.
    pub wasted: u64,
    /// `lost_good + 0.2 × wasted`.
    pub cost: f64,
}

/// A stretch of history the engine found anomalous.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AnomalyPeriod {
    pub start_ms: i64,
    pub end_ms: i64,
    /// What was abnormal, e.g. `failures` or `latency`.
    pub kind: String,
}

/// A suggested config for one breaker, with its evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recommendation {
    pub id: i64,
    pub service: String,
    pub breaker: String,
    pub made_ms: i64,
    pub status: RecommendationStatus,
    /// The history learned from.
    pub from_ms: i64,
    pub to_ms: i64,
    /// The server's config version it was made against (0: none stored).
    pub base_version: u64,
    pub current: BreakerConfig,
    pub suggested: BreakerConfig,
    pub current_backtest: BacktestSummary,
    pub suggested_backtest: BacktestSummary,
    pub anomalies: Vec<AnomalyPeriod>,
    /// 0–1.
    pub confidence: f64,
    /// The evidence in a sentence.
    pub summary: String,
    /// What changes and why, in sentences a person can check against the history.
    #[serde(default)]
    pub explanation: Vec<String>,
    /// Why the suggestion should not be trusted without a look (empty when there is no doubt);
    /// auto mode applies none that has any, and its confidence is at most 0.3.
    #[serde(default)]
    pub doubts: Vec<String>,
    pub warnings: Vec<String>,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_ms: Option<i64>,
    /// The config version accepting it created.
    #[serde(default)]
    pub applied_version: Option<u64>,
    /// Both back-tests over time, for the before/after chart.
    #[serde(default)]
    pub replay: Option<ReplayTrace>,
}

/// The back-tests of a recommendation over time: the history's failure rate, the anomaly
/// labels, and the share of calls each config refused, per point (starting at `t_ms`, ms since
/// the epoch, and `step_ms` long; a history with gaps has gaps between points). At most 720
/// points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayTrace {
    pub t_ms: Vec<i64>,
    pub step_ms: i64,
    pub failure_rate: Vec<Option<f32>>,
    pub current_refused: Vec<f32>,
    pub suggested_refused: Vec<f32>,
    pub anomalous: Vec<bool>,
}

/// Something wrong with a breaker's current config, judged against its history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LintFinding {
    /// `minimum_calls_never_reached`, `threshold_below_normal_failure_rate`,
    /// `wait_shorter_than_report_interval` or `window_shorter_than_call_timeout`.
    pub rule: String,
    pub detail: String,
}
