//! Wire types of fusebox: what a breaker's reporter sends, what the server answers and streams.
//!
//! Brief overview:
//! - [`IngestBatch`]: one numbered batch from one service instance, holding per-interval
//!   [`Aggregate`]s and every [`Transition`].
//! - [`BreakerSummary`]: the server's view of one breaker across its instances.
//! - [`StreamEvent`]: what the live stream (`/api/v1/stream`, Server-Sent Events) carries.
//! - [`SeriesPoint`]: one step of a breaker's time series.
//!
//! These are the only types that cross the wire; changes stay backward compatible
//! (new fields get `#[serde(default)]`). Request types refuse unknown fields (a misspelt field
//! must not be dropped silently), so a server is upgraded before the clients that send a new
//! field. Integers are `u64` in Rust but at most `i64::MAX` on the wire (the OpenAPI document
//! states int64): decoding refuses more.

use serde::{Deserialize, Serialize};

mod alerts;
mod auto;
mod calls;
#[cfg(feature = "compact")]
pub mod compact;
mod config;
mod control;
mod histogram;
mod int64;
mod recommend;
mod status;
mod validate;

pub use alerts::{
    Alert, AlertBreaker, AlertChannel, AlertChannelKind, AlertChannelView, AlertDelivery,
    AlertEventRecord, AlertNotice, AlertRule, AlertRuleKind, AlertRuleView, SilenceRequest,
};
pub use auto::{AutoTuneBounds, AutoTuneChange, AutoTuneSettings, AutoTuneStep, AutoTuneView};
pub use calls::{CallBatch, CallEvent, CallOutcome, CallTransition};
pub use config::{
    BreakerConfig, BreakerMode, ConfigRefusal, ConfigStatus, ConfigStatusReport, HalfOpenRule,
    WaitConfig, WindowConfig,
};
pub use control::{
    AccessRole, AuditEntry, ConfigChange, ConfigView, ControlRequest, InstanceSync, Me,
    RestoreRequest, SignInRequest, StoredConfig,
};
pub use histogram::{LATENCY_BOUNDS_MS, LatencyHistogram};
pub use int64::MAX as MAX_INT64;
pub use recommend::{AnomalyPeriod, BacktestSummary, LintFinding, Recommendation, ReplayTrace};
pub use status::{AlertStatus, ChangeStatus, RecommendationStatus, StepAction};
pub use validate::{
    BatchLimits, MAX_NAME_LEN, TRIGGER_KINDS, ValidationError, validate_batch, validate_batch_with,
    validate_name,
};

/// The state of a circuit breaker.
///
/// - `Closed`: calls flow and outcomes are judged.
/// - `Open`: calls are rejected without reaching the dependency.
/// - `HalfOpen`: a few probe calls are let through to test whether the dependency recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        match text {
            "closed" => Some(State::Closed),
            "open" => Some(State::Open),
            "half_open" => Some(State::HalfOpen),
            _ => None,
        }
    }

    /// How bad a state is, for picking the worst state of a breaker across its instances.
    pub fn severity(self) -> u8 {
        match self {
            State::Closed => 0,
            State::HalfOpen => 1,
            State::Open => 2,
        }
    }
}

/// Counts of call outcomes in one interval.
///
/// `slow` counts calls slower than the slow-call threshold whatever their outcome,
/// so it overlaps with `success` and `failure`. `rejected` calls never reached the dependency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OutcomeCounts {
    #[serde(default, deserialize_with = "int64::u64")]
    pub success: u64,
    #[serde(default, deserialize_with = "int64::u64")]
    pub failure: u64,
    #[serde(default, deserialize_with = "int64::u64")]
    pub timeout: u64,
    #[serde(default, deserialize_with = "int64::u64")]
    pub rejected: u64,
    #[serde(default, deserialize_with = "int64::u64")]
    pub slow: u64,
    #[serde(default, deserialize_with = "int64::u64")]
    pub ignored: u64,
}

