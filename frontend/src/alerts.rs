//! What the dashboard says about alerts: toasts for alerts that fire or resolve (from the live
//! stream's `event: alert`), the text of a browser notification, and the alerts page's lines
//! (status, who acknowledged, silences, history, deliveries).
//!
//! Pure and host-tested: the components in `alerts_page` and `toasts` only bind these strings.

use protocol::{Alert, AlertDelivery, AlertEventRecord, AlertNotice};

use crate::format;

/// How long a toast stays, in ms, unless dismissed.
pub const TOAST_MS: i64 = 12_000;
/// At most this many toasts at once; the oldest goes first.
pub const MAX_TOASTS: usize = 4;

/// Silences the alerts page offers, as `(label, ms)`.
pub const SILENCES: [(&str, i64); 3] = [
    ("1 h", 3_600_000),
    ("4 h", 4 * 3_600_000),
    ("1 day", 24 * 3_600_000),
];

/// Which news a toast carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToastKind {
    Firing,
    Resolved,
}

/// One toast on screen.
#[derive(Clone, Debug, PartialEq)]
pub struct Toast {
    /// Unique on this page, the key of its element.
    pub id: u64,
    pub alert_id: i64,
    pub kind: ToastKind,
    /// E.g. `Alert firing` or `Alert resolved`.
    pub heading: &'static str,
    /// The alert's title, e.g. `Breaker payments-api opened in checkout`.
    pub title: String,
    /// E.g. `[critical] failure rate: 55 % ≥ 50 %`.
    pub detail: String,
    pub expires_ms: i64,
}

/// The toasts on screen, newest last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Toasts {
    next_id: u64,
    pub items: Vec<Toast>,
}

// === impl ToastKind ===

impl ToastKind {
    /// The toast for a stream notice: only alerts that fire or resolve make one.
    pub fn of(notice: &AlertNotice) -> Option<ToastKind> {
        match notice.event.as_str() {
            "firing" => Some(ToastKind::Firing),
            "resolved" => Some(ToastKind::Resolved),
            _ => None,
        }
    }

    /// The `data-event` hook and CSS class.
    pub fn as_str(self) -> &'static str {
        match self {
            ToastKind::Firing => "firing",
            ToastKind::Resolved => "resolved",
        }
    }

    pub fn heading(self) -> &'static str {
        match self {
            ToastKind::Firing => "Alert firing",
            ToastKind::Resolved => "Alert resolved",
        }
    }
}

// === impl Toasts ===

impl Toasts {
    /// Adds the toast for `notice`, if it makes one; returns it.
    pub fn push(&mut self, notice: &AlertNotice, now_ms: i64) -> Option<&Toast> {
        let kind = ToastKind::of(notice)?;
        self.next_id += 1;
        self.items.push(Toast {
            id: self.next_id,
            alert_id: notice.alert.id,
            kind,
            heading: kind.heading(),
            title: notice.alert.title.clone(),
            detail: format!(
                "[{}] {}",
                notice.alert.severity,
                trigger_text(&notice.alert)
            ),
            expires_ms: now_ms + TOAST_MS,
        });
        if self.items.len() > MAX_TOASTS {
            self.items.remove(0);
        }
        self.items.last()
    }

    pub fn dismiss(&mut self, id: u64) {
        self.items.retain(|toast| toast.id != id);
    }

    /// Drops expired toasts; returns whether any went.
    pub fn expire(&mut self, now_ms: i64) -> bool {
        let before = self.items.len();
        self.items.retain(|toast| toast.expires_ms > now_ms);
        self.items.len() != before
    }
}

/// A browser notification's title and body for `notice`, when it makes a toast.
pub fn notification(notice: &AlertNotice) -> Option<(String, String)> {
    let kind = ToastKind::of(notice)?;
    Some((
        format!("fusebox: {}", kind.heading().to_lowercase()),
        format!(
            "{}\n[{}] {}",
            notice.alert.title,
            notice.alert.severity,
            trigger_text(&notice.alert)
        ),
    ))
}

/// The value against its threshold as tiles and the timeline say it, and as the server's alert
/// messages do: `failure rate: 55 % ≥ 50 %`, `openings: 3 ≥ 3`, `not Closed for: 6m 40s ≥ 5m`.
pub fn trigger_text(alert: &Alert) -> String {
    charts::words::trigger(&alert.trigger_kind, alert.trigger_value, alert.threshold)
}

/// E.g. `checkout/payments-api on checkout-1, checkout-2`, one line per breaker.
pub fn breaker_lines(alert: &Alert) -> Vec<String> {
    alert
        .breakers
        .iter()
        .map(|breaker| {
            if breaker.instances.is_empty() {
                format!("{}/{}", breaker.service, breaker.breaker)
            } else {
                format!(
                    "{}/{} on {}",
                    breaker.service,
                    breaker.breaker,
                    breaker.instances.join(", ")
                )
            }
        })
        .collect()
}

/// E.g. `acknowledged by ops at 2026-11-26 05:12:03`.
pub fn acknowledged_text(alert: &Alert) -> Option<String> {
    let by = alert.acknowledged_by.as_ref()?;
    Some(match alert.acknowledged_ms {
        Some(at_ms) => format!("acknowledged by {by} at {}", format::timestamp(at_ms)),
        None => format!("acknowledged by {by}"),
    })
}

/// E.g. `silenced until 2026-11-26 06:12:03`, while the silence lasts.
pub fn silenced_text(alert: &Alert, now_ms: i64) -> Option<String> {
    let until = alert.silenced_until_ms.filter(|until| *until > now_ms)?;
    Some(format!("silenced until {}", format::timestamp(until)))
}

/// Whether the alert is silenced at `now_ms`.
pub fn is_silenced(alert: &Alert, now_ms: i64) -> bool {
    silenced_text(alert, now_ms).is_some()
}

/// One line of history, e.g. `2026-11-26 05:12:03 acknowledged (by ops)`.
pub fn event_line(event: &AlertEventRecord) -> String {
    match &event.detail {
        Some(detail) if !detail.is_empty() => format!(
            "{} {} ({detail})",
            format::timestamp(event.at_ms),
            event.kind
        ),
        _ => format!("{} {}", format::timestamp(event.at_ms), event.kind),
    }
}

/// One notification's state, e.g. `webhook-1: delivered 05:12:04` or
/// `oncall: 3 attempts, next 05:13:00 (connection refused)`.
pub fn delivery_line(delivery: &AlertDelivery) -> String {
    match delivery.delivered_ms {
        Some(at_ms) => format!(
            "{}: delivered {}",
            delivery.channel,
            format::timestamp(at_ms)
        ),
        None => {
            let mut line = format!(
                "{}: {} attempt{}",
                delivery.channel,
                delivery.attempts,
                if delivery.attempts == 1 { "" } else { "s" }
            );
            if let Some(next_ms) = delivery.next_attempt_ms {
                line.push_str(&format!(", next {}", format::timestamp(next_ms)));
            } else {
                line.push_str(", held back");
            }
            if let Some(err) = &delivery.last_error {
                line.push_str(&format!(" ({err})"));
            }
            line
        }
    }
}

#[cfg(test)]
mod tests;
