//! Alerting's SQL, one file per concept:
//!
//! - [`rules`]: the rule and channel tables, and the audit of admins' changes to them.
//! - [`alerts`]: alerts as read (snapshots, history, deliveries) and admins' actions on them.
//! - [`engine`]: what the engine reads and writes in its transactions: the cursor, the
//!   transitions after it, each instance's state, incidents, and opening and resolving alerts.
//! - [`outbox`]: queued notifications, what is due, and each attempt's outcome.
//!
//! Functions that run inside the engine's transaction take its `&mut store::Tx`; the others
//! take the [`crate::store::Store`].

pub mod alerts;
pub mod engine;
pub mod outbox;
pub mod rules;

use protocol::{AlertChannelKind, AlertRuleKind};

use crate::store::StoreError;

/// A stored channel kind (`webhook`, `slack`, `alertmanager`).
fn parse_channel_kind(text: &str) -> Result<AlertChannelKind, StoreError> {
    parse_snake_case("a channel's kind", text)
}

/// A stored rule kind (`trip`, `open_longer`, …).
fn parse_rule_kind(text: &str) -> Result<AlertRuleKind, StoreError> {
    parse_snake_case("an alert's kind", text)
}

/// A unit enum stored by its serde name.
fn parse_snake_case<T: serde::de::DeserializeOwned>(
    what: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|err| {
        StoreError::Corrupt {
            what,
            detail: err.to_string(),
        }
    })
}
