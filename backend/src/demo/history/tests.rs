use super::*;
use crate::demo::{SERVICES, WRONG_BREAKER, config_for};
use protocol::State;

const NOW_MS: i64 = 1_790_000_123_456;

fn demo_history() -> DemoHistory {
    let series: Vec<Series<'static>> = SERVICES
        .iter()
        .flat_map(|service| {
            service.dependencies.iter().map(|dependency| Series {
                service: service.name,
                instances: service.instances,
                dependency,
                config: config_for(service.name, dependency.breaker),
                config_version: 1,
            })
        })
        .collect();
    generate(&series, NOW_MS)
}

#[test]
fn the_week_is_covered_once_per_resolution() {
    let past = demo_history();
    let split = split_ms(NOW_MS);
    let minutes: Vec<_> = past
        .rollups
        .iter()
        .filter(|r| (r.0, r.1, r.2) == ("checkout", "payments-api", MINUTE_MS))
        .collect();
    assert_eq!(minutes.len() as i64, (split - from_ms(NOW_MS)) / MINUTE_MS);
    assert!(
        minutes.iter().all(|r| r.3 < split),
        "rollups stop where seconds begin"
    );
    let seconds: Vec<_> = past
        .aggregates
        .iter()
        .filter(|(service, instance, a)| {
            (*service, *instance, a.breaker.as_str()) == ("checkout", "checkout-1", "payments-api")
        })
        .collect();
    assert_eq!(seconds.len() as i64, (NOW_MS - split) / 1_000);
    assert!(
        seconds
            .iter()
            .all(|(_, _, a)| a.start_ms >= split && a.start_ms + 1_000 <= NOW_MS)
    );
    // The hour rollups add up to the minute ones.
    let total = |resolution: i64| -> u64 {
        past.rollups
            .iter()
            .filter(|r| (r.0, r.1, r.2) == ("checkout", "payments-api", resolution))
            .map(|r| r.4.counts.success + r.4.counts.failure + r.4.counts.rejected)
            .sum()
    };
    assert_eq!(total(MINUTE_MS), total(HOUR_MS));
}

#[test]
fn payments_api_has_past_incidents_with_their_trigger_values() {
    let past = demo_history();
    let trips: Vec<&Transition> = past
        .transitions
        .iter()
        .filter(|(service, _, t)| *service == "checkout" && t.breaker == "payments-api")
        .map(|(_, _, t)| t)
        .filter(|t| t.from == State::Closed && t.to == State::Open)
        .collect();
    // A few a day on each of the two instances.
    assert!(
        trips.len() >= 2 * 2 * DAYS as usize,
        "{} trips",
        trips.len()
    );
    for trip in &trips {
        let trigger = trip.trigger.as_ref().unwrap();
        assert_eq!(trigger.kind, "failure_rate");
        assert!(trigger.value >= trigger.threshold && trigger.threshold == 0.5);
    }
    // Every instance's transitions chain: each starts where the previous one ended.
    for instance in ["checkout-1", "checkout-2"] {
        let mut state = State::Closed;
        for (_, _, t) in past
            .transitions
            .iter()
            .filter(|(_, i, t)| *i == instance && t.breaker == "payments-api")
        {
            assert_eq!(t.from, state, "{t:?}");
            state = t.to;
        }
    }
}

#[test]
fn the_wrong_breaker_stays_closed_through_its_outages() {
    let past = demo_history();
    let (service, breaker) = WRONG_BREAKER;
    // Its outages fail far more calls than usual, twice a day…
    let bad_minutes = past
        .rollups
        .iter()
        .filter(|r| (r.0, r.1, r.2) == (service, breaker, MINUTE_MS))
        .filter(|r| r.4.counts.failure * 2 > r.4.counts.success)
        .count();
    assert!(
        bad_minutes >= 3 * DAYS as usize,
        "{bad_minutes} bad minutes"
    );
    // …yet it never opened, and never rejected a call.
    assert!(
        !past
            .transitions
            .iter()
            .any(|(s, _, t)| *s == service && t.breaker == breaker),
        "the wrong breaker opened"
    );
    assert!(
        past.rollups
            .iter()
            .filter(|r| (r.0, r.1) == (service, breaker))
            .all(|r| r.4.counts.rejected == 0)
    );
}
