//! Auto mode: a breaker whose suggestions the server applies by itself, within guardrails,
//! first on one canary instance, rolled back when the canary trips where its peers do not.

use serde::{Deserialize, Serialize};

use crate::{BreakerConfig, ChangeStatus, StepAction};

/// An admin's auto-mode settings for one breaker. Off unless an admin switches it on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AutoTuneSettings {
    pub enabled: bool,
    /// Bounds no automatic change leaves.
    #[serde(default)]
    pub bounds: AutoTuneBounds,
    /// The largest relative change of any numeric parameter in one step: 0.5 lets a
    /// threshold of 0.4 move to 0.2–0.6 at most.
    #[serde(default = "default_max_step")]
    pub max_step: f64,
    /// The least time between two automatic changes of this breaker.
    #[serde(default = "default_cooldown_ms")]
    pub cooldown_ms: i64,
    /// How long a change runs on the canary instance before it reaches the others.
    #[serde(default = "default_canary_ms")]
    pub canary_ms: i64,
    /// The canary is rolled back when it makes more false trips than this: openings of the
    /// canary while no peer instance (on the previous config) opens within 30 s, or, with no
    /// peer, more openings than in the same time before the change.
    #[serde(default)]
    pub max_false_trips: u32,
    /// Suggestions with a lower confidence (0–1) are not applied.
    #[serde(default = "default_min_confidence")]
    pub min_confidence: f64,
    /// How many days of history the engine learns from (1–30).
    #[serde(default = "default_days")]
    pub days: i64,
}

/// Per-parameter bounds as `[lowest, highest]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AutoTuneBounds {
    #[serde(default = "default_rate_bounds")]
    pub failure_rate_threshold: [f64; 2],
    #[serde(default = "default_rate_bounds")]
    pub slow_call_rate_threshold: [f64; 2],
    #[serde(default = "default_minimum_calls")]
    pub minimum_calls: [u32; 2],
    #[serde(default = "default_wait_ms", deserialize_with = "crate::int64::pair")]
    pub wait_ms: [u64; 2],
    #[serde(default = "default_consecutive")]
    pub consecutive_failures: [u32; 2],
}

fn default_max_step() -> f64 {
    0.5
}
fn default_cooldown_ms() -> i64 {
    6 * 3_600_000
}
fn default_canary_ms() -> i64 {
    15 * 60_000
}
fn default_min_confidence() -> f64 {
    0.5
}
fn default_days() -> i64 {
    7
}
fn default_rate_bounds() -> [f64; 2] {
    [0.05, 0.9]
}
fn default_minimum_calls() -> [u32; 2] {
    [5, 1_000]
}
fn default_wait_ms() -> [u64; 2] {
    [1_000, 300_000]
}
fn default_consecutive() -> [u32; 2] {
    [3, 100]
}

impl Default for AutoTuneBounds {
    fn default() -> AutoTuneBounds {
        AutoTuneBounds {
            failure_rate_threshold: default_rate_bounds(),
            slow_call_rate_threshold: default_rate_bounds(),
            minimum_calls: default_minimum_calls(),
            wait_ms: default_wait_ms(),
            consecutive_failures: default_consecutive(),
        }
    }
}

impl Default for AutoTuneSettings {
    fn default() -> AutoTuneSettings {
        AutoTuneSettings {
            enabled: false,
            bounds: AutoTuneBounds::default(),
            max_step: default_max_step(),
            cooldown_ms: default_cooldown_ms(),
            canary_ms: default_canary_ms(),
            max_false_trips: 0,
            min_confidence: default_min_confidence(),
            days: default_days(),
        }
    }
}

impl AutoTuneSettings {
    /// The first setting that is out of range, as (JSON path, what is wrong).
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |path: &str, detail: String| Err((format!("$.{path}"), detail));
        if !(self.max_step > 0.0 && self.max_step <= 10.0) {
            return bad("max_step", "must be above 0 and at most 10".into());
        }
        if !(0..=30 * 86_400_000).contains(&self.cooldown_ms) {
            return bad("cooldown_ms", "must be between 0 and 30 days".into());
        }
        if !(1_000..=7 * 86_400_000).contains(&self.canary_ms) {
            return bad("canary_ms", "must be between 1 s and 7 days".into());
        }
        if !(0.0..=1.0).contains(&self.min_confidence) {
            return bad("min_confidence", "must be between 0 and 1".into());
        }
        if !(1..=30).contains(&self.days) {
            return bad("days", "must be between 1 and 30".into());
        }
        let b = &self.bounds;
        for (name, [lo, hi]) in [
            ("failure_rate_threshold", b.failure_rate_threshold),
            ("slow_call_rate_threshold", b.slow_call_rate_threshold),
        ] {
            if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
                return bad(
                    &format!("bounds.{name}"),
                    format!("must be [lowest, highest] within (0, 1], not [{lo}, {hi}]"),
                );
            }
        }
        for (name, [lo, hi]) in [
            ("minimum_calls", b.minimum_calls),
            ("consecutive_failures", b.consecutive_failures),
        ] {
            if !(lo >= 1 && lo <= hi) {
                return bad(
                    &format!("bounds.{name}"),
                    format!(
                        "must be [lowest, highest] with 1 ≤ lowest ≤ highest, not [{lo}, {hi}]"
                    ),
                );
            }
        }
        let [lo, hi] = b.wait_ms;
        if !(lo >= 100 && lo <= hi && hi <= 3_600_000) {
            return bad(
                "bounds.wait_ms",
                format!("must be [lowest, highest] within 100 ms – 1 h, not [{lo}, {hi}]"),
            );
        }
        Ok(())
    }
}

/// One automatic change: its canary, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoTuneChange {
    pub id: i64,
    /// The recommendation it applies.
    pub recommendation_id: i64,
    pub status: ChangeStatus,
    /// The instance that runs it first; none when the breaker had no instance to canary on.
    pub canary_instance: Option<String>,
    /// The other instances, on the previous config during the canary.
    pub peers: Vec<String>,
    /// The config version the change has (the canary runs it first).
    pub version: u64,
    /// The version it changes.
    pub base_version: u64,
    pub config: BreakerConfig,
    /// What the guardrails changed in the suggestion, one line each.
    pub clamped: Vec<String>,
    pub started_ms: i64,
    pub canary_ends_ms: i64,
    /// Openings of the canary instance since the start, and how many of them were false.
    pub canary_openings: u32,
    pub false_trips: u32,
    pub ended_ms: Option<i64>,
    /// Why it ended as it did.
    pub outcome: Option<String>,
}

/// A breaker's auto mode: settings, the change in progress and the latest ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoTuneView {
    pub service: String,
    pub breaker: String,
    pub settings: AutoTuneSettings,
    pub updated_by: Option<String>,
    pub updated_ms: Option<i64>,
    /// The change on its canary now, if any.
    pub canary: Option<AutoTuneChange>,
    /// Newest first, at most 20.
    pub changes: Vec<AutoTuneChange>,
}

/// What one auto-mode step did for a breaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AutoTuneStep {
    pub action: StepAction,
    pub detail: String,
    pub change: Option<AutoTuneChange>,
}