/// The largest count a sum holds: counts are int64 on the wire and in the store, so sums
/// saturate here instead of wrapping (or panicking) when many large counts add up.
pub const MAX_COUNT: u64 = i64::MAX as u64;

/// `a + b`, saturating at [`MAX_COUNT`].
pub fn add_counts(a: u64, b: u64) -> u64 {
    a.saturating_add(b).min(MAX_COUNT)
}

impl OutcomeCounts {
    // Sums saturate: validated input keeps them far from `u64::MAX`, and a saturated count
    // is a visibly wrong number where a wrapped one would be a plausible small one.

    /// Calls that reached the dependency and were judged (success, failure or timeout).
    pub fn judged(&self) -> u64 {
        self.success
            .saturating_add(self.failure)
            .saturating_add(self.timeout)
    }

    /// Calls that failed, timeouts included.
    pub fn failed(&self) -> u64 {
        self.failure.saturating_add(self.timeout)
    }

    /// Calls that ran: judged or ignored (rejected calls never reached the dependency).
    pub fn ran(&self) -> u64 {
        self.judged().saturating_add(self.ignored)
    }

    /// Every call, rejected ones included.
    pub fn calls(&self) -> u64 {
        self.ran().saturating_add(self.rejected)
    }

    /// Adds `other`'s counts, each saturating at [`MAX_COUNT`].
    pub fn merge(&mut self, other: &OutcomeCounts) {
        self.success = self.success.saturating_add(other.success);
        self.failure = self.failure.saturating_add(other.failure);
        self.timeout = self.timeout.saturating_add(other.timeout);
        self.rejected = self.rejected.saturating_add(other.rejected);
        self.slow = self.slow.saturating_add(other.slow);
        self.ignored = self.ignored.saturating_add(other.ignored);
    }
}

/// What one breaker saw during one reporting interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    pub breaker: String,
    /// Interval start, milliseconds since the Unix epoch.
    pub start_ms: i64,
    /// Interval length in milliseconds.
    pub interval_ms: u32,
    pub counts: OutcomeCounts,
    #[serde(default)]
    pub latency: LatencyHistogram,
    /// The breaker's state at the end of the interval.
    pub state: State,
    /// The failure rate (0–1) the breaker currently judges over its window, if it has enough calls.
    #[serde(default)]
    pub failure_rate: Option<f64>,
    /// The failure-rate threshold (0–1) the breaker trips at.
    #[serde(default)]
    pub failure_rate_threshold: Option<f64>,
    #[serde(default, deserialize_with = "int64::u64")]
    pub config_version: u64,
}

/// Why a breaker changed state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// What was judged: `failure_rate`, `slow_call_rate`, `consecutive_failures`,
    /// `wait_elapsed`, `probe_succeeded`, `probe_failed`, `half_open_timeout` or `manual`
    /// ([`TRIGGER_KINDS`]; `validate_batch` refuses any other).
    pub kind: String,
    /// The value that crossed the threshold (a rate 0–1 or a count).
    pub value: f64,
    /// The threshold it was judged against.
    pub threshold: f64,
}

/// One state transition of one breaker on one instance. Never sampled, never dropped silently.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub breaker: String,
    /// When it happened, milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub from: State,
    pub to: State,
    #[serde(default)]
    pub trigger: Option<Trigger>,
    #[serde(default, deserialize_with = "int64::u64")]
    pub config_version: u64,
}

/// Counters of what a reporter had to drop or merge while the server was unreachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DropCounters {
    /// Aggregates merged into a neighbour to save memory (their counts are kept).
    #[serde(default, deserialize_with = "int64::u64")]
    pub aggregates_coalesced: u64,
    /// Aggregates dropped entirely (their counts are lost).
    #[serde(default, deserialize_with = "int64::u64")]
    pub aggregates_dropped: u64,
    /// Transitions dropped (only when the buffer holds nothing but transitions).
    #[serde(default, deserialize_with = "int64::u64")]
    pub transitions_dropped: u64,
}

