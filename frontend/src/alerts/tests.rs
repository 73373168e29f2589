use protocol::{Alert, AlertBreaker, AlertDelivery, AlertEventRecord, AlertNotice, AlertRuleKind};

use super::{
    MAX_TOASTS, TOAST_MS, ToastKind, Toasts, acknowledged_text, breaker_lines, delivery_line,
    event_line, is_silenced, notification, silenced_text, trigger_text,
};

fn alert(id: i64) -> Alert {
    Alert {
        id,
        rule: "breaker-opened".into(),
        kind: AlertRuleKind::Trip,
        severity: "critical".into(),
        status: protocol::AlertStatus::Firing,
        title: "Breaker payments-api opened in checkout".into(),
        started_ms: 1_000,
        resolved_ms: None,
        trigger_kind: "failure_rate".into(),
        trigger_value: 0.55,
        threshold: 0.5,
        breakers: vec![AlertBreaker {
            service: "checkout".into(),
            breaker: "payments-api".into(),
            instances: vec!["checkout-1".into(), "checkout-2".into()],
        }],
        acknowledged_by: None,
        acknowledged_ms: None,
        silenced_until_ms: None,
        events: Vec::new(),
        deliveries: Vec::new(),
    }
}

fn notice(event: &str, id: i64) -> AlertNotice {
    AlertNotice {
        event: event.into(),
        alert: alert(id),
    }
}

#[test]
fn only_firing_and_resolved_make_toasts_and_they_expire() {
    let mut toasts = Toasts::default();
    let toast = toasts.push(&notice("firing", 7), 0).unwrap().clone();
    assert_eq!(toast.kind, ToastKind::Firing);
    assert_eq!(toast.heading, "Alert firing");
    assert_eq!(toast.title, "Breaker payments-api opened in checkout");
    assert_eq!(toast.detail, "[critical] failure rate: 55 % ≥ 50 %");
    assert!(toasts.push(&notice("acknowledged", 7), 0).is_none());
    assert!(toasts.push(&notice("updated", 7), 0).is_none());
    assert_eq!(
        toasts.push(&notice("resolved", 7), 5_000).unwrap().kind,
        ToastKind::Resolved
    );
    assert_eq!(toasts.items.len(), 2);

    assert!(!toasts.expire(TOAST_MS - 1));
    assert!(toasts.expire(TOAST_MS));
    assert_eq!(toasts.items.len(), 1);
    let id = toasts.items[0].id;
    toasts.dismiss(id);
    assert!(toasts.items.is_empty());

    for id in 0..10 {
        toasts.push(&notice("firing", id), 0);
    }
    assert_eq!(toasts.items.len(), MAX_TOASTS);
    assert_eq!(toasts.items[0].alert_id, 10 - MAX_TOASTS as i64);
}

#[test]
fn notification_text() {
    let (title, body) = notification(&notice("firing", 1)).unwrap();
    assert_eq!(title, "fusebox: alert firing");
    assert_eq!(
        body,
        "Breaker payments-api opened in checkout\n[critical] failure rate: 55 % ≥ 50 %"
    );
    assert!(notification(&notice("silenced", 1)).is_none());
}

#[test]
fn page_lines() {
    let mut alert = alert(3);
    alert.trigger_kind = "openings".into();
    alert.trigger_value = 3.0;
    alert.threshold = 3.0;
    assert_eq!(trigger_text(&alert), "openings: 3 ≥ 3");
    alert.trigger_kind = "open_for_ms".into();
    alert.trigger_value = 400_000.0;
    alert.threshold = 300_000.0;
    assert_eq!(trigger_text(&alert), "not Closed for: 6m 40s ≥ 5m");
    assert_eq!(
        breaker_lines(&alert),
        ["checkout/payments-api on checkout-1, checkout-2"]
    );
    assert_eq!(acknowledged_text(&alert), None);
    alert.acknowledged_by = Some("ops".into());
    alert.acknowledged_ms = Some(60_000);
    assert_eq!(
        acknowledged_text(&alert).unwrap(),
        "acknowledged by ops at 1970-01-01 00:01:00"
    );

    alert.silenced_until_ms = Some(120_000);
    assert!(is_silenced(&alert, 119_999));
    assert_eq!(
        silenced_text(&alert, 0).unwrap(),
        "silenced until 1970-01-01 00:02:00"
    );
    assert!(!is_silenced(&alert, 120_000));

    let event = AlertEventRecord {
        id: 1,
        kind: "acknowledged".into(),
        at_ms: 60_000,
        detail: Some("by ops".into()),
    };
    assert_eq!(
        event_line(&event),
        "1970-01-01 00:01:00 acknowledged (by ops)"
    );

    let mut delivery = AlertDelivery {
        channel: "oncall".into(),
        event_id: 1,
        idempotency_key: "k".into(),
        attempts: 1,
        delivered_ms: Some(2_000),
        next_attempt_ms: None,
        last_error: None,
    };
    assert_eq!(
        delivery_line(&delivery),
        "oncall: delivered 1970-01-01 00:00:02"
    );
    delivery.delivered_ms = None;
    delivery.attempts = 3;
    delivery.next_attempt_ms = Some(3_000);
    delivery.last_error = Some("connection refused".into());
    assert_eq!(
        delivery_line(&delivery),
        "oncall: 3 attempts, next 1970-01-01 00:00:03 (connection refused)"
    );
}
