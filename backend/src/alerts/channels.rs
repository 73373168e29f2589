//! What each kind of channel receives: the generic webhook's signed JSON, a Slack-compatible
//! message, and Alertmanager API v2 alerts. Pure functions from an alert to a request body;
//! [`send`] makes the one HTTP request.
//!
//! Human-readable text says values as the dashboard does (`failure rate: 55 % ≥ 50 %`,
//! durations as `6m 40s`: [`charts::words`]); the webhook's machine fields keep the numbers.

use hmac::{Hmac, Mac};
use protocol::{Alert, AlertChannel, AlertChannelKind};
use serde_json::{Value, json};
use sha2::Sha256;

/// Header with `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`.
pub const SIGNATURE_HEADER: &str = "X-Fusebox-Signature";
/// Header with the signing time, ms since the epoch, part of what is signed.
pub const TIMESTAMP_HEADER: &str = "X-Fusebox-Timestamp";
/// Header with the notification's idempotency key (also in the webhook body).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// One notification to render.
pub struct Notification<'a> {
    pub idempotency_key: &'a str,
    /// `firing`, `updated` or `resolved`.
    pub event: &'a str,
    pub alert: &'a Alert,
    /// The server's base URL for links, without a trailing slash.
    pub public_url: &'a str,
}

/// Percent-encodes a path segment or query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The dashboard page of a breaker (`/breaker?service=S&breaker=B`).
pub fn breaker_url(public_url: &str, service: &str, breaker: &str) -> String {
    format!(
        "{public_url}/breaker?service={}&breaker={}",
        encode(service),
        encode(breaker)
    )
}

/// The failure-rate chart of a breaker around a trip: 10 minutes before to 5 after.
pub fn chart_url(public_url: &str, service: &str, breaker: &str, around_ms: i64) -> String {
    format!(
        "{public_url}/api/v1/breakers/{}/{}/chart.svg?from_ms={}&to_ms={}",
        encode(service),
        encode(breaker),
        around_ms - 10 * 60_000,
        around_ms + 5 * 60_000
    )
}

/// The alert's value against its threshold, as the dashboard says it:
/// `failure rate: 55 % ≥ 50 %`, `not Closed for: 6m 40s ≥ 5m`.
pub fn trigger_text(alert: &Alert) -> String {
    charts::words::trigger(&alert.trigger_kind, alert.trigger_value, alert.threshold)
}

/// The generic webhook's body (see `docs/alerts.md`).
pub fn webhook_body(n: &Notification<'_>, sent_ms: i64) -> Value {
    let alert = n.alert;
    let breakers: Vec<Value> = alert
        .breakers
        .iter()
        .map(|b| {
            json!({
                "service": b.service,
                "breaker": b.breaker,
                "instances": b.instances,
                "url": breaker_url(n.public_url, &b.service, &b.breaker),
                "chart_url": chart_url(n.public_url, &b.service, &b.breaker, alert.started_ms),
            })
        })
        .collect();
    json!({
        "version": 1,
        "idempotency_key": n.idempotency_key,
        "event": n.event,
        "sent_ms": sent_ms,
        "alert": {
            "id": alert.id,
            "rule": alert.rule,
            "kind": alert.kind,
            "severity": alert.severity,
            "status": alert.status,
            "title": alert.title,
            "started_ms": alert.started_ms,
            "resolved_ms": alert.resolved_ms,
            "trigger": {
                "kind": alert.trigger_kind,
                "value": alert.trigger_value,
                "threshold": alert.threshold,
                "text": trigger_text(alert),
            },
            "breakers": breakers,
        },
    })
}

/// A Slack incoming-webhook message: `text` for notifications, blocks for the channel.
pub fn slack_body(n: &Notification<'_>) -> Value {
    let alert = n.alert;
    let icon = match n.event {
        "resolved" => ":white_check_mark:",
        _ => ":rotating_light:",
    };
    let headline = match n.event {
        "resolved" => format!("{icon} Resolved: {}", alert.title),
        _ => format!("{icon} [{}] {}", alert.severity, alert.title),
    };
    let mut lines = vec![format!("*{}*: {}", alert.rule, trigger_text(alert))];
    for b in &alert.breakers {
        lines.push(format!(
            "• <{}|{}/{}> on {} — <{}|chart>",
            breaker_url(n.public_url, &b.service, &b.breaker),
            b.service,
            b.breaker,
            if b.instances.is_empty() {
                "no instance now".to_string()
            } else {
                b.instances.join(", ")
            },
            chart_url(n.public_url, &b.service, &b.breaker, alert.started_ms),
        ));
    }
    json!({
        "text": headline,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}},
        ],
    })
}