/// One numbered batch from one service instance.
///
/// `seq` increases by one per batch of that instance; the server stores a retried batch
/// (same `service`, `instance`, `seq`) once and acknowledges it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IngestBatch {
    pub service: String,
    pub instance: String,
    #[serde(deserialize_with = "int64::u64")]
    pub seq: u64,
    /// When the reporter sent it, milliseconds since the Unix epoch.
    pub sent_at_ms: i64,
    #[serde(default)]
    pub aggregates: Vec<Aggregate>,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    #[serde(default)]
    pub dropped: DropCounters,
}

/// The server's answer to an ingested batch, sent only once the batch is committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestAck {
    pub seq: u64,
    /// True when this batch had been stored before; nothing was written again.
    pub duplicate: bool,
}

/// An error body, for every 4xx and 5xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A short machine-readable kind, e.g. `invalid_batch`.
    pub error: String,
    /// What is wrong, in a sentence.
    pub detail: String,
    /// Where: a JSON path into the request body (`$.aggregates[3].breaker`), or the request path.
    #[serde(default)]
    pub path: Option<String>,
}

/// One instance's view of a breaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InstanceState {
    pub instance: String,
    pub state: State,
    /// When the instance entered `state`, ms since the epoch.
    pub since_ms: i64,
    pub config_version: u64,
}

/// The server's view of one breaker across all its instances.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreakerSummary {
    pub service: String,
    pub breaker: String,
    /// The worst state over the instances (Open over Half-Open over Closed).
    pub state: State,
    /// When the breaker entered its current worst state on the earliest instance, ms since the epoch.
    pub since_ms: i64,
    pub instances: Vec<InstanceState>,
    pub open_instances: u32,
    /// Failure rate (0–1) over the last reported interval, across instances; `None` without calls.
    pub failure_rate: Option<f64>,
    pub failure_rate_threshold: Option<f64>,
    /// Calls per second over the last reported interval, across instances.
    pub calls_per_s: f64,
    /// Slow calls / judged calls over the last reported interval, across instances.
    #[serde(default)]
    pub slow_call_rate: Option<f64>,
    /// p99 latency (a bucket bound, ms) over the last reported interval, across instances.
    #[serde(default)]
    pub p99_ms: Option<f64>,
    /// The end of the last interval reported, ms since the epoch.
    pub updated_ms: i64,
    /// What tripped the breaker and when: the newest Closed → Open transition among the
    /// instances not Closed now. No calls are judged while Open, so this is the failure rate
    /// (or other trigger) a tile can show. `None` while Closed everywhere, or when unknown.
    #[serde(default)]
    pub last_trip: Option<Trip>,
}

/// A Closed → Open transition of one instance: when, and the value that crossed the threshold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trip {
    pub instance: String,
    /// ms since the epoch.
    pub at_ms: i64,
    pub trigger: Trigger,
}

/// A transition as the server stores and streams it: with the service and instance it came from.
///
/// On the wire the transition's fields sit beside `id`, `service` and `instance`
/// ([`TransitionRecordWire`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "TransitionRecordWire", into = "TransitionRecordWire")]
pub struct TransitionRecord {
    /// Server-assigned, strictly increasing; the SSE event id.
    pub id: i64,
    pub service: String,
    pub instance: String,
    pub transition: Transition,
}

/// The wire shape of a [`TransitionRecord`], spelled out field by field. `#[serde(flatten)]`
/// would give the same JSON, but its OpenAPI schema would be `allOf` the record's fields and a
/// `Transition` that refuses any other property (`deny_unknown_fields`), which no record meets.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
struct TransitionRecordWire {
    /// Server-assigned, strictly increasing; the SSE event id.
    id: i64,
    service: String,
    instance: String,
    breaker: String,
    /// When it happened, milliseconds since the Unix epoch.
    at_ms: i64,
    from: State,
    to: State,
    #[serde(default)]
    trigger: Option<Trigger>,
    #[serde(default)]
    config_version: u64,
}

