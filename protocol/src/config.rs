//! Breaker configs as the server pushes them, and what instances report back about them.
//!
//! Proposed wire shape (the breaker crate's config subscriber speaks it):
//! - `GET /api/v1/config/{service}/{breaker}?wait_for_version_above=N&timeout_ms=T&instance=I`
//!   is a long poll (`instance` names the waiting instance, for per-instance sync status):
//!   `200` with a [`BreakerConfig`] as soon as the breaker's config has a version above `N`
//!   (at once if it already has), `204 No Content` when `T` ms pass without one, `404` when
//!   the server holds no config for that breaker.
//! - `POST /api/v1/config-status` with a [`ConfigStatusReport`]: which version each breaker
//!   of an instance runs, and why it refused a pushed config. Answered with `204`.
//!   The running version is also in every `Aggregate::config_version`.

use serde::{Deserialize, Serialize};

/// A breaker's configuration. Rates are 0–1; durations are milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    #[serde(deserialize_with = "crate::int64::u64")]
    pub version: u64,
    #[serde(default)]
    pub failure_rate_threshold: Option<f64>,
    #[serde(default)]
    pub slow_call_rate_threshold: Option<f64>,
    /// A call at least this long is slow; 60 000 when absent.
    #[serde(default, deserialize_with = "crate::int64::option")]
    pub slow_call_duration_ms: Option<u64>,
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    pub window: WindowConfig,
    pub minimum_calls: u32,
    pub wait: WaitConfig,
    pub half_open_probes: u32,
    pub half_open_successes: u32,
    /// How Half-Open judges its probes; `successes` when absent (and then not written, so
    /// breakers that predate the field read every config that does not use it).
    #[serde(default, skip_serializing_if = "HalfOpenRule::is_successes")]
    pub half_open_rule: HalfOpenRule,
    #[serde(default, deserialize_with = "crate::int64::option")]
    pub half_open_max_wait_ms: Option<u64>,
    #[serde(default, deserialize_with = "crate::int64::option")]
    pub call_timeout_ms: Option<u64>,
    /// A manual state to hold; absent means automatic.
    #[serde(default)]
    pub mode: Option<BreakerMode>,
}

/// Which calls rates are judged over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowConfig {
    /// The last `calls` calls.
    Count { calls: u32 },
    /// The calls of the last `seconds` seconds.
    Time { seconds: u32 },
}

/// How long a breaker stays Open.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WaitConfig {
    Fixed {
        #[serde(deserialize_with = "crate::int64::u64")]
        ms: u64,
    },
    /// `initial_ms × multiplier^(n-1)` for the n-th Open in a row, spread by ± `jitter`
    /// (0–1), capped at `max_ms`.
    Exponential {
        #[serde(deserialize_with = "crate::int64::u64")]
        initial_ms: u64,
        multiplier: f64,
        #[serde(deserialize_with = "crate::int64::u64")]
        max_ms: u64,
        #[serde(default)]
        jitter: f64,
    },
}

/// How Half-Open decides from its probes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HalfOpenRule {
    /// Close once `half_open_successes` probes succeeded; a failed or slow probe opens again.
    #[default]
    Successes,
    /// Wait for all `half_open_probes` probes; close when their failure and slow-call rates are
    /// below the thresholds (resilience4j's rule), else open again.
    Rates,
}

impl HalfOpenRule {
    pub fn is_successes(&self) -> bool {
        *self == HalfOpenRule::Successes
    }
}

/// Who decides a breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreakerMode {
    Automatic,
    ForcedOpen,
    Disabled,
    /// Judge and report, never reject: a dry run.
    MetricsOnly,
}

/// One instance's config status, per breaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfigStatusReport {
    pub service: String,
    pub instance: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub breakers: Vec<ConfigStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfigStatus {
    pub breaker: String,
    /// The config version the breaker runs.
    #[serde(deserialize_with = "crate::int64::u64")]
    pub running_version: u64,
    /// The last pushed config it refused, if it refused the latest one.
    #[serde(default)]
    pub refused: Option<ConfigRefusal>,
}

/// Why an instance refused a pushed config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfigRefusal {
    #[serde(deserialize_with = "crate::int64::u64")]
    pub version: u64,
    /// The invalid field, e.g. `failure_rate_threshold`.
    pub field: String,
    /// The rule it breaks, in a sentence.
    pub rule: String,
}
