//! Alerts' statuses and the events of their history, which channels are told of an event,
//! and recording an event with the notifications it queues (on one connection, so the engine
//! can do it inside its transaction).

use protocol::{Alert, AlertChannelKind, AlertRule, AlertRuleKind};

use crate::alerts::rules::{self, ChannelRow};
use crate::alerts::store;
use crate::store::{StoreError, Tx};

/// A step of an alert's history (`alert_events.kind`, and `AlertNotice::event` on the stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The alert opened.
    Firing,
    /// Another breaker joined it.
    Updated,
    Resolved,
    /// An admin acknowledged it (notifies no channel).
    Acknowledged,
    /// An admin silenced it or lifted its silence (notifies no channel).
    Silenced,
}

// === impl EventKind ===

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Firing => "firing",
            EventKind::Updated => "updated",
            EventKind::Resolved => "resolved",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Silenced => "silenced",
        }
    }
}

/// Whether a channel is to be told of an event of `alert`.
fn wants(
    channel: &ChannelRow,
    alert: &Alert,
    event: EventKind,
    rules: &[AlertRule],
    now_ms: i64,
) -> bool {
    if !channel.spec.rules.is_empty() && !channel.spec.rules.contains(&alert.rule) {
        return false;
    }
    let alertmanager = channel.spec.kind == AlertChannelKind::Alertmanager;
    match event {
        EventKind::Firing | EventKind::Updated => {
            alert.silenced_until_ms.is_none_or(|until| until <= now_ms)
        }
        // Alertmanager needs the end of every alert it was told of; other channels get a
        // recovery notice only when a recovery rule covers one of the alert's breakers.
        EventKind::Resolved => {
            alertmanager
                || (alert.silenced_until_ms.is_none_or(|until| until <= now_ms)
                    && alert.breakers.iter().any(|b| {
                        rules.iter().any(|rule| {
                            rule.kind == AlertRuleKind::Recovery
                                && rules::in_scope(rule, &b.service, &b.breaker)
                        })
                    }))
        }
        EventKind::Acknowledged | EventKind::Silenced => false,
    }
}

/// Records an event of an alert and queues its notifications; returns the alert as notified.
pub async fn add_event(
    conn: &mut Tx,
    alert_id: i64,
    kind: EventKind,
    detail: Option<&str>,
    channels: &[ChannelRow],
    rules: &[AlertRule],
    now_ms: i64,
) -> Result<Alert, StoreError> {
    let alert = store::alerts::snapshot(conn, alert_id).await?;
    let event_id =
        store::alerts::insert_event(conn, alert_id, kind, now_ms, detail, Some(&alert)).await?;
    for channel in channels {
        if !wants(channel, &alert, kind, rules, now_ms) {
            continue;
        }
        let key = format!(
            "fusebox-alert-{alert_id}-{}-{event_id}-{}",
            kind.as_str(),
            channel.id
        );
        store::outbox::queue(conn, event_id, channel.id, &key, now_ms).await?;
    }
    Ok(alert)
}

#[cfg(test)]
mod tests {
    use super::EventKind;
    use protocol::AlertStatus;

    /// The names are the wire's and the database's: they must not change.
    #[test]
    fn names() {
        for (status, name) in [
            (AlertStatus::Firing, "firing"),
            (AlertStatus::Resolved, "resolved"),
        ] {
            assert_eq!(status.as_str(), name);
            assert_eq!(AlertStatus::parse(name), Some(status));
        }
        assert_eq!(AlertStatus::parse("open"), None);
        for (kind, name) in [
            (EventKind::Firing, "firing"),
            (EventKind::Updated, "updated"),
            (EventKind::Resolved, "resolved"),
            (EventKind::Acknowledged, "acknowledged"),
            (EventKind::Silenced, "silenced"),
        ] {
            assert_eq!(kind.as_str(), name);
        }
    }
}