impl From<TransitionRecordWire> for TransitionRecord {
    fn from(wire: TransitionRecordWire) -> TransitionRecord {
        TransitionRecord {
            id: wire.id,
            service: wire.service,
            instance: wire.instance,
            transition: Transition {
                breaker: wire.breaker,
                at_ms: wire.at_ms,
                from: wire.from,
                to: wire.to,
                trigger: wire.trigger,
                config_version: wire.config_version,
            },
        }
    }
}

impl From<TransitionRecord> for TransitionRecordWire {
    fn from(record: TransitionRecord) -> TransitionRecordWire {
        let Transition {
            breaker,
            at_ms,
            from,
            to,
            trigger,
            config_version,
        } = record.transition;
        TransitionRecordWire {
            id: record.id,
            service: record.service,
            instance: record.instance,
            breaker,
            at_ms,
            from,
            to,
            trigger,
            config_version,
        }
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for TransitionRecord {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <TransitionRecordWire as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for TransitionRecord {
    fn name() -> std::borrow::Cow<'static, str> {
        "TransitionRecord".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <TransitionRecordWire as utoipa::ToSchema>::schemas(schemas);
    }
}

/// What the live stream carries. Each SSE message's `event:` is the variant name in snake_case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A breaker changed state on one instance.
    Transition(TransitionRecord),
    /// A breaker's updated summary: at most twice a second while new aggregates arrive, and at
    /// once after each of its transitions.
    Summary(BreakerSummary),
}

/// One step of a breaker's time series.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// Step start, ms since the epoch.
    pub t_ms: i64,
    pub counts: OutcomeCounts,
    /// failed / judged over the step; `None` when no call was judged.
    pub failure_rate: Option<f64>,
    /// slow / judged over the step; `None` when no call was judged.
    #[serde(default)]
    pub slow_call_rate: Option<f64>,
    /// Latency percentiles from the step's merged histogram (bucket upper bounds), in ms.
    #[serde(default)]
    pub p50_ms: Option<f64>,
    #[serde(default)]
    pub p95_ms: Option<f64>,
    #[serde(default)]
    pub p99_ms: Option<f64>,
}

/// A stretch of time one instance spent in one state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateInterval {
    pub state: State,
    pub start_ms: i64,
    /// `None` while the instance is still in this state.
    pub end_ms: Option<i64>,
    /// Why the instance entered this state (absent when it was in it before the range).
    #[serde(default)]
    pub trigger: Option<Trigger>,
    pub config_version: u64,
}

/// One instance's states over a time range.
///
/// The intervals cover only time the instance reported: before its first report (and wherever
/// no interval covers the range) nothing is known, and the dashboard draws "no data".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineLane {
    pub instance: String,
    pub intervals: Vec<StateInterval>,
    /// When the instance first reported this breaker, ms since the epoch; absent when the
    /// server does not know (older servers drew every lane from the range's start).
    #[serde(default)]
    pub first_report_ms: Option<i64>,
}

/// A breaker's state timeline: one lane per instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Timeline {
    pub service: String,
    pub breaker: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub lanes: Vec<TimelineLane>,
}

/// A breaker's calls per second over the last minutes, one value per second (oldest first),
/// for the overview's sparklines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Sparkline {
    pub service: String,
    pub breaker: String,
    /// The first value's second, ms since the epoch.
    pub start_ms: i64,
    pub calls_per_s: Vec<f64>,
}

/// A service and the state of its breakers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceSummary {
    pub service: String,
    pub breakers: u32,
    pub open_breakers: u32,
    pub instances: u32,
}

/// A breaker's series over a time range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Series {
    pub service: String,
    pub breaker: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub step_ms: i64,
    pub failure_rate_threshold: Option<f64>,
    pub points: Vec<SeriesPoint>,
}

#[cfg(test)]
mod tests;
