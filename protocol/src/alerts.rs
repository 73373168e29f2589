//! Alerting: rules, channels, alerts with their history and deliveries, and the live
//! stream's `alert` message.

use serde::{Deserialize, Serialize};

use crate::AlertStatus;

/// What a rule watches for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertRuleKind {
    /// A breaker goes Closed → Open on any instance.
    Trip,
    /// A breaker has not been Closed everywhere for longer than `for_ms`.
    OpenLonger,
    /// At least `openings` Closed → Open transitions of a breaker within `within_ms`.
    Flapping,
    /// A notice when a breaker that alerted is Closed everywhere again.
    Recovery,
    /// At least `min_open` instances of a breaker are Open at once.
    MinInstances,
    /// A notice of every automatic config change of a breaker in auto mode: a canary
    /// started, promoted or rolled back.
    AutoTune,
}

/// An alert rule, scoped by service and breaker globs (`*` and `?`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// 1–200 characters; the key rules are set and channels refer to them by.
    pub name: String,
    pub kind: AlertRuleKind,
    /// A glob over service names; `*` by default.
    #[serde(default = "any")]
    pub service: String,
    /// A glob over breaker names; `*` by default.
    #[serde(default = "any")]
    pub breaker: String,
    /// Free text passed on to channels, e.g. `critical`, `warning`, `info`; `critical` by default.
    #[serde(default = "critical")]
    pub severity: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `open_longer`: how long a breaker may stay not Closed before it alerts.
    #[serde(default)]
    pub for_ms: Option<i64>,
    /// `flapping`: how many openings…
    #[serde(default)]
    pub openings: Option<u32>,
    /// `flapping`: …within how long.
    #[serde(default)]
    pub within_ms: Option<i64>,
    /// `min_instances`: how many instances must be Open at once.
    #[serde(default)]
    pub min_open: Option<u32>,
    /// `trip`: `dependency` (default) groups every service's breaker of the same name into one
    /// alert; `breaker` gives each (service, breaker) its own.
    #[serde(default)]
    pub group_by: Option<String>,
}

fn any() -> String {
    "*".into()
}
fn critical() -> String {
    "critical".into()
}
fn yes() -> bool {
    true
}

/// Where notifications go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AlertChannelKind {
    /// Generic JSON webhook, signed with HMAC-SHA256 (`X-Fusebox-Signature`).
    Webhook,
    /// A Slack-compatible incoming webhook.
    Slack,
    /// A Prometheus Alertmanager's base URL; alerts go to `POST /api/v2/alerts`.
    Alertmanager,
}

/// A channel as an admin sets it. The secret is write-only: reads say only whether one is set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AlertChannel {
    pub name: String,
    pub kind: AlertChannelKind,
    /// `http://` or `https://`.
    pub url: String,
    /// The HMAC-SHA256 key webhook payloads are signed with.
    #[serde(default)]
    pub secret: Option<String>,
    /// Names of the rules whose alerts this channel receives; empty for every rule.
    #[serde(default)]
    pub rules: Vec<String>,
}

/// A channel as read back: no secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertChannelView {
    pub name: String,
    pub kind: AlertChannelKind,
    /// The full URL for admins; scheme and host only for viewers.
    pub url: String,
    pub has_secret: bool,
    pub rules: Vec<String>,
    /// `config` (the settings file or the command line) or `api`.
    pub source: String,
}

/// A rule as read back, with where it was set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertRuleView {
    pub rule: AlertRule,
    /// `default`, `config` or `api`.
    pub source: String,
}

/// One breaker an alert is about, with its instances that are not Closed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertBreaker {
    pub service: String,
    pub breaker: String,
    pub instances: Vec<String>,
}

/// One step of an alert's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertEventRecord {
    pub id: i64,
    /// `firing`, `updated` (another breaker joined), `resolved`, `acknowledged`, `silenced`.
    pub kind: String,
    pub at_ms: i64,
    #[serde(default)]
    pub detail: Option<String>,
}

/// One notification to one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertDelivery {
    pub channel: String,
    pub event_id: i64,
    pub idempotency_key: String,
    pub attempts: u32,
    pub delivered_ms: Option<i64>,
    pub next_attempt_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// An alert: one per incident, across instances and (for `trip`) across calling services.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    pub id: i64,
    pub rule: String,
    pub kind: AlertRuleKind,
    pub severity: String,
    pub status: AlertStatus,
    pub title: String,
    pub started_ms: i64,
    pub resolved_ms: Option<i64>,
    /// What crossed the threshold: a failure rate, a count of openings, a duration in ms, a
    /// number of instances.
    pub trigger_kind: String,
    pub trigger_value: f64,
    pub threshold: f64,
    pub breakers: Vec<AlertBreaker>,
    pub acknowledged_by: Option<String>,
    pub acknowledged_ms: Option<i64>,
    pub silenced_until_ms: Option<i64>,
    /// History, oldest first (empty in stream messages and notifications).
    #[serde(default)]
    pub events: Vec<AlertEventRecord>,
    /// Notifications and their state (empty in stream messages and notifications).
    #[serde(default)]
    pub deliveries: Vec<AlertDelivery>,
}

/// The live stream's `event: alert` message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AlertNotice {
    /// `firing`, `updated`, `resolved`, `acknowledged`, `silenced`.
    pub event: String,
    pub alert: Alert,
}

/// `POST /api/v1/alerts/{id}/silence`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// How long notifications of this alert are held back.
    pub for_ms: i64,
}