fn rfc3339(ms: i64) -> String {
    // Civil date from days since the epoch (Howard Hinnant's algorithm), to avoid a
    // date-time dependency for one format.
    let secs = ms.div_euclid(1_000);
    let millis = ms.rem_euclid(1_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// Alertmanager API v2 alerts: one per breaker the alert names, sharing the alert's id label.
pub fn alertmanager_body(n: &Notification<'_>) -> Value {
    let alert = n.alert;
    let alerts: Vec<Value> = alert
        .breakers
        .iter()
        .map(|b| {
            let mut value = json!({
                "labels": {
                    "alertname": format!("fusebox_{}", crate::alerts::rules::rule_kind_str(alert.kind)),
                    "rule": alert.rule,
                    "severity": alert.severity,
                    "service": b.service,
                    "breaker": b.breaker,
                    "fusebox_alert_id": alert.id.to_string(),
                },
                "annotations": {
                    "summary": alert.title,
                    "description": format!(
                        "{}; instances: {}",
                        trigger_text(alert),
                        b.instances.join(", ")
                    ),
                    "breaker_url": breaker_url(n.public_url, &b.service, &b.breaker),
                    "chart_url": chart_url(n.public_url, &b.service, &b.breaker, alert.started_ms),
                },
                "startsAt": rfc3339(alert.started_ms),
                "generatorURL": breaker_url(n.public_url, &b.service, &b.breaker),
            });
            if let Some(resolved_ms) = alert.resolved_ms {
                value["endsAt"] = Value::String(rfc3339(resolved_ms));
            }
            value
        })
        .collect();
    Value::Array(alerts)
}

/// `sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>").
pub fn sign(secret: &str, timestamp_ms: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// Sends one notification; Err with a short reason when the receiver did not take it.
pub async fn send(
    client: &reqwest::Client,
    channel: &AlertChannel,
    n: &Notification<'_>,
    now_ms: i64,
) -> Result<(), String> {
    let (url, body) = match channel.kind {
        AlertChannelKind::Webhook => (channel.url.clone(), webhook_body(n, now_ms)),
        AlertChannelKind::Slack => (channel.url.clone(), slack_body(n)),
        AlertChannelKind::Alertmanager => (
            format!("{}/api/v2/alerts", channel.url.trim_end_matches('/')),
            alertmanager_body(n),
        ),
    };
    let body = serde_json::to_vec(&body).expect("JSON values serialize");
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(IDEMPOTENCY_HEADER, n.idempotency_key);
    if let Some(secret) = &channel.secret {
        request = request
            .header(TIMESTAMP_HEADER, now_ms.to_string())
            .header(SIGNATURE_HEADER, sign(secret, now_ms, &body));
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|err| format!("{err}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the receiver answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_666_756_547), "2026-11-26T04:19:16.547Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn signatures_follow_the_documented_recipe() {
        // RFC 4231 test case 2 key and data, with our "<timestamp>." prefix folded in.
        let sig = sign("Jefe", 0, b"what do ya want for nothing?");
        assert!(sig.starts_with("sha256=") && sig.len() == 71, "{sig}");
        assert_eq!(sig, sign("Jefe", 0, b"what do ya want for nothing?"));
        assert_ne!(sig, sign("Jefe", 1, b"what do ya want for nothing?"));
    }

    fn alert(kind: &str, value: f64, threshold: f64) -> Alert {
        serde_json::from_value(serde_json::json!({
            "id": 12, "rule": "breaker-opened", "kind": "trip", "severity": "critical",
            "status": "firing", "title": "Breaker payments-api opened in checkout",
            "started_ms": 1_795_666_756_547_i64, "resolved_ms": null,
            "trigger_kind": kind, "trigger_value": value, "threshold": threshold,
            "breakers": [{"service": "checkout", "breaker": "payments-api",
                          "instances": ["checkout-1"]}],
            "events": [], "deliveries": []
        }))
        .unwrap()
    }

    #[test]
    fn messages_say_rates_as_percentages_and_webhooks_keep_the_numbers() {
        let tripped = alert("failure_rate", 0.55, 0.5);
        let n = Notification {
            idempotency_key: "k",
            event: "firing",
            alert: &tripped,
            public_url: "http://h",
        };
        let webhook = webhook_body(&n, 0);
        let trigger = &webhook["alert"]["trigger"];
        assert_eq!(trigger["kind"], "failure_rate");
        assert_eq!(trigger["value"], 0.55);
        assert_eq!(trigger["threshold"], 0.5);
        assert_eq!(trigger["text"], "failure rate: 55 % ≥ 50 %");
        let slack = slack_body(&n);
        let lines = slack["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(
            lines.starts_with("*breaker-opened*: failure rate: 55 % ≥ 50 %\n"),
            "{lines}"
        );
        let alertmanager = alertmanager_body(&n);
        assert_eq!(
            alertmanager[0]["annotations"]["description"],
            "failure rate: 55 % ≥ 50 %; instances: checkout-1"
        );
        let longer = alert("open_for_ms", 400_000.0, 300_000.0);
        assert_eq!(trigger_text(&longer), "not Closed for: 6m 40s ≥ 5m");
    }

    #[test]
    fn names_are_encoded_in_links() {
        assert_eq!(
            breaker_url("http://h", "a b", "x/y"),
            "http://h/breaker?service=a%20b&breaker=x%2Fy"
        );
    }
}
